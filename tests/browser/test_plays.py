"""The activation plan in a real browser: a segment nobody acts on is flagged, an admin
plans a play for it (the KPI inputs follow the KPI chosen), sees its KPI computed from the
data, and reads the department's page with its chart."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from segments import engine
from segments.models import Segment
from tests.browser.test_settings import log_in, workspace, workspace_url  # noqa: F401  (fixture)


def _seed(tenant) -> None:
    """Ten trialists in a static segment; four of them used exports last week."""
    now = timezone.now()
    messages = [Message(type="identify", user_id=f"t-{i}", traits={"plan": "trial"}, timestamp=now - timedelta(days=20),
                        message_id=f"id-{i}", index=i, path="") for i in range(10)]
    messages += [Message(type="track", user_id=f"t-{i}", event="export_used", timestamp=now - timedelta(days=5),
                         message_id=f"ex-{i}", index=10 + i, path="") for i in range(4)]
    connection.set_tenant(tenant)
    ingest_messages(messages=messages, source="test", now=now)
    from customers.models import Customer

    segment = Segment.objects.create(key="trialists", name="Trialists", kind="static")
    engine.members_add(segment=segment, customer_ids=list(Customer.objects.values_list("pk", flat=True)),
                       now=now - timedelta(days=15))
    connection.set_schema_to_public()


def test_an_admin_plans_a_play_for_a_flagged_segment_and_reads_its_kpi(strata_server, page, workspace,  # noqa: F811
                                                                       screenshot):
    tenant, admin_email, _ = workspace
    _seed(tenant)
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)
    page.get_by_test_id("main-nav").get_by_role("link", name="Plays").click()
    expect(page.get_by_role("heading", name="Activation plan")).to_be_visible()
    flagged = page.get_by_test_id("unplanned-segments")
    expect(flagged).to_contain_text("Trialists")
    screenshot("plays-plan-empty")

    flagged.get_by_role("link", name="Plan a play").click()
    expect(page.get_by_role("heading", name="New play")).to_be_visible()
    expect(page.get_by_label("Segment")).to_have_value(_segment_pk(tenant))  # prefilled from the flag
    page.get_by_label("Name").fill("Adopt exports")
    page.get_by_label("Owning department").select_option(label="Product")
    page.get_by_label("Type").select_option(label="In-app message")
    expect(page.get_by_label("Spend")).to_be_hidden()
    page.get_by_label("KPI", exact=True).select_option(label="Feature adoption rate")
    expect(page.get_by_label("Within (days)")).to_be_hidden()
    page.get_by_label("KPI event").fill("export_used")
    page.get_by_label("Target (%, at least)").fill("150")
    page.get_by_test_id("save-play").click()
    expect(page.get_by_text("A rate target is a percentage from 0 to 100.")).to_be_visible()
    screenshot("plays-form-error")

    page.get_by_label("Target (%, at least)").fill("30")
    page.get_by_test_id("save-play").click()
    expect(page.get_by_test_id("play-title")).to_have_text("Adopt exports")
    expect(page.get_by_test_id("kpi-actual")).to_have_text("40.0%")  # 4 of 10 members in the window
    expect(page.get_by_test_id("kpi-verdict")).to_have_text("On target")
    expect(page.get_by_test_id("kpi-basis")).to_contain_text("4 of 10")
    expect(page.locator("[data-testid=kpi-trend] svg")).to_have_count(1)
    screenshot("plays-detail")

    page.get_by_role("link", name="Product").first.click()
    expect(page.get_by_test_id("department-title")).to_have_text("Product")
    expect(page.locator("[data-testid=progress-chart] svg")).to_have_count(1)
    expect(page.get_by_test_id("play-row")).to_have_count(1)
    screenshot("plays-department")


def _segment_pk(tenant) -> str:
    connection.set_tenant(tenant)
    pk = Segment.objects.get(key="trialists").pk
    connection.set_schema_to_public()
    return str(pk)
