"""CORS: SDKs in customers' web pages call /v1/ (tracking, in-app messages) from any
origin with the write key, never a cookie; nothing else of the app answers other origins."""

from __future__ import annotations

import json

from django.db import connection
from django.test import Client

from apikeys.selectors import write_key_current
from customers.models import Customer, Event
from tests.conftest import host_of

ORIGIN = "https://www.customer-site.example"


def _write_key(tenant) -> str:
    connection.set_tenant(tenant)
    key = write_key_current().key
    connection.set_schema_to_public()
    return key


def test_a_browser_preflight_to_tracking_is_allowed_from_any_origin(tenant):
    response = Client(HTTP_HOST=host_of(tenant)).options(
        "/v1/batch", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, content-encoding")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "content-encoding"} <= allowed
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert int(response["Access-Control-Max-Age"]) >= 3600
    assert "Access-Control-Allow-Credentials" not in response  # the write key, never cookies


def test_tracking_and_in_app_answers_carry_the_header(tenant):
    client = Client(HTTP_HOST=host_of(tenant))
    key = _write_key(tenant)
    batch = client.post("/v1/batch", json.dumps({"writeKey": key, "batch": [
        {"type": "track", "userId": "cors-1", "event": "page_viewed", "messageId": "cors-m1"}]}),
        content_type="text/plain", HTTP_ORIGIN=ORIGIN)
    assert batch.status_code == 200 and batch["Access-Control-Allow-Origin"] == "*"
    refused = client.post("/v1/batch", "{}", content_type="application/json", HTTP_ORIGIN=ORIGIN)
    assert refused.status_code == 401 and refused["Access-Control-Allow-Origin"] == "*"  # readable errors
    messages = client.get("/v1/in-app/messages", {"userId": "cors-1"}, HTTP_AUTHORIZATION=f"Bearer {key}",
                          HTTP_ORIGIN=ORIGIN)
    assert messages.status_code == 200 and messages["Access-Control-Allow-Origin"] == "*"


def test_the_app_and_its_api_answer_no_other_origin(tenant):
    client = Client(HTTP_HOST=host_of(tenant))
    for path in ("/api/v1/segments/", "/customers/", "/accounts/login/"):
        response = client.get(path, HTTP_ORIGIN=ORIGIN)
        assert "Access-Control-Allow-Origin" not in response, path
    preflight = client.options("/api/v1/segments/", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in preflight


def test_analytics_js_short_paths_store_what_the_long_paths_do(tenant):
    """@segment/analytics-next posts to /v1/t, /v1/i, /v1/p, /v1/s, /v1/g, /v1/a (one call)
    and /v1/b (its batching dispatcher), as text/plain from the customer's page, and retries
    with an X-Retry-Count header the preflight must allow."""
    client = Client(HTTP_HOST=host_of(tenant))
    key = _write_key(tenant)
    preflight = client.options("/v1/t", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                               HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-retry-count")
    assert "x-retry-count" in {h.strip() for h in preflight["Access-Control-Allow-Headers"].split(",")}
    calls = {"t": {"type": "track", "event": "short_path", "userId": "sp-1"},
             "i": {"type": "identify", "userId": "sp-1", "traits": {"plan": "pro"}},
             "p": {"type": "page", "userId": "sp-1", "name": "Pricing"},
             "s": {"type": "screen", "userId": "sp-1", "name": "Home"},
             "g": {"type": "group", "userId": "sp-1", "groupId": "acme", "traits": {"name": "Acme"}},
             "a": {"type": "alias", "userId": "sp-1", "previousId": "anon-sp"}}
    for path, body in calls.items():
        response = client.post(f"/v1/{path}", json.dumps({**body, "writeKey": key, "messageId": f"sp-{path}"}),
                               content_type="text/plain", HTTP_ORIGIN=ORIGIN, HTTP_X_RETRY_COUNT="1")
        assert (response.status_code, response.json()["accepted"]) == (200, 1), (path, response.content)
    batched = client.post("/v1/b", json.dumps({"writeKey": key, "sentAt": "2026-11-23T12:00:00Z", "batch": [
        {"type": "track", "event": "batched", "userId": "sp-1", "messageId": "sp-b1"}]}),
        content_type="text/plain", HTTP_ORIGIN=ORIGIN)
    assert (batched.status_code, batched.json()["accepted"]) == (200, 1)
    metrics = client.post("/v1/m", json.dumps({"series": [{"type": "Counter", "metric": "analytics_js.invoke",
                                                           "value": 1, "tags": {}}]}),
                          content_type="text/plain", HTTP_ORIGIN=ORIGIN)
    assert metrics.status_code == 200 and metrics["Access-Control-Allow-Origin"] == "*"
    connection.set_tenant(tenant)
    customer = Customer.objects.get(external_id="sp-1")
    assert customer.plan == "pro" and customer.company == "Acme"
    assert set(Event.objects.filter(customer=customer).values_list("name", flat=True)) == {
        "short_path", "page_viewed", "screen_viewed", "batched"}
