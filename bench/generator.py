"""Rows per second of `customers.generator.generate` (COPY-based), against raw COPY.

Thing: `generate(customers=N, events=M)` inside a fresh bench tenant. Its events phase is
timed from the last `customers` progress tick to its return (it includes fetching the
customer ids, then building and COPYing every event row).

Baseline, in the same process on its own psycopg connection: the generator's event rows
are read back into memory (the first POOL_ROWS in insertion order, as text; larger runs
cycle through them), customers_event is truncated (the customers stay, so the foreign
key resolves), and one `COPY customers_event (…) FROM STDIN` writes M rows from that list:
COPY alone, of the same data, into the same table, indexes and constraints.

ratio = generator events-phase seconds / raw COPY seconds (same number of event rows).
"""

from __future__ import annotations

import argparse
import itertools
import time

from bench import Result

DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 100_000, 2_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000
POOL_ROWS = 1_000_000  # baseline rows held in memory; larger runs cycle through them
TICK_ROWS = 200_000


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--customers", type=int, default=None,
        help=f"customers to generate (default {DEFAULT_CUSTOMERS:_}, --quick {QUICK_CUSTOMERS:_}; up to 1_000_000)",
    )
    group.add_argument(
        "--events", type=int, default=None,
        help=f"events to generate (default {DEFAULT_EVENTS:_}, --quick {QUICK_EVENTS:_}; up to 20_000_000)",
    )


def _baseline_rows(schema: str, limit: int, now) -> list[tuple]:
    """The generator's own event rows (first `limit` in insertion order), read back as the
    text it wrote, so the baseline COPYs the same data without building it."""
    import psycopg

    from bench.support import database_url, quote_ident
    from customers.generator import EVENT_COLUMNS

    assert EVENT_COLUMNS == ("customer_id", "name", "timestamp", "properties", "message_id",
                             "received_at", "source")
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("SET TimeZone TO 'UTC'")
        conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
        fetched = conn.execute(
            "SELECT customer_id, name, timestamp::text, properties::text FROM customers_event "
            "ORDER BY id LIMIT %s",
            [limit],
        ).fetchall()
    return [(customer, name, stamp, props, None, now, "generator") for customer, name, stamp, props in fetched]


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


def _raw_copy(schema: str, rows: list[tuple], count: int) -> float:
    import psycopg
    from tqdm import tqdm

    from bench.support import database_url, quote_ident
    from customers.generator import EVENT_COLUMNS

    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {quote_ident(schema)}, public")
        conn.execute("TRUNCATE customers_event")
        _checkpoint()
        bar = tqdm(total=count, desc="raw COPY events", unit="row", disable=None)
        with conn.cursor() as cursor:
            started = time.perf_counter()
            with cursor.copy(f"COPY customers_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                written = 0
                for row in itertools.islice(itertools.cycle(rows), count):
                    copy.write_row(row)
                    written += 1
                    if written % TICK_ROWS == 0:
                        bar.update(TICK_ROWS)
            seconds = time.perf_counter() - started
            bar.update(written % TICK_ROWS)
        bar.close()
        (copied,) = conn.execute("SELECT count(*) FROM customers_event").fetchone()
    if copied != count:
        raise RuntimeError(f"raw COPY wrote {copied} rows, expected {count}")
    return seconds


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context
    from tqdm import tqdm

    from bench.support import admin_email_for, drop_tenants, new_run_id
    from customers.generator import generate
    from tenants.services import tenant_create

    customers = args.customers or (QUICK_CUSTOMERS if args.quick else DEFAULT_CUSTOMERS)
    events = args.events if args.events is not None else (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    if customers < 1 or events < 1:
        raise SystemExit("bench: --customers and --events must be at least 1")
    slug = f"bench-{new_run_id()}-gen"
    try:
        connection.set_schema_to_public()
        tenant = tenant_create(slug=slug, name=f"Bench generator {slug}", admin_email=admin_email_for(slug))
        bars = {
            "customers": tqdm(total=customers, desc="generate customers", unit="row", disable=None),
            "events": tqdm(total=events, desc="generate events", unit="row", disable=None),
        }
        done = {"customers": 0}
        marks: dict[str, float] = {}

        def tick(stage: str, n: int) -> None:
            bars[stage].update(n)
            if stage == "customers":
                done["customers"] += n
                if done["customers"] >= customers:
                    marks["customers_done"] = time.perf_counter()

        now = timezone.now()
        _checkpoint()
        with schema_context(tenant.schema_name):
            started = time.perf_counter()
            result = generate(customers=customers, events=events, now=now, progress=tick)
            finished = time.perf_counter()
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
        total_s = finished - started
        customers_s = marks["customers_done"] - started
        events_s = finished - marks["customers_done"]

        rows = _baseline_rows(tenant.schema_name, min(events, POOL_ROWS), now)
        raw_s = _raw_copy(tenant.schema_name, rows, events)
        del rows
    finally:
        drop_tenants([slug])

    return [
        Result(
            name="generator",
            ratio=events_s / raw_s,
            measurements={
                "customers": customers,
                "events": events,
                "total_s": total_s,
                "customers_s": customers_s,
                "events_s": events_s,
                "customers_per_s": customers / customers_s,
                "events_per_s": events / events_s,
                "raw_copy_s": raw_s,
                "raw_copy_per_s": events / raw_s,
                "generator_reported_s": result.seconds,
            },
            ratio_means="generate() events phase s / raw psycopg COPY s (same event count)",
        )
    ]
