"""/api/v1/events/: batches of up to 1,000 through ingestion, per-item problems, listing."""

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import schema_context

from customers.models import Customer, Event, EventDefinition
from tests.conftest import host_of, make_member
from tests.customers.test_customers_api import key_client, problems, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
URL = "/api/v1/events/"


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def send(client: Client, body):
    return client.post(URL, body, content_type="application/json")


def stored(tenant) -> list[tuple]:
    with schema_context(tenant.schema_name):
        return list(Event.objects.order_by("id").values_list("customer__external_id", "name", "timestamp", "source"))


def test_good_items_are_stored_and_bad_ones_reported_with_paths(tenant):
    response = send(session(tenant), {"events": [
        {"external_id": "u1", "name": "signed_up", "timestamp": "2026-11-20T08:00:00+01:00",
         "properties": {"plan": "pro", "seats": 3}, "message_id": "m1"},
        {"external_id": "u1"},
        {"external_id": "u1", "name": "login", "timestamp": "yesterday"},
        {"name": "login"},
        {"external_id": "u1", "name": "login", "colour": "teal"},
        {"anonymous_id": "a1", "name": "page_viewed"},
        "login",
        {"external_id": "u1", "name": "x" * 201, "properties": []},
        {"external_id": "u2", "name": "upload", "properties": {"blob": "x" * 40_000}},
        {"external_id": "anon:a9", "anonymous_id": "a1", "name": "login"},
    ]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(r["index"], r["path"], r["code"]) for r in body["rejected"]] == [
        (1, "events[1].name", "required"),
        (2, "events[2].timestamp", "invalid"),
        (3, "events[3].external_id", "required"),
        (4, "events[4].colour", "unknown_field"),
        (6, "events[6]", "invalid"),
        (7, "events[7].name", "max_length"),
        (7, "events[7].properties", "not_a_dict"),
        (8, "events[8]", "event_too_large"),
        (9, "events[9].anonymous_id", "ambiguous"),
    ]
    assert all(r["message"] for r in body["rejected"])
    assert stored(tenant) == [("u1", "signed_up", datetime(2026, 11, 20, 7, tzinfo=timezone.utc), "api"),
                              ("anon:a1", "page_viewed", NOW, "api")]  # no timestamp: now
    with schema_context(tenant.schema_name):
        assert Event.objects.get(message_id="m1").properties == {"plan": "pro", "seats": 3}
        assert EventDefinition.objects.get(name="signed_up").properties == {"plan": "string", "seats": "number"}
        assert Customer.objects.get(external_id="u1").last_seen_at == datetime(2026, 11, 20, 7, tzinfo=timezone.utc)
        assert not Customer.objects.filter(external_id="u2").exists()


def test_a_batch_with_nothing_valid_is_a_400_with_every_problem(tenant):
    response = send(session(tenant), {"events": [{"name": "login"}, {"external_id": "u1"}]})
    assert response.status_code == 400
    assert problems(response) == {("events[0].external_id", "required"), ("events[1].name", "required")}
    assert stored(tenant) == []


@pytest.mark.parametrize("body, path, code", [
    ({"events": [{"external_id": "u1", "name": "e"}] * 1001}, "events", "too_many"),
    ({}, "events", "required"),
    ({"events": {"external_id": "u1", "name": "e"}}, "events", "not_a_list"),
    ({"events": []}, "events", "empty"),
    ({"events": [{"external_id": "u1", "name": "e"}], "batch": []}, "batch", "unknown_field"),
    ([{"external_id": "u1", "name": "e"}], "", "invalid_body"),
])
def test_a_body_that_is_not_a_batch_is_a_400_and_stores_nothing(tenant, body, path, code):
    response = send(session(tenant), body)
    assert response.status_code == 400 and problems(response) == {(path, code)}
    assert stored(tenant) == []


def test_exactly_1000_events_are_accepted(tenant):
    response = send(session(tenant), {"events": [{"external_id": f"u{n % 7}", "name": "e"} for n in range(1000)]})
    assert response.status_code == 200 and response.json()["accepted"] == 1000


def test_malformed_and_oversized_bodies_are_coded_4xx(tenant, monkeypatch):
    """A body that does not parse is a 400; one over the endpoint's limit a 413, as on
    every other API write; nothing is stored."""
    client = session(tenant)
    malformed = client.post(URL, "{nope", content_type="application/json")
    assert malformed.status_code == 400 and problems(malformed) == {("", "parse_error")}
    monkeypatch.setattr("customers.api.views.MAX_EVENTS_BYTES", 1024)
    big = send(client, {"events": [{"external_id": "u1", "name": "e", "properties": {"x": "y" * 2000}}]})
    assert big.status_code == 413 and problems(big) == {("", "too_large")}
    assert stored(tenant) == []


def test_duplicates_by_message_id_are_counted_not_stored_twice(tenant):
    client = session(tenant)
    batch = {"events": [{"external_id": "u1", "name": "paid", "message_id": "m1"},
                        {"external_id": "u1", "name": "paid", "message_id": "m1"},
                        {"external_id": "u1", "name": "paid", "message_id": "m2"}]}
    first = send(client, batch).json()
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (2, 1, [])
    retry = send(client, batch)
    assert retry.status_code == 200  # a retry of a stored batch is not an error
    assert (retry.json()["accepted"], retry.json()["duplicates"]) == (0, 3)
    assert len(stored(tenant)) == 2


def test_listing_filters_and_pages_latest_first(tenant):
    client = session(tenant)
    start = NOW - timedelta(days=10)
    events = [{"external_id": "u1" if n % 2 else "u2", "name": "login" if n % 3 else "purchase",
               "timestamp": (start + timedelta(hours=n)).isoformat()} for n in range(60)]
    assert send(client, {"events": events}).json()["accepted"] == 60

    first = client.get(URL).json()
    assert len(first["results"]) == 50 and first["next"]
    stamps = [e["timestamp"] for e in first["results"]]
    assert stamps == sorted(stamps, reverse=True)
    assert set(first["results"][0]) == {"id", "customer", "name", "timestamp", "properties", "message_id", "source",
                                        "received_at"}
    rest = client.get(first["next"]).json()
    assert len(rest["results"]) == 10 and rest["next"] is None

    def names(**params):
        response = client.get(URL, params)
        assert response.status_code == 200, response.content
        return [(e["customer"], e["name"]) for e in response.json()["results"]]

    assert len(names(name="purchase")) == 20
    assert {c for c, _ in names(customer="u1")} == {"u1"} and len(names(customer="u1")) == 30
    assert names(customer="nobody") == []
    window = names(since=(start + timedelta(hours=10)).isoformat(), until=(start + timedelta(hours=13)).isoformat())
    assert window == [("u2", "purchase"), ("u1", "login"), ("u2", "login")]  # hours 12, 11, 10
    assert client.get(URL, {"since": "soon"}).status_code == 400


def test_roles_and_scopes_decide_who_may_send(tenant):
    """data.import: admins, marketers and ingest/write keys; viewers and analysts get 403.
    Reading events needs customers.view, which an ingest-only key lacks."""
    batch = {"events": [{"external_id": "u1", "name": "login"}]}
    for role in ("viewer", "analyst"):
        client = session(tenant, role)
        assert client.get(URL).status_code == 200
        response = send(client, batch)
        assert response.status_code == 403 and problems(response) == {("", "permission_denied")}
    assert send(session(tenant, "marketer"), batch).status_code == 200
    ingest_key = key_client(tenant, ["ingest"])
    assert send(ingest_key, batch).status_code == 200
    assert ingest_key.get(URL).status_code == 403
    assert send(key_client(tenant, ["read"]), batch).status_code == 403
    assert len(stored(tenant)) == 2


def test_another_tenants_events_are_invisible(tenant, other_tenant):
    send(session(other_tenant), {"events": [{"external_id": "shared", "name": "beta_event"}]})
    send(session(tenant), {"events": [{"external_id": "shared", "name": "alpha_event"}]})
    reader = key_client(tenant, ["read"])
    assert [e["name"] for e in reader.get(URL).json()["results"]] == ["alpha_event"]
    assert reader.get(URL, {"name": "beta_event"}).json()["results"] == []
    outsider = Client(HTTP_HOST=host_of(tenant))
    outsider.force_login(make_member(other_tenant, "someone@beta.test", "admin"))
    assert send(outsider, {"events": [{"external_id": "x", "name": "e"}]}).status_code == 404
    assert [name for _, name, _, _ in stored(other_tenant)] == ["beta_event"]
