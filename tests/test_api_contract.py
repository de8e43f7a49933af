"""The API keeps its word (issue: hardening, finding 8): a segment is named by key or id
wherever one is named and every segment output shows both; a key's scopes can grant
launching campaigns and changing settings, so a script can do what the README lists;
an address under /api/ that names no route, and a cursor no page gave out, answer in the
API's error shape (404 and 400)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from campaigns.models import Campaign, Play, WebhookEndpoint
from customers.models import TraitDefinition
from tests.campaigns.conftest import T0, people, static_segment
from tests.conftest import host_of, session
from tests.customers.test_customers_api import key_client

NOW = T0 + timedelta(days=2)
LATER = (T0 + timedelta(days=5)).isoformat()


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def call(client, method: str, url: str, body=None, tenant=None):
    response = (getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")
                if method in ("post", "patch") else client.get(url, body or {}))
    if tenant is not None:
        connection.set_tenant(tenant)
    return response


def problems(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def campaign(segment_ref: dict) -> dict:
    return {"name": "Welcome", "channel": "email", "schedule": {"kind": "once", "at": LATER},
            "content": {"subject": "Hi", "body": "Hello"}, **segment_ref}


# ------------------------------------------------------------------------------ segments by key or id


def test_plays_campaigns_and_webhooks_take_a_segment_by_key_or_by_id(tenant, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    connection.set_tenant(tenant)
    segment = static_segment("trial", people(1))
    admin = session(tenant)
    shown = call(admin, "get", "/api/v1/segments/trial/", tenant=tenant).json()
    assert (shown["id"], shown["key"]) == (segment.pk, "trial")
    assert call(admin, "get", "/api/v1/segments/", tenant=tenant).json()["results"][0]["id"] == segment.pk

    play = {"name": "Onboard", "tactic_type": "email", "kpi": "conversion_rate", "kpi_event": "project_created",
            "kpi_days": 7}
    for ref in ({"segment": "trial"}, {"segment_id": segment.pk}):
        made = call(admin, "post", "/api/v1/plays/", {**play, **ref}, tenant)
        assert made.status_code == 201, made.content
        assert made.json()["segment"] == {"id": segment.pk, "key": "trial", "name": "Trial"}
        made = call(admin, "post", "/api/v1/campaigns/", campaign(ref), tenant)
        assert made.status_code == 201, made.content
        made = call(admin, "post", "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["entered"], **ref},
                    tenant)
        assert made.status_code == 201, made.content
    assert Play.objects.filter(segment=segment).count() == Campaign.objects.filter(segment=segment).count() == 2
    assert WebhookEndpoint.objects.filter(segment=segment).count() == 2
    moved = call(admin, "patch", f"/api/v1/campaigns/{Campaign.objects.first().pk}/", {"segment": "trial"}, tenant)
    assert moved.status_code == 200, moved.content


@pytest.mark.parametrize(("ref", "expected"), [
    ({"segment": "nope"}, {("segment", "unknown_segment")}),
    ({"segment": "trial", "segment_id": 1}, {("segment", "invalid")}),
    ({}, {("segment", "required")}),
    ({"segment": "Not A Key!"}, {("segment", "invalid")}),
])
def test_a_segment_named_wrongly_is_a_coded_400_and_nothing_is_stored(tenant, ref, expected):
    connection.set_tenant(tenant)
    static_segment("trial", [])
    response = call(session(tenant), "post", "/api/v1/campaigns/", campaign(ref), tenant)
    assert (response.status_code, problems(response)) == (400, expected)
    assert not Campaign.objects.exists()


# ------------------------------------------------------------------------------ scopes


def test_a_script_with_the_launch_scope_launches_and_pauses_a_campaign(tenant):
    connection.set_tenant(tenant)
    segment = static_segment("news", people(2))
    writer = key_client(tenant, ["read", "write"])
    connection.set_tenant(tenant)
    made = call(writer, "post", "/api/v1/campaigns/", campaign({"segment": "news"}), tenant)
    assert made.status_code == 201, made.content
    url = f"/api/v1/campaigns/{made.json()['id']}/"
    refused = call(writer, "post", url + "launch/", tenant=tenant)
    assert (refused.status_code, problems(refused)) == (403, {("", "permission_denied")})
    launcher = key_client(tenant, ["read", "write", "launch"])
    launched = call(launcher, "post", url + "launch/", tenant=tenant)
    assert (launched.status_code, launched.json()["status"]) == (200, "scheduled")
    assert call(launcher, "post", url + "pause/", {"reason": "Copy review"}, tenant).json()["status"] == "paused"
    assert Campaign.objects.get(segment=segment).status == "paused"


def test_the_settings_scope_changes_the_trait_registry_and_nothing_else(tenant):
    connection.set_tenant(tenant)
    TraitDefinition.objects.create(key="seats", type="number", category="firmographic", first_seen_at=NOW)
    settings_key = key_client(tenant, ["settings"])
    changed = call(settings_key, "patch", "/api/v1/traits/seats/", {"is_pii": True}, tenant)
    assert changed.status_code == 200, changed.content
    assert TraitDefinition.objects.get(key="seats").is_pii is True
    assert call(key_client(tenant, ["read"]), "patch", "/api/v1/traits/seats/", {"is_pii": False}, tenant).status_code == 403
    assert call(settings_key, "post", "/api/v1/customers/", {"external_id": "x"}, tenant).status_code == 403


# ------------------------------------------------------------------------------ the error shape


@pytest.mark.parametrize("url", ["/api/v1/nothing-here/", "/api/v1/customers/a/b/c/", "/api/v2/", "/api/",
                                 "/v1/nope"])
def test_an_address_that_names_no_route_is_a_json_404(tenant, url):
    for client in (session(tenant), Client(HTTP_HOST=host_of(tenant))):
        response = client.get(url)
        assert response.status_code == 404, (url, response.status_code)
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["errors"][0]["code"] == "not_found"


@pytest.mark.parametrize("url", ["/api/v1/customers/", "/api/v1/events/", "/api/v1/segments/", "/api/v1/campaigns/",
                                 "/api/v1/surveys/responses/", "/api/v1/audit-events/", "/api/v1/api-keys/",
                                 "/api/v1/members/", "/api/v1/webhooks/", "/api/v1/plays/", "/api/v1/imports/"])
def test_a_cursor_no_page_gave_out_is_a_400_at_cursor(tenant, url):
    response = session(tenant).get(url, {"cursor": "not-a-cursor"})
    assert response.status_code == 400, (url, response.status_code)
    assert problems(response) == {("cursor", "invalid_cursor")}


@pytest.mark.parametrize(("url", "name"), [
    ("/api/v1/customers/", "signed_up_before"), ("/api/v1/customers/", "last_seen_after"),
    ("/api/v1/events/", "since"), ("/api/v1/audit-events/", "until"),
])
@pytest.mark.parametrize("value", ["6875-02-27T03:19:18-19:42", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
def test_a_time_filter_postgres_cannot_take_is_a_400_not_a_500(tenant, url, name, value):
    """Python takes offsets up to ±23:59, PostgreSQL only ±15:59 (found by the schema fuzz)."""
    response = session(tenant).get(url, {name: value})
    assert (response.status_code, problems(response)) == (400, {(name, "out_of_range")})


def test_a_history_moment_out_of_range_is_a_400(tenant):
    connection.set_tenant(tenant)
    static_segment("vip", [])
    response = session(tenant).get("/api/v1/segments/vip/members/", {"at": "0001-01-01T00:00:00+14:00"})
    assert (response.status_code, problems(response)) == (400, {("at", "out_of_range")})
