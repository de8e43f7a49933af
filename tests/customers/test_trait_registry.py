"""The trait registry: read by members, edited by admins (API and Settings → Traits),
with the type of a custom trait refused while stored values contradict it."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from customers.models import Customer, TraitDefinition
from tests.conftest import host_of, make_member


def _client(tenant, role: str) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(make_member(tenant, f"{role}-traits@{tenant.slug}.test", role))
    return client


def _patch(client: Client, key: str, body) -> tuple[int, dict]:
    response = client.patch(f"/api/v1/traits/{key}/", json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


@pytest.fixture
def plan_tier(tenant):
    """A custom number trait with two stored values."""
    connection.set_tenant(tenant)
    TraitDefinition.objects.create(key="tier", type="number", category="behavioral")
    Customer.objects.create(external_id="t1", traits={"tier": 3})
    Customer.objects.create(external_id="t2", traits={"tier": None})
    connection.set_schema_to_public()
    return "tier"


def test_members_list_every_trait_with_its_category(tenant):
    body = _client(tenant, "viewer").get("/api/v1/traits/?category=firmographic").json()
    keys = {t["key"] for t in body}
    assert {"company", "industry", "company_size", "annual_revenue"} <= keys
    assert all(t["category"] == "firmographic" for t in body)


def test_an_admin_edits_a_custom_trait_and_it_is_audited(tenant, plan_tier):
    status, body = _patch(_client(tenant, "admin"), "tier", {"category": "value", "description": "Price tier", "is_pii": False})
    assert status == 200 and (body["category"], body["description"]) == ("value", "Price tier")
    connection.set_tenant(tenant)
    event = AuditEvent.objects.filter(action="trait.updated").latest("id")
    assert event.target_label == "tier" and event.changes["category"] == ["behavioral", "value"]


def test_a_type_change_is_refused_while_stored_values_contradict_it(tenant, plan_tier):
    status, body = _patch(_client(tenant, "admin"), "tier", {"type": "string"})
    assert status == 400
    [problem] = body["errors"]
    assert (problem["path"], problem["code"]) == ("type", "type_conflict") and "1 customers" in problem["message"]
    connection.set_tenant(tenant)
    assert TraitDefinition.objects.get(key="tier").type == "number"


def test_a_type_change_that_fits_every_stored_value_is_accepted(tenant, plan_tier):
    connection.set_tenant(tenant)
    Customer.objects.filter(external_id="t1").update(traits={"tier": "gold"})
    connection.set_schema_to_public()
    status, body = _patch(_client(tenant, "admin"), "tier", {"type": "string"})
    assert status == 200 and body["type"] == "string"


@pytest.mark.parametrize("key,body,path,code", [
    ("email", {"type": "number"}, "type", "builtin_trait"),
    ("email", {"category": "value"}, "category", "builtin_trait"),
    ("tier", {"colour": "red"}, "colour", "unknown_field"),
    ("tier", {"type": "money"}, "type", "invalid_value"),
    ("tier", {"category": "feelings"}, "category", "invalid_value"),
    ("tier", {"is_pii": "yes"}, "is_pii", "invalid_type"),
    ("tier", {"description": "x" * 301}, "description", "invalid_value"),
])
def test_bad_edits_are_coded_and_change_nothing(tenant, plan_tier, key, body, path, code):
    status, answer = _patch(_client(tenant, "admin"), key, body)
    assert status == 400 and (answer["errors"][0]["path"], answer["errors"][0]["code"]) == (path, code)


def test_a_body_that_is_not_an_object_is_refused(tenant, plan_tier):
    status, answer = _patch(_client(tenant, "admin"), "tier", ["type", "string"])
    assert status == 400 and answer["errors"][0]["code"] == "invalid_type"


def test_non_admins_may_read_but_not_edit(tenant, plan_tier):
    marketer = _client(tenant, "marketer")
    assert marketer.get("/api/v1/traits/tier/").status_code == 200
    assert _patch(marketer, "tier", {"description": "no"})[0] == 403
    assert marketer.get("/settings/traits/").status_code == 403


def test_another_tenants_trait_is_not_found(tenant, other_tenant):
    connection.set_tenant(other_tenant)
    TraitDefinition.objects.create(key="beta_only", type="string")
    connection.set_schema_to_public()
    admin = _client(tenant, "admin")
    assert admin.get("/api/v1/traits/beta_only/").status_code == 404
    assert _patch(admin, "beta_only", {"description": "x"})[0] == 404
    assert admin.post("/settings/traits/beta_only/", {"description": "x"}).status_code == 404


def test_the_settings_page_groups_traits_and_edits_a_row_in_place(tenant, plan_tier):
    admin = _client(tenant, "admin")
    page = admin.get("/settings/traits/").content.decode()
    assert "Firmographic" in page and 'data-key="tier"' in page and 'data-key="company_size"' in page
    row = admin.post("/settings/traits/tier/", {"type": "number", "category": "needs", "description": "Tier",
                                                 "is_pii": "on"}, HTTP_HX_REQUEST="true")
    assert row.status_code == 200 and "Saved" in row.content.decode()
    connection.set_tenant(tenant)
    saved = TraitDefinition.objects.get(key="tier")
    assert (saved.category, saved.is_pii) == ("needs", True)


def test_a_refused_edit_on_the_page_shows_its_message_in_the_row(tenant, plan_tier):
    row = _client(tenant, "admin").post("/settings/traits/tier/", {"type": "boolean", "category": "behavioral",
                                                                   "description": ""}, HTTP_HX_REQUEST="true")
    assert row.status_code == 400 and "correct or clear those values first" in row.content.decode()
