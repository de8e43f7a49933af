"""The overlap page in a real browser: tick segments, compare, read the heatmap."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import Customer
from segments import engine
from segments.models import Segment
from tests.browser.test_settings import log_in, workspace, workspace_url  # noqa: F401  (fixture)


def test_a_member_compares_three_segments(strata_server, page, workspace, screenshot):  # noqa: F811
    tenant, admin_email, _ = workspace
    connection.set_tenant(tenant)
    people = [Customer.objects.create(external_id=f"ov-{i}").pk for i in range(30)]
    for key, name, members in (("trial", "Trial users", people[:18]), ("payers", "Payers", people[10:25]),
                               ("churned", "Churned", people[24:])):
        segment = Segment.objects.create(key=key, name=name, kind="static")
        engine.members_add(segment=segment, customer_ids=members, now=timezone.now())
    connection.set_schema_to_public()

    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)
    page.goto(f"{base}/segments/")
    page.get_by_role("link", name="Compare overlap").click()
    for name in ("Trial users", "Payers", "Churned"):
        page.get_by_label(name).check()
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("[data-testid=overlap-heatmap] svg")).to_have_count(1)
    expect(page.get_by_test_id("overlap-table")).to_contain_text("Payers")
    expect(page.get_by_text("30 customers in any of them")).to_be_visible()
    screenshot("segments-overlap")
    # The workspace switcher in the header opens with the keyboard-reachable button.
    page.get_by_test_id("tenant-name").click()
    expect(page.get_by_test_id("workspace-menu")).to_contain_text("All workspaces")
    page.screenshot(path=str(screenshot("workspace-switcher")), clip={"x": 0, "y": 0, "width": 700, "height": 260})
