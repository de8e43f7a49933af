"""Features computed set-based in SQL per tenant as of a `now`, in ranges of customer ids
so memory stays bounded; today or as of a past cutoff (the churn model's time split)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection

from customers.models import MetricsSettings
from insights.features.catalogue import HOUR_BANDS, TIMING_DAYS, WEEKDAYS, WINDOWS, Feature, literal, trait_sql
from segments.rules.vocabulary import CHANNELS
from segments.rules.zones import POSTGRES_NAME, known_zones

CHUNK_CUSTOMERS = 50_000


@dataclass
class FeatureBlock:
    """Features of some customers: one row per id, one column per catalogue entry, NaN = missing."""

    ids: np.ndarray
    values: np.ndarray


def _local_zone() -> str:
    """The zone the customer's local clock reads in: as the rule compiler does (zones.py)."""
    renamed = " ".join(f"WHEN {literal(name)} THEN {literal(target)}" for name, target in POSTGRES_NAME.items())
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
            columns.append(f"COALESCE(c.tech_stack @> ARRAY[{literal(rule['value'][0])}]::varchar[], false)::int")
        elif feature.kind == "flag":
            columns.append(f"COALESCE({trait_sql(rule['field'], 'flag')} = {literal(rule['value'])}, false)::int")
        else:
            columns.append(f"({trait_sql(rule['field'], 'number')})::float8")
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
