"""KPI trends beyond activity: share and growth, revenue share, churn (the workspace
metrics' model), LTV, retention of each period's sign-up cohort, feature adoption and
engagement from nightly snapshots — worked out by hand on five customers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from customers.metrics.ltv import DAYS_PER_MONTH
from customers.metrics_refresh import metrics_refresh
from customers.models import Customer, CustomerMetrics, MetricsSettings
from insights.models import EngagementSnapshot
from insights.reports.snapshots import engagement_snapshot_take, snapshot_moments
from insights.reports.trends import trend_query, trend_report
from segments.services import segment_create, static_members_add
from tests.conftest import make_member

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)  # a Monday
WEEK = 7 / DAYS_PER_MONTH  # a week in months


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"2026-{day}T12:00:00+00:00")


@pytest.fixture
def lives(in_tenant, tenant):
    """Inactivity of 7 days. p churns in week 1 (last seen 11-05), s in week 2 (11-12);
    r and s sign up in week 1 (only r comes back after a week), t in week 2."""
    MetricsSettings.objects.create(revenue_event="purchase", revenue_property="amount", churn_inactivity_days=7,
                                   gross_margin=Decimal("0.5"), expected_lifespan_months=Decimal("10"))
    people = {}
    for name, signed, last in [("p", "10-01", "11-05"), ("q", "10-01", "11-20"), ("r", "11-10", "11-18"),
                               ("s", "11-11", "11-12"), ("t", "11-20", "11-21")]:
        people[name] = Customer.objects.create(external_id=name, signed_up_at=at(signed), last_seen_at=at(last))
    people["q"].events.create(name="feature_x_used", timestamp=at("11-10"), properties={})
    people["r"].events.create(name="feature_x_used", timestamp=at("11-17"), properties={})
    people["r"].events.create(name="purchase", timestamp=at("11-17"), properties={"amount": 40})
    people["q"].events.create(name="purchase", timestamp=at("11-20"), properties={"amount": 60})
    admin = make_member(tenant, "trend-kpis@alpha.test", "admin").memberships.get(tenant=tenant)
    vip, _ = segment_create(actor=admin, key="vip", name="VIPs", kind="static", now=at("10-01"))
    static_members_add(actor=admin, segment=vip, customer_ids=[people["p"].pk, people["r"].pk], now=at("11-01"))
    return people


def weekly(**extra):
    return trend_report(query=trend_query(segments=["vip"], interval="week", periods=3, **extra), now=NOW)


def test_share_growth_and_revenue_share(lives):
    vip, everyone = weekly().series
    assert everyone.members == [4, 5, 5] and vip.members == [2, 2, 2]
    assert vip.share == [0.5, 0.4, 0.4] and everyone.share == [1.0, 1.0, 1.0]
    # before week 1 (at 11-09 00:00): vip had its 2, all customers p and q
    assert vip.growth == [0.0, 0.0, 0.0] and everyone.growth == [1.0, 0.25, 0.0]
    assert vip.revenue == [0.0, 40.0, 0.0] and everyone.revenue == [0.0, 100.0, 0.0]
    assert vip.revenue_share == [None, 0.4, None]


def test_churn_follows_the_metrics_model(lives):
    vip, everyone = weekly().series
    # week 1: p and q alive at its start, p churns (11-05 + 7 days); week 2: q, r, s alive,
    # s churns; week 3 (to now): q, r, t alive, nobody's 7 days are up yet
    assert everyone.churn == [0.5, round(1 / 3, 4), 0.0]
    assert vip.churn == [1.0, 0.0, 0.0]  # week 1: p alone alive (r had not signed up); then r alone
    assert vip.ltv_churn[1] is None  # no churn: an unbounded lifetime


def test_ltv_by_both_formulas_from_the_periods_arpu(lives):
    vip, everyone = weekly().series
    arpu = 100 / 5 / WEEK
    assert everyone.arpu[1] == round(arpu, 2)
    assert everyone.ltv_lifespan[1] == round(arpu * 0.5 * 10, 2)
    monthly_churn = 1 - (1 - round(1 / 3, 4)) ** (1 / WEEK)
    assert everyone.ltv_churn[1] == round(arpu * 0.5 / monthly_churn, 2)
    assert vip.ltv_lifespan[1] == round(40 / 2 / WEEK * 0.5 * 10, 2) and vip.ltv_lifespan[0] == 0.0


def test_retention_of_each_periods_sign_up_cohort(lives):
    vip, everyone = weekly().series
    # week 1's cohort is r and s: r was seen on day 8, s on day 1; nobody is 30 days old
    assert everyone.retention["day_7"] == [0.5, None, None]  # t (week 2) is not 7 days old yet
    assert everyone.retention["day_30"] == [None, None, None]
    assert vip.retention["day_7"] == [1.0, None, None]


def test_feature_adoption_per_period(lives):
    result = weekly(features=["feature_x_used"])
    vip, everyone = result.series
    assert result.features == ["feature_x_used"]
    assert everyone.adoption == {"feature_x_used": [0.25, 0.2, 0.0]}
    assert vip.adoption == {"feature_x_used": [0.0, 0.5, 0.0]}


def test_busiest_events_are_the_default_features(lives):
    assert set(weekly().features) <= {"feature_x_used", "purchase"}


def test_engagement_comes_from_the_latest_snapshot_of_each_period(lives):
    p = lives["p"]
    p.events.create(name="login", timestamp=at("11-12"), properties={})
    engagement_snapshot_take(now=at("11-10"))
    engagement_snapshot_take(now=at("11-14"))
    engagement_snapshot_take(now=at("11-14"))  # a rerun the same day replaces it
    assert EngagementSnapshot.objects.filter(day="2026-11-14").count() == 2  # vip and all customers
    engagement_snapshot_take(now=NOW)
    metrics_refresh(now=NOW)
    scores = [float(m.engagement_score) for m in CustomerMetrics.objects.exclude(engagement_score=None)]
    vip, everyone = weekly().series
    assert everyone.engagement[2] == round(sum(scores) / len(scores), 1)  # the metrics' own score, today
    week_1 = EngagementSnapshot.objects.get(day="2026-11-14", segment=None)
    assert everyone.engagement[:2] == [round(week_1.mean, 1), None]  # week 2 has no snapshot
    assert vip.engagement[0] == round(EngagementSnapshot.objects.get(day="2026-11-14", segment__key="vip").mean, 1)


def test_snapshot_moments_are_day_ends_then_now():
    moments = snapshot_moments(now=NOW, days=3)
    assert moments == [datetime(2026, 11, 22, tzinfo=timezone.utc) - timedelta(microseconds=1),
                       datetime(2026, 11, 23, tzinfo=timezone.utc) - timedelta(microseconds=1), NOW]


@pytest.mark.parametrize("features, path, code", [
    ("feature_x_used", "features", "invalid_type"),
    ([f"e{i}" for i in range(13)], "features", "too_many"),
    (["ok", "a\x00b"], "features[1]", "null_characters_not_allowed"),
    ([""], "features", "invalid_type"),
])
def test_bad_features_are_coded(lives, features, path, code):
    from common.errors import DomainError

    with pytest.raises(DomainError) as raised:
        trend_query(segments=[], features=features)
    assert (path, code) in [(p.path, p.code) for p in raised.value.problems]


def test_pages_and_api_show_every_kpi(lives, tenant, at_now):
    from django.db import connection

    from tests.conftest import session

    connection.set_schema_to_public()
    viewer = session(tenant, "viewer")
    base = "/insights/reports/trends/?segments=vip&interval=week&periods=3&features=feature_x_used"
    churn = viewer.get(base + "&metric=churn")
    assert churn.status_code == 200 and b"Churn rate, per week" in churn.content and b"33.3%" in churn.content
    adoption = viewer.get(base + "&metric=adoption:feature_x_used")
    assert "Used “feature_x_used” in the period, per week" in adoption.content.decode()
    assert b"25.0%" in adoption.content
    unknown = viewer.get(base + "&metric=adoption:ghost")
    assert b"Members at the period&#x27;s end, per week" in unknown.content
    body = viewer.get("/api/v1/insights/reports/trends/?segments=vip&interval=week&periods=3"
                      "&features=feature_x_used").json()
    assert body["features"] == ["feature_x_used"] and body["series"][1]["churn"] == [0.5, 0.3333, 0.0]
    assert body["series"][0]["retention"]["day_7"] == [1.0, None, None]
    bad = viewer.get("/api/v1/insights/reports/trends/?features=" + ",".join(f"e{i}" for i in range(13)))
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "too_many"


def test_the_command_back_fills_one_tenants_days(lives, tenant, other_tenant, time_machine):
    from django.core.management import CommandError, call_command
    from django.db import connection

    time_machine.move_to(NOW, tick=False)
    connection.set_schema_to_public()
    call_command("snapshot_engagement", tenant="alpha", days=3)
    connection.set_tenant(tenant)
    days = sorted({str(day) for day in EngagementSnapshot.objects.values_list("day", flat=True)})
    assert days == ["2026-11-21", "2026-11-22", "2026-11-23"]
    connection.set_tenant(other_tenant)
    assert not EngagementSnapshot.objects.exists()
    connection.set_schema_to_public()
    with pytest.raises(CommandError):
        call_command("snapshot_engagement", tenant="ghost")
    with pytest.raises(CommandError):
        call_command("snapshot_engagement", tenant="alpha", days=0)


def test_the_nightly_task_takes_todays_snapshot(lives):
    from insights.tasks import nightly

    nightly(now_iso=NOW.isoformat())
    assert set(EngagementSnapshot.objects.values_list("day", "segment__key")) == \
        {(NOW.date(), None), (NOW.date(), "vip")}
