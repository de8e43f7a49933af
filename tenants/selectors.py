from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from tenants.models import Tenant, TenantMembership, User


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
    from django_tenants.utils import get_public_schema_name

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
