"""Paths after and before an event: each customer once from their first time in the window,
steps counted by hand, the busiest events kept per step, coded bad input, pages, API, CSV."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from common.errors import DomainError
from customers.models import Customer
from insights.reports.paths import paths_query, paths_report
from segments.services import segment_create, static_members_add
from tests.conftest import make_member, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
DAY, H = timedelta(days=1), timedelta(hours=1)


@pytest.fixture
def site(in_tenant, tenant):
    admin = make_member(tenant, "paths-admin@alpha.test", "admin").memberships.get(tenant=tenant)

    def customer(name, events):
        c = Customer.objects.create(external_id=name)
        for event, ago in events:
            c.events.create(name=event, timestamp=NOW - ago, properties={})
        return c

    return {
        "admin": admin,
        "a": customer("a", [("login", 5 * DAY), ("pricing", 4 * DAY), ("signup_started", 4 * DAY - H),
                            ("plan_chosen", 4 * DAY - 2 * H), ("pricing", 3 * DAY)]),
        "b": customer("b", [("pricing", 2 * DAY), ("signup_started", 2 * DAY - H)]),
        "c": customer("c", [("pricing", 40 * DAY), ("pricing", DAY), ("login", DAY - H), ("login", DAY - 2 * H),
                            ("login", DAY - 3 * H), ("login", DAY - 4 * H)]),
        "d": customer("d", [("login", 3 * DAY)]),
        "e": customer("e", [("pricing", 10 * DAY)]),
    }


def report(**query):
    return paths_report(query=paths_query(**query), now=NOW)


def steps(result):
    return [[(n.event, n.customers) for n in step] for step in result.steps]


def test_next_events_by_hand(site):
    result = report(event="pricing", depth=3)
    assert result.customers == 4  # a b c e; d never saw pricing
    assert steps(result) == [[("signup_started", 2), ("login", 1)], [("login", 1), ("plan_chosen", 1)],
                             [("login", 1), ("pricing", 1)]]
    assert result.ended == [1, 2, 2] and result.steps[0][0].share == 0.5
    assert [(l.step, l.source, l.target, l.customers) for l in result.links] == [
        (1, "pricing", "signup_started", 2), (1, "pricing", "login", 1), (2, "login", "login", 1),
        (2, "signup_started", "plan_chosen", 1), (3, "login", "login", 1), (3, "plan_chosen", "pricing", 1)]


def test_previous_events_stay_inside_the_window(site):
    result = report(event="pricing", direction="previous", depth=2)
    assert steps(result) == [[("login", 1)], []] and result.ended == [3, 4]
    assert report(event="pricing", window={"last": "60d"}, direction="previous", depth=1).steps[0][0].event == "login"


def test_a_segments_paths_and_the_busiest_events_per_step(site, monkeypatch):
    admin = site["admin"]
    some, _ = segment_create(actor=admin, key="some", name="Some", kind="static", now=NOW - 30 * DAY)
    static_members_add(actor=admin, segment=some, customer_ids=[site["a"].pk, site["e"].pk], now=NOW - 20 * DAY)
    scoped = report(event="pricing", segment="some", depth=1)
    assert (scoped.customers, steps(scoped), scoped.segment) == (2, [[("signup_started", 1)]], "Some")
    monkeypatch.setattr("insights.reports.paths.TOP_EVENTS", 1)
    folded = report(event="pricing", depth=2)
    assert steps(folded)[0] == [("signup_started", 2), ("(other)", 1)]
    # step 2: login (first by name of the two seen once) is kept, plan_chosen folds into (other)
    assert {(l.source, l.target) for l in folded.links if l.step == 2} == {("(other)", "login"),
                                                                            ("signup_started", "(other)")}


@pytest.mark.parametrize("query, path, code", [
    ({"event": "*"}, "event", "invalid_value"),
    ({"event": ""}, "event", "invalid_type"),
    ({"event": "pricing", "depth": 6}, "depth", "out_of_range"),
    ({"event": "pricing", "depth": 0}, "depth", "out_of_range"),
    ({"event": "pricing", "direction": "sideways"}, "direction", "invalid_choice"),
    ({"event": "pricing", "window": {"last": "0d"}}, "window.last", "invalid_duration"),
    ({"event": "pricing", "window": {"from": "2026-12-01", "to": "2026-01-01"}}, "window", "invalid_range"),
    ({"event": "pricing", "segment": "ghost"}, "segment", "unknown_segment"),
    ({"event": "a\x00b"}, "", "null_characters_not_allowed"),
])
def test_bad_paths_queries_are_coded_at_their_path(site, query, path, code):
    with pytest.raises(DomainError) as raised:
        paths_query(**query)
    assert code in [p.code for p in raised.value.problems]
    assert path in [p.path for p in raised.value.problems] or path == ""


def test_no_events_is_an_empty_report(in_tenant):
    result = report(event="pricing")
    assert result.customers == 0 and steps(result) == [[], [], []] and result.ended == [0, 0, 0]
    assert result.warnings[0]["path"] == "event"


PAGE = "/insights/reports/paths/?event=pricing&direction=next&depth=3&period=30d"




def test_the_api_page_and_csv_agree(site, tenant, at_now):
    connection.set_schema_to_public()
    analyst = session(tenant, "analyst")
    body = analyst.get("/api/v1/insights/reports/paths/?event=pricing&depth=3").json()
    assert body["customers"] == 4 and body["steps"][0][0] == {"event": "signup_started", "customers": 2, "share": 0.5}
    page = analyst.get(PAGE)
    assert page.status_code == 200 and b'data-testid="paths-chart"' in page.content
    assert b'data-testid="paths-steps"' in page.content and b"50.0%" in page.content
    csv = analyst.get(PAGE.replace("/paths/?", "/paths.csv?"))
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert lines[0] == "Step,Event,Customers,Share" and lines[1] == "1,signup_started,2,0.5"
    assert "1,(path ended),1,0.25" in lines


def test_bad_queries_are_400s_and_viewers_do_not_export(site, tenant, at_now):
    connection.set_schema_to_public()
    viewer = session(tenant, "viewer")
    bad = viewer.get("/api/v1/insights/reports/paths/?event=pricing&depth=9&direction=up")
    assert bad.status_code == 400 and {e["path"] for e in bad.json()["errors"]} == {"depth", "direction"}
    assert viewer.get(PAGE + "&segment=ghost").status_code == 400
    assert viewer.get(PAGE.replace("/paths/?", "/paths.csv?")).status_code == 403
