"""Writes of the CSV import: upload, start (mapping), run (the task's body), report.

Rows go through the one write path in chunks: customers and events as `Message`s into
`customers.ingest.ingest_messages`, survey answers into `customers.feedback`. Each chunk
commits in one transaction together with its row problems, the job's counts and its
checkpoint (`rows_processed`), so a redelivered task resumes where the last commit left
off and nothing is counted, stored or reported twice. Re-running a file is harmless anyway:
events and answers carry a message id (the file's, or one derived from the row's content)
that the insert deduplicates, and customer rows whose values are already stored are
skipped without touching the profile."""

from __future__ import annotations

import io
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F

from common.actors import Actor
from common.clock import Clock
from common.csv import write_rows
from common.errors import Code, Conflict, CustomerCode, DomainError, Problem, TooLarge
from customers.imports import mapping as maps
from customers.imports import parquet, parsing
from customers.imports.models import ImportJob, ImportRowError
from customers.imports.writes import store_problems, write_rows_isolating
from customers.ingest.gc import collector_paused
from customers.models import TraitDefinition
from ops.models import TaskRun
from ops.services import task_run_create, task_run_finish, task_run_progress, task_run_start
from ops.tasking import send_to_tenant
from segments.rules.vocabulary import TraitType
from tenants.permissions import ensure_permitted


CHUNK_ROWS = 5000
DEFAULT_MAX_BYTES = 1024**3
REPORT_HEADER = ["row", "column", "code", "message"]
PREVIEW_ERRORS = 50


def max_upload_bytes() -> int:
    return int(getattr(settings, "IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def _actor_user_id(actor: Actor) -> int | None:
    user = getattr(actor, "user", None)
    return getattr(user, "pk", None)


def registry() -> list[maps.Registered]:
    return [maps.Registered(key, TraitType(type_), category, builtin)
            for key, type_, category, builtin in TraitDefinition.objects.values_list(
                "key", "type", "category", "is_builtin")]


def targets_for(kind: str) -> maps.Targets:
    return maps.targets_for(kind, registry() if kind == maps.CUSTOMERS else [])


def _safe_name(name: str) -> str:
    base = PurePath(name or "upload.csv").name
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in base).strip("._") or "upload.csv"
    return cleaned[-100:]


def import_upload(*, actor: Actor, kind: str, upload, now: datetime) -> ImportJob:
    """Store an uploaded CSV and read its header and first rows. The whole file is
    checked (size, UTF-8) before it is kept; problems are DomainErrors with paths
    `kind`, `file`, `header[i]`."""
    ensure_permitted(actor, "data.import")
    problems = []
    if kind not in maps.KINDS:
        problems.append(Problem("kind", CustomerCode.UNKNOWN_KIND,
                                f"Choose what the file holds: {', '.join(maps.KINDS)}."))
    if upload is None:
        problems.append(Problem("file", Code.REQUIRED, "Choose a CSV or Parquet file to upload."))
    if problems:
        raise DomainError(problems=problems)
    limit = max_upload_bytes()
    if upload.size is not None and upload.size > limit:
        raise TooLarge.single(path="file", code=Code.TOO_LARGE,
                              message=f"Files may be at most {limit // (1024 * 1024):,} MB.")
    upload.seek(0)
    if parquet.looks_like_parquet(upload.read(4)):
        return _parquet_upload(actor=actor, kind=kind, upload=upload, limit=limit, now=now)
    upload.seek(0)
    scanned = parsing.scan(upload.chunks(), max_bytes=limit)
    upload.seek(0)
    head = upload.read(parsing.SNIFF_BYTES)
    detected = parsing.detect(head, truncated=scanned.size > len(head))
    upload.seek(0)
    return ImportJob.objects.create(
        kind=kind, original_name=(upload.name or "upload.csv")[:255], file=_store(upload, now), size=scanned.size,
        sha256=scanned.sha256, encoding="utf-8-sig" if scanned.has_bom else "utf-8", delimiter=detected.delimiter,
        header=detected.header, sample=detected.sample, created_by_id=_actor_user_id(actor),
    )


def _parquet_upload(*, actor: Actor, kind: str, upload, limit: int, now: datetime) -> ImportJob:
    """A Parquet file (recognised by its magic bytes, whatever its name): its columns are
    the header; every row group is read once here, so a corrupt one is refused now."""
    upload.seek(0)
    size, sha256 = parquet.measure(upload.chunks(), max_bytes=limit)
    upload.seek(0)
    inspected = parquet.inspect(upload)
    upload.seek(0)
    return ImportJob.objects.create(
        kind=kind, format=ImportJob.Format.PARQUET, original_name=(upload.name or "upload.parquet")[:255],
        file=_store(upload, now), size=size, sha256=sha256, header=inspected.header, sample=inspected.sample,
        rows_total=inspected.rows, created_by_id=_actor_user_id(actor),
    )


def _store(upload, now: datetime) -> str:
    path = f"imports/{connection.schema_name}/{now:%Y/%m}/{uuid.uuid4().hex}/{_safe_name(upload.name)}"
    return default_storage.save(path, upload)


def import_create(*, actor: Actor, kind: str, upload, mapping: Any = None, now: datetime) -> ImportJob:
    """Upload, and start at once when a mapping is given. A mapping that does not fit
    leaves nothing behind: no job, no stored file."""
    with transaction.atomic():
        job = import_upload(actor=actor, kind=kind, upload=upload, now=now)
        if mapping is None:
            return job
        try:
            return import_start(actor=actor, job=job, mapping=mapping, now=now)
        except DomainError:
            default_storage.delete(job.file.name)
            raise


def import_suggestion(*, job: ImportJob) -> dict[str, str]:
    return maps.suggest(job.kind, job.header, job.sample, targets_for(job.kind))


def import_previous(*, job: ImportJob) -> ImportJob | None:
    """An earlier import of the very same file (same bytes, same kind)."""
    return (ImportJob.objects.filter(sha256=job.sha256, kind=job.kind, pk__lt=job.pk)
            .order_by("-pk").first())


def import_start(*, actor: Actor, job: ImportJob, mapping: Any, now: datetime) -> ImportJob:
    """Check the mapping and queue the import. Starting a started job again with the same
    mapping hands it back (a retried request is harmless); another mapping is a 409."""
    ensure_permitted(actor, "data.import")
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.is_started:
            if mapping == job.mapping:
                return job
            raise Conflict.single(path="mapping", code=CustomerCode.ALREADY_STARTED,
                                  message="This import has started; upload the file again to map it differently.")
        checked, problems, new_types = maps.plan(job.kind, job.header, mapping, targets_for(job.kind), job.sample)
        if problems:
            raise DomainError(problems=problems)
        run = task_run_create(kind=TaskRun.Kind.CSV_IMPORT, label=f"Importing {job.original_name}",
                              created_by_id=_actor_user_id(actor))
        job.mapping = {c.name: c.target for c in checked.columns}
        job.new_trait_types = new_types
        job.status = ImportJob.Status.QUEUED
        job.task_run = run
        job.save(update_fields=["mapping", "new_trait_types", "status", "task_run", "updated_at"])
        import_enqueue(job=job)
    return job


def import_enqueue(*, job: ImportJob) -> None:
    schema, job_id = connection.schema_name, job.pk
    transaction.on_commit(lambda: send_to_tenant("customers.run_import", schema_name=schema, import_id=job_id))


def _records(job: ImportJob, stream):
    if job.format == ImportJob.Format.PARQUET:
        return parquet.records(stream)
    return parsing.records(stream, delimiter=job.delimiter)


def _chunks(job: ImportJob, size: int) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
    """(records before this chunk, chunk) over the stored file."""
    with default_storage.open(job.file.name, "rb") as stream:
        chunk: list[tuple[int, Any]] = []
        before = 0
        for record in _records(job, stream):
            chunk.append(record)
            if len(chunk) == size:
                yield before, chunk
                before += len(chunk)
                chunk = []
        if chunk:
            yield before, chunk


def _plan_of(job: ImportJob) -> maps.Plan:
    checked, problems, _ = maps.plan(job.kind, job.header, job.mapping, targets_for(job.kind), job.sample,
                                     new_types=job.new_trait_types)
    if problems:  # e.g. a trait renamed in the registry since the mapping was checked
        raise DomainError(problems=problems)
    return checked


def _progress_message(job: ImportJob) -> str:
    return f"{job.rows_imported:,} imported · {job.rows_unchanged:,} unchanged · {job.rows_failed:,} with problems"


def import_run(*, job_id: int, clock: Clock, chunk_rows: int | None = None) -> ImportJob | None:
    """Import a queued job's file, chunk by chunk, resuming after the last committed chunk.
    `clock` stamps the start, the finish and the write time of each chunk."""
    job = ImportJob.objects.filter(pk=job_id).select_related("task_run").first()
    if job is None or job.status in (ImportJob.Status.UPLOADED, ImportJob.Status.SUCCEEDED):
        return job  # nothing to do: not mapped yet, or done (a redelivered message)
    run_id = job.task_run_id
    chunk_rows = chunk_rows or int(getattr(settings, "IMPORT_CHUNK_ROWS", CHUNK_ROWS))
    now = clock()
    try:
        if job.rows_total is None:
            with default_storage.open(job.file.name, "rb") as stream:
                job.rows_total = parsing.count_records(stream, delimiter=job.delimiter)
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, rows_total=job.rows_total,
                                                   started_at=job.started_at or now, error="", updated_at=now)
        if run_id:
            task_run_start(run_id=run_id, now=now, total=job.rows_total, message="Importing")
            task_run_progress(run_id=run_id, done=job.rows_processed, message=_progress_message(job))
        plan = _plan_of(job)
        default_time = job.created_at
        for before, rows in _chunks(job, chunk_rows):
            after = before + len(rows)
            if after <= job.rows_processed:
                continue  # committed by an earlier delivery
            with transaction.atomic():
                job = ImportJob.objects.select_for_update().get(pk=job.pk)
                if after <= job.rows_processed:
                    continue  # another delivery got here first
                with collector_paused():  # 5,000 rows of cells and values: see customers/ingest/gc.py
                    outcome = write_rows_isolating(rows, plan, clock(), default_time)
                store_problems(job.pk, outcome.problems)
                ImportJob.objects.filter(pk=job.pk).update(
                    rows_processed=after, rows_imported=F("rows_imported") + outcome.imported,
                    rows_unchanged=F("rows_unchanged") + outcome.unchanged,
                    rows_failed=F("rows_failed") + outcome.failed_rows, updated_at=clock())
            job.refresh_from_db()
            if run_id:  # committed: the progress bar may show it
                task_run_progress(run_id=run_id, done=after, message=_progress_message(job))
        report = _write_report(job)
        finished = clock()
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.SUCCEEDED, error_report=report,
                                                   finished_at=finished, updated_at=finished)
        job.refresh_from_db()
        if run_id:
            task_run_finish(run_id=run_id, now=finished, message=_progress_message(job), result=import_counts(job))
        return job
    except Exception as error:
        reason = _failure_reason(error)
        failed = clock()
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.FAILED, error=reason, finished_at=failed,
                                                   updated_at=failed)
        if run_id:
            task_run_finish(run_id=run_id, now=failed, error=reason)
        raise


def _failure_reason(error: Exception) -> str:
    if isinstance(error, DomainError):
        return "The mapping no longer fits the trait registry: " + "; ".join(p.message for p in error.problems)
    if isinstance(error, FileNotFoundError):
        return "The uploaded file is no longer stored; upload it again."
    if type(error).__name__ == "SoftTimeLimitExceeded":
        return "The import took too long and was stopped; retry it to continue where it stopped."
    return f"The import stopped: {type(error).__name__}: {str(error)[:200]}"


def import_counts(job: ImportJob) -> dict[str, int | None]:
    return {"rows": job.rows_total, "processed": job.rows_processed, "imported": job.rows_imported,
            "unchanged": job.rows_unchanged, "failed": job.rows_failed}


def import_retry(*, actor: Actor, job: ImportJob) -> ImportJob:
    """Queue a failed import again; it continues after the last committed chunk."""
    ensure_permitted(actor, "data.import")
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status != ImportJob.Status.FAILED:
            raise Conflict.single(path="", code=CustomerCode.NOT_FAILED, message="Only a failed import can be retried.")
        job.status = ImportJob.Status.QUEUED
        job.error = ""
        job.save(update_fields=["status", "error", "updated_at"])
        if job.task_run_id:
            TaskRun.objects.filter(pk=job.task_run_id).update(status=TaskRun.Status.QUEUED, error="", finished_at=None)
        import_enqueue(job=job)
    return job


def report_rows(job: ImportJob) -> Iterator[list]:
    yield REPORT_HEADER
    for row, column, code, message in (ImportRowError.objects.filter(job=job).order_by("row", "id")
                                       .values_list("row", "column", "code", "message").iterator(chunk_size=5000)):
        yield [row, column, code, message]


def _write_report(job: ImportJob) -> str:
    """The error report as a CSV file next to the upload; its storage name."""
    with tempfile.TemporaryFile(mode="w+b") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        write_rows(text, report_rows(job))
        text.flush()
        raw.seek(0)
        name = str(PurePath(job.file.name).parent / "errors.csv")
        if default_storage.exists(name):
            default_storage.delete(name)  # a rerun writes the whole report again
        stored = default_storage.save(name, File(raw, name="errors.csv"))
        text.detach()
    return stored
