"""Warehouse export of the kept data set (1M customers / 20M events) to Parquet, against
the database producing the same rows.

Thing: in this process, `export_create` + `export_run` of all four tables (customers with
every registered trait as a typed column, events, memberships with history, segment
definitions), as the Celery task runs it: one REPEATABLE READ reader, 100k-row fetches
into Arrow record batches, zstd Parquet files stored in a temporary directory, the rows
recorded as each file lands, the manifest last. The process's resident memory is sampled
every 50 ms while it runs: `rss_growth_mb` is the peak over the RSS before — the claim is
that memory stays bounded at 20M events (row groups, one file open at a time).

Baseline, same process, own psycopg connection: each table's own statement (the same SQL,
with its ORDER BY) drained by `COPY (…) TO STDOUT (FORMAT binary)` and thrown away — what
PostgreSQL alone spends to produce the rows the export writes.

ratio = export seconds / baseline seconds (lower is better). Checked: the manifest's row
counts equal the tables', and one file of each table reads back with pyarrow.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

from bench import Result

DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 1_000_000, 20_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class _PeakRss:
    """The highest resident set size seen while the block runs."""

    def __enter__(self):
        self.before = self.peak = _rss_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _export(actor) -> tuple[float, object, float, float]:
    from django.utils import timezone

    from segments.warehouse import services as warehouse
    from segments.warehouse.tables import TABLES

    print("warehouse: exporting every table…", file=sys.stderr, flush=True)
    with _PeakRss() as memory:
        started = time.perf_counter()
        export = warehouse.export_create(actor=actor, tables=list(TABLES), include_personal=True,
                                         now=timezone.now() + warehouse.EVENTS_SETTLE)
        export = warehouse.export_run(export_id=export.pk, clock=timezone.now)
        seconds = time.perf_counter() - started
    if export.status != "succeeded":
        raise RuntimeError(f"export {export.status}: {export.error}")
    return seconds, export, memory.before, memory.peak


def _baseline(export) -> float:
    import psycopg

    from bench.support import database_url, quote_ident
    from django.db import connection

    from segments.warehouse.services import _table

    schema = connection.schema_name
    print("warehouse: COPY of the same statements…", file=sys.stderr, flush=True)
    with psycopg.connect(database_url()) as conn:
        conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
        started = time.perf_counter()
        for name in export.tables:
            table = _table(export, name)
            with conn.cursor() as cursor:
                query = psycopg.ClientCursor(conn).mogrify(table.sql, table.params)
                with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
                    for _block in copy:
                        pass
        return time.perf_counter() - started


def _check(export) -> None:
    import pyarrow.parquet as pq
    from django.db import connection

    from segments.warehouse.services import warehouse_storage

    expected = {}
    with connection.cursor() as cursor:
        for name, sql in (("customers", "customers_customer"), ("memberships", "segments_membership"),
                          ("segments", "segments_segment")):
            cursor.execute(f"SELECT count(*) FROM {sql}")
            expected[name] = cursor.fetchone()[0]
    for name, rows in expected.items():
        if export.rows.get(name) != rows:
            raise RuntimeError(f"{name}: exported {export.rows.get(name)} rows, the table has {rows}")
    storage = warehouse_storage()
    for name in export.tables:
        first = export.files.filter(table=name).first()
        if first is not None:
            with storage.open(first.path, "rb") as stream:
                if pq.read_metadata(stream).num_rows != first.rows:
                    raise RuntimeError(f"{first.path}: row count differs from its record")


def run(args: argparse.Namespace) -> list[Result]:
    from django.conf import settings
    from django.test.utils import override_settings

    from bench.insights import _actor
    from bench.support import kept_dataset

    with kept_dataset(args, default=(DEFAULT_CUSTOMERS, DEFAULT_EVENTS), quick=(QUICK_CUSTOMERS, QUICK_EVENTS)) \
            as (tenant, _now, note), tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        storages = {**settings.STORAGES, "warehouse": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                        "OPTIONS": {"location": tmp}}}
        with override_settings(STORAGES=storages):  # Django's storages follow the override
            export_s, export, rss_before, rss_peak = _export(_actor(tenant))
            _check(export)
            copy_s = _baseline(export)
            files, size = export.files.count(), export.bytes
            export.delete()
    rows = sum(export.rows.values())
    return [Result(
        name="warehouse_export",
        ratio=export_s / copy_s,
        measurements={
            "export_s": export_s, "copy_s": copy_s, "rows": rows, **{f"{k}_rows": v for k, v in export.rows.items()},
            "export_rows_per_s": rows / export_s, "files": files, "parquet_mb": round(size / 1e6, 1),
            "rss_before_mb": round(rss_before), "rss_growth_mb": round(rss_peak - rss_before),
        },
        ratio_means="export of all four tables to Parquet s ÷ COPY (same statements) TO STDOUT binary s (lower is better)",
        notes=(note,),
    )]
