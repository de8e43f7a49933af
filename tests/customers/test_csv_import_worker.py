"""A queued CSV import run by a real Celery worker (real Redis broker, committed data):
the worker streams the file in chunks, the progress bar moves, the run ends succeeded."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test import Client

from customers.imports.models import ImportJob
from customers.models import Customer, TraitDefinition
from ops.models import TaskRun
from tenants.models import Tenant
from tests.conftest import host_of, membership_of

pytestmark = pytest.mark.worker
ROWS = 3000


@pytest.fixture
def alpha(committed_db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.IMPORT_CHUNK_ROWS = 250  # 12 chunks: progress between them is observable
    tenant = Tenant.objects.get(slug="alpha")
    yield tenant
    connection.set_tenant(tenant)
    Customer.objects.filter(external_id__startswith="wk-").delete()
    TraitDefinition.objects.filter(key="wk_visits").delete()
    ImportJob.objects.all().delete()
    TaskRun.objects.filter(kind=TaskRun.Kind.CSV_IMPORT).delete()
    connection.set_schema_to_public()


def test_a_real_worker_imports_a_queued_file_and_reports_progress(alpha, celery_worker):
    client = Client(HTTP_HOST=host_of(alpha))
    client.force_login(membership_of(alpha, "admin@alpha.test").user)
    body = "external_id,plan,wk_visits\n" + "".join(f"wk-{i},{'pro' if i % 2 else 'free'},{i}\n" for i in range(ROWS))
    from django.core.files.uploadedfile import SimpleUploadedFile

    uploaded = client.post("/customers/imports/upload/", {"kind": "customers",
                                                          "file": SimpleUploadedFile("big.csv", body.encode())})
    assert uploaded.status_code == 302, uploaded.content
    started = client.post(uploaded["Location"], {"column-0": "external_id", "column-1": "trait:plan",
                                                 "column-2": "trait:wk_visits"})
    assert started.status_code == 302
    connection.set_tenant(alpha)
    job = ImportJob.objects.get()
    run_id = job.task_run_id
    seen, partial_pages = [], []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = TaskRun.objects.get(pk=run_id)
        seen.append(run.done)
        if run.status == "running" and 0 < run.done < ROWS and not partial_pages:
            connection.set_schema_to_public()
            partial_pages.append(client.get(f"/tasks/{run_id}/").content.decode())
            connection.set_tenant(alpha)
        if run.is_finished:
            break
        time.sleep(0.05)
    job.refresh_from_db()
    assert (run.status, run.error, run.done, run.total) == ("succeeded", "", ROWS, ROWS)
    assert (job.status, job.rows_imported, job.rows_failed) == ("succeeded", ROWS, 0)
    assert any(0 < done < ROWS for done in seen), seen  # progress was committed between chunks
    assert seen == sorted(seen)
    assert partial_pages and 'hx-trigger="load delay:1s"' in partial_pages[0]
    assert Customer.objects.filter(external_id__startswith="wk-", plan="pro").count() == ROWS // 2
    assert Customer.objects.get(external_id="wk-41").traits == {"wk_visits": 41}
    connection.set_schema_to_public()
