"""Privacy: export everything about one customer, anonymise them, delete them — through
the services, the REST API and the profile's buttons; permissions, audit, isolation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from apikeys.services import api_key_create
from audit.models import AuditEvent
from common.errors import DomainError
from common.http import http_status
from customers.models import (
    Consent, ConsentChange, Customer, CustomerIdentity, CustomerMetrics, Event, EventMessage, SurveyResponse,
)
from customers.privacy import ANONYMISED_PREFIX, EXPORT_FORMAT, customer_anonymise, customer_export
from tests.conftest import host_of, make_member, membership_of
from tests.customers.customer_data import EMAIL, EVENTS, NAME, NOW, PHONE, client_as, make_ada

EXPORT, ANONYMISE = "/api/v1/customers/{}/export/", "/api/v1/customers/{}/anonymise/"


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ada(tenant):
    customer = make_ada(tenant)
    connection.set_schema_to_public()
    return customer


def audit_rows(tenant, action: str) -> list[AuditEvent]:
    with schema_context(tenant.schema_name):
        return list(AuditEvent.objects.filter(action=action).order_by("id"))


def everything_about(tenant, customer_pk: int) -> str:
    """Every stored row that belongs to the customer, as one string to search in."""
    with schema_context(tenant.schema_name):
        rows = [
            list(Customer.objects.filter(pk=customer_pk).values()),
            list(CustomerIdentity.objects.filter(customer_id=customer_pk).values()),
            list(Event.objects.filter(customer_id=customer_pk).values()),
            list(SurveyResponse.objects.filter(customer_id=customer_pk).values()),
            list(Consent.objects.filter(customer_id=customer_pk).values()),
            list(ConsentChange.objects.filter(customer_id=customer_pk).values()),
            list(CustomerMetrics.objects.filter(customer_id=customer_pk).values()),
        ]
    return json.dumps(rows, default=str)


# ----------------------------------------------------------------------------- export


def test_export_holds_everything_about_the_customer(tenant, ada):
    """Profile with every trait (unmasked), identities, all events with properties,
    survey answers, consent and its history, metrics; audited by external id."""
    response = client_as(tenant, "admin").get(EXPORT.format("ada-1"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="customer-ada-1.json"'
    doc = json.loads(response.content)
    assert doc["format"] == EXPORT_FORMAT
    profile = doc["customer"]
    assert (profile["external_id"], profile["email"], profile["name"], profile["birth_date"]) == (
        "ada-1", EMAIL, NAME, "1815-12-10")
    assert (profile["country"], profile["city"], profile["plan"], profile["company_size"], profile["tech_stack"]) == (
        "GB", "London", "pro", 12, ["python", "django"])
    assert profile["traits"] == {"phone": PHONE, "favourite_colour": "teal"}
    assert profile["anonymous_ids"] == list(ada.anonymous_ids)
    assert {(i["kind"], i["value"]) for i in doc["identities"]} == {("user_id", "ada-1"), ("anonymous_id", "anon-device-7")}
    assert len(doc["events"]) == EVENTS
    assert [e["properties"]["seats"] for e in doc["events"]] == list(range(EVENTS))  # oldest first
    assert doc["events"][0]["properties"]["Email"] == EMAIL and doc["events"][0]["message_id"] == "ada-1-m0"
    assert {(r["survey"], r["score"], r["comment"]) for r in doc["survey_responses"]} == {
        ("nps", "9.00", f"Great! Call me, {NAME}"), ("csat", "2.00", "")}
    assert {(c["channel"], c["granted"], c["source"]) for c in doc["consents"]} == {
        ("email", False, "preferences"), ("sms", True, "checkout")}
    assert [(c["channel"], c["granted"]) for c in doc["consent_history"]] == [
        ("email", True), ("sms", True), ("email", False)]
    metrics = doc["metrics"]
    assert (metrics["rfm_segment"], metrics["r_score"], metrics["monetary"], metrics["ltv"]) == (
        "loyal", 5, "1234.50", "1728.40")
    [event] = audit_rows(tenant, "customer.exported")
    assert (event.target_label, event.target_id, event.actor_label) == ("ada-1", str(ada.pk), "admin@alpha.test")
    assert EMAIL not in json.dumps(event.changes) and NAME not in event.target_label
    assert event.changes == {"events": EVENTS, "survey_responses": 2}


def test_export_by_a_merged_id_exports_the_profile(tenant, ada):
    response = client_as(tenant, "admin").get(EXPORT.format("anon:anon-device-7"))
    assert response.status_code == 200 and json.loads(response.content)["customer"]["external_id"] == "ada-1"


@pytest.mark.parametrize("role,status", [("viewer", 403), ("analyst", 403), ("marketer", 403), ("admin", 200)])
def test_export_needs_data_export_and_view_pii(tenant, ada, role, status):
    """Analysts may export but not see personal data, marketers the other way round:
    both are refused, with a coded error and no audit line."""
    response = client_as(tenant, role).get(EXPORT.format("ada-1"))
    assert response.status_code == status
    if status == 403:
        assert response.json()["errors"][0]["code"] == "permission_denied"
        assert EMAIL not in response.content.decode()
        assert audit_rows(tenant, "customer.exported") == []


def test_export_service_rechecks_both_permissions(in_tenant, ada):
    analyst = make_member(in_tenant, "analyst-svc@alpha.test", "analyst").memberships.get()
    marketer = make_member(in_tenant, "marketer-svc@alpha.test", "marketer").memberships.get()
    connection.set_tenant(in_tenant)
    customer = Customer.objects.get(pk=ada.pk)
    for actor in (analyst, marketer, None):
        with pytest.raises(DomainError) as raised:
            customer_export(actor=actor, customer=customer)
        assert http_status(raised.value) == 403
    assert customer_export(actor=membership_of(in_tenant, "admin@alpha.test"), customer=customer)["customer"]["email"] == EMAIL


def test_an_api_key_exports_only_with_the_read_scope_of_an_admin(tenant, ada):
    connection.set_tenant(tenant)
    admin = membership_of(tenant, "admin@alpha.test")
    _, read = api_key_create(actor=admin, name="dsar", scopes=["read"], now=NOW)
    _, ingest = api_key_create(actor=admin, name="ingest", scopes=["ingest"], now=NOW)
    connection.set_schema_to_public()
    ok = Client(HTTP_HOST=host_of(tenant), HTTP_AUTHORIZATION=f"Bearer {read}").get(EXPORT.format("ada-1"))
    assert ok.status_code == 200 and json.loads(ok.content)["customer"]["email"] == EMAIL
    assert audit_rows(tenant, "customer.exported")[0].actor_kind == "api_key"
    refused = Client(HTTP_HOST=host_of(tenant), HTTP_AUTHORIZATION=f"Bearer {ingest}").get(EXPORT.format("ada-1"))
    assert refused.status_code == 403


def test_export_of_an_unknown_customer_is_a_coded_404(tenant):
    response = client_as(tenant, "admin").get(EXPORT.format("nobody"))
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "not_found"


def test_the_profiles_export_button_downloads_the_same_document(tenant, ada):
    response = client_as(tenant, "admin").post("/customers/ada-1/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="customer-ada-1.json"'
    doc = json.loads(response.content)
    assert doc["customer"]["email"] == EMAIL and len(doc["events"]) == EVENTS
    assert client_as(tenant, "analyst").post("/customers/ada-1/export/").status_code == 403
    assert client_as(tenant, "admin").get("/customers/ada-1/export/").status_code == 405
    assert len(audit_rows(tenant, "customer.exported")) == 1


def test_an_external_id_with_odd_characters_makes_a_safe_file_name(tenant):
    connection.set_tenant(tenant)
    make_ada(tenant, 'we"ird id;x')
    connection.set_schema_to_public()
    response = client_as(tenant, "admin").get(EXPORT.format('we"ird id;x'))
    assert response["Content-Disposition"] == 'attachment; filename="customer-we_ird_id_x.json"'


# ----------------------------------------------------------------------------- anonymise


def test_anonymise_strips_personal_data_and_keeps_what_aggregates_need(tenant, ada):
    before = everything_about(tenant, ada.pk)
    assert EMAIL in before and PHONE in before
    response = client_as(tenant, "admin").post(ANONYMISE.format("ada-1"), "{}", content_type="application/json")
    assert response.status_code == 200
    new_id = response.json()["external_id"]
    assert new_id.startswith(ANONYMISED_PREFIX) and len(new_id) > len(ANONYMISED_PREFIX) + 16

    after = everything_about(tenant, ada.pk)
    for secret in (EMAIL, NAME, "Lovelace", "1815-12-10", PHONE, "Call me", "ada-1", "anon-device-7"):
        assert secret not in after, secret
    with schema_context(tenant.schema_name):
        customer = Customer.objects.get(pk=ada.pk)
        assert (customer.external_id, customer.email, customer.name, customer.birth_date) == (new_id, None, None, None)
        assert customer.anonymous_ids == []
        # Non-personal traits stay for segments and reports.
        assert (customer.country, customer.plan, customer.company, customer.traits) == (
            "GB", "pro", "Analytical Engines", {"favourite_colour": "teal"})
        assert list(CustomerIdentity.objects.filter(customer=customer).values_list("kind", "value")) == [
            ("user_id", new_id)]
        assert Event.objects.filter(customer=customer).count() == EVENTS
        first = Event.objects.get(customer=customer, properties__path="/page/0")
        assert first.message_id is None  # it named the old id
        assert not EventMessage.objects.filter(message_id__contains="ada-1").exists()
        assert first.properties == {"path": "/page/0", "seats": 0, "contact": {"city": "London"}}
        assert sorted(SurveyResponse.objects.filter(customer=customer).values_list("score", "comment")) == [
            (Decimal("2.00"), ""), (Decimal("9.00"), "")]
        assert Consent.objects.filter(customer=customer).count() == 2
        assert ConsentChange.objects.filter(customer=customer).count() == 3
        assert CustomerMetrics.objects.get(customer=customer).rfm_segment == "loyal"
    # The old ids name nobody any more.
    admin = client_as(tenant, "admin")
    assert admin.get("/api/v1/customers/ada-1/").status_code == 404
    assert admin.get("/api/v1/customers/anon:anon-device-7/").status_code == 404
    assert admin.get(f"/customers/{new_id}/").status_code == 200


def test_anonymise_is_audited_with_the_new_opaque_id_only(tenant, ada):
    new_id = client_as(tenant, "admin").post(ANONYMISE.format("ada-1"), "{}",
                                             content_type="application/json").json()["external_id"]
    [event] = audit_rows(tenant, "customer.anonymised")
    # Not even the row id: earlier lines (an export) tie it to the old external id.
    assert (event.target_label, event.target_id, event.target_type) == (new_id, "", "customers.customer")
    row = json.dumps({"label": event.target_label, "changes": event.changes})
    for secret in ("ada-1", EMAIL, NAME, PHONE, "anon-device-7"):
        assert secret not in row, secret
    assert set(event.changes["cleared"]) >= {"email", "name", "birth_date", "traits.phone"}
    assert event.changes["events_scrubbed"] == 1 and event.changes["comments_cleared"] == 1
    assert event.changes["message_ids_cleared"] == EVENTS


@pytest.mark.parametrize("role", ["viewer", "analyst", "marketer"])
def test_anonymise_needs_customers_edit(tenant, ada, role):
    response = client_as(tenant, role).post(ANONYMISE.format("ada-1"), "{}", content_type="application/json")
    assert response.status_code == 403
    with schema_context(tenant.schema_name):
        assert Customer.objects.get(pk=ada.pk).email == EMAIL
    assert audit_rows(tenant, "customer.anonymised") == []


def test_anonymise_service_rechecks_the_permission(in_tenant, ada):
    marketer = make_member(in_tenant, "marketer-svc@alpha.test", "marketer").memberships.get()
    connection.set_tenant(in_tenant)
    with pytest.raises(DomainError) as raised:
        customer_anonymise(actor=marketer, customer=Customer.objects.get(pk=ada.pk), now=NOW)
    assert http_status(raised.value) == 403
    assert Customer.objects.get(pk=ada.pk).email == EMAIL


def test_anonymising_twice_gives_a_new_id_and_stays_clean(in_tenant, ada):
    admin = membership_of(in_tenant, "admin@alpha.test")
    connection.set_tenant(in_tenant)
    first = customer_anonymise(actor=admin, customer=Customer.objects.get(pk=ada.pk), now=NOW)
    second = customer_anonymise(actor=admin, customer=first, now=NOW)
    assert second.external_id != first.external_id
    assert list(CustomerIdentity.objects.filter(customer=second).values_list("value", flat=True)) == [second.external_id]


def test_a_builtin_trait_the_registry_marks_personal_is_cleared_too(in_tenant, ada):
    from customers.models import TraitDefinition

    connection.set_tenant(in_tenant)
    TraitDefinition.objects.filter(key__in=["city", "company_size", "tech_stack"]).update(is_pii=True)
    customer = customer_anonymise(actor=membership_of(in_tenant, "admin@alpha.test"),
                                  customer=Customer.objects.get(pk=ada.pk), now=NOW)
    customer.refresh_from_db()
    assert (customer.city, customer.company_size, customer.tech_stack, customer.country) == (None, None, None, "GB")


def test_the_profiles_anonymise_button_asks_for_the_external_id(tenant, ada):
    admin = client_as(tenant, "admin")
    wrong = admin.post("/customers/ada-1/anonymise/", {"confirm": "ada-2"})
    assert wrong.status_code == 400
    body = wrong.content.decode()
    assert "That is not this customer&#x27;s external id." in body and "dialog: 'anonymise'" in body
    assert admin.post("/customers/ada-1/anonymise/", {}).status_code == 400
    with schema_context(tenant.schema_name):
        assert Customer.objects.get(pk=ada.pk).external_id == "ada-1"
    response = admin.post("/customers/ada-1/anonymise/", {"confirm": "ada-1"})
    assert response.status_code == 302
    with schema_context(tenant.schema_name):
        new_id = Customer.objects.get(pk=ada.pk).external_id
    assert response["Location"] == f"/customers/{new_id}/"
    page = admin.get(response["Location"]).content.decode()
    assert f"Customer anonymised. Their new id is {new_id}." in page and EMAIL not in page
    assert len(audit_rows(tenant, "customer.anonymised")) == 1


def test_anonymise_over_the_api_for_an_unknown_customer_is_a_coded_404(tenant):
    response = client_as(tenant, "admin").post(ANONYMISE.format("nobody"), "{}", content_type="application/json")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "not_found"


# ----------------------------------------------------------------------------- delete


def test_the_profiles_delete_button_removes_everything_after_confirmation(tenant, ada):
    admin = client_as(tenant, "admin")
    assert admin.post("/customers/ada-1/delete/", {"confirm": "ADA-1"}).status_code == 400
    with schema_context(tenant.schema_name):
        assert Customer.objects.filter(pk=ada.pk).exists()
    response = admin.post("/customers/ada-1/delete/", {"confirm": "ada-1"})
    assert response.status_code == 302 and response["Location"] == "/customers/"
    assert "Customer ada-1 was deleted" in admin.get("/customers/").content.decode()
    with schema_context(tenant.schema_name):
        assert not Customer.objects.filter(pk=ada.pk).exists()
        for model in (Event, SurveyResponse, Consent, ConsentChange, CustomerIdentity, CustomerMetrics):
            assert not model.objects.filter(customer_id=ada.pk).exists(), model
        assert not EventMessage.objects.filter(message_id__startswith="ada-1-m").exists()
    [event] = audit_rows(tenant, "customer.deleted")
    assert event.target_label == "ada-1" and EMAIL not in json.dumps(event.changes)


@pytest.mark.parametrize("role", ["viewer", "analyst", "marketer"])
def test_delete_and_anonymise_buttons_refuse_members_without_customers_edit(tenant, ada, role):
    client = client_as(tenant, role)
    assert client.post("/customers/ada-1/delete/", {"confirm": "ada-1"}).status_code == 403
    assert client.post("/customers/ada-1/anonymise/", {"confirm": "ada-1"}).status_code == 403
    with schema_context(tenant.schema_name):
        assert Customer.objects.filter(pk=ada.pk, external_id="ada-1").exists()


def test_privacy_actions_leave_another_tenants_customer_alone(tenant, other_tenant, ada):
    """Same external id in both workspaces: anonymising alpha's leaves beta's intact."""
    make_ada(other_tenant)
    connection.set_schema_to_public()
    assert client_as(tenant, "admin").post("/customers/ada-1/anonymise/", {"confirm": "ada-1"}).status_code == 302
    with schema_context(other_tenant.schema_name):
        beta = Customer.objects.get(external_id="ada-1")
        assert beta.email == EMAIL and Event.objects.filter(customer=beta, properties__Email=EMAIL).exists()
