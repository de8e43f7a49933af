"""The engine: the only writer of memberships.

`evaluate` runs a dynamic segment's compiled statement and diffs it against the open
memberships in one transaction: customers who now match and have no open row enter,
customers with an open row who no longer match exit (the row is closed), and each change
is written to the outbox. The segment's size and freshness are updated in the same
transaction, so nobody sees "updated" before the memberships are. An evaluation is
idempotent for (segment, definition version, now): a rerun finds nothing to change.

Static and snapshot segments change only through `members_add` / `members_remove` /
`snapshot_fill` (static.py), identity merges through `customers_merged` (merges.py), so
every membership row has one author: this package.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import structlog
from django.db import connection, transaction

from common.clock import Clock
from ops import telemetry
from segments.engine.merges import customers_merged
from segments.engine.static import members_add, members_remove, snapshot_fill
from segments.engine.writes import CUSTOMER_DELETES_LOCK, Diff, hold_customer_deletes, record_day
from segments.models import Segment, SegmentEvaluation
from segments.rules.compile import compile_rule
from segments.selectors.rules import reference_ids, rule_context

# Above this many touched customers an ingest-triggered check evaluates the whole segment:
# one full statement is cheaper than a huge id list pushed into every subquery. The cost of
# a full evaluation grows with the tenant, that of a check with the customers checked, so
# the limit is a share of the tenant's customers, never below the fixed floor
# (bench/segments.py incremental_<n> measures where the two cross).
INCREMENTAL_LIMIT = 5_000
INCREMENTAL_SHARE = 0.02
# An evaluation that changes this many memberships has the table analysed once it commits.
# Until then the planner knows nothing of the segment's new rows (a new segment id is in no
# statistics, and autovacuum waits for 10% of a large table to change), and plans the next
# incremental check on that ignorance: ten times slower than after ANALYZE.
ANALYZE_AFTER_CHANGES = 10_000
logger = structlog.get_logger(__name__)

__all__ = [
    "CUSTOMER_DELETES_LOCK", "EvaluationSkipped", "backoff", "customers_merged", "evaluate", "hold_customer_deletes",
    "incremental_limit", "matching_sql", "members_add", "members_remove", "snapshot_fill", "tenant_incremental_limit",
]


class EvaluationSkipped(Exception):
    pass


# Both diffs end by writing their changes to the outbox and counting them.
_OUTBOX_SQL = """outbox AS (
    INSERT INTO segments_membershipchange (segment_id, customer_id, change, at, evaluation_id, created_at)
    SELECT %(e_segment)s, customer_id, 'exited', %(e_now)s, %(e_evaluation)s, %(e_now)s FROM closed
    UNION ALL
    SELECT %(e_segment)s, customer_id, 'entered', %(e_now)s, %(e_evaluation)s, %(e_now)s FROM opened
)
SELECT (SELECT count(*) FROM opened), (SELECT count(*) FROM closed)"""

# A full evaluation's diff. TRICKY: its matched ids are in a temporary table with a primary
# key. As a CTE they had no index, and right after a first evaluation filled
# segments_membership (before autovacuum analysed it) the planner chose a nested-loop anti
# join of open rows × matched ids for `closed`, quadratic in the segment's size. With the
# key each probe is an index lookup whatever the statistics say.
_DIFF_SQL = """
WITH closed AS (
    UPDATE segments_membership o SET exited_at = %(e_now)s
    WHERE o.segment_id = %(e_segment)s AND o.exited_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM segment_matched_full m WHERE m.id = o.customer_id)
    RETURNING o.customer_id
),
opened AS (
    INSERT INTO segments_membership (segment_id, customer_id, entered_at, exited_at, definition_version, source)
    SELECT %(e_segment)s, m.id, %(e_now)s, NULL, %(e_version)s, 'rule' FROM segment_matched_full m
    WHERE NOT EXISTS (SELECT 1 FROM segments_membership o
                      WHERE o.segment_id = %(e_segment)s AND o.customer_id = m.id AND o.exited_at IS NULL)
    ORDER BY m.id
    RETURNING customer_id
),
""" + _OUTBOX_SQL

# A check's changes, decided by the engine: the customers who enter (`e_entries`) and exit
# (`e_exits`), memberships and outbox in one statement.
_APPLY_SQL = """
WITH closed AS (
    UPDATE segments_membership o SET exited_at = %(e_now)s
    WHERE o.segment_id = %(e_segment)s AND o.exited_at IS NULL AND o.customer_id = ANY(%(e_exits)s)
    RETURNING o.customer_id
),
opened AS (
    INSERT INTO segments_membership (segment_id, customer_id, entered_at, exited_at, definition_version, source)
    SELECT %(e_segment)s, m.id, %(e_now)s, NULL, %(e_version)s, 'rule' FROM unnest(%(e_entries)s::bigint[]) AS m(id)
    ORDER BY m.id
    RETURNING customer_id
),
""" + _OUTBOX_SQL


# The open memberships among a check's customers: one probe of the partial unique index on open
# rows per customer checked (LATERAL … LIMIT 1 keeps the plan a nested loop of probes), so
# the cost follows the customers checked, not the segment's size. As `customer_id =
# ANY(…)` the planner chose to read all the segment's rows, a scan that grows with the
# segment.
_OPEN_AMONG_SQL = ("SELECT u.id FROM unnest(%(e_only)s::bigint[]) AS u(id), LATERAL (SELECT 1 FROM segments_membership o "
                   "WHERE o.segment_id = %(e_segment)s AND o.exited_at IS NULL AND o.customer_id = u.id LIMIT 1) found")


# A segment with no open memberships (a first evaluation, or one that matched nobody):
# every matched customer enters. The matched rows go straight into memberships and the
# outbox — no key to build on the matched table, no anti-joins.
# Exact because a dynamic segment's memberships have one writer, this evaluation, which
# holds the segment row FOR UPDATE: no row opens in between. Sorted, so the indexes fill
# in order.
_ENTER_ALL_SQL = """
WITH opened AS (
    INSERT INTO segments_membership (segment_id, customer_id, entered_at, exited_at, definition_version, source)
    SELECT %(e_segment)s, m.id, %(e_now)s, NULL, %(e_version)s, 'rule' FROM ({matched}) m
    ORDER BY m.id
    RETURNING customer_id
)
INSERT INTO segments_membershipchange (segment_id, customer_id, change, at, evaluation_id, created_at)
SELECT %(e_segment)s, customer_id, 'entered', %(e_now)s, %(e_evaluation)s, %(e_now)s FROM opened
"""


def matching_sql(segment: Segment, *, now: datetime, only: list[int] | None = None):
    """The compiled statement of a dynamic segment's current definition."""
    rule = rule_context(definition=segment.definition, self_key=segment.key)
    return compile_rule(rule.group, now=now, refs=reference_ids(segment.references), only=only,
                        rollups=rule.rollups(now, scoped=only is not None))


def _diff(segment: Segment, evaluation: SegmentEvaluation, now: datetime, only: list[int] | None) -> Diff:
    sql = matching_sql(segment, now=now, only=only)
    params = {**sql.params, "e_now": now, "e_segment": segment.pk, "e_version": segment.definition_version,
              "e_evaluation": evaluation.pk, "e_only": list(only or [])}
    with connection.cursor() as cursor:
        if only is None:
            return _full_diff(cursor, sql, params)
        return _scoped_diff(cursor, segment, sql, params)


def _scoped_diff(cursor, segment: Segment, sql, params: dict) -> Diff:
    """A check of the customers a batch touched: their matched ids and their open memberships
    come back to the engine (each at most the customers checked), which writes only the
    differences. Exact because the engine holds the segment row: nobody else opens or
    closes its memberships meanwhile. No temporary table: emptying, filling and analysing
    one per check cost more than the diff itself."""
    # The planner costs the scoped statement past jit_above_cost, and compiling it costs a
    # sixth of a whole check. Full evaluations keep PostgreSQL's default: JIT pays off when
    # the rule aggregates millions of rows.
    cursor.execute("SET LOCAL jit = off")
    # Short enough to hold deletes for: the lock comes before the statement reads customers.
    hold_customer_deletes(cursor)
    cursor.execute(sql.text, sql.params)
    matched = {row[0] for row in cursor.fetchall()}
    cursor.execute(_OPEN_AMONG_SQL, params)
    members = {row[0] for row in cursor.fetchall()}
    entered = exited = 0
    if matched != members:
        cursor.execute(_APPLY_SQL, {**params, "e_entries": sorted(matched - members),
                                    "e_exits": sorted(members - matched)})
        entered, exited = cursor.fetchone()
    # No count of the open rows (it would read the whole segment): the engine holds the
    # segment row, and every write of its memberships keeps the size. The one exception is a customer delete, which removes memberships without
    # touching sizes (its trigger cannot wait for the segment rows evaluations hold); the
    # next full evaluation, at most a refresh interval away, counts them again.
    if segment.last_evaluated_at is None:  # no full evaluation has set the size yet
        return Diff(entered=entered, exited=exited, size=_open_count(cursor, segment))
    return Diff(entered=entered, exited=exited, size=max(segment.size + entered - exited, 0))


def _full_diff(cursor, sql, params: dict) -> Diff:
    """A full evaluation: the compiled rows go to a temporary table made by CREATE TABLE AS,
    which PostgreSQL runs with parallel workers — INSERT … SELECT never does, and takes
    longer than the bare SELECT. The key is added after the rows, for the diff's probes; a
    first evaluation needs none."""
    cursor.execute("DROP TABLE IF EXISTS segment_matched_full")  # an enclosing transaction's earlier evaluation
    cursor.execute(f"CREATE TEMP TABLE segment_matched_full ON COMMIT DROP AS {sql.text}", sql.params)
    matched = cursor.rowcount
    # Deletes are held from here on, not during the statement (seconds on a large tenant,
    # and an identity merge in an ingest batch deletes customers): a customer deleted while
    # it ran is dropped from its rows now, by a statement that sees every delete committed
    # before the lock — in the trigger's list of deleted ids (segments.DeletedCustomer), far
    # fewer than the matched ids it would take to check against customers.
    hold_customer_deletes(cursor)
    cursor.execute("DELETE FROM segment_matched_full m USING segments_deletedcustomer d "
                   "WHERE d.customer_id = m.id")
    matched -= cursor.rowcount
    if not _any_open(cursor, params):
        cursor.execute(_ENTER_ALL_SQL.format(matched="SELECT id FROM segment_matched_full"), params)
        return Diff(entered=cursor.rowcount, exited=0, size=cursor.rowcount)
    cursor.execute("ALTER TABLE segment_matched_full ADD PRIMARY KEY (id)")
    cursor.execute("ANALYZE segment_matched_full")
    cursor.execute(_DIFF_SQL, params)
    entered, exited = cursor.fetchone()
    # A full diff leaves exactly the matched customers open.
    return Diff(entered=entered, exited=exited, size=matched)


def _any_open(cursor, params: dict) -> bool:
    cursor.execute("SELECT EXISTS (SELECT 1 FROM segments_membership o WHERE o.segment_id = %(e_segment)s "
                   "AND o.exited_at IS NULL)", params)
    return cursor.fetchone()[0]


def _open_count(cursor, segment: Segment) -> int:
    cursor.execute("SELECT count(*) FROM segments_membership WHERE segment_id = %s AND exited_at IS NULL",
                   [segment.pk])
    return cursor.fetchone()[0]


def _finish(segment: Segment, evaluation: SegmentEvaluation, diff: Diff, *, now: datetime, full: bool,
            clock: Clock, started: float) -> None:
    fields = {"size": diff.size}
    if full:
        fields.update(last_evaluated_at=now, next_evaluation_at=now + segment.refresh_interval)
    if diff.entered or diff.exited:
        fields["last_changed_at"] = now
    Segment.objects.filter(pk=segment.pk).update(**fields)
    record_day(segment, now, diff)
    SegmentEvaluation.objects.filter(pk=evaluation.pk).update(
        status=SegmentEvaluation.Status.SUCCEEDED, entered=diff.entered, exited=diff.exited, size=diff.size,
        duration_ms=int((time.perf_counter() - started) * 1000), finished_at=clock(), error="")


def evaluate(*, segment_id: int, now: datetime, trigger: str, clock: Clock,
             customer_ids: list[int] | None = None, evaluation_id: int | None = None) -> SegmentEvaluation:
    """Bring a dynamic segment's memberships to what its rule says at `now`; with
    `customer_ids`, only for those customers (an ingest-triggered check). Returns the
    evaluation record: succeeded, skipped, or failed with its error (nothing of a failed
    evaluation is kept but the record; the caller decides about retrying)."""
    if customer_ids is not None and len(customer_ids) > INCREMENTAL_LIMIT \
            and len(customer_ids) > tenant_incremental_limit():
        customer_ids = None
    evaluation = _evaluation(segment_id, evaluation_id, now=now, trigger=trigger, clock=clock,
                             incremental=customer_ids is not None,
                             checked=len(customer_ids) if customer_ids is not None else None)
    started = time.perf_counter()
    try:
        with transaction.atomic():
            # One evaluation of a segment at a time; a second waits, then sees the first's rows.
            segment = Segment.objects.select_for_update().get(pk=segment_id)
            if customer_ids is not None:
                now = _checked_at(segment, evaluation, now)
            _check_evaluable(segment, now, full=customer_ids is None)
            diff = _diff(segment, evaluation, now, customer_ids)
            _finish(segment, evaluation, diff, now=now, full=customer_ids is None, clock=clock, started=started)
            if diff.entered + diff.exited >= ANALYZE_AFTER_CHANGES:
                transaction.on_commit(_analyze_memberships)
    except EvaluationSkipped as skipped:
        SegmentEvaluation.objects.filter(pk=evaluation.pk).update(status=SegmentEvaluation.Status.SKIPPED,
                                                                  error=str(skipped), finished_at=clock())
    except Exception as error:  # any failure: recorded and shown, the memberships untouched
        logger.exception("segment evaluation failed", segment_id=segment_id, evaluation_id=evaluation.pk)
        SegmentEvaluation.objects.filter(pk=evaluation.pk).update(
            status=SegmentEvaluation.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=clock(), duration_ms=int((time.perf_counter() - started) * 1000))
    evaluation.refresh_from_db()
    telemetry.evaluation_observed(kind="incremental" if evaluation.incremental else "full", status=evaluation.status,
                                  seconds=time.perf_counter() - started)
    return evaluation


def _analyze_memberships() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE segments_membership")


def incremental_limit(customers: int) -> int:
    """Most customers an incremental check takes in a tenant of `customers` customers."""
    return max(INCREMENTAL_LIMIT, int(customers * INCREMENTAL_SHARE))


def tenant_incremental_limit() -> int:
    """The limit for the current tenant, from the planner's estimate of its customers."""
    return incremental_limit(_customers_estimate())


def _customers_estimate() -> int:
    """The planner's row estimate of the tenant's customers: no count over a large table
    (-1, never analysed: 0, so the fixed floor applies)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'customers_customer'::regclass")
        row = cursor.fetchone()
    return max(int(row[0]), 0) if row else 0


def _evaluation(segment_id: int, evaluation_id: int | None, *, now, trigger, clock, incremental, checked):
    """The evaluation's record, committed before the work so a failure can be written on it.
    A retried task passes the id of the record it made the first time."""
    fields = {"status": SegmentEvaluation.Status.RUNNING, "started_at": clock(), "now": now, "trigger": trigger,
              "incremental": incremental, "customers_checked": checked}
    if evaluation_id is not None:
        updated = SegmentEvaluation.objects.filter(pk=evaluation_id, segment_id=segment_id)
        if updated.exists():
            evaluation = updated.get()
            updated.update(attempts=evaluation.attempts + 1, **fields)
            evaluation.refresh_from_db()
            return evaluation
    version = Segment.objects.filter(pk=segment_id).values_list("definition_version", flat=True).first()
    if version is None:
        raise Segment.DoesNotExist(segment_id)
    return SegmentEvaluation.objects.create(segment_id=segment_id, definition_version=version, attempts=1, **fields)


def _latest(segment: Segment) -> datetime | None:
    """The moment the segment's memberships reflect (history before it is never rewritten)."""
    return max(filter(None, (segment.last_evaluated_at, segment.last_changed_at)), default=None)


def _checked_at(segment: Segment, evaluation: SegmentEvaluation, now: datetime) -> datetime:
    """When an incremental check runs: its `now`, or the later moment the memberships
    already reflect. TRICKY: two checks of one segment run at once on the workers; when the
    one with the later `now` takes the segment's lock first, the other may not evaluate in
    the past of it, and skipping would leave its customers unchecked until the next full
    evaluation. The later moment is safe: everything that queued the check committed
    before the check was queued, so it is in the world at that moment too."""
    latest = _latest(segment)
    if latest is None or now >= latest:
        return now
    SegmentEvaluation.objects.filter(pk=evaluation.pk).update(now=latest)
    return latest


def _check_evaluable(segment: Segment, now: datetime, *, full: bool) -> None:
    if segment.kind != Segment.Kind.DYNAMIC or not segment.definition:
        raise EvaluationSkipped("Only dynamic segments are evaluated.")
    if segment.status == Segment.Status.ARCHIVED:
        raise EvaluationSkipped("The segment is archived.")
    # History is never rewritten: an evaluation as of a moment before the last one would
    # enter or exit customers in the past of facts already recorded.
    latest = _latest(segment)
    if latest and now < latest:
        raise EvaluationSkipped(f"Membership already reflects {latest.isoformat()}, later than this evaluation's now.")


def backoff(failures: int, interval: timedelta) -> timedelta:
    """Wait before retrying a failing scheduled evaluation: 1, 2, 4 … minutes, at most the interval."""
    return min(timedelta(minutes=2 ** max(failures - 1, 0)), max(interval, timedelta(minutes=1)))
