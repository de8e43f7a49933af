from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.db.models.functions import Greatest

from ops.models import Heartbeat, TaskRun


def heartbeat_record(*, source: str, now: datetime) -> Heartbeat:
    """Note that `source` reached this schema at `now`. Idempotent: a replay never moves
    last_seen_at backwards or adds a row."""
    heartbeat, created = Heartbeat.objects.get_or_create(
        source=source, defaults={"first_seen_at": now, "last_seen_at": now}
    )
    if not created:
        Heartbeat.objects.filter(pk=heartbeat.pk).update(last_seen_at=Greatest(F("last_seen_at"), now))
        heartbeat.refresh_from_db()
    return heartbeat


# ------------------------------------------------------------------ task runs (progress)


def task_run_create(*, kind: str, label: str = "", created_by_id: int | None = None,
                    total: int | None = None) -> TaskRun:
    return TaskRun.objects.create(kind=kind, label=label, created_by_id=created_by_id, total=total)


def task_run_start(*, run_id: int, now: datetime, total: int | None = None, message: str = "") -> None:
    """Mark the run as running. A redelivered task starts again from zero."""
    fields = {"status": TaskRun.Status.RUNNING, "started_at": now, "done": 0, "message": message,
              "error": "", "finished_at": None}
    if total is not None:
        fields["total"] = total
    TaskRun.objects.filter(pk=run_id).update(**fields)


def task_run_progress(*, run_id: int, done: int, total: int | None = None, message: str | None = None) -> None:
    """Record how far the run is. Call it outside the work's transaction so it commits."""
    fields: dict = {"done": done}
    if total is not None:
        fields["total"] = total
    if message is not None:
        fields["message"] = message[:300]
    TaskRun.objects.filter(pk=run_id).update(**fields)


def task_run_finish(*, run_id: int, now: datetime, result: dict | None = None, error: str = "",
                    message: str = "") -> None:
    status = TaskRun.Status.FAILED if error else TaskRun.Status.SUCCEEDED
    fields: dict = {"status": status, "finished_at": now, "error": error, "message": message[:300]}
    if result is not None:
        fields["result"] = result
    if not error:
        # A finished run is complete even when the total was an estimate.
        run = TaskRun.objects.filter(pk=run_id).only("done", "total").first()
        if run is not None and run.total is not None:
            fields["done"] = max(run.done, run.total)
    TaskRun.objects.filter(pk=run_id).update(**fields)
