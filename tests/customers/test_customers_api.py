"""/api/v1/customers/: upsert through ingestion, PII masking, filters, delete, isolation."""

from datetime import datetime, timezone

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from apikeys.services import api_key_create
from audit.models import AuditEvent
from customers.models import Customer, CustomerIdentity, Event, TraitDefinition
from tests.conftest import host_of, make_member, membership_of, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
URL = "/api/v1/customers/"


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield



def key_client(tenant, scopes: list[str], creator_email: str | None = None) -> Client:
    connection.set_tenant(tenant)
    creator = membership_of(tenant, creator_email or f"admin@{tenant.slug}.test")
    _, plain = api_key_create(actor=creator, name="test", scopes=scopes, now=NOW)
    connection.set_schema_to_public()
    return Client(HTTP_HOST=host_of(tenant), HTTP_AUTHORIZATION=f"Bearer {plain}")


def post(client, body, url=URL):
    return client.post(url, body, content_type="application/json")


def patch(client, external_id, body):
    return client.patch(f"{URL}{external_id}/", body, content_type="application/json")


def problems(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["external_id"] for c in response.json()["results"]]


ADA = {"external_id": "u1", "email": "ada@example.test", "name": "Ada Lovelace", "birth_date": "1815-12-10",
       "country": "GB", "plan": "pro", "company_size": 40, "tech_stack": ["django"],
       "traits": {"nps_last": 9, "address": {"zip": "N1"}}}


# ------------------------------------------------------------------------------ upsert


def test_post_creates_201_then_updates_200_through_ingestion(tenant):
    """The first POST of an external id creates the profile, the next updates it; traits
    not sent are kept, null clears one, custom traits are registered with their type."""
    admin = session(tenant)
    created = post(admin, ADA)
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["external_id"], body["email"], body["company_size"], body["tech_stack"], body["birth_date"]) == (
        "u1", "ada@example.test", 40, ["django"], "1815-12-10")
    assert body["traits"] == {"nps_last": 9, "address.zip": "N1"}
    assert body["created_at"] and body["updated_at"]

    updated = post(admin, {"external_id": "u1", "plan": "team", "country": None, "traits": {"nps_last": None}})
    assert updated.status_code == 200, updated.content
    body = updated.json()
    assert (body["plan"], body["country"], body["email"]) == ("team", None, "ada@example.test")
    assert body["traits"] == {"address.zip": "N1"}
    with schema_context(tenant.schema_name):
        assert Customer.objects.filter(external_id="u1").count() == 1
        assert CustomerIdentity.objects.get(kind="user_id", value="u1").customer.external_id == "u1"
        assert TraitDefinition.objects.get(key="nps_last").type == "number"


def test_a_profile_without_an_identity_row_is_updated_not_created(tenant):
    """Profiles made before identities were recorded are found by external id: 200, one row."""
    with schema_context(tenant.schema_name):
        Customer.objects.create(external_id="legacy", plan="free")
    response = post(session(tenant), {"external_id": "legacy", "plan": "pro"})
    assert response.status_code == 200 and response.json()["plan"] == "pro"
    with schema_context(tenant.schema_name):
        assert Customer.objects.filter(external_id="legacy").count() == 1


def test_a_value_against_the_registry_is_a_400_with_the_requests_path(tenant):
    """Type problems name the field as sent: a built-in by its key, a custom trait as
    traits.<key>; nothing of the refused request is stored."""
    admin = session(tenant)
    assert post(admin, {"external_id": "u1", "plan": "pro", "traits": {"nps_last": 9}}).status_code == 201
    response = post(admin, {"external_id": "u1", "plan": "team", "company_size": "40", "email_opt_in": "yes",
                            "traits": {"nps_last": "nine"}})
    assert response.status_code == 400
    assert problems(response) == {("company_size", "type_mismatch"), ("email_opt_in", "type_mismatch"),
                                  ("traits.nps_last", "type_mismatch")}
    response = post(admin, {"external_id": "u1", "country": {"code": "DE"}, "traits": {"plan": "x", "bad key": 1}})
    assert response.status_code == 400
    assert problems(response) == {("country", "type_mismatch"), ("traits.plan", "builtin_trait")}
    response = post(admin, {"external_id": "u1", "traits": {"bad key": 1}})
    assert problems(response) == {("traits.bad key", "invalid_key")}
    with schema_context(tenant.schema_name):
        customer = Customer.objects.get(external_id="u1")
        assert (customer.plan, customer.country, customer.traits) == ("pro", None, {"nps_last": 9})
        assert not TraitDefinition.objects.filter(key__in=["bad key", "country.code"]).exists()


def test_unknown_and_missing_fields_are_400s(tenant):
    admin = session(tenant)
    response = post(admin, {"external_id": "u1", "favourite_colour": "teal", "created_at": "2020-01-01"})
    assert response.status_code == 400
    assert problems(response) == {("favourite_colour", "unknown_field"), ("created_at", "unknown_field")}
    assert problems(post(admin, {"plan": "pro"})) == {("external_id", "required")}
    assert problems(post(admin, ["u1"])) == {("", "invalid")}
    assert problems(post(admin, {"external_id": "u1", "traits": ["x"]})) == {("traits", "not_a_dict")}
    malformed = admin.post(URL, "{nope", content_type="application/json")
    assert malformed.status_code == 400 and problems(malformed) == {("", "parse_error")}
    form = admin.post(URL, {"external_id": "u1"})  # multipart: traits would all be text
    assert form.status_code == 415
    with schema_context(tenant.schema_name):
        assert not Customer.objects.exists()


def test_patch_updates_an_existing_customer_and_404s_otherwise(tenant):
    admin = session(tenant)
    missing = patch(admin, "nobody", {"plan": "pro"})
    assert missing.status_code == 404 and problems(missing) == {("", "not_found")}
    post(admin, {"external_id": "u1", "plan": "free"})
    response = patch(admin, "u1", {"plan": "pro", "traits": {"seats": 3}})
    assert response.status_code == 200
    assert (response.json()["plan"], response.json()["traits"]) == ("pro", {"seats": 3})
    assert patch(admin, "u1", {"external_id": "u1", "plan": "team"}).status_code == 200
    assert problems(patch(admin, "u1", {"external_id": "u2"})) == {("external_id", "immutable")}
    assert problems(patch(admin, "u1", {"seats": 3})) == {("seats", "unknown_field")}
    with schema_context(tenant.schema_name):
        assert list(Customer.objects.values_list("external_id", "plan")) == [("u1", "team")]


def test_anonymous_profiles_are_addressed_by_their_anon_id_without_a_new_identity(tenant):
    """A profile created by an anonymous event is "anon:<id>"; changing it through the
    API keeps it one profile with one identity."""
    admin = session(tenant)
    post(admin, {"events": [{"anonymous_id": "a1", "name": "page_viewed"}]}, url="/api/v1/events/")
    response = patch(admin, "anon:a1", {"plan": "trial"})
    assert response.status_code == 200 and response.json()["external_id"] == "anon:a1"
    assert post(admin, {"external_id": "anon:a1", "plan": "pro"}).status_code == 200
    assert problems(post(admin, {"external_id": "anon:"})) == {("external_id", "invalid")}
    with schema_context(tenant.schema_name):
        customer = Customer.objects.get()
        assert customer.plan == "pro"
        assert list(customer.identities.values_list("kind", "value")) == [("anonymous_id", "a1")]


def test_ids_merged_into_a_profile_find_that_profile(tenant):
    """An id that ingestion merged into another profile names the survivor everywhere."""
    admin = session(tenant)
    events = "/api/v1/events/"
    post(admin, {"events": [{"anonymous_id": "a1", "name": "page_viewed"}]}, url=events)
    post(admin, {"events": [{"external_id": "u1", "name": "signed_up"}]}, url=events)
    post(admin, {"events": [{"external_id": "u1", "anonymous_id": "a1", "name": "login"},
                            {"external_id": "u2", "anonymous_id": "a1", "name": "login"}]}, url=events)
    assert admin.get(f"{URL}anon:a1/").json()["external_id"] == "u1"
    assert admin.get(f"{URL}u2/").json()["external_id"] == "u1"
    response = post(admin, {"external_id": "u2", "plan": "pro"})
    assert response.status_code == 200 and (response.json()["external_id"], response.json()["plan"]) == ("u1", "pro")
    assert ids(admin.get(URL)) == ["u1"]


# ------------------------------------------------------------------------------ reading and PII


def _ada_with_a_pii_custom_trait(tenant):
    admin = session(tenant)
    assert post(admin, {**ADA, "traits": {"phone": "+44 20 0000", "nps_last": 9}}).status_code == 201
    with schema_context(tenant.schema_name):
        TraitDefinition.objects.filter(key="phone").update(is_pii=True)


MASKED = {"email": "a***@example.test", "name": "A***", "birth_date": None}


def _masked(body: dict) -> bool:
    return ({k: body[k] for k in MASKED} == MASKED and body["traits"] == {"phone": None, "nps_last": 9}
            and body["country"] == "GB" and body["company_size"] == 40)


def test_members_without_view_pii_see_personal_data_masked(tenant):
    """Viewers and analysts lack customers.view_pii: email, name, birth date and traits
    the registry marks as PII are masked in the list and the detail; marketers and
    admins see them."""
    _ada_with_a_pii_custom_trait(tenant)
    for role in ("viewer", "analyst"):
        client = session(tenant, role)
        assert _masked(client.get(f"{URL}u1/").json()), role
        assert _masked(client.get(URL).json()["results"][0]), role
    for role in ("marketer", "admin"):
        body = session(tenant, role).get(f"{URL}u1/").json()
        assert (body["email"], body["name"], body["birth_date"]) == ("ada@example.test", "Ada Lovelace", "1815-12-10")
        assert body["traits"] == {"phone": "+44 20 0000", "nps_last": 9}


def test_api_keys_are_masked_unless_they_carry_view_pii(tenant):
    """A key's permissions are its scopes within its creator's role now: a read key whose
    creator became a viewer sees masked data; an admin's read key does not."""
    _ada_with_a_pii_custom_trait(tenant)
    make_member(tenant, "keyholder@alpha.test", "admin")
    demoted_key = key_client(tenant, ["read"], creator_email="keyholder@alpha.test")
    make_member(tenant, "keyholder@alpha.test", "viewer")
    assert _masked(demoted_key.get(f"{URL}u1/").json())
    assert _masked(demoted_key.get(URL).json()["results"][0])
    assert demoted_key.get(URL, {"search": "ada@"}).json()["results"] == []
    admin_key = key_client(tenant, ["read"])
    assert admin_key.get(f"{URL}u1/").json()["email"] == "ada@example.test"
    assert ids(admin_key.get(URL, {"search": "ADA@"})) == ["u1"]


def test_a_write_only_key_gets_the_external_id_back_but_cannot_read(tenant):
    writer = key_client(tenant, ["write"])
    response = post(writer, {**ADA, "external_id": "u9"})
    assert response.status_code == 201 and response.json() == {"external_id": "u9"}
    assert writer.get(URL).status_code == 403
    assert writer.get(f"{URL}u9/").status_code == 403


def test_filters_search_and_lookup(tenant):
    admin = session(tenant)
    people = [
        {"external_id": "u1", "email": "ada@example.test", "name": "Ada", "country": "GB", "plan": "pro",
         "industry": "software", "device_type": "desktop", "signed_up_at": "2026-01-10T00:00:00Z",
         "last_seen_at": "2026-11-01T00:00:00Z"},
        {"external_id": "u10", "email": "bob@example.test", "name": "Bob Ada-Smith", "country": "DE", "plan": "free",
         "industry": "retail", "device_type": "mobile", "signed_up_at": "2026-05-01T00:00:00Z",
         "last_seen_at": "2026-11-20T00:00:00Z"},
        {"external_id": "X-ADA-7", "email": "cy@example.test", "name": "Cy", "country": "GB", "plan": "free",
         "industry": "software", "device_type": "mobile"},
    ]
    for person in people:
        assert post(admin, person).status_code == 201
    assert ids(admin.get(URL)) == ["X-ADA-7", "u10", "u1"]  # newest first
    assert ids(admin.get(URL, {"country": "GB"})) == ["X-ADA-7", "u1"]
    assert ids(admin.get(URL, {"plan": "free", "device_type": "mobile"})) == ["X-ADA-7", "u10"]
    assert ids(admin.get(URL, {"industry": "retail"})) == ["u10"]
    assert ids(admin.get(URL, {"signed_up_after": "2026-02-01T00:00:00Z"})) == ["u10"]
    assert ids(admin.get(URL, {"signed_up_before": "2026-02-01T00:00:00Z"})) == ["u1"]
    assert ids(admin.get(URL, {"last_seen_after": "2026-11-10T00:00:00Z"})) == ["u10"]
    assert ids(admin.get(URL, {"last_seen_before": "2026-11-10T00:00:00Z"})) == ["u1"]
    assert ids(admin.get(URL, {"external_id": "u1"})) == ["u1"]  # exact, not a prefix
    assert ids(admin.get(URL, {"external_id": "nobody"})) == []
    assert ids(admin.get(URL, {"search": "ada"})) == ["X-ADA-7", "u10", "u1"]  # id, name, email
    assert ids(admin.get(URL, {"search": "BOB@EXAMPLE"})) == ["u10"]
    # Without view_pii, search matches the external id only (no probing for emails).
    assert ids(session(tenant, "viewer").get(URL, {"search": "ada"})) == ["X-ADA-7"]
    bad = admin.get(URL, {"signed_up_after": "last tuesday"})
    assert bad.status_code == 400 and problems(bad) == {("signed_up_after", "invalid")}


def test_the_list_pages_with_a_cursor(tenant):
    admin = session(tenant)
    for n in range(53):
        post(admin, {"external_id": f"u{n:02d}"})
    first = admin.get(URL).json()
    assert len(first["results"]) == 50 and first["next"]
    rest = admin.get(first["next"]).json()
    assert [c["external_id"] for c in rest["results"]] == ["u02", "u01", "u00"] and rest["next"] is None


# ------------------------------------------------------------------------------ delete


def test_delete_removes_the_customer_with_events_and_identities_and_is_audited(tenant):
    admin = session(tenant)
    post(admin, {"events": [{"external_id": "u1", "anonymous_id": "a1", "name": "login"},
                            {"external_id": "u1", "name": "purchase"}, {"external_id": "u2", "name": "login"}]},
         url="/api/v1/events/")
    response = admin.delete(f"{URL}u1/")
    assert response.status_code == 204
    with schema_context(tenant.schema_name):
        assert list(Customer.objects.values_list("external_id", flat=True)) == ["u2"]
        assert list(Event.objects.values_list("customer__external_id", flat=True)) == ["u2"]
        assert not CustomerIdentity.objects.filter(value__in=["u1", "a1"]).exists()
        event = AuditEvent.objects.get(action="customer.deleted")
        assert (event.target_type, event.target_label, event.actor_label) == (
            "customers.customer", "u1", "admin@alpha.test")
    assert admin.delete(f"{URL}u1/").status_code == 404
    assert admin.get(f"{URL}u1/").status_code == 404


# ------------------------------------------------------------------------------ roles and tenants


def test_roles_decide_who_may_write(tenant):
    session(tenant).post(URL, {"external_id": "u1"}, content_type="application/json")
    for role in ("viewer", "analyst", "marketer"):  # customers.edit is the admin's
        client = session(tenant, role)
        assert client.get(f"{URL}u1/").status_code == 200
        response = post(client, {"external_id": "u2"})
        assert response.status_code == 403 and problems(response) == {("", "permission_denied")}
        assert patch(client, "u1", {"plan": "pro"}).status_code == 403
        assert client.delete(f"{URL}u1/").status_code == 403
    assert post(key_client(tenant, ["ingest"]), {"external_id": "u2"}).status_code == 403
    with schema_context(tenant.schema_name):
        assert list(Customer.objects.values_list("external_id", "plan")) == [("u1", None)]


def test_another_tenants_customers_are_invisible(tenant, other_tenant):
    """alpha's key and members never see beta's customers, even under the same external id."""
    post(session(other_tenant), {"external_id": "beta-only", "email": "b@beta.test"})
    post(session(other_tenant), {"external_id": "shared", "email": "beta@beta.test"})
    post(session(tenant), {"external_id": "shared", "email": "alpha@alpha.test"})
    for client in (key_client(tenant, ["read", "write"]), session(tenant)):
        assert client.get(f"{URL}beta-only/").status_code == 404
        assert patch(client, "beta-only", {"plan": "x"}).status_code == 404
        assert client.delete(f"{URL}beta-only/").status_code == 404
        assert ids(client.get(URL)) == ["shared"]
        assert ids(client.get(URL, {"search": "beta"})) == []
        assert client.get(f"{URL}shared/").json()["email"] == "alpha@alpha.test"
    alpha_key_on_beta = key_client(tenant, ["read"])
    alpha_key_on_beta.defaults["HTTP_HOST"] = host_of(other_tenant)
    assert alpha_key_on_beta.get(URL).status_code == 401
    alpha_admin_on_beta = Client(HTTP_HOST=host_of(other_tenant))
    alpha_admin_on_beta.force_login(membership_of(tenant, "admin@alpha.test").user)
    assert alpha_admin_on_beta.get(URL).status_code == 404
    with schema_context(other_tenant.schema_name):
        assert set(Customer.objects.values_list("external_id", flat=True)) == {"beta-only", "shared"}
