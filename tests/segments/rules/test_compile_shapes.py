"""The compiler's special shapes stay equal to the reference: counts that only ask "at least
one" or "none" (EXISTS / NOT EXISTS instead of GROUP BY … HAVING) and two-step sequences
(a semi-join with a correlated EXISTS), each near its boundaries, negated and nested."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from django.db import transaction

from tests.segments.rules.strategies import DURATIONS, EVENTS, where_filter, window, worlds
from tests.segments.rules.test_equivalence import selected_by_reference, selected_by_sql, store


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
    with transaction.atomic():
        ids = store(world)
        for doc in docs:
            expected = selected_by_reference(doc, ids)
            assert selected_by_sql(doc) == expected, doc
            some = ids[::2]
            assert selected_by_sql(doc, only=some) == expected & set(some), doc
        transaction.set_rollback(True)
