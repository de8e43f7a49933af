"""Checks behind /healthz: each returns {"status": "ok"|"error"|..., ...} and never raises."""

from __future__ import annotations

import json
import time
from datetime import datetime

import redis
from django.conf import settings
from django.db import connection

from config.celery import BEAT_KEY, SENT_AT_HEADER, app



def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # a health check reports failures; it must not raise them
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "ok"}


def check_redis() -> dict:
    _redis().ping()
    return {"status": "ok"}


def check_celery(timeout: float = 1.0) -> dict:
    replies = app.control.ping(timeout=timeout) or []
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        return {"status": "error", "error": "no Celery worker answered", "workers": []}
    return {"status": "ok", "workers": workers}


def check_beat(*, now: datetime, max_age_seconds: float) -> dict:
    raw = _redis().get(BEAT_KEY)
    if raw is None:
        return {"status": "unknown", "last_seen": None}
    last = datetime.fromisoformat(raw.decode())
    age = (now - last).total_seconds()
    return {"status": "ok" if age <= max_age_seconds else "stale", "last_seen": last.isoformat()}


QUEUE_LAG_SECONDS = 60  # older than this, a waiting message makes its queue "lagging"


def check_queues(*, now: float) -> dict:
    """Per Celery queue: how many messages wait and how long the oldest has waited (from the
    time it was sent, stamped by config.celery). Informational, like beat."""
    queues = {}
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        client = getattr(channel, "client", None)
        if client is None:  # not a Redis broker: nothing to read without consuming
            return {"status": "unknown", "queues": {}}
        # TRICKY: kombu's client adds the broker's global key prefix to LLEN but not to LINDEX.
        prefix = getattr(client, "global_keyprefix", "") or ""
        for name in sorted(_queue_names()):
            waiting = client.llen(name)
            oldest = client.lindex(prefix + name, -1) if waiting else None  # LPUSH in, BRPOP out: the tail is oldest
            sent = _sent_at(oldest)
            queues[name] = {"waiting": waiting, "lag_seconds": None if sent is None else round(max(now - sent, 0), 1)}
    lagging = any((q["lag_seconds"] or 0) > QUEUE_LAG_SECONDS for q in queues.values())
    return {"status": "lagging" if lagging else "ok", "queues": queues}


def _queue_names() -> set[str]:
    names = {app.conf.task_default_queue or "celery"}
    names.update(q.name for q in (app.conf.task_queues or ()))
    names.update(route["queue"] for route in (app.conf.task_routes or {}).values())
    return names


def _sent_at(raw: bytes | None) -> float | None:
    if not raw:
        return None
    try:
        headers = json.loads(raw).get("headers") or {}
        return float(headers[SENT_AT_HEADER])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a message from before the stamp, or not ours


def beat_mark(*, now: datetime) -> None:
    _redis().set(BEAT_KEY, now.isoformat(), ex=24 * 3600)


def report(*, now: datetime) -> tuple[dict, bool]:
    """The whole report and whether the required parts (database, redis, celery) are ok."""
    checks = {
        "database": _timed(check_database),
        "redis": _timed(check_redis),
        "celery": _timed(check_celery),
        # Informational: beat's first tick may be a minute away after a start.
        "beat": _timed(lambda: check_beat(now=now, max_age_seconds=3 * settings.HEARTBEAT_SECONDS)),
        "queues": _timed(lambda: check_queues(now=now.timestamp())),
    }
    healthy = all(checks[name]["status"] == "ok" for name in ("database", "redis", "celery"))
    return {"status": "ok" if healthy else "error", "checks": checks}, healthy
