"""CORS: SDKs in customers' web pages call /v1/ (tracking, in-app messages) from any
origin with the write key, never a cookie; nothing else of the app answers other origins."""

from __future__ import annotations

import json

from django.db import connection
from django.test import Client

from apikeys.selectors import write_key_current
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
