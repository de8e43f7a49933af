"""rule_context and condition_context: the only places a definition (or a lone condition, for
a report) is parsed against the tenant's registry."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from segments.models import Segment
from segments.rules.nodes import RuleError
from segments.rules.nodes import EventCondition
from segments.selectors.rules import condition_context, rule_context, rule_registry


def _trait(field: str, value) -> dict:
    return {"type": "trait", "field": field, "op": "eq", "value": value}


def test_problems_are_named_under_definition(in_tenant):
    """Every problem's path is the request's: under `definition.`, the root as `definition`."""
    with pytest.raises(RuleError) as caught:
        rule_context(definition={"version": 1, "match": "all", "conditions": [_trait("plan", 5), {"type": "nope"}]})
    paths = {p.path for p in caught.value.problems}
    assert paths and all(path == "definition" or path.startswith("definition.") for path in paths)
    with pytest.raises(RuleError) as caught:
        rule_context(definition="not a definition")
    assert {p.path for p in caught.value.problems} == {"definition"}


def test_warnings_are_named_under_definition(in_tenant):
    """A rule on an event the tenant never received is saved with a warning at its path."""
    rule = rule_context(definition={"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "never_seen_event", "count": {"op": "gte", "value": 1}}]})
    assert [(w.path, w.code) for w in rule.warnings] == [("definition.conditions[0].event", "unknown_event")]


def test_references_and_their_ids(in_tenant):
    """A rule's referenced keys, and their ids without a query when there are none."""
    target = Segment.objects.create(key="rc-target", name="Target", kind=Segment.Kind.STATIC)
    rule = rule_context(definition={"version": 1, "match": "any", "conditions": [
        {"type": "segment", "segment": "rc-target", "op": "in"}, _trait("plan", "pro")]})
    assert rule.references == {"rc-target"} and rule.reference_ids() == {"rc-target": target.pk}
    plain = rule_context(definition={"version": 1, "match": "all", "conditions": [_trait("plan", "pro")]})
    with CaptureQueriesContext(connection) as queries:
        assert plain.reference_ids() == {}
    assert len(queries) == 0


def test_a_segment_naming_itself_is_a_cycle(in_tenant):
    """self_key is the segment being saved: referring to it is refused."""
    Segment.objects.create(key="rc-self", name="Self", kind=Segment.Kind.STATIC)
    definition = {"version": 1, "match": "all", "conditions": [{"type": "segment", "segment": "rc-self", "op": "in"}]}
    assert rule_context(definition=definition).references == {"rc-self"}
    with pytest.raises(RuleError) as caught:
        rule_context(definition=definition, self_key="rc-self")
    assert caught.value.problems[0].path.startswith("definition.")


def test_a_registry_read_once_serves_many_rules(in_tenant):
    """The scheduler reads the registry once per batch and hands it to each parse."""
    registry = rule_registry().read()
    definition = {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "login", "count": {"op": "gte", "value": 1}}]}
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            rule_context(definition=definition, registry=registry)
    assert len(queries) == 0


def test_an_incremental_check_does_not_read_the_day_rollup_registry(in_tenant, django_assert_num_queries):
    from datetime import datetime, timezone

    from customers.models import RollupEvent
    from segments.selectors.rules import rule_rollups

    now = datetime(2026, 6, 15, tzinfo=timezone.utc)
    RollupEvent.objects.create(name="login", requested_at=now, ready_at=now, days_per_event=0.1)
    group = rule_context(definition={"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "login", "count": {"op": "gte", "value": 3}, "window": {"last": "30d"}}]}).group
    with django_assert_num_queries(1):
        assert rule_rollups(group, now).days == {"login"}
    with django_assert_num_queries(0):
        assert rule_rollups(group, now, scoped=True).days == frozenset()


def test_a_lone_condition_is_parsed_with_its_own_paths(in_tenant):
    """A report's condition: problems and warnings at the condition's paths, as the report names them."""
    with pytest.raises(RuleError) as caught:
        condition_context(condition={"type": "sequence", "steps": [{"event": "a"}], "within": "soon"})
    assert {p.path for p in caught.value.problems} == {"steps", "within"}
    with pytest.raises(RuleError) as caught:
        condition_context(condition="not a condition")
    assert {p.path for p in caught.value.problems} == {""}
    parsed, warnings = condition_context(condition={"type": "event", "event": "never_sent",
                                                    "count": {"op": "gte", "value": 1}})
    assert isinstance(parsed, EventCondition) and parsed.event == "never_sent"
    assert [(w.path, w.code) for w in warnings] == [("event", "unknown_event")]
