"""The parser: every error class of the contract with its code and path, all problems at
once, warnings for unknown events, and no input that escapes as anything but RuleError."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.rules.nodes import EventCondition, Group, Registry, RuleError, TraitCondition
from segments.rules.parse import parse, references

REGISTRY = Registry(traits={"score": "number", "tier": "string", "tags": "list"}, events={"login", "purchase"},
                    segments={"a": {"b"}, "b": set(), "c": {"me"}}, self_key="me")


def root(*conditions, match="all", **extra) -> dict:
    return {"version": 1, "match": match, "conditions": list(conditions), **extra}


def problems(doc) -> list[tuple[str, str]]:
    with pytest.raises(RuleError) as caught:
        parse(doc, REGISTRY)
    return [(p.path, p.code) for p in caught.value.problems]


def test_a_valid_definition_parses_into_typed_nodes():
    group, warnings = parse(root(
        {"type": "trait", "field": "country", "op": "in", "value": ["US", "CA"]},
        {"type": "event", "event": "login", "count": {"op": "gte", "value": 3}, "window": {"last": "30d"}},
        {"match": "any", "negate": True, "conditions": [
            {"type": "event", "event": "purchase", "count": {"op": "gte", "value": 1}}]},
    ), REGISTRY)
    assert warnings == []
    assert isinstance(group, Group) and group.match == "all"
    trait, event, inner = group.conditions
    assert isinstance(trait, TraitCondition) and trait.cmp.value == ("US", "CA")
    assert isinstance(event, EventCondition) and event.window.last == timedelta(days=30)
    assert inner.negate is True


@pytest.mark.parametrize("doc,expected", [
    ({"match": "all", "conditions": []}, [("version", "required"), ("conditions", "required")]),
    (root({"type": "trait", "field": "country", "op": "eq", "value": "US"}, version=2), [("version", "invalid_value")]),
    ([1, 2], [("", "invalid_type")]),
    (root({"type": "trait", "field": "country", "op": "eq", "value": "US", "colour": "red"}),
     [("conditions[0].colour", "unknown_field")]),
    (root({"type": "trait", "field": "country", "op": "eq", "value": 5}), [("conditions[0].value", "invalid_type")]),
    (root({"type": "trait", "field": "country", "op": "gt", "value": "US"}), [("conditions[0].op", "invalid_op")]),
    (root({"type": "trait", "field": "country", "op": "bigger", "value": "US"}), [("conditions[0].op", "invalid_op")]),
    (root({"type": "trait", "field": "country", "op": "in", "value": []}), [("conditions[0].value", "invalid_value")]),
    (root({"type": "trait", "field": "company_size", "op": "between", "value": [10, 2]}),
     [("conditions[0].value", "invalid_range")]),
    (root({"type": "trait", "field": "signed_up_at", "op": "within_last", "value": "30 days"}),
     [("conditions[0].value", "invalid_duration")]),
    (root({"type": "trait", "field": "signed_up_at", "op": "within_last", "value": "3651d"}),
     [("conditions[0].value", "invalid_duration")]),
    (root({"type": "trait", "field": "traits.unknown", "op": "eq", "value": 1}), [("conditions[0].field", "unknown_trait")]),
    (root({"type": "trait", "field": "shoe_size", "op": "eq", "value": 1}), [("conditions[0].field", "unknown_trait")]),
    (root({"type": "trait", "field": "country", "op": "in", "value": ["x"] * 1001}), [("conditions[0].value", "too_many")]),
    (root(*[{"type": "consent", "channel": "email", "granted": True}] * 51), [("conditions", "too_many")]),
    (root({"type": "event", "event": "login", "count": {"op": "gte"}}), [("conditions[0].count.value", "required")]),
    (root({"type": "event", "event": "login", "count": {"op": "within", "value": 1}}),
     [("conditions[0].count.op", "invalid_op")]),
    (root({"type": "event", "event": "login"}), [("conditions[0].count", "required")]),
    (root({"type": "event", "event": "login", "count": {"op": "eq", "value": 0}, "window": {"from": "2024-02-01", "to": "2024-01-01"}}),
     [("conditions[0].window", "invalid_range")]),
    (root({"type": "event", "event": "login", "aggregate": {"fn": "median", "property": "amount", "op": "gt", "value": 1}}),
     [("conditions[0].aggregate.fn", "invalid_value")]),
    (root({"type": "event", "event": "login", "last_occurred": {"op": "gt", "value": "1d"}}),
     [("conditions[0].last_occurred.op", "invalid_op")]),
    (root({"type": "event", "event": "login", "count": {"op": "eq", "value": 1},
           "where": [{"property": "amount", "op": "gt", "value": "lots"}]}),
     [("conditions[0].where[0].value", "invalid_value")]),
    (root({"type": "sequence", "steps": [{"event": "login"}], "within": "1d"}), [("conditions[0].steps", "invalid_value")]),
    (root({"type": "sequence", "steps": [{"event": "login"}] * 11, "within": "1d"}), [("conditions[0].steps", "too_many")]),
    (root({"type": "sequence", "steps": [{"event": "login"}, {"event": "purchase"}]}), [("conditions[0].within", "required")]),
    (root({"type": "metric", "metric": "happiness", "op": "gt", "value": 1}), [("conditions[0].metric", "invalid_value")]),
    (root({"type": "metric", "metric": "rfm_segment", "op": "eq", "value": "vip"}), [("conditions[0].value", "invalid_value")]),
    (root({"type": "survey", "survey": "nps", "measure": "median", "op": "gte", "value": 9}),
     [("conditions[0].measure", "invalid_value")]),
    (root({"type": "survey", "survey": "onboarding", "measure": "latest", "op": "gte", "value": 9}),
     [("conditions[0].survey", "unknown_survey")]),
    (root({"type": "segment", "segment": "nope", "op": "in"}), [("conditions[0].segment", "unknown_segment")]),
    (root({"type": "segment", "segment": "c", "op": "in"}), [("conditions[0].segment", "cycle")]),
    (root({"type": "segment", "segment": "me", "op": "in"}), [("conditions[0].segment", "cycle")]),
    (root({"type": "segment", "segment": "a", "op": "eq"}), [("conditions[0].op", "invalid_op")]),
    (root({"type": "consent", "channel": "fax", "granted": "yes"}),
     [("conditions[0].channel", "invalid_value"), ("conditions[0].granted", "invalid_type")]),
    (root({"type": "consent", "channel": "email", "granted": True, "negate": "no"}), [("conditions[0].negate", "invalid_type")]),
    (root({"type": "weather", "sunny": True}), [("conditions[0].type", "invalid_value")]),
    (root({"match": "some", "conditions": [{"type": "consent", "channel": "email", "granted": True}]}),
     [("conditions[0].match", "invalid_value")]),
])
def test_each_error_class_has_its_code_and_path(doc, expected):
    assert problems(doc) == expected


def test_nesting_deeper_than_five_groups_is_too_deep():
    leaf = {"type": "consent", "channel": "email", "granted": True}
    node = leaf
    for _ in range(5):  # the root is depth 1, so five more groups make depth 6
        node = {"match": "all", "conditions": [node]}
    assert problems(root(node)) == [("conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]", "too_deep")]


def test_every_problem_is_reported_at_once():
    found = problems(root(
        {"type": "trait", "field": "country", "op": "gt", "value": "US"},
        {"type": "event", "event": "login", "count": {"op": "gte", "value": "three"}},
        {"type": "metric", "metric": "ltv", "op": "between", "value": [5, 1]},
    ))
    assert found == [("conditions[0].op", "invalid_op"), ("conditions[1].count.value", "invalid_type"),
                     ("conditions[2].value", "invalid_range")]


def test_an_unknown_event_is_a_warning_not_an_error():
    _, warnings = parse(root({"type": "event", "event": "teleported", "count": {"op": "gte", "value": 1}}), REGISTRY)
    assert [(w.path, w.code) for w in warnings] == [("conditions[0].event", "unknown_event")]


def test_the_cycle_message_names_the_cycle():
    with pytest.raises(RuleError) as caught:
        parse(root({"type": "segment", "segment": "c", "op": "in"}), REGISTRY)
    assert "me → c → me" in caught.value.problems[0].message


def test_references_lists_the_segments_a_definition_uses():
    group, _ = parse(root({"type": "segment", "segment": "a", "op": "in"},
                          {"match": "any", "conditions": [{"type": "segment", "segment": "b", "op": "not_in"}]}), REGISTRY)
    assert references(group) == {"a", "b"}


def test_dates_and_datetimes_are_told_apart():
    group, _ = parse(root({"type": "trait", "field": "signed_up_at", "op": "lte", "value": "2024-01-31"},
                          {"type": "trait", "field": "signed_up_at", "op": "lte", "value": "2024-01-31T10:00:00+02:00"}),
                     REGISTRY)
    day, moment = (c.cmp.value for c in group.conditions)
    assert day.is_date and day.end.isoformat() == "2024-02-01T00:00:00+00:00"
    assert not moment.is_date and moment.value.isoformat() == "2024-01-31T08:00:00+00:00"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
              st.sampled_from(["all", "any", "trait", "event", "count", "eq", "in", "30d", "country", "login"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(["version", "match", "conditions", "type", "field", "op",
                                                                "value", "event", "count", "window", "where", "negate",
                                                                "steps", "within", "metric", "survey", "measure",
                                                                "segment", "channel", "granted", "last", "from", "to",
                                                                "fn", "property"]), children, max_size=6)),
    max_leaves=25)


@settings(max_examples=500, deadline=None)
@given(doc=json_values)
def test_no_input_escapes_as_anything_but_a_rule_error(doc):
    """Whatever JSON arrives, parse answers a Group or a RuleError with coded problems."""
    try:
        group, _ = parse(doc, REGISTRY)
    except RuleError as error:
        assert error.problems and all(p.code and isinstance(p.path, str) for p in error.problems)
    else:
        assert isinstance(group, Group)


@pytest.mark.parametrize(("condition", "path", "code"), [
    # The contract's "Clarified" section and its settled details.
    ({"type": "trait", "field": "tech_stack", "op": "has_any", "value": []}, "conditions[0].value", "invalid_value"),
    ({"type": "trait", "field": "tech_stack", "op": "has_all", "value": [1]}, "conditions[0].value[0]", "invalid_type"),
    ({"type": "event", "event": "login", "count": {"op": "gte", "value": 1}, "window": {"last": "07d"}},
     "conditions[0].window.last", "invalid_duration"),
    ({"type": "event", "event": "login", "count": {"op": "gte", "value": 1}, "window": {}},
     "conditions[0].window", "invalid_value"),
])
def test_what_the_contract_clarifies_is_refused_with_its_code(condition, path, code):
    with pytest.raises(RuleError) as caught:
        parse({"version": 1, "match": "all", "conditions": [condition]})
    assert (path, code) in {(p.path, p.code) for p in caught.value.problems}


@pytest.mark.parametrize("window", [{"from": "2026-01-01"}, {"to": "2026-01-01"}])
def test_a_window_with_one_bound_is_a_window(window):
    parse({"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "login", "count": {"op": "gte", "value": 1}, "window": window}]})
