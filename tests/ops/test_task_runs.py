"""Background runs as people watch them: the progress partial, its permissions and its
tenant isolation."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.db import connection
from django.test import Client

from ops.models import TaskRun
from ops.services import task_run_create, task_run_finish, task_run_progress, task_run_start
from tests.conftest import host_of, make_member

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _client(tenant, role: str) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(make_member(tenant, f"{role}-runs@{tenant.slug}.test", role))
    return client


def _run(tenant, kind=TaskRun.Kind.CSV_IMPORT) -> TaskRun:
    connection.set_tenant(tenant)
    run = task_run_create(kind=kind, label="customers.csv")
    connection.set_schema_to_public()
    return run


def test_a_run_reports_progress_then_stops_polling_when_finished(tenant):
    """Running: the partial shows the percentage and polls itself; finished: no polling."""
    run = _run(tenant)
    connection.set_tenant(tenant)
    task_run_start(run_id=run.pk, now=NOW, total=200)
    task_run_progress(run_id=run.pk, done=50, message="parsing")
    connection.set_schema_to_public()
    client = _client(tenant, "marketer")
    body = client.get(f"/tasks/{run.pk}/").content.decode()
    assert 'aria-valuenow="25"' in body and "hx-trigger" in body and "parsing" in body

    connection.set_tenant(tenant)
    task_run_finish(run_id=run.pk, now=NOW, result={"rows": 200})
    run.refresh_from_db()
    connection.set_schema_to_public()
    assert (run.status, run.done, run.percent) == ("succeeded", 200, 100)
    body = client.get(f"/tasks/{run.pk}/").content.decode()
    assert "hx-trigger" not in body and 'data-status="succeeded"' in body


def test_a_failed_run_shows_its_error(tenant):
    run = _run(tenant)
    connection.set_tenant(tenant)
    task_run_finish(run_id=run.pk, now=NOW, error="The file is not UTF-8.")
    connection.set_schema_to_public()
    body = _client(tenant, "admin").get(f"/tasks/{run.pk}/").content.decode()
    assert 'data-status="failed"' in body and "The file is not UTF-8." in body


@pytest.mark.parametrize("role,status", [("viewer", 403), ("analyst", 403), ("marketer", 200), ("admin", 200)])
def test_import_runs_are_visible_only_to_members_who_may_import(tenant, role, status):
    run = _run(tenant)
    assert _client(tenant, role).get(f"/tasks/{run.pk}/").status_code == status


def test_metrics_runs_are_visible_to_every_member_who_sees_customers(tenant):
    run = _run(tenant, TaskRun.Kind.METRICS_REFRESH)
    assert _client(tenant, "viewer").get(f"/tasks/{run.pk}/").status_code == 200


def test_another_tenants_run_is_not_found(tenant, other_tenant):
    """beta's run id, asked for on alpha's host by alpha's admin: 404."""
    foreign = _run(other_tenant)
    own = _run(tenant)
    client = _client(tenant, "admin")
    assert client.get(f"/tasks/{own.pk}/").status_code == 200
    if foreign.pk != own.pk:  # ids are per schema: only a different id proves anything
        assert client.get(f"/tasks/{foreign.pk}/").status_code == 404
    assert client.get(f"/tasks/{max(own.pk, foreign.pk) + 1000}/").status_code == 404
