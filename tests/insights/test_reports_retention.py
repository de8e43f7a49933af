"""Retention: a weekly and a monthly triangle and their curves worked out by hand, cohorts
by sign-up or by a first event, returns on an event or any, segments compared, coded bad
input, pages, API and CSV."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.db import connection

from common.errors import DomainError
from customers.models import Customer, EventDefinition
from insights.reports.periods import period_start, shift
from insights.reports.retention import retention_query, retention_report
from segments.services import segment_create, static_members_add
from tests.conftest import make_member, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)  # a Monday


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


@pytest.fixture
def app(in_tenant, tenant):
    admin = make_member(tenant, "retention-admin@alpha.test", "admin").memberships.get(tenant=tenant)

    def customer(name, signed, events, hour=12):
        c = Customer.objects.create(external_id=name, signed_up_at=at(signed, hour))
        c.events.create(name="user_signed_up", timestamp=at(signed, hour), properties={})
        for event, when in events:
            c.events.create(name=event, timestamp=when, properties={})
        return c

    people = {
        "a": customer("a", "2026-11-03", [("login", at("2026-11-10")), ("login", at("2026-11-11")),
                                          ("login", at("2026-11-20"))]),
        "b": customer("b", "2026-11-04", [("login", at("2026-11-04", 18)), ("login", at("2026-11-17")),
                                          ("page_viewed", at("2026-11-12"))]),
        "c": customer("c", "2026-11-10", [("login", at("2026-11-16")), ("login", at("2026-11-23", 13))]),  # 2nd: after now
        "d": customer("d", "2026-10-20", [("user_signed_up", at("2026-11-12"))]),  # first sign-up before the cohorts
        "e": customer("e", "2026-11-23", [("login", at("2026-11-23", 9))], hour=8),
    }
    for name in ("user_signed_up", "login", "page_viewed"):
        EventDefinition.objects.get_or_create(name=name, defaults={"first_seen_at": NOW, "last_seen_at": NOW})
    return {"admin": admin, **people}


def report(**query):
    return retention_report(query=retention_query(**query), now=NOW)


def test_periods_are_utc_calendar_weeks_and_months():
    assert period_start(at("2026-11-23", 11), "week") == at("2026-11-23", 0)
    assert period_start(at("2026-11-22", 23), "week") == at("2026-11-16", 0)
    assert period_start(at("2026-11-22", 23), "month") == at("2026-11-01", 0)
    assert shift(at("2026-01-01", 0), "month", -2) == at("2025-11-01", 0)
    assert shift(at("2026-11-01", 0), "month", 2) == at("2027-01-01", 0)


def test_a_weekly_triangle_and_its_curve_by_hand(app):
    result = report(start_event="user_signed_up", return_event="login", period="week", cohorts=4)
    everyone = result.groups[0]
    assert [(c.start, c.size, c.returned) for c in everyone.cohorts] == [
        ("2026-11-02", 2, [1, 2, 0]), ("2026-11-09", 1, [1, 0]), ("2026-11-16", 0, [0]), ("2026-11-23", 1, [])]
    assert everyone.cohorts[0].rates == [0.5, 1.0, 0.0] and everyone.cohorts[2].rates == [None]
    assert everyone.curve == [1.0, round(2 / 3, 4), round(2 / 3, 4), 0.0]
    assert everyone.customers == 4 and result.first_cohort == at("2026-11-02", 0)


def test_cohorts_by_sign_up_and_returns_on_any_event(app):
    by_column = report(start_event=None, return_event="login", period="week", cohorts=4)
    by_event = report(start_event="user_signed_up", return_event="login", period="week", cohorts=4)
    assert by_column.groups[0].cohorts == by_event.groups[0].cohorts
    anything = report(start_event="user_signed_up", return_event="*", period="week", cohorts=4)
    assert anything.groups[0].cohorts[0].returned == [2, 2, 0]  # b's page view in week 1 counts too


def test_a_monthly_triangle(app):
    result = report(start_event="user_signed_up", return_event="login", period="month", cohorts=2)
    assert [(c.start, c.size, c.returned) for c in result.groups[0].cohorts] == [
        ("2026-10-01", 1, [0]), ("2026-11-01", 4, [])]


def test_a_segment_and_compared_segments(app):
    admin = app["admin"]
    early, _ = segment_create(actor=admin, key="early", name="Early", kind="static", now=at("2026-10-01"))
    static_members_add(actor=admin, segment=early, customer_ids=[app["a"].pk, app["c"].pk], now=at("2026-11-01"))
    result = report(start_event="user_signed_up", return_event="login", cohorts=4, compare=["early"])
    assert [g.key for g in result.groups] == ["all", "early"]
    assert result.groups[1].label == "Early" and result.groups[1].curve == [1.0, 1.0, 0.5, 0.0]
    scoped = report(start_event="user_signed_up", return_event="login", cohorts=4, segment="early")
    assert scoped.groups[0].label == "Early" and scoped.groups[0].customers == 2


def test_a_workspace_without_events_has_empty_cohorts(in_tenant):
    result = report(start_event="user_signed_up", return_event="login", cohorts=3)
    assert [c.size for c in result.groups[0].cohorts] == [0, 0, 0] and result.groups[0].curve == [None, None, None]
    assert {w["path"] for w in result.warnings} == {"start_event", "return_event"}  # nothing has arrived


@pytest.mark.parametrize("query, path, code", [
    ({"start_event": "*"}, "start_event", "invalid_value"),
    ({"start_event": ""}, "start_event", "invalid_type"),
    ({"return_event": 5}, "return_event", "invalid_type"),
    ({"return_event": "a\x00"}, "return_event", "null_characters_not_allowed"),
    ({"period": "day"}, "period", "invalid_choice"),
    ({"cohorts": 25}, "cohorts", "out_of_range"),
    ({"period": "month", "cohorts": 13}, "cohorts", "out_of_range"),
    ({"cohorts": 0}, "cohorts", "out_of_range"),
    ({"cohorts": "4"}, "cohorts", "out_of_range"),
    ({"segment": "ghost"}, "segment", "unknown_segment"),
    ({"compare": ["ghost"]}, "compare[0]", "unknown_segment"),
    ({"compare": [f"s{i}" for i in range(11)]}, "compare", "too_many"),
    ({"compare": "early"}, "compare", "invalid_type"),
])
def test_bad_retention_queries_are_coded_at_their_path(app, query, path, code):
    with pytest.raises(DomainError) as raised:
        retention_query(**query)
    assert (path, code) in [(p.path, p.code) for p in raised.value.problems]


def test_the_cache_answers_until_an_event_arrives(app):
    query = retention_query(start_event="user_signed_up", return_event="login", cohorts=4)
    assert retention_report(query=query, now=NOW).groups[0].cohorts[1].returned == [1, 0]
    app["c"].events.create(name="login", timestamp=at("2026-11-23", 10), properties={})
    assert retention_report(query=query, now=NOW).groups[0].cohorts[1].returned == [1, 1]


# ---------------------------------------------------------------------- pages and API

PAGE = "/insights/reports/retention/?start_event=user_signed_up&return_event=login&period=week&cohorts=4"




def test_the_api_page_and_csv_agree(app, tenant, at_now):
    connection.set_schema_to_public()
    analyst = session(tenant, "analyst")
    body = analyst.get("/api/v1/insights/reports/retention/?start_event=user_signed_up&return_event=login"
                       "&period=week&cohorts=4").json()
    assert body["groups"][0]["cohorts"][0] == {"start": "2026-11-02", "size": 2, "returned": [1, 2, 0],
                                               "rates": [0.5, 1.0, 0.0]}
    page = analyst.get(PAGE)
    assert page.status_code == 200 and b'data-testid="retention-triangle"' in page.content
    assert b"50.0%" in page.content and b'data-testid="retention-chart"' in page.content
    csv = analyst.get(PAGE.replace("/retention/?", "/retention.csv?"))
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert lines[0] == "Group,Cohort,Customers,Period 1,Period 2,Period 3"
    assert lines[1] == "All customers,2026-11-02,2,0.5,1.0,0.0"


def test_bad_queries_are_400s_and_viewers_do_not_export(app, tenant, other_tenant, at_now):
    connection.set_schema_to_public()
    viewer = session(tenant, "viewer")
    bad = viewer.get("/api/v1/insights/reports/retention/?period=day&cohorts=x")
    assert bad.status_code == 400 and {e["path"] for e in bad.json()["errors"]} == {"period", "cohorts"}
    assert viewer.get(PAGE + "&segment=ghost").status_code == 400
    assert viewer.get(PAGE.replace("/retention/?", "/retention.csv?")).status_code == 403
    connection.set_tenant(tenant)
    segment_create(actor=app["admin"], key="mine", name="Mine", kind="static", now=NOW)
    connection.set_schema_to_public()
    stranger = session(other_tenant, "admin")
    assert stranger.get("/api/v1/insights/reports/retention/?segment=mine").json()["errors"][0]["code"] == \
        "unknown_segment"
