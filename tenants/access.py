"""Who may do what: the one place that answers it for views, the API and services."""

from __future__ import annotations

from typing import Protocol

from config.errors import DomainError


class Actor(Protocol):
    """A member (TenantMembership) or an API key acting in one tenant."""

    def has(self, permission: str) -> bool: ...


def ensure_permitted(actor: Actor | None, permission: str) -> None:
    if actor is None or not actor.has(permission):
        raise DomainError.single(
            path="", code="permission_denied", status=403,
            message=f"This needs the “{permission}” permission.",
        )


def ensure_same_tenant(actor, *objects) -> None:
    """Objects named by id in a request must belong to the actor's tenant: else 404,
    so ids from another tenant reveal nothing."""
    for obj in objects:
        if obj is not None and obj.tenant_id != actor.tenant_id:
            raise DomainError.single(path="", code="not_found", message="Not found.", status=404)
