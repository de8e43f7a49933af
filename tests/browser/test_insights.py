"""Insights in a real browser with a real Celery worker: an analyst runs a clustering and
reads the personas with their rules, trains the churn model and reads its quality; a
marketer turns a cluster into a segment in one click and builds a high-risk segment that
has members; a customer's profile shows its risk and reasons."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from customers.models import GeneratorTruth
from demo.generator import generate
from insights.models import CustomerScore
from segments.models import Segment
from segments.services import segment_create, static_members_add
from tenants.models import TenantMembership
from tests.browser.test_settings import log_in, workspace, workspace_url  # noqa: F401  (fixture)
from tests.conftest import make_member


def test_personas_and_churn_from_the_insights_pages(strata_server, celery_worker, page, workspace, screenshot):  # noqa: F811
    tenant, _, created = workspace
    analyst, marketer = "analyst-insights@example.test", "marketer-insights@example.test"
    created += [analyst, marketer]
    make_member(tenant, analyst, "analyst")
    make_member(tenant, marketer, "marketer")
    with schema_context(tenant.schema_name):
        generate(customers=500, events=15_000, now=timezone.now(), seed=11)
        admin = TenantMembership.objects.get(tenant=tenant, role__key="admin")
        accounts, _ = segment_create(actor=admin, key="big-accounts", name="Big accounts", kind="static",
                                     now=timezone.now())
        static_members_add(actor=admin, segment=accounts, now=timezone.now(), customer_ids=list(
            GeneratorTruth.objects.filter(persona="enterprise_buyer").values_list("customer_id", flat=True)))
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})

    log_in(page, base, analyst)
    page.get_by_test_id("main-nav").get_by_role("link", name="Insights").click()
    expect(page.get_by_role("heading", name="Insights", exact=True)).to_be_visible()
    screenshot("insights-home-empty")
    page.get_by_test_id("run-clustering").click()
    expect(page.get_by_role("heading", name="Clustering run 1")).to_be_visible()
    cards = page.get_by_test_id("cluster-card")
    expect(cards.first).to_be_visible(timeout=180_000)
    expect(page.locator('[data-testid="cluster-map"] svg')).to_have_count(1)
    expect(page.locator('[data-testid="silhouette-chart"] svg')).to_have_count(1)
    expect(cards.first.get_by_test_id("proposal-quality")).to_contain_text("precision")
    expect(page.get_by_test_id("create-segment").first).to_be_visible()  # analysts make segments of clusters
    screenshot("insights-clustering-run")

    page.goto(f"{base}/insights/")
    page.get_by_test_id("train-churn").click()
    expect(page.get_by_role("heading", name="Churn model 1")).to_be_visible()
    expect(page.get_by_test_id("model-quality")).to_be_visible(timeout=180_000)
    expect(page.locator('[data-testid="calibration-chart"] svg')).to_have_count(1)
    expect(page.get_by_test_id("riskiest")).to_have_count(0)  # analysts do not see personal data
    screenshot("insights-churn-model")

    page.goto(f"{base}/insights/")
    page.get_by_label("Seed segment").select_option("big-accounts")
    page.get_by_test_id("run-lookalikes").click()
    expect(page.get_by_test_id("lookalike-quality")).to_be_visible(timeout=180_000)
    expect(page.get_by_test_id("lookalike-quality")).to_contain_text("Lift")
    screenshot("insights-lookalikes")
    page.get_by_role("button", name="Log out").click()

    log_in(page, base, marketer)
    page.goto(f"{base}/insights/clustering/1/")
    first = page.get_by_test_id("cluster-card").first
    persona = first.get_by_role("heading").first.inner_text().strip()
    first.get_by_test_id("create-segment").click()
    expect(page.get_by_test_id("segment-title")).to_have_text(persona)
    screenshot("insights-segment-from-cluster")

    page.goto(f"{base}/insights/churn/")
    expect(page.get_by_test_id("riskiest")).to_be_visible()
    screenshot("insights-churn-riskiest")
    page.get_by_label("Risk at least").fill("0.3")
    page.get_by_test_id("create-risk-segment").click()
    expect(page.get_by_test_id("segment-title")).to_have_text("High churn risk")
    with schema_context(tenant.schema_name):
        expected = CustomerScore.objects.filter(churn_risk__gte=0.3, churn_risk__lt=1).count()
        customer = CustomerScore.objects.filter(churn_risk__lt=1).order_by("-churn_risk").first().customer
        assert Segment.objects.filter(key="high-churn-risk").exists()
    connection.set_schema_to_public()
    assert expected > 0
    for _ in range(30):  # the worker evaluates the new segment after its save commits
        if page.get_by_test_id("segment-size").inner_text().replace(",", "") == str(expected):
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.get_by_test_id("segment-size")).to_have_text(f"{expected:,}")

    page.goto(f"{base}/insights/lookalikes/1/")
    page.get_by_label("Top customers").fill("25")
    page.get_by_test_id("create-lookalike-segment").click()
    expect(page.get_by_test_id("segment-title")).to_have_text("Like big-accounts")
    expect(page.get_by_test_id("segment-size")).to_have_text("25")

    page.goto(f"{base}/customers/{customer.external_id}/")
    scores = page.get_by_test_id("customer-scores")
    expect(scores).to_contain_text("Churn risk")
    expect(scores).to_contain_text("What raises the risk")
    screenshot("insights-customer-profile")


def test_an_analyst_compares_segment_kpis(strata_server, page, workspace, screenshot):  # noqa: F811
    """Three segments side by side against all customers: the table, its charts, the CSV
    link, and each segment's own KPIs on its page."""
    tenant, _, created = workspace
    analyst = "analyst-kpis@example.test"
    created.append(analyst)
    make_member(tenant, analyst, "analyst")
    now = timezone.now()
    with schema_context(tenant.schema_name):
        generate(customers=400, events=12_000, now=now, seed=12)
        admin = TenantMembership.objects.get(tenant=tenant, role__key="admin")
        for persona, name in (("enterprise_buyer", "Enterprise buyers"), ("mobile_casual", "Mobile casuals"),
                              ("bargain_hunter", "Bargain hunters")):
            segment, _ = segment_create(actor=admin, key=persona.replace("_", "-"), name=name, kind="static", now=now)
            static_members_add(actor=admin, segment=segment, now=now, customer_ids=list(
                GeneratorTruth.objects.filter(persona=persona).values_list("customer_id", flat=True)))
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})

    log_in(page, base, analyst)
    page.goto(f"{base}/insights/")
    page.get_by_test_id("kpi-link").click()
    expect(page.get_by_role("heading", name="Segment KPIs")).to_be_visible()
    for name in ("Enterprise buyers", "Mobile casuals", "Bargain hunters"):
        page.get_by_label(name).check()
    page.get_by_label("Conversion to event (90 days)").fill("subscription_upgraded")
    page.get_by_test_id("kpi-compare").click()
    table = page.get_by_test_id("kpi-table")
    expect(table).to_be_visible()
    expect(table.locator("thead th")).to_have_text(["KPI", "Bargain hunters", "Enterprise buyers", "Mobile casuals",
                                                    "All customers"])
    expect(table.locator("tbody tr").first).to_contain_text("400")
    expect(page.locator('[data-testid="kpi-chart"] svg')).to_have_count(5)
    expect(page.get_by_test_id("kpi-csv")).to_be_visible()
    screenshot("insights-segment-kpis")

    page.goto(f"{base}/segments/enterprise-buyer/")
    panel = page.get_by_test_id("segment-kpis")
    expect(panel).to_be_visible()
    expect(panel.locator("thead th")).to_have_text(["KPI", "This segment", "All customers"])
    expect(page.locator('[data-testid="segment-trend-chart"] svg')).to_have_count(1)
    expect(page.locator('[data-testid="journey-chart"] svg')).to_have_count(1)
    expect(page.get_by_test_id("journey-table").locator("tbody tr")).to_have_count(5)  # the default stages
    screenshot("segment-kpi-panel")
    # The members on a day, from the history: today's end has them all.
    picker = page.get_by_test_id("members-at")
    picker.fill(now.date().isoformat())
    picker.dispatch_event("change")
    expect(page.get_by_test_id("members-at-caption")).to_contain_text(now.date().isoformat())
    expect(page.get_by_test_id("member-row").first).to_be_visible()
    screenshot("segment-members-on-a-day")
    changes = page.get_by_test_id("changes-table")
    expect(changes.get_by_test_id("change-row").first).to_contain_text("Entered")
    expect(page.get_by_test_id("changes-summary")).to_contain_text("26 entered and 0 exited")


def test_an_analyst_builds_a_funnel_and_segments_its_drop_offs(strata_server, page, workspace, screenshot):  # noqa: F811
    """Three steps with a property filter, broken down by plan; the chart, the tables, and
    a segment of those who dropped at step 2 in one click."""
    tenant, _, created = workspace
    analyst = "analyst-funnel@example.test"
    created.append(analyst)
    make_member(tenant, analyst, "analyst")
    with schema_context(tenant.schema_name):
        generate(customers=400, events=12_000, now=timezone.now(), seed=14)
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})

    log_in(page, base, analyst)
    page.goto(f"{base}/insights/")
    page.get_by_test_id("funnel-link").click()
    expect(page.get_by_role("heading", name="Funnel")).to_be_visible()
    page.get_by_test_id("funnel-add-step").click()
    steps = page.get_by_test_id("funnel-step")
    expect(steps).to_have_count(3)
    for i, event in enumerate(("user_signed_up", "project_created", "invite_sent")):
        steps.nth(i).get_by_label("Event").fill(event)
    page.get_by_label("Conversion window").select_option("30d")
    page.get_by_label("Period").select_option("365d")
    page.get_by_label("Break down by").select_option("trait")
    page.get_by_label("Trait", exact=True).select_option("plan")
    page.get_by_test_id("funnel-run").click()
    table = page.get_by_test_id("funnel-table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(page.locator('[data-testid="funnel-chart"] svg')).to_have_count(1)
    expect(page.get_by_test_id("funnel-breakdown").locator("tbody tr").first).to_be_visible()
    expect(page.locator('[data-testid="funnel-breakdown-chart"] svg')).to_have_count(1)
    # The form keeps what was asked.
    expect(page.get_by_test_id("funnel-step").nth(2).get_by_label("Event")).to_have_value("invite_sent")
    screenshot("insights-funnel")
    dropped = int(table.locator("tbody tr").nth(1).locator("td").nth(3).inner_text().split()[0].replace(",", ""))
    assert dropped > 0
    page.get_by_test_id("dropoff-segment-2").click()
    expect(page.get_by_role("heading", name="Dropped before project_created")).to_be_visible()
    with schema_context(tenant.schema_name):
        segment = Segment.objects.get(key="dropped-before-project_created")
        assert segment.definition["conditions"][1]["negate"] is True
    screenshot("funnel-dropoff-segment")


def test_an_analyst_reads_retention_paths_and_trends(strata_server, page, workspace, screenshot):  # noqa: F811
    """Weekly cohorts by sign-up returning on any event, compared with a segment; the
    paths after project_created as a Sankey chart with its step tables; a KPI's trend."""
    tenant, _, created = workspace
    analyst = "analyst-retention@example.test"
    created.append(analyst)
    make_member(tenant, analyst, "analyst")
    now = timezone.now()
    with schema_context(tenant.schema_name):
        generate(customers=400, events=12_000, now=now, seed=15)
        admin = TenantMembership.objects.get(tenant=tenant, role__key="admin")
        segment, _ = segment_create(actor=admin, key="power-users", name="Power users", kind="static", now=now)
        static_members_add(actor=admin, segment=segment, now=now, customer_ids=list(
            GeneratorTruth.objects.filter(persona="power_builder").values_list("customer_id", flat=True)))
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    page.set_viewport_size({"width": 1366, "height": 900})

    log_in(page, base, analyst)
    page.goto(f"{base}/insights/")
    page.get_by_test_id("retention-link").click()
    page.get_by_label("Returning on").fill("*")
    page.get_by_label("Cohorts").fill("8")
    page.get_by_label("Power users").check()
    page.get_by_test_id("retention-run").click()
    triangle = page.get_by_test_id("retention-triangle")
    expect(triangle).to_be_visible()
    expect(triangle.locator("tbody tr")).to_have_count(8)
    expect(page.locator('[data-testid="retention-chart"] svg')).to_have_count(1)
    expect(page.get_by_test_id("retention-curves").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("retention-csv")).to_be_visible()
    screenshot("insights-retention")

    page.goto(f"{base}/insights/")
    page.get_by_test_id("paths-link").click()
    page.get_by_label("Event").fill("project_created")
    page.get_by_label("Period").select_option("365d")
    page.get_by_test_id("paths-run").click()
    expect(page.locator('[data-testid="paths-chart"] svg')).to_have_count(1)
    steps = page.get_by_test_id("paths-steps")
    expect(steps.locator("table")).to_have_count(3)
    expect(steps.locator("table").first.locator("tbody tr").first).to_be_visible()
    screenshot("insights-paths")

    page.goto(f"{base}/insights/")
    page.get_by_test_id("trends-link").click()
    page.get_by_label("Power users").check()
    page.get_by_label("KPI").select_option("active")
    page.get_by_test_id("trends-run").click()
    expect(page.locator('[data-testid="trend-chart"] svg')).to_have_count(1)
    expect(page.get_by_test_id("trend-table").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("trend-table").locator("thead th")).to_have_count(13)  # group + 12 weeks
    screenshot("insights-trends")
    # Another KPI, and a feature's adoption, from the same form.
    page.get_by_label("KPI", exact=True).select_option("churn")
    page.get_by_test_id("trends-run").click()
    expect(page.get_by_role("heading", name="Churn rate, per week")).to_be_visible()
    page.get_by_label("Feature events for adoption").fill("feature_x_used")
    page.get_by_test_id("trends-run").click()
    page.get_by_label("KPI", exact=True).select_option("adoption:feature_x_used")
    page.get_by_test_id("trends-run").click()
    expect(page.get_by_role("heading", name="Used “feature_x_used” in the period, per week")).to_be_visible()
    expect(page.locator('[data-testid="trend-chart"] svg')).to_have_count(1)
    screenshot("insights-trends-adoption")
