"""Warehouse export in a real browser: an admin starts an export of every table, watches a
real Celery worker write it, opens the files and the manifest, and turns on the schedule
(screenshots in .screenshots/)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
from django.db import connection
from playwright.sync_api import expect

from customers.models import Customer, Event
from tests.browser.test_settings import log_in, workspace, workspace_url  # noqa: F401  (fixture)


def test_an_admin_exports_to_parquet_and_schedules_it(strata_server, celery_worker, page, workspace,  # noqa: F811
                                                      screenshot):
    tenant, admin_email, _ = workspace
    connection.set_tenant(tenant)
    for i in range(3):
        customer = Customer.objects.create(external_id=f"u-{i}", plan="pro" if i else "free")
        Event.objects.create(customer=customer, name="opened", timestamp=datetime(2026, 11, 1 + i, tzinfo=timezone.utc),
                             message_id=f"m-{i}")
    # Arrived a while ago: an export takes the events that have settled (EVENTS_SETTLE).
    Event.objects.update(received_at=datetime.now(timezone.utc) - timedelta(minutes=10))
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)

    page.get_by_role("link", name="Exports").click()
    expect(page.get_by_role("heading", name="Data exports")).to_be_visible()
    screenshot("exports-empty")
    page.locator("#now-customers").check()  # all four are ticked by default; keep them
    page.get_by_role("button", name="Start export").click()

    expect(page.get_by_test_id("task-run")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.get_by_test_id("manifest-link")).to_be_visible(timeout=10_000)
    expect(page.get_by_test_id("files-events")).to_contain_text("date=2026-11-03")
    expect(page.get_by_test_id("files-customers")).to_contain_text("3 rows")
    screenshot("exports-done")

    with page.expect_download() as download:
        page.get_by_test_id("files-customers").get_by_role("link").first.click()
    customers = pq.read_table(io.BytesIO(download.value.path().read_bytes())).to_pylist()
    assert sorted((c["external_id"], c["plan"]) for c in customers) == [("u-0", "free"), ("u-1", "pro"), ("u-2", "pro")]
    with page.expect_download() as download:
        page.get_by_test_id("manifest-link").click()
    manifest = json.loads(download.value.path().read_text())
    assert manifest["tables"]["events"]["rows"] == 3

    page.get_by_role("link", name="Data exports").click()
    page.get_by_label("Export on a schedule").check()
    page.get_by_label("Every").select_option("hour")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_test_id("schedule-state")).to_contain_text("On · every hour")
    expect(page.get_by_test_id("exports-table")).to_contain_text("Exported")
    screenshot("exports-list")
