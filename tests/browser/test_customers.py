"""The customer pages in a real browser: a marketer finds a customer by typing in the
search box (htmx, debounced, URL kept in sync), opens the profile and pages the timeline.
Screenshots of the list and the profile go to .screenshots/.

Runs in a workspace of its own, dropped afterwards (the audit log is append-only)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from customers.feedback import ConsentChangeIn, SurveyAnswerIn, consents_record, survey_answers_record
from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Customer, CustomerMetrics
from tenants.models import Tenant, User
from tenants.services import tenant_create
from tests.browser.test_settings import log_in, workspace_url
from tests.conftest import PASSWORD, make_member

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Linus", "Radia", "Ken", "Frances", "Niklaus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Torvalds", "Perlman", "Thompson"]
COUNTRIES, PLANS = ["GB", "US", "DE", "FR", "NL"], ["free", "pro", "team"]
INDUSTRIES = ["Software", "Retail", "Media", "Finance"]


@pytest.fixture
def workspace(committed_db):
    tag = uuid.uuid4().hex[:8]
    slug = f"cust-{tag}"
    tenant = tenant_create(slug=slug, name="Northwind Analytics", admin_email=f"owner-{tag}@example.test",
                           admin_password=PASSWORD)
    marketer_email = f"marketer-{tag}@example.test"
    make_member(tenant, marketer_email, "marketer")
    with schema_context(tenant.schema_name):
        _customers(timezone.now())
    connection.set_schema_to_public()
    yield tenant, marketer_email
    with schema_context(tenant.schema_name):
        User.objects.filter(memberships__tenant=tenant).delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk=tenant.pk).first().delete(force_drop=False)


def _customers(now) -> None:
    """60 customers (two pages), one of them — Grace Hopper — with 40 events."""
    rng = random.Random(7)
    messages = []
    for i in range(60):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        external_id = "grace-h" if i == 17 else f"cus_{1000 + i}"
        if i == 17:
            first, last = "Grace", "Hopper"
        elif (first, last) == ("Grace", "Hopper"):
            last = "Hoare"  # one Grace Hopper only
        messages.append(Message(
            type="identify", user_id=external_id, timestamp=now - timedelta(days=rng.randint(0, 90)), index=i,
            traits={"email": f"{first}.{last}{i}@example.test".lower(), "name": f"{first} {last}",
                    "country": COUNTRIES[i % 5], "plan": PLANS[i % 3], "company": f"{last} & Co",
                    "industry": INDUSTRIES[i % 4], "company_size": 10 + i, "city": "London",
                    "tech_stack": ["python", "postgres"], "favourite_feature": "segments",
                    "last_seen_at": (now - timedelta(hours=rng.randint(1, 24 * 60))).isoformat(),
                    "signed_up_at": (now - timedelta(days=rng.randint(60, 700))).isoformat()}))
    for j in range(40):
        messages.append(Message(type="track", user_id="grace-h", event=["page_viewed", "project_created",
                                                                      "purchase"][j % 3],
                                timestamp=now - timedelta(hours=5 * j), index=100 + j,
                                properties={"path": f"/projects/{j}", "amount": 20 + j} if j % 3 == 2
                                else {"path": f"/projects/{j}"}))
    result = ingest_messages(messages=messages, source="api", now=now)
    assert not result.problems, result.problems
    grace = Customer.objects.get(external_id="grace-h")
    survey_answers_record(answers=[SurveyAnswerIn(grace.pk, "nps", 10, now - timedelta(days=2),
                                                  comment="The segment builder saves me hours."),
                                   SurveyAnswerIn(grace.pk, "csat", 4, now - timedelta(days=9))])
    consents_record(changes=[ConsentChangeIn(grace.pk, "email", True, now - timedelta(days=60), "signup"),
                             ConsentChangeIn(grace.pk, "email", False, now - timedelta(days=20), "preferences"),
                             ConsentChangeIn(grace.pk, "email", True, now - timedelta(days=3), "win-back"),
                             ConsentChangeIn(grace.pk, "push", False, now - timedelta(days=30), "app")])
    CustomerMetrics.objects.create(customer=grace, recency_days=0.2, frequency=13, monetary=585, r_score=5, f_score=5,
                                   m_score=4, rfm_segment="champions", arpu=195, ltv=3276, engagement_score=0.91,
                                   computed_at=now - timedelta(hours=2))


def test_marketer_searches_opens_a_profile_and_pages_the_timeline(strata_server, page, workspace, screenshot):
    tenant, marketer_email = workspace
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, marketer_email)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()
    table = page.get_by_test_id("customers-table")
    expect(table.locator("tbody tr")).to_have_count(50)
    expect(page.get_by_test_id("result-summary")).to_contain_text("1–50 of 60")
    screenshot("customers-list")

    # The second page, then back, over htmx.
    page.get_by_role("link", name="Next →").click()
    expect(table.locator("tbody tr")).to_have_count(10)
    expect(page).to_have_url(f"{base}/customers/?page=2")

    # Typing searches (debounced) and the address bar follows.
    search = page.get_by_label("Search", exact=True)
    search.fill("grace hop")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("grace.hopper17@example.test")
    expect(page).to_have_url(f"{base}/customers/?q=grace+hop")
    page.get_by_label("Plan").select_option("team")  # grace (i=17) is on plan "team"
    expect(page).to_have_url(f"{base}/customers/?plan=team&q=grace+hop")
    expect(table.locator("tbody tr")).to_have_count(1)
    screenshot("customers-search")

    # Keyboard: tab from the search box reaches the filters; the row link opens the profile.
    page.get_by_role("link", name="Grace Hopper").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("customer-title")).to_have_text("Grace Hopper")
    expect(page).to_have_url(f"{base}/customers/grace-h/")
    expect(page.get_by_test_id("trait-group-firmographic")).to_contain_text("Hopper & Co")
    expect(page.get_by_test_id("metrics")).to_contain_text("Champions")
    expect(page.get_by_test_id("surveys")).to_contain_text("The segment builder saves me hours.")
    expect(page.get_by_test_id("privacy-actions")).to_have_count(0)  # a marketer may not export or delete
    timeline = page.get_by_test_id("timeline")
    expect(timeline.get_by_test_id("timeline-event")).to_have_count(25)
    timeline.get_by_test_id("timeline-event").first.locator("summary").click()
    expect(timeline.locator("pre").first).to_contain_text('"path": "/projects/0"')
    screenshot("customer-profile")

    page.get_by_role("link", name="Load older events").click()
    expect(timeline.get_by_test_id("timeline-event")).to_have_count(40)
    expect(page.get_by_test_id("timeline-start")).to_be_visible()
    expect(page.get_by_role("link", name="Load older events")).to_have_count(0)


def test_admin_anonymises_a_customer_after_typing_the_id(strata_server, page, workspace, screenshot):
    tenant, _ = workspace
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, tenant.memberships.get(role__key="admin").user.email)
    page.goto(f"{base}/customers/grace-h/")
    # Escape closes the dialog and gives focus back to the button that opened it.
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("dialog", name="Delete this customer?")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Delete this customer?")).to_be_hidden()
    expect(page.get_by_role("button", name="Delete")).to_be_focused()

    page.get_by_role("button", name="Anonymise").click()
    dialog = page.get_by_role("dialog", name="Anonymise this customer?")
    expect(dialog).to_be_visible()
    confirm = dialog.get_by_role("button", name="Anonymise for good")
    expect(confirm).to_be_disabled()
    expect(dialog.get_by_label("Type grace-h to confirm")).to_be_focused()
    page.keyboard.type("grace-h")
    expect(confirm).to_be_enabled()
    screenshot("customer-anonymise-dialog")
    confirm.click()
    expect(page.get_by_role("status")).to_contain_text("Customer anonymised. Their new id is anonymised-")
    expect(page.get_by_test_id("customer-title")).not_to_contain_text("Grace")
    with schema_context(tenant.schema_name):
        assert not Customer.objects.filter(external_id="grace-h").exists()
        assert not Customer.objects.filter(email__startswith="grace.hopper").exists()
