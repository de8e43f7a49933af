"""CSV import: detection at upload, mapping checks, the chunked run through the write
path, per-row problems, idempotency and resumption (real PostgreSQL, files in a temporary
MEDIA_ROOT). The HTTP side is in test_csv_import_http.py."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from common.csv import stream_rows
from common.errors import DomainError
from common.http import http_status
from customers.imports.models import ImportJob, ImportRowError
from customers.imports.services import import_run, import_start, import_suggestion, import_upload, report_rows
from customers.models import Customer, Event, SurveyResponse, TraitDefinition
from ops.models import TaskRun

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def upload(actor, content: str | bytes, kind: str = "customers", name: str = "file.csv") -> ImportJob:
    data = content.encode() if isinstance(content, str) else content
    return import_upload(actor=actor, kind=kind, upload=SimpleUploadedFile(name, data, "text/csv"), now=NOW)


def run(actor, job: ImportJob, mapping: dict | None = None, chunk_rows: int = 5000) -> ImportJob:
    job = import_start(actor=actor, job=job, mapping=mapping if mapping is not None else import_suggestion(job=job),
                       now=NOW)
    return import_run(job_id=job.pk, clock=lambda: NOW, chunk_rows=chunk_rows)


def problems_of(job: ImportJob) -> list[tuple[int, str, str]]:
    return list(ImportRowError.objects.filter(job=job).order_by("row", "id").values_list("row", "column", "code"))


def codes(error: DomainError) -> set[tuple[str, str]]:
    return {(p.path, p.code) for p in error.problems}


# ------------------------------------------------------------------------------ upload


def test_upload_detects_delimiter_header_and_sample_and_stores_under_the_schema(alpha_admin):
    """A semicolon file with a BOM: header without the BOM, sample rows, hash, stored
    under imports/<schema>/."""
    body = "\ufeffexternal_id;Email;plan\nu1;ada@example.test;pro\nu2;bob@example.test;free\n"
    job = upload(alpha_admin, body, name="../../etc/passwd customers.csv")
    assert (job.delimiter, job.header, job.encoding) == (";", ["external_id", "Email", "plan"], "utf-8-sig")
    assert job.sample == [["u1", "ada@example.test", "pro"], ["u2", "bob@example.test", "free"]]
    assert job.size == len(body.encode()) and len(job.sha256) == 64
    assert job.file.name.startswith("imports/t_alpha/") and ".." not in job.file.name
    assert default_storage.open(job.file.name).read() == body.encode()
    assert job.status == "uploaded" and job.created_by_id == alpha_admin.user_id


def test_suggested_mapping_uses_names_synonyms_and_new_custom_traits(alpha_admin):
    job = upload(alpha_admin, "Customer ID,E-mail,Company Name,Favourite colour,country\nu1,a@b.test,Acme,teal,DE\n")
    assert import_suggestion(job=job) == {
        "Customer ID": "external_id", "E-mail": "trait:email", "Company Name": "trait:company",
        "Favourite colour": "trait:favourite_colour", "country": "trait:country"}
    events = upload(alpha_admin, "user_id,event,time,sku\nu1,purchase,2026-01-01,A-1\n", kind="events")
    assert import_suggestion(job=events) == {"user_id": "external_id", "event": "name", "time": "timestamp",
                                             "sku": "properties.sku"}


@pytest.mark.parametrize("content,path,code", [
    (b"", "file", "empty_file"),
    (b"\xef\xbb\xbf", "file", "empty_file"),
    (b"\n\n  \n", "file", "empty_file"),
    (b"external_id,plan\n", "file", "no_rows"),
    (b"external_id,plan\nu1,caf\xe9\n", "file", "not_utf8"),
    (b"\xff\xfee\x00x\x00", "file", "not_utf8"),
    (b"u1,ada@example.test,42\nu2,bob@example.test,7\n", "header", "no_header"),
    (b"external_id,plan,Plan\nu1,a,b\n", "header[2]", "duplicate_column"),
    (b"external_id,,plan\nu1,a,b\n", "header[1]", "blank_column"),
    (b"external_id,plan\nu1,a\x00b\n", "file", "not_text"),
])
def test_bad_files_are_refused_with_a_code_and_nothing_is_kept(alpha_admin, content, path, code):
    with pytest.raises(DomainError) as caught:
        upload(alpha_admin, content)
    assert (path, code) in codes(caught.value)
    assert not ImportJob.objects.exists()


def test_a_bad_byte_far_into_the_file_is_found_before_anything_is_stored(alpha_admin):
    body = b"external_id,plan\n" + b"".join(b"u%d,pro\n" % i for i in range(20000)) + b"u-last,\xc3(\n"
    with pytest.raises(DomainError) as caught:
        upload(alpha_admin, body)
    assert codes(caught.value) == {("file", "not_utf8")}
    assert "Line 20,002" in caught.value.problems[0].message


def test_unknown_kind_and_file_too_large(alpha_admin, settings):
    with pytest.raises(DomainError) as caught:
        upload(alpha_admin, "external_id\nu1\n", kind="orders")
    assert codes(caught.value) == {("kind", "unknown_kind")}
    settings.IMPORT_MAX_BYTES = 10
    with pytest.raises(DomainError) as caught:
        upload(alpha_admin, "external_id\nu1\nu2\nu3\n")
    assert codes(caught.value) == {("file", "too_large")} and http_status(caught.value) == 413


def test_upload_needs_the_import_permission(in_tenant):
    from tests.conftest import make_member, membership_of

    make_member(in_tenant, "viewer-imports@alpha.test", "viewer")
    with pytest.raises(DomainError) as caught:
        upload(membership_of(in_tenant, "viewer-imports@alpha.test"), "external_id\nu1\n")
    assert http_status(caught.value) == 403


# ------------------------------------------------------------------------------ mapping


@pytest.mark.parametrize("kind,mapping,expected", [
    ("customers", {"nope": "external_id"}, {("mapping.nope", "unknown_column"), ("mapping", "missing_target")}),
    ("customers", {"id": "external_id", "a": "trait:plan", "b": "trait:plan"}, {("mapping.b", "duplicate_target")}),
    ("customers", {"id": "external_id", "a": "banana"}, {("mapping.a", "unknown_target")}),
    ("customers", {"id": "external_id", "a": "trait:9lives"}, {("mapping.a", "invalid_key")}),
    ("customers", {"a": "trait:plan"}, {("mapping", "missing_target")}),
    ("customers", ["id"], {("mapping", "invalid")}),
    ("events", {"id": "external_id"}, {("mapping", "missing_target")}),
    ("events", {"id": "external_id", "a": "name", "b": "trait:plan"}, {("mapping.b", "unknown_target")}),
    ("survey_responses", {"id": "external_id", "a": "survey"}, {("mapping", "missing_target")}),
])
def test_bad_mappings_are_refused_with_paths_and_nothing_is_queued(alpha_admin, kind, mapping, expected):
    job = upload(alpha_admin, "id,a,b\nu1,x,y\n", kind=kind)
    with pytest.raises(DomainError) as caught:
        import_start(actor=alpha_admin, job=job, mapping=mapping, now=NOW)
    assert codes(caught.value) == expected
    job.refresh_from_db()
    assert job.status == "uploaded" and job.task_run is None
    assert not TaskRun.objects.filter(kind="csv_import").exists()


def test_mapping_screen_targets_group_builtin_traits_by_category(in_tenant):
    from customers.imports.services import targets_for

    options = targets_for("customers").options()
    groups = {o.value: o.group for o in options}
    assert groups["external_id"] == "Customer"
    assert groups["trait:email"] == "Demographic traits" and groups["trait:country"] == "Geographic traits"
    assert groups["trait:company_size"] == "Firmographic traits" and groups["trait:plan"] == "Value traits"


def test_starting_twice_with_the_same_mapping_is_harmless_and_another_mapping_is_409(alpha_admin):
    job = upload(alpha_admin, "id,plan\nu1,pro\n")
    started = import_start(actor=alpha_admin, job=job, mapping={"id": "external_id"}, now=NOW)
    again = import_start(actor=alpha_admin, job=job, mapping={"id": "external_id"}, now=NOW)
    assert again.task_run_id == started.task_run_id and TaskRun.objects.filter(kind="csv_import").count() == 1
    with pytest.raises(DomainError) as caught:
        import_start(actor=alpha_admin, job=job, mapping={"id": "external_id", "plan": "trait:plan"}, now=NOW)
    assert http_status(caught.value) == 409 and codes(caught.value) == {("mapping", "already_started")}


# ------------------------------------------------------------------------------ running


CUSTOMERS_CSV = (
    "external_id,email,plan,company_size,signed_up_at,tech_stack,email_opt_in,score,note\n"
    "u1,ada@example.test,pro,40,2026-01-02,django|react,yes,9,first\n"
    "u2,not-an-email,free,12,2026-01-03,,no,7,\n"
    "u3,bob@example.test,team,many,2026-01-04,,true,8,\n"
    ",nobody@example.test,free,1,,,,1,\n"
    "u5,eve@example.test,free,3,yesterday,,maybe,8,\n"
    "u6,joe@example.test,enterprise\n"
    "u7,kim@example.test,pro,1,2026-02-01,,1,10,last\n"
)


def test_customer_rows_land_and_bad_rows_are_reported_per_cell(alpha_admin):
    job = run(alpha_admin, upload(alpha_admin, CUSTOMERS_CSV))
    assert (job.status, job.rows_total, job.rows_imported, job.rows_failed, job.rows_unchanged) == (
        "succeeded", 7, 2, 5, 0)
    assert problems_of(job) == [
        (3, "email", "invalid_email"),
        (4, "company_size", "type_mismatch"),
        (5, "external_id", "required"),
        (6, "signed_up_at", "type_mismatch"),
        (6, "email_opt_in", "type_mismatch"),
        (7, "", "wrong_column_count"),
    ]
    ada = Customer.objects.get(external_id="u1")
    assert (ada.email, ada.plan, ada.company_size, ada.tech_stack, ada.email_opt_in) == (
        "ada@example.test", "pro", 40, ["django", "react"], True)
    assert ada.signed_up_at == datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert ada.traits == {"score": 9, "note": "first"}
    assert Customer.objects.get(external_id="u7").traits == {"score": 10, "note": "last"}
    assert not Customer.objects.filter(external_id__in=["u2", "u3", "u5", "u6"]).exists()
    assert TraitDefinition.objects.get(key="score").type == "number"
    run_record = TaskRun.objects.get(pk=job.task_run_id)
    assert (run_record.status, run_record.done, run_record.total) == ("succeeded", 7, 7)
    assert run_record.result == {"rows": 7, "processed": 7, "imported": 2, "unchanged": 0, "failed": 5}


def test_the_error_report_lists_row_column_code_and_message(alpha_admin):
    job = run(alpha_admin, upload(alpha_admin, CUSTOMERS_CSV))
    report = default_storage.open(job.error_report.name).read().decode().splitlines()
    assert report[0] == "row,column,code,message"
    assert report[1].startswith("3,email,invalid_email,")
    assert len(report) == 1 + 6


def test_reuploading_the_same_customers_file_changes_nothing(alpha_admin):
    first = run(alpha_admin, upload(alpha_admin, CUSTOMERS_CSV))
    before = {c.external_id: (c.updated_at, c.traits, c.plan) for c in Customer.objects.all()}
    second = run(alpha_admin, upload(alpha_admin, CUSTOMERS_CSV))
    assert first.sha256 == second.sha256
    assert (second.rows_imported, second.rows_unchanged, second.rows_failed) == (0, 2, 5)
    assert {c.external_id: (c.updated_at, c.traits, c.plan) for c in Customer.objects.all()} == before


def test_a_changed_value_is_applied_and_the_rest_kept(alpha_admin):
    run(alpha_admin, upload(alpha_admin, "external_id,plan,city\nu1,free,Berlin\nu2,pro,Paris\n"))
    job = run(alpha_admin, upload(alpha_admin, "external_id,plan,city\nu1,pro,Berlin\nu2,pro,\n"))
    assert (job.rows_imported, job.rows_unchanged) == (1, 1)
    assert Customer.objects.get(external_id="u1").plan == "pro"
    assert Customer.objects.get(external_id="u2").city == "Paris"  # an empty cell leaves the trait alone


def test_a_repeated_customer_in_one_file_ends_with_the_last_row(alpha_admin):
    run(alpha_admin, upload(alpha_admin, "external_id,plan\nu1,free\n"))
    run(alpha_admin, upload(alpha_admin, "external_id,plan\nu1,pro\nu1,free\n"))
    assert Customer.objects.get(external_id="u1").plan == "free"


def test_a_value_contradicting_the_registry_is_reported_from_ingestion(alpha_admin):
    run(alpha_admin, upload(alpha_admin, "external_id,seats\nu1,3\n"))
    assert TraitDefinition.objects.get(key="seats").type == "number"
    job = run(alpha_admin, upload(alpha_admin, "external_id,seats\nu2,lots\nu3,4\n"),
              mapping={"external_id": "external_id", "seats": "trait:seats"})
    assert problems_of(job) == [(2, "seats", "type_mismatch")]
    assert Customer.objects.get(external_id="u3").traits == {"seats": 4}


EVENTS_CSV = (
    "user_id,event,timestamp,amount,sku\n"
    "u1,purchase,2026-11-01T10:00:00Z,19.5,A-1\n"
    "u1,purchase,2026-11-02T10:00:00Z,5,A-2\n"
    "u2,signed_in,not-a-time,,\n"
    "u2,,2026-11-03T10:00:00Z,,\n"
    "u3,signed_in,2026-11-04,,\n"
)


def test_event_rows_land_with_typed_properties_and_reupload_is_deduplicated(alpha_admin):
    job = run(alpha_admin, upload(alpha_admin, EVENTS_CSV, kind="events"))
    assert (job.rows_imported, job.rows_failed, job.rows_unchanged) == (3, 2, 0)
    assert problems_of(job) == [(4, "timestamp", "type_mismatch"), (5, "event", "required")]
    purchases = Event.objects.filter(name="purchase").order_by("timestamp")
    assert [e.properties for e in purchases] == [{"amount": 19.5, "sku": "A-1"}, {"amount": 5, "sku": "A-2"}]
    assert all(e.message_id.startswith("csv:") and e.source == "csv_import" for e in purchases)
    assert Customer.objects.filter(external_id="u3").exists()  # events create their customer

    again = run(alpha_admin, upload(alpha_admin, EVENTS_CSV, kind="events"))
    assert (again.rows_imported, again.rows_unchanged, again.rows_failed) == (0, 3, 2)
    assert Event.objects.count() == 3


def test_events_without_a_timestamp_column_are_deduplicated_by_content(alpha_admin):
    body = "user_id,event,message_id\nu1,login,\nu1,login,m-given\n"
    first = run(alpha_admin, upload(alpha_admin, body, kind="events"))
    assert first.rows_imported == 2 and Event.objects.filter(message_id="m-given").exists()
    assert Event.objects.get(message_id__startswith="csv:").timestamp == first.created_at
    second = run(alpha_admin, upload(alpha_admin, body, kind="events"))
    assert (second.rows_imported, second.rows_unchanged) == (0, 2) and Event.objects.count() == 2


def test_survey_answers_land_unknown_customers_and_scores_are_reported(alpha_admin):
    run(alpha_admin, upload(alpha_admin, "external_id\nu1\nu2\n"))
    body = ("customer,survey,score,comment,responded_at\n"
            "u1,nps,9,Great,2026-11-01\n"
            "u2,nps,11,,2026-11-01\n"
            "ghost,nps,5,,2026-11-01\n"
            "u2,csat,4,,2026-11-02\n"
            "u1,nope,3,,2026-11-02\n")
    job = run(alpha_admin, upload(alpha_admin, body, kind="survey_responses"),
              mapping={"customer": "external_id", "survey": "survey", "score": "score", "comment": "comment",
                       "responded_at": "responded_at"})
    assert (job.rows_imported, job.rows_failed) == (2, 3)
    assert problems_of(job) == [(3, "score", "out_of_range"), (4, "customer", "unknown_customer"),
                                (6, "survey", "unknown_survey")]
    assert SurveyResponse.objects.get(customer__external_id="u1").comment == "Great"
    again = run(alpha_admin, upload(alpha_admin, body, kind="survey_responses"),
                mapping={"customer": "external_id", "survey": "survey", "score": "score", "comment": "comment",
                         "responded_at": "responded_at"})
    assert (again.rows_imported, again.rows_unchanged, again.rows_failed) == (0, 2, 3)
    assert SurveyResponse.objects.count() == 2


def test_chunks_report_progress_and_a_rerun_resumes_without_doubling(alpha_admin):
    body = "external_id,visits\n" + "".join(f"u{i},{i}\n" for i in range(23))
    job = import_start(actor=alpha_admin, job=upload(alpha_admin, body), mapping={"external_id": "external_id",
                                                                                 "visits": "trait:visits"}, now=NOW)
    calls = []

    def clock():
        calls.append(1)
        return NOW

    done = import_run(job_id=job.pk, clock=clock, chunk_rows=5)
    assert (done.rows_processed, done.rows_imported, done.status) == (23, 23, "succeeded")
    assert TaskRun.objects.get(pk=job.task_run_id).done == 23
    # A redelivered message for a finished job: nothing happens.
    assert import_run(job_id=job.pk, clock=clock, chunk_rows=5).rows_imported == 23
    # A delivery that died after 2 committed chunks: the rerun continues at row 12.
    ImportJob.objects.filter(pk=job.pk).update(status="running", rows_processed=10, rows_imported=10)
    resumed = import_run(job_id=job.pk, clock=clock, chunk_rows=5)
    assert (resumed.rows_processed, resumed.rows_imported, resumed.rows_unchanged) == (23, 10, 13)
    assert Customer.objects.count() == 23


def test_a_row_the_database_refuses_is_isolated_and_the_rest_of_the_chunk_lands(alpha_admin):
    """A value no check of ours catches (here a CHECK constraint added for this test, in its
    transaction) fails its chunk in the database; the chunk is split until the row is
    alone, that row is reported and every other row is stored."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE customers_customer ADD CONSTRAINT test_no_forbidden_plan "
                       "CHECK (plan <> 'forbidden') NOT VALID")
    body = "external_id,plan\n" + "".join(f"u{i},{'forbidden' if i == 4 else 'pro'}\n" for i in range(9))
    job = run(alpha_admin, upload(alpha_admin, body), mapping={"external_id": "external_id", "plan": "trait:plan"})
    assert (job.rows_imported, job.rows_failed) == (8, 1)
    assert [(row, code) for row, _, code in problems_of(job)] == [(6, "rejected")]
    assert set(Customer.objects.values_list("external_id", flat=True)) == {f"u{i}" for i in range(9)} - {"u4"}


def test_the_error_report_neutralises_a_header_a_spreadsheet_would_run(alpha_admin):
    """The `column` cell carries the uploaded header: one that starts like a formula is
    written with a leading apostrophe, in the stored report and the live one alike."""
    job = upload(alpha_admin, "id,=HYPERLINK(\"http://x\")\nu1,not-an-email\n")
    job = run(alpha_admin, job, mapping={"id": "external_id", '=HYPERLINK("http://x")': "trait:email"})
    assert problems_of(job) == [(2, '=HYPERLINK("http://x")', "invalid_email")]
    stored = list(csv.reader(io.StringIO(default_storage.open(job.error_report.name).read().decode())))
    live = list(csv.reader(io.StringIO("".join(stream_rows(report_rows(job))))))
    assert stored == live and stored[1][1] == "'=HYPERLINK(\"http://x\")"
