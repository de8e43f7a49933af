"""`explain`: the definition tree for one customer, each node's truth and the facts that
decided it, always agreeing with the reference evaluator; `describe`: each node's summary.
No database: customers are CustomerFacts built in Python."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings

from segments.rules import reference
from segments.rules.explain import describe, explain
from segments.rules.nodes import Group, Registry, RuleError
from segments.rules.parse import parse
from segments.rules.reference import CustomerFacts, EventFact, SurveyFact
from tests.segments.rules.strategies import CUSTOM, EVENTS, NOW, definitions, worlds

SEGMENTS = ("s1", "s2", "vip", "churned")  # s1, s2: the strategies' references
REGISTRY = Registry(traits=dict(CUSTOM), events=set(EVENTS), segments={key: set() for key in SEGMENTS},
                    surveys={"nps": "nps", "csat": "csat", "onboarding": "custom"})
DAY = timedelta(days=1)
BUILTIN = ("country", "plan", "city", "company_size", "annual_revenue", "signed_up_at", "birth_date", "tech_stack",
           "email_opt_in")


def facts_of(spec: dict, index: int) -> CustomerFacts:
    """A generated customer (strategies.customer) as the facts loader would give it:
    segments are those with a membership open at `now` (entered ≤ now < exited)."""
    return CustomerFacts(
        id=index,
        builtin={key: spec[key] for key in BUILTIN},
        traits=dict(spec["traits"]),
        events=[EventFact(name=name, timestamp=ts, properties=props, id=100 * index + n)
                for n, (name, ts, props) in enumerate(spec["events"])],
        surveys=[SurveyFact(survey=key, score=None if score is None else Decimal(score), responded_at=ts,
                            question=question, id=100 * index + n)
                 for n, (key, question, score, ts) in enumerate(spec["surveys"])],
        consents=dict(spec["consents"]),
        metrics=spec["metrics"],
        segments={key for key, entered, exited in spec["memberships"]
                  if entered <= NOW and (exited is None or exited > NOW)},
    )


def depth(node: dict) -> int:
    children = [c for c in node.get("conditions", []) if "type" not in c]
    return 1 + max((depth(c) for c in children), default=0)


def indices(path: str) -> list[int]:
    assert re.fullmatch(r"(conditions\[\d+\](\.conditions\[\d+\])*)?", path), path
    return [int(i) for i in re.findall(r"conditions\[(\d+)\]", path)]


def at(tree, path: str):
    """The node (a dict of the document or a parsed node) that `path` names."""
    for index in indices(path):
        tree = tree["conditions"][index] if isinstance(tree, dict) else tree.conditions[index]
    return tree


def check_tree(out: dict, doc: dict, group: Group, facts: CustomerFacts) -> int:
    """Every node of the output against the document, the parsed tree and the reference;
    returns how many nodes were checked."""
    source, parsed = at(doc, out["path"]), at(group, out["path"])
    assert out["negate"] == source.get("negate", False) == parsed.negate
    assert out["result"] == (out["raw_result"] != out["negate"])
    assert out["result"] == reference.evaluate(parsed, facts, now=NOW)
    assert out["summary"] == describe(parsed) and out["summary"]
    if out["kind"] == "group":
        assert "type" not in source and out["match"] == source["match"]
        assert len(out["conditions"]) == len(source["conditions"])
        results = [child["result"] for child in out["conditions"]]
        assert out["raw_result"] == (all(results) if out["match"] == "all" else any(results))
        for index, child in enumerate(out["conditions"]):
            assert child["path"] == (f"{out['path']}." if out["path"] else "") + f"conditions[{index}]"
        return 1 + sum(check_tree(child, doc, group, facts) for child in out["conditions"])
    assert out["kind"] == source["type"]
    check_fact(out, parsed, facts)
    return 1


def check_fact(out: dict, node, facts: CustomerFacts) -> None:
    fact = out["fact"]
    if out["kind"] == "event":
        every = reference.matching_events(node.event, node.where, node.window, facts, NOW)
        events = {e.id: e for e in reference.matching_events(node.event, node.where, node.window, facts, NOW,
                                                             node.when)}
        assert fact["matching_events"] == len(events)
        if fact["measure"] == "share":  # the part `when` keeps of every matching event
            assert fact["of_events"] == len(every)
            assert fact["value"] == (len(events) / len(every) if every else None)
        assert len(fact["samples"]) == min(5, len(events))
        assert all(s["id"] in events for s in fact["samples"])
        if fact["measure"] == "count":
            assert fact["value"] == len(events)
        if fact["measure"] == "distinct_days":
            assert fact["value"] <= len(events)
        if fact["measure"] == "last_occurred" and events:
            assert fact["value"] == fact["samples"][0]["timestamp"]
    elif out["kind"] == "sequence":
        assert fact["completed"] == out["raw_result"]
        assert len(fact["events"]) == (len(node.steps) if fact["completed"] else 0)
        assert [e["event"] for e in fact["events"]] == ([s.event for s in node.steps] if fact["completed"] else [])
        stamps = [e["timestamp"] for e in fact["events"]]
        assert stamps == sorted(set(stamps))  # strictly in order (ISO strings in UTC sort as times)
    elif out["kind"] == "survey":
        assert len(fact["samples"]) == min(5, fact["responses"])
        if fact["measure"] == "count":
            assert fact["value"] == fact["responses"]
    elif out["kind"] == "segment":
        assert fact["member"] == (node.segment in facts.segments)
    elif out["kind"] == "consent":
        assert fact["granted"] == (facts.consents.get(node.channel) is True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(max_customers=4), doc=definitions())
def test_the_tree_agrees_with_the_reference_at_every_node(world, doc):
    """The root's result is reference.evaluate; each group's raw result is all/any of its
    children's results and its result that after negate; every node sits at its path, and
    the output survives a strict json.dumps."""
    assume(depth(doc) <= 5)
    group, _ = parse(doc, REGISTRY)
    for index, spec in enumerate(world.customers):
        facts = facts_of(spec, index)
        out = explain(group, facts, now=NOW)
        assert out["path"] == "" and out["kind"] == "group"
        assert out["result"] == reference.evaluate(group, facts, now=NOW)
        assert check_tree(out, doc, group, facts) == sum(1 for _ in group.walk())
        assert json.loads(json.dumps(out, allow_nan=False)) == out


# ----------------------------------------------------------------------- hand-written examples


def root(*conditions, match="all", negate=False) -> Group:
    return parse({"version": 1, "match": match, "conditions": list(conditions), "negate": negate}, REGISTRY)[0]


def one(condition: dict, facts: CustomerFacts, **kwargs) -> dict:
    """The explanation of a lone condition."""
    out = explain(root(condition), facts, now=NOW, **kwargs)
    assert out["result"] == out["conditions"][0]["result"]
    return out["conditions"][0]


def customer(**kwargs) -> CustomerFacts:
    return CustomerFacts(id=1, **kwargs)


def ev(name: str, ago: timedelta, id: int, **props) -> EventFact:
    return EventFact(name=name, timestamp=NOW - ago, properties=props, id=id)


def test_a_trait_gives_the_stored_value_and_whether_it_is_personal_data():
    """Built-in PII (email) is marked from BUILTIN_TRAITS, custom PII from the caller's
    keys; the value is returned unmasked."""
    facts = customer(builtin={"country": "US", "email": "ann@example.com", "plan": ""}, traits={"tier": "gold"})
    out = one({"type": "trait", "field": "country", "op": "in", "value": ["US", "CA"]}, facts)
    assert out == {"path": "conditions[0]", "kind": "trait", "negate": False, "summary": "country is one of US, CA",
                   "raw_result": True, "result": True,
                   "fact": {"field": "country", "custom": False, "value": "US", "missing": False, "pii": False}}
    email = one({"type": "trait", "field": "email", "op": "ends_with", "value": "@example.com"}, facts)
    assert email["result"] is True and email["fact"]["pii"] is True and email["fact"]["value"] == "ann@example.com"
    tier = one({"type": "trait", "field": "traits.tier", "op": "eq", "value": "gold"}, facts, pii_traits={"tier"})
    assert tier["fact"] == {"field": "traits.tier", "custom": True, "value": "gold", "missing": False, "pii": True}
    assert one({"type": "trait", "field": "traits.tier", "op": "eq", "value": "gold"}, facts)["fact"]["pii"] is False


def test_a_missing_trait_fails_even_a_negative_operator_and_says_it_is_missing():
    """A built-in never sent is missing: `plan neq "pro"` is false; negated `plan eq "pro"`
    true. "" is a value a client sent: present (the contract's "Clarified" section)."""
    facts = customer(builtin={"plan": None}, traits={"score": "5"})
    neq = one({"type": "trait", "field": "plan", "op": "neq", "value": "pro"}, facts)
    assert (neq["raw_result"], neq["result"], neq["fact"]["missing"], neq["fact"]["value"]) == (False, False, True, None)
    sent_empty = one({"type": "trait", "field": "plan", "op": "neq", "value": "pro"}, customer(builtin={"plan": ""}))
    assert (sent_empty["result"], sent_empty["fact"]["missing"]) == (True, False)
    negated = one({"type": "trait", "field": "plan", "op": "eq", "value": "pro", "negate": True}, facts)
    assert (negated["raw_result"], negated["result"], negated["summary"]) == (False, True, "not (plan is pro)")
    wrong_type = one({"type": "trait", "field": "traits.score", "op": "gt", "value": 1}, facts)
    assert wrong_type["fact"]["value"] == "5" and wrong_type["fact"]["missing"] is True
    assert wrong_type["result"] is False


def test_trait_values_of_every_stored_type_come_back_as_json():
    facts = customer(builtin={"annual_revenue": Decimal("1000.50"), "company_size": 10, "birth_date": date(1990, 1, 31),
                              "signed_up_at": datetime(2026, 6, 1, 9, 30, tzinfo=timezone.utc),
                              "tech_stack": ["react"], "email_opt_in": True})
    cases = [({"field": "annual_revenue", "op": "gte", "value": 1000}, 1000.5),
             ({"field": "company_size", "op": "between", "value": [5, 10]}, 10),
             ({"field": "birth_date", "op": "lt", "value": "2000-01-01"}, "1990-01-31"),
             ({"field": "signed_up_at", "op": "within_last", "value": "30d"}, "2026-06-01T09:30:00Z"),
             ({"field": "tech_stack", "op": "has_any", "value": ["react", "vue"]}, ["react"]),
             ({"field": "email_opt_in", "op": "eq", "value": True}, True)]
    for condition, value in cases:
        out = one({"type": "trait", **condition}, facts)
        assert (out["result"], out["fact"]["value"]) == (True, value), condition


def test_an_event_count_gives_the_count_the_window_and_the_five_newest_matching_events():
    """Events outside the window, at or after `now`, or failing `where` are not counted."""
    facts = customer(events=[ev("login", d * DAY, id=d, plan="pro") for d in range(1, 8)]
                     + [ev("login", 40 * DAY, id=40, plan="pro"), ev("login", timedelta(0), id=0, plan="pro"),
                        ev("login", 2 * DAY, id=50, plan="free"), ev("purchase", DAY, id=60, plan="pro")])
    out = one({"type": "event", "event": "login", "where": [{"property": "plan", "op": "eq", "value": "pro"}],
               "count": {"op": "gte", "value": 3}, "window": {"last": "30d"}}, facts)
    assert out["summary"] == "login (plan is pro) at least 3 times in the last 30 days"
    assert out["result"] is True
    assert out["fact"] == {
        "event": "login", "measure": "count", "value": 7, "matching_events": 7,
        "window": {"from": "2026-05-16T12:00:00Z", "to": "2026-06-15T12:00:00Z"},
        "samples": [{"id": d, "timestamp": (NOW - d * DAY).isoformat().replace("+00:00", "Z")} for d in range(1, 6)]}


def test_a_customer_without_events_matches_count_eq_0():
    out = one({"type": "event", "event": "purchase", "count": {"op": "eq", "value": 0}}, customer())
    assert out["summary"] == "did not purchase"
    assert out["result"] is True
    assert out["fact"] == {"event": "purchase", "measure": "count", "value": 0, "matching_events": 0,
                           "window": {"from": None, "to": "2026-06-15T12:00:00Z"}, "samples": []}


def test_an_aggregate_gives_the_measured_value_and_each_sample_property():
    """sum 125.5 over numeric amounts only (a numeric string is not a number)."""
    facts = customer(events=[ev("purchase", DAY, id=1, amount=100), ev("purchase", 2 * DAY, id=2, amount=25.5),
                             ev("purchase", 3 * DAY, id=3, amount="40")])
    out = one({"type": "event", "event": "purchase",
               "aggregate": {"fn": "sum", "property": "amount", "op": "gt", "value": 125}}, facts)
    assert out["summary"] == "total amount of purchase is greater than 125"
    assert out["result"] is True
    fact = out["fact"]
    assert (fact["value"], fact["fn"], fact["property"], fact["matching_events"]) == (125.5, "sum", "amount", 3)
    assert [(s["id"], s["property_value"]) for s in fact["samples"]] == [(1, 100), (2, 25.5), (3, "40")]
    avg = one({"type": "event", "event": "purchase", "window": {"last": "12h"},
               "aggregate": {"fn": "avg", "property": "amount", "op": "gt", "value": 0}}, facts)
    assert (avg["fact"]["value"], avg["result"]) == (None, False)  # avg of nothing is missing


def test_first_and_last_occurred_give_the_deciding_time():
    facts = customer(events=[ev("login", 40 * DAY, id=1), ev("login", 3 * DAY, id=2), ev("login", timedelta(0), id=3)])
    last = one({"type": "event", "event": "login", "last_occurred": {"op": "within_last", "value": "7d"}}, facts)
    assert last["summary"] == "last login within the last 7 days"
    assert (last["result"], last["fact"]["value"]) == (True, "2026-06-12T12:00:00Z")
    first = one({"type": "event", "event": "login", "first_occurred": {"op": "more_than_ago", "value": "30d"}}, facts)
    assert first["summary"] == "first login more than 30 days ago"
    assert (first["result"], first["fact"]["value"]) == (True, "2026-05-06T12:00:00Z")
    assert [s["id"] for s in first["fact"]["samples"]] == [1, 2]  # earliest first: the deciding event leads
    never = one({"type": "event", "event": "signup", "last_occurred": {"op": "more_than_ago", "value": "1d"}}, facts)
    assert (never["result"], never["fact"]["value"]) == (False, None)


def test_distinct_days_counts_utc_days():
    facts = customer(events=[ev("login", timedelta(hours=h), id=h) for h in (1, 2, 13, 37)])
    out = one({"type": "event", "event": "login", "distinct_days": {"op": "gte", "value": 3},
               "window": {"last": "1w"}}, facts)
    assert out["summary"] == "login on at least 3 distinct days in the last 7 days"
    assert (out["result"], out["fact"]["value"], out["fact"]["matching_events"]) == (True, 3, 4)


def test_a_sequence_gives_the_events_that_did_each_step():
    facts = customer(events=[ev("login", 5 * DAY, id=1), ev("purchase", 3 * DAY, id=2), ev("login", 2 * DAY, id=3),
                             ev("purchase", 2 * DAY - timedelta(hours=2), id=4)])
    out = one({"type": "sequence", "steps": [{"event": "login"}, {"event": "purchase"}], "within": "1d"}, facts)
    assert out["summary"] == "did login → purchase within 1 day"
    assert out["result"] is True
    assert out["fact"]["events"] == [
        {"step": 0, "event": "login", "id": 3, "timestamp": "2026-06-13T12:00:00Z"},
        {"step": 1, "event": "purchase", "id": 4, "timestamp": "2026-06-13T14:00:00Z"}]
    assert out["fact"]["steps"] == [{"event": "login", "matching_events": 2}, {"event": "purchase", "matching_events": 2}]
    missed = one({"type": "sequence", "steps": [{"event": "purchase"}, {"event": "feature_x_used"}],
                  "within": "2h"}, facts)
    assert (missed["result"], missed["fact"]["completed"], missed["fact"]["events"]) == (False, False, [])
    assert missed["fact"]["steps"][1] == {"event": "feature_x_used", "matching_events": 0}


def test_a_metric_gives_its_value_or_says_the_customer_is_unscored():
    scored = customer(metrics={"monetary": Decimal("612.40"), "rfm_segment": ""})
    out = one({"type": "metric", "metric": "monetary", "op": "gt", "value": 500}, scored)
    assert out["summary"] == "monetary is greater than 500"
    assert out["fact"] == {"metric": "monetary", "value": 612.4, "missing": False, "scored": True}
    rfm = one({"type": "metric", "metric": "rfm_segment", "op": "is_not_set"}, scored)
    assert (rfm["result"], rfm["fact"]["missing"]) == (True, True)  # "" is unscored
    unscored = one({"type": "metric", "metric": "monetary", "op": "lt", "value": 500}, customer())
    assert unscored["result"] is False
    assert unscored["fact"] == {"metric": "monetary", "value": None, "missing": True, "scored": False}


def test_a_survey_gives_the_value_and_the_newest_answers():
    """`latest` is the newest scored answer before `now`; comment-only answers do not count."""
    facts = customer(surveys=[SurveyFact("nps", Decimal(6), NOW - 10 * DAY, id=1),
                              SurveyFact("nps", Decimal(9), NOW - 2 * DAY, id=2),
                              SurveyFact("nps", None, NOW - DAY, id=3),
                              SurveyFact("nps", Decimal(0), NOW + DAY, id=4),
                              SurveyFact("csat", Decimal(5), NOW - DAY, id=5)])
    out = one({"type": "survey", "survey": "nps", "measure": "latest", "op": "gte", "value": 9}, facts)
    assert out["summary"] == "latest nps score is at least 9"
    assert out["result"] is True
    assert out["fact"] == {"survey": "nps", "measure": "latest", "question": None, "value": 9, "responses": 2,
                           "samples": [{"id": 2, "responded_at": "2026-06-13T12:00:00Z", "score": 9, "question": ""},
                                       {"id": 1, "responded_at": "2026-06-05T12:00:00Z", "score": 6, "question": ""}]}
    average = one({"type": "survey", "survey": "nps", "measure": "average", "op": "eq", "value": 7.5}, facts)
    assert (average["result"], average["fact"]["value"]) == (True, 7.5)
    count = one({"type": "survey", "survey": "onboarding", "measure": "count", "question": "q1", "op": "eq",
                 "value": 0}, facts)
    assert count["summary"] == "number of onboarding answers for question q1 is 0"
    assert (count["result"], count["fact"]["value"], count["fact"]["question"]) == (True, 0, "q1")


def test_a_segment_reference_gives_the_membership():
    facts = customer(segments={"vip"})
    inside = one({"type": "segment", "segment": "vip", "op": "in"}, facts)
    assert (inside["summary"], inside["result"], inside["fact"]) == ("in segment vip", True,
                                                                   {"segment": "vip", "member": True})
    outside = one({"type": "segment", "segment": "churned", "op": "not_in"}, facts)
    assert (outside["summary"], outside["result"], outside["fact"]["member"]) == ("not in segment churned", True, False)


def test_consent_tells_a_withdrawal_from_no_record():
    """Both match granted false; the fact says which it was."""
    facts = customer(consents={"email": True, "sms": False})
    granted = one({"type": "consent", "channel": "email", "granted": True}, facts)
    assert (granted["summary"], granted["result"], granted["fact"]) == (
        "email consent granted", True, {"channel": "email", "granted": True, "recorded": "granted"})
    withdrawn = one({"type": "consent", "channel": "sms", "granted": False}, facts)
    assert (withdrawn["result"], withdrawn["fact"]["recorded"]) == (True, "withdrawn")
    none = one({"type": "consent", "channel": "push", "granted": False}, facts)
    assert (none["summary"], none["result"], none["fact"]["recorded"]) == ("push consent not granted", True, None)


def test_nested_groups_carry_match_negate_and_both_results():
    """The contract's example: a customer who cancelled is kept out by the negated group."""
    facts = customer(builtin={"country": "CA"}, events=[ev("subscription_cancelled", DAY, id=7)],
                     metrics={"monetary": 900})
    group = root({"type": "trait", "field": "country", "op": "in", "value": ["US", "CA"]},
                 {"match": "any", "negate": True, "conditions": [
                     {"type": "event", "event": "subscription_cancelled", "count": {"op": "gte", "value": 1}}]},
                 {"type": "metric", "metric": "monetary", "op": "gt", "value": 500})
    out = explain(group, facts, now=NOW)
    assert (out["path"], out["kind"], out["match"], out["summary"]) == ("", "group", "all", "all of the following")
    assert [c["result"] for c in out["conditions"]] == [True, False, True]
    inner = out["conditions"][1]
    assert {k: inner[k] for k in ("path", "kind", "match", "negate", "summary", "raw_result", "result")} == {
        "path": "conditions[1]", "kind": "group", "match": "any", "negate": True, "summary": "none of the following",
        "raw_result": True, "result": False}
    assert inner["conditions"][0]["path"] == "conditions[1].conditions[0]"
    assert inner["conditions"][0]["summary"] == "subscription_cancelled at least once"
    assert out["result"] is False and reference.evaluate(group, facts, now=NOW) is False
    negated_root = explain(root({"type": "segment", "segment": "vip", "op": "in"}, match="all", negate=True),
                           facts, now=NOW)
    assert (negated_root["summary"], negated_root["raw_result"], negated_root["result"]) == (
        "not all of the following", False, True)


def test_paths_are_the_parsers_error_paths():
    """A problem the parser reports inside a node sits under the path explain gives it."""
    doc = {"version": 1, "match": "all", "conditions": [
        {"type": "consent", "channel": "email", "granted": True},
        {"match": "any", "conditions": [{"type": "trait", "field": "country", "op": "eq", "value": "US"},
                                        {"type": "metric", "metric": "frequency", "op": "gte", "value": 1}]}]}
    out = explain(parse(doc, REGISTRY)[0], customer(), now=NOW)
    path = out["conditions"][1]["conditions"][1]["path"]
    assert path == "conditions[1].conditions[1]"
    doc["conditions"][1]["conditions"][1]["op"] = "has_any"
    with pytest.raises(RuleError) as caught:
        parse(doc, REGISTRY)
    assert [p.path for p in caught.value.problems] == [path + ".op"]


@pytest.mark.parametrize("condition,summary", [
    ({"type": "trait", "field": "country", "op": "not_in", "value": ["US", "GB"]}, "country is none of US, GB"),
    ({"type": "trait", "field": "country", "op": "in", "value": [f"C{i}" for i in range(12)]},
     "country is one of C0, C1, C2, C3, C4, C5, C6, C7, C8, C9 and 2 more"),
    ({"type": "trait", "field": "plan", "op": "eq", "value": ""}, 'plan is ""'),
    ({"type": "trait", "field": "city", "op": "contains", "value": "mü"}, 'city contains "mü"'),
    ({"type": "trait", "field": "city", "op": "not_contains", "value": "x"}, 'city does not contain "x"'),
    ({"type": "trait", "field": "email", "op": "is_set"}, "email is set"),
    ({"type": "trait", "field": "company_size", "op": "between", "value": [10, 250.50]},
     "company_size is between 10 and 250.5"),
    ({"type": "trait", "field": "annual_revenue", "op": "lte", "value": 1000}, "annual_revenue is at most 1000"),
    ({"type": "trait", "field": "birth_date", "op": "eq", "value": "1990-01-31"}, "birth_date is on 1990-01-31"),
    ({"type": "trait", "field": "signed_up_at", "op": "gt", "value": "2026-01-01T08:00:00+01:00"},
     "signed_up_at is after 2026-01-01T07:00:00Z"),
    ({"type": "trait", "field": "signed_up_at", "op": "lte", "value": "2026-01-31"},
     "signed_up_at is on or before 2026-01-31"),
    ({"type": "trait", "field": "last_seen_at", "op": "more_than_ago", "value": "2w"}, "last_seen_at is more than 14 days ago"),
    ({"type": "trait", "field": "last_seen_at", "op": "within_last", "value": "90m"},
     "last_seen_at is within the last 90 minutes"),
    ({"type": "trait", "field": "tech_stack", "op": "has_none", "value": ["vue"]}, "tech_stack has none of vue"),
    ({"type": "trait", "field": "traits.vip", "op": "neq", "value": False}, "traits.vip is not false"),
    ({"type": "event", "event": "login", "count": {"op": "lt", "value": 2}, "window": {"from": "2026-01-01"}},
     "login fewer than 2 times since 2026-01-01"),
    ({"type": "event", "event": "login", "count": {"op": "in", "value": [1, 2, 3]}}, "login 1, 2 or 3 times"),
    ({"type": "event", "event": "login", "count": {"op": "between", "value": [1, 3]},
      "window": {"from": "2026-01-01", "to": "2026-01-31"}}, "login between 1 and 3 times from 2026-01-01 through 2026-01-31"),
    ({"type": "event", "event": "login", "count": {"op": "eq", "value": 1},
      "window": {"to": "2026-06-15T11:59:59Z"}}, "login exactly once before 2026-06-15T11:59:59Z"),
    ({"type": "event", "event": "purchase", "where": [{"property": "amount", "op": "gte", "value": 10},
                                                      {"property": "coupon", "op": "is_not_set"}],
      "last_occurred": {"op": "before", "value": "2026-01-01"}},
     "last purchase (amount is at least 10 and coupon is not set) before 2026-01-01"),
    ({"type": "event", "event": "purchase", "aggregate": {"fn": "max", "property": "amount", "op": "gte", "value": 1}},
     "maximum amount of purchase is at least 1"),
    ({"type": "sequence", "steps": [{"event": "login", "where": [{"property": "plan", "op": "in", "value": ["pro"]}]},
                                    {"event": "feature_x_used"}, {"event": "purchase"}],
      "within": "48h", "window": {"last": "30d"}},
     "did login (plan is one of pro) → feature_x_used → purchase within 2 days in the last 30 days"),
    ({"type": "metric", "metric": "rfm_segment", "op": "in", "value": ["champions", "loyal"]},
     "rfm_segment is one of champions, loyal"),
    ({"type": "metric", "metric": "churn_risk", "op": "gte", "value": 0.7, "negate": True},
     "not (churn_risk is at least 0.7)"),
    ({"type": "survey", "survey": "csat", "measure": "average", "op": "lte", "value": 3},
     "average csat score is at most 3"),
])
def test_describe_reads_as_a_sentence(condition, summary):
    node = root(condition).conditions[0]
    assert describe(node) == summary
    assert one(condition, customer())["summary"] == summary


def test_survey_count_counts_every_response_and_the_scores_come_from_scored_ones():
    """The contract: `count` counts responses, with or without a score; `latest` and
    `average` read responses that carry a score."""
    facts = customer(surveys=[SurveyFact("nps", Decimal(9), NOW - timedelta(days=3), id=1),
                              SurveyFact("nps", None, NOW - timedelta(days=1), id=2)])  # a comment alone
    assert one({"type": "survey", "survey": "nps", "measure": "count", "op": "eq", "value": 2}, facts)["result"]
    assert one({"type": "survey", "survey": "nps", "measure": "latest", "op": "eq", "value": 9}, facts)["result"]
    assert one({"type": "survey", "survey": "nps", "measure": "average", "op": "eq", "value": 9}, facts)["result"]


def test_an_aggregate_of_a_personal_property_is_personal_and_masked_with_its_samples():
    from common.masking import mask_explain_tree

    facts = customer(events=[ev("paid", timedelta(days=1), 1, salary=90_000), ev("paid", timedelta(days=2), 2, salary=10)])
    condition = {"type": "event", "event": "paid",
                 "aggregate": {"fn": "sum", "property": "salary", "op": "gt", "value": 5}}
    plain = one(condition, facts)
    assert plain["fact"]["pii"] is False and plain["fact"]["value"] == 90_010
    personal = explain(root(condition), facts, now=NOW, pii_properties={"Salary"})  # keys: any case
    masked = mask_explain_tree(personal, other=None)["conditions"][0]["fact"]
    assert personal["conditions"][0]["fact"]["pii"] is True
    assert masked["value"] is None and masked["masked"] is True
    assert [sample["property_value"] for sample in masked["samples"]] == [None, None]
