"""The membership lookup (/v1/profiles/…): who may ask, what it answers, how the cached
answers follow the outbox, and every refusal coded."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.test import Client

from apikeys.models import LookupKey
from apikeys.secrets import user_hash
from apikeys.selectors import identity_secret_current, lookup_key_current
from apikeys.services import api_key_create, lookup_key_rotate
from customers.models import Customer, CustomerIdentity, TraitDefinition
from customers.registry import trait_definition_update
from segments import lookup
from segments.services import segment_create, segment_update, static_members_add, static_members_remove
from tests.conftest import host_of, membership_of

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.fixture
def product(in_tenant, tenant):
    admin = membership_of(tenant, "admin@alpha.test")
    TraitDefinition.objects.create(key="role", type="string", category="psychographic")
    ada = Customer.objects.create(external_id="u-42", plan="pro", email="ada@example.test", traits={"role": "dev"})
    CustomerIdentity.objects.create(customer=ada, kind=CustomerIdentity.Kind.ANONYMOUS_ID, value="anon-7")
    bob = Customer.objects.create(external_id="u-43", plan="free")
    vip, _ = segment_create(actor=admin, key="vip", name="VIPs", kind="static", now=NOW)
    beta, _ = segment_create(actor=admin, key="beta-testers", name="Beta testers", kind="static", now=NOW)
    static_members_add(actor=admin, segment=vip, customer_ids=[ada.pk], now=NOW)
    static_members_add(actor=admin, segment=beta, customer_ids=[ada.pk, bob.pk], now=NOW)
    world = {"admin": admin, "ada": ada, "bob": bob, "vip": vip, "beta": beta,
             "key": lookup_key_current().key, "secret": identity_secret_current().secret}
    connection.set_schema_to_public()
    yield world
    connection.set_tenant(tenant)


def ask(tenant, path, key, *, signed_as=None, secret=None, **params):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if signed_as is not None:
        headers["HTTP_X_USER_HASH"] = user_hash(secret, signed_as)
    return Client(HTTP_HOST=host_of(tenant)).get(path, params, **headers)


def test_a_signed_user_gets_their_segments_and_exposed_traits(product, tenant):
    connection.set_tenant(tenant)
    trait_definition_update(actor=product["admin"], key="plan", changes={"exposed": True})
    connection.set_schema_to_public()
    answer = ask(tenant, "/v1/profiles/u-42/segments", product["key"], signed_as="u-42", secret=product["secret"])
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"userId": "u-42", "segments": ["beta-testers", "vip"], "traits": {"plan": "pro"}}
    assert answer["Cache-Control"].startswith("max-age=0") or "no-cache" in answer["Cache-Control"]
    timed = ask(tenant, "/v1/profiles/u-42/segments", product["key"], signed_as="u-42", secret=product["secret"],
                entered_at="true").json()
    assert timed["segments"][1]["key"] == "vip" and timed["segments"][1]["entered_at"].startswith("2026-11-23T12:00")
    one = ask(tenant, "/v1/profiles/u-43/segments/vip", product["key"], signed_as="u-43", secret=product["secret"])
    assert one.json() == {"userId": "u-43", "segment": "vip", "member": False, "entered_at": None}
    anonymous = ask(tenant, "/v1/profiles/segments", product["key"], signed_as="anon-7", secret=product["secret"],
                    anonymousId="anon-7")
    assert anonymous.json()["anonymousId"] == "anon-7" and anonymous.json()["segments"] == ["beta-testers", "vip"]


def test_a_server_key_needs_no_signature_but_must_read_segments(product, tenant):
    connection.set_tenant(tenant)
    _, reader = api_key_create(actor=product["admin"], name="backend", scopes=["read"], now=NOW)
    _, ingester = api_key_create(actor=product["admin"], name="sdk", scopes=["ingest"], now=NOW)
    connection.set_schema_to_public()
    assert ask(tenant, "/v1/profiles/segments/vip", reader, userId="u-42").json()["member"] is True
    refused = ask(tenant, "/v1/profiles/u-42/segments", ingester)
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "permission_denied"
    bad = ask(tenant, "/v1/profiles/u-42/segments", "sk_0000000000_" + "x" * 40)
    assert bad.status_code == 401 and bad.json()["errors"][0]["code"] == "invalid_api_key"


@pytest.mark.parametrize("case, status, path, code", [
    ("no key", 401, "Authorization", "invalid_lookup_key"),
    ("unknown key", 401, "Authorization", "invalid_lookup_key"),
    ("unsigned", 401, "userHash", "invalid_user_hash"),
    ("signed for someone else", 401, "userHash", "invalid_user_hash"),
    ("unknown user", 404, "userId", "unknown_customer"),
    ("unknown segment", 404, "segment", "unknown_segment"),
    ("no id", 400, "userId", "required"),
    ("two ids", 400, "userId", "required"),
    ("NUL in the id", 400, "anonymousId", "null_characters_not_allowed"),
    ("a long id", 400, "anonymousId", "invalid_value"),
])
def test_every_refusal_is_coded(product, tenant, case, status, path, code):
    key, secret = product["key"], product["secret"]
    response = {
        "no key": lambda: ask(tenant, "/v1/profiles/u-42/segments", None),
        "unknown key": lambda: ask(tenant, "/v1/profiles/u-42/segments", "lk_nope", signed_as="u-42", secret=secret),
        "unsigned": lambda: ask(tenant, "/v1/profiles/u-42/segments", key),
        "signed for someone else": lambda: ask(tenant, "/v1/profiles/u-42/segments", key, signed_as="u-43",
                                               secret=secret),
        "unknown user": lambda: ask(tenant, "/v1/profiles/u-99/segments", key, signed_as="u-99", secret=secret),
        "unknown segment": lambda: ask(tenant, "/v1/profiles/u-42/segments/ghost", key, signed_as="u-42",
                                       secret=secret),
        "no id": lambda: ask(tenant, "/v1/profiles/segments", key),
        "two ids": lambda: ask(tenant, "/v1/profiles/segments", key, userId="u-42", anonymousId="anon-7"),
        "NUL in the id": lambda: ask(tenant, "/v1/profiles/segments", key, anonymousId="a\x00b"),
        "a long id": lambda: ask(tenant, "/v1/profiles/segments", key, anonymousId="a" * 256),
    }[case]()
    assert response.status_code == status, response.content
    assert response.json()["errors"][0]["path"] == path and response.json()["errors"][0]["code"] == code


def test_a_rotated_key_is_refused_and_another_tenants_key_is_unknown(product, tenant, other_tenant):
    connection.set_tenant(tenant)
    new = lookup_key_rotate(actor=product["admin"], now=NOW)
    connection.set_schema_to_public()
    old = ask(tenant, "/v1/profiles/u-42/segments", product["key"], signed_as="u-42", secret=product["secret"])
    assert old.status_code == 401 and old.json()["errors"][0]["code"] == "revoked_lookup_key"
    assert ask(tenant, "/v1/profiles/u-42/segments", new.key, signed_as="u-42",
               secret=product["secret"]).status_code == 200
    elsewhere = ask(other_tenant, "/v1/profiles/u-42/segments", new.key, signed_as="u-42", secret=product["secret"])
    assert elsewhere.status_code == 401 and elsewhere.json()["errors"][0]["code"] == "invalid_lookup_key"
    connection.set_tenant(tenant)
    assert LookupKey.objects.filter(revoked_at__isnull=True).count() == 1


def test_answers_are_cached_and_follow_the_outbox(product, tenant):
    signed = {"signed_as": "u-42", "secret": product["secret"]}
    first = ask(tenant, "/v1/profiles/u-42/segments", product["key"], **signed)
    again = ask(tenant, "/v1/profiles/u-42/segments", product["key"], **signed)
    assert (first["X-Lookup-Cache"], again["X-Lookup-Cache"]) == ("miss", "hit")
    connection.set_tenant(tenant)
    lookup.lookup_sync()  # the cursors start at what exists
    static_members_remove(actor=product["admin"], segment=product["vip"], customer_ids=[product["ada"].pk], now=NOW)
    assert lookup.lookup_sync() == 1  # the exit, consumed
    connection.set_schema_to_public()
    after = ask(tenant, "/v1/profiles/u-42/segments", product["key"], **signed)
    assert after["X-Lookup-Cache"] == "miss" and after.json()["segments"] == ["beta-testers"]
    assert ask(tenant, "/v1/profiles/u-43/segments", product["key"], signed_as="u-43",
               secret=product["secret"]).json()["segments"] == ["beta-testers"]


def test_an_answer_read_before_a_change_is_never_served_after_it(product, tenant):
    """The race: a request reads the database, the change commits and is consumed, then
    the request stores what it read — under the generation it read at, unreachable."""
    connection.set_tenant(tenant)
    lookup.lookup_sync()
    ada = product["ada"].pk
    stale_generation = lookup.cache.get(lookup._generation_key(ada))
    static_members_remove(actor=product["admin"], segment=product["vip"], customer_ids=[ada], now=NOW)
    lookup.lookup_sync()
    assert lookup.cache.get(lookup._generation_key(ada)) != stale_generation
    profile, cached = lookup.profile_of(ada)
    assert not cached and [key for key, _ in profile.segments] == ["beta-testers"]


def test_archiving_a_segment_or_exposing_a_trait_drops_every_answer(product, tenant,
                                                                   django_capture_on_commit_callbacks):
    signed = {"signed_as": "u-42", "secret": product["secret"]}
    ask(tenant, "/v1/profiles/u-42/segments", product["key"], **signed)
    connection.set_tenant(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        segment_update(actor=product["admin"], segment=product["vip"], now=NOW, status="archived")
    connection.set_schema_to_public()
    answer = ask(tenant, "/v1/profiles/u-42/segments", product["key"], **signed)
    assert answer["X-Lookup-Cache"] == "miss" and answer.json() == {"userId": "u-42", "segments": ["beta-testers"],
                                                                    "traits": {}}
    connection.set_tenant(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        trait_definition_update(actor=product["admin"], key="role", changes={"exposed": True})
    connection.set_schema_to_public()
    assert ask(tenant, "/v1/profiles/u-42/segments", product["key"], **signed).json()["traits"] == {"role": "dev"}


def test_new_traits_and_merges_reach_the_answer(product, tenant, django_capture_on_commit_callbacks):
    from customers.touch import Touch

    connection.set_tenant(tenant)
    trait_definition_update(actor=product["admin"], key="plan", changes={"exposed": True})
    lookup.lookup_forget_all()  # as the exposure's commit does
    assert lookup.profile_of(product["ada"].pk)[0].traits == {"plan": "pro"}
    Customer.objects.filter(pk=product["ada"].pk).update(plan="team")
    lookup.customers_touched(Touch.of(customer_ids=[product["ada"].pk], traits={"plan": [product["ada"].pk]}))
    assert lookup.profile_of(product["ada"].pk)[0].traits["plan"] == "team"
    cached = lookup.profile_of(product["ada"].pk)
    with django_capture_on_commit_callbacks(execute=True):
        lookup.customers_merged(survivor=product["ada"].pk, losers=[product["bob"].pk], now=NOW)
    assert cached[1] and not lookup.profile_of(product["ada"].pk)[1]  # a merge drops every answer


def test_events_alone_keep_answers_unless_last_seen_is_exposed(product, tenant):
    """A batch of events moves only last_seen_at: stored answers stay, until last_seen_at is
    one of the exposed traits; a batch with traits always drops the customer's answer."""
    from customers.touch import Touch

    connection.set_tenant(tenant)
    ada = product["ada"].pk
    lookup.profile_of(ada)
    events_only = Touch.of(customer_ids=[ada], events={"login": [ada]})
    lookup.customers_touched(events_only)
    assert lookup.profile_of(ada)[1]  # still stored
    lookup.customers_touched(Touch.of(customer_ids=[ada], events={"login": [ada]}, traits={"role": [ada]}))
    assert not lookup.profile_of(ada)[1]
    trait_definition_update(actor=product["admin"], key="last_seen_at", changes={"exposed": True})
    lookup.lookup_forget_all()  # as the exposure's commit does
    lookup.profile_of(ada)
    Customer.objects.filter(pk=ada).update(last_seen_at=NOW)
    lookup.customers_touched(events_only)
    profile, cached = lookup.profile_of(ada)
    assert not cached and profile.traits["last_seen_at"] is not None


def test_a_personal_trait_is_never_exposed(product, tenant):
    from common.errors import DomainError

    connection.set_tenant(tenant)
    with pytest.raises(DomainError) as raised:
        trait_definition_update(actor=product["admin"], key="email", changes={"exposed": True})
    assert (raised.value.problems[0].path, raised.value.problems[0].code) == ("exposed", "personal_exposed")
    assert lookup.exposed_trait_keys() == []


def test_the_rate_limit_answers_429_with_retry_after(product, tenant, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "lookup": "2/m"}
    connection.set_tenant(tenant)
    product["key"] = lookup_key_rotate(actor=product["admin"], now=NOW).key  # a bucket of its own
    connection.set_schema_to_public()
    signed = {"signed_as": "u-42", "secret": product["secret"]}
    statuses = [ask(tenant, "/v1/profiles/u-42/segments", product["key"], **signed) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    assert statuses[2].status_code == 429 and statuses[2].json()["errors"][0]["code"] == "rate_limited"
    assert 1 <= int(statuses[2]["Retry-After"]) <= 60


def test_browsers_may_ask_from_any_origin(product, tenant):
    client = Client(HTTP_HOST=host_of(tenant))
    preflight = client.options("/v1/profiles/u-42/segments", HTTP_ORIGIN="https://app.example",
                               HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                               HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, x-user-hash")
    assert preflight.status_code == 200 and preflight["Access-Control-Allow-Origin"] == "*"
    assert "x-user-hash" in preflight["Access-Control-Allow-Headers"].lower()
    answer = ask(tenant, "/v1/profiles/u-42/segments", product["key"], signed_as="u-42", secret=product["secret"])
    assert json.loads(answer.content)["segments"]


def test_exposed_dates_and_amounts_come_as_json(product, tenant):
    from decimal import Decimal

    connection.set_tenant(tenant)
    Customer.objects.filter(pk=product["ada"].pk).update(signed_up_at=NOW, annual_revenue=Decimal("1250000.50"))
    for key in ("signed_up_at", "annual_revenue"):
        trait_definition_update(actor=product["admin"], key=key, changes={"exposed": True})
    lookup.lookup_forget_all()
    assert lookup.profile_of(product["ada"].pk)[0].traits == {"annual_revenue": 1250000.5,
                                                              "signed_up_at": "2026-11-23T12:00:00+00:00"}


@pytest.mark.parametrize("key", ["a%00b", "%ED%A0%80", "x" * 300])
def test_a_hostile_segment_key_is_a_coded_404_not_a_failed_query(product, tenant, key):
    response = Client(HTTP_HOST=host_of(tenant)).get(
        f"/v1/profiles/u-42/segments/{key}", HTTP_AUTHORIZATION=f"Bearer {product['key']}",
        HTTP_X_USER_HASH=user_hash(product["secret"], "u-42"))
    assert response.status_code in (400, 404), response.content
    assert response.json()["errors"][0]["code"] in ("unknown_segment", "not_found")
