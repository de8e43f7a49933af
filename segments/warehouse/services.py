"""Writes of the warehouse export: queue an export (on demand or by the schedule), run it
(the task's body), and the schedule itself.

An export run stores file after file and records each as it lands; a table whose files
are all stored is marked done. A run that is redelivered (its worker killed) skips the
done tables and restarts the interrupted one, replacing its files: the manifest, written
last from the records, never lists a file twice.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection, transaction

from common.actors import Actor
from common.clock import Clock
from common.errors import Code, Conflict, DomainError, Forbidden, OpsCode, Problem
from ops.models import TaskRun
from ops.services import task_run_create, task_run_finish, task_run_progress, task_run_start
from ops.tasking import send_to_tenant
from segments.warehouse import tables as warehouse_tables
from segments.warehouse.models import WarehouseExport, WarehouseExportFile, WarehouseSchedule
from segments.warehouse.writing import Written, count_rows, snapshot_reader, write_table
from tenants.permissions import ensure_permitted

PERMISSION = "data.export"
EXPORT_TASK = "segments.warehouse_export"
# An event is exported once it has arrived this long ago: an ingest transaction stamps its
# events before it commits, and one still open at the export's read must not be skipped by
# the next export, which starts where this one ends.
EVENTS_SETTLE = timedelta(minutes=1)
EVERY = {WarehouseSchedule.Every.HOUR: timedelta(hours=1), WarehouseSchedule.Every.DAY: timedelta(days=1),
         WarehouseSchedule.Every.WEEK: timedelta(weeks=1)}
ACTIVE = (WarehouseExport.Status.QUEUED, WarehouseExport.Status.RUNNING)


def warehouse_storage():
    return storages["warehouse"]


def _user_id(actor: Actor | None) -> int | None:
    return getattr(getattr(actor, "user", None), "pk", None)


def checked_tables(tables: Any) -> list[str]:
    """The tables asked for, in export order; problems name `tables[i]`."""
    if not isinstance(tables, list) or not tables:
        raise DomainError.single(path="tables", code=Code.REQUIRED,
                                 message=f"Choose what to export: {', '.join(warehouse_tables.TABLES)}.")
    problems = [Problem(f"tables[{i}]", OpsCode.UNKNOWN_TABLE,
                        f"“{str(name)[:40]}” is not a table; choose from {', '.join(warehouse_tables.TABLES)}.")
                for i, name in enumerate(tables) if name not in warehouse_tables.TABLES]
    if problems:
        raise DomainError(problems=problems)
    return [name for name in warehouse_tables.TABLES if name in tables]


def _check_personal(actor: Actor | None, include_personal: Any) -> bool:
    if not isinstance(include_personal, bool):
        raise DomainError.single(path="include_personal", code=Code.INVALID_VALUE, message="Send true or false.")
    if include_personal and (actor is None or not actor.has("customers.view_pii")):
        raise Forbidden.single(path="include_personal", code=Code.PERMISSION_DENIED,
                               message="Exporting personal traits needs the “customers.view_pii” permission.")
    return include_personal


def _events_after() -> datetime | None:
    """Where the next export's events start: the end of the last successful export that had them."""
    last = (WarehouseExport.objects.filter(status=WarehouseExport.Status.SUCCEEDED,
                                           tables__contains=[warehouse_tables.EVENTS])
            .order_by("-events_until").values_list("events_until", flat=True).first())
    return last


def export_create(*, actor: Actor, tables: Any, include_personal: Any = False, now: datetime) -> WarehouseExport:
    """Queue an export now. One export of a workspace runs at a time (409 otherwise)."""
    ensure_permitted(actor, PERMISSION)
    chosen = checked_tables(tables)
    personal = _check_personal(actor, include_personal)
    return _export_queue(tables=chosen, include_personal=personal, trigger=WarehouseExport.Trigger.MANUAL,
                         user_id=_user_id(actor), now=now)


def _export_queue(*, tables: list[str], include_personal: bool, trigger: str, user_id: int | None,
                  now: datetime) -> WarehouseExport:
    with transaction.atomic():
        # The schedule row serialises exporters: two concurrent requests cannot both see none active.
        WarehouseSchedule.objects.select_for_update().filter(pk=_schedule().pk).first()
        if WarehouseExport.objects.filter(status__in=ACTIVE).exists():
            raise Conflict.single(path="", code=OpsCode.EXPORT_RUNNING,
                                  message="An export is already running; wait for it to finish.")
        run = task_run_create(kind=TaskRun.Kind.WAREHOUSE_EXPORT, label="Warehouse export", created_by_id=user_id)
        export = WarehouseExport.objects.create(
            tables=tables, include_personal=include_personal, trigger=trigger, events_after=_events_after(),
            events_until=now - EVENTS_SETTLE, task_run=run, created_by_id=user_id)
        _enqueue(export)
    return export


def _enqueue(export: WarehouseExport) -> None:
    schema, export_id = connection.schema_name, export.pk
    transaction.on_commit(lambda: send_to_tenant(EXPORT_TASK, schema_name=schema, export_id=export_id))


def export_retry(*, actor: Actor, export: WarehouseExport) -> WarehouseExport:
    """Run a failed export again: its finished tables are kept, the rest are redone."""
    ensure_permitted(actor, PERMISSION)
    with transaction.atomic():
        export = WarehouseExport.objects.select_for_update().get(pk=export.pk)
        if export.status != WarehouseExport.Status.FAILED:
            raise Conflict.single(path="", code=OpsCode.EXPORT_NOT_FAILED, message="Only a failed export can be retried.")
        export.status, export.error = WarehouseExport.Status.QUEUED, ""
        export.save(update_fields=["status", "error", "updated_at"])
        _enqueue(export)
    return export


# ------------------------------------------------------------------------------ the run


def export_run(*, export_id: int, clock: Clock) -> WarehouseExport | None:
    """Write the export's files, table by table, resuming after the tables already done."""
    export = WarehouseExport.objects.filter(pk=export_id).first()
    if export is None or export.status == WarehouseExport.Status.SUCCEEDED:
        return export  # a redelivered message of a finished export
    now = clock()
    WarehouseExport.objects.filter(pk=export.pk).update(status=WarehouseExport.Status.RUNNING, error="",
                                                        started_at=export.started_at or now, updated_at=now)
    storage, prefix = warehouse_storage(), export_prefix(export)
    try:
        with snapshot_reader() as reader:
            totals = _row_counts(reader, export)
            if export.task_run_id:
                task_run_start(run_id=export.task_run_id, now=now, total=sum(totals.values()), message="Exporting")
            done_before = sum(export.rows.get(name, 0) for name in export.tables_done)
            for name in export.tables:
                if name in export.tables_done:
                    continue
                _forget_files(export, name, storage)
                written = _export_table(reader, export, name, storage=storage, prefix=prefix, before=done_before,
                                        total=sum(totals.values()))
                done_before += written
                export.rows = {**export.rows, name: written}
                export.tables_done = [*export.tables_done, name]
                export.save(update_fields=["rows", "tables_done", "updated_at"])
        export.manifest = _write_manifest(export, storage, prefix)
        finished = clock()
        export.bytes = sum(export.files.values_list("bytes", flat=True))
        export.status, export.finished_at = WarehouseExport.Status.SUCCEEDED, finished
        export.save(update_fields=["manifest", "bytes", "status", "finished_at", "updated_at"])
        if export.task_run_id:
            task_run_finish(run_id=export.task_run_id, now=finished, result={"rows": export.rows, "bytes": export.bytes},
                            message=_summary(export))
        return export
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"[:2000]
        failed = clock()
        WarehouseExport.objects.filter(pk=export_id).update(status=WarehouseExport.Status.FAILED, error=reason,
                                                            finished_at=failed, updated_at=failed)
        if export.task_run_id:
            task_run_finish(run_id=export.task_run_id, now=failed, error=reason)
        raise


def export_prefix(export: WarehouseExport) -> str:
    """Every file of a tenant is under its schema's name (house rule 6)."""
    return f"{connection.schema_name}/exports/{export.pk:06d}"


def _row_counts(reader, export: WarehouseExport) -> dict[str, int]:
    counts = {}
    for name in export.tables:
        if name in export.tables_done:
            continue
        counts[name] = count_rows(reader, _table(export, name))
    return counts


def _table(export: WarehouseExport, name: str) -> warehouse_tables.Table:
    return warehouse_tables.table_for(name, include_personal=export.include_personal,
                                      events_after=export.events_after, events_until=export.events_until)


def _export_table(reader, export: WarehouseExport, name: str, *, storage, prefix: str, before: int, total: int) -> int:
    def record(written: Written) -> None:
        WarehouseExportFile.objects.create(export=export, table=name, partition=written.partition, path=written.path,
                                           rows=written.rows, row_groups=written.row_groups, bytes=written.bytes,
                                           sha256=written.sha256)

    def progress(rows: int) -> None:
        if export.task_run_id:
            task_run_progress(run_id=export.task_run_id, done=before + rows,
                              message=f"{warehouse_tables.TABLE_LABELS[name]}: {rows:,} rows")

    return write_table(reader, _table(export, name), storage=storage, prefix=prefix,
                       export_day=_export_day(export), on_file=record, on_rows=progress)


def _export_day(export: WarehouseExport) -> date:
    return (export.events_until + EVENTS_SETTLE).date()


def _forget_files(export: WarehouseExport, name: str, storage) -> None:
    """An interrupted table starts again: its recorded files go, and so does anything an
    attempt stored without recording (killed in between)."""
    export.files.filter(table=name).delete()
    _delete_tree(storage, f"{export_prefix(export)}/{name}")


def _delete_tree(storage, directory: str) -> None:
    try:
        folders, files = storage.listdir(directory)
    except FileNotFoundError:
        return
    for file in files:
        storage.delete(f"{directory}/{file}")
    for folder in folders:
        _delete_tree(storage, f"{directory}/{folder}")


def manifest_of(export: WarehouseExport) -> dict:
    """What the export holds: per table its Arrow schema, rows and files (with checksums)."""
    tables = {}
    for name in export.tables:
        schema = _table(export, name).schema
        files = list(export.files.filter(table=name).order_by("id"))
        tables[name] = {
            "rows": sum(f.rows for f in files),
            "columns": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema],
            "partitioning": "date (UTC day of timestamp)" if name == warehouse_tables.EVENTS else "export_date",
            "files": [{"path": f.path, "partition": f.partition, "rows": f.rows, "row_groups": f.row_groups,
                       "bytes": f.bytes, "sha256": f.sha256} for f in files],
        }
    return {
        "format": "strata-warehouse-export", "version": 1, "workspace": connection.schema_name,
        "export_id": export.pk, "trigger": export.trigger, "include_personal": export.include_personal,
        "events": {"received_after": export.events_after.isoformat() if export.events_after else None,
                   "received_until": export.events_until.isoformat()},
        "created_at": export.created_at.isoformat(), "tables": tables,
    }


def _write_manifest(export: WarehouseExport, storage, prefix: str) -> str:
    name = f"{prefix}/manifest.json"
    if storage.exists(name):
        storage.delete(name)
    body = json.dumps(manifest_of(export), indent=2, sort_keys=False).encode()
    return storage.save(name, ContentFile(body, name="manifest.json"))


def _summary(export: WarehouseExport) -> str:
    return " · ".join(f"{name} {rows:,}" for name, rows in export.rows.items())


# ------------------------------------------------------------------------------ schedule


def _schedule() -> WarehouseSchedule:
    schedule = WarehouseSchedule.objects.order_by("id").first()
    return schedule or WarehouseSchedule.objects.create(tables=list(warehouse_tables.TABLES))


def schedule_get() -> WarehouseSchedule:
    return _schedule()


def schedule_update(*, actor: Actor, enabled: Any, every: Any, tables: Any, include_personal: Any,
                    now: datetime) -> WarehouseSchedule:
    """Turn the scheduled export on or off. Personal traits in scheduled exports need the
    permission of whoever turns it on (the runs have no one to ask)."""
    ensure_permitted(actor, PERMISSION)
    problems = []
    if not isinstance(enabled, bool):
        problems.append(Problem("enabled", Code.INVALID_VALUE, "Send true or false."))
    if not isinstance(every, str) or every not in EVERY:
        problems.append(Problem("every", Code.INVALID_CHOICE, f"Choose one of {', '.join(EVERY)}."))
    if problems:
        raise DomainError(problems=problems)
    chosen = checked_tables(tables)
    personal = _check_personal(actor, include_personal)
    with transaction.atomic():
        schedule = WarehouseSchedule.objects.select_for_update().get(pk=_schedule().pk)
        first_run = now if enabled and (not schedule.enabled or schedule.every != every) else schedule.next_run_at
        schedule.enabled, schedule.every, schedule.tables = enabled, every, chosen
        schedule.include_personal, schedule.updated_by_id = personal, _user_id(actor)
        schedule.next_run_at = first_run if enabled else None
        schedule.save()
    return schedule


def exports_due(*, now: datetime) -> WarehouseExport | None:
    """The schedule's export when it is due (beat asks every few minutes); the next is
    one interval after this one, however late this one was."""
    schedule = WarehouseSchedule.objects.filter(enabled=True, next_run_at__lte=now).first()
    if schedule is None:
        return None
    if WarehouseExport.objects.filter(status__in=ACTIVE).exists():
        return None  # the running one finishes first; the schedule asks again next time
    export = _export_queue(tables=schedule.tables, include_personal=schedule.include_personal,
                           trigger=WarehouseExport.Trigger.SCHEDULED, user_id=schedule.updated_by_id, now=now)
    WarehouseSchedule.objects.filter(pk=schedule.pk).update(next_run_at=now + EVERY[schedule.every])
    return export
