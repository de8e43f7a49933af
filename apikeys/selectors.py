from __future__ import annotations

from django.db.models import QuerySet

from apikeys.models import ApiKey, IdentitySecret, LookupKey, WriteKey
from apikeys.secrets import user_hash_matches


def api_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("created_by")


def write_key_current() -> WriteKey | None:
    return WriteKey.objects.filter(revoked_at__isnull=True).first()


def write_key_valid(key: str) -> bool:
    return bool(key) and WriteKey.objects.filter(key=key, revoked_at__isnull=True).exists()


def lookup_key_current() -> LookupKey | None:
    return LookupKey.objects.filter(revoked_at__isnull=True).first()


def lookup_key_of(key: str) -> LookupKey | None:
    """The key row (revoked ones too, so a caller can say "revoked"), or None."""
    return LookupKey.objects.filter(key=key).first() if key and len(key) <= 64 else None


def identity_secret_current() -> IdentitySecret | None:
    return IdentitySecret.objects.filter(revoked_at__isnull=True).first()


def identity_verified(user_id: str, given_hash: str) -> bool:
    """Whether `given_hash` is the userId signed with the tenant's current identity secret."""
    current = identity_secret_current()
    return current is not None and bool(given_hash) and user_hash_matches(current.secret, user_id, given_hash)


def identity_required() -> bool:
    """Whether unsigned requests about a customer are refused (else: answered impersonally)."""
    current = identity_secret_current()
    return current is not None and current.required

