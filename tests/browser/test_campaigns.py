"""The campaign journey in a real browser: a marketer opens Campaigns from the nav, writes
a campaign with a mistake (shown at its field, nothing saved), fixes it, previews it for a
member of the segment, saves and launches it; a real worker sends it; conversions arrive;
an analyst reads the results. Screenshots go to .screenshots/.

Runs in a workspace of its own, dropped afterwards (the audit log is append-only)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from campaigns.models import Assignment, Campaign, Send
from customers.feedback import ConsentChangeIn, consents_record
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Customer, Event
from segments import engine
from segments.models import Segment
from tenants.models import Tenant, User
from tenants.services import tenant_create
from tests.browser.test_settings import log_in, workspace_url
from tests.campaigns.conftest import loopback_server  # noqa: F401  (a fixture)
from tests.conftest import PASSWORD, make_member

PEOPLE = 40


@pytest.fixture
def workspace(committed_db):
    tag = uuid.uuid4().hex[:8]
    tenant = tenant_create(slug=f"camp-{tag}", name="Northwind Analytics", admin_email=f"owner-{tag}@example.test",
                           admin_password=PASSWORD)
    marketer, analyst = f"marketer-{tag}@example.test", f"analyst-{tag}@example.test"
    make_member(tenant, marketer, "marketer")
    make_member(tenant, analyst, "analyst")
    now = timezone.now()
    with schema_context(tenant.schema_name):
        messages = [Message(type="identify", user_id=f"cus_{100 + i}", timestamp=now - timedelta(days=10), index=i,
                            traits={"email": f"person{i}@example.test", "name": f"Person{i} Example", "plan": "trial"})
                    for i in range(PEOPLE)]
        result = ingest_messages(messages=messages, source="api", now=now)
        assert not result.problems, result.problems
        customers = list(Customer.objects.order_by("external_id"))
        consents_record(changes=[ConsentChangeIn(customer_id=c.pk, channel="email", granted=True,
                                                 changed_at=now - timedelta(days=9), source="test") for c in customers])
        segment = Segment.objects.create(key="trials", name="Trials", kind="static")
        engine.members_add(segment=segment, customer_ids=[c.pk for c in customers], now=now - timedelta(days=1))
    connection.set_schema_to_public()
    yield tenant, marketer, analyst
    with schema_context(tenant.schema_name):
        User.objects.filter(memberships__tenant=tenant).delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk=tenant.pk).first().delete(force_drop=False)


def test_marketer_creates_previews_and_launches_a_campaign_then_an_analyst_reads_its_results(
        strata_server, page, workspace, screenshot, celery_worker):
    tenant, marketer, analyst = workspace
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, marketer)

    page.get_by_test_id("main-nav").get_by_role("link", name="Campaigns").click()
    expect(page.get_by_test_id("campaigns-empty")).to_contain_text("No campaigns yet.")
    screenshot("campaigns-list-empty")
    page.get_by_test_id("new-campaign").click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Trial to Pro")
    page.get_by_label("Segment", exact=True).select_option(label="Trials (40)")
    # A one-off in the past goes at the next tick, right after launch.
    page.get_by_label("Send at (UTC)").fill((timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Subject").first.fill("{{ first_name }}, your trial ends soon {{ plan|shout }}")
    page.get_by_label("Body", exact=True).first.fill("Hello {{ first_name }},\n\nUpgrade to Pro and keep your projects.")
    page.get_by_label("Holdout %").fill("50")
    page.get_by_label("Event", exact=True).fill("upgraded")
    page.get_by_test_id("segmented-vs-generic").click()
    expect(page.locator("#v1-key")).to_have_value("generic")

    page.get_by_test_id("save-campaign").click()
    error = page.locator('[data-testid="field-error"][data-path="content.subject"]')
    expect(error).to_contain_text("template_syntax")
    expect(page.get_by_test_id("form-problems")).to_contain_text("Nothing was saved")
    screenshot("campaigns-editor-errors")
    with schema_context(tenant.schema_name):
        assert not Campaign.objects.exists()

    page.get_by_label("Subject").first.fill("{{ first_name }}, your trial ends soon")
    page.get_by_test_id("preview-button").click()
    preview = page.get_by_test_id("preview")
    expect(preview.get_by_test_id("preview-subject")).to_have_text("Person0, your trial ends soon")
    preview.get_by_test_id("preview-customer").select_option(label="cus_103 · Person3 Example")
    expect(preview.get_by_test_id("preview-subject")).to_have_text("Person3, your trial ends soon")
    expect(preview.get_by_test_id("preview-body")).to_contain_text("Upgrade to Pro")
    page.get_by_label("Variant", exact=True).select_option("generic")
    expect(preview.get_by_test_id("preview-subject")).to_have_text("News from us")
    screenshot("campaigns-editor-preview")

    page.get_by_test_id("save-campaign").click()
    expect(page.get_by_test_id("campaign-title")).to_have_text("Trial to Pro")
    expect(page.get_by_test_id("status-badge")).to_have_text("Draft")
    page.get_by_test_id("launch").click()
    expect(page.get_by_role("status").filter(has_text="Launched")).to_be_visible()
    expect(page.get_by_test_id("history")).to_contain_text("Launched")
    screenshot("campaigns-detail")

    # The worker sends at the tick the launch enqueued: 50% held out, the rest sent.
    with schema_context(tenant.schema_name):
        campaign = Campaign.objects.get()
        assert _wait_for_sends(page, campaign), "the worker sent nothing"
        treated = list(Assignment.objects.filter(campaign=campaign, group="treatment").values_list("customer_id", flat=True))
        held = list(Assignment.objects.filter(campaign=campaign, group="holdout").values_list("customer_id", flat=True))
        assert len(treated) + len(held) == PEOPLE and held
        at = timezone.now()
        Event.objects.bulk_create([Event(customer_id=c, name="upgraded", timestamp=at)
                                   for c in treated[:len(treated) // 2] + held[:1]])
    connection.set_schema_to_public()

    page.get_by_role("button", name="Log out").click()
    log_in(page, base, analyst)
    page.goto(f"{base}/campaigns/")
    expect(page.get_by_test_id("campaign-row")).to_have_count(1)
    expect(page.get_by_test_id("new-campaign")).to_have_count(0)
    screenshot("campaigns-list")
    page.get_by_role("link", name="Trial to Pro").click()
    expect(page.get_by_test_id("launch")).to_have_count(0)
    page.get_by_test_id("results-link").click()
    expect(page.get_by_test_id("results-title")).to_be_visible()
    expect(page.get_by_test_id("verdict-title")).not_to_have_text("No results yet")
    expect(page.get_by_test_id("arm-row")).to_have_count(4)  # holdout, treatment, two variants
    expect(page.get_by_test_id("lift-chart").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("send-row").first).to_be_visible()
    screenshot("campaigns-results")


def _wait_for_sends(page, campaign, attempts: int = 40) -> bool:
    for _ in range(attempts):
        if Send.objects.filter(campaign=campaign, status="sent").exists():
            return True
        page.wait_for_timeout(500)
    return False


def test_marketer_adds_a_webhook_destination_sees_its_secret_once_and_sends_a_test(
        strata_server, page, workspace, screenshot, settings, loopback_server):
    """The SSRF guard's refusal shows at the URL field; a good URL shows the secret once;
    "Send test" posts a signed message to the receiver and shows its answer."""
    settings.WEBHOOKS_ALLOW_LOOPBACK = True  # the live server runs in this process
    tenant, marketer, _ = workspace
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, marketer)
    page.goto(f"{base}/campaigns/")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_test_id("webhooks-empty")).to_be_visible()
    page.get_by_test_id("new-webhook").click()
    page.get_by_label("URL").fill("http://169.254.169.254/latest/meta-data")
    page.get_by_label("Segment", exact=True).select_option(label="Trials")
    page.get_by_test_id("create-webhook").click()
    expect(page.locator('[data-testid="field-error"][data-path="url"]')).to_contain_text("unsafe_address")
    screenshot("campaigns-webhook-refused")

    page.get_by_label("URL").fill(f"{loopback_server.url}/strata")
    page.get_by_test_id("create-webhook").click()
    secret = page.get_by_test_id("webhook-secret")
    expect(secret).to_have_value(re.compile(r"^whsec_"))
    shown = secret.input_value()
    screenshot("campaigns-webhook-created")
    page.get_by_test_id("webhook-continue").click()
    expect(page.get_by_test_id("webhook-url")).to_contain_text("/strata")
    assert shown not in page.content()
    page.get_by_test_id("send-test").click()
    expect(page.get_by_test_id("webhook-test-result")).to_contain_text("HTTP 200")
    assert loopback_server.requests[-1]["headers"]["webhook-signature"].startswith("v1,")
    screenshot("campaigns-webhook-detail")
