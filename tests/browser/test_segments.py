"""The segment journey in a real browser: a marketer builds a segment with a trait and a
nested ANY group holding an event count in a window, watches the live count change, saves
it (a real worker evaluates it), sees its members, opens "why?", edits it to version 2 and
reads the diff; a viewer then finds no edit controls. Screenshots go to .screenshots/.

Runs in a workspace of its own, dropped afterwards (the audit log is append-only)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from tenants.models import Tenant, User
from tenants.services import tenant_create
from tests.browser.test_settings import log_in, workspace_url
from tests.conftest import PASSWORD, make_member

PLANS = ["pro", "free", "team"]
COUNTRIES = ["DE", "FR", "GB"]


@pytest.fixture
def workspace(committed_db):
    tag = uuid.uuid4().hex[:8]
    tenant = tenant_create(slug=f"seg-{tag}", name="Northwind Analytics", admin_email=f"owner-{tag}@example.test",
                           admin_password=PASSWORD)
    marketer, viewer = f"marketer-{tag}@example.test", f"viewer-{tag}@example.test"
    make_member(tenant, marketer, "marketer")
    make_member(tenant, viewer, "viewer")
    now = timezone.now()
    with schema_context(tenant.schema_name):
        messages = []
        for i in range(30):
            messages.append(Message(type="identify", user_id=f"cus_{100 + i}", timestamp=now - timedelta(days=40), index=i,
                                    traits={"email": f"person{i}@example.test", "name": f"Person {i}",
                                            "plan": PLANS[i % 3], "country": COUNTRIES[(i // 3) % 3]}))
            # Customer i logged in i % 6 times over the last three weeks.
            for j in range(i % 6):
                messages.append(Message(type="track", user_id=f"cus_{100 + i}", event="login",
                                        timestamp=now - timedelta(days=1 + 3 * j), index=1000 + i * 10 + j))
        result = ingest_messages(messages=messages, source="api", now=now)
        assert not result.problems, result.problems
    connection.set_schema_to_public()
    yield tenant, marketer, viewer
    with schema_context(tenant.schema_name):
        User.objects.filter(memberships__tenant=tenant).delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk=tenant.pk).first().delete(force_drop=False)


def test_marketer_builds_a_segment_sees_members_and_why_then_edits_it(strata_server, page, workspace, screenshot,
                                                                       celery_worker):
    tenant, marketer, viewer = workspace
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, marketer)

    page.get_by_test_id("main-nav").get_by_role("link", name="Segments").click()
    expect(page.get_by_test_id("segments-empty")).to_contain_text("No segments yet.")
    screenshot("segments-list-empty")
    page.get_by_test_id("new-segment").click()
    expect(page.get_by_role("heading", name="New segment")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Active pros")
    expect(page.get_by_label("Key")).to_have_value("active-pros")

    # 1. A trait condition: plan is pro (10 of the 30).
    tree = page.get_by_test_id("rule-tree")
    tree.get_by_test_id("add-condition").first.click()
    tree.get_by_test_id("add-trait").first.click()
    trait = tree.get_by_test_id("rule-condition").nth(0)
    trait.get_by_test_id("trait-field").select_option("plan")
    trait.get_by_test_id("cmp-value").fill("pro")
    expect(page.get_by_test_id("preview-count")).to_have_text("10")

    # 2. A nested ANY group: logged in at least 3 times in the last 14 days, or from DE.
    tree.get_by_test_id("add-group").first.click()
    group = tree.get_by_test_id("rule-group").nth(1)
    expect(group.get_by_test_id("group-match")).to_have_value("any")
    inner = group.get_by_test_id("rule-condition").first
    inner.get_by_label("Condition type").select_option("event")
    inner.get_by_test_id("event-name").fill("login")
    inner.get_by_test_id("event-name").press("Tab")
    inner.get_by_label("Operator").select_option("gte")
    inner.get_by_test_id("cmp-value").fill("3")
    inner.get_by_test_id("window-amount").fill("14")
    group.get_by_test_id("add-condition").click()
    group.get_by_test_id("add-trait").click()
    country = group.get_by_test_id("rule-condition").nth(1)
    country.get_by_test_id("trait-field").select_option("country")
    country.get_by_test_id("cmp-value").fill("DE")
    # Pros who logged in 3+ times in 14 days (cus_103, 109, 115, 121, 127) or are from DE
    # (cus_100, 109, 118, 127): seven.
    expect(page.get_by_test_id("preview-count")).to_have_text("7")
    narrowed = 7
    screenshot("segments-builder")

    page.get_by_label("Version note").fill("First cut")
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("segment-title")).to_have_text("Active pros")
    assert _reload_until_members(page)
    assert page.get_by_test_id("member-row").count() == narrowed
    screenshot("segments-detail")

    page.get_by_test_id("why-button").first.click()
    panel = page.get_by_test_id("why-panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_test_id("explain-result")).to_have_text("matches")
    expect(panel.locator('[data-testid="explain-node"][data-result="true"]').first).to_be_visible()
    screenshot("segments-why")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    # Version 2: pro or team.
    page.get_by_test_id("edit-segment").click()
    trait = page.get_by_test_id("rule-tree").get_by_test_id("rule-condition").nth(0)
    trait.get_by_label("Operator").select_option("in")
    trait.get_by_test_id("cmp-list-input").fill("team")
    trait.get_by_test_id("cmp-list-input").press("Enter")
    expect(trait.get_by_test_id("chip")).to_have_count(2)
    expect(page.get_by_test_id("preview-impact")).to_contain_text("Would enter")
    page.get_by_label("Version note").fill("Teams too")
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_role("status").filter(has_text="version 2")).to_be_visible()
    page.get_by_test_id("compare-2").click()
    diff = page.get_by_test_id("diff")
    expect(diff.locator('[data-kind="add"]').first).to_be_visible()
    expect(diff).to_contain_text('"team"')
    screenshot("segments-diff")

    page.get_by_test_id("main-nav").get_by_role("link", name="Segments").click()
    expect(page.get_by_test_id("segment-row")).to_have_count(1)
    screenshot("segments-list")

    # A viewer finds no edit controls.
    page.get_by_role("button", name="Log out").click()
    log_in(page, base, viewer)
    page.goto(f"{base}/segments/")
    expect(page.get_by_test_id("segment-row")).to_have_count(1)
    expect(page.get_by_test_id("new-segment")).to_have_count(0)
    page.get_by_role("link", name="Active pros").click()
    expect(page.get_by_test_id("segment-title")).to_be_visible()
    expect(page.get_by_test_id("segment-actions")).to_have_count(0)
    expect(page.get_by_test_id("edit-segment")).to_have_count(0)
    expect(page.get_by_role("button", name="Evaluate now")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    assert not re.search(r"person\d+@example\.test", page.content())  # masked for viewers
    screenshot("segments-detail-viewer")
    assert page.goto(f"{base}/segments/new/").status == 403


def _reload_until_members(page, attempts: int = 20) -> bool:
    """The worker evaluates the saved segment right after the save commits (the page may
    load between its statements: wait for the header's size too)."""
    for _ in range(attempts):
        if page.get_by_test_id("member-row").count() and page.get_by_test_id("segment-size").inner_text() != "0":
            return True
        page.wait_for_timeout(500)
        page.reload()
    return False


def _weekend_share(stamps, hours=(0, 24), threshold=0.8) -> bool:
    """The contract's share, for customers without a time zone (UTC)."""
    kept = sum(1 for t in stamps if t.isoweekday() in (6, 7) and hours[0] <= t.hour < hours[1])
    return bool(stamps) and kept / len(stamps) >= threshold


def test_marketer_builds_a_weekend_share_and_an_anniversary_with_the_builders_controls(
        strata_server, page, workspace, screenshot):
    """Any event, the weekday toggles, the hour band and the share measure build the
    contract's "mostly active at weekends" definition; its preview counts who the server
    selects; the anniversary operator takes whole days or weeks only."""
    tenant, marketer, _ = workspace
    now = timezone.now()
    last_saturday = (now - timedelta(days=(now.isoweekday() - 6) % 7 or 7)).replace(hour=12, minute=0, second=0,
                                                                                         microsecond=0)
    with schema_context(tenant.schema_name):
        # Three weekend people: every event on a Saturday or Sunday.
        messages = [Message(type="track", user_id=f"weekender_{i}", event=name, index=5000 + i * 10 + k,
                            timestamp=last_saturday - timedelta(days=7 * k) + timedelta(days=k % 2))
                    for i in range(3) for k, name in enumerate(["login", "project_created", "login"])]
        assert not ingest_messages(messages=messages, source="api", now=now).problems
        from customers.models import Customer
        stamps = {c.pk: [e.timestamp for e in c.events.filter(timestamp__gte=now - timedelta(days=90))]
                  for c in Customer.objects.prefetch_related("events")}
        expected = sum(1 for s in stamps.values() if _weekend_share(s))
        banded = sum(1 for s in stamps.values() if _weekend_share(s, hours=(6, 22)))
    connection.set_schema_to_public()
    assert expected >= 3

    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, marketer)
    page.goto(f"{base}/segments/new/")
    page.get_by_label("Name", exact=True).fill("Weekend people")
    tree = page.get_by_test_id("rule-tree")
    tree.get_by_test_id("add-condition").first.click()
    tree.get_by_test_id("add-event").first.click()
    event = tree.get_by_test_id("rule-condition").nth(0)
    event.get_by_test_id("event-name").fill("*")
    event.get_by_test_id("event-name").press("Tab")
    expect(event).to_contain_text("Any event: events of every name count.")
    event.get_by_test_id("event-measure").select_option("share")
    # Choosing the share turns time of week on (Saturday and Sunday by default).
    expect(event.get_by_test_id("when-toggle")).to_be_checked()
    expect(event.get_by_test_id("when-day-6")).to_have_attribute("aria-pressed", "true")
    event.get_by_test_id("window-amount").fill("90")
    expect(page.get_by_test_id("preview-count")).to_have_text(str(expected))
    # Friday too, then back: the count follows the server each time.
    event.get_by_test_id("when-day-5").click()
    expect(event.get_by_test_id("when-day-5")).to_have_attribute("aria-pressed", "true")
    event.get_by_test_id("when-day-5").click()
    event.get_by_test_id("when-hours-toggle").check()
    event.get_by_test_id("when-hour-start").select_option("6")
    event.get_by_test_id("when-hour-end").select_option("22")
    expect(page.get_by_test_id("preview-count")).to_have_text(str(banded))
    screenshot("segments-builder-weekend-share")

    page.get_by_test_id("json-toggle").click()
    assert json.loads(page.locator("#json-text").input_value())["conditions"] == [{
        "type": "event", "event": "*", "window": {"last": "90d"}, "when": {"days": [6, 7], "hours": [6, 22]},
        "share": {"op": "gte", "value": 0.8}}]
    page.get_by_test_id("json-toggle").click()

    # Turning time of week off takes the share with it (a share needs `when`).
    event.get_by_test_id("when-toggle").uncheck()
    expect(event.get_by_test_id("event-measure")).to_have_value("count")

    # An anniversary: whole days or weeks.
    tree.get_by_test_id("add-condition").first.click()
    tree.get_by_test_id("add-trait").first.click()
    trait = tree.get_by_test_id("rule-condition").nth(1)
    trait.get_by_test_id("trait-field").select_option("signed_up_at")
    trait.get_by_label("Operator").select_option("anniversary_within")
    expect(trait.get_by_test_id("cmp-days")).to_have_value("7")
    expect(trait.get_by_label("Unit")).to_contain_text("weeks")
    expect(trait.get_by_label("Unit")).not_to_contain_text("hours")
    trait.get_by_label("Unit").select_option("w")
    page.get_by_test_id("json-toggle").click()
    assert json.loads(page.locator("#json-text").input_value())["conditions"][1] == {
        "type": "trait", "field": "signed_up_at", "op": "anniversary_within", "value": "7w"}


def test_the_builder_shows_an_estimate_then_the_exact_count(strata_server, page, workspace, screenshot, monkeypatch):
    """With a sample smaller than the workspace the first answer is an estimate with its
    margin; the exact count replaces it when it arrives (held here until the estimate was
    seen, so the test does not race the server)."""
    from segments.selectors import preview as preview_module

    tenant, marketer, _ = workspace
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")  # the sample's size reads pg_class
    connection.set_schema_to_public()
    monkeypatch.setattr(preview_module, "ESTIMATE_TARGET", 10)  # ~a third of the 30 customers
    held = []

    def hold_exact(route):
        if json.loads(route.request.post_data or "{}").get("accuracy") == "exact":
            held.append(route)
        else:
            route.continue_()

    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, marketer)
    page.route("**/segments/-/preview/", hold_exact)
    page.goto(f"{base}/segments/new/")
    tree = page.get_by_test_id("rule-tree")
    tree.get_by_test_id("add-condition").first.click()
    tree.get_by_test_id("add-trait").first.click()
    trait = tree.get_by_test_id("rule-condition").nth(0)
    trait.get_by_test_id("trait-field").select_option("plan")
    trait.get_by_test_id("cmp-value").fill("pro")
    state = page.get_by_test_id("preview-state")
    expect(state).to_have_attribute("data-state", "estimate")
    expect(page.get_by_test_id("preview-count")).to_contain_text("≈")
    expect(page.get_by_test_id("preview-margin")).to_contain_text("±")
    expect(page.get_by_test_id("preview-estimate-note")).to_contain_text("of 30 customers")
    screenshot("segments-builder-estimate")
    page.unroute("**/segments/-/preview/")
    for route in held:
        try:
            route.continue_()
        except Exception:  # noqa: BLE001 — a request the builder already aborted for a newer edit
            pass
    expect(state).to_have_attribute("data-state", "exact")
    expect(page.get_by_test_id("preview-count")).to_have_text("10")
