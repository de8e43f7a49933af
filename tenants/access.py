"""Who may do what: the one place that answers it for views, the API and services."""

from __future__ import annotations

from typing import Any, Protocol

from common.errors import Forbidden, NotFound, Problem
from tenants.models import Department


class Actor(Protocol):
    """A member (TenantMembership) or an API key acting in one tenant."""

    def has(self, permission: str) -> bool: ...


def ensure_permitted(actor: Actor | None, permission: str) -> None:
    if actor is None or not actor.has(permission):
        raise Forbidden.single(
            path="", code="permission_denied",
            message=f"This needs the “{permission}” permission.",
        )


def ensure_same_tenant(actor, *objects) -> None:
    """Objects named by id in a request must belong to the actor's tenant: else 404,
    so ids from another tenant reveal nothing."""
    for obj in objects:
        if obj is not None and obj.tenant_id != actor.tenant_id:
            raise NotFound.single(path="", code="not_found", message="Not found.")


def department_problems(actor, department_id: Any, *, path: str = "department_id") -> list[Problem]:
    """A department named by id must be one of the actor's workspace (department ids are
    global, in the public schema)."""
    if department_id is None:
        return []
    if (isinstance(department_id, bool) or not isinstance(department_id, int)
            or not Department.objects.filter(pk=department_id, tenant_id=getattr(actor, "tenant_id", None)).exists()):
        return [Problem(path, "unknown_department", "No such department in this workspace.")]
    return []
