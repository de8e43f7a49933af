"""Monthly partitions of the events table and the workspace's event retention.

customers_event is partitioned by month of `timestamp` in UTC (migration 0026): one table per
month, named customers_event_yYYYYmMM, and a default partition for events of months that
have none yet. The daily upkeep (`upkeep`, task customers.event_upkeep):

1. removes what retention no longer keeps: partitions wholly before the cutoff are dropped
   (not deleted row by row), the default partition's older rows deleted, and with them the
   rollups' days and the message ids of those events; lifetime totals are recounted from
   the days left;
2. creates the partitions of this month and the next AHEAD_MONTHS, so ingestion never
   waits for one, and moves rows that wait in the default partition into their month's;
3. analyses the partitioned table (autovacuum analyses only its months).

With retention of N months the cutoff is the start of the month N months before the
current one: at least N whole months are kept, the current month's days on top.
Months more than MONTHS_BACK before or AHEAD_MONTHS after the current one get no table of
their own: their rare events stay in the default partition (retention deletes them there).
Partition DDL takes short locks; `lock_timeout` keeps a busy table from queueing every
reader behind it (the step then rolls back; the task tries again later).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import OperationalError, connection, transaction
from psycopg import errors as pg_errors

from audit.services import audit_record
from common.actors import Actor
from common.errors import Code, DomainError, Problem
from customers.models import DataRetention
from ops.tasking import send_to_tenant
from tenants.permissions import ensure_permitted

AHEAD_MONTHS = 2
MONTHS_BACK = MAX_RETENTION_MONTHS = 120  # older months' events wait in the default partition
LOCK_TIMEOUT = "5s"
UPKEEP_TASK = "customers.event_upkeep"
PARENT = "customers_event"
DEFAULT = "customers_event_default"
_NAME = re.compile(r"^customers_event_y(\d{4})m(\d{2})$")


class UpkeepBlocked(Exception):
    """A partition change waited LOCK_TIMEOUT for queries on the events and gave up; nothing
    of that step was changed (the caller tries again later)."""


@dataclass(frozen=True)
class Upkeep:
    cutoff: datetime | None
    created: list[str]
    dropped: list[str]
    moved: int  # rows moved out of the default partition
    removed: int  # rows deleted from the default partition (before the cutoff)


def month_of(moment: datetime | date) -> date:
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    stop = add_months(month, 1)
    return start, datetime(stop.year, stop.month, 1, tzinfo=UTC)


def partition_name(month: date) -> str:
    return f"customers_event_y{month:%Y}m{month:%m}"


def months_between(first: datetime | date, last: datetime | date) -> list[date]:
    month, end, months = month_of(first), month_of(last), []
    while month <= end:
        months.append(month)
        month = add_months(month, 1)
    return months


@contextmanager
def _unless_blocked():
    try:
        yield
    except OperationalError as error:
        if isinstance(error.__cause__, pg_errors.LockNotAvailable):
            raise UpkeepBlocked(str(error).strip()) from error
        raise


def event_months() -> list[date]:
    """The months that have a partition of their own, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = %s::regclass", [PARENT])
        names = [name for (name,) in cursor.fetchall()]
    return sorted(date(int(m[1]), int(m[2]), 1) for m in map(_NAME.match, names) if m)


def ensure_months(months: Iterable[date]) -> tuple[list[str], int]:
    """Give each month a partition of its own. Returns the partitions made and the rows moved
    into them from the default partition."""
    existing, created, moved = set(event_months()), [], 0
    for month in sorted(set(months) - existing):
        moved += _create(month)
        created.append(partition_name(month))
    return created, moved


def _create(month: date) -> int:
    """The month's table is filled from the default partition, then attached: attaching
    checks that no row of its range is left in the default partition, which stays locked
    against writes meanwhile (reads go on)."""
    name, (start, stop) = partition_name(month), bounds(month)
    with _unless_blocked(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"LOCK TABLE {DEFAULT} IN EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING STORAGE)")
        # TRICKY: straight to the partitions, not through the parent: the events do not
        # change, so the parent's rollup triggers must not see them go and come back.
        cursor.execute(f"WITH moved AS (DELETE FROM {DEFAULT} WHERE timestamp >= %s AND timestamp < %s RETURNING *) "
                       f"INSERT INTO {name} SELECT * FROM moved", [start, stop])
        moved = cursor.rowcount
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, stop])
    return moved


def workspace_months() -> None:
    """A new workspace's partitions for this month and the next AHEAD_MONTHS
    (settings.WORKSPACE_CREATED_HANDLERS): its first day's events go to their month, not
    into the default partition for the night's upkeep to move."""
    current = month_of(datetime.now(UTC))
    ensure_months(add_months(current, n) for n in range(AHEAD_MONTHS + 1))


def retention_get() -> DataRetention:
    return DataRetention.objects.order_by("id").first() or DataRetention.objects.create()


def retention_cutoff(retention: DataRetention, now: datetime) -> datetime | None:
    if not retention.event_months:
        return None
    return bounds(add_months(month_of(now), -retention.event_months))[0]


def retention_update(*, actor: Actor, event_months: int | None, now: datetime) -> DataRetention:
    """Set how many months of events the workspace keeps (None: all); audited. A shorter
    retention takes effect at once: the upkeep is queued after the change commits."""
    ensure_permitted(actor, "settings.modify")
    if event_months is not None and not 1 <= event_months <= MAX_RETENTION_MONTHS:
        raise DomainError(problems=[Problem("event_months", Code.INVALID_RANGE,
                                            f"Keep events 1 to {MAX_RETENTION_MONTHS} months, or leave it empty "
                                            "to keep every event.")])
    with transaction.atomic():
        retention = DataRetention.objects.select_for_update().get(pk=retention_get().pk)
        before = retention.event_months
        retention.event_months = event_months
        retention.save(update_fields=["event_months", "updated_at"])
        audit_record(actor=actor, action="data.retention_changed", target_type="customers.dataretention",
                     target_id=retention.pk, target_label=str(retention),
                     changes={"event_months": [before, event_months]})
        if event_months is not None and (before is None or event_months < before):
            schema = connection.schema_name
            transaction.on_commit(lambda: send_to_tenant(UPKEEP_TASK, schema_name=schema, now_iso=now.isoformat()))
    return retention


def prune(cutoff: datetime) -> tuple[list[str], int]:
    """Remove every event before `cutoff` (a month's start) with what was derived from it.
    Returns the partitions dropped and the rows deleted from the default partition."""
    dropped = [partition_name(m) for m in event_months() if bounds(m)[1] <= cutoff]
    day = cutoff.date()
    with _unless_blocked(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        for name in dropped:
            cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
        cursor.execute(f"DELETE FROM {DEFAULT} WHERE timestamp < %s", [cutoff])
        removed = cursor.rowcount
        cursor.execute("DELETE FROM customers_eventmessage WHERE timestamp < %s", [cutoff])
        _prune_rollups(cursor, day, cutoff)
    return dropped, removed


def _prune_rollups(cursor, day: date, cutoff: datetime) -> None:
    """Daily rollups before the cutoff go; lifetime totals and lifetimes are summed again
    from the days left (a total's `latest` is a newer event's, unless no day is left and the
    total goes)."""
    cursor.execute("DELETE FROM customers_eventday WHERE day < %s", [day])
    cursor.execute("CREATE TEMPORARY TABLE pruned_totals ON COMMIT DROP AS "
                   "SELECT DISTINCT customer_id, name, property FROM customers_eventdayvalue WHERE day < %s", [day])
    cursor.execute("DELETE FROM customers_eventdayvalue WHERE day < %s", [day])
    cursor.execute("""
        UPDATE customers_eventtotal t SET n = s.n, total = s.total, low = s.low, high = s.high
        FROM (SELECT v.customer_id, v.name, v.property, sum(v.n) AS n, sum(v.total) AS total,
                     min(v.low) AS low, max(v.high) AS high
              FROM customers_eventdayvalue v JOIN pruned_totals USING (customer_id, name, property)
              GROUP BY 1, 2, 3) s
        WHERE t.customer_id = s.customer_id AND t.name = s.name AND t.property = s.property""")
    cursor.execute("""
        DELETE FROM customers_eventtotal t USING pruned_totals p
        WHERE t.customer_id = p.customer_id AND t.name = p.name AND t.property = p.property
          AND NOT EXISTS (SELECT 1 FROM customers_eventdayvalue v
                          WHERE v.customer_id = p.customer_id AND v.name = p.name AND v.property = p.property)""")
    cursor.execute("DROP TABLE pruned_totals")
    # A lifetime that began before the cutoff is summed again from its days left, or goes.
    cursor.execute("""
        UPDATE customers_eventlifetime l SET events = s.events, first_at = s.first_at, last_at = s.last_at
        FROM (SELECT d.customer_id, d.name, sum(d.events) AS events, min(d.first_at) AS first_at,
                     max(d.last_at) AS last_at
              FROM customers_eventday d JOIN customers_eventlifetime p USING (customer_id, name)
              WHERE p.first_at < %(cutoff)s GROUP BY 1, 2) s
        WHERE l.customer_id = s.customer_id AND l.name = s.name""", {"cutoff": cutoff})
    cursor.execute("DELETE FROM customers_eventlifetime WHERE first_at < %s", [cutoff])


def _waiting_months(cutoff: datetime | None, now: datetime) -> list[date]:
    """Months of the rows in the default partition, from the cutoff (at most MONTHS_BACK
    back) to AHEAD_MONTHS ahead. Rows outside that span stay in the default partition:
    events stamped centuries apart (the ingest accepts 1800–2200) would otherwise give
    every month between a table of its own, and every all-time query would read them."""
    current = month_of(now)
    first = bounds(add_months(current, -MONTHS_BACK))[0]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT date_trunc('month', timestamp AT TIME ZONE 'UTC')::date FROM {DEFAULT} "
                       "WHERE timestamp >= %s AND timestamp < %s",
                       [max(cutoff, first) if cutoff else first, bounds(add_months(current, AHEAD_MONTHS))[1]])
        return [month for (month,) in cursor.fetchall()]


def upkeep(*, now: datetime) -> Upkeep:
    """The daily upkeep (see the module's docstring)."""
    retention = retention_get()
    cutoff = retention_cutoff(retention, now)
    dropped, removed = prune(cutoff) if cutoff else ([], 0)
    current = month_of(now)
    created, moved = ensure_months([add_months(current, n) for n in range(AHEAD_MONTHS + 1)]
                                   + _waiting_months(cutoff, now))
    _analyze_parent()
    retention.maintained_at = now
    if cutoff:
        retention.pruned_before = cutoff
    retention.save(update_fields=["maintained_at", "pruned_before", "updated_at"])
    return Upkeep(cutoff=cutoff, created=created, dropped=dropped, moved=moved, removed=removed)


def _analyze_parent() -> None:
    """Autovacuum analyses each month but never the partitioned table itself, whose
    statistics the planner uses for the whole (joins over every month)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {PARENT}")


def event_storage() -> list[dict]:
    """Each partition with its rows (the planner's estimate) and size on disk, newest first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid) "
                       "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
                       [PARENT])
        rows = cursor.fetchall()
    storage = []
    for name, estimate, size in rows:
        match = _NAME.match(name)
        storage.append({"name": name, "month": date(int(match[1]), int(match[2]), 1) if match else None,
                        "rows": estimate, "bytes": size})
    return sorted(storage, key=lambda p: (p["month"] is not None, p["month"] or date.min), reverse=True)
