"""Segment KPIs side by side and against all customers, in one SQL statement.

For 1..10 segments (their members at `now`) and the base (every customer), as of `now`:

- size, share of all customers, growth over 30 and 90 days (members then, from the
  membership history; for the base, customers created by then);
- revenue of the last 90 days (the workspace's revenue event and property), its share of
  all customers' revenue, and ARPU as that revenue per member per month;
- LTV by both of the workspace's formulas (customers.metrics.ltv): monthly ARPU × gross
  margin × expected lifespan in months, and monthly ARPU × gross margin ÷ monthly churn;
- churn over the last 30 days, as the metrics define it (customers.metrics.churn): a
  customer churns `inactivity` days after its last event; the rate is those churning in
  the 30 days over those alive at their start;
- retention at day 7, 30 and 90: of the members who signed up at least N days ago, the
  share active on or after their day N;
- engagement (the mean engagement score of the metrics), the latest NPS and CSAT answers'
  means and the NPS score (% promoters − % detractors);
- conversion: the share who did a chosen event in the last 90 days; adoption: the share
  who did each feature event in the last 30 days (the busiest events unless chosen).

Per-customer facts come from one grouped pass over the last 90 days of events; nothing
loops over customers in Python. Reports are cached (insights/reports/cache.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta


from common.replica import replica_reads
from common.errors import Code, CustomerCode, DomainError, Problem
from common.jsonvalues import text_problem
from customers.metrics.ltv import DAYS_PER_MONTH, ltv_by_churn, ltv_by_lifespan
from customers.models import MetricsSettings, Survey
from customers.selectors import busiest_events
from insights.reports.cache import cached_report
from insights.reports.inputs import DEFAULT_FEATURES, feature_problems
from segments.models import Segment

MAX_SEGMENTS = 10
REVENUE_DAYS = 90
ADOPTION_DAYS = 30
CHURN_DAYS = 30
RETENTION_DAYS = (7, 30, 90)
BASE = "all"  # the key of the base row


@dataclass(frozen=True)
class KpiQuery:
    segments: tuple[str, ...]
    conversion: str | None = None
    features: tuple[str, ...] = ()
    survey: tuple[str, str] | None = None  # a custom survey's (key, question): its latest answers per group


@dataclass
class KpiRow:
    key: str
    name: str
    size: int
    share: float | None
    growth_30d: float | None
    growth_90d: float | None
    revenue_90d: float
    revenue_share: float | None
    paying_share: float | None  # members with revenue in the 90 days
    arpu: float | None
    ltv_lifespan: float | None
    ltv_churn: float | None
    churn_rate: float | None
    retention: dict[str, float | None]
    engagement: float | None
    nps_mean: float | None
    nps_score: float | None
    csat_mean: float | None
    conversion: float | None
    adoption: dict[str, float | None] = field(default_factory=dict)
    # {"respondents", "answered", "mean", "shares": {option label or score: share of respondents}}
    survey: dict | None = None


@dataclass
class KpiReport:
    now: datetime
    conversion_event: str | None
    features: list[str]
    rows: list[KpiRow]  # the segments in the order asked, then the base
    settings: dict
    survey: dict | None = None  # {"key", "name", "question", "text", "type", "labels"} when asked

    def as_dict(self) -> dict:
        return {"now": self.now.isoformat(), "conversion_event": self.conversion_event, "features": self.features,
                "settings": self.settings, "survey": self.survey, "rows": [asdict(row) for row in self.rows]}


# ---------------------------------------------------------------------- input


def kpi_query(*, segments, conversion=None, features=None, survey=None) -> KpiQuery:
    """Checked input: 1..10 known segment keys, a conversion event and feature events
    (names; unknown ones are allowed — as in rules, an event may not have arrived yet), and
    a custom survey's question as "key.question"."""
    problems = []
    if not isinstance(segments, (list, tuple)) or not all(isinstance(s, str) for s in segments):
        raise DomainError.single(path="segments", code=Code.INVALID_TYPE, message="A list of segment keys.")
    keys = list(dict.fromkeys(s.strip() for s in segments if s.strip()))
    texts = [(f"segments[{i}]", key) for i, key in enumerate(keys)] + [("conversion", conversion)] \
        + [(f"features[{i}]", name) for i, name in enumerate(features or [])]
    unstorable = [Problem(path, *found) for path, text in texts
                  if isinstance(text, str) and (found := text_problem(text))]
    if unstorable:  # NUL or a lone surrogate: PostgreSQL cannot even compare it
        raise DomainError(problems=unstorable)
    if not keys:
        problems.append(Problem("segments", Code.REQUIRED, "Choose at least one segment."))
    elif len(keys) > MAX_SEGMENTS:
        problems.append(Problem("segments", Code.TOO_MANY, f"Compare at most {MAX_SEGMENTS} segments."))
    else:
        known = set(Segment.objects.filter(key__in=keys).values_list("key", flat=True))
        problems += [Problem(f"segments[{i}]", Code.UNKNOWN_SEGMENT, f"No segment “{key}”.")
                     for i, key in enumerate(keys) if key not in known]
    if conversion is not None and (not isinstance(conversion, str) or len(conversion) > 200):
        problems.append(Problem("conversion", Code.INVALID_VALUE, "An event name (up to 200 characters)."))
    problems += feature_problems(features)
    asked, more = _survey_question(survey)
    problems += more
    if problems:
        raise DomainError(problems=problems)
    return KpiQuery(segments=tuple(keys), conversion=(conversion or "").strip() or None,
                    features=tuple(dict.fromkeys(features or ())), survey=asked)


def _survey_question(survey) -> tuple[tuple[str, str] | None, list[Problem]]:
    if survey is None or survey == "":
        return None, []
    if not isinstance(survey, str) or "." not in survey or len(survey) > 200:
        return None, [Problem("survey", Code.INVALID_VALUE, "A custom survey's question as “survey.question”.")]
    if found := text_problem(survey):
        return None, [Problem("survey", *found)]
    key, question = survey.split(".", 1)
    found = Survey.objects.filter(key=key, kind=Survey.Kind.CUSTOM).first()
    if found is None:
        return None, [Problem("survey", Code.UNKNOWN_SURVEY, f"No custom survey “{key}”.")]
    if question not in {q.get("key") for q in found.questions}:
        return None, [Problem("survey", CustomerCode.UNKNOWN_QUESTION, f"{found.name} has no question “{question}”.")]
    return (key, question), []


# ---------------------------------------------------------------------- the report


def segment_kpis(*, query: KpiQuery, now: datetime) -> KpiReport:
    """The KPIs of the query's segments and of all customers as of `now` (cached: cache.py)."""
    parts = (*query.segments, "|", query.conversion or "", "|", *query.features, "|", *(query.survey or ()))
    return cached_report("kpis", now=now, query=parts, compute=lambda: _compute(query, now))


def _compute(query: KpiQuery, now: datetime) -> KpiReport:
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    segments = {s.key: s for s in Segment.objects.filter(key__in=query.segments)}
    ordered = [segments[key] for key in query.segments]
    features = list(query.features) or busiest_events(limit=DEFAULT_FEATURES)
    with replica_reads() as db, db.cursor() as cursor:
        cursor.execute(kpi_sql(len(features)), _params(ordered, features, query.conversion, settings, now))
        facts = {row[0]: row for row in cursor.fetchall()}
    base = facts[0]
    rows = [_row(segment.key, segment.name, facts[segment.pk], base, features, settings) for segment in ordered]
    rows.append(_row(BASE, "All customers", base, base, features, settings))
    survey = None
    if query.survey:
        survey, answers = survey_answers(query.survey, [s.pk for s in ordered], now)
        for row, group in zip(rows, [*(s.pk for s in ordered), 0]):
            row.survey = _survey_row(answers.get(group, {}), row.size, survey)
    return KpiReport(now=now, conversion_event=query.conversion, features=features, rows=rows, survey=survey, settings={
        "revenue": f"{settings.revenue_event}.{settings.revenue_property}", "gross_margin": float(settings.gross_margin),
        "lifespan_months": float(settings.expected_lifespan_months), "inactivity_days": settings.churn_inactivity_days})


SURVEY_SQL = """
WITH latest AS MATERIALIZED (
    SELECT DISTINCT ON (r.customer_id) r.customer_id, r.score FROM customers_surveyresponse r
    WHERE r.survey_id = %(survey)s AND r.question = %(question)s AND r.score IS NOT NULL AND r.responded_at < %(now)s
    ORDER BY r.customer_id, r.responded_at DESC, r.id DESC
)
SELECT m.segment_id, l.score, count(*) FROM latest l JOIN segments_membership m ON m.customer_id = l.customer_id
WHERE m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= %(now)s
  AND (m.exited_at IS NULL OR m.exited_at > %(now)s)
GROUP BY m.segment_id, l.score
UNION ALL
SELECT 0, score, count(*) FROM latest GROUP BY score
"""


def survey_answers(asked: tuple[str, str], segment_ids: list[int], now: datetime) -> tuple[dict, dict]:
    """Each customer's latest answer to the question, counted per score for each segment
    (by id) and for everyone (0)."""
    survey = Survey.objects.get(key=asked[0])
    spec = next(q for q in survey.questions if q.get("key") == asked[1])
    with replica_reads() as db, db.cursor() as cursor:
        cursor.execute(SURVEY_SQL, {"survey": survey.pk, "question": asked[1], "segments": segment_ids, "now": now})
        counts: dict[int, dict[float, int]] = {}
        for group, score, n in cursor.fetchall():
            counts.setdefault(group, {})[float(score)] = n
    labels = {float(o["value"]): o["label"] for o in spec.get("options") or ()}
    return {"key": survey.key, "name": survey.name, "question": asked[1], "text": spec.get("text", asked[1]),
            "type": spec.get("type", "scale"), "labels": {f"{k:g}": v for k, v in labels.items()},
            "order": [f"{k:g}" for k in sorted(labels)]}, counts


def _survey_row(counts: dict[float, int], size: int, survey: dict) -> dict:
    respondents = sum(counts.values())
    mean = sum(score * n for score, n in counts.items()) / respondents if respondents else None
    keys = survey["order"] if survey["type"] == "choice" else [f"{score:g}" for score in sorted(counts)]
    return {"respondents": respondents, "answered": _ratio(respondents, size),
            "mean": None if mean is None else round(mean, 2),
            "shares": {key: _ratio(counts.get(float(key), 0), respondents) for key in keys}}


def _params(segments: list[Segment], features: list[str], conversion: str | None, settings, now) -> dict:
    params = {"segments": [s.pk for s in segments], "now": now, "revenue": settings.revenue_event,
              "prop": settings.revenue_property, "conversion": conversion or "",
              "since_revenue": now - timedelta(days=REVENUE_DAYS), "since_adoption": now - timedelta(days=ADOPTION_DAYS),
              "at_30": now - timedelta(days=30), "at_90": now - timedelta(days=90),
              "churn_start": now - timedelta(days=CHURN_DAYS),
              "alive_after": now - timedelta(days=CHURN_DAYS + settings.churn_inactivity_days),
              "gone_by": now - timedelta(days=settings.churn_inactivity_days)}
    params.update({f"feature_{i}": name for i, name in enumerate(features)})
    params.update({f"signed_{days}": now - timedelta(days=days) for days in RETENTION_DAYS})
    return params


# Columns of each group's row, in order (the statement and _row agree on them).
FACTS = ("g", "size", "revenue", "payers", "alive", "churned", "engagement", "nps_n", "nps_sum", "promoters",
         "detractors", "csat_n", "csat_sum", "converted", *(f"eligible_{d}" for d in RETENTION_DAYS),
         *(f"retained_{d}" for d in RETENTION_DAYS), "then_30", "then_90")


def kpi_sql(features: int) -> str:
    """The whole report: each customer's facts once (one pass over the recent events, the
    latest survey answers, the metrics), then counted for everyone (group 0) and for each
    segment's members at now; sizes 30 and 90 days ago beside them. Facts first: joining
    them per (segment, member) row instead made the statement twice as slow at 1M."""
    adoption = "".join(f", bool_or(e.name = %(feature_{i})s AND e.timestamp >= %(since_adoption)s) AS a{i}"
                       for i in range(features))
    flags = "".join(f", COALESCE(ev.a{i}, false) AS a{i}" for i in range(features))
    retention = "".join(
        f", c.signed_up_at <= %(signed_{d})s AS eligible_{d}"
        f", c.signed_up_at <= %(signed_{d})s AND c.last_seen_at >= c.signed_up_at + interval '{d} days' AS retained_{d}"
        for d in RETENTION_DAYS)
    counted = ", ".join(f"count(*) FILTER (WHERE {flag}) AS {flag}"
                        for flag in [f"eligible_{d}" for d in RETENTION_DAYS] + [f"retained_{d}" for d in RETENTION_DAYS])
    adopted = "".join(f", count(*) FILTER (WHERE a{i}) AS adopted_{i}" for i in range(features))
    columns = ", ".join([f"f.{name}" for name in FACTS[1:-2]] + [f"f.adopted_{i}" for i in range(features)])
    return f"""
WITH ev AS (
    SELECT e.customer_id,
           COALESCE(sum((e.properties ->> %(prop)s)::numeric) FILTER (WHERE e.name = %(revenue)s
               AND jsonb_typeof(e.properties -> %(prop)s) = 'number'), 0)::float8 AS revenue,
           bool_or(e.name = %(conversion)s) AS converted{adoption}
    FROM customers_event e
    WHERE e.timestamp >= %(since_revenue)s AND e.timestamp < %(now)s
    GROUP BY e.customer_id
),
answers AS (
    SELECT DISTINCT ON (r.customer_id, s.key) r.customer_id, s.key, r.score::float8 AS score
    FROM customers_surveyresponse r JOIN customers_survey s ON s.id = r.survey_id
    WHERE s.key IN ('nps', 'csat') AND r.score IS NOT NULL AND r.responded_at < %(now)s
    ORDER BY r.customer_id, s.key, r.responded_at DESC, r.id DESC
),
per AS MATERIALIZED (
    SELECT c.id, COALESCE(ev.revenue, 0) AS revenue,
           COALESCE(c.signed_up_at, c.created_at) < %(churn_start)s AND c.last_seen_at > %(alive_after)s AS alive,
           COALESCE(c.signed_up_at, c.created_at) < %(churn_start)s AND c.last_seen_at > %(alive_after)s
               AND c.last_seen_at <= %(gone_by)s AS churned,
           cm.engagement_score AS engagement, nps.score AS nps, csat.score AS csat,
           COALESCE(ev.converted, false) AS converted{retention}{flags}
    FROM customers_customer c
    LEFT JOIN ev ON ev.customer_id = c.id
    LEFT JOIN customers_customermetrics cm ON cm.customer_id = c.id
    LEFT JOIN answers nps ON nps.customer_id = c.id AND nps.key = 'nps'
    LEFT JOIN answers csat ON csat.customer_id = c.id AND csat.key = 'csat'
),
grouped AS (
    SELECT m.segment_id AS g, per.* FROM segments_membership m JOIN per ON per.id = m.customer_id
    WHERE m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= %(now)s
      AND (m.exited_at IS NULL OR m.exited_at > %(now)s)
    UNION ALL
    SELECT 0, per.* FROM per
),
facts AS (
    SELECT g, count(*) AS size, COALESCE(sum(revenue), 0) AS revenue, count(*) FILTER (WHERE revenue > 0) AS payers,
           count(*) FILTER (WHERE alive) AS alive, count(*) FILTER (WHERE churned) AS churned,
           avg(engagement) AS engagement, count(nps) AS nps_n, sum(nps) AS nps_sum,
           count(*) FILTER (WHERE nps >= 9) AS promoters, count(*) FILTER (WHERE nps <= 6) AS detractors,
           count(csat) AS csat_n, sum(csat) AS csat_sum, count(*) FILTER (WHERE converted) AS converted,
           {counted}{adopted}
    FROM grouped GROUP BY g
),
past AS (
    SELECT m.segment_id AS g,
           count(*) FILTER (WHERE m.entered_at <= %(at_30)s AND (m.exited_at IS NULL OR m.exited_at > %(at_30)s))
               AS then_30,
           count(*) FILTER (WHERE m.entered_at <= %(at_90)s AND (m.exited_at IS NULL OR m.exited_at > %(at_90)s))
               AS then_90
    FROM segments_membership m WHERE m.segment_id = ANY(%(segments)s::bigint[]) AND m.entered_at <= %(at_30)s
    GROUP BY m.segment_id
    UNION ALL
    SELECT 0, count(*) FILTER (WHERE COALESCE(c.signed_up_at, c.created_at) <= %(at_30)s),
           count(*) FILTER (WHERE COALESCE(c.signed_up_at, c.created_at) <= %(at_90)s)
    FROM customers_customer c
)
SELECT gs.g, {columns}, p.then_30, p.then_90
FROM (SELECT unnest(%(segments)s::bigint[]) AS g UNION ALL SELECT 0) gs
LEFT JOIN facts f ON f.g = gs.g
LEFT JOIN past p ON p.g = gs.g"""


def _ratio(part, whole) -> float | None:
    return round(part / whole, 4) if whole else None


def _growth(now_size: int, then: int) -> float | None:
    return round((now_size - then) / then, 4) if then else None


def _row(key: str, name: str, facts, base, features: list[str], settings) -> KpiRow:
    """One group's KPIs from its facts (counts of a group without members are NULL: 0)."""
    width = len(FACTS) - 2
    named = {column: (value if value is not None or column == "engagement" else 0)
             for column, value in zip(FACTS[:-2], facts[:width])}
    adoption = [count or 0 for count in facts[width:width + len(features)]]
    then_30, then_90 = (facts[-2] or 0), (facts[-1] or 0)
    size, revenue = named["size"], float(named["revenue"])
    base_size, base_revenue = (base[1] or 0), float(base[2] or 0)
    arpu = revenue / size / (REVENUE_DAYS / DAYS_PER_MONTH) if size else None
    churn = _ratio(named["churned"], named["alive"])
    margin, lifespan = float(settings.gross_margin), float(settings.expected_lifespan_months)
    retention = {f"day_{d}": _ratio(named[f"retained_{d}"], named[f"eligible_{d}"]) for d in RETENTION_DAYS}
    return KpiRow(
        key=key, name=name, size=size, share=_ratio(size, base_size),
        growth_30d=_growth(size, then_30), growth_90d=_growth(size, then_90),
        revenue_90d=round(revenue, 2), revenue_share=_ratio(revenue, base_revenue),
        paying_share=_ratio(named["payers"], size), arpu=None if arpu is None else round(arpu, 2),
        ltv_lifespan=_money(ltv_by_lifespan(arpu, gross_margin=margin, lifespan_periods=lifespan)),
        ltv_churn=_money(ltv_by_churn(arpu, gross_margin=margin, churn_rate=churn)),
        churn_rate=churn, retention=retention,
        engagement=None if named["engagement"] is None else round(float(named["engagement"]), 2),
        nps_mean=_ratio(float(named["nps_sum"]), named["nps_n"]),
        nps_score=None if not named["nps_n"] else round(100 * (named["promoters"] - named["detractors"])
                                                         / named["nps_n"], 1),
        csat_mean=_ratio(float(named["csat_sum"]), named["csat_n"]),
        conversion=_ratio(named["converted"], size),
        adoption={name: _ratio(count, size) for name, count in zip(features, adoption)})


def _money(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
