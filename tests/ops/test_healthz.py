import pytest
from django.test import Client

from tests.conftest import host_of


@pytest.mark.worker
def test_healthz_is_green_with_a_worker(celery_worker):
    response = Client(HTTP_HOST="localhost").get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items() if name != "beat"} == {
        "database": "ok", "redis": "ok", "celery": "ok", "queues": "ok",
    }
    assert body["checks"]["celery"]["workers"]


def test_healthz_is_503_and_names_the_missing_worker(db):
    """No worker consumes the test broker outside the worker fixture."""
    response = Client(HTTP_HOST="localhost").get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["celery"] == body["checks"]["celery"] | {"status": "error"}
    assert "no Celery worker" in body["checks"]["celery"]["error"]
    assert body["checks"]["database"]["status"] == "ok"


def test_healthz_answers_on_tenant_hosts_without_login(tenant):
    response = Client(HTTP_HOST=host_of(tenant)).get("/healthz")
    assert response.status_code in (200, 503) and "checks" in response.json()


def test_healthz_says_how_long_each_queue_has_waited(db):
    """No worker consumes the test queue here: a message sent two minutes "ago" makes it
    lagging, with its count; an empty queue is ok."""
    import time

    from config.celery import app
    from ops.health import check_queues
    from tests.conftest import purge_queues

    purge_queues()
    empty = check_queues(now=time.time())
    assert empty["status"] == "ok" and set(empty["queues"]) == {
        app.conf.task_default_queue, "freshness", "evaluations", "sends", "batch"}
    assert empty["queues"][app.conf.task_default_queue] == {"waiting": 0, "lag_seconds": None}
    app.send_task("ops.dispatch_heartbeats")
    try:
        later = check_queues(now=time.time() + 120)
        queue = later["queues"][app.conf.task_default_queue]
        assert later["status"] == "lagging" and queue["waiting"] == 1 and 119 <= queue["lag_seconds"] <= 122
        body = Client(HTTP_HOST="localhost").get("/healthz").json()
        assert body["checks"]["queues"]["queues"][app.conf.task_default_queue]["waiting"] == 1
    finally:
        purge_queues()


def test_beat_is_alive_as_soon_as_it_starts(db):
    """beat_init marks beat alive, so a fresh `make run` shows beat ok before its first tick."""
    from celery.signals import beat_init
    from django.utils import timezone

    from ops.health import _redis, check_beat
    from config.celery import BEAT_KEY

    _redis().delete(BEAT_KEY)
    assert check_beat(now=timezone.now(), max_age_seconds=180)["status"] == "unknown"
    beat_init.send(sender=None)
    assert check_beat(now=timezone.now(), max_age_seconds=180)["status"] == "ok"
