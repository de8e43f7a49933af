"""KPI trends per week (and day): members at each period's end, their activity, revenue,
ARPU, conversion and NPS in the period, worked out by hand; coded bad input; pages, API."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.db import connection

from common.errors import DomainError
from customers.models import Customer, MetricsSettings, Survey, SurveyResponse
from insights.reports.trends import trend_query, trend_report
from segments.services import segment_create, static_members_add
from tests.conftest import make_member, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)  # a Monday


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


@pytest.fixture
def shop(in_tenant, tenant):
    MetricsSettings.objects.create(revenue_event="purchase", revenue_property="amount")
    admin = make_member(tenant, "trends-admin@alpha.test", "admin").memberships.get(tenant=tenant)
    a = Customer.objects.create(external_id="a", signed_up_at=at("2026-10-01"))
    b = Customer.objects.create(external_id="b", signed_up_at=at("2026-10-01"))
    c = Customer.objects.create(external_id="c", signed_up_at=at("2026-11-20"))
    a.events.create(name="purchase", timestamp=at("2026-11-10"), properties={"amount": 100})
    a.events.create(name="login", timestamp=at("2026-11-17"), properties={})
    b.events.create(name="purchase", timestamp=at("2026-11-12"), properties={"amount": 50})
    b.events.create(name="login", timestamp=at("2026-11-19"), properties={})
    c.events.create(name="login", timestamp=at("2026-11-23", 10), properties={})
    nps = Survey.objects.get(key="nps")
    SurveyResponse.objects.create(customer=a, survey=nps, score=10, responded_at=at("2026-11-17"))
    SurveyResponse.objects.create(customer=b, survey=nps, score=3, responded_at=at("2026-11-20"))
    csat = Survey.objects.get(key="csat")
    SurveyResponse.objects.create(customer=a, survey=csat, score=5, responded_at=at("2026-11-18"))
    SurveyResponse.objects.create(customer=b, survey=csat, score=2, responded_at=at("2026-11-19"))
    vip, _ = segment_create(actor=admin, key="vip", name="VIPs", kind="static", now=at("2026-10-01"))
    static_members_add(actor=admin, segment=vip, customer_ids=[a.pk], now=at("2026-11-01"))
    static_members_add(actor=admin, segment=vip, customer_ids=[b.pk], now=at("2026-11-18"))
    return {"admin": admin, "a": a, "vip": vip}


def report(**query):
    return trend_report(query=trend_query(**query), now=NOW)


def test_weekly_trends_by_hand(shop):
    result = report(segments=["vip"], interval="week", periods=3, conversion="login")
    assert result.periods == ["2026-11-09", "2026-11-16", "2026-11-23"]
    vip, everyone = result.series
    assert (vip.key, vip.name, everyone.key) == ("vip", "VIPs", "all")
    assert vip.members == [1, 2, 2] and everyone.members == [2, 3, 3]
    # b's purchase on the 12th is not the segment's: b joined on the 18th
    assert vip.revenue == [100.0, 0.0, 0.0] and everyone.revenue == [150.0, 0.0, 0.0]
    assert vip.active == [1.0, 1.0, 0.0] and everyone.active == [1.0, round(2 / 3, 4), round(1 / 3, 4)]
    assert vip.conversion == [0.0, 1.0, 0.0]
    assert vip.arpu[0] == round(100 / 1 / (7 / (365.25 / 12)), 2)
    assert (vip.nps, vip.nps_answers) == ([None, 0.0, None], [0, 2, 0])
    assert vip.csat == [None, 3.5, None] and everyone.csat == [None, 3.5, None]


def test_daily_trends_and_the_running_period(shop):
    result = report(segments=["vip"], interval="day", periods=2)
    assert result.periods == ["2026-11-22", "2026-11-23"] and result.series[1].active == [0.0, round(1 / 3, 4)]
    assert result.series[1].arpu == [0.0, 0.0]


def test_no_segment_is_all_customers_only(shop):
    result = report(segments=[], interval="month", periods=2)
    assert [s.key for s in result.series] == ["all"] and result.series[0].members == [2, 3]


@pytest.mark.parametrize("query, path, code", [
    ({"segments": "vip"}, "segments", "invalid_type"),
    ({"segments": ["ghost"]}, "segments[0]", "unknown_segment"),
    ({"segments": [f"s{i}" for i in range(11)]}, "segments", "too_many"),
    ({"segments": [], "interval": "year"}, "interval", "invalid_choice"),
    ({"segments": [], "interval": "day", "periods": 91}, "periods", "out_of_range"),
    ({"segments": [], "periods": 0}, "periods", "out_of_range"),
    ({"segments": [], "conversion": "a\x00"}, "conversion", "null_characters_not_allowed"),
])
def test_bad_trend_queries_are_coded_at_their_path(shop, query, path, code):
    with pytest.raises(DomainError) as raised:
        trend_query(**query)
    assert (path, code) in [(p.path, p.code) for p in raised.value.problems]




def test_the_api_page_and_csv_agree(shop, tenant, at_now):
    connection.set_schema_to_public()
    viewer = session(tenant, "viewer")
    body = viewer.get("/api/v1/insights/reports/trends/?segments=vip&interval=week&periods=3").json()
    assert body["series"][0]["members"] == [1, 2, 2]
    page = viewer.get("/insights/reports/trends/?segments=vip&interval=week&periods=3&metric=active")
    assert page.status_code == 200 and b'data-testid="trend-chart"' in page.content and b"100.0%" in page.content
    assert viewer.get("/insights/reports/trends.csv?segments=vip").status_code == 403
    analyst = session(tenant, "analyst")
    csv = analyst.get("/insights/reports/trends.csv?segments=vip&interval=week&periods=3&features=login")
    lines = b"".join(csv.streaming_content).decode().splitlines()
    header = lines[0].split(",")
    assert header[:5] == ["Group", "Period", "Members at the period's end", "Share of all customers",
                          "Growth over the previous period"]
    assert "Churn rate" in header and "NPS answers" in header and "Used “login” in the period" in header
    first = dict(zip(header, lines[1].split(",")))
    assert (first["Group"], first["Period"], first["Members at the period's end"], first["Revenue"]) == \
        ("VIPs", "2026-11-09", "1", "100.0")
    bad = viewer.get("/api/v1/insights/reports/trends/?segments=ghost&interval=year")
    assert bad.status_code == 400 and {e["path"] for e in bad.json()["errors"]} == {"segments[0]", "interval"}


def test_the_segment_pages_trend_panel(shop, tenant, other_tenant, at_now):
    connection.set_schema_to_public()
    viewer = session(tenant, "viewer")
    panel = viewer.get("/insights/reports/trends/segments/vip/")
    assert panel.status_code == 200 and b'data-testid="segment-trend-chart"' in panel.content
    assert b"2026-11-23" in panel.content and b"100.0%" in panel.content
    assert viewer.get("/insights/reports/trends/segments/ghost/").status_code == 404
    assert session(other_tenant, "admin").get("/insights/reports/trends/segments/vip/").status_code == 404
    page = viewer.get("/segments/vip/")
    assert b"/insights/reports/trends/segments/vip/" in page.content
