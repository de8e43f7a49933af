"""The compiler's special shapes stay equal to the reference: counts that only ask "at least
one" or "none" (EXISTS / NOT EXISTS instead of GROUP BY … HAVING) and two-step sequences
(a semi-join with a correlated EXISTS), each near its boundaries, negated and nested; and a
definition that is one semi-join (its rows alone, customers_customer not read); trait tests
left bare (no COALESCE) where no NOT stands above them."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.rules.compile import compile_rule
from segments.rules.parse import parse
from tests.segments.rules.strategies import (
    DURATIONS, EVENTS, NOW, consent_condition, event_condition, metric_condition, survey_condition, trait_condition,
    where_filter, window, worlds,
)
from tests.segments.rules.test_equivalence import REGISTRY, assert_sql_equals_reference


@st.composite
def count_condition(draw) -> dict:
    kind = draw(st.sampled_from(["count", "distinct_days"]))
    op = draw(st.sampled_from(["gte", "gt", "eq", "neq", "lt", "lte"]))
    node = {"type": "event", "event": draw(st.sampled_from(EVENTS)),
            kind: {"op": op, "value": draw(st.sampled_from([0, 0.5, 1, 1.5, 2]))}}
    if draw(st.booleans()):
        node["window"] = draw(window())
    if draw(st.booleans()):
        node["where"] = [draw(where_filter())]
    if draw(st.booleans()):
        node["negate"] = True
    return node


@st.composite
def two_steps(draw) -> dict:
    steps = [{"event": e} for e in draw(st.lists(st.sampled_from(EVENTS), min_size=2, max_size=2))]
    for step in steps:
        if draw(st.booleans()):
            step["where"] = [draw(where_filter())]
    node = {"type": "sequence", "steps": steps, "within": draw(st.sampled_from(DURATIONS))}
    if draw(st.booleans()):
        node["window"] = draw(window())
    if draw(st.booleans()):
        node["negate"] = True
    return node


@st.composite
def shape_definition(draw) -> dict:
    leaf = st.one_of(count_condition(), two_steps())
    inner = st.builds(lambda match, negate, conditions: {"match": match, "negate": negate, "conditions": conditions},
                      st.sampled_from(["all", "any"]), st.booleans(), st.lists(leaf, min_size=1, max_size=3))
    return {"version": 1, "match": draw(st.sampled_from(["all", "any"])),
            "conditions": draw(st.lists(st.one_of(leaf, inner), min_size=1, max_size=3))}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(), docs=st.lists(shape_definition(), min_size=8, max_size=8))
def test_existence_counts_and_two_step_sequences_equal_the_reference(in_tenant, world, docs):
    assert_sql_equals_reference(world, docs)


@st.composite
def lone_semi_join(draw) -> dict:
    """One metric, event, survey or consent condition, maybe negated, maybe inside groups
    of one child (themselves maybe negated): the root's whole definition."""
    node = draw(st.one_of(metric_condition(), event_condition(), survey_condition(), consent_condition))
    if draw(st.booleans()):
        node = {**node, "negate": True}
    for _ in range(draw(st.integers(0, 2))):
        node = {"match": draw(st.sampled_from(["all", "any"])), "negate": draw(st.booleans()), "conditions": [node]}
    return {"version": 1, "match": draw(st.sampled_from(["all", "any"])), "negate": draw(st.booleans()),
            "conditions": [node]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(), docs=st.lists(lone_semi_join(), min_size=8, max_size=8))
def test_a_definition_of_one_semi_join_equals_the_reference(in_tenant, world, docs):
    """Whether it selects the semi-join's rows alone (positive) or tests customers (negated,
    or a measure that customers without rows pass), full and incremental."""
    assert_sql_equals_reference(world, docs)


def test_a_lone_metric_condition_reads_customer_metrics_alone():
    """rfm_segment in […] as the whole definition: its CustomerMetrics rows are the members;
    negated, every customer is tested again."""
    doc = {"version": 1, "match": "all",
           "conditions": [{"type": "metric", "metric": "rfm_segment", "op": "in", "value": ["champions"]}]}
    sql = compile_rule(parse(doc, REGISTRY)[0], now=NOW)
    assert "customers_customer c" not in sql.text and sql.text.startswith("SELECT d.customer_id AS id FROM")
    negated = compile_rule(parse({**doc, "negate": True}, REGISTRY)[0], now=NOW)
    assert negated.text.startswith("SELECT c.id FROM customers_customer c")


@st.composite
def trait_definition(draw) -> dict:
    """Trait conditions only, negated or not, in groups negated or not: which tests stand
    under no NOT (compiled bare) and which under one (two-valued) follows the nesting."""
    def leaf(node):
        return {**node, "negate": True} if draw(st.booleans()) else node
    leaves = st.lists(trait_condition().map(leaf), min_size=1, max_size=3)
    inner = st.builds(lambda match, negate, conditions: {"match": match, "negate": negate, "conditions": conditions},
                      st.sampled_from(["all", "any"]), st.booleans(), leaves)
    return {"version": 1, "match": draw(st.sampled_from(["all", "any"])), "negate": draw(st.booleans()),
            "conditions": draw(st.lists(st.one_of(trait_condition().map(leaf), inner), min_size=1, max_size=3))}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(), docs=st.lists(trait_definition(), min_size=8, max_size=8))
def test_trait_tests_bare_or_two_valued_equal_the_reference(in_tenant, world, docs):
    assert_sql_equals_reference(world, docs)


def test_a_trait_test_under_no_not_is_bare_so_the_planner_can_use_its_index():
    plan = {"type": "trait", "field": "plan", "op": "in", "value": ["pro", "team"]}
    doc = {"version": 1, "match": "all", "conditions": [plan]}
    assert "COALESCE" not in compile_rule(parse(doc, REGISTRY)[0], now=NOW).text
    for negated in ({**doc, "negate": True}, {**doc, "conditions": [{**plan, "negate": True}]},
                    {**doc, "conditions": [{"match": "any", "negate": True, "conditions": [plan]}]}):
        assert "NOT (COALESCE(" in compile_rule(parse(negated, REGISTRY)[0], now=NOW).text
    twice = {**doc, "negate": True, "conditions": [{**plan, "negate": True}]}
    assert "COALESCE" not in compile_rule(parse(twice, REGISTRY)[0], now=NOW).text
