"""The REST API's envelope: coded errors with paths, never a 500; tenant-bound."""

import json
import re

from django.utils import timezone

from django.db import connection
from django.test import Client

from apikeys.services import api_key_create
from tests.conftest import host_of, make_member, membership_of


def admin_client(tenant, **extra) -> Client:
    client = Client(HTTP_HOST=host_of(tenant), **extra)
    client.force_login(membership_of(tenant, "admin@alpha.test").user)
    return client


def test_anonymous_gets_401_json_not_a_login_redirect(tenant):
    response = Client(HTTP_HOST=host_of(tenant)).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json() == {"errors": [{"path": "", "code": "not_authenticated",
                                           "message": "Authentication credentials were not provided."}]}


def test_a_session_of_another_tenants_member_gets_404(tenant, other_tenant):
    client = Client(HTTP_HOST=host_of(other_tenant))
    client.force_login(membership_of(tenant, "admin@alpha.test").user)
    response = client.get("/api/v1/me/")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "not_found"


def test_session_writes_need_the_csrf_token(tenant):
    client = admin_client(tenant, enforce_csrf_checks=True)
    response = client.post("/api/v1/api-keys/", {"name": "x", "scopes": ["read"]}, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["errors"][0]["message"]


def test_malformed_json_is_a_coded_400(tenant):
    response = admin_client(tenant).post("/api/v1/api-keys/", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "parse_error"


def test_field_problems_come_back_with_paths(tenant):
    client = admin_client(tenant)
    response = client.post("/api/v1/api-keys/", {"name": "", "scopes": ["read", "everything"]}, content_type="application/json")
    assert response.status_code == 400
    assert {(e["path"], e["code"]) for e in response.json()["errors"]} == {("name", "required"), ("scopes[1]", "unknown_scope")}
    response = client.post("/api/v1/api-keys/", {"name": "x", "scopes": "read", "expires_at": "soon"}, content_type="application/json")
    assert {(e["path"], e["code"]) for e in response.json()["errors"]} == {("scopes", "not_a_list"), ("expires_at", "invalid")}


def test_creating_and_revoking_a_key_over_the_api(tenant):
    client = admin_client(tenant)
    created = client.post("/api/v1/api-keys/", {"name": "CI", "scopes": ["read"]}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("sk_") and body["prefix"] in body["key"]
    listed = client.get("/api/v1/api-keys/").json()["results"]
    assert "key" not in listed[0] and listed[0]["prefix"] == body["prefix"]
    assert client.delete(f"/api/v1/api-keys/{body['id']}/").status_code == 204
    again = client.delete(f"/api/v1/api-keys/{body['id']}/")
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "already_revoked"
    assert client.delete("/api/v1/api-keys/999999/").status_code == 404


def test_another_tenants_key_ids_are_not_found(tenant, other_tenant):
    connection.set_tenant(other_tenant)
    beta_key, _ = api_key_create(actor=membership_of(other_tenant, "admin@beta.test"), name="b", scopes=["read"],
                                 now=timezone.now())
    connection.set_schema_to_public()
    client = admin_client(tenant)
    assert client.get(f"/api/v1/api-keys/{beta_key.pk}/").status_code in (404,)


def test_role_limits_apply_to_the_api(tenant):
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(make_member(tenant, "an@alpha.test", "analyst"))
    response = client.get("/api/v1/audit-events/")
    assert response.status_code == 403 and response.json()["errors"][0]["code"] == "permission_denied"
    assert client.get("/api/v1/me/").json()["role"] == "analyst"


def test_audit_events_are_listed_and_filtered(tenant):
    client = admin_client(tenant)
    client.post("/api/v1/api-keys/", {"name": "one", "scopes": ["read"]}, content_type="application/json")
    events = client.get("/api/v1/audit-events/?action=api_key.").json()["results"]
    assert events and all(e["action"].startswith("api_key.") for e in events)
    assert client.get("/api/v1/audit-events/?since=yesterday").status_code == 400


def test_the_openapi_schema_and_docs_are_served_offline(tenant):
    client = admin_client(tenant)
    schema = client.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/api-keys/" in paths and "/api/v1/me/" in paths
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
    # Offline: every script and stylesheet comes from this server. (Not a search for "cdn":
    # the page embeds a random CSRF token, which now and then contains those letters.)
    assets = re.findall(r'(?:src|href)="([^"]*)"', docs.content.decode())
    assert assets and all(url.startswith("/") and not url.startswith("//") for url in assets), assets


def test_every_write_input_names_only_what_its_service_takes():
    """API views hand a validated input to its service as keyword arguments; a field the
    service does not take would be a TypeError (a 500), not a coded 400."""
    import inspect

    from campaigns.api import serializers as campaign_inputs
    from campaigns.plays.services import play_create, play_update
    from campaigns.services.campaigns import campaign_create, campaign_update
    from campaigns.services.endpoints import webhook_endpoint_create, webhook_endpoint_update
    from segments.api import serializers as segment_inputs
    from segments.services import segment_create, segment_update

    pairs = [(campaign_inputs.PlayInput, play_create), (campaign_inputs.PlayUpdateInput, play_update),
             (campaign_inputs.CampaignInput, campaign_create), (campaign_inputs.CampaignUpdateInput, campaign_update),
             (campaign_inputs.WebhookInput, webhook_endpoint_create),
             (campaign_inputs.WebhookUpdateInput, webhook_endpoint_update),
             (segment_inputs.SegmentCreateInput, segment_create), (segment_inputs.SegmentUpdateInput, segment_update)]
    for serializer, service in pairs:
        renamed = getattr(serializer, "renamed", {})  # e.g. a segment's key becomes its id
        fields = {renamed.get(name, name) for name in serializer().fields}
        assert fields <= set(inspect.signature(service).parameters), (serializer, service)
