"""The contract's Additions: any event ("*"), time of week (`when`), the `share` measure and
`anniversary_within` — their errors (code and path, parser and schema alike), and their
meaning, compiled and by the reference, on cases picked at the edges: local clocks across
midnight and summer time, zones PostgreSQL would read as abbreviations, 29 February, the
turn of the year."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from django.db import connection, transaction
from jsonschema import Draft202012Validator

from customers.models import Customer, Event
from segments.rules import reference
from segments.rules.compile import compile_rule
from segments.rules.explain import describe
from segments.rules.nodes import Registry, RuleError
from segments.rules.parse import parse
from segments.rules.schema import definition_schema
from segments.selectors.facts import customer_facts

REGISTRY = Registry(traits={"renewal_at": "datetime", "tier": "string"}, events={"login", "purchase"})
VALIDATOR = Draft202012Validator(definition_schema())


def root(*conditions) -> dict:
    return {"version": 1, "match": "all", "conditions": list(conditions)}


def event(**extra) -> dict:
    return {"type": "event", "event": "login", **extra}


def problems(doc) -> list[tuple[str, str]]:
    with pytest.raises(RuleError) as caught:
        parse(doc, REGISTRY)
    return [(p.path, p.code) for p in caught.value.problems]


WEEKEND_SHARE = event(event="*", window={"last": "90d"}, when={"days": [5, 6, 7]}, share={"op": "gte", "value": 0.8})

ERRORS = [
    (event(when={}, count={"op": "gte", "value": 1}), [("conditions[0].when", "invalid_value")]),
    (event(when={"days": [0]}, count={"op": "gte", "value": 1}), [("conditions[0].when.days", "invalid_value")]),
    (event(when={"days": [8]}, count={"op": "gte", "value": 1}), [("conditions[0].when.days", "invalid_value")]),
    (event(when={"days": [6, 6]}, count={"op": "gte", "value": 1}), [("conditions[0].when.days", "invalid_value")]),
    (event(when={"days": []}, count={"op": "gte", "value": 1}), [("conditions[0].when.days", "invalid_value")]),
    (event(when={"days": [6.0]}, count={"op": "gte", "value": 1}), [("conditions[0].when.days", "invalid_type")]),
    (event(when={"days": [True]}, count={"op": "gte", "value": 1}), [("conditions[0].when.days", "invalid_type")]),
    (event(when={"hours": [18, 18]}, count={"op": "gte", "value": 1}), [("conditions[0].when.hours", "invalid_value")]),
    (event(when={"hours": [20, 18]}, count={"op": "gte", "value": 1}), [("conditions[0].when.hours", "invalid_value")]),
    (event(when={"hours": [0, 25]}, count={"op": "gte", "value": 1}), [("conditions[0].when.hours", "invalid_value")]),
    (event(when={"hours": [-1, 5]}, count={"op": "gte", "value": 1}), [("conditions[0].when.hours", "invalid_value")]),
    (event(when={"hours": [18]}, count={"op": "gte", "value": 1}), [("conditions[0].when.hours", "invalid_value")]),
    (event(when={"days": [6], "tz": "UTC"}, count={"op": "gte", "value": 1}),
     [("conditions[0].when.tz", "unknown_field")]),
    (event(share={"op": "gte", "value": 0.5}), [("conditions[0].when", "required")]),
    (event(when={"days": [6]}, share={"op": "gte", "value": 1.5}), [("conditions[0].share.value", "invalid_value")]),
    (event(when={"days": [6]}, share={"op": "in", "value": [0.5, -0.1]}),
     [("conditions[0].share.value[1]", "invalid_value")]),
    (event(when={"days": [6]}, share={"op": "is_set"}), [("conditions[0].share.op", "invalid_op")]),
    ({"type": "sequence", "steps": [{"event": "*"}, {"event": "login"}], "within": "1d"},
     [("conditions[0].steps[0].event", "invalid_value")]),
    ({"type": "trait", "field": "country", "op": "anniversary_within", "value": "7d"}, [("conditions[0].op", "invalid_op")]),
    ({"type": "trait", "field": "traits.tier", "op": "anniversary_within", "value": "7d"},
     [("conditions[0].op", "invalid_op")]),
    ({"type": "trait", "field": "birth_date", "op": "anniversary_within", "value": "24h"},
     [("conditions[0].value", "invalid_duration")]),
    ({"type": "trait", "field": "birth_date", "op": "anniversary_within", "value": "367d"},
     [("conditions[0].value", "invalid_duration")]),
    ({"type": "trait", "field": "birth_date", "op": "anniversary_within", "value": "53w"},
     [("conditions[0].value", "invalid_duration")]),
    ({"type": "trait", "field": "birth_date", "op": "anniversary_within", "value": "07d"},
     [("conditions[0].value", "invalid_duration")]),
    (event(where=[{"property": "renewal", "op": "anniversary_within", "value": "7d"}], count={"op": "gte", "value": 1}),
     [("conditions[0].where[0].op", "invalid_op")]),
    (event(last_occurred={"op": "anniversary_within", "value": "7d"}), [("conditions[0].last_occurred.op", "invalid_op")]),
]


@pytest.mark.parametrize("condition,expected", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_each_misuse_of_an_addition_is_named_with_its_code_and_path(condition, expected):
    assert problems(root(condition)) == expected


# 6.0 in `days`, start < end of `hours` and a custom trait's type (the tenant's registry)
# cannot be said in JSON Schema; the rest can.
SCHEMA_BLIND = {5, 7, 8, 19}


@pytest.mark.parametrize("index", [i for i in range(len(ERRORS)) if i not in SCHEMA_BLIND])
def test_the_schema_rejects_the_same_misuses(index):
    condition, _ = ERRORS[index]
    assert not VALIDATOR.is_valid(root(condition))


@pytest.mark.parametrize("index", sorted(SCHEMA_BLIND))
def test_what_the_schema_cannot_say_is_left_to_the_parser(index):
    assert VALIDATOR.is_valid(root(ERRORS[index][0]))


@pytest.mark.parametrize("condition", [
    WEEKEND_SHARE,
    event(event="*", count={"op": "gte", "value": 10}, window={"last": "30d"}),
    event(when={"hours": [18, 24], "days": [5]}, distinct_days={"op": "gte", "value": 2}),
    event(when={"days": [1, 2, 3, 4, 5, 6, 7], "hours": [0, 24]}, aggregate={"fn": "sum", "property": "amount",
                                                                           "op": "gt", "value": 0}),
    event(when={"days": [6, 7]}, share={"op": "between", "value": [0.25, 1]}),
    {"type": "trait", "field": "birth_date", "op": "anniversary_within", "value": "7d"},
    {"type": "trait", "field": "signed_up_at", "op": "anniversary_within", "value": "2w"},
    {"type": "trait", "field": "traits.renewal_at", "op": "anniversary_within", "value": "366d"},
])
def test_the_additions_parse_and_validate(condition):
    parse(root(condition), REGISTRY)
    assert VALIDATOR.is_valid(root(condition))


def test_any_event_raises_no_unknown_event_warning_and_reads_plainly():
    group, warnings = parse(root(WEEKEND_SHARE), REGISTRY)
    assert warnings == []
    assert describe(group.conditions[0]) == \
        "share of any event in the last 90 days on Friday, Saturday or Sunday local time is at least 0.8"


# ----------------------------------------------------------------------------- meaning

def evaluate_both(doc: dict, customers: list[dict], now: datetime) -> tuple[set[str], set[str]]:
    """(external ids the compiled SQL selects, those the reference selects) of these
    customers, stored for the call and rolled back."""
    group, _ = parse(doc, REGISTRY)
    with transaction.atomic():
        ids = {}
        for spec in customers:
            spec = dict(spec)
            events = spec.pop("events", [])
            customer = Customer.objects.create(**spec)
            ids[customer.pk] = customer.external_id
            Event.objects.bulk_create([Event(customer=customer, name=name, timestamp=at, properties={})
                                       for name, at in events])
        sql = compile_rule(group, now=now)
        with connection.cursor() as cursor:
            cursor.execute(sql.text, sql.params)
            compiled = {ids[row[0]] for row in cursor.fetchall() if row[0] in ids}
        facts = customer_facts(customer_ids=list(ids))
        referenced = {ids[cid] for cid, fact in facts.items() if reference.evaluate(group, fact, now=now)}
        transaction.set_rollback(True)
    return compiled, referenced


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_time_of_week_reads_each_customers_local_clock(in_tenant):
    """Friday 2026-07-03 22:30 UTC is Saturday 00:30 in Paris (summer time), still Friday
    in New York and in UTC; the IANA zone CET keeps summer time too (PostgreSQL's
    abbreviation CET would not), a misspelt zone is UTC."""
    late_friday = [("login", utc(2026, 7, 3, 22, 30))]
    customers = [
        {"external_id": "paris", "timezone": "Europe/Paris", "events": late_friday},
        {"external_id": "cet", "timezone": "CET", "events": late_friday},
        {"external_id": "new_york", "timezone": "America/New_York", "events": late_friday},
        {"external_id": "lowercase", "timezone": "europe/paris", "events": late_friday},
        {"external_id": "none", "timezone": None, "events": late_friday},
    ]
    saturday = root(event(when={"days": [6]}, count={"op": "gte", "value": 1}))
    compiled, referenced = evaluate_both(saturday, customers, now=utc(2026, 7, 10))
    assert compiled == referenced == {"paris", "cet"}
    # In winter CET is +01:00: 22:30 UTC is 23:30 Friday, and the hour band [23, 24) holds it.
    winter = [("login", utc(2026, 1, 9, 22, 30))]
    late = root(event(when={"days": [5], "hours": [23, 24]}, count={"op": "gte", "value": 1}))
    compiled, referenced = evaluate_both(late, [{"external_id": "cet", "timezone": "CET", "events": winter},
                                                {"external_id": "utc", "timezone": "UTC", "events": winter}],
                                         now=utc(2026, 2, 1))
    assert compiled == referenced == {"cet"}


def test_a_share_is_exact_and_a_customer_without_events_has_none(in_tenant):
    """1 of 3 events at the weekend: a share of exactly ⅓ is not 0.3333, and is below
    0.34; a customer without events matches neither the share nor `lte 1`."""
    saturday, monday = utc(2026, 7, 4, 12), utc(2026, 7, 6, 12)
    customers = [
        {"external_id": "third", "timezone": "UTC", "events": [("login", saturday), ("login", monday), ("purchase", monday)]},
        {"external_id": "all", "timezone": "UTC", "events": [("login", saturday)]},
        {"external_id": "quiet", "timezone": "UTC"},
    ]
    now = utc(2026, 7, 10)
    weekend = {"days": [6, 7]}
    cases = [
        ("eq", 0.3333, set()), ("lt", 0.34, {"third"}), ("gte", 0.8, {"all"}), ("lte", 1, {"third", "all"}),
        ("in", [0, 1], {"all"}), ("between", [0.3, 0.4], {"third"}),
    ]
    for op, value, expected in cases:
        doc = root(event(event="*", when=weekend, share={"op": op, "value": value}))
        compiled, referenced = evaluate_both(doc, customers, now)
        assert compiled == referenced == expected, (op, value)
    negated = root({**event(event="*", when=weekend, share={"op": "gte", "value": 0.8}), "negate": True})
    compiled, referenced = evaluate_both(negated, customers, now)
    assert compiled == referenced == {"third", "quiet"}


ANNIVERSARY_CUSTOMERS = [
    {"external_id": "leapling", "birth_date": date(2000, 2, 29)},
    {"external_id": "feb28", "birth_date": date(1990, 2, 28)},
    {"external_id": "mar1", "birth_date": date(1985, 3, 1)},
    {"external_id": "new_year", "birth_date": date(1970, 1, 1)},
    {"external_id": "dec31", "birth_date": date(1999, 12, 31)},
    {"external_id": "unborn", "birth_date": None},
    # A sign-up late on 28 February UTC is a 28 February anniversary, whatever the offset it was sent with.
    {"external_id": "signed_late", "signed_up_at": utc(2021, 2, 28, 23, 30)},
]


@pytest.mark.parametrize("today,span,expected", [
    (date(2027, 2, 28), "1d", {"leapling", "feb28"}),  # no 29th in 2027: it is the leapling's day
    (date(2028, 2, 28), "1d", {"feb28"}),  # 2028 has a 29th
    (date(2028, 2, 29), "1d", {"leapling"}),
    (date(2027, 2, 27), "2d", {"leapling", "feb28"}),
    (date(2027, 3, 1), "1d", {"mar1"}),  # the leapling's 2027 anniversary was yesterday
    (date(2027, 12, 31), "2d", {"dec31", "new_year"}),  # over the turn of the year
    (date(2027, 12, 31), "1d", {"dec31"}),
    (date(2027, 3, 2), "366d", {"leapling", "feb28", "mar1", "new_year", "dec31"}),
    (date(2027, 3, 2), "52w", {"feb28", "new_year", "dec31"}),  # 364 days: up to 2028-02-28, the 29th is out
])
def test_anniversaries_fall_on_the_utc_calendar_and_29_february_on_the_28th(in_tenant, today, span, expected):
    now = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=15)
    doc = root({"type": "trait", "field": "birth_date", "op": "anniversary_within", "value": span})
    compiled, referenced = evaluate_both(doc, ANNIVERSARY_CUSTOMERS, now)
    assert compiled == referenced == expected
    signed = root({"type": "trait", "field": "signed_up_at", "op": "anniversary_within", "value": span})
    compiled, referenced = evaluate_both(signed, ANNIVERSARY_CUSTOMERS, now)
    assert compiled == referenced == ({"signed_late"} if "feb28" in expected else set())


def test_a_rule_on_a_custom_datetime_trait_runs_under_a_parallel_plan(in_tenant):
    """strata_timestamptz catches bad dates with an exception block, which nothing can run
    in parallel mode: the function is PARALLEL UNSAFE, so the query answers with parallel
    plans forced (as PARALLEL SAFE it failed here)."""
    for i in range(50):
        Customer.objects.create(external_id=f"p{i}", traits={"renewal_at": "2026-02-30" if i % 2 else "2026-07-01"})
    group, _ = parse(root({"type": "trait", "field": "traits.renewal_at", "op": "anniversary_within", "value": "7d"}),
                     REGISTRY)
    sql = compile_rule(group, now=utc(2026, 6, 28))
    with connection.cursor() as cursor:
        force = "debug_parallel_query" if connection.pg_version >= 160000 else "force_parallel_mode"
        for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                        "max_parallel_workers_per_gather = 2", f"{force} = on"):
            cursor.execute(f"SET LOCAL {setting}")
        cursor.execute(sql.text, sql.params)
        assert len(cursor.fetchall()) == 25
