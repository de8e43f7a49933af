"""Tenant-aware Celery: a task runs in the schema it was sent from, or not at all."""

import time
import uuid
from datetime import datetime, timezone

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from config.celery import app
from ops.models import Heartbeat
from ops.tasks import dispatch_heartbeats, record_heartbeat
from tenants.models import Tenant

pytestmark = pytest.mark.worker
NOW = "2026-11-23T12:00:00+00:00"


def heartbeat_in(tenant: Tenant, source: str) -> Heartbeat | None:
    with schema_context(tenant.schema_name):
        return Heartbeat.objects.filter(source=source).first()


def delete_heartbeats(source: str) -> None:
    for tenant in Tenant.objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name):
            Heartbeat.objects.filter(source=source).delete()


@pytest.fixture
def source(committed_db):
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    delete_heartbeats(name)


def test_task_sent_in_tenant_a_runs_in_a_schema(celery_worker, source):
    alpha, beta = Tenant.objects.get(slug="alpha"), Tenant.objects.get(slug="beta")
    with schema_context(alpha.schema_name):
        result = record_heartbeat.delay(now_iso=NOW, source=source)
    result.get(timeout=30)

    assert heartbeat_in(alpha, source).last_seen_at == datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    assert heartbeat_in(beta, source) is None


def test_task_sent_without_a_tenant_fails_closed(celery_worker, source):
    assert connection.schema_name == "public"
    result = record_heartbeat.delay(now_iso=NOW, source=source)
    result.get(timeout=30, propagate=False)

    assert result.failed()
    assert "needs a tenant" in str(result.result)
    assert all(heartbeat_in(t, source) is None for t in Tenant.objects.exclude(schema_name="public"))


def test_a_replayed_heartbeat_does_not_move_time_backwards(celery_worker, source):
    """Tasks are idempotent: redelivery of an older message changes nothing."""
    alpha = Tenant.objects.get(slug="alpha")
    with schema_context(alpha.schema_name):
        record_heartbeat.delay(now_iso=NOW, source=source).get(timeout=30)
        record_heartbeat.delay(now_iso="2026-11-23T11:00:00+00:00", source=source).get(timeout=30)
        record_heartbeat.delay(now_iso=NOW, source=source).get(timeout=30)
    beat = heartbeat_in(alpha, source)
    assert beat.last_seen_at == datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    with schema_context(alpha.schema_name):
        assert Heartbeat.objects.filter(source=source).count() == 1


def test_dispatcher_fans_out_to_every_active_tenant(celery_worker, committed_db):
    alpha, beta = Tenant.objects.get(slug="alpha"), Tenant.objects.get(slug="beta")
    Tenant.objects.filter(pk=beta.pk).update(status=Tenant.Status.SUSPENDED)
    delete_heartbeats("beat")
    try:
        sent = dispatch_heartbeats.delay().get(timeout=30)
        deadline = time.monotonic() + 30
        while heartbeat_in(alpha, "beat") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        active = Tenant.objects.exclude(schema_name="public").filter(status="active").count()
        assert sent == active
        assert heartbeat_in(alpha, "beat") is not None
        assert heartbeat_in(beta, "beat") is None  # suspended tenants get no work
    finally:
        Tenant.objects.filter(pk=beta.pk).update(status=Tenant.Status.ACTIVE)
        delete_heartbeats("beat")


def test_tasks_are_declared_with_the_house_options():
    for task in (record_heartbeat, dispatch_heartbeats):
        assert task.name.startswith("ops.")
        assert task.acks_late and task.reject_on_worker_lost
        assert task.soft_time_limit and task.time_limit and task.soft_time_limit < task.time_limit
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_url.startswith(("redis://", "redis+socket://"))


def test_task_logs_carry_the_task_id_and_tenant(celery_worker, source, caplog):
    import logging

    alpha = Tenant.objects.get(slug="alpha")
    caplog.set_level(logging.INFO, logger="django_structlog.celery.receivers")
    with schema_context(alpha.schema_name):
        result = record_heartbeat.delay(now_iso=NOW, source=source)
    result.get(timeout=30)
    started = [r for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == "task_started"]
    assert started and started[-1].msg["tenant"] == alpha.schema_name
    assert started[-1].msg["task_id"] == result.id


def test_every_task_a_service_queues_by_name_is_registered():
    """Services name the task they queue (send_to_tenant("segments.evaluate_segment", …))
    instead of importing its module; a misspelt name would be queued and never run."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    app.loader.import_default_modules()  # autodiscovery, as the worker does at start
    named = set()
    for package in ("apikeys", "audit", "campaigns", "customers", "ops", "segments", "tenants"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "send_to_tenant"
                        and node.args and isinstance(node.args[0], ast.Constant)):
                    named.add(node.args[0].value)
    assert named >= {"segments.evaluate_segment", "customers.run_import", "customers.refresh_metrics", "campaigns.tick"}
    assert named <= set(app.tasks), named - set(app.tasks)


def test_work_is_routed_to_queues_by_kind(settings):
    """Freshness, evaluations, sends and long batch work each have their own queue (and
    workers: Procfile, docker-compose.yml); dispatchers stay on the default one."""
    from config.celery import app

    def queue_of(name: str) -> str:
        return app.amqp.router.route({}, name)["queue"].name

    assert queue_of("segments.evaluate_touched") == queue_of("segments.lookup_sync") == "freshness"
    assert queue_of("segments.evaluate_segment") == "evaluations"
    assert queue_of("campaigns.send_entries") == "sends"
    assert queue_of("insights.train_churn_model") == queue_of("customers.run_import") == "batch"
    assert queue_of("segments.dispatch_due") == app.conf.task_default_queue
    routed = {task for tasks in settings.TASK_QUEUES.values() for task in tasks}
    assert routed <= set(app.tasks), "a routed task name that no task has"
