"""value_problem's fast check (`_fits`) never lets through what the exact walk refuses, and
the exact walk runs only for values that fail it."""

import math

from hypothesis import given
from hypothesis import strategies as st

from common import jsonvalues
from common.jsonvalues import MAX_DEPTH, TOO_DEEP_MARKER, _first_problem, value_problem

texts = st.one_of(st.text(max_size=8), st.sampled_from(["a\x00b", "\ud800", "ok\udfffx", TOO_DEEP_MARKER, "é"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), texts)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(texts, inner, max_size=4)), max_leaves=25)


@given(values)
def test_the_fast_check_agrees_with_the_exact_walk(value):
    assert value_problem(value, "p") == _first_problem(value, "p")
    assert jsonvalues._fits(value) == (_first_problem(value, "p") is None)


def nested(depth: int):
    value: object = "leaf"
    for _ in range(depth):
        value = {"k": [value]}
    return value


def test_depth_is_counted_like_the_exact_walk():
    for depth in (MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 2 * MAX_DEPTH):
        assert jsonvalues._fits(nested(depth)) == (_first_problem(nested(depth), "") is None)


def test_a_clean_event_skips_the_exact_walk(monkeypatch):
    calls = []
    monkeypatch.setattr(jsonvalues, "_first_problem", lambda *args: calls.append(args))
    event = {"type": "track", "event": "Order Completed", "properties": {"amount": 12.5, "items": [{"sku": "x"}]},
             "context": {"locale": "fr-FR", "page": {"title": "Café"}}}
    assert value_problem(event) is None and calls == []
    assert jsonvalues._fits({"n": math.inf}) is False
