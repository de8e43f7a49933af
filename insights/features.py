"""The feature catalogue: what the models know of each customer, computed set-based in SQL
per tenant as of a `now`, in ranges of customer ids so memory stays bounded.

Every feature has a name, a group, the source it is read from, a description, a kind
(count, amount, days, share, score, number, flag) and a missing policy: a count is never
missing (no events is a true zero), a share without events, a survey never answered or a
trait never sent is missing (NaN here; `models.preprocess` imputes it and adds an
indicator, so "missing" never silently becomes 0). Where a feature has an exact
counterpart in the rule language it carries it (`rule`), so a decision tree over the
features distils into a definition that means what the tree learnt (`models.distil`).

The catalogue depends on the tenant (its busiest events, its traits' categories and most
common values), so it is built per tenant (`catalogue`) and stored with each model run;
`extract` reads exactly those columns, today or as of a past cutoff (the churn model's
time split).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection

from customers.models import EventDefinition, MetricsSettings, TraitDefinition
from customers.selectors import pii_trait_keys
from segments.rules.vocabulary import BUILTIN_TRAITS, CHANNELS
from segments.rules.zones import POSTGRES_NAME, known_zones

CHUNK_CUSTOMERS = 50_000
TOP_EVENTS = 12  # busiest event names with their own activity columns
TOP_VALUES = 6  # most common values one-hot per categorical trait
TOP_TECH = 10
WINDOWS = (7, 30, 90)
TIMING_DAYS = 90  # the span the time-of-week shares read
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HOUR_BANDS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))
# Traits of these categories describe the customer's company, tools, attitudes, needs and
# value; demographic and geographic traits stay out of the models by default.
TRAIT_CATEGORIES = ("firmographic", "technographic", "psychographic", "needs", "value")
CATEGORICAL_BUILTINS = ("plan", "industry", "device_type", "os")
NUMERIC_BUILTINS = ("company_size", "annual_revenue")
GROUPS = {
    "recency": "Recency and tenure", "activity": "Activity", "mix": "Event mix", "timing": "Time of week",
    "revenue": "Revenue",
    "traits": "Traits", "surveys": "Surveys", "consent": "Consent",
}


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    kind: str  # count | amount | days | share | score | number | flag | ratio
    source: str
    description: str
    missing: bool  # may be missing (NaN): imputed with an indicator, never a silent 0
    rule: dict | None = None  # the rule-language condition template a threshold on it becomes

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class FeatureBlock:
    """Features of some customers: one row per id, one column per catalogue entry, NaN = missing."""

    ids: np.ndarray
    values: np.ndarray


# ---------------------------------------------------------------------- the catalogue


def _event(name: str, days: int | None, measure: str = "count", **extra) -> dict:
    rule = {"type": "event", "event": name, "measure": measure, **extra}
    if days is not None:
        rule["window"] = {"last": f"{days}d"}
    return rule


def catalogue(*, settings: MetricsSettings | None = None) -> list[Feature]:
    """The tenant's features, in a fixed order (models store it with their run)."""
    settings = settings or MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    revenue, prop = settings.revenue_event, settings.revenue_property
    features = [
        Feature("days_since_last_seen", "recency", "days", "customers_event: latest timestamp",
                "Days since the customer's last event", True, {"type": "last_seen"}),
        Feature("tenure_days", "recency", "days", "customers_customer.signed_up_at, else the first event",
                "Days since sign-up", True, {"type": "trait", "field": "signed_up_at"}),
    ]
    for days in WINDOWS:
        features.append(Feature(f"events_{days}d", "activity", "count", "customers_event",
                                f"Events of any name in the last {days} days", False, _event("*", days)))
    for days in (30, 90):
        features.append(Feature(f"active_days_{days}d", "activity", "count", "customers_event",
                                f"Distinct days (UTC) with an event in the last {days} days", False,
                                _event("*", days, "distinct_days")))
    features.append(Feature("trend_30d", "activity", "ratio", "customers_event",
                            "Events in the last 30 days against the 30 before: log((last + 1) / (previous + 1))",
                            False))
    busiest = busiest_events()
    for name in busiest:
        for days in (30, 90):
            features.append(Feature(f"events_{days}d.{name}", "activity", "count", f"customers_event: {name}",
                                    f"“{name}” events in the last {days} days", False, _event(name, days)))
    for name in busiest:
        # What the customer does, whatever how much: scale-free, so a churned and an active
        # customer of the same kind look alike. No rule counterpart (a share in the rule
        # language is of times, not of names).
        features.append(Feature(f"mix.{name}", "mix", "share", f"customers_event: {name}",
                                f"Share of all the customer's events that are “{name}”", True))
    features += [
        Feature("orders_90d", "revenue", "count", f"customers_event: {revenue}",
                f"“{revenue}” events in the last 90 days", False, _event(revenue, 90)),
        Feature("revenue_90d", "revenue", "amount", f"customers_event: {revenue}.{prop}",
                f"Sum of {prop} of “{revenue}” in the last 90 days", False,
                _event(revenue, 90, "aggregate", fn="sum", property=prop)),
        Feature("revenue_total", "revenue", "amount", f"customers_event: {revenue}.{prop}",
                f"Sum of {prop} of “{revenue}”, all time", False,
                _event(revenue, None, "aggregate", fn="sum", property=prop)),
    ]
    local = "on the customer's local clock (its time zone, else UTC)"
    features.append(Feature("share.weekend", "timing", "share", "customers_event + customers_customer.timezone",
                            f"Share of the last {TIMING_DAYS} days' events on Saturday or Sunday, {local}", True,
                            _event("*", TIMING_DAYS, "share", when={"days": [6, 7]})))
    features.append(Feature("share.friday_to_sunday", "timing", "share", "customers_event + customers_customer.timezone",
                            f"Share of the last {TIMING_DAYS} days' events from Friday to Sunday, {local}", True,
                            _event("*", TIMING_DAYS, "share", when={"days": [5, 6, 7]})))
    for number, day in enumerate(WEEKDAYS, start=1):
        features.append(Feature(f"share.{day}", "timing", "share", "customers_event + customers_customer.timezone",
                                f"Share of the last {TIMING_DAYS} days' events on {day.capitalize()}, {local}",
                                True, _event("*", TIMING_DAYS, "share", when={"days": [number]})))
    for band, start, end in HOUR_BANDS:
        features.append(Feature(f"share.{band}", "timing", "share", "customers_event + customers_customer.timezone",
                                f"Share of the last {TIMING_DAYS} days' events from {start:02d}:00 to {end:02d}:00, "
                                f"{local}", True, _event("*", TIMING_DAYS, "share", when={"hours": [start, end]})))
    features += _trait_features()
    for survey in ("nps", "csat"):
        features.append(Feature(f"survey.{survey}", "surveys", "score", f"customers_surveyresponse: {survey}",
                                f"Latest {survey.upper()} score", True,
                                {"type": "survey", "survey": survey, "measure": "latest"}))
    for channel in CHANNELS:
        features.append(Feature(f"consent.{channel}", "consent", "flag", f"customers_consent: {channel}",
                                f"Consent to {channel.replace('_', '-')} granted", False,
                                {"type": "consent", "channel": channel}))
    return features


def busiest_events() -> list[str]:
    return list(EventDefinition.objects.order_by("-volume", "name").values_list("name", flat=True)[:TOP_EVENTS])


def _trait_features() -> list[Feature]:
    """One-hot columns for the most common values of categorical traits, numbers as they
    are, tech stack items as flags; personal traits never (their values are not model input)."""
    personal = pii_trait_keys()
    registry = {t.key: t for t in TraitDefinition.objects.filter(category__in=TRAIT_CATEGORIES)}
    categorical = [key for key in CATEGORICAL_BUILTINS if key not in personal]
    numeric = [key for key in NUMERIC_BUILTINS if key not in personal]
    for key, row in sorted(registry.items()):
        if key in BUILTIN_TRAITS or row.is_builtin or key in personal:
            continue
        if row.type == TraitDefinition.Type.STRING:
            categorical.append(f"traits.{key}")
        elif row.type == TraitDefinition.Type.NUMBER:
            numeric.append(f"traits.{key}")
    features = []
    for field in categorical:
        key = field.removeprefix("traits.")
        for value in _top_values(_trait_sql(field, "flag")):
            features.append(Feature(f"trait.{key}={value}", "traits", "flag", f"customers_customer: {field}",
                                    f"{key} is “{value}”", False,
                                    {"type": "trait", "field": field, "op": "eq", "value": value}))
    for field in numeric:
        key = field.removeprefix("traits.")
        features.append(Feature(f"trait.{key}", "traits", "number", f"customers_customer: {field}",
                                (BUILTIN_TRAITS[key].description if key in BUILTIN_TRAITS else key), True,
                                {"type": "trait", "field": field}))
    if "tech_stack" not in personal:
        for item in _top_tech():
            features.append(Feature(f"tech.{item}", "traits", "flag", "customers_customer: tech_stack",
                                    f"Uses {item}", False,
                                    {"type": "trait", "field": "tech_stack", "op": "has_any", "value": [item]}))
    return features


def _trait_sql(field: str, kind: str) -> str:
    """A trait's value in SQL: a built-in column, or a custom trait's text or number (a
    stored value of another type is missing, as the rule language says)."""
    if not field.startswith("traits."):
        return f"c.{field}"
    key = _literal(field.removeprefix("traits."))
    if kind == "flag":
        return f"(CASE WHEN jsonb_typeof(c.traits -> {key}) = 'string' THEN c.traits ->> {key} END)"
    return f"(CASE WHEN jsonb_typeof(c.traits -> {key}) = 'number' THEN (c.traits -> {key})::float8 END)"


def _literal(text: str) -> str:
    """A SQL string literal (keys come from the registry's key pattern; quoted anyway)."""
    return "'" + text.replace("'", "''") + "'"


def _top_values(expression: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT v FROM (SELECT {expression} AS v FROM customers_customer c) t "
                       f"WHERE v IS NOT NULL AND v <> '' GROUP BY v ORDER BY count(*) DESC, v LIMIT %s", [TOP_VALUES])
        return [row[0] for row in cursor.fetchall()]


def _top_tech() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT item FROM customers_customer c, unnest(c.tech_stack) item "
                       "GROUP BY item ORDER BY count(*) DESC, item LIMIT %s", [TOP_TECH])
        return [row[0] for row in cursor.fetchall()]


# ---------------------------------------------------------------------- extraction


def _local_zone() -> str:
    """The zone the customer's local clock reads in: as the rule compiler does (zones.py)."""
    renamed = " ".join(f"WHEN {_literal(name)} THEN {_literal(target)}" for name, target in POSTGRES_NAME.items())
    return (f"(CASE WHEN c.timezone = ANY(%(zones)s::text[]) THEN (CASE c.timezone {renamed} ELSE c.timezone END) "
            "ELSE 'UTC' END)")


def _activity_sql(only: bool) -> str:
    """One grouped pass over the range's events. TRICKY: the zone is resolved once per
    customer (a MATERIALIZED CTE) and the local weekday and hour once per event (the
    OFFSET 0 fence keeps the planner from inlining them into every FILTER that reads them:
    19 time-zone conversions per event made this query 30× slower)."""
    windows = ", ".join(f"count(ev.id) FILTER (WHERE ev.timestamp >= %(since_{d})s)" for d in WINDOWS)
    timed = "ev.timestamp >= %(since_timing)s"
    bands = ", ".join(f"count(ev.id) FILTER (WHERE {timed} AND ev.hour >= {a} AND ev.hour < {b})"
                      for _, a, b in HOUR_BANDS)
    days = ", ".join(f"count(ev.id) FILTER (WHERE {timed} AND ev.dow = {d})" for d in range(1, 8))
    customers, events = _within("c.id", only), _within("e.customer_id", only)
    return f"""
WITH cz AS MATERIALIZED (
    SELECT c.id, c.signed_up_at, {_local_zone()} AS zone FROM customers_customer c
    WHERE {customers})
SELECT cz.id,
       extract(epoch FROM %(now)s - max(ev.timestamp)) / 86400,
       extract(epoch FROM %(now)s - COALESCE(cz.signed_up_at, min(ev.timestamp))) / 86400,
       {windows},
       count(DISTINCT (ev.timestamp AT TIME ZONE 'UTC')::date) FILTER (WHERE ev.timestamp >= %(since_30)s),
       count(DISTINCT (ev.timestamp AT TIME ZONE 'UTC')::date) FILTER (WHERE ev.timestamp >= %(since_90)s),
       count(ev.id) FILTER (WHERE ev.timestamp >= %(since_60)s AND ev.timestamp < %(since_30)s),
       count(ev.id) FILTER (WHERE ev.name = %(revenue)s AND ev.timestamp >= %(since_90)s),
       COALESCE(sum((ev.properties ->> %(prop)s)::numeric) FILTER (WHERE ev.name = %(revenue)s
           AND ev.timestamp >= %(since_90)s AND jsonb_typeof(ev.properties -> %(prop)s) = 'number'), 0)::float8,
       COALESCE(sum((ev.properties ->> %(prop)s)::numeric) FILTER (WHERE ev.name = %(revenue)s
           AND jsonb_typeof(ev.properties -> %(prop)s) = 'number'), 0)::float8,
       count(ev.id) FILTER (WHERE {timed}),
       {bands}, {days}, count(ev.id)
FROM cz
LEFT JOIN (
    SELECT e.id, e.customer_id, e.name, e.timestamp, e.properties,
           extract(isodow FROM e.timestamp AT TIME ZONE z.zone)::int AS dow,
           extract(hour FROM e.timestamp AT TIME ZONE z.zone)::int AS hour
    FROM customers_event e JOIN cz z ON z.id = e.customer_id
    WHERE {events} AND e.timestamp < %(now)s
    OFFSET 0
) ev ON ev.customer_id = cz.id
GROUP BY cz.id, cz.signed_up_at
ORDER BY cz.id"""


_EVENT_COUNTS_SQL = """
SELECT e.customer_id, e.name, count(*) FILTER (WHERE e.timestamp >= %(since_30)s),
       count(*) FILTER (WHERE e.timestamp >= %(since_90)s), count(*)
FROM customers_event e
WHERE {events} AND e.name = ANY(%(names)s) AND e.timestamp < %(now)s
GROUP BY e.customer_id, e.name"""

_SURVEYS_SQL = """
SELECT DISTINCT ON (r.customer_id, s.key) r.customer_id, s.key, r.score::float8
FROM customers_surveyresponse r JOIN customers_survey s ON s.id = r.survey_id
WHERE {responses} AND r.score IS NOT NULL AND r.responded_at < %(now)s
  AND s.key IN ('nps', 'csat')
ORDER BY r.customer_id, s.key, r.responded_at DESC, r.id DESC"""

_CONSENTS_SQL = """
SELECT cs.customer_id, cs.channel FROM customers_consent cs
WHERE {consents} AND cs.granted"""


def _traits_sql(features: list[Feature], only: bool) -> str:
    columns = []
    for feature in features:
        rule = feature.rule or {}
        if feature.group != "traits":
            continue
        if feature.kind == "flag" and rule["field"] == "tech_stack":
            columns.append(f"COALESCE(c.tech_stack @> ARRAY[{_literal(rule['value'][0])}]::varchar[], false)::int")
        elif feature.kind == "flag":
            columns.append(f"COALESCE({_trait_sql(rule['field'], 'flag')} = {_literal(rule['value'])}, false)::int")
        else:
            columns.append(f"({_trait_sql(rule['field'], 'number')})::float8")
    select = ", ".join(["c.id", *columns])
    return f"SELECT {select} FROM customers_customer c WHERE {_within('c.id', only)} ORDER BY c.id"


def _within(column: str, only: bool) -> str:
    """The block's customers: an id range, and with `only` just the listed ids in it (an
    index lookup of each, so a scattered sample does not read every customer of its range)."""
    within = f"{column} >= %(low)s AND {column} < %(high)s"
    return f"{within} AND {column} = ANY(%(only)s::bigint[])" if only else within


def id_ranges(customer_ids: np.ndarray | None = None, chunk: int | None = None) -> Iterator[tuple[int, int]]:
    """[low, high) ranges of customer ids covering the tenant (or `customer_ids`)."""
    chunk = chunk or CHUNK_CUSTOMERS
    if customer_ids is not None:
        ordered = np.sort(np.asarray(customer_ids, dtype=np.int64))
        for start in range(0, len(ordered), chunk):
            part = ordered[start:start + chunk]
            yield int(part[0]), int(part[-1]) + 1
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM customers_customer")
        low, high = cursor.fetchone()
    if low is None:
        return
    for start in range(low, high + 1, chunk):
        yield start, start + chunk


def extract(features: list[Feature], *, now: datetime, low: int, high: int,
            settings: MetricsSettings | None = None, only: np.ndarray | None = None) -> FeatureBlock:
    """The features of the customers with low ≤ id < high (and in `only`, when given), as of `now`."""
    settings = settings or MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    params = {"now": now, "low": low, "high": high, "zones": sorted(known_zones()),
              "since_timing": now - timedelta(days=TIMING_DAYS), "since_60": now - timedelta(days=60),
              "revenue": settings.revenue_event, "prop": settings.revenue_property,
              **{f"since_{d}": now - timedelta(days=d) for d in WINDOWS}}
    listed = only is not None
    if listed:
        only = np.asarray(only, dtype=np.int64)
        params["only"] = only[(only >= low) & (only < high)].tolist()
    column = {f.name: i for i, f in enumerate(features)}
    with connection.cursor() as cursor:
        cursor.execute(_activity_sql(listed), params)
        activity = np.array(cursor.fetchall(), dtype=float).reshape(-1, 14 + len(HOUR_BANDS) + len(WEEKDAYS))
    ids = activity[:, 0].astype(np.int64)
    values = np.full((len(ids), len(features)), np.nan)
    row = {customer_id: i for i, customer_id in enumerate(ids.tolist())}
    _fill_activity(values, column, activity)
    event_names = sorted({f.name.split(".", 1)[1] for f in features
                          if f.name.startswith(("events_30d.", "events_90d.", "mix."))})
    for name in event_names:
        _put(values, column, f"events_30d.{name}", 0)
        _put(values, column, f"events_90d.{name}", 0)
        _put(values, column, f"mix.{name}", 0)
    with connection.cursor() as cursor:
        if event_names:
            cursor.execute(_EVENT_COUNTS_SQL.format(events=_within("e.customer_id", listed)),
                           {**params, "names": event_names})
            for customer_id, name, *counts in cursor.fetchall():
                for prefix, count in zip(("events_30d", "events_90d", "mix"), counts):
                    if f"{prefix}.{name}" in column:
                        values[row[customer_id], column[f"{prefix}.{name}"]] = count
        cursor.execute(_SURVEYS_SQL.format(responses=_within("r.customer_id", listed)), params)
        for customer_id, survey, score in cursor.fetchall():
            if f"survey.{survey}" in column:
                values[row[customer_id], column[f"survey.{survey}"]] = score
        for channel in CHANNELS:
            _put(values, column, f"consent.{channel}", 0)
        cursor.execute(_CONSENTS_SQL.format(consents=_within("cs.customer_id", listed)), params)
        for customer_id, channel in cursor.fetchall():
            if f"consent.{channel}" in column:
                values[row[customer_id], column[f"consent.{channel}"]] = 1
        traits = [i for i, f in enumerate(features) if f.group == "traits"]
        if traits:
            cursor.execute(_traits_sql(features, listed), params)
            table = np.array(cursor.fetchall(), dtype=float).reshape(-1, len(traits) + 1)
            values[:, traits] = table[:, 1:]
    _mix_shares(values, column, event_names, activity[:, 13 + len(HOUR_BANDS) + len(WEEKDAYS)])
    return FeatureBlock(ids=ids, values=values)


def _put(values: np.ndarray, column: dict[str, int], name: str, data) -> None:
    """Fill a feature's column when the run asked for it (a run may use a subset)."""
    if name in column:
        values[:, column[name]] = data


def _mix_shares(values: np.ndarray, column: dict[str, int], names: list[str], total: np.ndarray) -> None:
    """Counts of each name, all time, into shares of the customer's events (missing without events)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in names:
            if f"mix.{name}" in column:
                index = column[f"mix.{name}"]
                values[:, index] = np.where(total > 0, values[:, index] / total, np.nan)


def _fill_activity(values: np.ndarray, column: dict[str, int], activity: np.ndarray) -> None:
    (days_since, tenure, e7, e30, e90, d30, d90, previous_30, orders_90, revenue_90, revenue_total,
     timed) = (activity[:, i] for i in range(1, 13))
    bands = activity[:, 13:13 + len(HOUR_BANDS)]
    weekdays = activity[:, 13 + len(HOUR_BANDS):13 + len(HOUR_BANDS) + len(WEEKDAYS)]
    _put(values, column, "days_since_last_seen", days_since)  # NaN without events: missing
    _put(values, column, "tenure_days", tenure)
    for days, counted in zip(WINDOWS, (e7, e30, e90)):
        _put(values, column, f"events_{days}d", counted)
    _put(values, column, "active_days_30d", d30)
    _put(values, column, "active_days_90d", d90)
    _put(values, column, "trend_30d", np.log((e30 + 1) / (previous_30 + 1)))
    _put(values, column, "orders_90d", orders_90)
    _put(values, column, "revenue_90d", revenue_90)
    _put(values, column, "revenue_total", revenue_total)
    with np.errstate(invalid="ignore", divide="ignore"):  # no events in the span: the shares are missing
        share = lambda counted: np.where(timed > 0, counted / timed, np.nan)  # noqa: E731
        _put(values, column, "share.weekend", share(weekdays[:, 5] + weekdays[:, 6]))
        _put(values, column, "share.friday_to_sunday", share(weekdays[:, 4] + weekdays[:, 5] + weekdays[:, 6]))
        for number, day in enumerate(WEEKDAYS):
            _put(values, column, f"share.{day}", share(weekdays[:, number]))
        for index, (band, _, _) in enumerate(HOUR_BANDS):
            _put(values, column, f"share.{band}", share(bands[:, index]))


def extract_all(features: list[Feature], *, now: datetime, customer_ids: np.ndarray | None = None,
                progress=None) -> Iterator[FeatureBlock]:
    """Blocks of features over the tenant (or `customer_ids`), a range of ids at a time."""
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    ranges = list(id_ranges(customer_ids))
    for done, (low, high) in enumerate(ranges, start=1):
        yield extract(features, now=now, low=low, high=high, settings=settings, only=customer_ids)
        if progress:
            progress(done, len(ranges))
