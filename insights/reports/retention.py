"""Retention: cohorts by the first occurrence of an event (or by sign-up), returning on
another event (or any), weekly or monthly, for all customers or a segment, compared
across segments.

A customer's cohort is the UTC calendar week (from Monday) or month of their first start
event before `now` (or of their sign-up). They are retained in period i ≥ 1 when they
did the return event at any time in the i-th calendar period after their cohort's; period
0 is the cohort itself (100%). The triangle has a row per cohort of the last N periods, a
cell per period that has begun (the current one is partial: "so far"). A group's curve
at period i is its customers retained in period i over the customers of the cohorts that
have reached period i — cohorts weighted by size.

One statement: each customer's cohort, then their distinct return periods, counted per
group, cohort and period. Cached (cache.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


from common.replica import replica_reads
from common.errors import Code, DomainError, Problem, SegmentCode
from common.jsonvalues import text_problem
from customers.models import EventDefinition
from insights.reports.cache import cached_report
from insights.reports.inputs import segment_problems
from insights.reports.periods import period_start, shift
from segments.models import Segment
from segments.rules.vocabulary import ANY_EVENT

PERIODS = {"week": 24, "month": 12}  # the most cohorts of each
DEFAULT_COHORTS = {"week": 12, "month": 6}
MAX_COMPARE = 10
SIGN_UP = None  # start_event None: cohorts by sign-up date


@dataclass(frozen=True)
class RetentionQuery:
    start_event: str | None
    return_event: str
    period: str
    cohorts: int
    segment: str | None = None
    compare: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()

    def cache_parts(self) -> tuple[str, ...]:
        return (self.start_event or "\x1e", self.return_event, self.period, str(self.cohorts), self.segment or "",
                *self.compare)


@dataclass
class Cohort:
    start: str  # the period's first day, ISO
    size: int
    returned: list[int]  # customers back in period 1, 2, … (those that have begun)
    rates: list[float | None]


@dataclass
class RetentionGroup:
    key: str
    label: str
    customers: int
    curve: list[float | None]  # period 0 (1.0), 1, 2, …
    cohorts: list[Cohort] = field(default_factory=list)


@dataclass
class RetentionReport:
    now: datetime
    start_event: str | None
    return_event: str
    period: str
    first_cohort: datetime
    groups: list[RetentionGroup]  # the base (everyone or the segment), then the compared segments
    warnings: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(now=self.now.isoformat(), first_cohort=self.first_cohort.isoformat())
        return data


# ---------------------------------------------------------------------- input


def retention_query(*, start_event: Any = SIGN_UP, return_event: Any = ANY_EVENT, period: Any = "week",
                    cohorts: Any = None, segment: Any = None, compare: Any = None) -> RetentionQuery:
    problems, warnings = [], []
    for path, name, allow_any in (("start_event", start_event, False), ("return_event", return_event, True)):
        if name is None and path == "start_event":
            continue
        problem = _event_problem(path, name, allow_any)
        if problem:
            problems.append(problem)
        elif name != ANY_EVENT and not EventDefinition.objects.filter(name=name).exists():
            warnings.append(Problem(path, SegmentCode.UNKNOWN_EVENT, f"No “{name}” event has arrived yet."))
    if period not in PERIODS:
        problems.append(Problem("period", Code.INVALID_CHOICE, "A period is “week” or “month”."))
    most = PERIODS.get(period, 24)
    count = DEFAULT_COHORTS.get(period, 12) if cohorts is None else cohorts
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
        problems.append(Problem("cohorts", Code.OUT_OF_RANGE, f"From 1 to {most} cohorts of a {period}."))
    problems += segment_problems(segment, "segment")
    keys, more = _compare(compare)
    problems += more
    if problems:
        raise DomainError(problems=problems)
    return RetentionQuery(start_event=start_event, return_event=return_event, period=period, cohorts=count,
                          segment=segment or None, compare=keys, warnings=tuple(warnings))


def _event_problem(path: str, name: Any, allow_any: bool) -> Problem | None:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return Problem(path, Code.INVALID_TYPE, "Name the event (a non-empty string, ≤ 200 characters).")
    if found := text_problem(name):
        return Problem(path, *found)
    if name == ANY_EVENT and not allow_any:
        return Problem(path, Code.INVALID_VALUE, "Cohorts start at one event (“*” is for returning).")
    return None


def _compare(compare: Any) -> tuple[tuple[str, ...], list[Problem]]:
    if compare is None or compare == []:
        return (), []
    if not isinstance(compare, (list, tuple)) or not all(isinstance(k, str) for k in compare):
        return (), [Problem("compare", Code.INVALID_TYPE, "A list of segment keys.")]
    keys = tuple(dict.fromkeys(compare))
    if len(keys) > MAX_COMPARE:
        return (), [Problem("compare", Code.TOO_MANY, f"Compare at most {MAX_COMPARE} segments.")]
    return keys, [p for i, key in enumerate(keys) for p in segment_problems(key, f"compare[{i}]")]


# ---------------------------------------------------------------------- the report


def retention_report(*, query: RetentionQuery, now: datetime) -> RetentionReport:
    return cached_report("retention", now=now, query=query.cache_parts(), compute=lambda: _compute(query, now))


def _compute(query: RetentionQuery, now: datetime) -> RetentionReport:
    current = period_start(now, query.period)
    first = shift(current, query.period, -(query.cohorts - 1))
    sql, params = retention_sql(query, now, first)
    with replica_reads() as db, db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    cohorts = [shift(first, query.period, i) for i in range(query.cohorts)]
    counts: dict[tuple[str, datetime, int], int] = {(g, cohort, offset): n for g, cohort, offset, n in rows}
    names = dict(Segment.objects.filter(key__in=[query.segment, *query.compare]).values_list("key", "name"))
    base_label = names.get(query.segment, query.segment) if query.segment else "All customers"
    groups = [_group("all", base_label, counts, cohorts, query.period, current)]
    groups += [_group(key, names.get(key, key), counts, cohorts, query.period, current) for key in query.compare]
    return RetentionReport(now=now, start_event=query.start_event, return_event=query.return_event,
                           period=query.period, first_cohort=first, groups=groups,
                           warnings=[p.as_dict() for p in query.warnings])


def _group(key: str, label: str, counts: dict, cohorts: list[datetime], period: str, current: datetime) -> RetentionGroup:
    rows = []
    for index, start in enumerate(cohorts):
        size = counts.get((key, start, -1), 0)
        begun = len(cohorts) - 1 - index  # periods after the cohort's that have begun by now
        returned = [counts.get((key, start, offset), 0) for offset in range(1, begun + 1)]
        rows.append(Cohort(start=start.date().isoformat(), size=size, returned=returned,
                           rates=[_ratio(n, size) for n in returned]))
    curve: list[float | None] = [1.0 if any(c.size for c in rows) else None]
    for offset in range(1, len(cohorts)):
        reached = [c for c in rows if len(c.returned) >= offset]
        curve.append(_ratio(sum(c.returned[offset - 1] for c in reached), sum(c.size for c in reached)))
    return RetentionGroup(key=key, label=label, customers=sum(c.size for c in rows), curve=curve, cohorts=rows)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def retention_sql(query: RetentionQuery, now: datetime, first: datetime) -> tuple[str, dict]:
    """Rows (group, cohort start, period offset, customers): offset -1 is the cohort's size."""
    params = {"now": now, "first": first, "unit": query.period, "return_event": query.return_event}
    if query.start_event is None:
        starts = ("SELECT c.id AS customer_id, date_trunc(%(unit)s::text, c.signed_up_at, 'UTC') AS cohort "
                  "FROM customers_customer c WHERE c.signed_up_at >= %(first)s AND c.signed_up_at < %(now)s")
    else:
        params["start_event"] = query.start_event
        # The first occurrence ever (not only since `first`): a customer who started before
        # the oldest cohort shown is in none of them.
        starts = ("SELECT customer_id, date_trunc(%(unit)s::text, min(timestamp), 'UTC') AS cohort FROM customers_event "
                  "WHERE name = %(start_event)s AND timestamp < %(now)s GROUP BY customer_id "
                  "HAVING min(timestamp) >= %(first)s")
    scope = ""
    if query.segment:
        params["segment"] = query.segment
        scope = f" WHERE s.customer_id IN ({_members('segment')})"
    grouped = "SELECT 'all' AS g, s.customer_id, s.cohort FROM starts s" + scope
    if query.compare:
        params["compare"] = list(query.compare)
        grouped += (" UNION ALL SELECT seg.key, s.customer_id, s.cohort FROM starts s "
                    "JOIN segments_membership m ON m.customer_id = s.customer_id "
                    "JOIN segments_segment seg ON seg.id = m.segment_id "
                    "WHERE seg.key = ANY(%(compare)s) AND m.entered_at <= %(now)s "
                    "AND (m.exited_at IS NULL OR m.exited_at > %(now)s)")
    named = "" if query.return_event == ANY_EVENT else "e.name = %(return_event)s AND "
    offset = ("(extract(epoch FROM r.p - s.cohort) / 604800)::int" if query.period == "week" else
              "((extract(year FROM r.p AT TIME ZONE 'UTC') - extract(year FROM s.cohort AT TIME ZONE 'UTC')) * 12"
              " + extract(month FROM r.p AT TIME ZONE 'UTC') - extract(month FROM s.cohort AT TIME ZONE 'UTC'))::int")
    return f"""
WITH starts AS MATERIALIZED ({starts}),
returns AS (
    SELECT DISTINCT e.customer_id, date_trunc(%(unit)s::text, e.timestamp, 'UTC') AS p
    FROM customers_event e JOIN starts s ON s.customer_id = e.customer_id
    WHERE {named}e.timestamp >= %(first)s AND e.timestamp < %(now)s
),
grouped AS ({grouped})
SELECT g, cohort, -1, count(*) FROM grouped GROUP BY g, cohort
UNION ALL
SELECT s.g, s.cohort, {offset}, count(*)
FROM grouped s JOIN returns r ON r.customer_id = s.customer_id AND r.p > s.cohort
GROUP BY 1, 2, 3""", params


def _members(param: str) -> str:
    return (f"SELECT m.customer_id FROM segments_membership m JOIN segments_segment seg ON seg.id = m.segment_id "
            f"WHERE seg.key = %({param})s AND m.entered_at <= %(now)s "
            f"AND (m.exited_at IS NULL OR m.exited_at > %(now)s)")
