"""Journey maps: members in their furthest stage, reached shares and median days worked out
by hand; stages saved with coded problems; the panel, editor, gallery and API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from common.errors import DomainError, Forbidden
from customers.models import Customer
from insights.models import JourneyMap
from insights.reports.journeys import DEFAULT_STAGES, journey_report, journey_save, journey_stages
from segments.services import segment_create, segment_update, static_members_add
from tests.conftest import make_member, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
DAY = timedelta(days=1)
STAGES = [{"name": "Aware", "events": ["page_viewed"], "goals": "Understand the product", "pains": ""},
          {"name": "Active", "events": ["project_created"], "goals": "", "pains": "Setup is long"},
          {"name": "Paying", "events": ["subscription_upgraded"], "goals": "", "pains": ""}]


@pytest.fixture
def trial(in_tenant, tenant):
    admin = make_member(tenant, "journey-admin@alpha.test", "admin").memberships.get(tenant=tenant)

    def customer(name, events):
        c = Customer.objects.create(external_id=name, signed_up_at=NOW - 10 * DAY)
        for event, days in events:
            c.events.create(name=event, timestamp=NOW - days * DAY, properties={})
        return c

    members = [customer("a", [("page_viewed", 9), ("project_created", 8), ("subscription_upgraded", 5)]),
               customer("b", [("project_created", 6)]), customer("c", [("page_viewed", 9)]), customer("d", [])]
    customer("e", [("project_created", 3)])
    segment, _ = segment_create(actor=admin, key="trial", name="Trial", kind="static", now=NOW - 20 * DAY)
    static_members_add(actor=admin, segment=segment, customer_ids=[c.pk for c in members], now=NOW - 15 * DAY)
    return {"admin": admin, "segment": segment}


def test_stages_now_reached_and_median_days_by_hand(trial):
    report = journey_report(segment=trial["segment"], stages=STAGES, now=NOW)
    assert (report.members, report.not_started) == (4, 1)
    assert [(s.name, s.now, s.reached, s.median_days) for s in report.stages] == [
        ("Aware", 1, 2, 1.0), ("Active", 1, 2, 3.0), ("Paying", 1, 1, 5.0)]
    assert report.stages[0].now_share == 0.25 and report.stages[1].reached_share == 0.5


def test_saved_stages_replace_the_defaults_and_are_audited(trial):
    assert journey_stages(trial["segment"]) == ([dict(s) for s in DEFAULT_STAGES], False)
    journey_save(actor=trial["admin"], segment=trial["segment"], stages=STAGES, now=NOW)
    stages, saved = journey_stages(trial["segment"])
    assert saved and [s["name"] for s in stages] == ["Aware", "Active", "Paying"] and stages[1]["pains"] == "Setup is long"
    journey_save(actor=trial["admin"], segment=trial["segment"], stages=STAGES[:1], now=NOW)
    assert JourneyMap.objects.count() == 1 and len(journey_stages(trial["segment"])[0]) == 1


@pytest.mark.parametrize("stages, path, code", [
    ([], "stages", "invalid_value"),
    ([{"name": "A", "events": ["x"]}] * 9, "stages", "invalid_value"),
    ([{"name": "", "events": ["x"]}], "stages[0].name", "required"),
    ([{"name": "A", "events": ["x"]}, {"name": "a", "events": ["y"]}], "stages[1].name", "duplicate"),
    ([{"name": "A", "events": []}], "stages[0].events", "invalid_value"),
    ([{"name": "A", "events": ["x"], "mood": 1}], "stages[0].mood", "unknown_field"),
    ([{"name": "A", "events": ["x"], "goals": "g" * 1001}], "stages[0].goals", "invalid_value"),
    ([{"name": "A\x00", "events": ["x"]}], "stages[0].name", "null_characters_not_allowed"),
])
def test_bad_stages_are_coded_at_their_path(trial, stages, path, code):
    with pytest.raises(DomainError) as raised:
        journey_save(actor=trial["admin"], segment=trial["segment"], stages=stages, now=NOW)
    assert (path, code) in [(p.path, p.code) for p in raised.value.problems]
    assert not JourneyMap.objects.exists()


def test_only_segment_editors_map_journeys(trial, tenant):
    viewer = make_member(tenant, "journey-viewer@alpha.test", "viewer").memberships.get(tenant=tenant)
    with pytest.raises(Forbidden):
        journey_save(actor=viewer, segment=trial["segment"], stages=STAGES, now=NOW)


def test_panel_editor_gallery_and_api(trial, tenant, other_tenant):
    segment_update(actor=trial["admin"], segment=trial["segment"], now=NOW,
                   persona={"name": "Curious trialists", "goals": "See value fast"})
    connection.set_schema_to_public()
    marketer = session(tenant, "marketer")
    panel = marketer.get("/insights/reports/journeys/trial/")
    assert panel.status_code == 200 and b'data-testid="journey-chart"' in panel.content and b"Awareness" in panel.content
    saved = marketer.post("/insights/reports/journeys/trial/edit/", {"stages": json.dumps(STAGES)})
    assert saved.status_code == 302
    bad = marketer.post("/insights/reports/journeys/trial/edit/", {"stages": json.dumps([])})
    assert bad.status_code == 400 and b'data-code="invalid_value"' in bad.content
    gallery = session(tenant, "viewer").get("/insights/personas/")
    assert gallery.status_code == 200 and b"Curious trialists" in gallery.content and b"Aware" in gallery.content
    body = marketer.get("/api/v1/insights/journeys/trial/").json()
    assert [s["name"] for s in body["stages"]] == ["Aware", "Active", "Paying"] and body["saved"] is True
    put = marketer.put("/api/v1/insights/journeys/trial/", {"stages": STAGES[:2]}, content_type="application/json")
    assert put.status_code == 200 and len(put.json()["stages"]) == 2
    assert session(tenant, "viewer").put("/api/v1/insights/journeys/trial/", {"stages": STAGES},
                                         content_type="application/json").status_code == 403
    assert session(other_tenant, "admin").get("/api/v1/insights/journeys/trial/").status_code == 404
    assert session(tenant, "viewer").get("/insights/reports/journeys/trial/edit/").status_code == 403
    assert marketer.get("/insights/reports/journeys/tr%00ial/").status_code == 404
    assert marketer.get("/api/v1/insights/journeys/tr%00ial/").status_code == 404
