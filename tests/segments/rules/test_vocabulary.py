"""The trait registry's rules (pure)."""

from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from common.jsonvalues import value_problem
from segments.rules.vocabulary import BUILTIN_TRAITS, TraitType, check_value, flatten, infer_type, key_problem, parse_datetime

json_scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
json_values = json_scalars | st.lists(st.text(max_size=10) | st.integers(), max_size=5)


def test_builtin_types_follow_the_rule_language_contract():
    types = {key: spec.type for key, spec in BUILTIN_TRAITS.items()}
    assert {k for k, t in types.items() if t is TraitType.NUMBER} == {"annual_revenue", "company_size"}
    assert {k for k, t in types.items() if t is TraitType.DATETIME} == {"birth_date", "signed_up_at", "last_seen_at"}
    assert types["tech_stack"] is TraitType.LIST and types["email_opt_in"] is TraitType.BOOLEAN
    assert {spec.key for spec in BUILTIN_TRAITS.values() if spec.is_pii} == {"email", "name", "birth_date"}


@pytest.mark.parametrize(("value", "expected"), [
    (True, "boolean"), (3, "number"), (2.5, "number"), (["a"], "list"), ("2024-05-01", "datetime"),
    ("2024-05-01T10:00:00Z", "datetime"), ("hello", "string"), ("5", "string"), (None, None),
])
def test_inference(value, expected):
    assert infer_type(value) == (TraitType(expected) if expected else None)


@pytest.mark.parametrize(("value", "trait_type", "code"), [
    ("5", "number", "type_mismatch"), (True, "number", "type_mismatch"), (1, "boolean", "type_mismatch"),
    (5, "string", "type_mismatch"), ("yesterday", "datetime", "type_mismatch"), ("a", "list", "type_mismatch"),
    ([{"a": 1}], "list", "invalid_value"), (float("inf"), "number", "invalid_value"), ("x" * 2001, "string", "too_long"),
])
def test_values_that_contradict_the_type_are_refused_with_a_code(value, trait_type, code):
    normalised, problem = check_value(value, TraitType(trait_type))
    assert normalised is None and problem.code == code


def test_datetimes_are_normalised_to_utc():
    assert check_value("2024-05-01T12:00:00+02:00", TraitType.DATETIME)[0] == "2024-05-01T10:00:00+00:00"
    assert parse_datetime("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_datetime("2024-13-01") is None


@given(json_values)
def test_a_value_fits_the_type_inferred_from_it_unless_postgres_cannot_hold_it(value):
    inferred = infer_type(value)
    if inferred is not None and not (isinstance(value, list) and len(value) > 200):
        assert (check_value(value, inferred)[1] is None) == (value_problem(value) is None)


@given(json_values, st.sampled_from(list(TraitType)))
def test_checking_never_raises(value, trait_type):
    normalised, problem = check_value(value, trait_type)
    assert (problem is None) or (normalised is None and problem.code)


def test_keys_and_flattening():
    assert key_problem("favouriteColour") is None and key_problem("address.city") is None
    assert key_problem("9lives").code == "invalid_key" and key_problem("a b").code == "invalid_key"
    assert flatten({"address": {"city": "Oslo", "geo": {"lat": 1}}, "plan": "pro"}) == {
        "address.city": "Oslo", "address.geo.lat": 1, "plan": "pro"}
