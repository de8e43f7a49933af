"""What PostgreSQL cannot hold never reaches it: NUL, lone surrogates, nesting past the
limit, non-finite numbers, instants out of range and numbers past a column's range are
refused per item with a code and a path on every way in, and the valid items beside them
are stored (issue: hardening, finding 3)."""

import json
from datetime import datetime, timezone

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import schema_context

from apikeys.selectors import write_key_current
from common.jsonvalues import MAX_DEPTH, TOO_DEEP_MARKER, loads, value_problem
from customers.models import ConsentChange, Customer, Event, SurveyResponse
from tests.conftest import host_of, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Each hostile part as raw JSON text (a NaN or a 1,000-deep list cannot go through
# json.dumps), with the path it must be reported at (under the item) and its code.
HOSTILE_PROPERTIES = {
    "nul_value": ('{"p": "a\\u0000b"}', "properties.p", "null_characters_not_allowed"),
    "nul_key": ('{"a\\u0000": 1}', "properties.a\\u0000", "null_characters_not_allowed"),
    "surrogate_value": ('{"p": "x\\ud800"}', "properties.p", "surrogate_characters_not_allowed"),
    "surrogate_key": ('{"\\udfff": 1}', "properties.\\udfff", "surrogate_characters_not_allowed"),
    "deep_40": ('{"p": ' + nested(40) + "}", "properties.p" + "[0]" * (MAX_DEPTH - 2), "too_deep"),
    "deep_1000": ('{"p": ' + nested(1000) + "}", None, "too_deep"),
    "deep_5000": ('{"p": ' + nested(5000) + "}", None, "too_deep"),
    "nan": ('{"p": NaN}', "properties.p", "invalid_value"),
    "infinity": ('{"p": [-Infinity]}', "properties.p[0]", "invalid_value"),
    "1e400": ('{"p": {"q": 1e400}}', "properties.p.q", "invalid_value"),
}


def test_value_problem_names_the_first_bad_part_in_document_order():
    problem = value_problem({"a": "ok", "b": ["fine", 1.5, {"c": "\x00"}], "d": "\ud800"}, "item")
    assert (problem.path, problem.code) == ("item.b[2].c", "null_characters_not_allowed")
    assert value_problem({"a": [1, 2.5, "x", None, True, {"b": 10**30}]}) is None


def test_loads_cuts_only_what_is_nested_past_the_parsers():
    raw = '{"batch": [{"ok": 1}, {"p": ' + nested(3000) + "}]}"
    body = loads(raw.encode())
    assert body["batch"][0] == {"ok": 1}
    assert json.dumps(TOO_DEEP_MARKER) in json.dumps(body["batch"][1])
    assert value_problem(body["batch"][1]).code == "too_deep"
    assert loads(b'{"s": "[[[[\\"]]"}') == {"s": '[[[["]]'}  # brackets inside text are text
    with pytest.raises(ValueError):
        loads(b"[" * 3000)  # unbalanced: still not JSON
    assert loads(b'{"n": 123456789012345678901}') == {"n": 123456789012345678901}  # exact, not a float


# ------------------------------------------------------------------------------ /v1/*


@pytest.fixture
def write_key(tenant):
    with schema_context(tenant.schema_name):
        return write_key_current().key


def track(tenant, raw: str, path: str = "/v1/batch", **headers):
    return Client(HTTP_HOST=host_of(tenant)).post(path, raw.encode("utf-8", "surrogatepass"),
                                                 content_type="application/json", **headers)


def valid_track(user: str) -> str:
    return json.dumps({"type": "track", "userId": user, "event": "login", "messageId": f"ok-{user}"})


@pytest.mark.parametrize("case", sorted(HOSTILE_PROPERTIES))
def test_a_hostile_property_is_refused_per_item_and_its_batch_stored(tenant, write_key, case):
    properties, path, code = HOSTILE_PROPERTIES[case]
    hostile = '{"type": "track", "userId": "h1", "event": "e", "properties": ' + properties + "}"
    response = track(tenant, '{"writeKey": "%s", "batch": [%s, %s]}' % (write_key, valid_track("v1"), hostile))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    [rejected] = body["rejected"]
    assert (rejected["index"], rejected["code"]) == (1, code)
    assert rejected["path"] == (f"batch[1].{path}" if path else rejected["path"])
    assert rejected["path"].startswith("batch[1].properties.")
    with schema_context(tenant.schema_name):
        assert list(Event.objects.values_list("customer__external_id", flat=True)) == ["v1"]


HOSTILE_FIELDS = {
    "nul_event": ({"event": "log\x00in"}, "event", "null_characters_not_allowed"),
    "nul_user_id": ({"userId": "h\x00"}, "userId", "null_characters_not_allowed"),
    "surrogate_user_id": ({"userId": "h\ud800"}, "userId", "surrogate_characters_not_allowed"),
    "nul_message_id": ({"messageId": "m\x00"}, "messageId", "null_characters_not_allowed"),
    "nul_anonymous_id": ({"anonymousId": "\x00"}, "anonymousId", "null_characters_not_allowed"),
    "timestamp_far_future": ({"timestamp": "9999-12-31T23:59:59-12:00"}, "timestamp", "out_of_range"),
    "timestamp_year_one": ({"timestamp": "0001-01-01T00:00:00+14:00"}, "timestamp", "out_of_range"),
    "sent_at_far_future": ({"originalTimestamp": "2026-11-23T12:00:00Z", "sentAt": "9999-12-31T23:59:59-12:00"},
                           "sentAt", "out_of_range"),
    "original_year_one": ({"originalTimestamp": "0001-01-01T00:00:00+14:00", "sentAt": "2026-11-23T12:00:00Z"},
                          "originalTimestamp", "out_of_range"),
    "skew_past_the_range": ({"originalTimestamp": "1800-01-02T00:00:00Z", "sentAt": "2200-12-30T00:00:00Z"},
                            "sentAt", "out_of_range"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FIELDS))
def test_a_hostile_field_is_refused_per_item(tenant, write_key, case):
    fields, path, code = HOSTILE_FIELDS[case]
    hostile = {"type": "track", "userId": "h1", "event": "e", **fields}
    raw = json.dumps({"writeKey": write_key, "batch": [json.loads(valid_track("v1")), hostile]})
    body = track(tenant, raw).json()
    assert body["accepted"] == 1
    assert [(r["path"], r["code"]) for r in body["rejected"]] == [(f"batch[1].{path}", code)]


HOSTILE_TRAITS = {
    "company_size_1e10": ({"company_size": 10**10}, "company_size", "out_of_range"),
    "company_size_fraction": ({"company_size": 12.5}, "company_size", "out_of_range"),
    "annual_revenue_1e30": ({"annual_revenue": 1e30}, "annual_revenue", "out_of_range"),
    "country_too_long": ({"country": "Germany"}, "country", "too_long"),
    "tech_stack_item_too_long": ({"tech_stack": ["x" * 65]}, "tech_stack", "too_long"),
    "birth_date_out_of_range": ({"birth_date": "0001-01-01"}, "birth_date", "out_of_range"),
    "custom_date_out_of_range": ({"renewal_at": "9999-12-31"}, "renewal_at", "out_of_range"),
    "list_item_nan": ({"scores": [1, float("nan")]}, "scores[1]", "invalid_value"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TRAITS))
def test_an_identify_with_a_trait_its_column_cannot_hold_is_refused_per_item(tenant, write_key, case):
    traits, key, code = HOSTILE_TRAITS[case]
    if case == "custom_date_out_of_range":  # registered as a datetime first, as a client would
        track(tenant, json.dumps({"writeKey": write_key, "batch": [
            {"type": "identify", "userId": "r", "traits": {"renewal_at": "2027-01-01"}}]}))
    batch = [{"type": "identify", "userId": "v1", "traits": {"plan": "pro"}},
             {"type": "identify", "userId": "h1", "traits": {"plan": "pro", **traits}}]
    body = track(tenant, json.dumps({"writeKey": write_key, "batch": batch})).json()
    assert body["accepted"] == 1, body
    assert [(r["path"], r["code"]) for r in body["rejected"]] == [(f"batch[1].traits.{key}", code)]
    with schema_context(tenant.schema_name):
        assert Customer.objects.get(external_id="v1").plan == "pro"
        assert not Customer.objects.filter(external_id="h1").exists()


def test_group_traits_past_their_columns_are_refused_per_item(tenant, write_key):
    body = track(tenant, json.dumps({"writeKey": write_key, "batch": [
        {"type": "group", "userId": "g1", "groupId": "acme", "traits": {"employees": 10**10}},
        {"type": "group", "userId": "g2", "groupId": "acme", "traits": {"employees": 40}}]})).json()
    assert body["accepted"] == 1
    assert [(r["path"], r["code"]) for r in body["rejected"]] == [("batch[0].traits.company_size", "out_of_range")]


def test_a_single_call_with_a_hostile_part_is_a_400_naming_it(tenant, write_key):
    response = track(tenant, '{"writeKey": "%s", "userId": "h", "event": "e\\u0000"}' % write_key, "/v1/track")
    assert response.status_code == 400
    assert [(r["path"], r["code"]) for r in response.json()["rejected"]] == [("event", "null_characters_not_allowed")]


def test_a_content_length_that_is_not_a_number_is_a_400(tenant, write_key):
    response = track(tenant, json.dumps({"writeKey": write_key, "batch": []}), CONTENT_LENGTH="ten")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_content_length"


# ------------------------------------------------------------------------------ REST API


def api(tenant, url: str, raw: str, method: str = "post"):
    client = session(tenant)
    return getattr(client, method)(url, raw.encode("utf-8", "surrogatepass"), content_type="application/json")


@pytest.mark.parametrize("case", sorted(HOSTILE_PROPERTIES))
def test_api_events_refuse_a_hostile_item_and_store_the_rest(tenant, case):
    properties, path, code = HOSTILE_PROPERTIES[case]
    valid = json.dumps({"external_id": "v1", "name": "login"})
    hostile = '{"external_id": "h1", "name": "e", "properties": ' + properties + "}"
    response = api(tenant, "/api/v1/events/", '{"events": [%s, %s]}' % (valid, hostile))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    [rejected] = body["rejected"]
    assert rejected["code"] == code
    assert rejected["path"] == (f"events[1].{path}" if path else rejected["path"])
    assert rejected["path"].startswith("events[1].properties.")


@pytest.mark.parametrize(("fields", "path", "code"), [
    ({"name": "log\x00in"}, "name", "null_characters_not_allowed"),
    ({"external_id": "h\ud800"}, "external_id", "surrogate_characters_not_allowed"),
    ({"message_id": "\x00"}, "message_id", "null_characters_not_allowed"),
    ({"timestamp": "9999-12-31T23:59:59-12:00"}, "timestamp", "out_of_range"),
    ({"timestamp": "0001-01-01T00:00:00+14:00"}, "timestamp", "out_of_range"),
])
def test_api_events_refuse_hostile_fields(tenant, fields, path, code):
    items = [{"external_id": "v1", "name": "login"}, {"external_id": "h1", "name": "e", **fields}]
    body = api(tenant, "/api/v1/events/", json.dumps({"events": items})).json()
    assert body["accepted"] == 1
    assert [(r["path"], r["code"]) for r in body["rejected"]] == [(f"events[1].{path}", code)]


@pytest.mark.parametrize(("raw_traits", "path", "code"), [
    ('"plan": "p\\u0000"', "plan", "null_characters_not_allowed"),
    ('"plan": "\\ud800"', "plan", "surrogate_characters_not_allowed"),
    ('"traits": {"k": "\\u0000"}', "traits.k", "null_characters_not_allowed"),
    ('"traits": {"k\\u0000": 1}', "traits.k\\u0000", "null_characters_not_allowed"),
    ('"traits": {"k": ' + nested(1000) + "}", None, "too_deep"),
    ('"traits": {"k": NaN}', "traits.k", "invalid_value"),
    ('"company_size": 10000000000', "company_size", "out_of_range"),
    ('"annual_revenue": 1e30', "annual_revenue", "out_of_range"),
    ('"country": "Germany"', "country", "too_long"),
    ('"signed_up_at": "9999-12-31T23:59:59-12:00"', "signed_up_at", "out_of_range"),
])
@pytest.mark.parametrize("method", ["post", "patch"])
def test_api_customer_writes_refuse_what_no_column_holds_and_change_nothing(tenant, raw_traits, path, code, method):
    assert api(tenant, "/api/v1/customers/", '{"external_id": "c1", "plan": "free"}').status_code == 201
    url = "/api/v1/customers/" if method == "post" else "/api/v1/customers/c1/"
    response = api(tenant, url, '{"external_id": "c1", %s}' % raw_traits, method)
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert error["code"] == code
    assert error["path"] == (path if path else error["path"])
    with schema_context(tenant.schema_name):
        customer = Customer.objects.get(external_id="c1")
        assert (customer.plan, customer.traits, customer.company_size) == ("free", {}, None)


def test_survey_responses_and_consents_refuse_hostile_items_and_store_the_rest(tenant):
    assert api(tenant, "/api/v1/customers/", '{"external_id": "c1"}').status_code == 201
    response = api(tenant, "/api/v1/surveys/responses/", json.dumps({"responses": [
        {"external_id": "c1", "survey": "nps", "score": 9},
        {"external_id": "c1", "survey": "nps", "score": 3, "comment": "bad\x00"},
        {"external_id": "c1", "survey": "nps", "score": 3, "responded_at": "9999-12-31T23:59:59-12:00"},
    ]}))
    assert response.status_code == 200, response.content
    assert [(r["path"], r["code"]) for r in response.json()["rejected"]] == [
        ("responses[1].comment", "null_characters_not_allowed"), ("responses[2].responded_at", "out_of_range")]
    response = api(tenant, "/api/v1/consents/", json.dumps({"consents": [
        {"external_id": "c1", "channel": "email", "granted": True},
        {"external_id": "c1", "channel": "email", "granted": False, "source": "\ud800"},
    ]}))
    assert [(r["path"], r["code"]) for r in response.json()["rejected"]] == [
        ("consents[1].source", "surrogate_characters_not_allowed")]
    with schema_context(tenant.schema_name):
        assert SurveyResponse.objects.count() == 1
        assert ConsentChange.objects.count() == 1


def test_an_api_body_nested_past_the_parsers_is_a_400_not_a_500(tenant):
    response = api(tenant, "/api/v1/segments/", '{"name": "x", "definition": ' + nested(100_000) + "}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "too_deep"
