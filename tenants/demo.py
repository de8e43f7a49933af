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
        _demo_metrics_and_segments(tenant, now)
    return DemoResult(tenant=tenant, created=created, customers_added=added[0], events_added=added[1])


# Segments a marketer would start from, over the generator's personas; each shows a
# different part of the rule language.
DEMO_SEGMENTS = [
    ("power-builders", "Power builders", {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "feature_x_used", "count": {"op": "gte", "value": 5}, "window": {"last": "30d"}},
        {"type": "trait", "field": "plan", "op": "in", "value": ["pro", "team"]}]}),
    ("at-risk-payers", "At-risk payers", {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "purchase", "count": {"op": "gte", "value": 1}},
        {"match": "any", "conditions": [
            {"type": "metric", "metric": "rfm_segment", "op": "in", "value": ["at_risk", "cannot_lose", "about_to_sleep"]},
            {"type": "event", "event": "login", "last_occurred": {"op": "more_than_ago", "value": "14d"}}]}]}),
    ("nps-promoters", "NPS promoters", {"version": 1, "match": "all", "conditions": [
        {"type": "survey", "survey": "nps", "measure": "latest", "op": "gte", "value": 9}]}),
    ("enterprise-prospects", "Enterprise prospects", {"version": 1, "match": "all", "conditions": [
        {"type": "trait", "field": "company_size", "op": "gte", "value": 500},
        {"type": "trait", "field": "plan", "op": "eq", "value": "enterprise", "negate": True}]}),
    ("reachable-promoters", "Promoters we may email", {"version": 1, "match": "all", "conditions": [
        {"type": "segment", "segment": "nps-promoters", "op": "in"},
        {"type": "consent", "channel": "email", "granted": True}]}),
]


def _demo_metrics_and_segments(tenant: Tenant, now: datetime) -> None:
    """Metrics computed and the demo segments evaluated, so the first page has content.
    Skipped when the workspace already has segments (a rerun changes nothing)."""
    from customers.metrics_refresh import metrics_refresh
    from segments import engine
    from segments.models import Segment, SegmentVersion
    from segments.services import definition_check

    if Segment.objects.exists():
        return
    metrics_refresh(now=now)
    for key, name, definition in DEMO_SEGMENTS:
        refs, _ = definition_check(definition=definition, self_key=key)
        segment = Segment.objects.create(key=key, name=name, definition=definition, definition_version=1,
                                         references=refs, tags=["demo"])
        SegmentVersion.objects.create(segment=segment, version=1, definition=definition, note="Demo segment")
        engine.evaluate(segment_id=segment.pk, now=now, trigger="manual", clock=lambda: now)
