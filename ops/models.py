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


class TaskRun(models.Model):
    """One run of long background work (a CSV import, a metrics refresh) as people see it:
    status and progress, polled by the UI's progress bar and the API.

    The worker commits progress between chunks of work (never inside the work's own
    transaction, where nobody else could see it)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        CSV_IMPORT = "csv_import", "CSV import"
        METRICS_REFRESH = "metrics_refresh", "Metrics refresh"
        CLUSTERING = "clustering", "Clustering run"
        CHURN_MODEL = "churn_model", "Churn model training"
        LOOKALIKES = "lookalikes", "Lookalike scoring"
        WAREHOUSE_EXPORT = "warehouse_export", "Warehouse export"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    label = models.CharField(max_length=200, blank=True)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    # A public-schema user id: no cross-schema foreign key.
    created_by_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "-created_at"], name="taskrun_kind_created_idx")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.status == self.Status.SUCCEEDED else None
        return min(100, int(100 * self.done / self.total))
