"""CSV import in a real browser: upload a file, adjust the suggested mapping, start it, and
watch a real Celery worker import it until the result page shows the counts and problems
(screenshots in .screenshots/)."""

from __future__ import annotations

from django.db import connection
from playwright.sync_api import expect

from customers.models import Customer
from tests.browser.test_settings import log_in, workspace, workspace_url  # noqa: F401  (fixture)

CSV = (
    "Customer ID,E-mail,Plan,Company size,Country,Favourite colour,Internal note\n"
    "c-1,ada@example.test,pro,40,GB,teal,vip\n"
    "c-2,bob@example.test,free,12,DE,red,\n"
    "c-3,not-an-email,team,7,FR,blue,\n"
    "c-4,eve@example.test,pro,lots,US,green,\n"
    "c-5,kim@example.test,free,3,Germany,teal,\n"
    "c-6,joe@example.test,enterprise,900,NL,black,call back\n"
)


def test_a_marketer_uploads_maps_and_sees_the_result(strata_server, celery_worker, page, workspace, screenshot,  # noqa: F811
                                                      tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    tenant, admin_email, _ = workspace
    source = tmp_path / "customers.csv"
    source.write_text(CSV)
    base = workspace_url(strata_server, tenant)
    log_in(page, base, admin_email)

    page.get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", name="Imports", exact=True)).to_be_visible()
    page.get_by_label("Customers", exact=False).first.check()
    page.get_by_label("CSV or Parquet file").set_input_files(str(source))
    screenshot("imports-upload")
    page.get_by_role("button", name="Upload and map columns").click()

    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()
    # Suggested from the header: the id, built-in traits and new custom traits.
    expect(page.get_by_label("Customer ID")).to_have_value("external_id")
    expect(page.get_by_label("E-mail")).to_have_value("trait:email")
    expect(page.get_by_label("Company size")).to_have_value("trait:company_size")
    expect(page.get_by_label("Favourite colour")).to_have_value("trait:favourite_colour")
    page.get_by_label("Internal note").select_option("")  # ignore this column
    screenshot("imports-map")
    page.get_by_role("button", name="Start import").click()

    summary = page.get_by_test_id("import-summary")
    expect(summary).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.get_by_test_id("task-run")).to_have_attribute("data-status", "succeeded", timeout=10_000)
    expect(page.get_by_test_id("count-imported")).to_have_text("3")
    expect(page.get_by_test_id("count-failed")).to_have_text("3")
    problems = page.get_by_test_id("problems-table")
    expect(problems).to_contain_text("invalid_email")
    expect(problems).to_contain_text("type_mismatch")
    expect(problems).to_contain_text("Countries are two-letter")
    screenshot("imports-result")

    with page.expect_download() as download:
        page.get_by_test_id("download-errors").click()
    report = download.value.path().read_text().splitlines()
    assert report[0] == "row,column,code,message" and len(report) == 4

    connection.set_tenant(tenant)
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["c-1", "c-2", "c-6"]
    assert Customer.objects.get(external_id="c-1").traits == {"favourite_colour": "teal"}
    connection.set_schema_to_public()

    page.get_by_role("link", name="Imports").first.click()
    expect(page.get_by_test_id("imports-table")).to_contain_text("customers.csv")
    screenshot("imports-list")
