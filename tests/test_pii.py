"""Personal data stays with the roles that may see it (issue: hardening, findings 1 and 2).

A matrix: for each reader without `customers.view_pii` (the viewer and analyst roles, a
custom role that may edit segments, and an API key of an analyst), every API route, page
and export that can carry a customer's personal data is read, and no planted personal
value appears. Then the count oracle: rules over personal data are refused to them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from customers.models import Customer, TraitDefinition
from segments import engine
from segments.models import Membership, Segment
from tenants.services import role_create
from tests.conftest import host_of, make_member, membership_of, session
from tests.customers.test_customers_api import key_client

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
EMAIL, NAME, PHONE = "planted.person@secret.test", "Planted Person", "+44 7700 900123"
# Pieces of the planted values that no masked form keeps ("p***@secret.test" and "P***" are
# the masks the product shows on purpose).
PLANTED = ("planted.person", "lanted", "900123")
EMAIL_RULE = {"version": 1, "match": "all", "conditions": [
    {"type": "trait", "field": "email", "op": "eq", "value": EMAIL}]}
PHONE_RULE = {"version": 1, "match": "all", "conditions": [
    {"type": "event", "event": "called", "where": [{"property": "phone", "op": "eq", "value": PHONE}],
     "count": {"op": "gte", "value": 1}},
    {"type": "trait", "field": "traits.mobile", "op": "starts_with", "value": PHONE[:8]}]}


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def send(client, method: str, url: str, body: dict):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def planted(tenant) -> dict:
    """A customer whose personal data is everywhere it can be, written by the admin."""
    admin = session(tenant)
    assert send(admin, "post", "/api/v1/customers/", {"external_id": "p1", "email": EMAIL, "name": NAME,
                                                      "traits": {"mobile": PHONE}}).status_code == 201
    with schema_context(tenant.schema_name):
        TraitDefinition.objects.filter(key="mobile").update(is_pii=True)  # the tenant marks it personal
    response = send(admin, "post", "/api/v1/events/", {"events": [
        {"external_id": "p1", "name": "called", "properties": {"phone": PHONE, "contact": {"email": EMAIL},
                                                              "Name": NAME, "mobile": PHONE, "plan": "pro"}}]})
    assert response.json()["accepted"] == 1
    assert send(admin, "post", "/api/v1/surveys/responses/", {"responses": [
        {"external_id": "p1", "survey": "nps", "score": 3, "comment": f"Call {NAME} on {PHONE}"}]}).status_code == 200
    assert send(admin, "post", "/api/v1/segments/", {"key": "target", "name": "Target",
                                                     "definition": EMAIL_RULE}).status_code == 201
    assert send(admin, "patch", "/api/v1/segments/target/", {"definition": PHONE_RULE}).status_code == 200
    with schema_context(tenant.schema_name):
        customer = Customer.objects.get(external_id="p1")
        segment = Segment.objects.get(key="target")
        engine.evaluate(segment_id=segment.pk, now=NOW + timedelta(minutes=1), trigger="manual",
                        clock=lambda: NOW + timedelta(minutes=1))
        assert Membership.objects.filter(segment=segment, customer=customer, exited_at__isnull=True).exists()
    return {"id": customer.pk}


def readers(tenant) -> dict[str, Client]:
    editor_role = role_create(actor=membership_of(tenant, f"admin@{tenant.slug}.test"), name="Rule writer",
                              permissions=["customers.view", "segments.view", "segments.edit", "data.export"])
    editor = Client(HTTP_HOST=host_of(tenant))
    editor.force_login(make_member(tenant, "writer@alpha.test", editor_role.key))
    keeper_role = role_create(actor=membership_of(tenant, f"admin@{tenant.slug}.test"), name="Key keeper",
                              permissions=["customers.view", "segments.view", "api_keys.manage"])
    make_member(tenant, "keys@alpha.test", keeper_role.key)
    analyst = session(tenant, "analyst")
    connection.set_schema_to_public()
    # A read key never exceeds its creator's role: this one reads without customers.view_pii.
    return {"viewer": session(tenant, "viewer"), "analyst": analyst, "rule_writer": editor,
            "read_key": key_client(tenant, ["read"], creator_email="keys@alpha.test")}


def read_urls(customer_id: int) -> list[str]:
    api = "/api/v1"
    return [
        f"{api}/customers/", f"{api}/customers/p1/", f"{api}/events/", f"{api}/surveys/responses/",
        f"{api}/segments/", f"{api}/segments/target/", f"{api}/segments/target/versions/",
        f"{api}/segments/target/versions/diff/?from=1&to=2", f"{api}/segments/target/explain/{customer_id}/",
        f"{api}/segments/target/members/", f"{api}/segments/target/members/export/",
        "/customers/", "/customers/p1/", "/customers/p1/events/", "/segments/target/",
        f"/segments/target/explain/{customer_id}/", "/segments/target/diff/?from=1&to=2",
    ]


PAGES_FOR_EDITORS = ["/segments/target/edit/"]


def test_no_reader_without_view_pii_sees_a_planted_personal_value(tenant, planted):
    clients = readers(tenant)
    for role, client in clients.items():
        urls = read_urls(planted["id"]) + (PAGES_FOR_EDITORS if role == "rule_writer" else [])
        if role == "read_key":
            urls = [u for u in urls if u.startswith("/api/")]
        for url in urls:
            response = client.get(url)
            assert response.status_code in (200, 403), (role, url, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            text = body.decode()
            for piece in PLANTED:
                assert piece not in text, f"{role} reads {piece!r} at {url}"


def test_an_admin_reads_them_all(tenant, planted):
    admin = session(tenant)
    customer = admin.get("/api/v1/customers/p1/").json()
    assert (customer["email"], customer["name"], customer["traits"]["mobile"]) == (EMAIL, NAME, PHONE)
    event = admin.get("/api/v1/events/").json()["results"][0]
    assert event["properties"]["contact"]["email"] == EMAIL
    assert admin.get("/api/v1/surveys/responses/").json()["results"][0]["comment"] == f"Call {NAME} on {PHONE}"
    versions = admin.get("/api/v1/segments/target/versions/").json()
    assert versions[-1]["definition"] == EMAIL_RULE


def test_readers_see_the_rule_with_its_literals_masked(tenant, planted):
    viewer = session(tenant, "viewer")
    shown = viewer.get("/api/v1/segments/target/").json()["definition"]
    event, trait = shown["conditions"]
    assert event["where"][0] == {"property": "phone", "op": "eq", "value": "hidden"}
    assert trait == {"type": "trait", "field": "traits.mobile", "op": "starts_with", "value": "hidden"}
    first = viewer.get("/api/v1/segments/target/versions/").json()[-1]["definition"]
    assert first["conditions"][0]["value"] == "p***@secret.test"
    event = viewer.get("/api/v1/events/").json()["results"][0]["properties"]
    assert event == {"phone": "hidden", "contact": {"email": "hidden"}, "Name": "hidden", "mobile": "hidden",
                     "plan": "pro"}
    assert viewer.get("/api/v1/surveys/responses/").json()["results"][0]["comment"] is None


# ------------------------------------------------------------------------------ the count oracle

ORACLE = {"version": 1, "match": "all", "conditions": [
    {"type": "trait", "field": "country", "op": "eq", "value": "GB"},
    {"type": "trait", "field": "email", "op": "starts_with", "value": "p"}]}


def test_the_count_oracle_is_refused_to_every_reader_without_view_pii(tenant, planted):
    for role, client in readers(tenant).items():
        for url in ("/api/v1/segments/preview/", "/api/v1/segments/target/preview/"):
            response = send(client, "post", url, {"definition": ORACLE})
            assert response.status_code == 403, (role, url, response.content)
            assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [
                ("definition.conditions[1]", "permission_denied")], role
        saved_rule = send(client, "post", "/api/v1/segments/target/preview/", {})
        assert saved_rule.status_code == 403, role  # the saved rule reads a personal trait too


def test_a_rule_writer_without_view_pii_cannot_write_or_evaluate_a_personal_rule(tenant, planted):
    writer = readers(tenant)["rule_writer"]
    created = send(writer, "post", "/api/v1/segments/", {"key": "probe", "name": "Probe", "definition": ORACLE})
    assert (created.status_code, created.json()["errors"][0]["code"]) == (403, "permission_denied")
    changed = send(writer, "patch", "/api/v1/segments/target/", {"definition": ORACLE})
    assert changed.status_code == 403
    assert send(writer, "post", "/api/v1/segments/target/evaluate/", {}).status_code == 403
    plain = {"version": 1, "match": "all", "conditions": [ORACLE["conditions"][0]]}
    assert send(writer, "post", "/api/v1/segments/", {"key": "gb", "name": "GB", "definition": plain}).status_code == 201
    page = writer.post("/segments/-/preview/", json.dumps({"definition": ORACLE}), content_type="application/json")
    assert "permission" in page.content.decode() and "planted" not in page.content.decode()
    with schema_context(tenant.schema_name):
        assert set(Segment.objects.values_list("key", flat=True)) == {"target", "gb"}
        assert Segment.objects.get(key="target").definition == PHONE_RULE


def test_the_builder_offers_no_personal_field_to_a_member_without_view_pii(tenant, planted):
    writer = readers(tenant)["rule_writer"]
    page = writer.get("/segments/new/").content.decode()
    catalogue = json.loads(page.split('id="sb-catalogue" type="application/json">')[1].split("</script>")[0])
    fields = {t["field"] for t in catalogue["traits"]}
    assert {"email", "name", "birth_date", "traits.mobile"}.isdisjoint(fields) and "country" in fields
    called = next(e for e in catalogue["events"] if e["name"] == "called")
    assert set(called["properties"]) == {"contact", "plan"}
    admin_page = session(tenant).get("/segments/new/").content.decode()
    assert '"email"' in admin_page


def test_a_tenant_declares_its_own_personal_property_keys(tenant, planted):
    """Settings → Traits: keys beyond the usual names and personal traits' keys (here `ssn`)
    are masked from then on; bad keys are refused with their path; audited."""
    from audit.models import AuditEvent
    from customers.registry import personal_property_keys_set
    from common.errors import DomainError

    admin = session(tenant)
    send(admin, "post", "/api/v1/events/", {"events": [
        {"external_id": "p1", "name": "verified", "properties": {"ssn": "078-05-1120", "plan": "pro"}}]})
    viewer = session(tenant, "viewer")
    assert "078-05-1120" in viewer.get("/api/v1/events/").content.decode()  # not yet declared
    page = admin.get("/settings/traits/").content.decode()
    assert 'data-testid="personal-properties"' in page and "phone" in page
    assert admin.post("/settings/personal-properties/", {"keys": "SSN\n\n passport_number "}).status_code == 302
    assert "078-05-1120" not in viewer.get("/api/v1/events/").content.decode()
    with schema_context(tenant.schema_name):
        assert AuditEvent.objects.filter(action="personal_properties.changed").exists()
        with pytest.raises(DomainError) as refused:
            personal_property_keys_set(actor=membership_of(tenant, "admin@alpha.test"), keys=["ok", "", "x" * 65, 3])
        assert {(p.path, p.code) for p in refused.value.problems} == {
            ("keys[1]", "invalid_value"), ("keys[2]", "invalid_key"), ("keys[3]", "invalid_value")}
    assert ">passport_number\nssn\n</textarea>" in admin.get("/settings/traits/").content.decode()
    rule = {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "verified", "where": [{"property": "ssn", "op": "starts_with", "value": "078"}],
         "count": {"op": "gte", "value": 1}}]}
    assert send(viewer, "post", "/api/v1/segments/preview/", {"definition": rule}).status_code == 403
