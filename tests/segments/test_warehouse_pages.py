"""The Data exports page and /api/v1/exports/: forms and bodies in, coded refusals out, and
another workspace's exports and files invisible."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.utils import timezone

from segments.warehouse.models import WarehouseExport, WarehouseExportFile, WarehouseSchedule
from tests.conftest import session


def post_json(client, url, body, method="post"):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("body, path, code", [
    ({"tables": ["customers"], "format": "csv"}, "format", "unknown_field"),
    ({"tables": ["customers", "passwords"]}, "tables[1]", "unknown_table"),
    ({}, "tables", "required"),
    ({"tables": ["events"], "include_personal": 1}, "include_personal", "invalid_value"),
])
def test_a_bad_export_request_is_a_coded_400_and_queues_nothing(tenant, body, path, code):
    response = post_json(session(tenant), "/api/v1/exports/", body)
    assert response.status_code == 400, response.content
    assert {(e["path"], e["code"]) for e in response.json()["errors"]} >= {(path, code)}
    connection.set_tenant(tenant)
    assert not WarehouseExport.objects.exists()


def test_an_export_is_queued_by_the_api_and_shown_with_its_task(tenant):
    client = session(tenant)
    response = post_json(client, "/api/v1/exports/", {"tables": ["segments", "customers"]})
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["tables"], body["include_personal"]) == ("queued", ["customers", "segments"], False)
    assert body["task"]["url"] == f"/ops/tasks/{body['task']['id']}/" or body["task"]["url"].endswith(f"/{body['task']['id']}/")
    assert post_json(client, "/api/v1/exports/", {"tables": ["segments"]}).json()["errors"][0]["code"] == \
        "export_running"
    listed = client.get("/api/v1/exports/").json()
    assert [e["id"] for e in listed["results"]] == [body["id"]]
    assert client.get(f"/api/v1/exports/{body['id']}/manifest.json").status_code == 404  # not written yet


def test_the_schedule_by_api(tenant):
    client = session(tenant)
    response = post_json(client, "/api/v1/exports/schedule/", {"enabled": True, "every": "week",
                                                               "tables": ["events"]}, method="put")
    assert response.status_code == 200, response.content
    assert (response.json()["enabled"], response.json()["every"], response.json()["tables"]) == (True, "week", ["events"])
    bad = post_json(client, "/api/v1/exports/schedule/", {"enabled": True, "every": "daily", "tables": ["events"]},
                    method="put")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "every"
    assert client.get("/api/v1/exports/schedule/").json()["every"] == "week"


def test_another_workspaces_export_and_files_are_not_found(tenant, other_tenant):
    connection.set_tenant(other_tenant)
    theirs = WarehouseExport.objects.create(status="succeeded", tables=["segments"], events_until=timezone.now())
    their_file = WarehouseExportFile.objects.create(export=theirs, table="segments", path="t_beta/x.parquet", rows=1,
                                                    row_groups=1, bytes=1, sha256="0" * 64)
    connection.set_tenant(tenant)
    ours = WarehouseExport.objects.create(status="succeeded", tables=["segments"], events_until=timezone.now())
    mine = WarehouseExport.objects.filter(pk=theirs.pk).exists()
    connection.set_schema_to_public()
    client = session(tenant)
    if not mine:  # ids are per schema: beta's id may not exist in alpha at all
        assert client.get(f"/api/v1/exports/{theirs.pk}/").status_code == 404
        assert client.get(f"/exports/{theirs.pk}/").status_code == 404
    # A file id of another export (another workspace's) through one of ours: never served.
    assert client.get(f"/api/v1/exports/{ours.pk}/files/{their_file.pk}/").status_code == 404
    assert client.get(f"/exports/{ours.pk}/files/{their_file.pk}/").status_code == 404


def test_the_page_starts_an_export_and_shows_refusals(tenant):
    client = session(tenant)
    page = client.get("/exports/")
    assert page.status_code == 200 and b"Export now" in page.content and b"Schedule" in page.content
    refused = client.post("/exports/start/", {})
    assert refused.status_code == 400 and b"Choose what to export" in refused.content
    started = client.post("/exports/start/", {"tables": ["segments", "memberships"]})
    assert started.status_code == 302
    detail = client.get(started["Location"])
    assert detail.status_code == 200 and b"memberships" in detail.content and b'data-testid="task-run"' in detail.content
    connection.set_tenant(tenant)
    assert WarehouseExport.objects.get().tables == ["memberships", "segments"]


def test_the_page_saves_the_schedule_and_an_analyst_cannot_export_personal_data(tenant):
    client = session(tenant, "analyst")
    page = client.get("/exports/")
    assert b"cannot export it either" in page.content
    refused = client.post("/exports/start/", {"tables": ["customers"], "include_personal": "on"})
    assert refused.status_code == 403
    saved = client.post("/exports/schedule/", {"enabled": "on", "every": "day", "tables": ["customers", "events"]})
    assert saved.status_code == 302
    connection.set_tenant(tenant)
    schedule = WarehouseSchedule.objects.get()
    assert (schedule.enabled, schedule.every, schedule.tables) == (True, "day", ["customers", "events"])


def test_a_file_removed_from_storage_behind_the_app_is_a_coded_404(tenant):
    """A bucket lifecycle rule or an operator may delete files the export still lists: the
    download answers not_found, never a server error."""
    connection.set_tenant(tenant)
    export = WarehouseExport.objects.create(status="succeeded", tables=["segments"], events_until=timezone.now(),
                                            manifest=f"{tenant.schema_name}/exports/gone/manifest.json")
    file = WarehouseExportFile.objects.create(export=export, table="segments", rows=1, row_groups=1, bytes=1,
                                              path=f"{tenant.schema_name}/exports/gone/segments.parquet",
                                              sha256="0" * 64)
    connection.set_schema_to_public()
    client = session(tenant)
    for url in (f"/api/v1/exports/{export.pk}/files/{file.pk}/", f"/api/v1/exports/{export.pk}/manifest.json"):
        response = client.get(url)
        assert response.status_code == 404, (url, response.content)
        assert response.json()["errors"][0]["code"] == "not_found"
    for url in (f"/exports/{export.pk}/files/{file.pk}/", f"/exports/{export.pk}/manifest.json"):
        assert client.get(url).status_code == 404, url
