"""A warehouse export whose Celery worker is killed (SIGKILL) half-way is redelivered to a
new worker process and finishes: every event exported once, the manifest listing each file
once, and nothing left in storage that the manifest does not name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone as django_timezone
from django_tenants.utils import schema_context

from customers.models import Customer, Event
from ops.models import TaskRun
from segments.warehouse import services as warehouse
from segments.warehouse.models import WarehouseExport
from tests.conftest import membership_of, purge_queues
from tests.test_gunicorn import _database_url, workers_of

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parent.parent.parent
DAYS = 300  # one events file a day: enough files that the kill lands in the middle


@pytest.fixture
def batch_worker(committed_db, tmp_path):
    """A prefork Celery worker (one child) on the batch queue, as the Procfile runs it."""
    purge_queues()
    log = tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": _database_url(),
           "REDIS_URL": settings.REDIS_URL, "STRATA_TEST_TAG": settings.CHECKOUT_TAG}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork", "--concurrency=1",
         "--queues=batch", "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--hostname=killtest@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    yield worker, log
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    purge_queues()


def test_a_killed_worker_export_resumes_without_duplicates(alpha_committed, batch_worker):
    tenant, tag = alpha_committed
    worker, log = batch_worker
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with schema_context(tenant.schema_name):
        customer = Customer.objects.create(external_id=f"{tag}-many")
        Event.objects.bulk_create(Event(customer=customer, name="opened", timestamp=start + timedelta(days=i),
                                        message_id=f"{tag}-{i}") for i in range(DAYS))
        events = Event.objects.count()
        admin = membership_of(tenant, "admin@alpha.test")
        try:
            export = warehouse.export_create(actor=admin, tables=["events"],
                                             now=django_timezone.now() + warehouse.EVENTS_SETTLE)
            killed = _kill_mid_export(worker, export, log)
            export = _finished(export, log)
            assert export.status == "succeeded", export.error
            assert killed, "the worker was not killed in the middle of the export"
            files = list(export.files.values_list("path", "rows"))
            assert sum(rows for _path, rows in files) == events == export.rows["events"]
            storage = warehouse.warehouse_storage()
            with storage.open(export.manifest, "rb") as stream:
                listed = [f["path"] for f in json.load(stream)["tables"]["events"]["files"]]
            assert len(listed) == len(set(listed)) == len(files)
            assert sorted(listed) == sorted(path for path, _rows in files) == sorted(_stored(storage, export))
        finally:
            WarehouseExport.objects.all().delete()
            TaskRun.objects.filter(kind=TaskRun.Kind.WAREHOUSE_EXPORT).delete()


def _kill_mid_export(worker, export, log) -> bool:
    """SIGKILL the worker's child once some files are stored and before the last."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stored = export.files.count()
        if DAYS // 10 <= stored < DAYS // 2:
            for child in workers_of(worker):
                os.kill(child, signal.SIGKILL)
            return True
        if WarehouseExport.objects.get(pk=export.pk).status in ("succeeded", "failed"):
            return False
        time.sleep(0.01)
    raise AssertionError("the export did not start: " + log.read_text()[-2000:])


def _finished(export, log) -> WarehouseExport:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        export.refresh_from_db()
        if export.status in ("succeeded", "failed"):
            return export
        time.sleep(0.2)
    raise AssertionError("the export did not finish after the kill: " + log.read_text()[-2000:])


def _stored(storage, export) -> list[str]:
    """Every Parquet object under the export's prefix (a killed attempt's leftovers too)."""
    found, pending = [], [f"{warehouse.export_prefix(export)}/events"]
    while pending:
        directory = pending.pop()
        folders, files = storage.listdir(directory)
        found += [f"{directory}/{name}" for name in files]
        pending += [f"{directory}/{name}" for name in folders]
    return found
