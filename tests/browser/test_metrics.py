"""The Metrics page in a real browser: figures and charts of a refreshed workspace, and
Refresh now driving a real Celery worker while the progress bar follows it."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.metrics_refresh import metrics_refresh
from tests.browser.test_settings import log_in, workspace, workspace_url  # noqa: F401  (fixture)


def _seed(tenant) -> None:
    """Forty customers buying at different rates and times, some gone quiet."""
    now = timezone.now()
    messages = []
    for c in range(40):
        for k in range(c % 7):
            when = now - timedelta(days=3 + (c * 11 + k * 23) % 150)
            messages.append(Message(type="track", user_id=f"m-{c}", event="purchase", timestamp=when,
                                    properties={"amount": 20 + c * 3}, message_id=f"seed-{c}-{k}",
                                    index=len(messages), path=""))
        messages.append(Message(type="track", user_id=f"m-{c}", event="login", index=len(messages), path="",
                                timestamp=now - timedelta(days=(c * 5) % 120), message_id=f"login-{c}"))
    connection.set_tenant(tenant)
    ingest_messages(messages=messages, source="test", now=now)
    metrics_refresh(now=now)
    connection.set_schema_to_public()


def test_an_admin_reads_the_metrics_and_refreshes_them(strata_server, celery_worker, page, workspace, screenshot):  # noqa: F811
    tenant, admin_email, _ = workspace
    _seed(tenant)
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)
    page.goto(f"{base}/metrics/")
    expect(page.get_by_role("heading", name="Metrics", exact=True)).to_be_visible()
    figures = page.get_by_test_id("metrics-figures")
    expect(figures).to_contain_text("40")
    # ECharts drew both charts (SVG renderer).
    expect(page.locator("[data-chart] svg")).to_have_count(2)
    screenshot("metrics-overview")

    page.get_by_test_id("metrics-refresh").click()
    run = page.get_by_test_id("task-run")
    expect(run).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(run).to_contain_text("40 customers scored")
    screenshot("metrics-refreshed")

    page.get_by_role("link", name="Change how they are computed").click()
    expect(page.get_by_role("heading", name="Metrics", exact=True)).to_be_visible()
    page.get_by_label("Gross margin").fill("1.4")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Gross margin is a share")).to_be_visible()
    screenshot("settings-metrics-error")
