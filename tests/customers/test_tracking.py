"""Segment-spec tracking: parsing, the endpoint's answers, and the real Segment SDK."""

import base64
import gzip
import json
import socket
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from apikeys.selectors import write_key_current
from customers.models import Customer, Event
from customers.ingest.tracking import MAX_BATCH_BYTES, RequestRejected, parse_batch, read_body, segment_traits, write_key_from
from tests.conftest import host_of

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------ parsing


def test_write_key_comes_from_body_basic_or_bearer():
    basic = "Basic " + base64.b64encode(b"wk_abc:").decode()
    assert write_key_from({"writeKey": "wk_body"}, basic) == "wk_body"
    assert write_key_from({}, basic) == "wk_abc"
    assert write_key_from({}, "Bearer wk_bearer") == "wk_bearer"
    assert write_key_from({}, "Basic !!!") == ""


def test_gzip_bodies_and_limits():
    body = {"batch": []}
    assert read_body(gzip.compress(json.dumps(body).encode()), "gzip") == body
    with pytest.raises(RequestRejected) as caught:
        read_body(gzip.compress(b" " * (MAX_BATCH_BYTES + 10)), "gzip")  # a small bomb
    assert caught.value.code == "batch_too_large"
    for raw, encoding, code in [(b"\x1f\x8bnope", "gzip", "invalid_gzip"), (b"{nope", "", "invalid_json"),
                                (b"[]", "", "invalid_body")]:
        with pytest.raises(RequestRejected) as caught:
            read_body(raw, encoding)
        assert caught.value.code == code


def test_each_bad_item_is_reported_with_its_path():
    parsed = parse_batch({"batch": [
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "bogus", "userId": "u"},
        {"type": "track", "userId": "u"},
        {"type": "track", "userId": "u", "event": "x", "timestamp": "last tuesday"},
        {"type": "alias", "userId": "u"},
        "not an object",
        {"type": "track", "userId": "u", "event": "big", "properties": {"blob": "x" * 40_000}},
    ]}, now=NOW)
    assert [m.index for m in parsed.messages] == [0]
    assert [(p.path, p.code) for p in parsed.problems] == [
        ("batch[1].type", "invalid_type"), ("batch[2].event", "required"),
        ("batch[3].timestamp", "invalid_timestamp"), ("batch[4].previousId", "required"),
        ("batch[5]", "invalid_item"), ("batch[6]", "event_too_large")]


def test_an_identify_whose_context_is_not_an_object_is_refused_per_item():
    parsed = parse_batch({"batch": [
        {"type": "identify", "userId": "u", "context": True},
        {"type": "identify", "userId": "u", "context": {"traits": 5}},
        {"type": "identify", "userId": "u", "context": {"traits": {"plan": "pro"}}},
    ]}, now=NOW)
    assert [(p.path, p.code) for p in parsed.problems] == [
        ("batch[0].context", "invalid_value"), ("batch[1].traits", "invalid_value")]
    assert [m.traits for m in parsed.messages] == [{"plan": "pro"}]


def test_device_clock_skew_is_corrected_with_sent_at():
    item = {"type": "track", "userId": "u", "event": "e",
            "originalTimestamp": "2026-11-23T12:00:00Z", "sentAt": "2026-11-23T12:00:10Z"}
    parsed = parse_batch({"batch": [item]}, now=NOW + timedelta(hours=1))
    assert parsed.messages[0].timestamp == NOW + timedelta(hours=1) - timedelta(seconds=10)


def test_segment_reserved_traits_map_to_builtins():
    assert segment_traits({"firstName": "Ada", "lastName": "L", "title": "CTO", "createdAt": "2024-01-01",
                           "address": {"country": "GB", "city": "London", "street": "1 Way"},
                           "company": {"name": "Analytical", "employee_count": 12}, "plan": "pro", "x": 1}) == {
        "name": "Ada L", "occupation": "CTO", "signed_up_at": "2024-01-01", "country": "GB", "city": "London",
        "address": {"street": "1 Way"}, "company": "Analytical", "company_size": 12, "plan": "pro", "x": 1}


# ------------------------------------------------------------------------------ endpoint


@pytest.fixture
def write_key(tenant):
    with schema_context(tenant.schema_name):
        return write_key_current().key


def post(tenant, path, body, **headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Client(HTTP_HOST=host_of(tenant)).post(path, raw, content_type="application/json", **headers)


def test_a_batch_is_stored_and_answered_the_segment_way(tenant, write_key):
    response = post(tenant, "/v1/batch", {"writeKey": write_key, "batch": [
        {"type": "identify", "userId": "t1", "traits": {"email": "t1@example.test"}},
        {"type": "track", "userId": "t1", "event": "project_created", "messageId": "tm-1"},
        {"type": "track", "event": "no_id"},
    ]})
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 2, "rejected": [
        {"index": 2, "path": "batch[2].userId", "code": "required", "message": "Send a userId or an anonymousId."}]}
    with schema_context(tenant.schema_name):
        assert Customer.objects.get(external_id="t1").email == "t1@example.test"
        assert Event.objects.filter(message_id="tm-1").count() == 1


def test_single_calls_and_every_write_key_transport(tenant, write_key):
    basic = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    assert post(tenant, "/v1/track", {"userId": "t2", "event": "login"}, HTTP_AUTHORIZATION=basic).status_code == 200
    assert post(tenant, "/v1/identify", {"userId": "t2", "traits": {"plan": "pro"}},
                HTTP_AUTHORIZATION=f"Bearer {write_key}").status_code == 200
    gz = gzip.compress(json.dumps({"userId": "t2", "name": "Pricing", "writeKey": write_key}).encode())
    assert post(tenant, "/v1/page", gz, HTTP_CONTENT_ENCODING="gzip").status_code == 200
    with schema_context(tenant.schema_name):
        customer = Customer.objects.get(external_id="t2")
        assert customer.plan == "pro"
        assert set(customer.events.values_list("name", flat=True)) == {"login", "page_viewed"}


@pytest.mark.parametrize(("case", "status", "code"), [
    ("no_key", 401, "invalid_write_key"), ("other_tenant_key", 401, "invalid_write_key"),
    ("nul_key", 401, "invalid_write_key"), ("surrogate_key", 401, "invalid_write_key"),
    ("huge_key", 401, "invalid_write_key"), ("not_json", 400, "invalid_json"), ("no_batch", 400, "required"), ("too_big", 400, "batch_too_large"),
    ("all_items_bad", 400, "invalid_type"),
])
def test_bad_requests_get_a_coded_answer_and_store_nothing(tenant, other_tenant, write_key, case, status, code):
    body = {"writeKey": write_key, "batch": [{"type": "track", "userId": "t3", "event": "e"}]}
    if case == "no_key":
        body.pop("writeKey")
    elif case == "other_tenant_key":
        with schema_context(other_tenant.schema_name):
            body["writeKey"] = write_key_current().key
    elif case in ("nul_key", "surrogate_key", "huge_key"):
        body["writeKey"] = {"nul_key": "wk_\x00x", "surrogate_key": "wk_\ud800", "huge_key": "k" * 100_000}[case]
    elif case == "not_json":
        body = b"{batch"
    elif case == "no_batch":
        body.pop("batch")
    elif case == "too_big":
        body["batch"] = [{"type": "track", "userId": "t3", "event": "e", "properties": {"p": "x" * 30_000}}] * 20
    elif case == "all_items_bad":
        body["batch"] = [{"type": "nope", "userId": "t3"}]
    response = post(tenant, "/v1/batch", body)
    assert response.status_code == status
    payload = response.json()
    assert payload["success"] is False
    codes = [e["code"] for e in payload.get("errors", payload.get("rejected", []))]
    assert code in codes
    with schema_context(tenant.schema_name):
        assert not Customer.objects.filter(external_id="t3").exists()


def test_a_revoked_write_key_is_refused(tenant, write_key):
    from apikeys.services import write_key_rotate
    from tests.conftest import membership_of

    with schema_context(tenant.schema_name):
        write_key_rotate(actor=membership_of(tenant, "admin@alpha.test"), now=NOW)
    assert post(tenant, "/v1/track", {"writeKey": write_key, "userId": "t4", "event": "e"}).status_code == 401


def test_get_is_not_allowed(tenant):
    assert Client(HTTP_HOST=host_of(tenant)).get("/v1/batch").status_code == 405


def test_tracking_skips_the_browser_middleware_but_not_the_workspace_checks(tenant, write_key):
    """A tracking answer carries no cookie or session state; an unknown path under /v1/ is a
    404; a suspended workspace refuses tracking as it refuses pages."""
    from tenants.services import tenant_set_status

    response = post(tenant, "/v1/track", {"writeKey": write_key, "userId": "t5", "event": "e"})
    assert response.status_code == 200
    assert not response.cookies and "Cookie" not in response.get("Vary", "")
    assert post(tenant, "/v1/nope", {"writeKey": write_key}).status_code == 404
    tenant_set_status(tenant=tenant, status="suspended")
    try:
        response = post(tenant, "/v1/track", {"writeKey": write_key, "userId": "t6", "event": "e"})
        assert response.status_code == 403
        with schema_context(tenant.schema_name):
            assert not Customer.objects.filter(external_id="t6").exists()
    finally:
        tenant_set_status(tenant=tenant, status="active")


# ------------------------------------------------------------------------------ the real SDK


@pytest.fixture
def localhost_subdomains(monkeypatch):
    """Resolve *.localhost to loopback in this process, as browsers do (Python's resolver
    does not); the SDK's HTTP still goes over a real socket to the live server."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def committed_tracking(committed_db):
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug="alpha")
    prefix = f"sdk-{uuid.uuid4().hex[:8]}"
    yield tenant, prefix
    with schema_context(tenant.schema_name):
        Customer.objects.filter(external_id__startswith=prefix).delete()
        Customer.objects.filter(external_id__startswith=f"anon:{prefix}").delete()


@pytest.mark.parametrize("use_gzip", [False, True])
def test_the_segment_python_sdk_works_unchanged(strata_server, localhost_subdomains, committed_tracking, use_gzip):
    from segment.analytics import Client as SegmentClient

    tenant, prefix = committed_tracking
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    errors = []
    client = SegmentClient(key, host=f"http://{host_of(tenant)}:{strata_server.port}", sync_mode=True,
                           gzip=use_gzip, on_error=lambda error, items: errors.append(error), max_retries=1)
    client.identify(f"{prefix}-u", {"email": "sdk@example.test", "plan": "pro"}, anonymous_id=f"{prefix}-anon")
    client.track(f"{prefix}-u", "project_created", {"seats": 3})
    client.page(f"{prefix}-u", category="Docs", name="Install")
    client.flush()
    assert errors == []
    with schema_context(tenant.schema_name):
        customer = Customer.objects.get(external_id=f"{prefix}-u")
        assert (customer.email, customer.plan) == ("sdk@example.test", "pro")
        assert set(customer.events.values_list("name", flat=True)) == {"project_created", "page_viewed"}
        assert customer.identities.filter(kind="anonymous_id", value=f"{prefix}-anon").exists()


def test_sdk_retries_of_one_message_are_stored_once(strata_server, localhost_subdomains, committed_tracking):
    import requests

    tenant, prefix = committed_tracking
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    message = {"type": "track", "userId": f"{prefix}-r", "event": "login", "messageId": f"{prefix}-msg"}
    url = f"http://{host_of(tenant)}:{strata_server.port}/v1/batch"
    answers = [requests.post(url, json={"batch": [message]}, auth=(key, ""), timeout=10).json() for _ in range(3)]
    assert [a["accepted"] for a in answers] == [1, 1, 1]  # acknowledged each time, stored once
    with schema_context(tenant.schema_name):
        assert Event.objects.filter(message_id=f"{prefix}-msg").count() == 1
    connection.set_schema_to_public()


def test_a_write_key_past_its_limit_gets_429_and_its_batch_is_not_stored(tenant, settings):
    """SDKs retry a 429 after Retry-After, so the limit loses nothing; the refused batch is
    not half-stored. A fresh key (rotation) has a counter of its own."""
    from apikeys.services import write_key_rotate
    from tests.conftest import membership_of

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "tracking": "2/m"}
    with schema_context(tenant.schema_name):
        key = write_key_rotate(actor=membership_of(tenant, "admin@alpha.test"), now=NOW).key
    answers = [post(tenant, "/v1/batch", {"writeKey": key, "batch": [
        {"type": "track", "userId": f"rl-{i}", "event": "e", "messageId": f"rl-m{i}"}]}) for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.json()["errors"][0] == {"path": "writeKey", "code": "rate_limited",
                                           "message": refused.json()["errors"][0]["message"]}
    assert int(refused["Retry-After"]) >= 1
    with schema_context(tenant.schema_name):
        assert not Customer.objects.filter(external_id="rl-2").exists()
