"""The demo tenant `make run` serves: acme, one user per role, a small generated data set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django_tenants.utils import schema_context

from tenants.models import Department, Tenant
from tenants.services import membership_set, public_tenant_ensure, tenant_create, user_get_or_create, user_set_password

DEMO_SLUG = "acme"
# (email, built-in role key, department)
DEMO_USERS = [
    ("admin@acme.test", "admin", None),
    ("marketer@acme.test", "marketer", "Marketing"),
    ("analyst@acme.test", "analyst", "Product"),
    ("viewer@acme.test", "viewer", "Customer Success"),
]


@dataclass(frozen=True)
class DemoResult:
    tenant: Tenant
    created: bool
    customers_added: int
    events_added: int


def demo_seed(*, password: str, now: datetime, customers: int = 500, events: int = 15_000) -> DemoResult:
    """Idempotent: a rerun (also after an interrupted one) completes what is missing and
    resets the demo passwords, without duplicating users or data."""
    public_tenant_ensure()
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    created = tenant is None
    if created:
        tenant = tenant_create(slug=DEMO_SLUG, name="Acme Inc.", admin_email=DEMO_USERS[0][0], admin_password=password)
    for email, role, department in DEMO_USERS:
        user = user_get_or_create(email=email, full_name=email.split("@")[0].title())
        user_set_password(user=user, password=password)
        team = Department.objects.filter(tenant=tenant, name=department).first() if department else None
        membership_set(user=user, tenant=tenant, role=role, department=team)
    added = (0, 0)
    with schema_context(tenant.schema_name):
        from customers.generator import generate
        from customers.models import Customer

        # Atomic so an interrupted run leaves no customers without their events.
        with transaction.atomic():
            if not Customer.objects.exists():
                generate(customers=customers, events=events, now=now, seed=7)
                added = (customers, events)
    return DemoResult(tenant=tenant, created=created, customers_added=added[0], events_added=added[1])
