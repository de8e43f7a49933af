"""Creating and revoking API keys; rotating the tracking write key, the public lookup key
and the identity secret, and whether unsigned in-app requests are refused. Audited."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from apikeys.models import ApiKey, IdentitySecret, LookupKey, WriteKey
from apikeys.secrets import api_key_new, identity_secret_new, key_hash, lookup_key_new, write_key_new
from audit.services import audit_record
from common.actors import Actor
from common.errors import Code, Conflict, DomainError, Problem, TenantCode
from tenants.permissions import SCOPES
from tenants.permissions import ensure_permitted


@transaction.atomic
def api_key_create(*, actor: Actor, name: str, scopes: list[str], now: datetime,
                   expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Returns the key and its plain text, which is never stored or shown again."""
    ensure_permitted(actor, "api_keys.manage")
    name, given = (name or "").strip(), list(scopes or [])
    scopes = sorted(set(given))
    problems = []
    if not name:
        problems.append(Problem(path="name", code=Code.REQUIRED, message="Name the key after what uses it."))
    elif len(name) > 100:
        problems.append(Problem(path="name", code=Code.TOO_LONG, message="Use at most 100 characters."))
    if not scopes:
        problems.append(Problem(path="scopes", code=Code.REQUIRED, message="Choose at least one scope."))
    for index, scope in enumerate(given):  # paths index what the caller sent
        if scope not in SCOPES:
            problems.append(Problem(path=f"scopes[{index}]", code=TenantCode.UNKNOWN_SCOPE,
                                    message=f"“{scope}” is not a scope."))
    if expires_at is not None and expires_at <= now:
        problems.append(Problem(path="expires_at", code=Code.IN_THE_PAST, message="Choose an expiry in the future."))
    if problems:
        raise DomainError(problems=problems)
    prefix, plain = api_key_new()
    key = ApiKey.objects.create(name=name, prefix=prefix, secret_hash=key_hash(plain), scopes=scopes,
                                created_by=actor.user, expires_at=expires_at)
    changes = {"scopes": [None, scopes]}
    if expires_at is not None:
        changes["expires_at"] = [None, expires_at.isoformat()]
    audit_record(actor=actor, action="api_key.created", target=key, changes=changes)
    return key, plain


@transaction.atomic
def api_key_revoke(*, actor: Actor, key: ApiKey, now: datetime) -> ApiKey:
    ensure_permitted(actor, "api_keys.manage")
    if key.revoked_at is not None:
        raise Conflict.single(path="key", code=TenantCode.ALREADY_REVOKED, message="This key is already revoked.")
    key.revoked_at = now
    key.save(update_fields=["revoked_at", "updated_at"])
    audit_record(actor=actor, action="api_key.revoked", target=key)
    return key


@transaction.atomic
def write_key_rotate(*, actor: Actor, now: datetime) -> WriteKey:
    """Issue a new write key and revoke the old one (SDKs must be given the new key)."""
    return _public_key_rotate(WriteKey, write_key_new(), action="write_key.rotated", actor=actor, now=now)


@transaction.atomic
def lookup_key_rotate(*, actor: Actor, now: datetime) -> LookupKey:
    """Issue a new public lookup key and revoke the old one (pages must be given the new one)."""
    return _public_key_rotate(LookupKey, lookup_key_new(), action="lookup_key.rotated", actor=actor, now=now)


def _public_key_rotate(model, key: str, *, action: str, actor: Actor, now: datetime):
    ensure_permitted(actor, "api_keys.manage")
    old = list(model.objects.select_for_update().filter(revoked_at__isnull=True))
    model.objects.filter(pk__in=[k.pk for k in old]).update(revoked_at=now)
    new = model.objects.create(key=key)
    audit_record(actor=actor, action=action, target=new,
                 changes={"key": [old[0].key[:7] + "…" if old else None, new.key[:7] + "…"]})
    return new


@transaction.atomic
def identity_secret_rotate(*, actor: Actor, now: datetime) -> IdentitySecret:
    """Issue a new identity secret and revoke the old one (the backend must sign with the
    new one; signatures made with the old one stop verifying). The setting carries over."""
    ensure_permitted(actor, "api_keys.manage")
    old = list(IdentitySecret.objects.select_for_update().filter(revoked_at__isnull=True))
    IdentitySecret.objects.filter(pk__in=[s.pk for s in old]).update(revoked_at=now)
    new = IdentitySecret.objects.create(secret=identity_secret_new(), required=any(s.required for s in old))
    audit_record(actor=actor, action="identity_secret.rotated", target=new, target_label="identity secret")
    return new


@transaction.atomic
def identity_verification_require(*, actor: Actor, required: bool) -> IdentitySecret:
    """Refuse unsigned in-app requests (True) or answer them without personal content."""
    ensure_permitted(actor, "api_keys.manage")
    if not isinstance(required, bool):
        raise DomainError.single(path="required", code=Code.INVALID_TYPE, message="true or false.")
    current = IdentitySecret.objects.select_for_update().filter(revoked_at__isnull=True).first()
    if current is None:
        current = IdentitySecret.objects.create(secret=identity_secret_new())
    if current.required != required:
        current.required = required
        current.save(update_fields=["required"])
        audit_record(actor=actor, action="identity_verification.changed", target=current,
                     target_label="identity secret", changes={"required": [not required, required]})
    return current


def api_key_touch(*, key: ApiKey, now: datetime) -> None:
    """Record use at most once a minute: a write on every request would serialise a busy key."""
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() >= 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def workspace_keys_issue() -> None:
    """A new workspace's own write key, lookup key and identity secret, in place of the
    ones its schema was copied with (settings.WORKSPACE_CREATED_HANDLERS, run in the new
    schema by tenants.template): two workspaces must never share a key."""
    WriteKey.objects.all().delete()
    LookupKey.objects.all().delete()
    IdentitySecret.objects.all().delete()
    WriteKey.objects.create(key=write_key_new())
    LookupKey.objects.create(key=lookup_key_new())
    IdentitySecret.objects.create(secret=identity_secret_new())
