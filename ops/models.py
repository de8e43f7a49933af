"""Tenant-schema operational records."""

from django.db import models


class Heartbeat(models.Model):
    """Last time background work reached this tenant's schema (one row per source)."""

    source = models.CharField(max_length=64, unique=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source"]

    def __str__(self) -> str:
        return f"{self.source}: {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
