"""API keys: shown once, stored hashed, scoped, tenant-bound; the tracking write key."""

import io
import logging
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from apikeys.models import ApiKey, WriteKey
from apikeys.secrets import api_key_parse, key_hash
from apikeys.selectors import write_key_current
from apikeys.services import api_key_create, api_key_revoke, write_key_rotate
from audit.models import AuditEvent
from common.errors import DomainError
from common.http import http_status
from tenants.services import member_remove
from tests.conftest import host_of, make_member

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def bearer(tenant, key: str) -> Client:
    return Client(HTTP_HOST=host_of(tenant), HTTP_AUTHORIZATION=f"Bearer {key}")


def test_the_plain_key_is_returned_once_and_only_its_hash_is_stored(alpha_admin):
    key, plain = api_key_create(actor=alpha_admin, name="ETL", scopes=["read"], now=NOW)
    assert plain.startswith(f"sk_{key.prefix}_") and api_key_parse(plain) == key.prefix
    assert key.secret_hash == key_hash(plain)
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert all(plain not in str(value) for value in stored.values())
    secret_part = plain.split("_", 2)[2]  # everything after sk_<prefix>_
    for event in AuditEvent.objects.all():
        assert secret_part not in str(event.changes) and secret_part not in event.target_label


def test_the_plain_key_never_reaches_the_logs(alpha_admin, caplog, tenant):
    caplog.set_level(logging.DEBUG)
    key, plain = api_key_create(actor=alpha_admin, name="Logged?", scopes=["read"], now=NOW)
    connection.set_schema_to_public()
    bearer(tenant, plain).get("/api/v1/me/")
    bearer(tenant, plain + "x").get("/api/v1/me/")
    assert plain.split("_", 2)[2] not in caplog.text


def test_a_key_acts_with_its_scopes_within_its_creators_role(alpha_admin, tenant):
    _, plain = api_key_create(actor=alpha_admin, name="reader", scopes=["read"], now=NOW)
    connection.set_schema_to_public()
    me = bearer(tenant, plain).get("/api/v1/me/").json()
    assert me["via"] == "api_key" and me["scopes"] == ["read"]
    assert "segments.view" in me["permissions"] and "segments.edit" not in me["permissions"]
    assert "members.manage" not in me["permissions"]  # keys never manage people or keys


def test_a_marketers_read_key_cannot_see_what_the_marketer_cannot(in_tenant):
    marketer = make_member(in_tenant, "mk@alpha.test", "marketer").memberships.get()
    with pytest.raises(DomainError) as caught:
        api_key_create(actor=marketer, name="x", scopes=["read"], now=NOW)
    assert http_status(caught.value) == 403  # api_keys.manage is admin-only


def test_bad_key_input_is_reported_per_field(alpha_admin):
    with pytest.raises(DomainError) as caught:
        api_key_create(actor=alpha_admin, name="", scopes=["read", "root"], now=NOW, expires_at=NOW - timedelta(days=1))
    assert {(p.path, p.code) for p in caught.value.problems} == {
        ("name", "required"), ("scopes[1]", "unknown_scope"), ("expires_at", "in_the_past")}
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("case", ["garbage", "tampered", "revoked", "expired", "owner_removed", "other_tenant"])
def test_unusable_keys_get_a_coded_401(alpha_admin, tenant, other_tenant, case):
    expires = NOW + timedelta(days=1) if case == "expired" else None
    owner = alpha_admin
    if case == "owner_removed":
        owner = make_member(tenant, "leaver@alpha.test", "admin").memberships.get()
    key, plain = api_key_create(actor=owner, name="k", scopes=["read"], now=NOW, expires_at=expires)
    host = tenant
    if case == "garbage":
        plain = "sk_not-a-key"
    elif case == "tampered":
        plain = plain[:-2] + ("AA" if not plain.endswith("AA") else "BB")
    elif case == "revoked":
        api_key_revoke(actor=alpha_admin, key=key, now=NOW)
    elif case == "owner_removed":
        member_remove(actor=alpha_admin, membership=owner)
    elif case == "other_tenant":
        host = other_tenant
    connection.set_schema_to_public()
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        response = bearer(host, plain).get("/api/v1/me/")
    expected = {"garbage": "invalid_api_key", "tampered": "invalid_api_key", "revoked": "revoked_api_key",
                "expired": "expired_api_key", "owner_removed": "api_key_owner_gone", "other_tenant": "invalid_api_key"}
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == expected[case]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_use_is_recorded_at_most_once_a_minute(alpha_admin, tenant):
    key, plain = api_key_create(actor=alpha_admin, name="k", scopes=["read"], now=NOW)
    connection.set_schema_to_public()
    with time_machine.travel(NOW, tick=False):
        bearer(tenant, plain).get("/api/v1/me/")
    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        bearer(tenant, plain).get("/api/v1/me/")
    with schema_context(tenant.schema_name):
        assert ApiKey.objects.get(pk=key.pk).last_used_at == NOW


def test_rotating_the_write_key_revokes_the_old_one(alpha_admin):
    first = write_key_current()
    assert first is not None and first.key.startswith("wk_")  # every tenant starts with one
    second = write_key_rotate(actor=alpha_admin, now=NOW)
    first.refresh_from_db()
    assert first.revoked_at == NOW and write_key_current() == second
    assert WriteKey.objects.filter(revoked_at__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="write_key.rotated").exists()


def test_write_keys_differ_per_tenant(tenant, other_tenant):
    with schema_context(tenant.schema_name):
        alpha_key = write_key_current().key
    with schema_context(other_tenant.schema_name):
        assert write_key_current().key != alpha_key


def test_the_command_prints_a_working_key(tenant):
    out, err = io.StringIO(), io.StringIO()
    call_command("api_key_create", tenant="alpha", email="admin@alpha.test", scopes="read,ingest", stdout=out, stderr=err)
    plain = out.getvalue().strip()
    assert bearer(tenant, plain).get("/api/v1/me/").json()["scopes"] == ["ingest", "read"]
    assert plain not in err.getvalue()
    with pytest.raises(CommandError, match="unknown_scope"):
        call_command("api_key_create", tenant="alpha", email="admin@alpha.test", scopes="admin", stdout=out)
    with pytest.raises(CommandError, match="not a member"):
        call_command("api_key_create", tenant="alpha", email="admin@beta.test", stdout=out)
    with pytest.raises(CommandError, match="no tenant"):
        call_command("api_key_create", tenant="nope", email="admin@alpha.test", stdout=out)


def test_deleting_a_user_who_created_keys_works_and_their_keys_stop(alpha_admin, tenant):
    """Keys live in tenant schemas, users in public: deleting the user must not reach into
    tenant tables, and the key must stop working."""
    creator = make_member(tenant, "keymaker@alpha.test", "admin").memberships.get()
    _, plain = api_key_create(actor=creator, name="orphan", scopes=["read"], now=NOW)
    connection.set_schema_to_public()
    creator.user.delete()
    response = bearer(tenant, plain).get("/api/v1/me/")
    assert response.status_code == 401 and response.json()["errors"][0]["code"] == "api_key_owner_gone"


def test_the_identity_secret_is_shown_rotated_and_its_requirement_set_on_the_settings_page(tenant, other_tenant):
    """Every workspace has its own identity secret from the start (verification not yet
    required); an admin sees it, rotates it and decides whether unsigned in-app requests
    are refused. Each change is audited; the log never holds the secret."""
    from apikeys.selectors import identity_secret_current
    from tests.conftest import session

    with schema_context(tenant.schema_name):
        first = identity_secret_current()
    with schema_context(other_tenant.schema_name):
        assert identity_secret_current().secret != first.secret
    assert first.secret.startswith("is_") and first.required is False
    admin = session(tenant)
    page = admin.get("/settings/api-keys/").content.decode()
    assert first.secret in page and 'data-testid="identity-snippet"' in page
    assert admin.post("/settings/identity-verification/", {"required": "on"}).status_code == 302
    assert admin.post("/settings/identity-secret/rotate/").status_code == 302
    with schema_context(tenant.schema_name):
        current = identity_secret_current()
        assert current.secret != first.secret and current.required is True
        assert admin.post("/settings/identity-verification/", {}).status_code == 302
        assert identity_secret_current().required is False
        actions = list(AuditEvent.objects.filter(action__startswith="identity").values_list("action", "target_label"))
        assert sorted(actions) == [("identity_secret.rotated", "identity secret"),
                                   ("identity_verification.changed", "identity secret"),
                                   ("identity_verification.changed", "identity secret")]
        assert not AuditEvent.objects.filter(changes__icontains=current.secret[3:12]).exists()
    viewer = session(tenant, "viewer")
    assert viewer.post("/settings/identity-secret/rotate/").status_code == 403
    assert current.secret not in viewer.get("/settings/api-keys/").content.decode()


def test_the_lookup_key_is_shown_with_its_snippet_and_rotated_on_the_settings_page(tenant, other_tenant):
    """Every workspace starts with its own lookup key; an admin sees it with the snippet
    that gates a feature, and rotates it (audited, the log holding only its start)."""
    from apikeys.models import LookupKey
    from apikeys.selectors import lookup_key_current
    from tests.conftest import session

    with schema_context(tenant.schema_name):
        first = lookup_key_current()
    with schema_context(other_tenant.schema_name):
        assert lookup_key_current().key != first.key
    assert first.key.startswith("lk_")
    admin = session(tenant)
    page = admin.get("/settings/api-keys/").content.decode()
    assert 'data-testid="lookup-key"' in page and first.key in page and 'data-testid="lookup-snippet"' in page
    assert admin.post("/settings/lookup-key/rotate/").status_code == 302
    with schema_context(tenant.schema_name):
        current = lookup_key_current()
        assert current.key != first.key and LookupKey.objects.get(pk=first.pk).revoked_at is not None
        event = AuditEvent.objects.get(action="lookup_key.rotated")
        assert current.key not in str(event.changes) and current.key[:7] + "…" in str(event.changes)
    assert session(tenant, "viewer").post("/settings/lookup-key/rotate/").status_code == 403


def test_each_api_key_is_rate_limited_and_people_are_not(alpha_admin, tenant, settings):
    """Past RATE_LIMITS["api"] a key gets 429 `rate_limited` with Retry-After; another key
    and a logged-in person keep going."""
    from tests.conftest import session

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api": "2/m"}
    _, busy = api_key_create(actor=alpha_admin, name="busy", scopes=["read"], now=NOW)
    _, other = api_key_create(actor=alpha_admin, name="other", scopes=["read"], now=NOW)
    connection.set_schema_to_public()
    answers = [bearer(tenant, busy).get("/api/v1/segments/") for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert answers[2].status_code == 429 and answers[2].json()["errors"][0]["code"] == "rate_limited"
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert bearer(tenant, other).get("/api/v1/segments/").status_code == 200
    person = session(tenant)
    assert all(person.get("/api/v1/segments/").status_code == 200 for _ in range(3))
