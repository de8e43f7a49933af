"""KPI trends: segments' KPIs per day, week or month, side by side with all customers.

Each period is a UTC calendar day, week (from Monday) or month; the current one runs to
`now`. Per group and period, of the segment's members at the period's end (for all
customers: those who had signed up, else been created, by then):

- members, their share of all customers and growth over the previous period's end;
- active: the share who did any event in the period; adoption: the share who did each
  feature event (the busiest events unless chosen); conversion: a chosen event;
- revenue (the workspace's revenue event and property) in the period, its share of all
  customers' revenue, and ARPU: that revenue per member a month (of the period so far);
- churn, as the workspace metrics define it (customers.metrics.churn): a customer churns
  `inactivity` days after their last event (as known now), so the rate is those churning
  in the period over those alive at its start (signed up before it, not yet churned);
- LTV by both formulas (customers.metrics.ltv) from the period's ARPU and its churn made
  monthly (1 − (1 − churn)^(1 / months));
- retention at day 7, 30 and 90 of the period's sign-up cohort: of the members who signed
  up in the period, at least N days before now, the share active on or after their day N;
- NPS (% promoters − % detractors) and mean CSAT of the answers given in the period;
- engagement: the members' mean engagement score in the period's latest nightly snapshot
  (insights.reports.snapshots; none before snapshots began).

So each period describes whoever was in the segment when it ended: a segment that swaps
its members shows the new members' behaviour, not the old ones'. One statement beside the
snapshots' read; cached (cache.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any


from common.replica import replica_reads
from common.errors import Code, DomainError, Problem
from common.jsonvalues import text_problem
from customers.metrics.ltv import DAYS_PER_MONTH, ltv_by_churn, ltv_by_lifespan
from customers.models import MetricsSettings
from customers.selectors import busiest_events
from insights.reports.cache import cached_report
from insights.reports.inputs import DEFAULT_FEATURES, feature_problems, segment_problems
from insights.reports.snapshots import engagement_by_period
from insights.reports.periods import period_start, shift
from segments.models import Segment

INTERVALS = {"day": 90, "week": 52, "month": 24}  # the most periods of each
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 12}
MAX_SEGMENTS = 10
RETENTION_DAYS = (7, 30, 90)
BASE = "all"


@dataclass(frozen=True)
class TrendQuery:
    segments: tuple[str, ...]
    interval: str = "week"
    periods: int = 12
    conversion: str | None = None
    features: tuple[str, ...] = ()

    def cache_parts(self) -> tuple[str, ...]:
        return (self.interval, str(self.periods), self.conversion or "", *self.segments, "|", *self.features)


@dataclass
class TrendSeries:
    key: str
    name: str
    members: list[int] = field(default_factory=list)
    share: list[float | None] = field(default_factory=list)  # of all customers
    growth: list[float | None] = field(default_factory=list)  # members over the previous period's end
    active: list[float | None] = field(default_factory=list)
    revenue: list[float] = field(default_factory=list)
    revenue_share: list[float | None] = field(default_factory=list)
    arpu: list[float | None] = field(default_factory=list)
    churn: list[float | None] = field(default_factory=list)
    ltv_lifespan: list[float | None] = field(default_factory=list)
    ltv_churn: list[float | None] = field(default_factory=list)
    conversion: list[float | None] = field(default_factory=list)
    nps: list[float | None] = field(default_factory=list)
    nps_answers: list[int] = field(default_factory=list)
    csat: list[float | None] = field(default_factory=list)  # the mean CSAT answer given in the period
    engagement: list[float | None] = field(default_factory=list)
    retention: dict[str, list[float | None]] = field(default_factory=dict)  # "day_7": per period
    adoption: dict[str, list[float | None]] = field(default_factory=dict)  # feature event: per period


@dataclass
class TrendReport:
    now: datetime
    interval: str
    periods: list[str]  # each period's first day, ISO
    conversion_event: str | None
    features: list[str] = field(default_factory=list)
    series: list[TrendSeries] = field(default_factory=list)  # the segments asked, then all customers

    def as_dict(self) -> dict:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data


def trend_query(*, segments: Any, interval: Any = "week", periods: Any = None, conversion: Any = None,
                features: Any = None) -> TrendQuery:
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
    problems += feature_problems(features)
    if problems:
        raise DomainError(problems=problems)
    return TrendQuery(segments=keys, interval=interval, periods=count, conversion=conversion or None,
                      features=tuple(dict.fromkeys(features or ())))


def trend_report(*, query: TrendQuery, now: datetime) -> TrendReport:
    return cached_report("trends", now=now, query=query.cache_parts(), compute=lambda: _compute(query, now))


def _compute(query: TrendQuery, now: datetime) -> TrendReport:
    current = period_start(now, query.interval)
    starts = [shift(current, query.interval, -n) for n in range(query.periods - 1, -1, -1)]
    ends = [*starts[1:], now]
    segments = {s.key: s for s in Segment.objects.filter(key__in=query.segments)}
    ids = {segments[key].pk: key for key in query.segments}
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    features = list(query.features) or busiest_events(limit=DEFAULT_FEATURES)
    params = {"segments": list(ids), "starts": starts, "ends": ends, "first": starts[0], "now": now,
              "unit": query.interval, "revenue": settings.revenue_event, "prop": settings.revenue_property,
              "conversion": query.conversion or "", "inactivity": timedelta(days=settings.churn_inactivity_days),
              **{f"feature_{i}": name for i, name in enumerate(features)},
              **{f"signed_{d}": now - timedelta(days=d) for d in RETENTION_DAYS}}
    with replica_reads() as db, db.cursor() as cursor:
        cursor.execute(trend_sql(len(features)), params)
        rows = cursor.fetchall()
    names = [*FACTS, *(f"adopted_{i}" for i in range(len(features)))]
    facts = {(ids.get(g, BASE), start): dict(zip(names, row)) for g, start, *row in rows}
    engagement = engagement_by_period(segment_ids=list(ids), starts=starts, ends=ends)
    groups = [(key, segments[key].name, segments[key].pk) for key in query.segments] + [(BASE, "All customers", 0)]
    series = [_series(key, name, facts, engagement.get(pk, {}), starts, ends, features, settings)
              for key, name, pk in groups]
    base = series[-1]
    for one in series:
        one.share = [_ratio(n, all_n) for n, all_n in zip(one.members, base.members)]
        one.revenue_share = [_ratio(r, all_r) for r, all_r in zip(one.revenue, base.revenue)]
    return TrendReport(now=now, interval=query.interval, periods=[s.date().isoformat() for s in starts],
                       conversion_event=query.conversion, features=features, series=series)


def _series(key: str, name: str, facts: dict, engagement: dict, starts: list[datetime], ends: list[datetime],
            features: list[str], settings: MetricsSettings) -> TrendSeries:
    out = TrendSeries(key=key, name=name, retention={f"day_{d}": [] for d in RETENTION_DAYS},
                      adoption={feature: [] for feature in features})
    margin, lifespan = float(settings.gross_margin), float(settings.expected_lifespan_months)
    for start, end in zip(starts, ends):
        f = facts[(key, start)]  # the statement's grid has every (group, period)
        members, revenue = f["members"], float(f["revenue"] or 0)
        months = max((end - start).total_seconds(), 1) / 86400 / DAYS_PER_MONTH
        arpu = revenue / members / months if members else None
        churn = _ratio(f["churned"], f["alive"])
        out.members.append(members)
        out.growth.append(_growth(members, f["opening"] if start == starts[0] else out.members[-2]))
        out.active.append(_ratio(f["active"], members))
        out.revenue.append(round(revenue, 2))
        out.arpu.append(_money(arpu))
        out.churn.append(churn)
        out.ltv_lifespan.append(_money(ltv_by_lifespan(arpu, gross_margin=margin, lifespan_periods=lifespan)))
        out.ltv_churn.append(_money(ltv_by_churn(arpu, gross_margin=margin, churn_rate=_monthly(churn, months))))
        out.conversion.append(_ratio(f["converted"], members))
        out.nps.append(round(100 * (f["promoters"] - f["detractors"]) / f["answers"], 1) if f["answers"] else None)
        out.nps_answers.append(f["answers"])
        out.csat.append(round(float(f["csat_sum"]) / f["csat_answers"], 2) if f["csat_answers"] else None)
        out.engagement.append(engagement.get(start))
        for d in RETENTION_DAYS:
            out.retention[f"day_{d}"].append(_ratio(f[f"retained_{d}"], f[f"eligible_{d}"]))
        for i, feature in enumerate(features):
            out.adoption[feature].append(_ratio(f[f"adopted_{i}"], members))
    return out


def _ratio(part, whole) -> float | None:
    return round(part / whole, 4) if whole else None


def _growth(members: int, before: int) -> float | None:
    return round((members - before) / before, 4) if before else None


def _money(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _monthly(churn: float | None, months: float) -> float | None:
    """A period's churn rate as a month's: 1 − (1 − churn)^(1 / months)."""
    if churn is None:
        return None
    return 1 - (1 - churn) ** (1 / months) if churn < 1 else 1.0


# The statement's columns after (group, period start), in order.
FACTS = ("members", "opening", "active", "revenue", "converted", "answers", "promoters", "detractors",
         "csat_answers", "csat_sum", "alive", "churned", *(f"eligible_{d}" for d in RETENTION_DAYS),
         *(f"retained_{d}" for d in RETENTION_DAYS))


def trend_sql(features: int) -> str:
    """Periods as (start, end) pairs; group 0 is all customers. A period's events, answers
    and lives count for the segments the customer was in at the period's end. Events are
    folded once per (customer, period) before they meet the memberships."""
    flags = "".join(f", bool_or(e.name = %(feature_{i})s) AS a{i}" for i in range(features))
    adopted = "".join(f", count(*) FILTER (WHERE a.a{i}) AS adopted_{i}" for i in range(features))
    adopted_all = "".join(f", count(*) FILTER (WHERE a{i})" for i in range(features))
    adopted_cols = "".join(f", COALESCE(a.adopted_{i}, 0)" for i in range(features))
    lives = ", ".join(
        ["count(*) FILTER (WHERE COALESCE(c.signed_up_at, c.created_at) < sp.start"
         " AND c.last_seen_at > sp.start - %(inactivity)s) AS alive",
         "count(*) FILTER (WHERE COALESCE(c.signed_up_at, c.created_at) < sp.start"
         " AND c.last_seen_at > sp.start - %(inactivity)s AND c.last_seen_at <= sp.stop - %(inactivity)s) AS churned"]
        + [f"count(*) FILTER (WHERE c.signed_up_at >= sp.start AND c.signed_up_at < sp.stop"
           f" AND c.signed_up_at <= %(signed_{d})s) AS eligible_{d}" for d in RETENTION_DAYS]
        + [f"count(*) FILTER (WHERE c.signed_up_at >= sp.start AND c.signed_up_at < sp.stop"
           f" AND c.signed_up_at <= %(signed_{d})s AND c.last_seen_at >= c.signed_up_at + interval '{d} days')"
           f" AS retained_{d}" for d in RETENTION_DAYS])
    life_cols = ", ".join(f"COALESCE(l.{name}, 0)" for name in FACTS[10:])
    return f"""
WITH spans AS (
    SELECT s.start, s.stop FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS s(start, stop)
),
grid AS (
    SELECT gs.g, sp.start FROM spans sp CROSS JOIN (SELECT unnest(%(segments)s::bigint[]) AS g UNION ALL SELECT 0) gs
),
members AS MATERIALIZED (
    SELECT m.segment_id AS g, sp.start, m.customer_id
    FROM spans sp JOIN segments_membership m ON m.segment_id = ANY(%(segments)s::bigint[])
        AND m.entered_at <= sp.stop AND (m.exited_at IS NULL OR m.exited_at > sp.stop)
),
sizes AS (
    SELECT g, start, count(*) AS members FROM members GROUP BY g, start
    UNION ALL
    SELECT 0, sp.start, count(c.id) FROM spans sp
    LEFT JOIN customers_customer c ON COALESCE(c.signed_up_at, c.created_at) <= sp.stop
    GROUP BY sp.start
),
opening AS (
    SELECT m.segment_id AS g, count(*) AS members FROM segments_membership m
    WHERE m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= %(first)s
      AND (m.exited_at IS NULL OR m.exited_at > %(first)s)
    GROUP BY m.segment_id
    UNION ALL
    SELECT 0, count(*) FROM customers_customer c WHERE COALESCE(c.signed_up_at, c.created_at) <= %(first)s
),
activity AS MATERIALIZED (
    SELECT e.customer_id, date_trunc(%(unit)s::text, e.timestamp, 'UTC') AS start,
           COALESCE(sum((e.properties ->> %(prop)s)::numeric) FILTER (WHERE e.name = %(revenue)s
               AND jsonb_typeof(e.properties -> %(prop)s) = 'number'), 0) AS revenue,
           bool_or(e.name = %(conversion)s) AS converted{flags}
    FROM customers_event e WHERE e.timestamp >= %(first)s AND e.timestamp < %(now)s
    GROUP BY 1, 2
),
acts AS (
    SELECT mb.g, mb.start, count(*) AS active, sum(a.revenue) AS revenue,
           count(*) FILTER (WHERE a.converted) AS converted{adopted}
    FROM activity a JOIN members mb ON mb.customer_id = a.customer_id AND mb.start = a.start
    GROUP BY mb.g, mb.start
    UNION ALL
    SELECT 0, start, count(*), sum(revenue), count(*) FILTER (WHERE converted){adopted_all}
    FROM activity GROUP BY start
),
answers AS (
    SELECT r.customer_id, r.score, s.key, date_trunc(%(unit)s::text, r.responded_at, 'UTC') AS start
    FROM customers_surveyresponse r JOIN customers_survey s ON s.id = r.survey_id
    WHERE s.key IN ('nps', 'csat') AND r.score IS NOT NULL AND r.responded_at >= %(first)s AND r.responded_at < %(now)s
),
said AS (
    SELECT g, start, count(*) FILTER (WHERE key = 'nps') AS answers,
           count(*) FILTER (WHERE key = 'nps' AND score >= 9) AS promoters,
           count(*) FILTER (WHERE key = 'nps' AND score <= 6) AS detractors,
           count(*) FILTER (WHERE key = 'csat') AS csat_answers, sum(score) FILTER (WHERE key = 'csat') AS csat_sum
    FROM (SELECT mb.g, a.start, a.key, a.score FROM answers a
          JOIN members mb ON mb.customer_id = a.customer_id AND mb.start = a.start
          UNION ALL
          SELECT 0, start, key, score FROM answers) grouped
    GROUP BY g, start
),
lives AS (
    SELECT mb.g, sp.start, {lives}
    FROM members mb JOIN spans sp ON sp.start = mb.start JOIN customers_customer c ON c.id = mb.customer_id
    GROUP BY mb.g, sp.start
    UNION ALL
    SELECT 0, sp.start, {lives}
    FROM spans sp JOIN customers_customer c
        ON (COALESCE(c.signed_up_at, c.created_at) < sp.start AND c.last_seen_at > sp.start - %(inactivity)s)
        OR (c.signed_up_at >= sp.start AND c.signed_up_at < sp.stop)
    GROUP BY sp.start
)
SELECT gr.g, gr.start, COALESCE(s.members, 0), COALESCE(o.members, 0), COALESCE(a.active, 0),
       COALESCE(a.revenue, 0), COALESCE(a.converted, 0), COALESCE(n.answers, 0), COALESCE(n.promoters, 0),
       COALESCE(n.detractors, 0), COALESCE(n.csat_answers, 0), COALESCE(n.csat_sum, 0), {life_cols}{adopted_cols}
FROM grid gr
LEFT JOIN sizes s ON s.g = gr.g AND s.start = gr.start
LEFT JOIN opening o ON o.g = gr.g
LEFT JOIN acts a ON a.g = gr.g AND a.start = gr.start
LEFT JOIN said n ON n.g = gr.g AND n.start = gr.start
LEFT JOIN lives l ON l.g = gr.g AND l.start = gr.start
"""
