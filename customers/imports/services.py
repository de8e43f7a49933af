"""Writes of the CSV import: upload, start (mapping), run (the task's body), report.

Rows go through the one write path in chunks: customers and events as `Message`s into
`customers.ingest.ingest_messages`, survey answers into `customers.feedback`. Each chunk
commits in one transaction together with its row problems, the job's counts and its
checkpoint (`rows_processed`), so a redelivered task resumes where the last commit left
off and nothing is counted, stored or reported twice. Re-running a file is harmless anyway:
events and answers carry a message id (the file's, or one derived from the row's content)
that the insert deduplicates, and customer rows whose values are already stored are
skipped without touching the profile.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F

from common.actors import Actor
from common.csv import write_rows
from common.errors import Code, Conflict, CustomerCode, DomainError, Problem, TooLarge
from customers.feedback import SurveyAnswerIn, survey_answers_record
from customers.imports import mapping as maps
from customers.imports import parsing
from customers.imports.customer_upsert import upsert_customers
from customers.imports.models import ImportJob, ImportRowError
from customers.ingest.gc import collector_paused
from customers.ingest.message import ANON_PREFIX, Message
from customers.ingest.store import ingest_messages
from customers.models import TraitDefinition
from customers.selectors import customers_by_external_ids
from ops.models import TaskRun
from ops.services import task_run_create, task_run_finish, task_run_progress, task_run_start
from ops.tasking import send_to_tenant
from segments.rules.vocabulary import BUILTIN_TRAITS, TraitType
from tenants.permissions import ensure_permitted

CHUNK_ROWS = 5000
DEFAULT_MAX_BYTES = 1024**3
REPORT_HEADER = ["row", "column", "code", "message"]
SOURCE = "csv_import"
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


# ------------------------------------------------------------------------------ upload


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
        problems.append(Problem("file", Code.REQUIRED, "Choose a CSV file to upload."))
    if problems:
        raise DomainError(problems=problems)
    limit = max_upload_bytes()
    if upload.size is not None and upload.size > limit:
        raise TooLarge.single(path="file", code=Code.TOO_LARGE,
                              message=f"Files may be at most {limit // (1024 * 1024):,} MB.")
    upload.seek(0)
    scanned = parsing.scan(upload.chunks(), max_bytes=limit)
    upload.seek(0)
    head = upload.read(parsing.SNIFF_BYTES)
    detected = parsing.detect(head, truncated=scanned.size > len(head))
    upload.seek(0)
    path = f"imports/{connection.schema_name}/{now:%Y/%m}/{uuid.uuid4().hex}/{_safe_name(upload.name)}"
    stored = default_storage.save(path, upload)
    return ImportJob.objects.create(
        kind=kind, original_name=(upload.name or "upload.csv")[:255], file=stored, size=scanned.size,
        sha256=scanned.sha256, encoding="utf-8-sig" if scanned.has_bom else "utf-8", delimiter=detected.delimiter,
        header=detected.header, sample=detected.sample, created_by_id=_actor_user_id(actor),
    )


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


# ------------------------------------------------------------------------------ start


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


# ------------------------------------------------------------------------------ rows → writes


@dataclass
class RowProblem:
    row: int
    column: str
    code: str
    message: str


@dataclass
class Outcome:
    imported: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def add(self, other: "Outcome") -> "Outcome":
        self.imported += other.imported
        self.unchanged += other.unchanged
        self.problems += other.problems
        return self

    @property
    def failed_rows(self) -> int:
        return len({p.row for p in self.problems})


@dataclass
class _Prepared:
    """A row read into typed values (or its problems)."""

    row: int
    values: dict[str, Any]  # target → value (empty cells left out)


def _identity(external_id: str) -> tuple[str | None, str | None]:
    if external_id.startswith(ANON_PREFIX):
        return None, external_id[len(ANON_PREFIX):]
    return external_id, None


@dataclass(frozen=True)
class _Cell:
    """How one mapped column's cells are read, worked out once per chunk, not per cell."""

    index: int
    name: str
    target: str
    type: TraitType | None
    builtin: str | None  # the built-in trait it fills (checked beyond its type), if any
    limit: int | None  # the longest text its field holds (non-trait targets)


def _cells_of(plan: maps.Plan) -> list[_Cell]:
    out = []
    for column in plan.columns:
        key = column.target[len(maps.TRAIT):] if column.target.startswith(maps.TRAIT) else None
        out.append(_Cell(column.index, column.name, column.target, column.type,
                         key if key in BUILTIN_TRAITS else None, _LIMITS.get(column.target)))
    return out


def _prepare(rows: list[tuple[int, Any]], plan: maps.Plan) -> tuple[list[_Prepared], list[RowProblem]]:
    prepared, problems = [], []
    cells_of = _cells_of(plan)
    required = [(target, plan.column_of(target).name) for target in maps.REQUIRED[plan.kind]]
    convert, check_builtin = maps.convert, maps.check_builtin
    for row, cells in rows:
        if isinstance(cells, parsing.BadRecord):
            problems.append(RowProblem(row, "", "malformed_row", cells.message))
            continue
        if len(cells) != plan.width:
            problems.append(RowProblem(row, "", "wrong_column_count",
                                       f"The row has {len(cells)} cells; the header has {plan.width} columns."))
            continue
        values, bad = {}, []
        for cell in cells_of:
            value, problem = convert(cells[cell.index], cell.type)
            if value is not None and problem is None:
                if cell.builtin:
                    problem = check_builtin(cell.builtin, value)
                elif cell.limit and isinstance(value, str) and len(value) > cell.limit:
                    problem = maps.CellProblem(Code.TOO_LONG, f"At most {cell.limit} characters.")
            if problem:
                bad.append(RowProblem(row, cell.name, problem.code, problem.message))
            elif value is not None:
                values[cell.target] = value
        for target, name in required:
            if target not in values and not any(p.column == name for p in bad):
                bad.append(RowProblem(row, name, "required", "This cell must not be empty."))
        if bad:
            problems += bad
        else:
            prepared.append(_Prepared(row, values))
    return prepared, problems


_LIMITS = {"external_id": maps.MAX_EXTERNAL_ID, "name": maps.MAX_EVENT_NAME, "message_id": maps.MAX_MESSAGE_ID,
           "question": maps.MAX_QUESTION, "comment": maps.MAX_COMMENT, "survey": 64}


def _content_id(kind: str, values: dict[str, Any]) -> str:
    """A message id from what the row says, so the same row in a re-uploaded (or re-run)
    file is the same message and is stored once."""
    body = json.dumps([kind, sorted((k, v) for k, v in values.items() if k != "message_id")],
                      sort_keys=True, separators=(",", ":"), default=str)
    return "csv:" + hashlib.sha256(body.encode()).hexdigest()[:40]


def _ingest_problems(result_problems, plan: maps.Plan) -> list[RowProblem]:
    """Problems ingestion reported (by message index = row) as (row, column)."""
    column_of = {c.target: c.name for c in plan.columns}
    out = []
    for problem in result_problems:
        path = problem.path.lstrip(".")
        if path.startswith("traits."):
            column = column_of.get(maps.TRAIT + path[len("traits."):], "")
        elif path in ("userId", "anonymousId"):
            column = column_of.get("external_id", "")
        else:
            column = ""
        out.append(RowProblem(problem.index, column, problem.code, problem.message))
    return out


# ----- customers


def _customers(prepared: list[_Prepared], plan: maps.Plan, now: datetime) -> Outcome:
    """Set-based (customers/imports/customer_upsert.py): a few statements per chunk."""
    written = upsert_customers(rows=[(item.row, item.values) for item in prepared], plan=plan, now=now)
    return Outcome(imported=written.imported, unchanged=written.unchanged,
                   problems=[RowProblem(*problem) for problem in written.problems])


# ----- events


def _events(prepared: list[_Prepared], plan: maps.Plan, now: datetime, default_time: datetime) -> Outcome:
    outcome = Outcome()
    messages = []
    for item in prepared:
        values = item.values
        user_id, anonymous_id = _identity(values["external_id"])
        properties = {t[len(maps.PROPERTY):]: v for t, v in values.items() if t.startswith(maps.PROPERTY)}
        timestamp = datetime.fromisoformat(values["timestamp"]) if "timestamp" in values else default_time
        messages.append(Message(type="track", event=values["name"], timestamp=timestamp, user_id=user_id,
                                anonymous_id=anonymous_id, properties=properties,
                                message_id=values.get("message_id") or _content_id(plan.kind, values),
                                index=item.row, path=""))
    if messages:
        result = ingest_messages(messages=messages, source=SOURCE, now=now)
        outcome.problems += _ingest_problems(result.problems, plan)
        outcome.imported += result.accepted
        outcome.unchanged += result.duplicates
    return outcome


# ----- survey answers


def _survey_responses(prepared: list[_Prepared], plan: maps.Plan, default_time: datetime) -> Outcome:
    outcome = Outcome()
    known = customers_by_external_ids({p.values["external_id"] for p in prepared})
    column = {c.target: c.name for c in plan.columns}
    answers = []
    for item in prepared:
        values = item.values
        if values["external_id"] not in known:
            outcome.problems.append(RowProblem(item.row, column["external_id"], "unknown_customer",
                                               f"No customer “{values['external_id']}”: import the customers first."))
            continue
        answered = datetime.fromisoformat(values["responded_at"]) if "responded_at" in values else default_time
        answers.append(SurveyAnswerIn(
            customer_id=known[values["external_id"]], survey=str(values["survey"]), score=values["score"],
            responded_at=answered, question=str(values.get("question", "")), comment=str(values.get("comment", "")),
            message_id=values.get("message_id") or _content_id(plan.kind, values), index=item.row, path=""))
    if answers:
        stored, problems = survey_answers_record(answers=answers)
        outcome.problems += [RowProblem(p.index, column.get(p.path.lstrip("."), ""), p.code, p.message)
                             for p in problems]
        outcome.imported += stored
        outcome.unchanged += len(answers) - stored - len(problems)
    return outcome


def _write_rows(rows: list[tuple[int, Any]], plan: maps.Plan, now: datetime, default_time: datetime) -> Outcome:
    prepared, problems = _prepare(rows, plan)
    outcome = Outcome(problems=problems)
    if not prepared:
        return outcome
    if plan.kind == maps.CUSTOMERS:
        return outcome.add(_customers(prepared, plan, now))
    if plan.kind == maps.EVENTS:
        return outcome.add(_events(prepared, plan, now, default_time))
    return outcome.add(_survey_responses(prepared, plan, default_time))


def _write_rows_isolating(rows, plan, now, default_time) -> Outcome:
    """Write the rows; when the database refuses the chunk for a value no check caught,
    halve it until the offending rows are alone, report those and write the rest."""
    try:
        with transaction.atomic():  # a savepoint: a refusal leaves the chunk's transaction usable
            return _write_rows(rows, plan, now, default_time)
    except (DataError, IntegrityError) as error:
        if len(rows) == 1:
            reason = str(error).splitlines()[0][:200]
            return Outcome(problems=[RowProblem(rows[0][0], "", "rejected", f"The database refused the row: {reason}")])
        middle = len(rows) // 2
        return (_write_rows_isolating(rows[:middle], plan, now, default_time)
                .add(_write_rows_isolating(rows[middle:], plan, now, default_time)))


def _store_problems(job_id: int, problems: list[RowProblem]) -> None:
    if not problems:
        return
    with connection.cursor() as cursor:
        with cursor.copy('COPY customers_importrowerror (job_id, "row", "column", code, message) FROM STDIN') as copy:
            for p in sorted(problems, key=lambda p: p.row):
                copy.write_row((job_id, p.row, p.column[:255], p.code[:64], p.message[:500]))


# ------------------------------------------------------------------------------ run


def _chunks(job: ImportJob, size: int) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
    """(records before this chunk, chunk) over the stored file."""
    with default_storage.open(job.file.name, "rb") as stream:
        chunk: list[tuple[int, Any]] = []
        before = 0
        for record in parsing.records(stream, delimiter=job.delimiter):
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


def import_run(*, job_id: int, clock: Callable[[], datetime], chunk_rows: int | None = None) -> ImportJob | None:
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
                    outcome = _write_rows_isolating(rows, plan, clock(), default_time)
                _store_problems(job.pk, outcome.problems)
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


# ------------------------------------------------------------------------------ report


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

