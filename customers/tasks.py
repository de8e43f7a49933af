"""Celery tasks of customers: the metrics refresher, on demand and nightly (CSV imports' task
is customers/imports/tasks.py)."""

from datetime import datetime, timedelta

import structlog
from django.db import connection
from django.utils import timezone

from customers import partitions, rollups
from customers.ingest import inbox
from customers.metrics_refresh import metrics_run
from ops.models import TaskRun
from ops.services import task_run_create
from ops.tasking import for_each_tenant, public_task, send_to_tenant, tenant_task

logger = structlog.get_logger(__name__)

# 1M customers / 20M events take minutes; the default 5-minute limit would kill it.
REFRESH_LIMITS = {"soft_time_limit": 3600, "time_limit": 3700}
# A merge stops taking chunks after this long and queues the rest behind other tenants' work.
MERGE_SLICE = timedelta(seconds=20)


@tenant_task(name="customers.refresh_metrics", **REFRESH_LIMITS)
def refresh_metrics(*, run_id: int, now_iso: str) -> None:
    metrics_run(run_id=run_id, now=datetime.fromisoformat(now_iso), clock=timezone.now)


@tenant_task(name="customers.refresh_metrics_nightly", **REFRESH_LIMITS)
def refresh_metrics_nightly(*, now_iso: str) -> None:
    """Beat's nightly refresh of one tenant, with a run of its own so the UI shows it."""
    run = task_run_create(kind=TaskRun.Kind.METRICS_REFRESH, label="Nightly metrics refresh")
    metrics_run(run_id=run.pk, now=datetime.fromisoformat(now_iso), clock=timezone.now)


@public_task(name="customers.dispatch_metrics_refresh", soft_time_limit=60, time_limit=90)
def dispatch_metrics_refresh() -> int:
    return for_each_tenant(refresh_metrics_nightly, now_iso=timezone.now().isoformat())


@tenant_task(name="customers.rollup_backfill", **REFRESH_LIMITS)
def rollup_backfill(*, kind: str, rollup_id: int) -> None:
    """Back-fill one rollup (an event's day rows or a property's daily values), then let
    rules read it."""
    rollups.rollup_backfill(kind=kind, rollup_id=rollup_id, clock=timezone.now)


@tenant_task(name=inbox.MERGE_TASK, soft_time_limit=300, time_limit=360)
def merge_inbox(*, sweep: bool = False) -> int:
    """Store what waits in the tenant's inbox (customers/ingest/inbox.py). After a slice of
    MERGE_SLICE the rest is queued behind other tenants' merges. `sweep`: the minute's
    check for rows whose merge was never queued or was lost; skipped while one is queued."""
    if sweep and inbox.merge_queued():
        return 0
    inbox.merge_started()
    merged, done = inbox.merge(clock=timezone.now, budget=MERGE_SLICE)
    if not done:
        inbox.queue_merge()
    return merged


@public_task(name="customers.dispatch_inbox_sweep", soft_time_limit=60, time_limit=90)
def dispatch_inbox_sweep() -> int:
    return for_each_tenant(merge_inbox, sweep=True)


UPKEEP_ATTEMPTS = 6
UPKEEP_RETRY_SECONDS = 600


@tenant_task(name=partitions.UPKEEP_TASK, **REFRESH_LIMITS)
def event_upkeep(*, now_iso: str, attempt: int = 1) -> dict:
    """Retention and the months ahead (customers/partitions.py). A step that long queries
    kept waiting is tried again later, up to UPKEEP_ATTEMPTS times; then the next night's."""
    try:
        done = partitions.upkeep(now=datetime.fromisoformat(now_iso))
    except partitions.UpkeepBlocked as blocked:
        retry = attempt < UPKEEP_ATTEMPTS
        logger.warning("event_upkeep_blocked", attempt=attempt, retry=retry, error=str(blocked)[:300])
        if retry:
            send_to_tenant(event_upkeep, schema_name=connection.schema_name, countdown=UPKEEP_RETRY_SECONDS,
                           now_iso=now_iso, attempt=attempt + 1)
        return {"blocked": True, "attempt": attempt}
    return {"created": done.created, "dropped": done.dropped, "moved": done.moved, "removed": done.removed}


@public_task(name="customers.dispatch_event_upkeep", soft_time_limit=60, time_limit=90)
def dispatch_event_upkeep() -> int:
    return for_each_tenant(event_upkeep, now_iso=timezone.now().isoformat())
