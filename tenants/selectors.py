from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from common.actors import Actor
from common.errors import Problem, TenantCode
from tenants.models import Department, Tenant, TenantMembership, User


def membership_for(*, user: User, tenant: Tenant) -> TenantMembership | None:
    return (TenantMembership.objects.select_related("role", "department", "user")
            .filter(user=user, tenant=tenant).first())


def memberships_of(*, user: User) -> QuerySet[TenantMembership]:
    return (
        TenantMembership.objects.filter(user=user, tenant__status=Tenant.Status.ACTIVE)
        .select_related("tenant")
        .order_by("tenant__name")
    )


def tenants_active() -> QuerySet[Tenant]:
    return Tenant.objects.exclude(schema_name=get_public_schema_name()).filter(
        status=Tenant.Status.ACTIVE
    )


def tenant_url(tenant: Tenant, path: str = "/") -> str:
    """Absolute URL of a page on the tenant's subdomain (adds the dev port when set)."""
    domain = tenant.get_primary_domain().domain
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
    return f"{settings.PUBLIC_SCHEME}://{domain}{port}{path}"


def public_url(path: str = "/") -> str:
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
    return f"{settings.PUBLIC_SCHEME}://{settings.BASE_DOMAIN}{port}{path}"


def department_problems(actor: Actor, department_id: Any, *, path: str = "department_id") -> list[Problem]:
    """A department named by id must be one of the actor's workspace (department ids are
    global, in the public schema)."""
    if department_id is None:
        return []
    if (isinstance(department_id, bool) or not isinstance(department_id, int)
            or not Department.objects.filter(pk=department_id, tenant_id=getattr(actor, "tenant_id", None)).exists()):
        return [Problem(path, TenantCode.UNKNOWN_DEPARTMENT, "No such department in this workspace.")]
    return []
