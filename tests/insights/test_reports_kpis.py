"""Segment KPIs side by side and against all customers: every figure worked out by hand
on four customers, a segment without members, coded bad input, and a cache that a new
event or membership change invalidates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from common.errors import DomainError
from customers.models import Customer, MetricsSettings, Survey, SurveyResponse
from insights.reports.kpis import kpi_query, segment_kpis
from segments.services import segment_create, static_members_add
from tests.conftest import make_member, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
DAY = timedelta(days=1)
MONTHS_90 = 90 / (365.25 / 12)


@pytest.fixture
def shop(in_tenant, tenant):
    MetricsSettings.objects.create(revenue_event="purchase", revenue_property="amount", gross_margin="0.7",
                                   expected_lifespan_months="24", churn_inactivity_days=30)
    admin = make_member(tenant, "kpi-admin@alpha.test", "admin").memberships.get(tenant=tenant)

    def customer(name, signed_days, seen_days, events=()):
        c = Customer.objects.create(external_id=name, signed_up_at=NOW - signed_days * DAY,
                                    last_seen_at=NOW - seen_days * DAY)
        for event, days, properties in events:
            c.events.create(name=event, timestamp=NOW - days * DAY, properties=properties)
        return c

    a = customer("a", 200, 1, [("purchase", 10, {"amount": 100}), ("export", 5, {})])
    b = customer("b", 100, 50, [("purchase", 50, {"amount": 50}), ("purchase", 120, {"amount": 999})])
    c = customer("c", 5, 2, [("export", 2, {})])
    d = customer("d", 400, 398)
    nps, csat = Survey.objects.get(key="nps"), Survey.objects.get(key="csat")
    SurveyResponse.objects.create(customer=a, survey=nps, score=4, responded_at=NOW - 60 * DAY)
    SurveyResponse.objects.create(customer=a, survey=nps, score=10, responded_at=NOW - 3 * DAY)  # the latest counts
    SurveyResponse.objects.create(customer=b, survey=nps, score=3, responded_at=NOW - 55 * DAY)
    SurveyResponse.objects.create(customer=a, survey=csat, score=5, responded_at=NOW - 3 * DAY)
    vip, _ = segment_create(actor=admin, key="vip", name="VIPs", kind="static", now=NOW - 60 * DAY)
    static_members_add(actor=admin, segment=vip, customer_ids=[a.pk], now=NOW - 40 * DAY)
    static_members_add(actor=admin, segment=vip, customer_ids=[b.pk], now=NOW - 10 * DAY)
    segment_create(actor=admin, key="empty", name="Nobody", kind="static", now=NOW - 60 * DAY)
    return {"admin": admin, "a": a, "b": b, "c": c, "d": d, "vip": vip}


def report(**query):
    return segment_kpis(query=kpi_query(**query), now=NOW)


def test_every_kpi_of_a_segment_and_the_base(shop):
    result = report(segments=["vip"], conversion="export", features=["export", "purchase"])
    vip, base = result.rows
    assert (vip.key, vip.name, base.key) == ("vip", "VIPs", "all")
    assert (vip.size, vip.share, base.size, base.share) == (2, 0.5, 4, 1.0)
    # a was a member 30 days ago, nobody 90 days ago; four customers had signed up by
    # 30 days ago (c has not), three by 90.
    assert (vip.growth_30d, vip.growth_90d) == (1.0, None)
    assert base.growth_30d == round((4 - 3) / 3, 4) and base.growth_90d == round((4 - 3) / 3, 4)
    # Revenue of the last 90 days only (b's 999 is older).
    assert (vip.revenue_90d, base.revenue_90d, vip.revenue_share, vip.paying_share) == (150, 150, 1.0, 1.0)
    arpu = 150 / 2 / MONTHS_90
    assert vip.arpu == round(arpu, 2) and base.arpu == round(150 / 4 / MONTHS_90, 2)
    # Alive 30 days ago: a and b; b's last event (50 days ago) + 30 days of silence fell in the window.
    assert vip.churn_rate == 0.5
    assert vip.ltv_lifespan == round(arpu * 0.7 * 24, 2) and vip.ltv_churn == round(arpu * 0.7 / 0.5, 2)
    # day 90: a and b signed up long enough ago, only a came back after its day 90.
    assert vip.retention == {"day_7": 1.0, "day_30": 1.0, "day_90": 0.5}
    assert base.retention["day_7"] == round(2 / 3, 4)  # c signed up 5 days ago: not yet counted
    assert (vip.nps_mean, vip.nps_score, vip.csat_mean) == (6.5, 0.0, 5.0)
    assert (vip.conversion, base.conversion) == (0.5, 0.5)
    assert vip.adoption == {"export": 0.5, "purchase": 0.5} and base.adoption == {"export": 0.5, "purchase": 0.25}
    assert result.features == ["export", "purchase"] and result.conversion_event == "export"


def test_a_segment_without_members_has_counts_of_zero_and_no_rates(shop):
    empty, base = report(segments=["empty"]).rows
    assert (empty.size, empty.share, empty.revenue_90d, empty.arpu, empty.churn_rate) == (0, 0.0, 0, None, None)
    assert empty.ltv_churn is None and empty.nps_score is None and empty.retention["day_7"] is None
    assert base.size == 4


def test_the_order_asked_is_the_order_shown_and_the_base_comes_last(shop):
    assert [row.key for row in report(segments=["empty", "vip"]).rows] == ["empty", "vip", "all"]


@pytest.mark.parametrize("query, path, code", [
    ({"segments": []}, "segments", "required"),
    ({"segments": "vip"}, "segments", "invalid_type"),
    ({"segments": ["vip", "ghost"]}, "segments[1]", "unknown_segment"),
    ({"segments": [f"s{i}" for i in range(11)]}, "segments", "too_many"),
    ({"segments": ["vip"], "features": ["x"] * 13}, "features", "too_many"),
    ({"segments": ["vip"], "features": [""]}, "features", "invalid_type"),
    ({"segments": ["vip"], "conversion": 5}, "conversion", "invalid_value"),
    ({"segments": ["vip\x00"]}, "segments[0]", "null_characters_not_allowed"),
    ({"segments": ["vip"], "conversion": "buy\ud800"}, "conversion", "surrogate_characters_not_allowed"),
    ({"segments": ["vip"], "features": ["a\x00"]}, "features[0]", "null_characters_not_allowed"),
])
def test_bad_queries_are_coded_at_their_path(shop, query, path, code):
    with pytest.raises(DomainError) as raised:
        kpi_query(**query)
    assert (raised.value.problems[0].path, raised.value.problems[0].code) == (path, code)


def test_the_cache_answers_until_an_event_or_a_membership_changes(shop, django_assert_max_num_queries):
    first = report(segments=["vip"], features=["export"])
    with django_assert_max_num_queries(3):  # the query check, the fingerprint: no report statement
        assert report(segments=["vip"], features=["export"]).rows[0].revenue_90d == first.rows[0].revenue_90d
    shop["a"].events.create(name="purchase", timestamp=NOW - 2 * DAY, properties={"amount": 30})
    assert report(segments=["vip"], features=["export"]).rows[0].revenue_90d == 180
    static_members_add(actor=shop["admin"], segment=shop["vip"], customer_ids=[shop["c"].pk], now=NOW - DAY)
    assert report(segments=["vip"], features=["export"]).rows[0].size == 3


def test_another_workspaces_segments_are_unknown(shop, other_tenant):
    from django.db import connection

    connection.set_tenant(other_tenant)
    with pytest.raises(DomainError) as raised:
        kpi_query(segments=["vip"])
    assert raised.value.problems[0].code == "unknown_segment"


# ---------------------------------------------------------------------- pages and API




def test_the_api_page_panel_and_csv_agree(shop, tenant, at_now):
    from django.db import connection

    connection.set_schema_to_public()
    analyst = session(tenant, "analyst")
    body = analyst.get("/api/v1/insights/reports/kpis/?segments=vip&conversion=export&features=export").json()
    assert [row["key"] for row in body["rows"]] == ["vip", "all"]
    assert body["rows"][0]["churn_rate"] == 0.5 and body["rows"][0]["adoption"] == {"export": 0.5}
    page = analyst.get("/insights/reports/kpis/?segments=vip&conversion=export&features=export")
    assert page.status_code == 200 and b'data-testid="kpi-table"' in page.content
    assert "Churn, last 30 days" in page.content.decode() and "50.0%" in page.content.decode()
    panel = analyst.get("/insights/reports/kpis/segments/vip/")
    assert panel.status_code == 200 and b"This segment" in panel.content
    connection.set_tenant(tenant)
    segment_create(actor=shop["admin"], key="formula", name="=SUM(A1)", kind="static", now=NOW)
    connection.set_schema_to_public()
    csv = analyst.get("/insights/reports/kpis.csv?segments=vip,formula")
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert lines[0] == "KPI,VIPs (vip),'=SUM(A1) (formula),All customers (all)"  # text, not a formula
    assert "Customers,2,0,4" in lines


def test_bad_queries_are_coded_400s_on_the_api_and_the_page(shop, tenant, at_now):
    from django.db import connection

    connection.set_schema_to_public()
    analyst = session(tenant, "analyst")
    response = analyst.get("/api/v1/insights/reports/kpis/?segments=vip,ghost")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "segments[1]", "code": "unknown_segment", "message": "No segment “ghost”."}]
    assert analyst.get("/api/v1/insights/reports/kpis/").json()["errors"][0]["code"] == "required"
    assert analyst.get("/api/v1/insights/reports/kpis/?segments=vip%00").status_code == 400
    page = analyst.get("/insights/reports/kpis/?segments=ghost")
    assert page.status_code == 400 and b'data-code="unknown_segment"' in page.content
    assert analyst.get("/insights/reports/kpis/segments/ghost/").status_code == 404
    assert analyst.get("/insights/reports/kpis.csv?segments=ghost").status_code == 400


def test_viewers_read_kpis_but_do_not_export_and_another_workspace_sees_no_segment(shop, tenant, other_tenant):
    from django.db import connection

    connection.set_schema_to_public()
    viewer = session(tenant, "viewer")
    assert viewer.get("/api/v1/insights/reports/kpis/?segments=vip").status_code == 200
    assert viewer.get("/insights/reports/kpis.csv?segments=vip").status_code == 403
    stranger = session(other_tenant, "admin")
    assert stranger.get("/api/v1/insights/reports/kpis/?segments=vip").status_code == 400
    assert stranger.get("/insights/reports/kpis/segments/vip/").status_code == 404


def test_a_custom_surveys_answers_per_segment(shop):
    from customers.surveys import survey_create

    survey_create(actor=shop["admin"], key="welcome", name="Welcome", questions=[
        {"key": "role", "text": "Your role?", "type": "choice",
         "options": [{"value": 1, "label": "Developer"}, {"value": 2, "label": "Manager"}]},
        {"key": "ease", "text": "How easy?", "type": "scale", "min": 1, "max": 7}])
    welcome = Survey.objects.get(key="welcome")
    for customer, role, days in (("a", 1, 9), ("a", 2, 2), ("b", 1, 5), ("c", 2, 4), ("c", 1, -1)):  # c's 2nd: after now
        SurveyResponse.objects.create(customer=shop[customer], survey=welcome, question="role", score=role,
                                      responded_at=NOW - days * DAY)
    SurveyResponse.objects.create(customer=shop["a"], survey=welcome, question="ease", score=6, responded_at=NOW - DAY)
    result = report(segments=["vip"], survey="welcome.role")
    vip, base = result.rows
    assert result.survey["type"] == "choice" and result.survey["labels"] == {"1": "Developer", "2": "Manager"}
    # latest answers: a Manager, b Developer (vip); c Manager too (everyone)
    assert vip.survey == {"respondents": 2, "answered": 1.0, "mean": 1.5, "shares": {"1": 0.5, "2": 0.5}}
    assert base.survey == {"respondents": 3, "answered": 0.75, "mean": round(5 / 3, 2),
                           "shares": {"1": round(1 / 3, 4), "2": round(2 / 3, 4)}}
    assert report(segments=["vip"], survey="welcome.ease").rows[0].survey == {
        "respondents": 1, "answered": 0.5, "mean": 6.0, "shares": {"6": 1.0}}
    for survey, code in (("welcome", "invalid_value"), ("nps.x", "unknown_survey"), ("welcome.age", "unknown_question")):
        with pytest.raises(DomainError) as raised:
            kpi_query(segments=["vip"], survey=survey)
        assert (raised.value.problems[0].path, raised.value.problems[0].code) == ("survey", code)


def test_the_page_offers_custom_survey_questions_and_shows_their_answers(shop, tenant, at_now):
    from django.db import connection

    from customers.surveys import survey_create

    survey_create(actor=shop["admin"], key="welcome", name="Welcome", questions=[
        {"key": "role", "text": "Your role?", "type": "choice",
         "options": [{"value": 1, "label": "Developer"}, {"value": 2, "label": "Manager"}]}])
    SurveyResponse.objects.create(customer=shop["a"], survey=Survey.objects.get(key="welcome"), question="role",
                                  score=2, responded_at=NOW - DAY)
    connection.set_schema_to_public()
    analyst = session(tenant, "analyst")
    form = analyst.get("/insights/reports/kpis/").content.decode()
    assert '<option value="welcome.role"' in form and "Welcome: Your role?" in form
    page = analyst.get("/insights/reports/kpis/?segments=vip&survey=welcome.role").content.decode()
    assert "“Your role?” (Welcome): Manager" in page and "Answered “Your role?” (Welcome)" in page
    body = analyst.get("/api/v1/insights/reports/kpis/?segments=vip&survey=welcome.role").json()
    assert body["survey"]["labels"] == {"1": "Developer", "2": "Manager"}
    assert body["rows"][0]["survey"]["shares"] == {"1": 0.0, "2": 1.0}
