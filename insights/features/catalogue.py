"""What the models know of each customer: the tenant's feature catalogue (its busiest
events, its traits' categories and most common values), each feature with its group, kind,
source, missing policy and, where one exists, its rule-language counterpart."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import connection

from customers.models import MetricsSettings, TraitDefinition
from customers.selectors import busiest_events, pii_trait_keys
from segments.rules.vocabulary import BUILTIN_TRAITS, CHANNELS

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
    busiest = busiest_events(limit=TOP_EVENTS)
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
        for value in _top_values(trait_sql(field, "flag")):
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


def trait_sql(field: str, kind: str) -> str:
    """A trait's value in SQL: a built-in column, or a custom trait's text or number (a
    stored value of another type is missing, as the rule language says)."""
    if not field.startswith("traits."):
        return f"c.{field}"
    key = literal(field.removeprefix("traits."))
    if kind == "flag":
        return f"(CASE WHEN jsonb_typeof(c.traits -> {key}) = 'string' THEN c.traits ->> {key} END)"
    return f"(CASE WHEN jsonb_typeof(c.traits -> {key}) = 'number' THEN (c.traits -> {key})::float8 END)"


def literal(text: str) -> str:
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
