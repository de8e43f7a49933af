"""Celery tasks of the segment engine: thin, taking ids and ISO times."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import redis
import structlog
from django.conf import settings
from django.db import connection
from django.utils import timezone

from customers.touch import Touch

from ops import telemetry
from ops.tasking import for_each_tenant, public_task, send_to_tenant, sent_at, tenant_task
from segments import due_queue, lookup, scheduling, touches
from segments.models import SegmentEvaluation
from segments.warehouse import services as warehouse
from tenants.selectors import tenants_active

logger = structlog.get_logger(__name__)
LIMITS = {"soft_time_limit": 1800, "time_limit": 1900}
MAX_ATTEMPTS = 5


@tenant_task(name="segments.evaluate_segment", bind=True, max_retries=MAX_ATTEMPTS - 1, **LIMITS)
def evaluate_segment(self, *, segment_id: int, now_iso: str, trigger: str, evaluation_id: int | None = None,
                     customer_ids: list[int] | None = None) -> str:
    """Evaluate one segment; a failed evaluation is retried with backoff on the same record."""
    evaluation = scheduling.evaluate_with_dependents(
        segment_id=segment_id, now=datetime.fromisoformat(now_iso), trigger=trigger, clock=timezone.now,
        customer_ids=customer_ids, evaluation_id=evaluation_id)
    if evaluation is not None and evaluation.status == SegmentEvaluation.Status.FAILED:
        if self.request.retries < self.max_retries:
            raise self.retry(countdown=int(scheduling.retry_delay(self.request.retries).total_seconds()),
                             kwargs={"segment_id": segment_id, "now_iso": now_iso, "trigger": trigger,
                                     "evaluation_id": evaluation.pk, "customer_ids": customer_ids})
    return evaluation.status if evaluation is not None else "gone"


@tenant_task(name="segments.evaluate_due", **LIMITS)
def evaluate_due(*, now_iso: str) -> int:
    """One slice of the tenant's due segments; the rest is queued behind other tenants'
    work (segments/due_queue.py)."""
    schema = connection.schema_name
    try:
        run = scheduling.evaluate_due(now=datetime.fromisoformat(now_iso), clock=timezone.now,
                                      budget=timedelta(seconds=settings.SEGMENT_DUE_SLICE_SECONDS))
    except Exception:
        due_queue.release(schema)  # the next minute's dispatch tries again, not the flag's expiry
        raise
    if run.left:
        due_queue.keep(schema)
        send_to_tenant(evaluate_due, schema_name=schema, now_iso=timezone.now().isoformat())
    else:
        due_queue.release(schema)
    lookup.lookup_sync()  # the minute's sweep, should a queued sync have been lost
    if touches.stranded():  # pending touches whose check was lost
        send_to_tenant(evaluate_touched, schema_name=schema)
    return run.evaluated


@tenant_task(name=lookup.SYNC_TASK, soft_time_limit=120, time_limit=150)
def lookup_sync() -> int:
    """Refresh the membership lookup's answers from the outbox (segments.lookup)."""
    lookup.sync_started()
    return lookup.lookup_sync()


@tenant_task(name="segments.evaluate_touched", bind=True, **LIMITS)
def evaluate_touched(self, *, now_iso: str | None = None, **touch) -> int:
    """Re-check what new data reached: everything pending for the tenant (segments.touches),
    or the Touch given as the payload (name → the customer ids it reached).

    TRICKY: the check runs as of when the worker runs it, not as of the write: an event
    stamped with its arrival time is not yet in the world of an evaluation at that same
    instant (the rules ignore events at or after `now`)."""
    now = datetime.fromisoformat(now_iso) if now_iso else timezone.now()
    taken = Touch.from_payload(touch) if touch else touches.take(check_id=self.request.id or "eager")
    checked = 0
    if taken is not None:
        checked = scheduling.evaluate_touched(touch=taken, now=now, clock=timezone.now)
        if not touch:
            touches.done(check_id=self.request.id or "eager")
    telemetry.freshness_observed(sent_at=sent_at(self.request), now=time.time())
    return checked


def customers_touched(touch: Touch) -> None:
    """customers.touch's handler (settings.CUSTOMER_TOUCH_HANDLERS), after the write commits:
    when the tenant has segments to check, add the touch to its pending ones and queue a
    check unless one is queued (segments.touches). Redis unreachable: the check is queued
    with the touch itself, as nothing may be lost."""
    if not scheduling.checks_wanted():
        return
    try:
        queue = touches.pending_add(touch)
    except redis.RedisError as error:
        logger.warning("touches_unavailable", error=f"{type(error).__name__}: {error}"[:200])
        send_to_tenant(evaluate_touched, schema_name=connection.schema_name, **touch.as_payload())
        return
    if queue:
        send_to_tenant(evaluate_touched, schema_name=connection.schema_name)


@public_task(name="segments.dispatch_due", soft_time_limit=60, time_limit=90)
def dispatch_due() -> int:
    """Offer every active tenant a slice of its due segments, unless one is queued or
    running already (segments/due_queue.py); returns how many were queued."""
    now_iso = timezone.now().isoformat()
    sent = 0
    for schema_name in tenants_active().values_list("schema_name", flat=True).iterator():
        if due_queue.claim(schema_name):
            send_to_tenant(evaluate_due, schema_name=schema_name, now_iso=now_iso)
            sent += 1
    return sent


@tenant_task(name=warehouse.EXPORT_TASK, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def warehouse_export(*, export_id: int) -> str:
    """Run a warehouse export; redelivered after a lost worker, it resumes (segments.warehouse)."""
    export = warehouse.export_run(export_id=export_id, clock=timezone.now)
    return export.status if export is not None else "gone"


@tenant_task(name="segments.exports_due")
def exports_due() -> int | None:
    export = warehouse.exports_due(now=timezone.now())
    return export.pk if export is not None else None


@public_task(name="segments.dispatch_exports", soft_time_limit=60, time_limit=90)
def dispatch_exports() -> int:
    return for_each_tenant(exports_due)
