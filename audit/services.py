from __future__ import annotations

from typing import Any

from django.db import connection
from django_tenants.utils import get_public_schema_name

from audit.context import request_meta
from audit.models import AuditEvent
from common.actors import Actor
from tenants.services.team_changes import TeamChange


def audit_record(*, actor: Actor | None, action: str, target=None, target_type: str = "", target_id: Any = "",
                 target_label: str = "", changes: dict | None = None) -> AuditEvent:
    """Append one event to the current tenant's audit log.

    `actor` is a TenantMembership, a User, an ApiKey or None (system). Runs inside the caller's transaction,
    so an action that rolls back leaves no audit line, and one that commits always has one.
    """
    if connection.schema_name == get_public_schema_name():
        raise RuntimeError("audit_record needs a tenant schema")  # a bug, not bad input
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
        target_label = target_label or str(target)[:300]
    kind, actor_id, label = _actor(actor)
    meta = request_meta.get()
    return AuditEvent.objects.create(
        actor_kind=kind, actor_id=actor_id, actor_label=label, action=action,
        target_type=target_type, target_id=str(target_id), target_label=target_label[:300],
        changes=changes or {}, ip=meta.ip if meta else None, user_agent=meta.user_agent if meta else "",
    )


def team_change_record(change: TeamChange) -> AuditEvent:
    """settings.TEAM_CHANGE_HANDLERS: a change to the team, as a line of the log."""
    return audit_record(actor=change.actor, action=change.action, target=change.target, changes=dict(change.changes))


def _actor(actor: Actor) -> tuple[str, int | None, str]:
    if actor is None:
        return AuditEvent.ActorKind.SYSTEM, None, "system"
    if getattr(actor, "is_api_key", False):
        return AuditEvent.ActorKind.API_KEY, actor.pk, f"API key {actor.prefix}…"
    actor = getattr(actor, "user", actor)  # a TenantMembership acts as its user
    return AuditEvent.ActorKind.USER, actor.pk, actor.email
