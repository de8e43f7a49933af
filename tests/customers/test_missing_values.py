"""Missing is "never sent" (or cleared with null); "" and [] a client sends are present, on
built-in traits too, email_opt_in included (shared/specs/segment-rules.md, "Clarified";
issue: hardening, finding 10). Written through the API and tracking, read by rules."""

import json
from datetime import datetime, timezone

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import schema_context

from apikeys.selectors import write_key_current
from customers.models import Customer
from tests.conftest import host_of, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def send(client, method: str, url: str, body: dict):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def stored(tenant, external_id: str) -> tuple:
    with schema_context(tenant.schema_name):
        c = Customer.objects.get(external_id=external_id)
        return c.plan, c.tech_stack, c.email_opt_in


def matching(client, condition: dict) -> set[str]:
    body = send(client, "post", "/api/v1/segments/preview/",
                {"definition": {"version": 1, "match": "all", "conditions": [condition]}}).json()
    assert body["count"] == len(body["sample"]), "a sample holds every match of these small worlds"
    return {c["external_id"] for c in body["sample"]}


def test_never_sent_null_and_empty_are_three_different_things(tenant):
    admin = session(tenant)
    assert send(admin, "post", "/api/v1/customers/", {"external_id": "never"}).status_code == 201
    assert send(admin, "post", "/api/v1/customers/", {"external_id": "nulls", "plan": None, "tech_stack": None,
                                                      "email_opt_in": None}).status_code == 201
    assert send(admin, "post", "/api/v1/customers/", {"external_id": "empty", "plan": "", "tech_stack": [],
                                                      "email_opt_in": False}).status_code == 201
    assert send(admin, "post", "/api/v1/customers/", {"external_id": "full", "plan": "pro", "tech_stack": ["react"],
                                                      "email_opt_in": True}).status_code == 201
    assert stored(tenant, "never") == stored(tenant, "nulls") == (None, None, None)
    assert stored(tenant, "empty") == ("", [], False)

    for field in ("plan", "tech_stack", "email_opt_in"):
        assert matching(admin, {"type": "trait", "field": field, "op": "is_set"}) == {"empty", "full"}, field
        assert matching(admin, {"type": "trait", "field": field, "op": "is_not_set"}) == {"never", "nulls"}, field
    assert matching(admin, {"type": "trait", "field": "email_opt_in", "op": "eq", "value": False}) == {"empty"}
    assert matching(admin, {"type": "trait", "field": "plan", "op": "neq", "value": "pro"}) == {"empty"}
    assert matching(admin, {"type": "trait", "field": "tech_stack", "op": "has_none", "value": ["react"]}) == {"empty"}


def test_null_clears_a_built_in_trait_and_the_rest_of_the_update_is_kept(tenant):
    admin = session(tenant)
    send(admin, "post", "/api/v1/customers/", {"external_id": "c1", "plan": "pro", "tech_stack": ["react"],
                                               "email_opt_in": True})
    response = send(admin, "patch", "/api/v1/customers/c1/", {"tech_stack": None, "email_opt_in": None, "plan": "team"})
    assert response.status_code == 200, response.content
    assert stored(tenant, "c1") == ("team", None, None)
    send(admin, "patch", "/api/v1/customers/c1/", {"tech_stack": []})
    assert stored(tenant, "c1") == ("team", [], None)


def test_tracking_identify_follows_the_same_rules(tenant):
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    batch = [{"type": "identify", "userId": "t1", "traits": {"plan": "", "tech_stack": []}},
             {"type": "identify", "userId": "t2", "traits": {"plan": None, "tech_stack": None}},
             {"type": "track", "userId": "t3", "event": "login"}]
    response = Client(HTTP_HOST=host_of(tenant)).post("/v1/batch", json.dumps({"writeKey": key, "batch": batch}),
                                                      content_type="application/json")
    assert response.json()["accepted"] == 3
    assert stored(tenant, "t1") == ("", [], None)
    assert stored(tenant, "t2") == stored(tenant, "t3") == (None, None, None)


def test_a_merge_keeps_the_survivors_present_values_and_fills_only_missing_ones(tenant):
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    client = Client(HTTP_HOST=host_of(tenant))
    batch = [{"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro", "tech_stack": ["vue"],
                                                                   "email_opt_in": True}},
             {"type": "identify", "userId": "m1", "traits": {"plan": ""}},
             {"type": "identify", "userId": "m1", "anonymousId": "a1"}]
    assert client.post("/v1/batch", json.dumps({"writeKey": key, "batch": batch}),
                       content_type="application/json").json()["accepted"] == 3
    assert stored(tenant, "m1") == ("", ["vue"], True)
