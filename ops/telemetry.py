"""Prometheus metrics: what each process counts as it works, and what /metrics reads when
it is scraped.

Counted in-process (prometheus_client's multiprocess mode: every gunicorn worker, Celery
child and the dev server write to files in PROMETHEUS_MULTIPROC_DIR, which /metrics sums):
requests per route, ingested events and rejects, evaluation durations, freshness, lookups.
Read at scrape time (so any host's /metrics tells the whole cluster): each queue's depth and
lag, and each tenant's backlog of published-but-not-started tasks with the age of its
oldest — kept in Redis by the Celery signal handlers below.

The names and labels are the contract with dashboards: README "Metrics" lists them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

import time
from datetime import datetime

import redis
import structlog
from celery.signals import before_task_publish, task_prerun, task_revoked
from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from config.celery import SENT_AT_HEADER
from ops.tasking import header

logger = structlog.get_logger(__name__)

HOST = socket.gethostname().replace("_", "-")


def _process_identifier() -> str:
    # The files are named after the process; with the host in the name, containers that
    # share one directory (docker-compose mounts one volume) never write the same file.
    return f"{HOST}-{os.getpid()}"


values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800)

HTTP_REQUESTS = Histogram(
    "strata_http_request_duration_seconds", "Requests by route pattern, method and status class, and their latency.",
    ["route", "method", "status"], buckets=LATENCY_BUCKETS)
INGESTED_EVENTS = Counter(
    "strata_ingest_events_total", "Tracked messages by source (tracking, api, csv_import), tenant and outcome "
    "(accepted, duplicate, rejected).", ["source", "tenant", "outcome"])
INGEST_REJECTS = Counter(
    "strata_ingest_rejects_total", "Rejected tracked messages and whole requests, by source and error code.",
    ["source", "code"])
INBOX_SET_ASIDE = Counter(
    "strata_inbox_set_aside_total", "Tracking requests whose items the merge could not store, set aside "
    "(customers_inboxbatch.failed_at; `manage.py inbox_retry` lists and retries them), by tenant.", ["tenant"])
EVALUATIONS = Histogram(
    "strata_evaluation_duration_seconds", "Segment evaluations by kind (full, incremental) and outcome.",
    ["kind", "status"], buckets=DURATION_BUCKETS)
FRESHNESS = Histogram(
    "strata_freshness_seconds", "From a write that touched customers being committed to their memberships "
    "being checked (the incremental re-check's end).", buckets=LATENCY_BUCKETS)
LOOKUPS = Counter(
    "strata_lookup_requests_total", "Membership lookups by answer: hit (served from the cache), miss (read from "
    "the database), unknown (no such customer).", ["result"])

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_observed(*, route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route=route, method=method if method in METHODS else "other",
                         status=f"{status // 100}xx").observe(seconds)


def ingest_counted(*, source: str, tenant: str, accepted: int, duplicates: int, rejected: Iterable[str]) -> None:
    codes = list(rejected)
    for outcome, count in (("accepted", accepted), ("duplicate", duplicates), ("rejected", len(codes))):
        if count:
            INGESTED_EVENTS.labels(source=source, tenant=tenant, outcome=outcome).inc(count)
    for code in codes:
        INGEST_REJECTS.labels(source=source, code=code).inc()


def inbox_set_aside(*, tenant: str) -> None:
    INBOX_SET_ASIDE.labels(tenant=tenant).inc()


def request_rejected(*, source: str, code: str) -> None:
    INGEST_REJECTS.labels(source=source, code=code).inc()


def evaluation_observed(*, kind: str, status: str, seconds: float) -> None:
    EVALUATIONS.labels(kind=kind, status=status).observe(seconds)


def freshness_observed(*, sent_at: float | None, now: float) -> None:
    if sent_at is not None:
        FRESHNESS.observe(max(now - sent_at, 0.0))


def lookup_counted(result: str) -> None:
    LOOKUPS.labels(result=result).inc()


# ------------------------------------------------------------------ backlog per tenant
# One sorted set per (queue, tenant): task id → when it is due (sent, or its countdown's
# end). Publishing adds, starting removes; an index set names the sorted sets so a scrape
# need not SCAN. A task lost without starting (a purged queue) stays until STALE_SECONDS.
BACKLOG_PREFIX = "strata:backlog:"
STALE_SECONDS = 7 * 24 * 3600

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_timeout=1,
                                       socket_connect_timeout=1)
    return _client


def _key(*parts: str) -> str:
    return settings.CACHES["default"].get("KEY_PREFIX", "") + BACKLOG_PREFIX + ":".join(parts)


def backlog_published(*, queue: str, tenant: str, task_id: str, due: float) -> None:
    member = f"{queue}|{tenant}"
    pipe = _redis().pipeline(transaction=False)
    pipe.zadd(_key("tasks", member), {task_id: due})
    pipe.sadd(_key("index"), member)
    pipe.execute()


def backlog_started(*, queue: str, tenant: str, task_id: str) -> None:
    _redis().zrem(_key("tasks", f"{queue}|{tenant}"), task_id)


def backlog_forget() -> None:
    """Forget every backlog (the queues were purged)."""
    client = _redis()
    members = [m.decode() for m in client.smembers(_key("index"))]
    client.delete(_key("index"), *[_key("tasks", m) for m in members])


def backlog(*, now: float) -> list[tuple[str, str, int, float]]:
    """(queue, tenant, waiting tasks, seconds the oldest is past due) for each non-empty backlog."""
    client = _redis()
    members = sorted(m.decode() for m in client.smembers(_key("index")))
    pipe = client.pipeline(transaction=False)
    for member in members:
        pipe.zremrangebyscore(_key("tasks", member), "-inf", now - STALE_SECONDS)
        pipe.zcard(_key("tasks", member))
        pipe.zrange(_key("tasks", member), 0, 0, withscores=True)
    replies = pipe.execute()
    rows = []
    for index, member in enumerate(members):
        count, oldest = replies[3 * index + 1], replies[3 * index + 2]
        if not count:
            continue  # the index entry stays: SREM could race a publish, and it costs one ZCARD
        queue, tenant = member.split("|", 1)
        rows.append((queue, tenant, count, max(now - oldest[0][1], 0.0) if oldest else 0.0))
    return rows


def _due(headers: dict, sent: float) -> float:
    eta = headers.get("eta")
    if not eta:
        return sent
    try:
        return max(datetime.fromisoformat(eta).timestamp(), sent)
    except (TypeError, ValueError):
        return sent


def on_publish(sender=None, routing_key=None, headers=None, **_kwargs) -> None:
    """before_task_publish: the task joins its tenant's backlog of its queue."""
    if not headers or not routing_key or not headers.get("id"):
        return
    sent = float(headers.get(SENT_AT_HEADER) or time.time())
    try:
        backlog_published(queue=routing_key, tenant=headers.get("_schema_name") or "public",
                          task_id=headers["id"], due=_due(headers, sent))
    except redis.RedisError as error:  # metrics must never stop the work they count
        logger.warning("backlog_unavailable", error=f"{type(error).__name__}: {error}"[:200])


def on_start(sender=None, task_id=None, task=None, request=None, **_kwargs) -> None:
    """task_prerun / task_revoked: the task leaves its backlog."""
    request = request if request is not None else getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    if not delivery.get("routing_key"):
        return  # run eagerly, never published
    try:
        backlog_started(queue=delivery["routing_key"], tenant=header(request, "_schema_name") or "public",
                        task_id=task_id or request.id)
    except redis.RedisError as error:
        logger.warning("backlog_unavailable", error=f"{type(error).__name__}: {error}"[:200])


def connect() -> None:
    before_task_publish.connect(on_publish, weak=False, dispatch_uid="strata-backlog-publish")
    task_prerun.connect(on_start, weak=False, dispatch_uid="strata-backlog-start")
    task_revoked.connect(on_start, weak=False, dispatch_uid="strata-backlog-revoked")


class ClusterCollector:
    """Gauges read from Redis when /metrics is scraped: the same numbers on every host."""

    def __init__(self, *, queues: dict, now: float) -> None:
        self.queues = queues
        self.now = now

    def collect(self):
        depth = GaugeMetricFamily("strata_queue_messages", "Messages waiting in each Celery queue.", labels=["queue"])
        lag = GaugeMetricFamily("strata_queue_lag_seconds", "How long the oldest waiting message of each queue has "
                                "waited (0 when empty).", labels=["queue"])
        for name, queue in sorted(self.queues.items()):
            depth.add_metric([name], queue["waiting"])
            lag.add_metric([name], queue["lag_seconds"] or 0)
        tasks = GaugeMetricFamily("strata_tenant_backlog_tasks", "Tasks published for a tenant and not yet started, "
                                  "by queue (held countdowns and retries included).", labels=["queue", "tenant"])
        age = GaugeMetricFamily("strata_tenant_backlog_age_seconds", "How far past due the oldest of a tenant's "
                                "unstarted tasks is, by queue: the freshness lag that tenant sees.",
                                labels=["queue", "tenant"])
        try:
            rows = backlog(now=self.now)
        except redis.RedisError as error:
            logger.warning("backlog_unavailable", error=f"{type(error).__name__}: {error}"[:200])
            rows = []
        for queue, tenant, count, oldest in rows:
            tasks.add_metric([queue, tenant], count)
            age.add_metric([queue, tenant], round(oldest, 3))
        return [depth, lag, tasks, age]


def exposition(*, queues: dict, now: float) -> bytes:
    """The text format of every process's counters plus the cluster gauges."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(ClusterCollector(queues=queues, now=now))
    return generate_latest(registry)
