"""Hypothesis strategies for the rule language: worlds (customers with traits, events,
answers, consent, metrics) and definitions over them. Values come from small pools built
around the same boundaries (window edges, day edges, equal numbers, case variants), so
generated comparisons land on the edges where SQL and the reference could disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
MIDNIGHT = datetime(2026, 6, 15, tzinfo=timezone.utc)
TIMES = [NOW - timedelta(seconds=1), NOW, NOW + timedelta(hours=1), NOW - 7 * DAY, NOW - 7 * DAY - timedelta(seconds=1),
         NOW - 30 * DAY, NOW - 30 * DAY + timedelta(seconds=1), MIDNIGHT, MIDNIGHT - timedelta(microseconds=1),
         MIDNIGHT - DAY, datetime(2026, 1, 31, 23, 59, tzinfo=timezone.utc), datetime(2026, 2, 1, tzinfo=timezone.utc),
         NOW - 400 * DAY, NOW - 2 * timedelta(hours=1),
         # Around the weekend and the evening on local clocks: Friday 22:30 UTC is Saturday in
         # Paris, Friday evening in New York; Sunday 18:00 UTC is Sunday night in Kolkata.
         datetime(2026, 6, 12, 22, 30, tzinfo=timezone.utc), datetime(2026, 6, 13, 23, 59, tzinfo=timezone.utc),
         datetime(2026, 6, 14, 18, 0, tzinfo=timezone.utc), datetime(2026, 6, 10, 17, 45, tzinfo=timezone.utc)]
# Known IANA zones (CET keeps summer time, which PostgreSQL's abbreviation CET does not),
# a half-hour one, and names that are not known (wrong case, made up, empty): UTC for them.
ZONES = ["Europe/Paris", "America/New_York", "CET", "Asia/Kolkata", "US/Eastern", "EST", "us/eastern", "Mars/Base",
         "", None]
EVENTS = ["login", "purchase", "feature_x_used"]
CUSTOM = {"score": "number", "tier": "string", "vip": "boolean", "renewal_at": "datetime", "tags": "list"}
DATE_VALUES = ["2026-06-15", "2026-06-14", "2026-01-31", "2026-02-01", "2026-06-15T12:00:00Z",
               "2026-06-15T11:59:59+00:00", "2026-05-16T12:00:00Z", "2026-06-15T13:00:00+01:00"]
DURATIONS = ["1h", "2h", "1d", "7d", "30d", "1w", "400d", "60m"]
STRINGS = ["US", "us", "GB", "", "pro", "Pro", "free", "München", "MÜNCHEN", "Paris", "é"]
NUMBERS = [0, 1, 2, 5, 10, 1.5, 250, 1000, -1]

number = st.sampled_from(NUMBERS)
text = st.sampled_from(STRINGS)
moment = st.sampled_from(TIMES)


@dataclass
class World:
    customers: list[dict] = field(default_factory=list)


def _json_scalar():
    return st.one_of(number, text, st.booleans(), st.sampled_from(DATE_VALUES))


def _property_value():
    return st.one_of(_json_scalar(), st.none(), st.lists(st.sampled_from(["a", "b", 1, True]), max_size=3))


@st.composite
def customer(draw, index: int) -> dict:
    def maybe(strategy):
        return draw(st.one_of(st.none(), strategy))

    custom = {}
    for key, values in {"score": st.one_of(number, st.just("5"), st.booleans()),
                        "tier": st.one_of(text, st.just(3)),
                        "vip": st.one_of(st.booleans(), st.just("true")),
                        "renewal_at": st.one_of(st.sampled_from(DATE_VALUES), st.just("soon"), st.just("2026-02-30")),
                        "tags": st.one_of(st.lists(st.sampled_from(["a", "b", "c", 1, True]), max_size=3), st.just("a"))}.items():
        if draw(st.booleans()):
            custom[key] = draw(st.one_of(st.none(), values))
    events = draw(st.lists(st.tuples(st.sampled_from(EVENTS), moment,
                                     st.dictionaries(st.sampled_from(["amount", "plan", "at", "tags"]), _property_value(),
                                                     max_size=3)), max_size=7))
    surveys = draw(st.lists(st.tuples(st.sampled_from(["nps", "csat"]), st.sampled_from(["", "q1"]),
                                      st.one_of(st.none(), st.integers(0, 10)), moment), max_size=3))
    metrics = draw(st.one_of(st.none(), st.fixed_dictionaries({
        "recency_days": st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 30.0])),
        "frequency": st.sampled_from([0, 1, 3]), "monetary": st.sampled_from([Decimal("0"), Decimal("10.50"), Decimal("500")]),
        "r_score": st.one_of(st.none(), st.integers(1, 5)), "rfm_segment": st.sampled_from(["", "champions", "lost"]),
        "cluster": st.sampled_from(["", "k1"]), "churn_risk": st.one_of(st.none(), st.sampled_from([0.1, 0.5])),
    })))
    memberships = draw(st.lists(st.tuples(st.sampled_from(["s1", "s2"]), moment, st.one_of(st.none(), moment)),
                                max_size=2))
    return {
        "memberships": [(key, min(a, b), max(a, b)) if b else (key, a, None) for key, a, b in memberships],
        "external_id": f"c{index}",
        # None: never sent (missing); "" and []: sent, present (the contract's "Clarified").
        "country": draw(st.sampled_from(["US", "us", "GB", "", None])),
        "plan": draw(st.sampled_from(["free", "pro", "Pro", "", None])),
        "city": draw(st.sampled_from(["München", "MÜNCHEN", "Paris", "", None])),
        "company_size": maybe(st.sampled_from([0, 5, 10, 250])),
        "annual_revenue": maybe(st.sampled_from([Decimal("0"), Decimal("1.50"), Decimal("1000")])),
        "signed_up_at": maybe(moment),
        "birth_date": maybe(st.sampled_from([date(2026, 6, 15), date(2026, 6, 14), date(1990, 1, 31), date(1988, 6, 21),
                                             date(1988, 6, 22), date(2000, 2, 29)])),
        "tech_stack": maybe(st.lists(st.sampled_from(["react", "django", "vue"]), max_size=2, unique=True)),
        "email_opt_in": maybe(st.booleans()),
        "timezone": draw(st.sampled_from(ZONES)),
        "traits": custom,
        "events": events,
        "surveys": surveys,
        "consents": draw(st.dictionaries(st.sampled_from(["email", "sms", "push"]), st.booleans(), max_size=3)),
        "metrics": metrics,
    }


@st.composite
def worlds(draw, max_customers: int = 12) -> World:
    count = draw(st.integers(1, max_customers))
    return World(customers=[draw(customer(i)) for i in range(count)])


# ----------------------------------------------------------------------- definitions

TRAIT_FIELDS = {
    "string": ["country", "plan", "city", "traits.tier"],
    "number": ["company_size", "annual_revenue", "traits.score"],
    "boolean": ["email_opt_in", "traits.vip"],
    "datetime": ["signed_up_at", "birth_date", "traits.renewal_at"],
    "list": ["tech_stack", "traits.tags"],
}


def _values_for(type_: str, op: str, field_name: str = ""):
    if op in ("is_set", "is_not_set"):
        return st.just(None)
    if op in ("within_last", "more_than_ago"):
        return st.sampled_from(DURATIONS)
    if op == "anniversary_within":
        return st.sampled_from(["1d", "7d", "1w", "2w", "250d", "366d"])
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        return st.sampled_from(["u", "US", "mü", "MÜN", "", "ro", "é", "x"])
    if op in ("has_any", "has_all", "has_none"):
        pool = ["react", "django", "vue"] if field_name == "tech_stack" else ["a", "b", "c", 1, True]
        return st.lists(st.sampled_from(pool), min_size=1, max_size=3)
    scalar = {"string": text, "number": number, "boolean": st.booleans(),
              "datetime": st.sampled_from(DATE_VALUES)}[type_]
    if op in ("in", "not_in"):
        return st.lists(scalar, min_size=1, max_size=3)
    if op == "between":
        return st.lists(scalar, min_size=2, max_size=2).map(sorted) if type_ == "number" else \
            st.sampled_from([["2026-06-14", "2026-06-15"], ["2026-01-31", "2026-06-15T12:00:00Z"],
                             ["2026-05-16T12:00:00Z", "2026-06-14"]])
    return scalar


OPS = {
    "string": ["eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "is_set", "is_not_set"],
    "number": ["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"],
    "boolean": ["eq", "neq", "is_set", "is_not_set"],
    "datetime": ["eq", "neq", "gt", "gte", "lt", "lte", "between", "within_last", "more_than_ago", "is_set", "is_not_set",
                 "anniversary_within"],
    "list": ["has_any", "has_all", "has_none", "is_set", "is_not_set"],
}
MEASURE_OPS = ["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between"]


@st.composite
def comparison(draw, type_: str, field_name: str = "", *, trait: bool = False) -> dict:
    """`trait`: datetime traits take `anniversary_within` too (event properties do not)."""
    op = draw(st.sampled_from([op for op in OPS[type_] if trait or op != "anniversary_within"]))
    value = draw(_values_for(type_, op, field_name))
    return {"op": op} if value is None else {"op": op, "value": value}


@st.composite
def trait_condition(draw) -> dict:
    type_ = draw(st.sampled_from(sorted(TRAIT_FIELDS)))
    name = draw(st.sampled_from(TRAIT_FIELDS[type_]))
    return {"type": "trait", "field": name, **draw(comparison(type_, name, trait=True))}


@st.composite
def where_filter(draw) -> dict:
    prop, type_ = draw(st.sampled_from([("amount", "number"), ("plan", "string"), ("at", "datetime"),
                                         ("tags", "list"), ("amount", "boolean"), ("plan", "number")]))
    cmp = draw(comparison(type_, prop))
    if type_ == "boolean" and cmp["op"] in ("in", "not_in"):
        cmp = {"op": "eq", "value": True}
    return {"property": prop, **cmp}


@st.composite
def window(draw):
    return draw(st.one_of(
        st.builds(lambda d: {"last": d}, st.sampled_from(DURATIONS)),
        st.sampled_from([{"from": "2026-06-14"}, {"to": "2026-06-14"}, {"from": "2026-01-31", "to": "2026-06-15"},
                         {"from": "2026-05-16T12:00:00Z", "to": "2026-06-15T11:59:59Z"}])))


WHENS = [{"days": [6, 7]}, {"days": [5, 6, 7]}, {"hours": [18, 24]}, {"hours": [0, 1]}, {"days": [1], "hours": [12, 13]},
         {"days": [7, 6, 1, 2, 3, 4, 5]}]


@st.composite
def measure(draw) -> dict:
    kind = draw(st.sampled_from(["count", "distinct_days", "aggregate", "first_occurred", "last_occurred", "share"]))
    if kind == "share":
        op = draw(st.sampled_from(MEASURE_OPS))
        values = st.sampled_from([0, 0.25, 0.5, 1, 0.8, 0.3333])
        value = draw(st.lists(values, min_size=2, max_size=2).map(sorted) if op == "between" else
                     st.lists(values, min_size=1, max_size=3) if op in ("in", "not_in") else values)
        return {kind: {"op": op, "value": value}}
    if kind in ("first_occurred", "last_occurred"):
        op = draw(st.sampled_from(["within_last", "more_than_ago", "before", "after"]))
        value = draw(st.sampled_from(DURATIONS if op in ("within_last", "more_than_ago") else DATE_VALUES))
        return {kind: {"op": op, "value": value}}
    op = draw(st.sampled_from(MEASURE_OPS))
    values = st.sampled_from([0, 1, 2, 3, 1.5, 10])
    value = draw(st.lists(values, min_size=2, max_size=2).map(sorted) if op == "between" else
                 st.lists(values, min_size=1, max_size=3) if op in ("in", "not_in") else values)
    spec = {"op": op, "value": value}
    if kind == "aggregate":
        spec = {"fn": draw(st.sampled_from(["sum", "avg", "min", "max"])), "property": "amount", **spec}
    return {kind: spec}


@st.composite
def event_condition(draw) -> dict:
    node = {"type": "event", "event": draw(st.sampled_from(EVENTS + ["*"])), **draw(measure())}
    if "share" in node or draw(st.booleans()):
        node["when"] = draw(st.sampled_from(WHENS))
    if draw(st.booleans()):
        node["where"] = draw(st.lists(where_filter(), min_size=1, max_size=2))
    if draw(st.booleans()):
        node["window"] = draw(window())
    return node


@st.composite
def sequence_condition(draw) -> dict:
    steps = draw(st.lists(st.builds(lambda e: {"event": e}, st.sampled_from(EVENTS)), min_size=2, max_size=3))
    if draw(st.booleans()):
        steps[0]["where"] = [draw(where_filter())]
    node = {"type": "sequence", "steps": steps, "within": draw(st.sampled_from(DURATIONS))}
    if draw(st.booleans()):
        node["window"] = draw(window())
    return node


@st.composite
def metric_condition(draw) -> dict:
    metric = draw(st.sampled_from(["recency_days", "frequency", "monetary", "r_score", "rfm_segment", "churn_risk",
                                   "cluster"]))
    if metric == "rfm_segment":
        op = draw(st.sampled_from(["eq", "neq", "in", "not_in", "is_set", "is_not_set"]))
        value = draw(st.sampled_from(["champions", "lost", "loyal"]))
        return {"type": "metric", "metric": metric, "op": op,
                **({} if op in ("is_set", "is_not_set") else {"value": [value] if op in ("in", "not_in") else value})}
    type_ = "string" if metric == "cluster" else "number"
    return {"type": "metric", "metric": metric, **draw(comparison(type_))}


@st.composite
def survey_condition(draw) -> dict:
    node = {"type": "survey", "survey": draw(st.sampled_from(["nps", "csat"])),
            "measure": draw(st.sampled_from(["latest", "average", "count"]))}
    op = draw(st.sampled_from(MEASURE_OPS))
    values = st.sampled_from([0, 1, 3, 6, 9, 10])
    node["op"] = op
    node["value"] = draw(st.lists(values, min_size=2, max_size=2).map(sorted) if op == "between" else
                         st.lists(values, min_size=1, max_size=3) if op in ("in", "not_in") else values)
    if draw(st.booleans()):
        node["question"] = draw(st.sampled_from(["", "q1"]).filter(bool))
    return node


segment_condition = st.builds(lambda key, op: {"type": "segment", "segment": key, "op": op},
                              st.sampled_from(["s1", "s2"]), st.sampled_from(["in", "not_in"]))

consent_condition = st.builds(lambda c, g: {"type": "consent", "channel": c, "granted": g},
                              st.sampled_from(["email", "sms", "push"]), st.booleans())

condition = st.one_of(trait_condition(), event_condition(), sequence_condition(), metric_condition(),
                      survey_condition(), consent_condition, segment_condition)


def _negated(strategy):
    return st.tuples(strategy, st.booleans()).map(lambda pair: {**pair[0], "negate": True} if pair[1] else pair[0])


def groups(max_depth: int = 5):
    def extend(children):
        return st.builds(lambda match, conds, neg: {"match": match, "conditions": conds, **({"negate": True} if neg else {})},
                         st.sampled_from(["all", "any"]), st.lists(children, min_size=1, max_size=3), st.booleans())

    return st.recursive(_negated(condition), extend, max_leaves=6)


@st.composite
def definitions(draw) -> dict:
    body = draw(groups())
    if "type" in body:  # a lone condition: wrap it in the root group
        body = {"match": draw(st.sampled_from(["all", "any"])), "conditions": [body]}
    return {"version": 1, **body}
