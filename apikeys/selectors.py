from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

from apikeys.models import ApiKey, IdentitySecret, LookupKey, WriteKey
from apikeys.secrets import user_hash_matches


def api_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("created_by")


def write_key_current() -> WriteKey | None:
    return WriteKey.objects.filter(revoked_at__isnull=True).first()


def write_key_valid(key: str) -> bool:
    """Asked on every tracking request: one plain statement (the ORM's exists() cost more
    Python than the query, bench/sdk_load.py)."""
    if not key or len(key) > 64 or not key.isascii() or not key.isprintable():
        return False  # no stored key looks like it (NUL, surrogates, oversize would not even reach the query)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {WriteKey._meta.db_table} WHERE key = %s AND revoked_at IS NULL)",
                       [key])
        return cursor.fetchone()[0]


def lookup_key_current() -> LookupKey | None:
    return LookupKey.objects.filter(revoked_at__isnull=True).first()


@dataclass(frozen=True)
class LookupCredentials:
    key_id: int
    revoked: bool
    identity_secret: str | None  # the current one, to verify the signed ids

    def signed(self, value: str, given_hash: str) -> bool:
        return self.identity_secret is not None and bool(given_hash) and \
            user_hash_matches(self.identity_secret, value, given_hash)


# The columns that make a LookupCredentials, over `apikeys_lookupkey k` (a caller may join
# more to the same statement: the lookup reads its customer in the same round trip).
CREDENTIALS_COLUMNS = ("k.id, k.revoked_at IS NOT NULL, (SELECT s.secret FROM apikeys_identitysecret s "
                       "WHERE s.revoked_at IS NULL ORDER BY s.created_at DESC LIMIT 1)")


def credentials_from(row) -> LookupCredentials | None:
    """The credentials in the first three columns of a row (None: no such key)."""
    return LookupCredentials(*row[:3]) if row and row[0] is not None else None


def lookup_credentials(key: str) -> LookupCredentials | None:
    """A lookup key (revoked ones too, so a caller can say "revoked") with the identity
    secret its requests are signed with."""
    if not key or len(key) > 64:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {CREDENTIALS_COLUMNS} FROM apikeys_lookupkey k WHERE k.key = %s", [key])
        return credentials_from(cursor.fetchone())


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

