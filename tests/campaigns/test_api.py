"""/api/v1/plays/, /api/v1/campaigns/, /api/v1/webhooks/ and the ad-audience exports:
happy paths, coded bad input with paths (never a 500), permissions and tenant isolation."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from campaigns.models import Assignment, Campaign, Send, WebhookDelivery, WebhookEndpoint
from customers.models import Consent, Event
from tests.campaigns.conftest import T0, people, static_segment
from tests.conftest import host_of, membership_of, session

NOW = T0 + timedelta(days=2)
LATER = (T0 + timedelta(days=5)).isoformat()
EMAIL = {"subject": "Hi {{ first_name }}", "body": "Hello {{ first_name }}"}


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield



def call(client, method, url, body=None, tenant=None):
    response = getattr(client, method)(url, json.dumps(body or {}), content_type="application/json") \
        if method in ("post", "patch") else client.get(url, body or {})
    if tenant is not None:
        connection.set_tenant(tenant)
    return response


def problems(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def campaign_body(segment, **extra):
    return {"name": "Welcome", "segment_id": segment.pk, "channel": "email",
            "schedule": {"kind": "once", "at": LATER}, "content": EMAIL} | extra


# ------------------------------------------------------------------------------ plays


def test_plays_are_created_listed_read_updated_and_measured(alpha):
    crowd = people(4)
    segment = static_segment("trial", crowd, at=T0 - timedelta(days=1))
    Event.objects.create(customer=crowd[0], name="project_created", timestamp=T0 + timedelta(hours=1))
    admin = session(alpha)
    created = call(admin, "post", "/api/v1/plays/", {
        "name": "Activate trials", "segment_id": segment.pk, "tactic_type": "email", "kpi": "feature_adoption",
        "kpi_event": "project_created", "target": "0.5", "starts_on": T0.date().isoformat()}, alpha)
    assert created.status_code == 201, created.content
    play = created.json()
    assert play["segment"] == {"id": segment.pk, "key": "trial", "name": "Trial"} and play["status"] == "planned"
    assert [p["id"] for p in call(admin, "get", "/api/v1/plays/", {"segment": "trial"}).json()["results"]] == [play["id"]]
    assert call(admin, "get", "/api/v1/plays/", {"segment": "other"}).json()["results"] == []
    updated = call(admin, "patch", f"/api/v1/plays/{play['id']}/", {"status": "active"}, alpha)
    assert updated.json()["status"] == "active" and updated.json()["name"] == "Activate trials"
    kpi = call(admin, "get", f"/api/v1/plays/{play['id']}/kpi/", tenant=alpha).json()
    assert (kpi["numerator"], kpi["denominator"], kpi["value"], kpi["met"]) == (1, 4, 0.25, False)


def test_bad_play_input_names_every_problem(alpha):
    admin = session(alpha)
    response = call(admin, "post", "/api/v1/plays/", {"name": "", "segment_id": 10**20, "tactic_type": "fax",
                                                      "kpi": "cac", "bogus": 1}, alpha)
    assert response.status_code == 400
    assert {("segment_id", "max_value"), ("tactic_type", "invalid_choice"), ("bogus", "unknown_field")} <= problems(response)
    segment = static_segment("s", [])
    service_level = call(admin, "post", "/api/v1/plays/", {"name": " ", "segment_id": segment.pk + 1000,
                                                           "tactic_type": "email", "kpi": "custom"}, alpha)
    assert problems(service_level) >= {("segment_id", "unknown_segment"), ("kpi_event", "required"),
                                       ("kpi_days", "required")}


# ------------------------------------------------------------------------------ campaigns


def test_a_campaign_is_created_filtered_updated_launched_paused_and_cancelled(alpha):
    segment = static_segment("news", people(2))
    admin = session(alpha)
    created = call(admin, "post", "/api/v1/campaigns/", campaign_body(segment, holdout_percent="10"), alpha)
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["status"], body["channel"], body["holdout_percent"], body["segment"]["key"]) == (
        "draft", "email", "10.00", "news")
    url = f"/api/v1/campaigns/{body['id']}/"
    assert [c["id"] for c in call(admin, "get", "/api/v1/campaigns/", {"status": "draft", "channel": "email",
                                                                       "segment": "news"}).json()["results"]] == [body["id"]]
    assert call(admin, "get", "/api/v1/campaigns/", {"channel": "in_app"}).json()["results"] == []
    assert problems(call(admin, "get", "/api/v1/campaigns/", {"status": "sleeping"})) == {("status", "invalid_choice")}
    assert call(admin, "patch", url, {"name": "Welcome v2"}, alpha).json()["name"] == "Welcome v2"
    launched = call(admin, "post", url + "launch/", tenant=alpha)
    assert launched.status_code == 200 and launched.json()["status"] == "scheduled"
    assert launched.json()["next_run_at"].startswith(LATER[:10])
    locked = call(admin, "patch", url, {"holdout_percent": "20"}, alpha)
    assert (locked.status_code, problems(locked)) == (400, {("holdout_percent", "locked_after_launch")})
    paused = call(admin, "post", url + "pause/", {"reason": "Copy review"}, alpha)
    assert (paused.json()["status"], paused.json()["pause_reason"]) == ("paused", "Copy review")
    again = call(admin, "post", url + "pause/", tenant=alpha)
    assert (again.status_code, problems(again)) == (409, {("status", "invalid_transition")})
    assert call(admin, "post", url + "cancel/", tenant=alpha).json()["status"] == "cancelled"
    actions = set(AuditEvent.objects.filter(target_id=str(body["id"]), action__startswith="campaign.")
                  .values_list("action", flat=True))
    assert {"campaign.launched", "campaign.paused", "campaign.cancelled"} <= actions


def test_bad_campaign_input_is_coded_with_paths_never_a_500(alpha, other_tenant):
    admin = session(alpha)
    segment = static_segment("news", [])
    connection.set_tenant(other_tenant)
    foreign = static_segment("beta-only", [])
    connection.set_tenant(alpha)
    cases = [
        ({"schedule": {"kind": "once", "at": "tomorrow"}}, ("schedule.at", "invalid_datetime")),
        ({"schedule": {"kind": "recurring", "every": "weekly", "time": "25:00", "weekday": 9}},
         ("schedule.weekday", "invalid_range")),
        ({"schedule": "soon"}, ("schedule", "invalid_type")),
        ({"content": {"subject": "Hi {% if %}", "body": "b"}}, ("content.subject", "template_syntax")),
        ({"content": {"subject": "{{ name|date:'Y' }}{% load static %}", "body": "b"}}, ("content.subject", "template_syntax")),
        ({"content": {"body": "b"}}, ("content.subject", "required")),
        ({"segment_id": foreign.pk + 10_000}, ("segment_id", "unknown_segment")),
        ({"segment_id": "news"}, ("segment_id", "invalid")),
        ({"holdout_percent": "75"}, ("holdout_percent", "invalid_range")),
        ({"channel": "sms"}, ("channel", "invalid_choice")),
        ({"cap_max_sends": 3}, ("cap_days", "incomplete_cap")),
        ({"play_id": 999_999}, ("play_id", "unknown_play")),
    ]
    for extra, expected in cases:
        response = call(admin, "post", "/api/v1/campaigns/", campaign_body(segment, **extra), alpha)
        assert response.status_code == 400, (extra, response.content)
        assert expected in problems(response), (extra, problems(response))
    assert call(admin, "post", "/api/v1/campaigns/", "not json", alpha).status_code == 400
    assert not Campaign.objects.exists()


def test_preview_renders_for_a_customer_and_masks_for_roles_without_pii(alpha):
    ada, = people(1, prefix="ada")
    segment = static_segment("news", [ada])
    admin = session(alpha)
    cid = call(admin, "post", "/api/v1/campaigns/", campaign_body(segment), alpha).json()["id"]
    url = f"/api/v1/campaigns/{cid}/preview/"
    shown = call(admin, "post", url, {"customer_id": ada.pk}, alpha).json()
    assert (shown["channel"], shown["customer_id"], shown["rendered"]["subject"]) == ("email", ada.pk, "Hi Person0")
    assert call(admin, "post", url, {}, alpha).json()["rendered"]["subject"] == "Hi Person0"  # first member
    viewer = call(session(alpha, "viewer"), "post", url, {"customer_id": ada.pk}, alpha).json()
    assert viewer["rendered"]["subject"] == "Hi Ada"  # the sample's name, not the customer's
    unknown = call(admin, "post", url, {"customer_id": ada.pk + 10_000}, alpha)
    assert (unknown.status_code, problems(unknown)) == (400, {("customer_id", "unknown_customer")})
    assert problems(call(admin, "post", url, {"variant": "nope"}, alpha)) == {("variant", "unknown_variant")}


def test_results_and_the_send_log(alpha):
    crowd = people(6)
    segment = static_segment("news", crowd)
    admin = session(alpha)
    cid = call(admin, "post", "/api/v1/campaigns/", campaign_body(segment, goal_event="upgraded"), alpha).json()["id"]
    campaign = Campaign.objects.get(pk=cid)
    for index, person in enumerate(crowd):
        Assignment.objects.create(campaign=campaign, customer=person, group="holdout" if index < 2 else "treatment",
                                  assigned_at=T0)
        Send.objects.create(campaign=campaign, customer=person, occasion="once", channel="email",
                            status="sent" if index >= 2 else "suppressed", claimed_at=T0 + timedelta(minutes=index))
    Event.objects.create(customer=crowd[3], name="upgraded", timestamp=T0 + timedelta(days=1))
    Event.objects.create(customer=crowd[4], name="upgraded", timestamp=T0 + timedelta(days=1))
    results = call(admin, "get", f"/api/v1/campaigns/{cid}/results/", tenant=alpha).json()
    overall = results["overall"]
    assert (overall["treatment_n"], overall["treatment_conversions"], overall["holdout_n"]) == (4, 2, 2)
    assert overall["absolute_lift"] == 0.5 and overall["significant"] is False
    assert results["sends"] == {"sent": 4, "suppressed": 2}
    first = call(admin, "get", f"/api/v1/campaigns/{cid}/sends/", {"limit": 4}, alpha).json()
    assert [r["customer"]["external_id"] for r in first["results"]] == ["c5", "c4", "c3", "c2"]
    rest = call(admin, "get", first["next"].split("testserver")[-1], tenant=alpha).json()
    assert [r["customer"]["external_id"] for r in rest["results"]] == ["c1", "c0"]
    assert {r["status"] for r in call(admin, "get", f"/api/v1/campaigns/{cid}/sends/", {"status": "suppressed"},
                                      alpha).json()["results"]} == {"suppressed"}
    bad = call(admin, "get", f"/api/v1/campaigns/{cid}/sends/", {"cursor": "garbage"}, alpha)
    assert (bad.status_code, problems(bad)) == (400, {("cursor", "invalid_cursor")})


# ------------------------------------------------------------------------------ webhooks


def test_webhooks_are_created_read_updated_tested_and_logged(alpha, loopback_server, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    segment = static_segment("news", [])
    admin = session(alpha)
    created = call(admin, "post", "/api/v1/webhooks/", {"segment_id": segment.pk, "url": loopback_server.url + "/hook",
                                                        "events": ["entered"]}, alpha)
    assert created.status_code == 201, created.content
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["entered"]
    url = f"/api/v1/webhooks/{hook['id']}/"
    assert call(session(alpha, "viewer"), "get", url, tenant=alpha).json()["secret"] is None
    assert call(admin, "patch", url, {"events": ["entered", "exited"]}, alpha).json()["events"] == ["entered", "exited"]
    tested = call(admin, "post", url + "test/", tenant=alpha).json()
    assert tested == {"ok": True, "status": 200, "error": ""}
    assert json.loads(loopback_server.requests[-1]["body"])["type"] == "webhook.test"
    WebhookDelivery.objects.create(endpoint_id=hook["id"], change_id=1, payload={"type": "segment.entered"},
                                   status="delivered", attempts=1, response_code=200)
    log = call(admin, "get", url + "deliveries/", tenant=alpha).json()["results"]
    assert [(d["change_id"], d["status"]) for d in log] == [(1, "delivered")]


def test_webhook_urls_failing_the_guard_are_refused_at_url(alpha):
    segment = static_segment("news", [])
    admin = session(alpha)
    for hostile in ("http://127.0.0.1/x", "http://169.254.169.254/latest", "http://10.0.0.5/", "ftp://example.com/",
                    "http://user:pw@example.com/"):
        response = call(admin, "post", "/api/v1/webhooks/", {"segment_id": segment.pk, "url": hostile,
                                                            "events": ["entered"]}, alpha)
        assert response.status_code == 400 and "url" in {p for p, _ in problems(response)}, hostile
    hook = WebhookEndpoint.objects.create(segment=segment, url="https://example.com/h", secret="whsec_AAAA",
                                          events=["entered"])
    response = call(admin, "patch", f"/api/v1/webhooks/{hook.pk}/", {"url": "http://[::1]/"}, alpha)
    assert response.status_code == 400 and {p for p, _ in problems(response)} == {"url"}
    assert WebhookEndpoint.objects.get(pk=hook.pk).url == "https://example.com/h"
    assert not WebhookEndpoint.objects.exclude(pk=hook.pk).exists()


# ------------------------------------------------------------------------------ exports


def _rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_audience_exports_are_hashed_and_a_campaigns_leaves_out_its_holdout(alpha):
    crowd = people(3, traits={"phone": "+44 20 7946 0958"})
    for customer in crowd:  # only members who granted ads consent are uploaded
        Consent.objects.create(customer=customer, channel="ads", granted=True, changed_at=T0)
    segment = static_segment("ads", crowd + people(1, prefix="noconsent"))
    admin, analyst = session(alpha), session(alpha, "analyst")
    seg = analyst.get("/api/v1/segments/ads/audience.csv")
    connection.set_tenant(alpha)
    assert seg.status_code == 200 and seg["Content-Type"].startswith("text/csv")
    rows = _rows(seg)
    assert rows[0] == ["email_sha256", "phone_sha256"]
    assert sorted(rows[1:]) == sorted([sha(f"c{i}@example.com"), sha("442079460958")] for i in range(3))
    cid = call(admin, "post", "/api/v1/campaigns/", campaign_body(segment, channel="ad_audience", content={}),
               alpha).json()["id"]
    campaign = Campaign.objects.get(pk=cid)
    Assignment.objects.create(campaign=campaign, customer=crowd[0], group="holdout", assigned_at=T0)
    exported = analyst.get(f"/api/v1/campaigns/{cid}/audience.csv")
    connection.set_tenant(alpha)
    assert sorted(r[0] for r in _rows(exported)[1:]) == sorted(sha(f"c{i}@example.com") for i in (1, 2))
    assert Assignment.objects.filter(campaign=campaign).count() == 4  # the others were assigned an arm
    assert AuditEvent.objects.filter(action__in=["segment.audience_exported", "campaign.audience_exported"]).count() == 2
    assert session(alpha, "marketer").get("/api/v1/segments/ads/audience.csv").status_code == 403
    assert analyst.get("/api/v1/segments/nope/audience.csv").status_code == 404


# ------------------------------------------------------------------------------ isolation and roles


def test_another_workspaces_ids_are_not_found(alpha, other_tenant):
    connection.set_tenant(other_tenant)
    beta_admin = membership_of(other_tenant, "admin@beta.test")
    from campaigns.plays.services import play_create
    from campaigns.services.campaigns import campaign_create

    segment = static_segment("beta-seg", [])
    campaign = campaign_create(actor=beta_admin, **campaign_body(segment))
    play = play_create(actor=beta_admin, name="Beta play", segment_id=segment.pk, tactic_type="email",
                       kpi="conversion_rate")
    hook = WebhookEndpoint.objects.create(segment=segment, url="https://example.com/h", secret="whsec_AAAA",
                                          events=["entered"])
    connection.set_tenant(alpha)
    Campaign.objects.filter(pk=campaign.pk).delete()  # make sure the ids are free in alpha (they are)
    admin = session(alpha)
    for method, url in (("get", f"/api/v1/campaigns/{campaign.pk}/"), ("patch", f"/api/v1/campaigns/{campaign.pk}/"),
                        ("post", f"/api/v1/campaigns/{campaign.pk}/launch/"),
                        ("get", f"/api/v1/campaigns/{campaign.pk}/results/"),
                        ("get", f"/api/v1/plays/{play.pk}/"), ("get", f"/api/v1/plays/{play.pk}/kpi/"),
                        ("get", f"/api/v1/webhooks/{hook.pk}/"), ("post", f"/api/v1/webhooks/{hook.pk}/test/"),
                        ("get", f"/api/v1/campaigns/{10**20}/"), ("get", "/api/v1/segments/beta-seg/audience.csv")):
        response = call(admin, method, url, {"name": "x"} if method == "patch" else None, alpha)
        assert response.status_code == 404, (method, url)
    creating = call(admin, "post", "/api/v1/campaigns/", campaign_body(segment), alpha)
    assert problems(creating) == {("segment_id", "unknown_segment")}
    connection.set_tenant(other_tenant)
    assert Campaign.objects.get(pk=campaign.pk).name == "Welcome"


def test_roles_read_edit_and_launch_as_the_catalogue_says(alpha):
    segment = static_segment("news", [])
    cid = call(session(alpha), "post", "/api/v1/campaigns/", campaign_body(segment), alpha).json()["id"]
    viewer, analyst, marketer = session(alpha, "viewer"), session(alpha, "analyst"), session(alpha, "marketer")
    assert call(viewer, "get", f"/api/v1/campaigns/{cid}/results/", tenant=alpha).status_code == 200
    assert call(analyst, "patch", f"/api/v1/campaigns/{cid}/", {"name": "x"}, alpha).status_code == 403
    assert call(viewer, "post", f"/api/v1/campaigns/{cid}/launch/", tenant=alpha).status_code == 403
    assert call(marketer, "post", f"/api/v1/campaigns/{cid}/launch/", tenant=alpha).status_code == 200
    assert Client(HTTP_HOST=host_of(alpha)).get("/api/v1/campaigns/").status_code == 401


def test_the_schema_still_renders_with_the_campaign_routes(alpha):
    response = session(alpha).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert {"/api/v1/campaigns/{id}/launch/", "/api/v1/plays/{id}/kpi/", "/api/v1/webhooks/{id}/test/",
            "/api/v1/segments/{key}/audience.csv"} <= set(paths)
