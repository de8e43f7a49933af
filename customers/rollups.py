"""Per-customer rollups of events, kept by triggers on customers_event (migrations 0019,
0020, 0022) for what saved rules ask for: day rows (count, first, last) of the event names
rules count (RollupEvent); daily values (n, sum, least, greatest) and lifetime totals (the
same and the latest event's time) of the numeric properties rules aggregate
(RollupProperty); lifetime rows (count, first, last) of the event names too. Asking for
one, its back-fill, and which are ready.

A back-fill recounts the events stored before it was asked for, a range of customers at a
time, each range under a SHARE lock on customers_event: no event is being written while a
range is recounted, so the recount is exact, and the triggers add every later event on top
of it. Ingestion waits for a range (tenths of a second), never for the whole back-fill."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import connection, transaction

from customers.models import RollupEvent, RollupProperty
from ops.tasking import send_to_tenant

# Customers recounted per locked range: ~0.4 s of a range's SHARE lock at 1M customers / 20M
# events (50,000 held it ~4 s; bench/segments.py prints each back-fill's time).
BACKFILL_CUSTOMERS = 5_000
# Day rows pay off where customers repeat the event within a day: with as many day rows as
# events (the generator's 1M customers / 20M events over a year, bench/segments.py) a count
# reads as many rows from the rollup as from the events, plus the edges.
DAYS_PAY_OFF_BELOW = 0.5

_VALUES_RECOUNT_SQL = """
INSERT INTO customers_eventdayvalue (customer_id, name, day, property, n, total, low, high)
SELECT e.customer_id, e.name, (e.timestamp AT TIME ZONE 'UTC')::date, %(property)s, count(*), sum(x.v), min(x.v),
       max(x.v)
FROM customers_event e CROSS JOIN LATERAL (SELECT (e.properties -> %(property)s)::numeric AS v) x
WHERE e.name = %(event)s AND e.customer_id >= %(low)s AND e.customer_id < %(high)s
  AND jsonb_typeof(e.properties -> %(property)s) = 'number'
GROUP BY 1, 2, 3
"""
_TOTALS_RECOUNT_SQL = """
INSERT INTO customers_eventtotal (customer_id, name, property, n, total, low, high, latest)
SELECT e.customer_id, e.name, %(property)s, count(*), sum(x.v), min(x.v), max(x.v), max(e.timestamp)
FROM customers_event e CROSS JOIN LATERAL (SELECT (e.properties -> %(property)s)::numeric AS v) x
WHERE e.name = %(event)s AND e.customer_id >= %(low)s AND e.customer_id < %(high)s
  AND jsonb_typeof(e.properties -> %(property)s) = 'number'
GROUP BY 1, 2
"""
_TOTALS_FORGET_SQL = ("DELETE FROM customers_eventtotal WHERE name = %(event)s AND property = %(property)s "
                      "AND customer_id >= %(low)s AND customer_id < %(high)s")
_VALUES_FORGET_SQL = ("DELETE FROM customers_eventdayvalue WHERE name = %(event)s AND property = %(property)s "
                      "AND customer_id >= %(low)s AND customer_id < %(high)s")
_DAYS_RECOUNT_SQL = """
INSERT INTO customers_eventday (customer_id, name, day, events, first_at, last_at)
SELECT customer_id, name, (timestamp AT TIME ZONE 'UTC')::date, count(*), min(timestamp), max(timestamp)
FROM customers_event WHERE name = %(event)s AND customer_id >= %(low)s AND customer_id < %(high)s
GROUP BY 1, 2, 3
"""
_DAYS_FORGET_SQL = ("DELETE FROM customers_eventday WHERE name = %(event)s "
                    "AND customer_id >= %(low)s AND customer_id < %(high)s")
# After the range's day rows: a lifetime is the sum of its days.
_LIFETIMES_FORGET_SQL = ("DELETE FROM customers_eventlifetime WHERE name = %(event)s "
                         "AND customer_id >= %(low)s AND customer_id < %(high)s")
_LIFETIMES_RECOUNT_SQL = """
INSERT INTO customers_eventlifetime (customer_id, name, events, first_at, last_at)
SELECT customer_id, name, sum(events), min(first_at), max(last_at)
FROM customers_eventday WHERE name = %(event)s AND customer_id >= %(low)s AND customer_id < %(high)s
GROUP BY 1, 2
"""
_DAYS_PER_EVENT_SQL = ("SELECT (SELECT count(*) FROM customers_eventday WHERE name = %(event)s)::float8 "
                       "/ greatest((SELECT count(*) FROM customers_event WHERE name = %(event)s), 1)")

Progress = Callable[[int, int], None]


def rollup_events_ready() -> frozenset[str]:
    """The event names whose day rows rules may read: back-filled, and markedly fewer rows
    than the events (DAYS_PAY_OFF_BELOW day rows per event, measured by the back-fill)."""
    return frozenset(RollupEvent.objects.filter(ready_at__isnull=False, days_per_event__lt=DAYS_PAY_OFF_BELOW)
                     .values_list("name", flat=True))


def rollup_lifetimes_ready() -> frozenset[str]:
    """The event names whose lifetime rows rules may read: back-filled (one row per customer
    and name pays off whatever the days per event)."""
    return frozenset(RollupEvent.objects.filter(ready_at__isnull=False).values_list("name", flat=True))


def rollup_properties_ready() -> frozenset[tuple[str, str]]:
    """The (event, property) pairs whose daily values rules may read."""
    return frozenset(RollupProperty.objects.filter(ready_at__isnull=False).values_list("event", "property"))


def rollups_request(*, events: Iterable[str] = (), properties: Iterable[tuple[str, str]] = (),
                    now: datetime) -> list[RollupEvent | RollupProperty]:
    """Roll up these event names (day rows) and (event, numeric property) pairs (daily
    values) from now on, and back-fill what is stored: a task per new one, queued on
    commit. Those already asked for are left as they are. Returns the new ones."""
    fresh: list[RollupEvent | RollupProperty] = []
    for name in sorted(set(events)):
        rollup, created = RollupEvent.objects.get_or_create(name=name, defaults={"requested_at": now})
        fresh += [rollup] if created else []
    for event, prop in sorted(set(properties)):
        rollup, created = RollupProperty.objects.get_or_create(event=event, property=prop,
                                                                defaults={"requested_at": now})
        fresh += [rollup] if created else []
    schema = connection.schema_name
    for rollup in fresh:
        kind = "event" if isinstance(rollup, RollupEvent) else "property"
        transaction.on_commit(lambda pk=rollup.pk, kind=kind: send_to_tenant(
            "customers.rollup_backfill", schema_name=schema, kind=kind, rollup_id=pk))
    return fresh


def rollup_backfill(*, kind: str, rollup_id: int, clock: Callable[[], datetime],
                    progress: Progress | None = None) -> RollupEvent | RollupProperty | None:
    """Recount a rollup over every stored event, a customer range at a time (see the
    module's docstring), then mark it ready (an event's with its day rows per event). Safe
    to run again: each range's rows are replaced, not added to."""
    model = RollupEvent if kind == "event" else RollupProperty
    rollup = model.objects.filter(pk=rollup_id).first()
    if rollup is None:
        return None
    if kind == "event":
        params = {"event": rollup.name}
        statements = (_DAYS_FORGET_SQL, _DAYS_RECOUNT_SQL, _LIFETIMES_FORGET_SQL, _LIFETIMES_RECOUNT_SQL)
    else:
        params = {"event": rollup.event, "property": rollup.property}
        statements = (_VALUES_FORGET_SQL, _VALUES_RECOUNT_SQL, _TOTALS_FORGET_SQL, _TOTALS_RECOUNT_SQL)
    _recount_by_range(params, statements, progress)
    ready = {"ready_at": clock()}
    if kind == "event":
        with connection.cursor() as cursor:
            cursor.execute(_DAYS_PER_EVENT_SQL, params)
            ready["days_per_event"] = cursor.fetchone()[0]
    model.objects.filter(pk=rollup.pk).update(**ready)
    rollup.refresh_from_db()
    return rollup


def _recount_by_range(params: dict, statements: tuple[str, ...], progress: Progress | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM customers_customer")
        low, high = cursor.fetchone()
    ranges = list(range(low, high + 1, BACKFILL_CUSTOMERS))
    for done, start in enumerate(ranges, start=1):
        bounds = {**params, "low": start, "high": start + BACKFILL_CUSTOMERS}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE customers_event IN SHARE MODE")
            for statement in statements:
                cursor.execute(statement, bounds)
        if progress is not None:
            progress(done, len(ranges))
