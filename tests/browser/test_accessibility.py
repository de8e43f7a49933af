"""The axe-core audit every browser test runs (tests/browser/conftest.py) finds what it
must: a violation put into a real page is reported with its page, rule and node."""

from __future__ import annotations

from django.db import connection

from tests.browser.test_settings import log_in, workspace, workspace_url  # noqa: F401  (fixture)


def test_the_audit_reports_a_violation_on_the_page(strata_server, page, workspace, accessible_pages):  # noqa: F811
    tenant, admin_email, _ = workspace
    connection.set_schema_to_public()
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)
    page.goto(f"{base}/insights/")
    page.wait_for_timeout(1000)
    assert any(audit["url"] == "/insights/" and not audit["violations"] for audit in accessible_pages)
    # Light grey on white, then an htmx settle: the page is audited again.
    page.evaluate("""() => {
        const p = document.createElement('p');
        p.id = 'faint'; p.textContent = 'Hard to read'; p.style.color = '#dddddd'; p.style.background = '#ffffff';
        document.querySelector('main, body').appendChild(p);
        document.dispatchEvent(new Event('htmx:afterSettle'));
    }""")
    page.wait_for_timeout(1500)
    found = [v for audit in accessible_pages for v in audit["violations"]]
    assert [v["id"] for v in found] == ["color-contrast"] and "#faint" in found[0]["nodes"][0]
    accessible_pages.clear()  # seen: the teardown check would fail the test on it
