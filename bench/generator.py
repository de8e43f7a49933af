"""Rows per second of `demo.generator.generate`, against raw COPY of the same rows.

Thing: `generate(customers=N, events=M)` inside a fresh bench tenant, timed from call to
return: drawing the personas, formatting every row and COPYing customers, identities,
truth labels, events, survey answers, consents and consent history, chunk by chunk.

Baseline, in the same process on its own psycopg connection: every row the generator
wrote is dumped (`COPY (SELECT … ORDER BY id) TO STDOUT`, streamed to a temporary file,
so memory stays flat), the tables are truncated, and one `COPY … FROM STDIN` per table
writes the same rows back from the file in 1 MiB blocks, into the same tables with the
same indexes and constraints: COPY alone, with nothing to generate.

ratio = generate() seconds / raw COPY seconds (same rows). Peak memory is the process's
maximum resident set size (getrusage) after generate(), before the baseline.

With `--keep-dataset` the tenant is kept afterwards (the baseline leaves the same rows in
the same tables) as the data set `benchdata-<customers>-<events>` that bench/segments.py
reuses; an earlier data set of the same size is replaced.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bench import Result

DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 100_000, 2_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000
BLOCK = 1 << 20


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--customers", type=int, default=None,
        help=f"customers to generate (default {DEFAULT_CUSTOMERS:_}, --quick {QUICK_CUSTOMERS:_}; up to 1_000_000)",
    )
    group.add_argument(
        "--events", type=int, default=None,
        help=f"events to generate (default {DEFAULT_EVENTS:_}, --quick {QUICK_EVENTS:_}; up to 20_000_000)",
    )
    group.add_argument(
        "--keep-dataset", action="store_true",
        help="keep the generated tenant as the data set benchdata-<customers>-<events> (bench/segments.py reuses it)",
    )


def _tables() -> list[tuple[str, tuple[str, ...]]]:
    """(table, columns) in the order the generator writes them; ids kept where rows refer to them."""
    from demo import generator as g

    return [
        ("customers_customer", g.CUSTOMER_COLUMNS),
        ("customers_customeridentity", ("customer_id", "kind", "value", "created_at")),
        ("customers_generatortruth", g.TRUTH_COLUMNS),
        ("customers_event", g.EVENT_COLUMNS),
        ("customers_surveyresponse", g.SURVEY_COLUMNS),
        ("customers_consent", g.CONSENT_COLUMNS),
        ("customers_consentchange", g.CONSENT_CHANGE_COLUMNS),
    ]


def _connect(schema: str):
    import psycopg

    from bench.support import database_url, quote_ident

    conn = psycopg.connect(database_url(), autocommit=True)
    conn.execute("SET TimeZone TO 'UTC'")
    conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
    return conn


def _checkpoint() -> None:
    """Flush dirty buffers first, so a phase does not pay for the previous phase's writes
    (skipped without the rights: CHECKPOINT needs superuser or pg_checkpoint)."""
    import psycopg

    from bench.support import database_url

    with psycopg.connect(database_url(), autocommit=True) as conn:
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            pass


def _dump(schema: str, directory: Path) -> dict[str, int]:
    """Every generated row, as COPY text, one file per table; returns rows per table."""
    rows = {}
    with _connect(schema) as conn, conn.cursor() as cursor:
        for table, columns in _tables():
            order = "customer_id" if table == "customers_generatortruth" else "id"  # insertion order
            with open(directory / table, "wb") as out, cursor.copy(
                f"COPY (SELECT {', '.join(columns)} FROM {table} ORDER BY {order}) TO STDOUT"
            ) as copy:
                for data in copy:
                    out.write(data)
            rows[table] = cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return rows


def _raw_copy(schema: str, directory: Path, rows: dict[str, int]) -> dict[str, float]:
    from tqdm import tqdm

    seconds: dict[str, float] = {}
    with _connect(schema) as conn:
        conn.execute("TRUNCATE customers_customer CASCADE")
        _checkpoint()
        bar = tqdm(total=sum(rows.values()), desc="raw COPY (all tables)", unit="row", disable=None)
        with conn.cursor() as cursor:
            for table, columns in _tables():
                started = time.perf_counter()
                with open(directory / table, "rb") as source, cursor.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                ) as copy:
                    while block := source.read(BLOCK):
                        copy.write(block)
                seconds[table] = time.perf_counter() - started
                bar.update(rows[table])
        bar.close()
        for table, _columns in _tables():
            (copied,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            if copied != rows[table]:
                raise RuntimeError(f"raw COPY wrote {copied} rows into {table}, expected {rows[table]}")
    return seconds


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context
    from tqdm import tqdm

    from bench.support import admin_email_for, dataset_slug, drop_tenants, new_run_id
    from demo.generator import generate
    from tenants.services import tenant_create

    customers = args.customers or (QUICK_CUSTOMERS if args.quick else DEFAULT_CUSTOMERS)
    events = args.events if args.events is not None else (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    if customers < 1 or events < 1:
        raise SystemExit("bench: --customers and --events must be at least 1")
    keep = getattr(args, "keep_dataset", False)
    slug = dataset_slug(customers, events) if keep else f"bench-{new_run_id()}-gen"
    if keep:
        connection.set_schema_to_public()
        drop_tenants([slug])  # regenerating replaces the earlier data set of this size
    kept = False
    try:
        connection.set_schema_to_public()
        tenant = tenant_create(slug=slug, name=f"Bench generator {slug}", admin_email=admin_email_for(slug))
        bars = {
            "customers": tqdm(total=customers, desc="generate customers", unit="row", disable=None),
            "events": tqdm(total=events, desc="generate events", unit="row", disable=None),
        }
        now = timezone.now()
        _checkpoint()
        with schema_context(tenant.schema_name):
            started = time.perf_counter()
            result = generate(customers=customers, events=events, now=now,
                              progress=lambda stage, n: bars[stage].update(n))
            total_s = time.perf_counter() - started
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            with connection.cursor() as cursor:
                cursor.execute("SELECT (SELECT count(*) FROM customers_customer), count(*) FROM customers_event")
                generated_customers, generated_events = cursor.fetchone()
        for bar in bars.values():
            bar.close()
        if generated_customers != customers or generated_events != events:
            raise RuntimeError(
                f"generate wrote {generated_customers} customers / {generated_events} events, "
                f"expected {customers} / {events}"
            )
        with tempfile.TemporaryDirectory(prefix="strata-bench-gen-") as directory:
            rows = _dump(tenant.schema_name, Path(directory))
            raw = _raw_copy(tenant.schema_name, Path(directory), rows)
        kept = keep
    finally:
        if not kept:
            drop_tenants([slug])

    raw_s = sum(raw.values())
    all_rows = sum(rows.values())
    return [
        Result(
            name="generator",
            ratio=total_s / raw_s,
            measurements={
                "customers": customers,
                "events": events,
                "rows": all_rows,
                "total_s": total_s,
                "customers_per_s": customers / total_s,
                "events_per_s": events / total_s,
                "rows_per_s": all_rows / total_s,
                "peak_rss_mb": peak_mb,
                "raw_copy_s": raw_s,
                "raw_copy_events_s": raw["customers_event"],
                "raw_copy_rows_per_s": all_rows / raw_s,
                "survey_responses": result.survey_responses,
                "consents": result.consents,
                "consent_changes": result.consent_changes,
            },
            ratio_means="generate() s / raw psycopg COPY s of the same rows (all tables)",
        )
    ]
