"""The activation plan pages: the plan (departments, segments without a live play, every
play with its KPI actual against target, filters), the play editor (percent targets,
errors at their fields, nothing stored on bad input), a play's page (KPI, trend, pooled
lift of its campaigns), the plan of a segment and of a department, and isolation."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from campaigns import sending
from campaigns.models import Assignment, Play
from campaigns.plays.services import play_create
from campaigns.services.campaigns import campaign_create, campaign_launch
from tenants.models import Department
from tests.campaigns.conftest import T0, people, static_segment
from tests.campaigns.test_measurement import track
from tests.conftest import membership_of
from tests.customers.customer_data import client_as

DAY = timedelta(days=1)
NOW = T0 + 30 * DAY


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def plan(tenant):
    """Four members of "Trialists" (one adopted the feature in the window), a play of
    Marketing on them with a 50% target, and a segment no play acts on. Leaves the
    connection in the public schema."""
    connection.set_tenant(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    marketing = Department.objects.get_or_create(tenant=tenant, name="Marketing")[0]
    crowd = people(4)
    trialists = static_segment("trialists", crowd)
    idle = static_segment("idle", people(1, prefix="idle"))
    play = play_create(actor=admin, name="Adopt exports", segment_id=trialists.pk, tactic_type="in_app",
                       kpi="feature_adoption", kpi_event="export_used", target="0.5", department_id=marketing.pk,
                       starts_on=T0.date(), status="active")
    track(crowd[0], "export_used", T0 + DAY)
    connection.set_schema_to_public()
    return {"play": play, "marketing": marketing, "trialists": trialists, "idle": idle, "crowd": crowd}


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# ----------------------------------------------------------------------------- the plan


def test_the_plan_shows_each_play_with_its_kpi_against_target_and_flags_segments_without_a_play(tenant, plan):
    response = client_as(tenant, "viewer").get("/plays/")
    assert response.status_code == 200
    page = _text(response)
    assert "Adopt exports" in page and "25.0%" in page and "50.0%" in page  # 1 of 4 against 50%
    assert "Off target" in page
    flagged = page.split('data-testid="unplanned-segments"')[1].split("</section>")[0]
    assert "Idle" in flagged and "Trialists" not in flagged
    assert "Marketing" in page.split('data-testid="department-cards"')[1].split("</ul>")[0]
    assert "New play" not in page  # viewers read the plan, they do not plan


def test_a_done_play_does_not_count_as_live(tenant, plan):
    connection.set_tenant(tenant)
    Play.objects.filter(pk=plan["play"].pk).update(status="done")
    connection.set_schema_to_public()
    page = _text(client_as(tenant, "viewer").get("/plays/"))
    assert "Trialists" in page.split('data-testid="unplanned-segments"')[1].split("</section>")[0]


def test_filters_narrow_the_plays_and_a_bad_filter_is_a_400(tenant, plan):
    client = client_as(tenant, "analyst")
    assert "Adopt exports" in _text(client.get("/plays/", {"department": plan["marketing"].pk, "kpi": "feature_adoption"}))
    assert "Adopt exports" not in _text(client.get("/plays/", {"department": "none"}))
    assert "Adopt exports" not in _text(client.get("/plays/", {"status": "planned"}))
    bad = client.get("/plays/", {"status": "nope", "department": "x"})
    assert bad.status_code == 400
    assert "Status:" in _text(bad) and "Department:" in _text(bad)


# ----------------------------------------------------------------------------- the editor


def _form(plan, **overrides) -> dict:
    return {"name": "Win back", "segment_id": plan["trialists"].pk, "department_id": plan["marketing"].pk,
            "tactic_type": "email", "tactic": "A tailored offer", "kpi": "conversion_rate", "kpi_event": "upgraded",
            "kpi_days": "14", "target": "12.5", "spend": "", "status": "planned", "starts_on": "2026-06-01",
            "ends_on": ""} | overrides


def test_a_marketer_creates_a_play_with_a_percent_target(tenant, plan):
    response = client_as(tenant, "marketer").post("/plays/new/", _form(plan))
    assert response.status_code == 302
    connection.set_tenant(tenant)
    play = Play.objects.get(name="Win back")
    assert response["Location"] == f"/plays/{play.pk}/"
    assert (play.target, play.kpi_days, play.department_id, play.segment_label) == (
        Decimal("0.125"), 14, plan["marketing"].pk, "Trialists")


def test_cac_targets_are_money_and_take_the_spend(tenant, plan):
    client = client_as(tenant, "marketer")
    assert client.post("/plays/new/", _form(plan, name="Paid", kpi="cac", target="300", spend="500")).status_code == 302
    connection.set_tenant(tenant)
    assert Play.objects.values_list("target", "spend").get(name="Paid") == (Decimal("300"), Decimal("500"))


@pytest.mark.parametrize("overrides,message", [
    ({"name": ""}, "This is required."),
    ({"segment_id": ""}, "Choose a segment."),
    ({"segment_id": "999999"}, "No such segment in this workspace."),
    ({"department_id": "999999"}, "No such department in this workspace."),
    ({"kpi": "custom", "kpi_days": ""}, "give N"),
    ({"kpi": "cac", "spend": ""}, "enter the spend"),
    ({"target": "150"}, "percentage from 0 to 100"),
    ({"target": "lots"}, "Enter a number."),
    ({"ends_on": "2026-05-01"}, "ends on or after its start"),
    ({"starts_on": "June"}, "Enter a valid date."),
])
def test_bad_input_is_a_400_at_its_field_and_nothing_is_stored(tenant, plan, overrides, message):
    response = client_as(tenant, "marketer").post("/plays/new/", _form(plan, **overrides))
    assert response.status_code == 400
    assert message in _text(response)
    connection.set_tenant(tenant)
    assert not Play.objects.filter(name="Win back").exists()


def test_an_edit_saves_and_a_bad_edit_changes_nothing(tenant, plan):
    client = client_as(tenant, "marketer")
    url = f"/plays/{plan['play'].pk}/edit/"
    form = client.get(url)
    assert form.status_code == 200 and 'value="50"' in _text(form)  # 0.5 shown as percent
    fields = _form(plan, name="Adopt exports v2", kpi="feature_adoption", kpi_event="export_used", target="40",
                   status="active")
    assert client.post(url, fields).status_code == 302
    assert client.post(url, fields | {"name": "", "target": "300"}).status_code == 400
    connection.set_tenant(tenant)
    play = Play.objects.get(pk=plan["play"].pk)
    assert (play.name, play.target) == ("Adopt exports v2", Decimal("0.4"))


def test_viewers_and_analysts_cannot_open_the_editor(tenant, plan):
    for role in ("viewer", "analyst"):
        client = client_as(tenant, role)
        assert client.get("/plays/new/").status_code == 403
        assert client.post("/plays/new/", _form(plan)).status_code == 403
        assert client.post(f"/plays/{plan['play'].pk}/edit/", _form(plan)).status_code == 403


def test_the_editor_prefills_the_segment_and_its_department(tenant, plan):
    connection.set_tenant(tenant)
    from segments.models import Segment

    Segment.objects.filter(pk=plan["idle"].pk).update(department_id=plan["marketing"].pk)
    connection.set_schema_to_public()
    page = _text(client_as(tenant, "marketer").get("/plays/new/", {"segment": "idle"}))
    assert f'<option value="{plan["idle"].pk}" selected>' in page
    assert f'<option value="{plan["marketing"].pk}" selected>' in page


# ----------------------------------------------------------------------------- a play


def test_a_play_page_shows_its_kpi_basis_trend_and_pooled_lift(tenant, plan):
    connection.set_tenant(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    crowd = people(60, prefix="lift")
    segment = static_segment("upgraders", crowd)
    play = play_create(actor=admin, name="Upgrade nudge", segment_id=segment.pk, tactic_type="email",
                       kpi="conversion_rate", target="0.2", starts_on=T0.date())
    for name in ("First", "Second"):
        campaign = campaign_create(actor=admin, name=name, segment_id=segment.pk, channel="email", play_id=play.pk,
                                   schedule={"kind": "once", "at": T0.isoformat()}, holdout_percent=40,
                                   content={"subject": "Go pro", "body": "Hi"}, goal_event="upgraded", goal_days=7)
        campaign_launch(actor=admin, campaign=campaign, now=T0)
        sending.assign_members(campaign=campaign, now=T0)
    for person in crowd[::3]:
        track(person, "upgraded", T0 + 2 * DAY)
    arms = list(Assignment.objects.filter(campaign__play=play).values_list("customer_id", "group"))
    converted = {p.pk for p in crowd[::3]}
    treatment = [c for c, g in arms if g == "treatment"]
    holdout = [c for c, g in arms if g == "holdout"]
    connection.set_schema_to_public()

    page = _text(client_as(tenant, "viewer").get(f"/plays/{play.pk}/"))
    results = page.split('data-testid="play-results"')[1]
    rate = sum(c in converted for c in treatment) / len(treatment)
    held = sum(c in converted for c in holdout) / len(holdout)
    assert f"{rate * 100:.2f}%" in results and f"{held * 100:.2f}%" in results
    assert f"{sum(c in converted for c in treatment)} of {len(treatment)}" in results  # both campaigns pooled
    assert results.count('data-testid="play-campaign"') == 2
    assert 'data-testid="kpi-trend"' in page or "No measurement yet" in page


def test_a_play_with_nothing_to_measure_says_so(tenant, plan):
    connection.set_tenant(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    empty = play_create(actor=admin, name="Empty", segment_id=static_segment("nobody", []).pk, tactic_type="email",
                        kpi="feature_adoption", kpi_event="x")
    connection.set_schema_to_public()
    page = _text(client_as(tenant, "viewer").get(f"/plays/{empty.pk}/"))
    assert "the segment had no members in the window" in page
    assert "No campaign runs this play yet." in page and "Not measurable yet" in page


def test_the_kpi_trend_is_the_kpi_as_of_each_week(tenant, plan):
    from campaigns.plays.plan import kpi_trend

    connection.set_tenant(tenant)
    points = kpi_trend(Play.objects.get(pk=plan["play"].pk), now=NOW, weeks=6)
    # The window opens at T0 = NOW − 30 days: five weeks back it has not begun (nothing to
    # measure); from four weeks back (T0 + 2 days) the adoption at T0 + 1 day counts.
    assert [at for at, _ in points] == [NOW - timedelta(weeks=w) for w in (5, 4, 3, 2, 1, 0)]
    assert [value for _, value in points] == [None, 0.25, 0.25, 0.25, 0.25, 0.25]


# ----------------------------------------------------------------------------- segment and department


def test_the_segment_plan_lists_its_plays_by_department_and_flags_no_live_play(tenant, plan):
    client = client_as(tenant, "viewer")
    page = _text(client.get("/plays/segment/trialists/"))
    assert "Marketing" in page and "Adopt exports" in page and 'data-testid="no-live-play"' not in page
    idle = _text(client.get("/plays/segment/idle/"))
    assert 'data-testid="no-live-play"' in idle and "No play was ever planned" in idle
    assert client.get("/plays/segment/absent/").status_code == 404


def test_the_department_page_shows_kpis_against_targets_with_trends(tenant, plan):
    page = _text(client_as(tenant, "viewer").get(f"/plays/department/{plan['marketing'].pk}/"))
    summary = page.split('data-testid="department-summary"')[1].split("</dl>")[0]
    assert re.search(r"Plays</dt>\s*<dd[^>]*>1<", summary) and re.search(r"Off target</dt>\s*<dd[^>]*>1<", summary)
    assert 'data-testid="progress-chart"' in page and "Adopt exports" in page


# ----------------------------------------------------------------------------- isolation


def test_another_workspace_sees_none_of_it(tenant, other_tenant, plan):
    from tests.conftest import host_of

    client = client_as(other_tenant, "admin")
    assert client.get(f"/plays/{plan['play'].pk}/").status_code == 404
    assert client.get(f"/plays/{plan['play'].pk}/edit/").status_code == 404
    assert client.get(f"/plays/department/{plan['marketing'].pk}/").status_code == 404  # a department of alpha
    assert client.get("/plays/segment/trialists/").status_code == 404
    assert "Adopt exports" not in _text(client.get("/plays/"))
    # …and alpha's member on beta's host is not a member there.
    own = client_as(tenant, "admin")
    own.defaults["HTTP_HOST"] = host_of(other_tenant)
    assert own.get("/plays/").status_code in (302, 404)


# ----------------------------------------------------------------------------- entry points


def test_the_main_nav_links_the_plan_and_marks_it_current(tenant, plan):
    page = client_as(tenant, "viewer").get("/plays/").content.decode()
    nav = re.search(r'<ul [^>]*data-testid="main-nav".*?</ul>', page, re.S).group(0)
    assert re.search(r'href="/plays/"[^>]*aria-current="page"[^>]*>Plays</a>', nav)


def test_the_segment_page_shows_its_plays_and_flags_a_segment_nobody_acts_on(tenant, plan):
    client = client_as(tenant, "marketer")
    trialists = _text(client.get("/segments/trialists/")).split('data-testid="activation"')[1].split("</section>")[0]
    assert "Adopt exports" in trialists and "No live play" not in trialists
    idle = _text(client.get("/segments/idle/")).split('data-testid="activation"')[1].split("</section>")[0]
    assert "No live play acts on this segment." in idle and "/plays/new/?segment=idle" in idle


def test_the_verdict_does_not_claim_the_interval_includes_no_effect_when_it_does_not():
    from django.template.loader import render_to_string

    from campaigns import lift

    # Small groups: the z-test is not significant while the Wald interval excludes 0.
    small = lift.lift(treatment_n=14, treatment_conversions=5, holdout_n=2, holdout_conversions=2).as_dict()
    assert not small["significant"] and small["ci_high"] < 0
    text = re.sub(r"\s+", " ", render_to_string("plays/_lift.html", {"lift": small}))
    assert "Not yet significant" in text and "includes no effect" not in text
    wide = lift.lift(treatment_n=100, treatment_conversions=12, holdout_n=100, holdout_conversions=10).as_dict()
    assert "includes no effect" in re.sub(r"\s+", " ", render_to_string("plays/_lift.html", {"lift": wide}))
