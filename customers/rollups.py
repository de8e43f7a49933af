"""Per-customer daily rollups of events (customers_eventday, customers_eventdayvalue), kept by
triggers on customers_event (migration 0019), and the numeric properties rolled up on
request: which are ready for rules to read, asking for one, and its back-fill.

A property's back-fill recounts the events stored before it was asked for, a range of
customers at a time, each range under a SHARE lock on customers_event: no event is being
written while a range is recounted, so the recount is exact, and the triggers add every
later event on top of it. Ingestion waits for a range (tenths of a second), never for the
whole back-fill."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import connection, transaction

from customers.models import RollupProperty
from ops.tasking import send_to_tenant

BACKFILL_CUSTOMERS = 50_000  # customers recounted per locked range

_RECOUNT_SQL = """
INSERT INTO customers_eventdayvalue (customer_id, name, day, property, n, total, low, high)
SELECT e.customer_id, e.name, (e.timestamp AT TIME ZONE 'UTC')::date, %(property)s, count(*), sum(x.v), min(x.v),
       max(x.v)
FROM customers_event e CROSS JOIN LATERAL (SELECT (e.properties -> %(property)s)::numeric AS v) x
WHERE e.name = %(event)s AND e.customer_id >= %(low)s AND e.customer_id < %(high)s
  AND jsonb_typeof(e.properties -> %(property)s) = 'number'
GROUP BY 1, 2, 3
"""
_FORGET_SQL = ("DELETE FROM customers_eventdayvalue WHERE name = %(event)s AND property = %(property)s "
               "AND customer_id >= %(low)s AND customer_id < %(high)s")


# Days pay off where customers repeat an event within a day: with as many day rows as events
# (1M customers / 20M events spread over a year, bench/segments.py) a count reads the same
# number of rows from the rollup as from the events, plus the edges.
DAYS_PAY_OFF_BELOW = 0.5


def rollup_days_pay_off() -> bool:
    """Whether the day rollups hold markedly fewer rows than the events (the planner's row
    estimates, kept by ANALYZE; an unanalysed table counts as paying off)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT reltuples FROM pg_class WHERE oid = 'customers_eventday'::regclass), "
                       "(SELECT reltuples FROM pg_class WHERE oid = 'customers_event'::regclass)")
        days, events = cursor.fetchone()
    return days is None or events is None or events <= 0 or days < 0 or days / events < DAYS_PAY_OFF_BELOW


def rollup_properties_ready() -> frozenset[tuple[str, str]]:
    """The (event, property) pairs whose daily values rules may read."""
    return frozenset(RollupProperty.objects.filter(ready_at__isnull=False).values_list("event", "property"))


def rollup_properties_request(*, pairs: Iterable[tuple[str, str]], now: datetime) -> list[RollupProperty]:
    """Roll up these (event, numeric property) pairs from now on and back-fill what is
    stored (a task per new pair, queued on commit). Pairs already asked for are left as
    they are. Returns the new ones."""
    fresh = []
    for event, prop in sorted(set(pairs)):
        rollup, created = RollupProperty.objects.get_or_create(event=event, property=prop,
                                                                defaults={"requested_at": now})
        if created:
            fresh.append(rollup)
    schema = connection.schema_name
    for rollup in fresh:
        transaction.on_commit(lambda pk=rollup.pk: send_to_tenant("customers.rollup_backfill", schema_name=schema,
                                                                  property_id=pk))
    return fresh


def rollup_backfill(*, property_id: int, clock: Callable[[], datetime],
                    progress: Callable[[int, int], None] | None = None) -> RollupProperty | None:
    """Recount the property's daily values over every stored event, a customer range at a
    time (see the module's docstring), then mark it ready. Safe to run again: each range's
    rows are replaced, not added to."""
    rollup = RollupProperty.objects.filter(pk=property_id).first()
    if rollup is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM customers_customer")
        low, high = cursor.fetchone()
    ranges = list(range(low, high + 1, BACKFILL_CUSTOMERS))
    for done, start in enumerate(ranges, start=1):
        params = {"event": rollup.event, "property": rollup.property, "low": start,
                  "high": start + BACKFILL_CUSTOMERS}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE customers_event IN SHARE MODE")
            cursor.execute(_FORGET_SQL, params)
            cursor.execute(_RECOUNT_SQL, params)
        if progress is not None:
            progress(done, len(ranges))
    RollupProperty.objects.filter(pk=rollup.pk).update(ready_at=clock())
    rollup.refresh_from_db()
    return rollup
