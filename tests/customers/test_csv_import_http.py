"""CSV import over HTTP: the pages (upload → map → result, partials, report download) and
/api/v1/imports/ (multipart upload, start, errors.csv), every bad-input class as a coded
4xx with a path and nothing half-written, and tenant isolation."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from apikeys.services import api_key_create
from customers.imports.models import ImportJob
from customers.imports.services import import_run, import_upload
from customers.models import Customer
from ops.models import TaskRun
from tests.conftest import host_of, membership_of, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
API = "/api/v1/imports/"
GOOD = "external_id,email,plan,visits\nu1,ada@example.test,pro,3\nu2,bob@example.test,free,x\n"


@pytest.fixture(autouse=True)
def _media_and_clock(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with time_machine.travel(NOW, tick=False):
        yield



def csv_file(content: str | bytes, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content, "text/csv")


def errors(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def jobs_in(tenant) -> int:
    connection.set_tenant(tenant)
    count = ImportJob.objects.count()
    connection.set_schema_to_public()
    return count


def run_queued(tenant, job_id: int) -> ImportJob:
    """What the worker does with the queued message (the real worker: test_csv_import_worker.py)."""
    connection.set_tenant(tenant)
    job = import_run(job_id=job_id, clock=lambda: NOW)
    connection.set_schema_to_public()
    return job


# ------------------------------------------------------------------------------ pages


def test_upload_map_and_result_pages(tenant, django_capture_on_commit_callbacks):
    """Upload → mapping screen with auto-mapped selects → start → result with counts,
    the progress partial and the problems table; the report downloads as CSV."""
    client = session(tenant, "marketer")
    page = client.get("/customers/imports/")
    assert page.status_code == 200 and b"Upload a file" in page.content

    uploaded = client.post("/customers/imports/upload/", {"kind": "customers", "file": csv_file(GOOD)})
    assert uploaded.status_code == 302
    map_url = uploaded["Location"]
    mapping_page = client.get(map_url).content.decode()
    assert 'name="column-0"' in mapping_page and "Demographic traits" in mapping_page
    assert '<option value="external_id" selected>' in mapping_page
    assert "New custom trait “visits” · string" in mapping_page

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        started = client.post(map_url, {"column-0": "external_id", "column-1": "trait:email",
                                        "column-2": "trait:plan", "column-3": ""})
    assert started.status_code == 302 and len(callbacks) == 1  # the task is sent on commit
    job_id = int(started["Location"].rstrip("/").split("/")[-1])
    detail = client.get(started["Location"]).content.decode()
    assert f'hx-get="/tasks/' in detail and 'data-status="queued"' in detail
    assert f'hx-get="/customers/imports/{job_id}/summary/"' in detail

    run_queued(tenant, job_id)
    summary = client.get(f"/customers/imports/{job_id}/summary/").content.decode()
    assert 'data-status="succeeded"' in summary and "hx-trigger" not in summary
    assert 'data-testid="count-imported">2<' in summary
    assert client.get(map_url).status_code == 302  # a started import cannot be re-mapped

    connection.set_tenant(tenant)
    assert Customer.objects.get(external_id="u2").plan == "free"
    connection.set_schema_to_public()


def test_problems_show_on_the_result_page_and_in_the_report(tenant):
    client = session(tenant)
    client.post("/customers/imports/upload/", {"kind": "customers", "file": csv_file(
        "external_id,company_size\nu1,10\n,3\nu3,lots\n")})
    connection.set_tenant(tenant)
    job = ImportJob.objects.get()
    connection.set_schema_to_public()
    client.post(f"/customers/imports/{job.pk}/map/", {"column-0": "external_id", "column-1": "trait:company_size"})
    run_queued(tenant, job.pk)
    page = client.get(f"/customers/imports/{job.pk}/").content.decode()
    assert 'data-testid="problems-table"' in page and "type_mismatch" in page and "required" in page
    report = client.get(f"/customers/imports/{job.pk}/errors.csv")
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    lines = b"".join(report.streaming_content).decode().splitlines()
    assert lines[0] == "row,column,code,message"
    assert [line.split(",")[:3] for line in lines[1:]] == [["3", "external_id", "required"],
                                                           ["4", "company_size", "type_mismatch"]]


@pytest.mark.parametrize("content,kind,message", [
    (b"", "customers", "The file is empty."),
    (b"external_id\nu1\xff\n", "customers", "not valid UTF-8"),
    (b"a,a\n1,2\n", "customers", "name each column once"),
    (b"external_id\nu1\n", "orders", "Choose what the file holds"),
])
def test_a_bad_upload_re_renders_the_form_with_the_reason_and_stores_nothing(tenant, content, kind, message):
    response = session(tenant).post("/customers/imports/upload/", {"kind": kind, "file": csv_file(content)})
    assert response.status_code == 400 and message in response.content.decode()
    assert jobs_in(tenant) == 0


def test_a_bad_mapping_re_renders_the_screen_with_errors_per_column(tenant):
    client = session(tenant)
    client.post("/customers/imports/upload/", {"kind": "customers", "file": csv_file(GOOD)})
    connection.set_tenant(tenant)
    job = ImportJob.objects.get()
    connection.set_schema_to_public()
    response = client.post(f"/customers/imports/{job.pk}/map/", {"column-0": "", "column-1": "trait:plan",
                                                                 "column-2": "trait:plan"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Map a column to “Customer external id”" in body and "map each target once" in body
    assert 'aria-invalid="true"' in body
    connection.set_tenant(tenant)
    assert ImportJob.objects.get().status == "uploaded" and not TaskRun.objects.exists()
    connection.set_schema_to_public()


def test_the_same_file_again_is_flagged_on_the_mapping_screen(tenant):
    client = session(tenant)
    client.post("/customers/imports/upload/", {"kind": "customers", "file": csv_file(GOOD)})
    second = client.post("/customers/imports/upload/", {"kind": "customers", "file": csv_file(GOOD, "again.csv")})
    assert 'data-testid="previous-import"' in client.get(second["Location"]).content.decode()


def test_a_failed_import_can_be_retried(tenant, django_capture_on_commit_callbacks):
    client = session(tenant)
    client.post("/customers/imports/upload/", {"kind": "customers", "file": csv_file(GOOD)})
    connection.set_tenant(tenant)
    job = ImportJob.objects.get()
    connection.set_schema_to_public()
    client.post(f"/customers/imports/{job.pk}/map/", {"column-0": "external_id"})
    connection.set_tenant(tenant)
    default_storage.delete(ImportJob.objects.get().file.name)  # the stored file is gone
    connection.set_schema_to_public()
    with pytest.raises(FileNotFoundError):
        run_queued(tenant, job.pk)
    page = client.get(f"/customers/imports/{job.pk}/").content.decode()
    assert "no longer stored" in page and "Retry" in page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(f"/customers/imports/{job.pk}/retry/").status_code == 302
    assert len(callbacks) == 1
    assert client.post(f"/customers/imports/{job.pk}/retry/").status_code == 409  # queued, not failed


# ------------------------------------------------------------------------------ API


def key_client(tenant, scopes: list[str]) -> Client:
    connection.set_tenant(tenant)
    _, plain = api_key_create(actor=membership_of(tenant, f"admin@{tenant.slug}.test"), name="imports",
                              scopes=scopes, now=NOW)
    connection.set_schema_to_public()
    return Client(HTTP_HOST=host_of(tenant), HTTP_AUTHORIZATION=f"Bearer {plain}")


def test_api_upload_without_mapping_answers_201_with_header_sample_and_suggestion(tenant):
    response = key_client(tenant, ["ingest"]).post(API, {"kind": "customers", "file": csv_file(GOOD)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["header"], body["rows_total"], body["task"]) == (
        "uploaded", ["external_id", "email", "plan", "visits"], None, None)
    assert body["suggested_mapping"] == {"external_id": "external_id", "email": "trait:email", "plan": "trait:plan",
                                         "visits": "trait:visits"}


def test_api_upload_with_mapping_queues_202_then_reports_counts_and_errors(tenant, django_capture_on_commit_callbacks):
    client = key_client(tenant, ["ingest"])
    mapping = {"external_id": "external_id", "plan": "trait:plan", "size": "trait:company_size"}
    body = "external_id,plan,size\nu1,pro,3\nu2,free,x\n"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(API, {"kind": "customers", "file": csv_file(body), "mapping": json.dumps(mapping)})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["task"]["url"] == f"/tasks/{body['task']['id']}/"
    assert len(callbacks) == 1

    run_queued(tenant, body["id"])
    detail = client.get(f"{API}{body['id']}/").json()
    assert (detail["status"], detail["rows_imported"], detail["rows_failed"]) == ("succeeded", 1, 1)
    assert detail["task"]["status"] == "succeeded"
    listed = client.get(API).json()["results"]
    assert [j["id"] for j in listed] == [body["id"]]
    report = client.get(detail["errors_url"])
    assert report.status_code == 200
    text = b"".join(report.streaming_content).decode()
    assert text.splitlines()[1].startswith("3,size,type_mismatch,")


def test_api_start_an_uploaded_import_and_retrying_the_request_is_harmless(tenant):
    client = session(tenant)
    job_id = client.post(API, {"kind": "events", "file": csv_file("user,event\nu1,login\n")}).json()["id"]
    start = {"mapping": {"user": "external_id", "event": "name"}}
    first = client.post(f"{API}{job_id}/", start, content_type="application/json")
    again = client.post(f"{API}{job_id}/", start, content_type="application/json")
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["task"]["id"] == again.json()["task"]["id"]
    other = client.post(f"{API}{job_id}/", {"mapping": {"user": "external_id", "event": "name", "x": "y"}},
                        content_type="application/json")
    assert other.status_code in (400, 409)
    assert client.post(f"{API}{job_id}/", {}, content_type="application/json").status_code == 400


@pytest.mark.parametrize("form,status,expected", [
    ({"kind": "customers"}, 400, {("file", "required")}),
    ({"kind": "orders", "file": GOOD}, 400, {("kind", "unknown_kind")}),
    ({"kind": "customers", "file": b""}, 400, {("file", "empty_file")}),
    ({"kind": "customers", "file": b"\xef\xbb\xbf"}, 400, {("file", "empty_file")}),
    ({"kind": "customers", "file": b"external_id,plan\nu1,\xe9t\xe9\n"}, 400, {("file", "not_utf8")}),
    ({"kind": "customers", "file": "u1,ada@example.test\nu2,bob@example.test\n"}, 400, {("header", "no_header")}),
    ({"kind": "customers", "file": "id,plan,PLAN\n1,a,b\n"}, 400, {("header[2]", "duplicate_column")}),
    ({"kind": "customers", "file": "external_id,plan\n"}, 400, {("file", "no_rows")}),
    ({"kind": "customers", "file": GOOD, "mapping": "{not json"}, 400, {("mapping", "invalid_json")}),
    ({"kind": "customers", "file": GOOD, "mapping": json.dumps({"nope": "external_id"})}, 400,
     {("mapping.nope", "unknown_column"), ("mapping", "missing_target")}),
    ({"kind": "customers", "file": GOOD, "mapping": json.dumps({"external_id": "external_id", "plan": "rocket"})},
     400, {("mapping.plan", "unknown_target")}),
    ({"kind": "customers", "file": GOOD,
      "mapping": json.dumps({"external_id": "external_id", "plan": "trait:plan", "email": "trait:plan"})},
     400, {("mapping.plan", "duplicate_target")} | {("mapping.email", "duplicate_target")}),
    ({"kind": "customers", "file": GOOD, "mapping": json.dumps({"plan": "trait:plan"})}, 400,
     {("mapping", "missing_target")}),
    ({"kind": "events", "file": GOOD, "mapping": json.dumps({"external_id": "external_id"})}, 400,
     {("mapping", "missing_target")}),
    ({"kind": "survey_responses", "file": GOOD,
      "mapping": json.dumps({"external_id": "external_id", "plan": "survey"})}, 400, {("mapping", "missing_target")}),
])
def test_every_bad_input_class_is_a_coded_4xx_with_a_path_and_nothing_is_kept(tenant, settings, form, status,
                                                                               expected):
    data = {k: (csv_file(v) if k == "file" else v) for k, v in form.items()}
    response = session(tenant).post(API, data)
    assert response.status_code == status, response.content
    got = errors(response)
    assert got & expected and all(path for path, _ in got if (path, _) in expected)
    assert jobs_in(tenant) == 0
    assert not any((p for p in (__import__("pathlib").Path(settings.MEDIA_ROOT)).rglob("*.csv")))


def test_api_refuses_a_file_over_the_limit_with_413(tenant, settings):
    settings.IMPORT_MAX_BYTES = 20
    response = session(tenant).post(API, {"kind": "customers", "file": csv_file(GOOD)})
    assert response.status_code == 413 and errors(response) == {("file", "too_large")}
    assert jobs_in(tenant) == 0


def test_api_json_body_is_415_and_roles_without_import_get_403(tenant):
    assert session(tenant).post(API, {"kind": "customers"}, content_type="application/json").status_code == 415
    viewer = session(tenant, "viewer")
    assert viewer.get(API).status_code == 403
    assert viewer.post(API, {"kind": "customers", "file": csv_file(GOOD)}).status_code == 403
    assert key_client(tenant, ["read"]).get(API).status_code == 403


# ------------------------------------------------------------------------------ isolation


def test_another_tenants_import_is_not_found_on_pages_and_api(tenant, other_tenant):
    """beta's import id, asked for on alpha's host by alpha's admin: 404 everywhere."""
    connection.set_tenant(other_tenant)
    beta_admin = membership_of(other_tenant, "admin@beta.test")
    foreign = [import_upload(actor=beta_admin, kind="customers", upload=csv_file(GOOD), now=NOW) for _ in range(3)][-1]
    connection.set_tenant(tenant)
    alpha_ids = set(ImportJob.objects.values_list("pk", flat=True))
    connection.set_schema_to_public()
    assert foreign.pk not in alpha_ids  # ids are per schema: only an id alpha lacks proves anything
    client = session(tenant)
    for url in (f"/customers/imports/{foreign.pk}/", f"/customers/imports/{foreign.pk}/map/",
                f"/customers/imports/{foreign.pk}/summary/", f"/customers/imports/{foreign.pk}/errors.csv",
                f"{API}{foreign.pk}/", f"{API}{foreign.pk}/errors.csv"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"{API}{foreign.pk}/", {"mapping": {"external_id": "external_id"}},
                       content_type="application/json").status_code == 404
    assert client.post(f"/customers/imports/{foreign.pk}/map/", {"column-0": "external_id"}).status_code == 404
    connection.set_tenant(other_tenant)
    assert ImportJob.objects.get(pk=foreign.pk).status == "uploaded"
    connection.set_schema_to_public()
