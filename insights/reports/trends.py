"""KPI trends: segments' KPIs per day, week or month, side by side with all customers.

Each period is a UTC calendar day, week (from Monday) or month; the current one runs to
`now`. Per group and period:

- members: the segment's members at the period's end (from the membership history), or
  the customers who had signed up (else been created) by then for all customers;
- active: the share of them who did any event in the period;
- revenue: the workspace's revenue event's property summed over their events of the
  period, and ARPU: that revenue per member a month (of the period's length so far);
- conversion: the share of them who did a chosen event in the period;
- NPS: % promoters − % detractors of the NPS answers they gave in the period; CSAT: the
  mean of their CSAT answers in the period.

So each period describes whoever was in the segment when it ended: a segment that swaps
its members shows the new members' behaviour, not the old ones'. One statement; cached
(cache.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from common.errors import Code, DomainError, Problem
from common.jsonvalues import text_problem
from customers.metrics.ltv import DAYS_PER_MONTH
from customers.models import MetricsSettings
from insights.reports.cache import cached_report
from insights.reports.inputs import segment_problems
from insights.reports.periods import period_start, shift
from segments.models import Segment

INTERVALS = {"day": 90, "week": 52, "month": 24}  # the most periods of each
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 12}
MAX_SEGMENTS = 10
METRICS = ("members", "active", "revenue", "arpu", "conversion", "nps", "csat")
BASE = "all"


@dataclass(frozen=True)
class TrendQuery:
    segments: tuple[str, ...]
    interval: str = "week"
    periods: int = 12
    conversion: str | None = None

    def cache_parts(self) -> tuple[str, ...]:
        return (self.interval, str(self.periods), self.conversion or "", *self.segments)


@dataclass
class TrendSeries:
    key: str
    name: str
    members: list[int]
    active: list[float | None]
    revenue: list[float]
    arpu: list[float | None]
    conversion: list[float | None]
    nps: list[float | None]
    nps_answers: list[int]
    csat: list[float | None] = field(default_factory=list)  # the mean CSAT answer given in the period


@dataclass
class TrendReport:
    now: datetime
    interval: str
    periods: list[str]  # each period's first day, ISO
    conversion_event: str | None
    series: list[TrendSeries] = field(default_factory=list)  # the segments asked, then all customers

    def as_dict(self) -> dict:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data


def trend_query(*, segments: Any, interval: Any = "week", periods: Any = None, conversion: Any = None) -> TrendQuery:
    problems = []
    if not isinstance(segments, (list, tuple)) or not all(isinstance(s, str) for s in segments):
        raise DomainError.single(path="segments", code=Code.INVALID_TYPE, message="A list of segment keys.")
    keys = tuple(dict.fromkeys(s.strip() for s in segments if s.strip()))
    if len(keys) > MAX_SEGMENTS:
        problems.append(Problem("segments", Code.TOO_MANY, f"At most {MAX_SEGMENTS} segments."))
    else:
        problems += [p for i, key in enumerate(keys) for p in segment_problems(key, f"segments[{i}]")]
    if interval not in INTERVALS:
        problems.append(Problem("interval", Code.INVALID_CHOICE, "An interval is “day”, “week” or “month”."))
    most = INTERVALS.get(interval, 52)
    count = DEFAULT_PERIODS.get(interval, 12) if periods is None else periods
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
        problems.append(Problem("periods", Code.OUT_OF_RANGE, f"From 1 to {most} periods of a {interval}."))
    if conversion is not None and (not isinstance(conversion, str) or not 0 < len(conversion) <= 200):
        problems.append(Problem("conversion", Code.INVALID_VALUE, "An event name (up to 200 characters)."))
    elif isinstance(conversion, str) and (found := text_problem(conversion)):
        problems.append(Problem("conversion", *found))
    if problems:
        raise DomainError(problems=problems)
    return TrendQuery(segments=keys, interval=interval, periods=count, conversion=conversion or None)


def trend_report(*, query: TrendQuery, now: datetime) -> TrendReport:
    return cached_report("trends", now=now, query=query.cache_parts(), compute=lambda: _compute(query, now))


def _compute(query: TrendQuery, now: datetime) -> TrendReport:
    current = period_start(now, query.interval)
    starts = [shift(current, query.interval, -n) for n in range(query.periods - 1, -1, -1)]
    ends = [*starts[1:], now]
    segments = {s.key: s for s in Segment.objects.filter(key__in=query.segments)}
    ids = {segments[key].pk: key for key in query.segments}
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    params = {"segments": list(ids), "starts": starts, "ends": ends, "first": starts[0], "now": now,
              "unit": query.interval, "revenue": settings.revenue_event, "prop": settings.revenue_property,
              "conversion": query.conversion or ""}
    with connection.cursor() as cursor:
        cursor.execute(TREND_SQL, params)
        rows = cursor.fetchall()
    facts = {(ids.get(g, BASE), start): row for g, start, *row in rows}
    series = [_series(key, segments[key].name, facts, starts, ends) for key in query.segments]
    series.append(_series(BASE, "All customers", facts, starts, ends))
    return TrendReport(now=now, interval=query.interval, periods=[s.date().isoformat() for s in starts],
                       conversion_event=query.conversion, series=series)


def _series(key: str, name: str, facts: dict, starts: list[datetime], ends: list[datetime]) -> TrendSeries:
    out = TrendSeries(key=key, name=name, members=[], active=[], revenue=[], arpu=[], conversion=[], nps=[],
                      nps_answers=[])
    for start, end in zip(starts, ends):
        members, active, revenue, converted, answers, promoters, detractors, csat_n, csat_sum = \
            facts.get((key, start), (0,) * 9)
        months = max((end - start).total_seconds(), 1) / 86400 / DAYS_PER_MONTH
        out.members.append(members)
        out.active.append(_ratio(active, members))
        out.revenue.append(round(float(revenue), 2))
        out.arpu.append(round(float(revenue) / members / months, 2) if members else None)
        out.conversion.append(_ratio(converted, members))
        out.nps.append(round(100 * (promoters - detractors) / answers, 1) if answers else None)
        out.nps_answers.append(answers)
        out.csat.append(round(float(csat_sum) / csat_n, 2) if csat_n else None)
    return out


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# Periods as (start, end) pairs; group 0 is all customers. A period's events and answers
# count for the segments the customer was in at the period's end.
TREND_SQL = """
WITH spans AS (
    SELECT s.start, s.stop FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS s(start, stop)
),
sizes AS (
    SELECT m.segment_id AS g, sp.start, count(*) AS members
    FROM spans sp JOIN segments_membership m ON m.segment_id = ANY(%(segments)s::bigint[])
        AND m.entered_at <= sp.stop AND (m.exited_at IS NULL OR m.exited_at > sp.stop)
    GROUP BY m.segment_id, sp.start
    UNION ALL
    SELECT 0, sp.start, count(c.id) FROM spans sp
    LEFT JOIN customers_customer c ON COALESCE(c.signed_up_at, c.created_at) <= sp.stop
    GROUP BY sp.start
),
events AS (
    SELECT e.customer_id, e.timestamp, date_trunc(%(unit)s::text, e.timestamp, 'UTC') AS start,
           e.name = %(conversion)s AS converted,
           CASE WHEN e.name = %(revenue)s AND jsonb_typeof(e.properties -> %(prop)s) = 'number'
                THEN (e.properties ->> %(prop)s)::numeric ELSE 0 END AS revenue
    FROM customers_event e WHERE e.timestamp >= %(first)s AND e.timestamp < %(now)s
),
acts AS (
    SELECT m.segment_id AS g, ev.start, count(DISTINCT ev.customer_id) AS active, sum(ev.revenue) AS revenue,
           count(DISTINCT ev.customer_id) FILTER (WHERE ev.converted) AS converted
    FROM events ev JOIN spans sp ON sp.start = ev.start
    JOIN segments_membership m ON m.customer_id = ev.customer_id
        AND m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= sp.stop
        AND (m.exited_at IS NULL OR m.exited_at > sp.stop)
    GROUP BY m.segment_id, ev.start
    UNION ALL
    SELECT 0, start, count(DISTINCT customer_id), sum(revenue), count(DISTINCT customer_id) FILTER (WHERE converted)
    FROM events GROUP BY start
),
answers AS (
    SELECT r.customer_id, r.responded_at, r.score, s.key, date_trunc(%(unit)s::text, r.responded_at, 'UTC') AS start
    FROM customers_surveyresponse r JOIN customers_survey s ON s.id = r.survey_id
    WHERE s.key IN ('nps', 'csat') AND r.score IS NOT NULL AND r.responded_at >= %(first)s AND r.responded_at < %(now)s
),
nps AS (
    SELECT m.segment_id AS g, a.start, count(*) FILTER (WHERE a.key = 'nps') AS answers,
           count(*) FILTER (WHERE a.key = 'nps' AND a.score >= 9) AS promoters,
           count(*) FILTER (WHERE a.key = 'nps' AND a.score <= 6) AS detractors,
           count(*) FILTER (WHERE a.key = 'csat') AS csat_answers, sum(a.score) FILTER (WHERE a.key = 'csat') AS csat_sum
    FROM answers a JOIN spans sp ON sp.start = a.start
    JOIN segments_membership m ON m.customer_id = a.customer_id
        AND m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= sp.stop
        AND (m.exited_at IS NULL OR m.exited_at > sp.stop)
    GROUP BY m.segment_id, a.start
    UNION ALL
    SELECT 0, start, count(*) FILTER (WHERE key = 'nps'), count(*) FILTER (WHERE key = 'nps' AND score >= 9),
           count(*) FILTER (WHERE key = 'nps' AND score <= 6), count(*) FILTER (WHERE key = 'csat'),
           sum(score) FILTER (WHERE key = 'csat')
    FROM answers GROUP BY start
)
SELECT s.g, s.start, s.members, COALESCE(a.active, 0), COALESCE(a.revenue, 0), COALESCE(a.converted, 0),
       COALESCE(n.answers, 0), COALESCE(n.promoters, 0), COALESCE(n.detractors, 0),
       COALESCE(n.csat_answers, 0), COALESCE(n.csat_sum, 0)
FROM sizes s
LEFT JOIN acts a ON a.g = s.g AND a.start = s.start
LEFT JOIN nps n ON n.g = s.g AND n.start = s.start
"""
