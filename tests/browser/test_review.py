"""The review cycle in the browser: an owner follows the home page's notice to the queue,
keeps one segment with a note and merges another into it."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from campaigns.models import SegmentReview
from segments.models import Segment
from segments.services import segment_create
from tenants.models import TenantMembership
from tests.browser.test_settings import log_in, workspace, workspace_url  # noqa: F401  (fixture)
from tests.conftest import make_member


def test_an_owner_keeps_one_segment_and_merges_another(strata_server, page, workspace, screenshot):  # noqa: F811
    tenant, _, created = workspace
    owner = "owner-review@example.test"
    created.append(owner)
    make_member(tenant, owner, "analyst")
    with schema_context(tenant.schema_name):
        member = TenantMembership.objects.get(tenant=tenant, user__email=owner)
        now = timezone.now()
        for key, name in (("newsletter", "Newsletter readers"), ("old-promo", "Old promo list")):
            segment_create(actor=member, key=key, name=name, kind="static", now=now)
        Segment.objects.filter(key__in=["newsletter", "old-promo"]).update(created_at=now - timedelta(days=120))
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})

    log_in(page, base, owner)
    notice = page.get_by_test_id("review-notice")
    expect(notice).to_contain_text("2 of your segments are due for review")
    notice.get_by_role("link").click()
    items = page.get_by_test_id("review-item")
    expect(items).to_have_count(2)
    newsletter = page.locator('[data-testid="review-item"][data-key="newsletter"]')
    expect(newsletter.locator('[data-code="no_activation"]')).to_be_visible()
    screenshot("segments-review-queue")
    newsletter.get_by_test_id("review-keep").click()
    newsletter.get_by_label("Why keep it").fill("The monthly newsletter goes to them")
    newsletter.get_by_test_id("review-keep-save").click()
    expect(page.get_by_test_id("review-item")).to_have_count(1)
    promo = page.locator('[data-testid="review-item"][data-key="old-promo"]')
    promo.get_by_test_id("review-merge").click()
    promo.get_by_label("Into").select_option("newsletter")
    promo.get_by_label("Why merge it").fill("Same people")
    promo.get_by_test_id("review-merge-save").click()
    expect(page.get_by_test_id("review-empty")).to_be_visible()
    history = page.get_by_test_id("review-history")
    expect(history.locator("tbody tr")).to_have_count(2)
    expect(history).to_contain_text("The monthly newsletter goes to them")
    screenshot("segments-review-done")
    with schema_context(tenant.schema_name):
        assert Segment.objects.get(key="old-promo").status == "archived"
        assert sorted(SegmentReview.objects.values_list("decision", flat=True)) == ["kept", "merged"]


def test_an_analyst_reads_the_maturity_level_and_next_steps(strata_server, page, workspace, screenshot):  # noqa: F811
    tenant, admin_email, created = workspace
    analyst = "analyst-maturity@example.test"
    created.append(analyst)
    make_member(tenant, analyst, "analyst")
    with schema_context(tenant.schema_name):
        admin = TenantMembership.objects.get(tenant=tenant, user__email=admin_email)
        segment_create(actor=admin, key="french", name="French", now=timezone.now(), definition={
            "version": 1, "match": "all", "conditions": [{"type": "trait", "field": "country", "op": "eq",
                                                          "value": "FR"}]})
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, analyst)
    page.goto(f"{base}/insights/")
    page.get_by_test_id("maturity-link").click()
    expect(page.get_by_test_id("maturity-level")).to_have_text("Basic")
    expect(page.locator('[data-testid="maturity-ladder"] li[data-reached="true"]')).to_have_count(1)
    expect(page.get_by_test_id("maturity-steps").locator("li").first).to_contain_text("Segment on behaviour")
    expect(page.get_by_test_id("maturity-types")).to_contain_text("french")
    screenshot("workspace-maturity")


def test_an_analyst_ranks_segments_and_marks_a_target_with_positioning(strata_server, page, workspace,  # noqa: F811
                                                                         screenshot):
    tenant, _, created = workspace
    analyst = "analyst-stp@example.test"
    created.append(analyst)
    make_member(tenant, analyst, "analyst")
    with schema_context(tenant.schema_name):
        from demo.generator import generate
        from segments.services import static_members_add

        from customers.models import GeneratorTruth

        now = timezone.now()
        generate(customers=300, events=6_000, now=now, seed=21)
        member = TenantMembership.objects.get(tenant=tenant, user__email=analyst)
        for persona in ("enterprise_buyer", "mobile_casual", "bargain_hunter"):
            segment, _ = segment_create(actor=member, key=persona.replace("_", "-"), name=persona.replace("_", " ").title(),
                                        kind="static", now=now)
            static_members_add(actor=member, segment=segment, now=now, customer_ids=list(
                GeneratorTruth.objects.filter(persona=persona).values_list("customer_id", flat=True)))
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, analyst)
    page.goto(f"{base}/segments/")
    page.get_by_test_id("targeting-link").click()
    rows = page.get_by_test_id("target-row")
    expect(rows).to_have_count(3)
    page.get_by_label("Reachability (consented)").fill("5")
    page.get_by_test_id("rerank").click()
    expect(page.get_by_label("Reachability (consented)")).to_have_value("5.0")
    page.get_by_test_id("target-enterprise-buyer").check()
    page.get_by_label("Value proposition for Enterprise Buyer").fill("Security and control at scale")
    page.get_by_label("Message for Enterprise Buyer").fill("SSO and audit logs are ready for your team")
    page.get_by_label("Channel for Enterprise Buyer").select_option("sales")
    page.get_by_label("Note for this version").fill("Q1 focus")
    page.get_by_test_id("board-save").click()
    expect(page.get_by_test_id("board-version")).to_contain_text("Version 1")
    expect(page.get_by_test_id("board-versions")).to_contain_text("enterprise-buyer")
    expect(page.get_by_label("Value proposition for Enterprise Buyer")).to_have_value("Security and control at scale")
    screenshot("targeting-board")


def test_a_marketer_maps_a_personas_journey_and_sees_the_gallery(strata_server, page, workspace,  # noqa: F811
                                                                  screenshot):
    tenant, _, created = workspace
    marketer = "marketer-journey@example.test"
    created.append(marketer)
    make_member(tenant, marketer, "marketer")
    with schema_context(tenant.schema_name):
        from customers.models import GeneratorTruth
        from demo.generator import generate
        from segments.services import segment_update, static_members_add

        now = timezone.now()
        generate(customers=300, events=6_000, now=now, seed=23)
        member = TenantMembership.objects.get(tenant=tenant, user__email=marketer)
        segment, _ = segment_create(actor=member, key="builders", name="Power builders", kind="static", now=now)
        static_members_add(actor=member, segment=segment, now=now, customer_ids=list(
            GeneratorTruth.objects.filter(persona="power_builder").values_list("customer_id", flat=True)))
        segment_update(actor=member, segment=segment, now=now,
                       persona={"name": "Builder Ben", "goals": "Ship projects fast", "challenges": "Setup time"})
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, base, marketer)
    page.goto(f"{base}/segments/builders/")
    expect(page.get_by_test_id("journey-table").locator("tbody tr")).to_have_count(5)
    page.get_by_role("link", name="Edit the journey").click()
    stages = page.get_by_test_id("journey-stage")
    expect(stages).to_have_count(5)
    stages.first.get_by_label("Stage").fill("Discover")
    stages.first.get_by_label("Goals").fill("Find a tool that fits the team")
    stages.nth(4).get_by_role("button", name="Remove stage").click()
    page.get_by_test_id("journey-save").click()
    table = page.get_by_test_id("journey-table")
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table).to_contain_text("Find a tool that fits the team")
    page.goto(f"{base}/insights/")
    page.get_by_test_id("personas-link").click()
    card = page.get_by_test_id("persona-card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Builder Ben")
    expect(card).to_contain_text("Discover")
    expect(card.locator("[data-chart] svg")).to_have_count(1)
    screenshot("persona-gallery")
