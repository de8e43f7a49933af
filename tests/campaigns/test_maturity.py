"""Segmentation maturity from what the workspace does: types read from the rules, the
ladder's level, the practices and next steps; the page and API are for admins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.maturity import workspace_maturity
from campaigns.models import Campaign, SegmentReview
from campaigns.plays.services import play_create
from segments.services import segment_create
from tests.conftest import make_member, session


def rule(*conditions) -> dict:
    return {"version": 1, "match": "all", "conditions": list(conditions)}


COUNTRY = {"type": "trait", "field": "country", "op": "eq", "value": "FR"}
ACTIVE = {"type": "event", "event": "login", "count": {"op": "gte", "value": 3}, "window": {"last": "30d"}}
PROMOTERS = {"type": "survey", "survey": "nps", "measure": "latest", "op": "gte", "value": 9}
RISKY = {"type": "metric", "metric": "churn_risk", "op": "gt", "value": 0.7}


@pytest.fixture
def admin(in_tenant, tenant):
    return make_member(tenant, "maturity-admin@alpha.test", "admin").memberships.get(tenant=tenant)


def test_an_empty_workspace_has_not_started(admin):
    report = workspace_maturity(now=timezone.now())
    assert (report.level, report.level_name, report.segments) == (0, "Not started", 0)
    assert [s["url_name"] for s in report.next_steps] == ["segments_new", "plays_list", "campaigns_list",
                                                          "segments_review"]


def test_the_ladder_climbs_with_the_types_the_rules_read(admin):
    now = timezone.now()
    segment_create(actor=admin, key="french", name="French", definition=rule(COUNTRY), now=now)
    assert workspace_maturity(now=now).level == 1
    segment_create(actor=admin, key="promoters", name="Promoters", definition=rule(PROMOTERS), now=now)
    report = workspace_maturity(now=now)
    assert report.level == 1 and report.rungs[2]["reached"]  # a rung above a gap does not count yet
    assert report.next_steps[0]["text"].startswith("Segment on behaviour")
    segment_create(actor=admin, key="busy-french", name="Busy French", definition=rule(COUNTRY, ACTIVE), now=now)
    segment_create(actor=admin, key="at-risk", name="At risk", definition=rule(RISKY), now=now)
    report = workspace_maturity(now=now)
    assert (report.level, report.level_name) == (4, "Predictive")
    assert report.types["geographic"] == ["busy-french", "french"] and report.types["predictive"] == ["at-risk"]
    assert report.types["behavioural"] == ["busy-french"] and report.types["psychographic_needs"] == ["promoters"]


def test_practices_read_plays_holdouts_and_reviews(admin):
    now = timezone.now()
    french, _ = segment_create(actor=admin, key="french", name="French", definition=rule(COUNTRY), now=now)
    practices = {p.key: p.met for p in workspace_maturity(now=now).practices}
    assert practices == {"activated": False, "measured": False, "reviewed": False}
    play_create(actor=admin, name="Bonjour", segment_id=french.pk, tactic_type="email", kpi="conversion_rate")
    Campaign.objects.create(name="Held out", segment=french, channel="email", status="completed", schedule={},
                            content={}, holdout_percent=10)
    SegmentReview.objects.create(segment=french, decision="kept", note="ok", decided_at=now - timedelta(days=3),
                                 next_review_at=(now + timedelta(days=90)).date())
    report = workspace_maturity(now=now)
    assert {p.key: p.met for p in report.practices} == {"activated": True, "measured": True, "reviewed": True}
    assert "1 of 1 live segments" in report.practices[0].detail and len(report.next_steps) == 1


def test_the_page_and_api_are_a_report_every_member_reads(admin, tenant, other_tenant):
    segment_create(actor=admin, key="french", name="French", definition=rule(COUNTRY), now=timezone.now())
    connection.set_schema_to_public()
    client = session(tenant, "admin")
    page = client.get("/maturity/")
    assert page.status_code == 200 and b'data-testid="maturity-level">Basic' in page.content
    body = client.get("/api/v1/maturity/").json()
    assert body["level"] == 1 and body["types"]["geographic"] == ["french"]
    assert session(tenant, "marketer").get("/api/v1/maturity/").json()["level"] == 1
    assert b"Basic" in session(tenant, "analyst").get("/maturity/").content
    assert b"french" not in session(other_tenant, "admin").get("/maturity/").content  # each workspace its own
