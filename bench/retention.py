"""Retention: the upkeep dropping a workspace's old months, against deleting the same events.

Set-up: a fresh bench tenant with the generator's data (100k customers / 2M events over two
years; 10k / 200k with --quick; `--customers` for more), with the rollups on for
purchase.amount (day rows, daily values, lifetime totals, back-filled), as a workspace whose
rules read purchase sums has them.

Baseline, first: `DELETE FROM customers_event WHERE timestamp < cutoff` — what retention
costs when events are deleted row by row (the rollup triggers recount the days it removes)
— then the message ids, in one transaction that is rolled back, so the thing finds the
same rows. Thing: `customers.partitions.upkeep` with a retention of 12 months: the months
before the cutoff are detached and dropped, rollup days, totals and message ids pruned,
committed.

ratio = upkeep s / row-by-row DELETE s (lower is better). Also the events removed and the
partitions dropped, and the events left (which must equal the count before minus removed).
"""

from __future__ import annotations

import argparse
import time

from bench import Result

DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 100_000, 2_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000
KEEP_MONTHS = 12


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--retention-customers", type=int, default=None,
                       help=f"customers to generate (default {DEFAULT_CUSTOMERS:_}, --quick {QUICK_CUSTOMERS:_}; "
                            "20 events each)")


def _count(cursor, sql: str, params=()) -> int:
    cursor.execute(sql, params)
    return cursor.fetchone()[0]


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection, transaction
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from bench.support import admin_email_for, drop_tenants, new_run_id
    from customers import partitions
    from customers.models import DataRetention, RollupEvent, RollupProperty
    from customers.rollups import rollup_backfill
    from demo.generator import generate
    from tenants.services import tenant_create

    customers = getattr(args, "retention_customers", None) or (QUICK_CUSTOMERS if args.quick else DEFAULT_CUSTOMERS)
    events = customers * (DEFAULT_EVENTS // DEFAULT_CUSTOMERS)
    slug = f"bench-{new_run_id()}-retention"
    try:
        connection.set_schema_to_public()
        tenant = tenant_create(slug=slug, name=f"Bench retention {slug}", admin_email=admin_email_for(slug))
        with schema_context(tenant.schema_name):
            now = timezone.now()
            print(f"retention: generating {customers:_} customers / {events:_} events in {slug}", flush=True)
            generate(customers=customers, events=events, now=now)
            prop = RollupProperty.objects.create(event="purchase", property="amount", requested_at=now)
            event = RollupEvent.objects.create(name="purchase", requested_at=now)
            rollup_backfill(kind="event", rollup_id=event.pk, clock=timezone.now)
            rollup_backfill(kind="property", rollup_id=prop.pk, clock=timezone.now)
            partitions.upkeep(now=now)  # the months ahead; nothing is removed yet
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE) customers_event, customers_eventday, customers_eventdayvalue")
            cutoff = partitions.retention_cutoff(DataRetention(event_months=KEEP_MONTHS), now)
            with connection.cursor() as cursor:
                before = _count(cursor, "SELECT count(*) FROM customers_event")
                doomed = _count(cursor, "SELECT count(*) FROM customers_event WHERE timestamp < %s", [cutoff])

            print(f"retention: DELETE of {doomed:_} events (rolled back)", flush=True)
            started = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("DELETE FROM customers_event WHERE timestamp < %s", [cutoff])
                cursor.execute("DELETE FROM customers_eventmessage WHERE timestamp < %s", [cutoff])
                delete_s = time.perf_counter() - started
                transaction.set_rollback(True)

            retention = partitions.retention_get()
            retention.event_months = KEEP_MONTHS
            retention.save()
            print("retention: upkeep", flush=True)
            started = time.perf_counter()
            done = partitions.upkeep(now=now)
            upkeep_s = time.perf_counter() - started
            with connection.cursor() as cursor:
                left = _count(cursor, "SELECT count(*) FROM customers_event")
            if left != before - doomed:
                raise RuntimeError(f"{left} events left, expected {before} - {doomed}")
        return [Result(
            name="retention", ratio=upkeep_s / delete_s,
            ratio_means=f"upkeep s (retention {KEEP_MONTHS} months: drop partitions, prune rollups) ÷ "
                        "DELETE of the same events s (lower is better)",
            measurements={"customers": customers, "events": before, "removed": doomed,
                          "partitions_dropped": len(done.dropped), "upkeep_s": upkeep_s, "delete_s": delete_s,
                          "events_left": left})]
    finally:
        connection.set_schema_to_public()
        drop_tenants([slug])
