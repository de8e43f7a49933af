"""What every model run shares: a version per tenant taken under a lock, and execution
with its status, progress and failure recorded on the run and its TaskRun."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta

import joblib
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Max

from common.clock import Clock
from common.errors import DomainError
from ops.services import task_run_finish, task_run_progress, task_run_start

Progress = Callable[[int, int, str], None]


def next_version(model) -> int:
    """The next version of a run table (call inside the transaction that creates the run)."""
    with connection.cursor() as cursor:  # two requests at once must not take the same version
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))", [model._meta.db_table])
    return (model.objects.aggregate(v=Max("version"))["v"] or 0) + 1


def execute(run, *, clock: Clock, work: Callable[[Progress], str]):
    """Run `work(progress)` for a queued run; it returns the finished message. A rerun of
    a finished run does nothing; a DomainError (e.g. too little data) fails the run with
    its message; any other error fails it and is re-raised for the worker's log."""
    model = type(run)
    if run.status in (model.Status.SUCCEEDED, model.Status.FAILED):
        return run
    model.objects.filter(pk=run.pk).update(status=model.Status.RUNNING, started_at=clock(), error="")
    task_run_start(run_id=run.task_run_id, now=clock(), message="Starting")
    try:
        message = work(lambda done, total, text: task_run_progress(run_id=run.task_run_id, done=done, total=total,
                                                                  message=text))
    except Exception as error:
        text = "; ".join(error.messages) if isinstance(error, DomainError) else f"The run failed: {error}"
        model.objects.filter(pk=run.pk).update(status=model.Status.FAILED, error=text, finished_at=clock())
        task_run_finish(run_id=run.task_run_id, now=clock(), error=text)
        if not isinstance(error, DomainError):
            raise
        return model.objects.get(pk=run.pk)
    model.objects.filter(pk=run.pk).update(finished_at=clock())
    task_run_finish(run_id=run.task_run_id, now=clock(), message=message, result={"version": run.version})
    return model.objects.get(pk=run.pk)


# A run "running" for longer than its task's hard limit (insights.tasks.RUN_LIMITS) died
# with its worker.
STUCK_AFTER = timedelta(hours=2)


def fail_stuck(*, models, now) -> int:
    """Runs whose worker died mid-run: marked failed with a message (the run in force was
    never replaced, so nothing else changes); returns how many."""
    failed = 0
    for model in models:
        stuck = model.objects.filter(status__in=[model.Status.RUNNING, model.Status.QUEUED],
                                     created_at__lt=now - STUCK_AFTER)
        for run in stuck:
            if run.task_run_id:
                task_run_finish(run_id=run.task_run_id, now=now, error="The worker running it stopped.")
        failed += stuck.update(status=model.Status.FAILED, finished_at=now,
                               error="The worker running it stopped before it finished; the previous run stays in force.")
    return failed


def save_artifact(name: str, payload: dict) -> str:
    """A fitted model in the tenant's own folder of the default storage (never shared
    across tenants); returns its path."""
    buffer = io.BytesIO()
    joblib.dump(payload, buffer)
    path = f"insights/{connection.schema_name}/{name}.joblib"
    if default_storage.exists(path):
        default_storage.delete(path)
    return default_storage.save(path, ContentFile(buffer.getvalue()))


def load_artifact(path: str) -> dict:
    if not path.startswith(f"insights/{connection.schema_name}/"):  # another tenant's model: never
        raise PermissionError(path)
    with default_storage.open(path, "rb") as stream:
        return joblib.load(stream)
