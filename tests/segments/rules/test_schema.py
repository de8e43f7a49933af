"""The published JSON Schema of the rule language: a valid draft 2020-12 schema that
accepts every definition the parser accepts, rejects what the parser rejects wherever the
tenant's registry is not needed, and says where it is coarser."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from segments.rules.nodes import Registry, RuleError
from segments.rules.parse import parse
from segments.rules.parse.values import ValueParser
from segments.rules.schema import definition_schema, duration_pattern
from segments.rules.vocabulary import parse_datetime
from tests.segments.rules.strategies import CUSTOM, DATE_VALUES, EVENTS, definitions

REGISTRY = Registry(traits=dict(CUSTOM), events=set(EVENTS), segments={"s1": set(), "s2": set(), "vip": set()})
SCHEMA = definition_schema()
VALIDATOR = Draft202012Validator(SCHEMA)
SPEC_EXAMPLE = {
    "version": 1,
    "match": "all",
    "conditions": [
        {"type": "trait", "field": "country", "op": "in", "value": ["US", "CA"]},
        {"type": "event", "event": "project_created", "count": {"op": "gte", "value": 3},
         "window": {"last": "30d"}},
        {"match": "any", "negate": True, "conditions": [
            {"type": "event", "event": "subscription_cancelled", "count": {"op": "gte", "value": 1}}
        ]},
        {"type": "metric", "metric": "monetary", "op": "gt", "value": 500},
    ],
}


def valid(doc) -> bool:
    return VALIDATOR.is_valid(doc)


def parses(doc) -> bool:
    try:
        parse(doc, REGISTRY)
    except RuleError:
        return False
    return True


def depth(node: dict) -> int:
    children = [c for c in node.get("conditions", []) if "type" not in c]
    return 1 + max((depth(c) for c in children), default=0)


def test_the_schema_is_a_valid_draft_2020_12_schema_and_plain_json():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA
    assert "coarser" in SCHEMA["description"] and "registry" in SCHEMA["description"]


def test_the_contracts_example_validates():
    assert list(VALIDATOR.iter_errors(SPEC_EXAMPLE)) == []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=definitions())
def test_every_generated_definition_validates_exactly_when_it_nests_at_most_5_deep(doc):
    """The strategies sometimes nest deeper than the language allows: the schema's depth
    limit rejects those, as the parser does (too_deep)."""
    assert valid(doc) == parses(doc) == (depth(doc) <= 5), [e.message for e in VALIDATOR.iter_errors(doc)]


def root(*conditions, **extra) -> dict:
    return {"version": 1, "match": "all", "conditions": list(conditions), **extra}


def trait(field, op, value=None, **extra) -> dict:
    return {"type": "trait", "field": field, "op": op, **({} if value is None else {"value": value}), **extra}


def event(**extra) -> dict:
    return {"type": "event", "event": "login", **extra}


def nested(levels: int) -> dict:
    node = {"match": "any", "conditions": [trait("country", "eq", "US")]}
    for _ in range(levels - 2):
        node = {"match": "all", "conditions": [node]}
    return root(node)


MALFORMED = {
    "not an object": [1, 2],
    "no version": {"match": "all", "conditions": [trait("country", "eq", "US")]},
    "version 2": root(trait("country", "eq", "US"), version=2),
    "version true": root(trait("country", "eq", "US"), version=True),
    "unknown root field": root(trait("country", "eq", "US"), colour="red"),
    "match none": root(trait("country", "eq", "US"), match="none"),
    "no conditions": root(),
    "51 conditions": root(*[trait("country", "eq", "US")] * 51),
    "negate a string": root(trait("country", "eq", "US"), negate="yes"),
    "group without match": root({"conditions": [trait("country", "eq", "US")]}),
    "group with version": root({"version": 1, "match": "all", "conditions": [trait("country", "eq", "US")]}),
    "depth 6": nested(6),
    "unknown condition type": root({"type": "weather", "op": "eq", "value": "sunny"}),
    "condition not an object": root("country = US"),
    "unknown condition field": root(trait("country", "eq", "US", colour="red")),
    "unknown built-in trait": root(trait("favourite_colour", "eq", "red")),
    "custom trait without key": root(trait("traits.", "eq", "red")),
    "trait without op": root({"type": "trait", "field": "country", "value": "US"}),
    "operator does not exist": root(trait("country", "bigger", "US")),
    "order op on a string trait": root(trait("country", "gt", "US")),
    "text op on a number trait": root(trait("company_size", "contains", "5")),
    "list op on a string trait": root(trait("country", "has_any", ["US"])),
    "relative op on a boolean": root(trait("email_opt_in", "within_last", "7d")),
    "string for a number trait": root(trait("company_size", "eq", "5")),
    "number for a string trait": root(trait("country", "eq", 5)),
    "1 for a boolean trait": root(trait("email_opt_in", "eq", 1)),
    "not a date": root(trait("signed_up_at", "gt", "last tuesday")),
    "empty in list": root(trait("country", "in", [])),
    "1001 values": root(trait("country", "in", ["US"] * 1001)),
    "mixed in list": root(trait("country", "in", ["US", 5])),
    "between one value": root(trait("company_size", "between", [5])),
    "between three values": root(trait("company_size", "between", [1, 2, 3])),
    "is_set with a value": root(trait("email", "is_set", "x")),
    "eq without a value": root(trait("country", "eq")),
    "eq null": root({"type": "trait", "field": "country", "op": "eq", "value": None}),
    "tech_stack numbers": root(trait("tech_stack", "has_any", [1])),
    "custom trait list of objects": root(trait("traits.tags", "has_any", [{"a": 1}])),
    "custom trait before": root(trait("traits.renewal_at", "before", "2026-01-01")),
    "duration words": root(trait("signed_up_at", "within_last", "30 days")),
    "duration 0d": root(trait("signed_up_at", "within_last", "0d")),
    "duration leading zero": root(trait("signed_up_at", "within_last", "07d")),
    "duration 3651d": root(trait("signed_up_at", "within_last", "3651d")),
    "duration 522w": root(trait("signed_up_at", "within_last", "522w")),
    "duration 87601h": root(trait("signed_up_at", "within_last", "87601h")),
    "duration 5256001m": root(trait("signed_up_at", "within_last", "5256001m")),
    "duration seconds": root(trait("signed_up_at", "within_last", "30s")),
    "event without measure": root(event()),
    "event with two measures": root(event(count={"op": "gte", "value": 1}, distinct_days={"op": "gte", "value": 1})),
    "event without name": root({"type": "event", "count": {"op": "gte", "value": 1}}),
    "event name blank": root(event(event="  ", count={"op": "gte", "value": 1})),
    "event name too long": root(event(event="x" * 201, count={"op": "gte", "value": 1})),
    "count of a string": root(event(count={"op": "gte", "value": "3"})),
    "count text op": root(event(count={"op": "contains", "value": 3})),
    "count is_set": root(event(count={"op": "is_set"})),
    "count without value": root(event(count={"op": "gte"})),
    "count unknown field": root(event(count={"op": "gte", "value": 1, "fn": "sum"})),
    "aggregate without fn": root(event(aggregate={"property": "amount", "op": "gt", "value": 1})),
    "aggregate fn median": root(event(aggregate={"fn": "median", "property": "amount", "op": "gt", "value": 1})),
    "aggregate property empty": root(event(aggregate={"fn": "sum", "property": "", "op": "gt", "value": 1})),
    "last_occurred gt": root(event(last_occurred={"op": "gt", "value": "2026-01-01"})),
    "last_occurred before a duration": root(event(last_occurred={"op": "before", "value": "7d"})),
    "first_occurred within a date": root(event(first_occurred={"op": "within_last", "value": "2026-01-01"})),
    "first_occurred without value": root(event(first_occurred={"op": "within_last"})),
    "window empty": root(event(count={"op": "gte", "value": 1}, window={})),
    "window last and from": root(event(count={"op": "gte", "value": 1}, window={"last": "7d", "from": "2026-01-01"})),
    "window bad duration": root(event(count={"op": "gte", "value": 1}, window={"last": "7 days"})),
    "window from not a date": root(event(count={"op": "gte", "value": 1}, window={"from": "yesterday"})),
    "window unknown field": root(event(count={"op": "gte", "value": 1}, window={"since": "2026-01-01"})),
    "where not a list": root(event(count={"op": "gte", "value": 1}, where={"property": "plan", "op": "eq", "value": "pro"})),
    "where without property": root(event(count={"op": "gte", "value": 1}, where=[{"op": "eq", "value": "pro"}])),
    "where empty property": root(event(count={"op": "gte", "value": 1}, where=[{"property": "", "op": "eq", "value": 1}])),
    "where before": root(event(count={"op": "gte", "value": 1},
                               where=[{"property": "at", "op": "before", "value": "2026-01-01"}])),
    "where gt a word": root(event(count={"op": "gte", "value": 1}, where=[{"property": "plan", "op": "gt", "value": "pro"}])),
    "where eq a list": root(event(count={"op": "gte", "value": 1}, where=[{"property": "plan", "op": "eq", "value": ["a"]}])),
    "where in mixed": root(event(count={"op": "gte", "value": 1},
                                 where=[{"property": "plan", "op": "in", "value": ["pro", 1]}])),
    "where between mixed": root(event(count={"op": "gte", "value": 1},
                                      where=[{"property": "amount", "op": "between", "value": [1, "2026-01-01"]}])),
    "where unknown field": root(event(count={"op": "gte", "value": 1},
                                      where=[{"property": "plan", "op": "eq", "value": "pro", "negate": True}])),
    "51 where filters": root(event(count={"op": "gte", "value": 1},
                                   where=[{"property": "plan", "op": "is_set"}] * 51)),
    "sequence of one step": root({"type": "sequence", "steps": [{"event": "login"}], "within": "1d"}),
    "sequence of 11 steps": root({"type": "sequence", "steps": [{"event": "login"}] * 11, "within": "1d"}),
    "sequence without within": root({"type": "sequence", "steps": [{"event": "login"}, {"event": "purchase"}]}),
    "sequence step unknown field": root({"type": "sequence", "steps": [{"event": "login", "count": 1},
                                                                       {"event": "purchase"}], "within": "1d"}),
    "sequence step not an object": root({"type": "sequence", "steps": ["login", "purchase"], "within": "1d"}),
    "metric a list (once a TypeError in the parser)": root({"type": "metric", "metric": [], "op": "eq", "value": 0}),
    "unknown metric": root({"type": "metric", "metric": "happiness", "op": "gt", "value": 1}),
    "metric text op on a number": root({"type": "metric", "metric": "monetary", "op": "contains", "value": "5"}),
    "metric string value": root({"type": "metric", "metric": "monetary", "op": "gt", "value": "500"}),
    "unknown rfm group": root({"type": "metric", "metric": "rfm_segment", "op": "eq", "value": "whales"}),
    "unknown rfm group in list": root({"type": "metric", "metric": "rfm_segment", "op": "in", "value": ["lost", "x"]}),
    "rfm order op": root({"type": "metric", "metric": "rfm_segment", "op": "gt", "value": "lost"}),
    "survey measure median": root({"type": "survey", "survey": "nps", "measure": "median", "op": "gte", "value": 9}),
    "survey without measure": root({"type": "survey", "survey": "nps", "op": "gte", "value": 9}),
    "survey string score": root({"type": "survey", "survey": "nps", "measure": "latest", "op": "gte", "value": "9"}),
    "survey is_set": root({"type": "survey", "survey": "nps", "measure": "latest", "op": "is_set"}),
    "survey empty question": root({"type": "survey", "survey": "nps", "measure": "latest", "question": "",
                                   "op": "gte", "value": 9}),
    "segment op eq": root({"type": "segment", "segment": "vip", "op": "eq"}),
    "segment key a number": root({"type": "segment", "segment": 5, "op": "in"}),
    "unknown channel": root({"type": "consent", "channel": "fax", "granted": True}),
    "granted a string": root({"type": "consent", "channel": "email", "granted": "yes"}),
    "consent without granted": root({"type": "consent", "channel": "email"}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_definition_is_rejected_by_the_schema_and_the_parser(name):
    doc = MALFORMED[name]
    assert not valid(doc)
    assert not parses(doc)


# What needs the tenant's registry, or compares two values, is the parser's alone.
COARSER = {
    "unregistered custom trait": root(trait("traits.shoe_size", "eq", 42)),
    "op unfit for a custom trait's type": root(trait("traits.score", "contains", "5")),
    "unknown survey": root({"type": "survey", "survey": "exit_poll", "measure": "latest", "op": "gte", "value": 9}),
    "unknown segment": root({"type": "segment", "segment": "ghosts", "op": "in"}),
    "between high before low": root(trait("company_size", "between", [10, 2])),
    "window from after to": root(event(count={"op": "gte", "value": 1}, window={"from": "2026-02-01", "to": "2026-01-01"})),
    "no such calendar day": root(trait("signed_up_at", "gt", "2026-02-30")),
}


@pytest.mark.parametrize("name", sorted(COARSER))
def test_registry_and_cross_field_checks_are_left_to_the_parser(name):
    doc = COARSER[name]
    assert valid(doc)
    assert not parses(doc)


def test_a_reference_cycle_passes_the_schema_and_not_the_parser():
    doc = root({"type": "segment", "segment": "a", "op": "in"})
    assert valid(doc)
    with pytest.raises(RuleError) as caught:
        parse(doc, Registry(segments={"a": {"me"}}, self_key="me"))
    assert [p.code for p in caught.value.problems] == ["cycle"]


def test_depth_5_validates_and_depth_6_does_not():
    assert valid(nested(5)) and parses(nested(5))
    assert not valid(nested(6)) and not parses(nested(6))


# ----------------------------------------------------------------------- soundness

POOL = [None, "", "x", " ", 0, -1, 1, 1.5, 3, True, False, [], ["a"], [1, 2], [2, 1], ["US", "CA"], {}, {"op": "eq"},
        "30d", "3650d", "3651d", "521w", "522w", "1h", "0m", "2026-01-01", "2026-06-15T12:00:00Z", "2026-13-01",
        "all", "any", "in", "not_in", "eq", "gt", "between", "is_set", "has_any", "within_last", "before", "latest",
        "count", "sum", "email", "sms", "champions", "whales", "nps", "s1", "login", "trait", "event", "sequence",
        "metric", "survey", "segment", "consent", "country", "traits.score", "amount", "monetary", "rfm_segment"]
KEYS = ["type", "op", "value", "field", "event", "negate", "match", "conditions", "count", "window", "where", "last",
        "from", "to", "steps", "within", "fn", "property", "metric", "measure", "question", "channel", "granted",
        "colour"]


def _spots(node, trail=()):
    """Every (container path, key) in a document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield trail, key
            yield from _spots(value, trail + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield trail, index
            yield from _spots(value, trail + (index,))


@st.composite
def mutated(draw) -> dict:
    """A generated definition with a few edits: a value replaced, a key dropped or added."""
    doc = copy.deepcopy(draw(definitions()))
    for _ in range(draw(st.integers(1, 3))):
        spots = list(_spots(doc))
        trail, key = draw(st.sampled_from(spots))
        container = doc
        for step in trail:
            container = container[step]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            container[key] = copy.deepcopy(draw(st.sampled_from(POOL)))
        elif action == "drop" and isinstance(container, dict):
            del container[key]
        elif action == "drop":
            container.pop(key)
        elif isinstance(container, dict):
            container[draw(st.sampled_from(KEYS))] = copy.deepcopy(draw(st.sampled_from(POOL)))
    return doc


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=mutated())
def test_the_schema_never_rejects_what_the_parser_accepts(doc):
    """Soundness on near-valid documents: parser accepts ⇒ schema accepts (the schema is
    only ever coarser). Most edits break the document (about 1 in 20 stays valid), so this
    adds a few dozen unusual valid documents per run to the generated ones above."""
    if parses(doc):
        assert valid(doc), [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=mutated())
def test_the_schema_rejects_what_the_parser_rejects_but_for_its_documented_gaps(doc):
    """Completeness on near-valid documents: whenever the parser rejects only for reasons
    the schema cannot see (unknown custom trait/survey/segment, op unfit for a custom
    trait, low > high, from > to, an impossible date), the schema may accept; otherwise it
    must reject too."""
    try:
        parse(doc, REGISTRY)
        return
    except RuleError as error:
        problems = error.problems
    codes = {p.code for p in problems}
    gaps = {"unknown_trait", "unknown_survey", "unknown_segment", "invalid_range"}
    messages = " ".join(p.message for p in problems)
    registry_only = codes <= gaps | {"invalid_op", "invalid_value", "invalid_type"} and (
        codes & gaps or "traits." in json.dumps(doc) or "ISO 8601" in messages)
    assume(not registry_only)
    assert not valid(doc), [(p.path, p.code, p.message) for p in problems]


# ----------------------------------------------------------------------- durations and dates


def _parser_duration(raw: str) -> bool:
    return ValueParser(Registry()).duration(raw, "") is not None


def test_the_duration_pattern_is_the_parsers_rule_for_every_day_week_and_hour_count():
    pattern = re.compile(duration_pattern())
    for unit, top in (("d", 4000), ("w", 600), ("h", 90000)):
        for n in range(0, top):
            assert bool(pattern.match(f"{n}{unit}")) == _parser_duration(f"{n}{unit}"), f"{n}{unit}"


@given(n=st.one_of(st.integers(0, 6_000_000), st.sampled_from([5_255_999, 5_256_000, 5_256_001, 10**7])),
       unit=st.sampled_from("mhdw"), pad=st.sampled_from(["", "0", " ", "+"]))
def test_the_duration_pattern_agrees_with_the_parser_on_any_count(n, unit, pad):
    raw = f"{pad}{n}{unit}"
    assert bool(re.match(duration_pattern(), raw)) == _parser_duration(raw)


@pytest.mark.parametrize("raw", DATE_VALUES + ["2026-06-15 12:00", "2026-06-15T12:00:00.123456", " 2026-06-15 ",
                                               "2026-06-15T12:00:00+0100", "2026-06-15T12:00Z"])
def test_every_date_the_parser_reads_matches_the_date_pattern(raw):
    assert parse_datetime(raw) is not None
    assert re.match(SCHEMA["$defs"]["iso_datetime"]["pattern"], raw)


@pytest.mark.parametrize("raw", ["2026-6-15", "15/06/2026", "2026-06-15T12", "today", "2026-06-15T12:00:00+1"])
def test_a_string_that_is_no_iso_date_fails_the_date_pattern(raw):
    assert parse_datetime(raw) is None
    assert not re.match(SCHEMA["$defs"]["iso_datetime"]["pattern"], raw)
