"""POST/GET /api/v1/surveys/responses/ and /api/v1/consents/."""

from datetime import datetime, timezone

from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from customers.ingest.message import Message
from customers.ingest.store import ingest_messages
from customers.models import Consent, ConsentChange, SurveyResponse
from tests.conftest import host_of, make_member, membership_of

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def seed(tenant, *external_ids):
    with schema_context(tenant.schema_name):
        ingest_messages(messages=[Message(type="identify", user_id=e, timestamp=NOW, traits={"plan": "pro"}, index=i)
                                  for i, e in enumerate(external_ids)], source="test", now=NOW)


def admin(tenant) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(membership_of(tenant, "admin@alpha.test").user)
    return client


def post(client, path, body):
    return client.post(path, body, content_type="application/json")


def test_survey_answers_are_stored_and_bad_ones_reported(tenant):
    seed(tenant, "s1", "s2")
    response = post(admin(tenant), "/api/v1/surveys/responses/", {"responses": [
        {"external_id": "s1", "survey": "nps", "score": 10, "comment": "Love it", "message_id": "nps-1"},
        {"external_id": "s2", "survey": "csat", "score": 9},
        {"external_id": "ghost", "survey": "nps", "score": 5},
        {"external_id": "s2", "survey": "nps", "score": 3, "responded_at": "yesterday"},
        {"external_id": "s1", "survey": "nps", "score": 10, "message_id": "nps-1"},
    ]})
    assert response.status_code == 200
    body = response.json()
    assert body["stored"] == 1
    assert [(r["path"], r["code"]) for r in body["rejected"]] == [
        ("responses[1].score", "out_of_range"), ("responses[2].external_id", "unknown_customer"),
        ("responses[3].responded_at", "invalid_timestamp")]
    with schema_context(tenant.schema_name):
        assert SurveyResponse.objects.get().comment == "Love it"
    listed = admin(tenant).get("/api/v1/surveys/responses/?survey=nps").json()["results"]
    assert [(r["external_id"], r["score"]) for r in listed] == [("s1", "10.00")]


def test_consent_changes_keep_history(tenant):
    seed(tenant, "k1")
    client = admin(tenant)
    assert post(client, "/api/v1/consents/", {"consents": [
        {"external_id": "k1", "channel": "email", "granted": True, "changed_at": "2026-11-01T00:00:00Z"}]}).status_code == 200
    answer = post(client, "/api/v1/consents/", {"consents": [
        {"external_id": "k1", "channel": "email", "granted": False},
        {"external_id": "k1", "channel": "fax", "granted": True},
        {"external_id": "k1", "channel": "sms", "granted": "yes"}]}).json()
    assert answer["stored"] == 1
    assert [(r["path"], r["code"]) for r in answer["rejected"]] == [
        ("consents[1].channel", "invalid_choice"), ("consents[2].granted", "invalid_type")]
    with schema_context(tenant.schema_name):
        assert Consent.objects.get(channel="email").granted is False
        assert ConsentChange.objects.filter(channel="email").count() == 2
    assert client.get("/api/v1/consents/?channel=email").json()["results"][0]["granted"] is False


def test_batches_that_are_empty_too_big_or_all_bad_are_400(tenant):
    client = admin(tenant)
    for body, code in [({}, "required"), ({"consents": []}, "required"),
                       ({"consents": [{"external_id": "x", "channel": "email", "granted": True}] * 1001}, "too_many"),
                       ({"consents": [{"external_id": "nobody", "channel": "email", "granted": True}]}, "unknown_customer")]:
        response = post(client, "/api/v1/consents/", body)
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["code"] == code


def test_viewers_read_but_cannot_write_and_other_tenants_see_nothing(tenant, other_tenant):
    seed(tenant, "v1")
    viewer = Client(HTTP_HOST=host_of(tenant))
    viewer.force_login(make_member(tenant, "fb-viewer@alpha.test", "viewer"))
    assert viewer.get("/api/v1/consents/").status_code == 200
    denied = post(viewer, "/api/v1/consents/", {"consents": [{"external_id": "v1", "channel": "email", "granted": True}]})
    assert denied.status_code == 403
    beta = Client(HTTP_HOST=host_of(other_tenant))
    beta.force_login(membership_of(other_tenant, "admin@beta.test").user)
    refused = post(beta, "/api/v1/consents/", {"consents": [{"external_id": "v1", "channel": "email", "granted": True}]})
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "unknown_customer"
    connection.set_schema_to_public()
