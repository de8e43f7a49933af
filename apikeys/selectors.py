from __future__ import annotations

from django.db.models import QuerySet

from apikeys.models import ApiKey, WriteKey


def api_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("created_by")


def write_key_current() -> WriteKey | None:
    return WriteKey.objects.filter(revoked_at__isnull=True).first()


def write_key_valid(key: str) -> bool:
    return bool(key) and WriteKey.objects.filter(key=key, revoked_at__isnull=True).exists()
