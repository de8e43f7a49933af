"""The demo tenant `make run` serves: acme, one user per role, a small generated data set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django_tenants.utils import schema_context

from campaigns import sending
from campaigns.models import Play
from campaigns.services.campaigns import campaign_create, campaign_launch
from customers.metrics_refresh import metrics_refresh
from customers.models import Customer
from demo.generator import generate
from insights.reports.snapshots import engagement_snapshot_take, snapshot_moments
from segments import engine
from segments.models import Segment, SegmentVersion
from segments.services import definition_check
from tenants.models import Department, Tenant, TenantMembership
from tenants.services import membership_set, public_tenant_ensure, tenant_create, user_get_or_create, user_set_password

DEMO_SLUG = "acme"
DEMO_SNAPSHOT_DAYS = 90
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
        # Atomic so an interrupted run leaves no customers without their events.
        with transaction.atomic():
            if not Customer.objects.exists():
                generate(customers=customers, events=events, now=now, seed=7)
                added = (customers, events)
        _demo_metrics_and_segments(tenant, now)
        _demo_plays(tenant, now)
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
    if Segment.objects.exists():
        return
    metrics_refresh(now=now)
    for key, name, definition in DEMO_SEGMENTS:
        refs, _ = definition_check(definition=definition, self_key=key)
        segment = Segment.objects.create(key=key, name=name, definition=definition, definition_version=1,
                                         references=refs, tags=["demo"])
        SegmentVersion.objects.create(segment=segment, version=1, definition=definition, note="Demo segment")
        engine.evaluate(segment_id=segment.pk, now=now, trigger="manual", clock=lambda: now)
    # Engagement's history, as the nightly runs would have taken it (the segments were
    # only just made, so before today it is all customers').
    for moment in snapshot_moments(now=now, days=DEMO_SNAPSHOT_DAYS):
        engagement_snapshot_take(now=moment)


# The activation plan over the demo segments: one play per department that acts, each KPI
# kind a different way; "NPS promoters" is left without a play so the plan flags it.
# (segment key, department, name, tactic type, tactic, KPI, KPI event, target, spend, days running)
DEMO_PLAYS = [
    ("power-builders", "Sales", "Upsell power builders to Team", "sales_outreach",
     "An account executive reaches out within a week with a Team trial.", "lead_to_opportunity",
     "subscription_upgraded", "0.15", None, 60),
    ("at-risk-payers", "Customer Success", "Save at-risk payers", "success_call",
     "A success call and a tailored plan review before renewal.", "churn_rate", "", "0.20", None, 60),
    ("reachable-promoters", "Marketing", "Promoters adopt feature X", "email",
     "A three-step email series showing feature X to people who already love the product.", "feature_adoption",
     "feature_x_used", "0.50", None, 60),
    ("enterprise-prospects", "Sales", "Enterprise look-alike ads", "ad_audience",
     "Hashed-email audience uploaded to ad platforms; landing page with an enterprise demo.", "cac", "",
     "250", "5000", 365),  # a year of spend: CAC counts the prospects who signed up in it
]


def _demo_plays(tenant: Tenant, now: datetime) -> None:
    """Skipped when the workspace already has plays (a rerun changes nothing)."""
    if Play.objects.exists():
        return
    departments = dict(Department.objects.filter(tenant=tenant).values_list("name", "pk"))
    segments = {s.key: s for s in Segment.objects.filter(key__in=[p[0] for p in DEMO_PLAYS])}
    for key, department, name, tactic_type, tactic, kpi, event, target, spend, days in DEMO_PLAYS:
        segment = segments[key]
        Play.objects.create(name=name, segment=segment, segment_label=segment.name,
                            department_id=departments.get(department), tactic=tactic, tactic_type=tactic_type,
                            kpi=kpi, kpi_event=event, target=Decimal(target),
                            spend=Decimal(spend) if spend else None, status=Play.Status.ACTIVE,
                            starts_on=(now - timedelta(days=days)).date())
    _demo_campaign(tenant, now)


def _demo_campaign(tenant: Tenant, now: datetime) -> None:
    """An in-app campaign of the promoters' play, launched three weeks ago with a 20%
    holdout, so its results page has real (and, the generator planting no effect, honestly
    insignificant) numbers. Through the services, as the demo admin."""
    admin = TenantMembership.objects.get(tenant=tenant, user__email=DEMO_USERS[0][0])
    play = Play.objects.get(segment__key="reachable-promoters")
    launched = now - timedelta(days=21)
    campaign = campaign_create(
        actor=admin, name="Feature X tips for promoters", segment_id=play.segment_id, play_id=play.pk,
        channel="in_app", schedule={"kind": "on_entry"}, holdout_percent=20, goal_event="feature_x_used", goal_days=7,
        content={"title": "Have you tried feature X?", "body": "Hi {{ first_name|default:\"there\" }}, feature X "
                 "turns your projects into shareable reports in one click.", "cta_label": "Show me",
                 "cta_url": "https://acme.example/features/x"})
    campaign_launch(actor=admin, campaign=campaign, now=launched)
    sending.assign_members(campaign=campaign, now=launched)
