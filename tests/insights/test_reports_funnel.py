"""Funnels: counts, conversions and step times worked out by hand; the same customers as
the rule language's sequences (hypothesis, against the reference evaluator); drop-off
segments with exactly the funnel's count; breakdowns; coded bad input; the cache."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import DomainError, Forbidden
from customers.models import Customer
from insights.reports.funnel import dropoff_definition, funnel_query, funnel_report
from insights.reports.dropoffs import dropoff_segment_create
from segments.engine import evaluate
from segments.models import Membership, SegmentEvaluation
from segments.rules import reference
from segments.rules.parse import parse
from segments.selectors.facts import customer_facts, segment_keys_at
from segments.services import segment_create, static_members_add
from tests.conftest import make_member, session
from tests.segments.rules.strategies import NOW as WORLD_NOW
from tests.segments.rules.strategies import sequence_condition, worlds
from tests.segments.rules.test_equivalence import REGISTRY, store

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
H = timedelta(hours=1)
DAY = timedelta(days=1)
STEPS = [{"event": "signed_up"}, {"event": "project_created"}, {"event": "invite_sent"}]


@pytest.fixture
def product(in_tenant, tenant):
    admin = make_member(tenant, "funnel-admin@alpha.test", "admin").memberships.get(tenant=tenant)

    def customer(name, events, **traits):
        c = Customer.objects.create(external_id=name, **traits)
        for event, ago, *props in events:
            c.events.create(name=event, timestamp=NOW - ago, properties=props[0] if props else {})
        return c

    people = {
        # all three steps: 2 h to a project, 10 h more to an invite
        "a": customer("a", [("signed_up", 20 * DAY), ("project_created", 20 * DAY - 2 * H),
                            ("invite_sent", 20 * DAY - 12 * H)], country="FR", plan="pro"),
        # a project 4 h after, then no invite
        "b": customer("b", [("signed_up", 10 * DAY), ("project_created", 10 * DAY - 4 * H)], country="FR"),
        # the project came 8 days later: outside the 7-day conversion window
        "c": customer("c", [("signed_up", 25 * DAY), ("project_created", 17 * DAY)], country="DE"),
        # a second sign-up restarts the chain: the first one fails, the second reaches step 3
        "d": customer("d", [("signed_up", 28 * DAY), ("signed_up", 5 * DAY), ("project_created", 5 * DAY - 6 * H),
                            ("invite_sent", 5 * DAY - 8 * H)]),
        # steps in the wrong order reach step 1 only
        "e": customer("e", [("project_created", 3 * DAY), ("signed_up", 2 * DAY)], country="DE"),
        # signed up before the 30-day period: not in the funnel at all
        "f": customer("f", [("signed_up", 40 * DAY), ("project_created", 40 * DAY - H)]),
    }
    return {"admin": admin, **people}


def run(**query):
    return funnel_report(query=funnel_query(**query), now=NOW)


def test_counts_conversions_drop_offs_and_times_by_hand(product):
    report = run(steps=STEPS, within="7d", window={"last": "30d"})
    one, two, three = report.overall.steps
    assert [s.reached for s in report.overall.steps] == [5, 3, 2]  # a b c d e; a b d; a d
    assert (two.conversion, two.from_previous, two.dropped) == (0.6, 0.6, 2)
    assert (three.conversion, three.from_previous, three.dropped) == (0.4, round(2 / 3, 4), 1)
    assert one.dropped == 0 and one.from_previous is None
    # step 2 after 2 h (a), 4 h (b), 6 h (d): median 4 h; p90 interpolated 5.6 h
    assert (two.median_seconds, two.p90_seconds) == (4 * 3600, 5.6 * 3600)
    # step 3 after 10 h (a) and 2 h (d); first to last 12 h and 8 h
    assert three.median_seconds == 6 * 3600 and report.overall.median_total_seconds == 10 * 3600
    assert report.within_seconds == 7 * 86400 and report.end == NOW and report.start == NOW - 30 * DAY


def test_a_shorter_window_or_conversion_window_counts_fewer(product):
    assert [s.reached for s in run(steps=STEPS, within="3h").overall.steps] == [5, 1, 0]  # only a in 3 h
    assert [s.reached for s in run(steps=STEPS, window={"last": "7d"}).overall.steps] == [2, 1, 1]  # d e


def test_property_filters_on_steps(product):
    product["a"].events.create(name="plan_chosen", timestamp=NOW - 20 * DAY + H, properties={"plan": "pro"})
    product["b"].events.create(name="plan_chosen", timestamp=NOW - 10 * DAY + H, properties={"plan": "free"})
    steps = [{"event": "signed_up"}, {"event": "plan_chosen", "where": [{"property": "plan", "op": "eq", "value": "pro"}]}]
    report = run(steps=steps)
    assert [s.reached for s in report.overall.steps] == [5, 1]
    assert report.overall.steps[1].label == "plan_chosen where plan eq “pro”"


def test_a_segments_funnel_and_a_breakdown_by_segments(product):
    admin = product["admin"]
    french, _ = segment_create(actor=admin, key="french", name="French", kind="static", now=NOW - 60 * DAY)
    static_members_add(actor=admin, segment=french, customer_ids=[product["a"].pk, product["b"].pk], now=NOW - 50 * DAY)
    later, _ = segment_create(actor=admin, key="later", name="Later", kind="static", now=NOW - 60 * DAY)
    static_members_add(actor=admin, segment=later, customer_ids=[product["d"].pk], now=NOW + DAY)  # not yet at NOW
    report = run(steps=STEPS, segment="french")
    assert report.overall.label == "French" and [s.reached for s in report.overall.steps] == [2, 2, 1]
    by = run(steps=STEPS, breakdown={"segments": ["later", "french"]})
    assert [g.key for g in by.groups] == ["later", "french"] and by.breakdown == "segments"
    assert [s.reached for s in by.groups[0].steps] == [0, 0, 0] and by.groups[0].steps[1].conversion is None
    assert [s.reached for s in by.groups[1].steps] == [2, 2, 1]


def test_a_breakdown_by_a_trait_keeps_the_busiest_values_and_the_unset(product, monkeypatch):
    report = run(steps=STEPS, breakdown={"trait": "country"})
    assert [(g.key, [s.reached for s in g.steps]) for g in report.groups] == [
        ("DE", [2, 0, 0]), ("FR", [2, 2, 1]), ("(not set)", [1, 1, 1])]
    monkeypatch.setattr("insights.reports.funnel.TOP_VALUES", 1)
    report = run(steps=STEPS, within="6d", breakdown={"trait": "country"})
    assert [g.key for g in report.groups] == ["DE", "(other)", "(not set)"]


def test_drop_offs_make_a_segment_with_exactly_the_funnels_count(product):
    query = funnel_query(steps=STEPS, within="7d", window={"last": "30d"})
    report = funnel_report(query=query, now=NOW)
    for step, expected in ((2, {"c", "e"}), (3, {"b"})):
        segment = dropoff_segment_create(actor=product["admin"], query=query, step=step, key=f"drop-{step}",
                                         name=None, now=NOW)
        evaluate(segment_id=segment.pk, now=NOW, trigger=SegmentEvaluation.Trigger.MANUAL, clock=lambda: NOW)
        members = set(Membership.objects.filter(segment=segment, exited_at__isnull=True)
                      .values_list("customer__external_id", flat=True))
        assert members == expected and len(members) == report.overall.steps[step - 1].dropped
    assert segment.name == "Dropped before invite_sent"
    assert segment.definition["conditions"][1] == {"type": "sequence", "steps": STEPS, "within": "7d",
                                                   "window": {"last": "30d"}, "negate": True}


def test_drop_offs_of_a_segments_funnel_stay_in_the_segment(product):
    admin = product["admin"]
    french, _ = segment_create(actor=admin, key="french", name="French", kind="static", now=NOW - 60 * DAY)
    static_members_add(actor=admin, segment=french, customer_ids=[product["b"].pk], now=NOW - 50 * DAY)
    query = funnel_query(steps=STEPS, segment="french")
    assert dropoff_definition(query, 3)["conditions"][2] == {"type": "segment", "segment": "french", "op": "in"}
    assert dropoff_definition(query, 2)["conditions"][0]["type"] == "event"


def test_drop_off_segments_need_segments_edit_and_a_step_in_range(product, tenant):
    query = funnel_query(steps=STEPS)
    viewer = make_member(tenant, "funnel-viewer@alpha.test", "viewer").memberships.get(tenant=tenant)
    with pytest.raises(Forbidden):
        dropoff_segment_create(actor=viewer, query=query, step=2, key="x", name=None, now=NOW)
    for step in (1, 4, "2", True):
        with pytest.raises(DomainError) as raised:
            dropoff_segment_create(actor=product["admin"], query=query, step=step, key="x", name=None, now=NOW)
        assert (raised.value.problems[0].path, raised.value.problems[0].code) == ("step", "out_of_range")
    with pytest.raises(DomainError) as raised:
        dropoff_segment_create(actor=product["admin"], query=query, step=2, key="bad key!", name=None, now=NOW)
    assert raised.value.problems[0].path == "key"


@pytest.mark.parametrize("query, path, code", [
    ({"steps": [{"event": "a"}]}, "steps", "invalid_value"),
    ({"steps": [{"event": "a"}] * 11}, "steps", "too_many"),
    ({"steps": "a,b"}, "steps", "invalid_type"),
    ({"steps": [{"event": "a"}, {"event": "*"}]}, "steps[1].event", "invalid_value"),
    ({"steps": [{"event": "a"}, {"event": "b", "where": [{"property": "x", "op": "gt", "value": "y"}]}]},
     "steps[1].where[0].value", "invalid_value"),
    ({"steps": [{"event": "a"}, {"event": "b", "colour": 1}]}, "steps[1].colour", "unknown_field"),
    ({"steps": STEPS, "within": "0d"}, "within", "invalid_duration"),
    ({"steps": STEPS, "within": "4000d"}, "within", "invalid_duration"),
    ({"steps": STEPS, "window": {"last": "9999d"}}, "window.last", "invalid_duration"),
    ({"steps": STEPS, "window": {"from": "2026-02-01", "to": "2026-01-01"}}, "window", "invalid_range"),
    ({"steps": STEPS, "segment": "ghost"}, "segment", "unknown_segment"),
    ({"steps": STEPS, "segment": "a\x00"}, "segment", "null_characters_not_allowed"),
    ({"steps": STEPS, "breakdown": {"trait": "email"}}, "breakdown.trait", "invalid_value"),
    ({"steps": STEPS, "breakdown": {"trait": "company_size"}}, "breakdown.trait", "invalid_value"),
    ({"steps": STEPS, "breakdown": {"trait": "traits.nope"}}, "breakdown.trait", "unknown_trait"),
    ({"steps": STEPS, "breakdown": {"segments": [f"s{i}" for i in range(11)]}}, "breakdown.segments", "too_many"),
    ({"steps": STEPS, "breakdown": {"segments": ["ghost"]}}, "breakdown.segments[0]", "unknown_segment"),
    ({"steps": STEPS, "breakdown": {"colour": "red"}}, "breakdown", "invalid_value"),
])
def test_bad_funnels_are_coded_at_their_path(product, query, path, code):
    with pytest.raises(DomainError) as raised:
        funnel_query(**query)
    assert (path, code) in [(p.path, p.code) for p in raised.value.problems]


def test_unknown_events_are_warnings(product):
    report = run(steps=[{"event": "signed_up"}, {"event": "never_seen"}])
    assert {"path": "steps[1].event", "code": "unknown_event",
            "message": "No “never_seen” event has arrived yet; the condition matches once it does."} in report.warnings
    assert [s.reached for s in report.overall.steps] == [5, 0]


def test_a_workspace_without_events_has_an_empty_funnel(in_tenant):
    report = run(steps=STEPS)
    assert [s.reached for s in report.overall.steps] == [0, 0, 0] and report.overall.median_total_seconds is None


def test_the_cache_answers_until_an_event_arrives(product, django_assert_max_num_queries):
    query = funnel_query(steps=STEPS)
    assert funnel_report(query=query, now=NOW).overall.steps[2].reached == 2
    with django_assert_max_num_queries(1):  # the fingerprint only
        funnel_report(query=query, now=NOW + timedelta(seconds=20))
    product["b"].events.create(name="invite_sent", timestamp=NOW - 9 * DAY, properties={})
    assert funnel_report(query=query, now=NOW).overall.steps[2].reached == 3


# ---------------------------------------------------------------------- the rule language's meaning


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(), node=sequence_condition(), data=st.data())
def test_reaching_step_k_is_the_sequence_of_the_first_k_steps(in_tenant, world, node, data):
    """For generated worlds and funnels: the customers counted at step k are exactly those
    the reference evaluator matches with a sequence of the first k steps (k = 1: the
    first step's event in the window)."""
    node.setdefault("window", {"last": "400d"})
    with transaction.atomic():
        ids = store(world)
        query = funnel_query(steps=node["steps"], within=node["within"], window=node["window"])
        report = funnel_report(query=query, now=WORLD_NOW)
        facts = customer_facts(customer_ids=ids, segment_keys_at=segment_keys_at(customer_ids=ids, now=WORLD_NOW))
        for k in range(1, len(node["steps"]) + 1):
            steps = node["steps"][:k]
            doc = {"version": 1, "match": "all", "conditions": [
                {"type": "sequence", "steps": steps, "within": node["within"], "window": node["window"]} if k > 1 else
                {"type": "event", "event": steps[0]["event"], "where": steps[0].get("where", []),
                 "window": node["window"], "count": {"op": "gte", "value": 1}}]}
            group, _ = parse(doc, REGISTRY)
            expected = sum(reference.evaluate(group, fact, now=WORLD_NOW) for fact in facts.values())
            assert report.overall.steps[k - 1].reached == expected, (k, node)
        transaction.set_rollback(True)
    assert connection.schema_name != "public"


# ---------------------------------------------------------------------- pages and API

PAGE = ("/insights/reports/funnel/?step=signed_up&step=project_created&step=invite_sent"
        "&where_property=&where_property=&where_property=&where_op=eq&where_op=eq&where_op=eq"
        "&where_value=&where_value=&where_value=&within=7d&period=30d")




def test_the_page_parses_its_filters_into_the_rule_languages_where():
    from django.http import QueryDict

    from insights.reports.views.funnel import funnel_input

    params = QueryDict("step=a&step=b&step=c&where_property=&where_property=plan&where_property=n"
                       "&where_op=eq&where_op=in&where_op=gte&where_value=&where_value=pro,free&where_value=2.5"
                       "&within=1d&period=custom&from=2026-01-01&by=trait&by_trait=country")
    assert funnel_input(params) == {
        "steps": [{"event": "a"}, {"event": "b", "where": [{"property": "plan", "op": "in", "value": ["pro", "free"]}]},
                  {"event": "c", "where": [{"property": "n", "op": "gte", "value": 2.5}]}],
        "within": "1d", "window": {"from": "2026-01-01"}, "segment": None, "breakdown": {"trait": "country"}}


def test_the_api_page_and_csv_agree(product, tenant, at_now):
    connection.set_schema_to_public()
    analyst = session(tenant, "analyst")
    body = analyst.post("/api/v1/insights/reports/funnel/", {"steps": STEPS, "within": "7d"},
                        content_type="application/json").json()
    assert [s["reached"] for s in body["overall"]["steps"]] == [5, 3, 2]
    assert body["overall"]["steps"][1]["median_seconds"] == 4 * 3600 and body["end"] == NOW.isoformat()
    page = analyst.get(PAGE)
    assert page.status_code == 200 and b'data-testid="funnel-table"' in page.content
    assert b"4.0 h" in page.content and b"dropoff-segment-2" in page.content  # analysts make segments of drop-offs
    viewed = session(tenant, "viewer").get(PAGE)
    assert b"4.0 h" in viewed.content and b"dropoff-segment-2" not in viewed.content  # viewers do not
    csv = analyst.get(PAGE.replace("/funnel/?", "/funnel.csv?"))
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert lines[0].startswith("Group,Step,Event,Reached") and lines[2] == "All customers,2,project_created,3,0.6,0.6,2,14400.0,20160.0"


def test_a_marketer_makes_a_segment_of_the_drop_offs_in_one_click(product, tenant, at_now):
    connection.set_schema_to_public()
    marketer = session(tenant, "marketer")
    page = marketer.get(PAGE)
    assert b'data-testid="dropoff-segment-3"' in page.content
    query = PAGE.split("?", 1)[1]
    response = marketer.post("/insights/reports/funnel/dropoffs/", {"query": query, "step": "3"})
    assert response.status_code == 302 and response["Location"].endswith("/segments/dropped-before-invite_sent/")
    again = marketer.post("/insights/reports/funnel/dropoffs/", {"query": query, "step": "3"})
    assert again["Location"].endswith("/segments/dropped-before-invite_sent-2/")
    refused = marketer.post("/insights/reports/funnel/dropoffs/", {"query": query, "step": "1"})
    assert refused.status_code == 302 and "/insights/reports/funnel/?" in refused["Location"]
    connection.set_tenant(tenant)
    from segments.models import Segment

    assert Segment.objects.filter(key__startswith="dropped-before").count() == 2


def test_the_api_makes_drop_off_segments_and_codes_bad_input(product, tenant, at_now):
    connection.set_schema_to_public()
    marketer = session(tenant, "marketer")
    created = marketer.post("/api/v1/insights/reports/funnel/dropoffs/",
                            {"funnel": {"steps": STEPS}, "step": 2, "key": "no-project"}, content_type="application/json")
    assert created.status_code == 201 and created.json()["key"] == "no-project"
    bad = marketer.post("/api/v1/insights/reports/funnel/dropoffs/",
                        {"funnel": {"steps": [{"event": "a"}]}, "step": 2, "key": "x"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "funnel.steps"
    bad = marketer.post("/api/v1/insights/reports/funnel/",
                        {"steps": STEPS, "within": "0d", "colour": 1}, content_type="application/json")
    assert bad.status_code == 400 and {e["path"] for e in bad.json()["errors"]} == {"colour"}
    bad = marketer.post("/api/v1/insights/reports/funnel/", {"steps": STEPS, "within": "0d"},
                        content_type="application/json")
    assert bad.json()["errors"][0]["path"] == "within" and bad.json()["errors"][0]["code"] == "invalid_duration"
    page = marketer.get(PAGE + "&segment=ghost")
    assert page.status_code == 400 and b'data-code="unknown_segment"' in page.content


def test_viewers_read_funnels_only_and_another_workspace_sees_no_segment(product, tenant, other_tenant, at_now):
    connection.set_schema_to_public()
    viewer = session(tenant, "viewer")
    assert viewer.post("/api/v1/insights/reports/funnel/", {"steps": STEPS},
                       content_type="application/json").status_code == 200
    assert viewer.post("/api/v1/insights/reports/funnel/dropoffs/", {"funnel": {"steps": STEPS}, "step": 2, "key": "v"},
                       content_type="application/json").status_code == 403
    assert viewer.get(PAGE.replace("/funnel/?", "/funnel.csv?")).status_code == 403
    connection.set_tenant(tenant)
    segment_create(actor=product["admin"], key="mine", name="Mine", kind="static", now=NOW)
    connection.set_schema_to_public()
    stranger = session(other_tenant, "admin")
    refused = stranger.post("/api/v1/insights/reports/funnel/", {"steps": STEPS, "segment": "mine"},
                            content_type="application/json")
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "unknown_segment"
