"""Management commands over the services: tenant_create, seed_demo, dev_up."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from customers.models import Customer, Event
from demo.seed import DEMO_USERS
from tenants.models import Tenant, TenantMembership, User


def test_tenant_create_command_prints_where_the_tenant_lives(db):
    out = StringIO()
    call_command("tenant_create", slug="cmd-co", name="Cmd Co", admin_email="a@cmd.test",
                 admin_password="x" * 12, stdout=out)
    assert "created cmd-co (schema t_cmd_co)" in out.getvalue()
    assert "http://cmd-co.localhost/" in out.getvalue()


def test_tenant_create_command_reports_every_problem(db):
    with pytest.raises(CommandError) as caught:
        call_command("tenant_create", slug="API", name="", admin_email="nope", admin_password="")
    message = str(caught.value)
    assert "[uppercase]" in message and "[required]" in message and "[invalid_email]" in message


def test_seed_demo_is_idempotent_and_resets_passwords(db, settings):
    settings.DEMO_PASSWORD = "first-password"
    call_command("seed_demo", customers=40, events=400, stdout=StringIO())
    settings.DEMO_PASSWORD = "second-password"
    out = StringIO()
    call_command("seed_demo", customers=40, events=400, stdout=out)

    acme = Tenant.objects.get(slug="acme")
    assert "demo tenant acme ready" in out.getvalue()
    roles = dict(TenantMembership.objects.filter(tenant=acme).values_list("user__email", "role__key"))
    assert roles == {email: role for email, role, _ in DEMO_USERS}
    assert TenantMembership.objects.get(tenant=acme, user__email="marketer@acme.test").department.name == "Marketing"
    for email, _, _ in DEMO_USERS:
        assert User.objects.get(email=email).check_password("second-password")
    with schema_context(acme.schema_name):
        assert Customer.objects.count() == 40  # not doubled by the second run
        assert Event.objects.count() == 400
        # The demo has metrics and evaluated segments, once.
        from customers.models import MetricsSummary
        from campaigns.models import Play
        from segments.models import Segment

        assert MetricsSummary.objects.count() == 1
        segments = Segment.objects.all()
        assert segments.count() == 5 and all(s.last_evaluated_at for s in segments)
        assert Segment.objects.get(key="reachable-promoters").references == ["nps-promoters"]
        # …and an activation plan over them, once, that leaves one segment to flag.
        from campaigns.plays.plan import segments_without_play

        assert Play.objects.count() == 4
        assert [s.key for s in segments_without_play()] == ["nps-promoters"]
        # Engagement's history for the KPI trends: a snapshot of all customers a day.
        from demo.seed import DEMO_SNAPSHOT_DAYS
        from insights.models import EngagementSnapshot

        assert EngagementSnapshot.objects.filter(segment=None).count() == DEMO_SNAPSHOT_DAYS
        from campaigns.models import Assignment, Campaign

        campaign = Campaign.objects.get()
        assert campaign.status == "running" and campaign.play.segment.key == "reachable-promoters"
        assert Assignment.objects.filter(campaign=campaign).count() == campaign.segment.size


def test_dev_up_prepares_and_prints_the_logins(db, settings):
    out = StringIO()
    call_command("dev_up", no_serve=True, stdout=out)
    text = out.getvalue()
    assert "http://acme.localhost:8000" in text
    for email, _, _ in DEMO_USERS:
        assert email in text
    assert connection.schema_name == "public"
