"""Hostile JSON on every write path, generated (issue: hardening, "tests that must exist"):
NUL and lone surrogates in values and keys, numbers past every column and past float,
NaN and Infinity, instants out of any range or with offsets PostgreSQL refuses, huge
strings and nesting thousands deep. Whatever arrives: never a 5xx, the valid items beside
a hostile one are stored, and a refused request leaves nothing half-written.

Explicit cases of each class are in tests/customers/test_hostile_input.py and
tests/segments/test_hostile_definitions.py; this module is the generated proof."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apikeys.selectors import write_key_current
from common.errors import DomainError
from customers.imports.models import ImportJob
from customers.imports.services import import_run, import_start, import_suggestion, import_upload
from customers.models import Customer, Event
from segments.models import Segment
from segments.rules.nodes import RuleError
from segments.rules.parse import parse
from tests.conftest import host_of, membership_of, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
HOSTILE = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------------------ strategies

hostile_text = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "\udbff\udfff", "=HYPERLINK(\"http://x\")", "@SUM(1)", "",
                     " ", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "6875-02-27T03:19:18-19:42",
                     "2026-11-23", "pro", "NaN", "x" * 5000, "GB", "\u202e", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]),
    st.text(max_size=12),
)
hostile_number = st.one_of(
    st.sampled_from([0, -1, 2**31, 2**63, 10**30, -(10**40), 1e30, -1e308, 1e-300, float("nan"), float("inf"),
                     float("-inf"), 12.5]),
    st.integers(), st.floats(),
)
hostile_leaf = st.none() | st.booleans() | hostile_number | hostile_text
hostile_json = st.recursive(hostile_leaf, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(hostile_text, inner, max_size=3), max_leaves=10)


def deep(depth: int) -> str:
    return '{"a": ' + "[" * depth + "1" + "]" * depth + "}"


def raw(value) -> bytes:
    """JSON text as a client may send it: NaN and Infinity literals, lone surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


def post(client: Client, url: str, body: bytes, method: str = "post"):
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


# ------------------------------------------------------------------------------ /v1/*


hostile_object = st.dictionaries(hostile_text, hostile_json, min_size=1, max_size=4)
# Each field mostly gets what its type allows, so the hostile part reaches storage rather
# than being refused for its type first; now and then anything at all.
TRACK_FIELDS = {"userId": hostile_text, "anonymousId": hostile_text, "event": hostile_text, "messageId": hostile_text,
                "timestamp": hostile_text, "sentAt": hostile_text, "originalTimestamp": hostile_text,
                "properties": hostile_object, "traits": hostile_object, "context": hostile_object,
                "previousId": hostile_text, "groupId": hostile_text, "name": hostile_text}


@st.composite
def hostile_items(draw) -> dict:
    kind = draw(st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]))
    item = {"type": kind, "userId": "h-" + uuid.uuid4().hex[:8], "event": "e", "previousId": "p"}
    for field in draw(st.lists(st.sampled_from(sorted(TRACK_FIELDS)), min_size=1, max_size=3, unique=True)):
        item[field] = draw(TRACK_FIELDS[field] | hostile_json)
    return item


def test_tracking_batches_never_fail_and_keep_their_valid_items(tenant):
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    client = Client(HTTP_HOST=host_of(tenant))

    @HOSTILE
    @given(items=st.lists(hostile_items(), min_size=1, max_size=4), path=st.sampled_from(["/v1/batch", "/v1/b"]))
    def run(items, path):
        marker = "ok-" + uuid.uuid4().hex
        batch = [{"type": "track", "userId": marker, "event": "kept", "messageId": marker}, *items]
        response = post(client, path, raw({"writeKey": key, "batch": batch}))
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        assert body["accepted"] + len({r["index"] for r in body["rejected"]}) == len(batch)
        assert all(r["index"] > 0 and r["code"] for r in body["rejected"])
        with schema_context(tenant.schema_name):
            assert Event.objects.filter(message_id=marker).count() == 1

    run()


def test_single_tracking_calls_and_deep_bodies_never_fail(tenant):
    with schema_context(tenant.schema_name):
        key = write_key_current().key
    client = Client(HTTP_HOST=host_of(tenant))
    for depth in (30, 40, 1000, 5000, 50_000):
        response = post(client, "/v1/track", ('{"writeKey": "%s", "userId": "d", "event": "e", "properties": %s}'
                                              % (key, deep(depth))).encode())
        assert response.status_code in (200, 400), (depth, response.status_code)

    @HOSTILE
    @given(item=hostile_items())
    def run(item):
        path = {"track": "/v1/t", "identify": "/v1/identify", "page": "/v1/p", "screen": "/v1/screen",
                "group": "/v1/g", "alias": "/v1/alias"}[item["type"]]
        response = post(client, path, raw({**item, "writeKey": key}))
        assert response.status_code in (200, 400), response.content[:500]

    run()


# ------------------------------------------------------------------------------ REST API


CUSTOMER_FIELDS = ("email", "name", "plan", "country", "company_size", "annual_revenue", "tech_stack", "email_opt_in",
                   "signed_up_at", "birth_date", "traits")


def test_customer_writes_never_fail_and_a_refused_one_changes_nothing(tenant):
    admin = session(tenant)
    assert post(admin, "/api/v1/customers/", raw({"external_id": "base", "plan": "free"})).status_code == 201

    @HOSTILE
    @given(fields=st.fixed_dictionaries({}, optional={key: hostile_object if key == "traits" else hostile_json
                                                      for key in CUSTOMER_FIELDS}).filter(bool),
           external_id=hostile_text, patch=st.booleans())
    def run(fields, external_id, patch):
        with schema_context(tenant.schema_name):
            before = Customer.objects.values_list("external_id", "plan", "traits", "company_size").order_by("id")
            before = list(before)
        if patch:
            response = post(admin, "/api/v1/customers/base/", raw(fields), "patch")
        else:
            response = post(admin, "/api/v1/customers/", raw({"external_id": external_id, **fields}))
        assert response.status_code < 500, response.content[:500]
        if response.status_code >= 400:
            with schema_context(tenant.schema_name):
                after = list(Customer.objects.values_list("external_id", "plan", "traits", "company_size")
                             .order_by("id"))
            assert after == before  # nothing half-written

    run()


def test_event_batches_never_fail_and_keep_their_valid_items(tenant):
    admin = session(tenant)

    @HOSTILE
    @given(items=st.lists(st.fixed_dictionaries({"external_id": hostile_text, "name": hostile_text},
                                                optional={"properties": hostile_object, "timestamp": hostile_text,
                                                          "message_id": hostile_text, "anonymous_id": hostile_text})
                          | hostile_json, max_size=3))
    def run(items):
        marker = "ok-" + uuid.uuid4().hex
        events = [{"external_id": marker, "name": "kept", "message_id": marker},
                  *(items if isinstance(items, list) else [items])]
        response = post(admin, "/api/v1/events/", raw({"events": events}))
        assert response.status_code == 200, response.content[:500]
        with schema_context(tenant.schema_name):
            assert Event.objects.filter(message_id=marker).count() == 1

    run()


WRITE_PATHS = ["/api/v1/segments/", "/api/v1/segments/preview/", "/api/v1/segments/base/", "/api/v1/segments/base/preview/",
               "/api/v1/surveys/responses/", "/api/v1/consents/", "/api/v1/plays/", "/api/v1/campaigns/",
               "/api/v1/webhooks/", "/api/v1/api-keys/", "/api/v1/traits/seats/", "/api/v1/segments/overlap/",
               "/api/v1/segments/static/members/", "/api/v1/segments/base/snapshot/", "/api/v1/imports/"]


def test_every_other_api_write_answers_hostile_bodies_with_a_4xx_at_worst(tenant):
    admin = session(tenant)
    definition = {"version": 1, "match": "all", "conditions": [
        {"type": "trait", "field": "plan", "op": "eq", "value": "pro"}]}
    assert post(admin, "/api/v1/segments/", raw({"key": "base", "name": "Base", "definition": definition})).status_code == 201
    assert post(admin, "/api/v1/segments/", raw({"key": "static", "name": "Static", "kind": "static"})).status_code == 201
    post(admin, "/api/v1/customers/", raw({"external_id": "seat", "traits": {"seats": 3}}))

    @HOSTILE
    @given(path=st.sampled_from(WRITE_PATHS), method=st.sampled_from(["post", "patch"]),
           body=hostile_json | st.dictionaries(st.sampled_from(
               ["key", "name", "kind", "definition", "segment", "segment_id", "channel", "schedule", "content",
                "responses", "consents", "url", "events", "scopes", "is_pii", "category", "keys", "add", "remove",
                "tactic_type", "kpi", "holdout_percent", "external_id"]), hostile_json, max_size=5))
    def run(path, method, body):
        response = post(admin, path, raw(body), method)
        assert response.status_code < 500, (path, method, response.content[:500])
        with schema_context(tenant.schema_name):
            assert Segment.objects.get(key="base").definition == definition or method == "patch"

    run()
    for depth in (1000, 20_000):
        response = post(admin, "/api/v1/segments/", ('{"key": "d", "name": "D", "definition": %s}' % deep(depth)).encode())
        assert response.status_code == 400


# ------------------------------------------------------------------------------ rule parser and CSV import


@HOSTILE
@given(doc=hostile_json | st.fixed_dictionaries({
    "version": st.just(1), "match": st.sampled_from(["all", "any"]),
    "conditions": st.lists(st.fixed_dictionaries({
        "type": st.sampled_from(["trait", "event", "sequence", "metric", "survey", "segment", "consent"]),
        "field": st.sampled_from(["plan", "email", "signed_up_at", "company_size", "tech_stack", "traits.x"]),
        "op": st.sampled_from(["eq", "in", "has_any", "between", "within_last", "after", "is_set", "starts_with",
                               "anniversary_within"]),
        "value": hostile_json, "event": hostile_text | st.just("*"), "last_occurred": hostile_json,
        "count": hostile_json, "share": hostile_json, "when": hostile_json | st.fixed_dictionaries(
            {"days": hostile_json, "hours": hostile_json}),
        "where": hostile_json, "window": hostile_json}), max_size=3)}))
def test_the_rule_parser_answers_any_document_with_a_rule_or_a_rule_error(doc):
    try:
        parse(doc)
    except RuleError as error:
        assert error.problems and all(p.code for p in error.problems)


@pytest.fixture
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_csv_imports_of_hostile_cells_report_rows_and_never_fail(tenant, _media):
    connection.set_tenant(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    cell = hostile_text.filter(lambda t: "\ud800" > t or not any("\ud800" <= c <= "\udfff" for c in t))

    @HOSTILE
    @given(rows=st.lists(st.tuples(cell, cell, cell, cell), min_size=1, max_size=5))
    def run(rows):
        lines = ["external_id,email,plan,signed_up_at"] + [",".join(json.dumps(c) for c in row) for row in rows]
        lines.append('"good-row","good@example.test","pro","2026-01-01"')
        try:
            job = import_upload(actor=admin, kind="customers",
                                upload=SimpleUploadedFile("h.csv", "\n".join(lines).encode(), "text/csv"), now=NOW)
        except DomainError as refused:  # the whole file refused (e.g. a NUL byte): coded, nothing kept
            assert refused.problems and all(p.code for p in refused.problems)
            return
        job = import_start(actor=admin, job=job, mapping=import_suggestion(job=job), now=NOW)
        job = import_run(job_id=job.pk, clock=lambda: NOW)
        assert job.status == ImportJob.Status.SUCCEEDED, job.error
        assert Customer.objects.filter(external_id="good-row").exists()

    run()
