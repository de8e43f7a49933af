"""The settings area's HTML pages: members, invitations, roles, departments, API keys and
the audit log — permissions, good and bad input, tenant isolation."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import resolve
from django.utils import timezone
from django_tenants.utils import schema_context

from apikeys.models import ApiKey, WriteKey
from apikeys.services import api_key_create
from audit.models import AuditEvent
from audit.services import audit_record
from tenants.models import Department, Invitation, Role, TenantMembership, User
from tenants.permissions import CATALOGUE
from tenants.services import invitation_revoke, member_invite, role_create, user_get_or_create
from tests.conftest import PASSWORD, host_of, make_member

PLAIN_KEY = re.compile(r"sk_[0-9a-f]{10}_[A-Za-z0-9_-]{30,}")


# ----------------------------------------------------------------------------- helpers


def client_for(tenant, user) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(user)
    return client


@pytest.fixture
def admin(tenant) -> User:
    return User.objects.get(email="admin@alpha.test")


@pytest.fixture
def admin_client(tenant, admin) -> Client:
    return client_for(tenant, admin)


@pytest.fixture
def viewer_client(tenant) -> Client:
    return client_for(tenant, make_member(tenant, "viewer@alpha.test", "viewer"))


def role_of(tenant, key: str) -> Role:
    return Role.objects.get(tenant=tenant, key=key)


def department_of(tenant, name: str) -> Department:
    return Department.objects.get(tenant=tenant, name=name)


def membership(tenant, email: str) -> TenantMembership:
    return TenantMembership.objects.select_related("role", "department", "user").get(tenant=tenant, user__email=email)


def admin_membership(tenant) -> TenantMembership:
    return membership(tenant, f"admin@{tenant.slug}.test")


_audit_baseline: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _audit_before_test(tenant, other_tenant):
    """Remember where each tenant's audit log stood: the log is append-only, so events
    committed by other tests (browser, worker) stay, and `audit_log` looks past them."""
    for schema in (tenant.schema_name, other_tenant.schema_name):
        with schema_context(schema):
            last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
        _audit_baseline[schema] = last or 0


def audit_log(tenant, action: str | None = None) -> list[AuditEvent]:
    """This test's audit events in `tenant`, newest first."""
    with schema_context(tenant.schema_name):
        events = AuditEvent.objects.filter(id__gt=_audit_baseline[tenant.schema_name])
        return list(events.filter(action=action) if action else events)


def text(response) -> str:
    return response.content.decode()


def invite_token(tenant, email: str, role_key: str = "marketer", now: datetime | None = None) -> str:
    with schema_context(tenant.schema_name):
        _invitation, token = member_invite(actor=admin_membership(tenant), email=email, role=role_of(tenant, role_key),
                                           department=None, now=now or timezone.now())
    return token


# ----------------------------------------------------------------------------- permissions

PAGES = [
    ("/settings/members/", "members.manage"),
    ("/settings/roles/", "roles.manage"),
    ("/settings/roles/new/", "roles.manage"),
    ("/settings/departments/", "settings.modify"),
    ("/settings/api-keys/", "api_keys.manage"),
    ("/settings/audit/", "audit.view"),
    ("/settings/audit/export.csv", "audit.view"),
]


@pytest.mark.parametrize(("path", "permission"), PAGES)
def test_admin_opens_each_settings_page_and_a_viewer_is_refused(admin_client, viewer_client, path, permission):
    """Every page answers 200 to an admin, 403 to a viewer, and declares its permission."""
    assert admin_client.get(path).status_code == 200
    assert viewer_client.get(path).status_code == 403
    assert resolve(path).func.required_permission == permission


def test_role_pages_of_an_existing_role_are_refused_to_a_viewer(tenant, admin_client, viewer_client):
    path = f"/settings/roles/{role_of(tenant, 'marketer').pk}/"
    assert admin_client.get(path).status_code == 200
    assert viewer_client.get(path).status_code == 403


def test_every_write_is_refused_to_a_viewer(tenant, viewer_client):
    """POSTs need the permission too, and change nothing."""
    viewer = membership(tenant, "viewer@alpha.test")
    paths = [
        "/settings/members/invite/", f"/settings/members/{viewer.pk}/", f"/settings/members/{viewer.pk}/remove/",
        "/settings/roles/new/", "/settings/departments/", "/settings/api-keys/", "/settings/write-key/rotate/",
        f"/settings/departments/{department_of(tenant, 'Sales').pk}/delete/",
    ]
    for path in paths:
        assert viewer_client.post(path, {"name": "x", "email": "x@example.test"}).status_code == 403, path
    assert membership(tenant, "viewer@alpha.test").role.key == "viewer"
    assert audit_log(tenant) == []


def test_settings_index_redirects_to_the_first_page_the_member_may_see(tenant, admin_client, viewer_client):
    assert admin_client.get("/settings/")["Location"] == "/settings/workspace/"
    assert viewer_client.get("/settings/").status_code == 403
    with schema_context(tenant.schema_name):
        auditor = role_create(actor=admin_membership(tenant), name="Auditor", permissions=["audit.view"])
    user = make_member(tenant, "auditor@alpha.test")
    TenantMembership.objects.filter(user=user, tenant=tenant).update(role=auditor)
    client = client_for(tenant, user)
    assert client.get("/settings/")["Location"] == "/settings/audit/"
    page = text(client.get("/settings/audit/"))
    assert 'href="/settings/audit/"' in page and 'href="/settings/members/"' not in page


def test_settings_link_shows_only_for_members_with_a_settings_permission(admin_client, viewer_client):
    assert 'href="/settings/"' in text(admin_client.get("/"))
    assert 'href="/settings/"' not in text(viewer_client.get("/"))


def test_anonymous_visitors_are_sent_to_login(tenant):
    response = Client(HTTP_HOST=host_of(tenant)).get("/settings/members/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# ----------------------------------------------------------------------------- members


def test_members_page_lists_members_and_pending_invitations(tenant, admin_client):
    make_member(tenant, "someone@alpha.test", "analyst")
    invite_token(tenant, "pending@example.test")
    page = text(admin_client.get("/settings/members/"))
    assert "someone@alpha.test" in page and "admin@alpha.test" in page
    assert "pending@example.test" in page and "Revoke" in page
    assert 'for="id_email"' in page and 'for="id_role"' in page and 'for="id_department"' in page


def test_invite_sends_a_link_that_opens_the_invitation(tenant, admin_client, django_capture_on_commit_callbacks):
    """Invite → audit line, email with accept_url + token; the link (without a trailing
    slash, as mailed) opens the accept page."""
    sales = department_of(tenant, "Sales")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/settings/members/invite/", {
            "email": "New.Person@Example.test", "role": role_of(tenant, "marketer").pk, "department": sales.pk})
    assert response.status_code == 302 and response["Location"] == "/settings/members/"
    invitation = Invitation.objects.get(tenant=tenant, email="new.person@example.test")
    assert invitation.role.key == "marketer" and invitation.department == sales
    [event] = audit_log(tenant, "member.invited")
    assert event.actor_label == "admin@alpha.test" and event.changes["department"] == [None, "Sales"]
    [message] = mail.outbox
    link = re.search(r"http://alpha\.localhost/invitations/\S+", message.body).group(0)
    opened = Client(HTTP_HOST=host_of(tenant)).get(link.removeprefix("http://alpha.localhost"), follow=True)
    assert opened.status_code == 200 and "Join Alpha Co" in text(opened) and "Marketer" in text(opened)
    assert "Invitation sent to new.person@example.test" in text(admin_client.get("/settings/members/"))


@pytest.mark.parametrize(("email", "status", "message"), [
    ("dup@example.test", 409, "already has an open invitation"),
    ("admin@alpha.test", 400, "is already a member"),
    ("not an email", 400, "Enter a valid email address"),
    ("", 400, "This field is required"),
])
def test_invite_with_bad_input_shows_the_error_and_invites_nobody(tenant, admin_client, email, status, message):
    invite_token(tenant, "dup@example.test")
    before = Invitation.objects.filter(tenant=tenant).count()
    response = admin_client.post("/settings/members/invite/", {"email": email, "role": role_of(tenant, "viewer").pk})
    assert response.status_code == status
    assert message in text(response)
    assert Invitation.objects.filter(tenant=tenant).count() == before
    assert len(audit_log(tenant, "member.invited")) == before


def test_invite_with_an_unknown_or_foreign_role_or_department_is_404(tenant, other_tenant, admin_client):
    missing = Role.objects.order_by("-pk").first().pk + 1000
    for data in ({"role": missing}, {"role": role_of(other_tenant, "viewer").pk},
                 {"role": role_of(tenant, "viewer").pk, "department": department_of(other_tenant, "Sales").pk}):
        response = admin_client.post("/settings/members/invite/", {"email": "who@example.test", **data})
        assert response.status_code == 404, data
    assert not Invitation.objects.filter(email="who@example.test").exists()


def test_member_role_and_department_change(tenant, admin_client):
    make_member(tenant, "pat@alpha.test", "viewer")
    pat = membership(tenant, "pat@alpha.test")
    sales = department_of(tenant, "Sales")
    response = admin_client.post(f"/settings/members/{pat.pk}/", {"role": role_of(tenant, "marketer").pk,
                                                                  "department": sales.pk})
    assert response.status_code == 302
    pat = membership(tenant, "pat@alpha.test")
    assert pat.role.key == "marketer" and pat.department == sales
    [event] = audit_log(tenant, "member.updated")
    assert event.changes == {"role": ["viewer", "marketer"], "department": [None, "Sales"]}
    # an empty department clears it
    admin_client.post(f"/settings/members/{pat.pk}/", {"role": role_of(tenant, "marketer").pk, "department": ""})
    assert membership(tenant, "pat@alpha.test").department is None


def test_member_change_over_htmx_returns_the_updated_row(tenant, admin_client):
    make_member(tenant, "row@alpha.test", "viewer")
    row = membership(tenant, "row@alpha.test")
    response = admin_client.post(f"/settings/members/{row.pk}/", {"role": role_of(tenant, "analyst").pk},
                                 HTTP_HX_REQUEST="true", HTTP_HX_TARGET=f"member-{row.pk}")
    assert response.status_code == 200
    body = text(response)
    assert body.lstrip().startswith(f'<tr id="member-{row.pk}"') and "Saved" in body and "<html" not in body
    assert re.search(rf'<option value="{role_of(tenant, "analyst").pk}" selected>Analyst', body)


def test_the_last_admin_cannot_be_demoted_or_removed(tenant, admin_client):
    me = admin_membership(tenant)
    response = admin_client.post(f"/settings/members/{me.pk}/", {"role": role_of(tenant, "viewer").pk})
    assert response.status_code == 409 and "at least one admin" in text(response)
    htmx = admin_client.post(f"/settings/members/{me.pk}/", {"role": role_of(tenant, "viewer").pk}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 409 and "at least one admin" in text(htmx) and "<html" not in text(htmx)
    removed = admin_client.post(f"/settings/members/{me.pk}/remove/")
    assert removed.status_code == 409 and "at least one admin" in text(removed)
    assert membership(tenant, "admin@alpha.test").role.key == "admin"
    assert audit_log(tenant) == []


def test_an_admin_can_step_down_when_another_admin_remains(tenant, admin_client):
    make_member(tenant, "second-admin@alpha.test", "admin")
    me = admin_membership(tenant)
    response = admin_client.post(f"/settings/members/{me.pk}/", {"role": role_of(tenant, "viewer").pk})
    assert response.status_code == 302 and response["Location"] == "/"  # the members page is no longer theirs
    assert membership(tenant, "admin@alpha.test").role.key == "viewer"


def test_member_remove(tenant, admin_client):
    make_member(tenant, "leaver@alpha.test", "analyst")
    leaver = membership(tenant, "leaver@alpha.test")
    response = admin_client.post(f"/settings/members/{leaver.pk}/remove/")
    assert response.status_code == 302
    assert not TenantMembership.objects.filter(pk=leaver.pk).exists()
    assert User.objects.filter(email="leaver@alpha.test").exists()  # the person keeps their account
    [event] = audit_log(tenant, "member.removed")
    assert event.changes == {"role": ["analyst", None]}


def test_bad_member_edits_are_refused(tenant, other_tenant, admin_client):
    make_member(tenant, "pat@alpha.test", "viewer")
    pat = membership(tenant, "pat@alpha.test")
    assert admin_client.post(f"/settings/members/{pat.pk}/", {"role": "abc"}).status_code == 400
    assert admin_client.post(f"/settings/members/{pat.pk}/", {"role": role_of(other_tenant, "admin").pk}).status_code == 404
    assert admin_client.post(f"/settings/members/{pat.pk}/", {"role": role_of(tenant, "viewer").pk,
                                                             "department": department_of(other_tenant, "Sales").pk}).status_code == 404
    assert admin_client.get(f"/settings/members/{pat.pk}/").status_code == 405
    assert membership(tenant, "pat@alpha.test").role.key == "viewer"


def test_another_tenants_member_and_invitation_ids_are_404(tenant, other_tenant, admin_client):
    beta_admin = admin_membership(other_tenant)
    assert admin_client.post(f"/settings/members/{beta_admin.pk}/", {"role": role_of(tenant, "viewer").pk}).status_code == 404
    assert admin_client.post(f"/settings/members/{beta_admin.pk}/remove/").status_code == 404
    invite_token(other_tenant, "beta-invitee@example.test")
    beta_invitation = Invitation.objects.get(tenant=other_tenant, email="beta-invitee@example.test")
    assert admin_client.post(f"/settings/invitations/{beta_invitation.pk}/revoke/").status_code == 404
    assert TenantMembership.objects.filter(pk=beta_admin.pk, role__key="admin").exists()
    assert Invitation.objects.get(pk=beta_invitation.pk).revoked_at is None


def test_invitation_revoke(tenant, admin_client):
    invite_token(tenant, "maybe@example.test")
    invitation = Invitation.objects.get(tenant=tenant, email="maybe@example.test")
    response = admin_client.post(f"/settings/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is not None
    assert len(audit_log(tenant, "member.invitation_revoked")) == 1
    again = admin_client.post(f"/settings/invitations/{invitation.pk}/revoke/")
    assert again.status_code == 409 and "already accepted or revoked" in text(again)


# ----------------------------------------------------------------------------- accepting


def test_a_new_person_creates_an_account_and_joins(tenant):
    token = invite_token(tenant, "fresh@example.test", "marketer")
    client = Client(HTTP_HOST=host_of(tenant))
    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 200
    assert "Join Alpha Co" in text(page) and "Marketer" in text(page) and "admin@alpha.test" in text(page)
    assert "Create account and join" in text(page)
    response = client.post(f"/invitations/{token}/", {"full_name": "Fresh Face", "password": "a-long-secret-42"})
    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(email="fresh@example.test")
    assert user.full_name == "Fresh Face" and user.check_password("a-long-secret-42")
    assert membership(tenant, "fresh@example.test").role.key == "marketer"
    home = client.get("/")  # logged in, in the workspace
    assert home.status_code == 200 and "Welcome to Alpha Co" in text(home)
    assert len(audit_log(tenant, "member.joined")) == 1


def test_a_weak_password_is_refused_and_creates_nothing(tenant):
    token = invite_token(tenant, "weak@example.test")
    client = Client(HTTP_HOST=host_of(tenant))
    response = client.post(f"/invitations/{token}/", {"full_name": "W", "password": "short"})
    assert response.status_code == 400 and "too short" in text(response)
    assert not User.objects.filter(email="weak@example.test").exists()


def test_an_existing_logged_in_user_accepts(tenant, other_tenant):
    user = make_member(other_tenant, "both@example.test", "viewer")  # has an account through beta
    token = invite_token(tenant, "both@example.test", "analyst")
    client = client_for(tenant, user)
    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 200 and "Accept and join Alpha Co" in text(page)
    response = client.post(f"/invitations/{token}/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert membership(tenant, "both@example.test").role.key == "analyst"
    assert client.get("/").status_code == 200


def test_an_existing_user_who_is_not_logged_in_is_sent_to_login(tenant):
    user_get_or_create(email="known@example.test", password=PASSWORD)
    token = invite_token(tenant, "known@example.test")
    client = Client(HTTP_HOST=host_of(tenant))
    page = text(client.get(f"/invitations/{token}/"))
    assert f'href="/accounts/login/?next=%2Finvitations%2F{token}%2F"' in page
    response = client.post(f"/invitations/{token}/", {"password": "a-long-secret-42"})
    assert response.status_code == 400 and "already has a Strata account" in text(response)
    assert not TenantMembership.objects.filter(tenant=tenant, user__email="known@example.test").exists()


def test_someone_else_logged_in_is_told_to_log_out(tenant):
    token = invite_token(tenant, "intended@example.test")
    other = user_get_or_create(email="bystander@example.test", password=PASSWORD)
    client = client_for(tenant, other)
    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 200
    assert "this invitation is for <strong>intended@example.test</strong>" in text(page)
    assert "Log out and continue" in text(page)
    response = client.post(f"/invitations/{token}/")
    assert response.status_code == 403 and "This invitation is for intended@example.test" in text(response)
    assert not TenantMembership.objects.filter(tenant=tenant, user=other).exists()
    assert Invitation.objects.get(tenant=tenant, email="intended@example.test").accepted_at is None
    # "Log out and continue" comes back to the invitation, now as a visitor
    logged_out = client.post("/accounts/logout/", {"next": f"/invitations/{token}/"})
    assert logged_out["Location"] == f"/invitations/{token}/"
    assert "Create account and join" in text(client.get(logged_out["Location"]))


def test_an_expired_invitation_says_so(tenant):
    with time_machine.travel("2026-11-23 12:00Z", tick=False):
        token = invite_token(tenant, "late@example.test")
    client = Client(HTTP_HOST=host_of(tenant))
    with time_machine.travel("2026-12-01 12:00Z", tick=False):
        page = client.get(f"/invitations/{token}/")
        assert page.status_code == 410 and "has expired" in text(page)
        response = client.post(f"/invitations/{token}/", {"password": "a-long-secret-42"})
        assert response.status_code == 410
    assert not User.objects.filter(email="late@example.test").exists()


def test_a_used_invitation_cannot_be_reused(tenant):
    token = invite_token(tenant, "once@example.test")
    client = Client(HTTP_HOST=host_of(tenant))
    assert client.post(f"/invitations/{token}/", {"password": "a-long-secret-42"}).status_code == 302
    stranger = Client(HTTP_HOST=host_of(tenant))
    page = stranger.get(f"/invitations/{token}/")
    assert page.status_code == 410 and "already been used" in text(page)
    assert stranger.post(f"/invitations/{token}/", {"password": "another-secret-42"}).status_code == 410
    assert TenantMembership.objects.filter(tenant=tenant, user__email="once@example.test").count() == 1


def test_a_revoked_invitation_is_withdrawn(tenant):
    token = invite_token(tenant, "revoked@example.test")
    with schema_context(tenant.schema_name):
        invitation_revoke(actor=admin_membership(tenant), now=timezone.now(),
                          invitation=Invitation.objects.get(tenant=tenant, email="revoked@example.test"))
    client = Client(HTTP_HOST=host_of(tenant))
    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 410 and "withdrawn" in text(page)
    assert client.post(f"/invitations/{token}/", {"password": "a-long-secret-42"}).status_code == 410
    assert not User.objects.filter(email="revoked@example.test").exists()


def test_unknown_or_other_workspaces_tokens_are_not_valid(tenant, other_tenant):
    beta_token = invite_token(other_tenant, "beta-only@example.test")
    client = Client(HTTP_HOST=host_of(tenant))
    for token in ("garbage", beta_token):
        response = client.get(f"/invitations/{token}/")
        assert response.status_code == 404 and "not valid" in text(response)


# ----------------------------------------------------------------------------- roles


def test_roles_page_shows_builtin_permissions_and_custom_roles(tenant, admin_client):
    with schema_context(tenant.schema_name):
        role_create(actor=admin_membership(tenant), name="Campaign lead", permissions=["campaigns.launch"])
    page = text(admin_client.get("/settings/roles/"))
    assert "Campaign lead" in page and "campaigns.launch" in page and "customers.view_pii" in page
    builtins = [page.index(f">{name}</a>") for name in ("Admin", "Marketer", "Analyst", "Viewer")]
    assert builtins == sorted(builtins)  # most to least powerful, every time


def test_role_editor_offers_every_permission_with_its_description(admin_client):
    page = text(admin_client.get("/settings/roles/new/"))
    for code, description in CATALOGUE.items():
        assert f'value="{code}"' in page and description in page
    assert "API keys" in page and "Segments" in page  # grouped by the part before the dot


def test_custom_role_create_and_update(tenant, admin_client):
    response = admin_client.post("/settings/roles/new/", {
        "name": "Campaign lead", "description": "Runs campaigns", "permissions": ["segments.view", "campaigns.launch"]})
    assert response.status_code == 302 and response["Location"] == "/settings/roles/"
    role = Role.objects.get(tenant=tenant, name="Campaign lead")
    assert role.permissions == ["campaigns.launch", "segments.view"] and not role.is_builtin
    assert audit_log(tenant, "role.created")[0].changes == {"permissions": [None, ["campaigns.launch", "segments.view"]]}

    edit = admin_client.get(f"/settings/roles/{role.pk}/")
    assert re.search(r'value="campaigns.launch" id="perm-campaigns-launch"[^>]*checked', text(edit))
    response = admin_client.post(f"/settings/roles/{role.pk}/", {"name": "Campaign lead", "permissions": ["segments.view"]})
    assert response.status_code == 302
    assert Role.objects.get(pk=role.pk).permissions == ["segments.view"]
    [event] = audit_log(tenant, "role.updated")
    assert event.changes["permissions"] == [["campaigns.launch", "segments.view"], ["segments.view"]]


@pytest.mark.parametrize(("data", "status", "message"), [
    ({"name": "admin"}, 409, "already exists"),
    ({"name": "Campaign lead"}, 409, "already exists"),
    ({"name": "  "}, 400, "Give the role a name"),
    ({"name": "Hacker", "permissions": ["segments.view", "root.everything"]}, 400, "“root.everything” is not a permission"),
])
def test_bad_role_input_is_refused(tenant, admin_client, data, status, message):
    with schema_context(tenant.schema_name):
        role_create(actor=admin_membership(tenant), name="Campaign lead", permissions=[])
    before = Role.objects.filter(tenant=tenant).count()
    response = admin_client.post("/settings/roles/new/", data)
    assert response.status_code == status and message in text(response)
    # what was typed and ticked survives the error
    if data.get("permissions"):
        assert re.search(r'value="segments.view"[^>]*checked', text(response))
    assert Role.objects.filter(tenant=tenant).count() == before
    assert len(audit_log(tenant, "role.created")) == 1


def test_builtin_roles_are_read_only(tenant, admin_client):
    admin_role = role_of(tenant, "admin")
    page = admin_client.get(f"/settings/roles/{admin_role.pk}/")
    assert page.status_code == 200 and "cannot be changed" in text(page) and "Save role" not in text(page)
    response = admin_client.post(f"/settings/roles/{admin_role.pk}/", {"name": "Boss", "permissions": ["reports.view"]})
    assert response.status_code == 409 and "Built-in roles cannot be changed" in text(response)
    assert role_of(tenant, "admin").name == "Admin"
    deleted = admin_client.post(f"/settings/roles/{admin_role.pk}/delete/")
    assert deleted.status_code == 409 and "cannot be deleted" in text(deleted)
    assert audit_log(tenant) == []


def test_role_delete_and_role_in_use(tenant, admin_client):
    with schema_context(tenant.schema_name):
        unused = role_create(actor=admin_membership(tenant), name="Unused", permissions=[])
        used = role_create(actor=admin_membership(tenant), name="Used", permissions=["reports.view"])
    user = make_member(tenant, "holder@alpha.test")
    TenantMembership.objects.filter(user=user, tenant=tenant).update(role=used)
    assert admin_client.post(f"/settings/roles/{unused.pk}/delete/").status_code == 302
    assert not Role.objects.filter(pk=unused.pk).exists()
    assert len(audit_log(tenant, "role.deleted")) == 1
    response = admin_client.post(f"/settings/roles/{used.pk}/delete/")
    assert response.status_code == 409 and "1 member(s) have this role" in text(response)
    assert Role.objects.filter(pk=used.pk).exists()


def test_another_tenants_role_is_404(tenant, other_tenant, admin_client):
    with schema_context(other_tenant.schema_name):
        beta_role = role_create(actor=admin_membership(other_tenant), name="Beta role", permissions=[])
    assert admin_client.get(f"/settings/roles/{beta_role.pk}/").status_code == 404
    assert admin_client.post(f"/settings/roles/{beta_role.pk}/", {"name": "Stolen"}).status_code == 404
    assert admin_client.post(f"/settings/roles/{beta_role.pk}/delete/").status_code == 404
    assert Role.objects.get(pk=beta_role.pk).name == "Beta role"


# ----------------------------------------------------------------------------- departments


def test_departments_list_create_rename_delete(tenant, admin_client):
    make_member(tenant, "seller@alpha.test")
    TenantMembership.objects.filter(tenant=tenant, user__email="seller@alpha.test").update(
        department=department_of(tenant, "Sales"))
    page = text(admin_client.get("/settings/departments/"))
    assert "Customer Success" in page and "1 member will have no department" in page
    names = [page.index(f">{name}</span>") for name in ("Customer Success", "Marketing", "Product", "Sales", "Support")]
    assert names == sorted(names)  # alphabetical

    assert admin_client.post("/settings/departments/", {"name": " Growth "}).status_code == 302
    growth = department_of(tenant, "Growth")
    assert admin_client.post(f"/settings/departments/{growth.pk}/", {"name": "Growth Lab"}).status_code == 302
    assert Department.objects.get(pk=growth.pk).name == "Growth Lab"
    sales = department_of(tenant, "Sales")
    assert admin_client.post(f"/settings/departments/{sales.pk}/delete/").status_code == 302
    assert not Department.objects.filter(pk=sales.pk).exists()
    assert membership(tenant, "seller@alpha.test").department is None  # they keep their seat
    assert [e.action for e in reversed(audit_log(tenant))] == ["department.created", "department.renamed",
                                                             "department.deleted"]


@pytest.mark.parametrize(("name", "status", "message"), [
    ("sales", 409, "already exists"), ("", 400, "Give the department a name"), ("x" * 101, 400, "at most 100"),
])
def test_bad_department_names_are_refused(tenant, admin_client, name, status, message):
    before = sorted(Department.objects.filter(tenant=tenant).values_list("name", flat=True))
    created = admin_client.post("/settings/departments/", {"name": name})
    assert created.status_code == status and message in text(created)
    marketing = department_of(tenant, "Marketing")
    renamed = admin_client.post(f"/settings/departments/{marketing.pk}/", {"name": name})
    assert renamed.status_code == status and message in text(renamed)
    assert sorted(Department.objects.filter(tenant=tenant).values_list("name", flat=True)) == before
    assert audit_log(tenant) == []


def test_another_tenants_department_is_404(other_tenant, admin_client):
    beta_sales = department_of(other_tenant, "Sales")
    assert admin_client.post(f"/settings/departments/{beta_sales.pk}/", {"name": "Mine"}).status_code == 404
    assert admin_client.post(f"/settings/departments/{beta_sales.pk}/delete/").status_code == 404
    assert Department.objects.get(pk=beta_sales.pk).name == "Sales"


# ----------------------------------------------------------------------------- API keys


def test_api_key_is_shown_once_and_only_its_hash_is_stored(tenant, admin_client):
    expires = (timezone.now() + timedelta(days=30)).date()
    response = admin_client.post("/settings/api-keys/", {"name": "CRM sync", "scopes": ["read", "ingest"],
                                                         "expires_on": expires.isoformat()})
    assert response.status_code == 200
    body = text(response)
    [plain] = PLAIN_KEY.findall(body)  # exactly once on the page
    assert "will not be shown again" in body
    assert "no-store" in response["Cache-Control"]
    with schema_context(tenant.schema_name):
        key = ApiKey.objects.get(name="CRM sync")
    assert key.secret_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert plain.startswith(f"sk_{key.prefix}_")
    assert key.scopes == ["ingest", "read"] and key.expires_at.date() == expires
    stored = json.dumps([getattr(key, f.attname) for f in key._meta.fields], default=str)
    assert plain not in stored
    # never again: not in the list, the session or a flash message
    listing = text(admin_client.get("/settings/api-keys/"))
    assert plain not in listing and f"sk_{key.prefix}_…" in listing and "CRM sync" in listing
    assert plain not in json.dumps(dict(admin_client.session.items()), default=str)
    assert all(plain not in cookie.value for cookie in admin_client.cookies.values())
    [event] = audit_log(tenant, "api_key.created")
    assert plain not in json.dumps(event.changes)


@pytest.mark.parametrize(("data", "messages"), [
    ({"name": "", "scopes": []}, ["Name the key after what uses it", "Choose at least one scope"]),
    ({"name": "X", "scopes": ["read", "admin"]}, ["“admin” is not a scope"]),
    ({"name": "X", "scopes": ["read"], "expires_on": "2000-01-01"}, ["Choose an expiry in the future"]),
    ({"name": "X", "scopes": ["read"], "expires_on": "not-a-date"}, ["Enter a valid date"]),
])
def test_bad_api_key_input_is_refused(tenant, admin_client, data, messages):
    response = admin_client.post("/settings/api-keys/", data)
    assert response.status_code == 400
    for message in messages:
        assert message in text(response)
    assert not PLAIN_KEY.search(text(response))
    assert audit_log(tenant) == []
    with schema_context(tenant.schema_name):
        assert not ApiKey.objects.filter(name__in=["", "X"]).exists()


def test_api_key_list_statuses_and_revoke(tenant, admin_client):
    now = timezone.now()
    with schema_context(tenant.schema_name):
        actor = admin_membership(tenant)
        key, _ = api_key_create(actor=actor, name="Old job", scopes=["read"], now=now - timedelta(days=10),
                                expires_at=now - timedelta(days=1))
        live, _ = api_key_create(actor=actor, name="Live job", scopes=["write"], now=now)
    page = text(admin_client.get("/settings/api-keys/"))
    assert "Expired" in page and "Active" in page and "admin@alpha.test" in page
    assert admin_client.post(f"/settings/api-keys/{live.pk}/revoke/").status_code == 302
    with schema_context(tenant.schema_name):
        assert ApiKey.objects.get(pk=live.pk).revoked_at is not None
    assert len(audit_log(tenant, "api_key.revoked")) == 1
    assert "Revoked" in text(admin_client.get("/settings/api-keys/"))
    again = admin_client.post(f"/settings/api-keys/{live.pk}/revoke/")
    assert again.status_code == 409 and "already revoked" in text(again)


def test_another_tenants_api_key_is_404(other_tenant, tenant, admin_client):
    with schema_context(other_tenant.schema_name):
        beta_key, _ = api_key_create(actor=admin_membership(other_tenant), name="Beta", scopes=["read"], now=timezone.now())
    with schema_context(tenant.schema_name):
        assert not ApiKey.objects.filter(pk=beta_key.pk).exists()
    assert admin_client.post(f"/settings/api-keys/{beta_key.pk}/revoke/").status_code == 404
    with schema_context(other_tenant.schema_name):
        assert ApiKey.objects.get(pk=beta_key.pk).revoked_at is None


def test_write_key_is_shown_in_full_and_rotates(tenant, admin_client):
    with schema_context(tenant.schema_name):
        old = WriteKey.objects.get(revoked_at__isnull=True)
    assert f'value="{old.key}"' in text(admin_client.get("/settings/api-keys/"))
    response = admin_client.post("/settings/write-key/rotate/")
    assert response.status_code == 302
    with schema_context(tenant.schema_name):
        new = WriteKey.objects.get(revoked_at__isnull=True)
        assert WriteKey.objects.get(pk=old.pk).revoked_at is not None
    assert new.key != old.key
    page = text(admin_client.get("/settings/api-keys/"))
    assert f'value="{new.key}"' in page and old.key not in page and "Update your tracking snippets" in page
    assert len(audit_log(tenant, "write_key.rotated")) == 1


# ----------------------------------------------------------------------------- audit log


def add_events(tenant, *events: dict) -> None:
    with schema_context(tenant.schema_name):
        for fields in events:
            AuditEvent.objects.create(**{"actor_kind": "user", "actor_label": "admin@alpha.test", "action": "role.created",
                                         "target_type": "tenants.role", "target_id": "1", "target_label": "Role",
                                         **fields})


def test_audit_page_shows_changes_as_before_and_after(tenant, admin_client):
    with schema_context(tenant.schema_name):
        audit_record(actor=admin_membership(tenant), action="member.updated", target_type="tenants.tenantmembership",
                     target_id=7, target_label="pat@alpha.test", changes={"role": ["viewer", "marketer"],
                                                                          "department": [None, "Sales"]})
    page = text(admin_client.get("/settings/audit/"))
    assert "member.updated" in page and "pat@alpha.test" in page
    assert re.search(r"role:</span> <span[^>]*>viewer</span> → <span[^>]*>marketer</span>", page)
    assert re.search(r"department:</span> <span[^>]*>—</span>", page)


def test_audit_page_paginates_by_50(tenant, admin_client):
    add_events(tenant, *({"target_label": f"paged-event-{i:03}"} for i in range(60)))
    first = text(admin_client.get("/settings/audit/?q=paged-event"))
    assert "Showing 1–50 of 60 events" in first and first.count(">paged-event-") == 50
    assert 'href="?q=paged-event&amp;page=2"' in first
    second = text(admin_client.get("/settings/audit/?q=paged-event&page=2"))
    assert "Showing 51–60 of 60 events" in second and second.count(">paged-event-") == 10


def test_audit_filters(tenant, admin_client):
    add_events(
        tenant,
        {"action": "member.invited", "target_label": "first@x.test", "at": datetime(2026, 1, 10, 9, tzinfo=dt_timezone.utc)},
        {"action": "role.created", "actor_label": "other@alpha.test", "target_label": "Ops role",
         "at": datetime(2026, 2, 10, 9, tzinfo=dt_timezone.utc)},
        {"action": "department.deleted", "target_type": "tenants.department", "target_label": "Sales",
         "at": datetime(2026, 3, 10, 23, 59, tzinfo=dt_timezone.utc)},
    )

    def shown(query: str) -> set[str]:
        page = text(admin_client.get(f"/settings/audit/?{query}"))
        return {label for label in ("first@x.test", "Ops role", "Sales") if f">{label}<" in page}

    assert shown("") == {"first@x.test", "Ops role", "Sales"}
    assert shown("action=member.invited") == {"first@x.test"}
    assert shown("actor=OTHER") == {"Ops role"}
    assert shown("target_type=tenants.department") == {"Sales"}
    assert shown("q=ops") == {"Ops role"}
    assert shown("since=2026-02-01") == {"Ops role", "Sales"}
    assert shown("until=2026-03-10") == {"first@x.test", "Ops role", "Sales"}  # the end day is included
    assert shown("since=2026-02-01&until=2026-02-28") == {"Ops role"}
    page = text(admin_client.get("/settings/audit/"))
    assert '<option value="member.invited"' in page and '<option value="tenants.department"' in page


def test_audit_filter_errors_are_shown_not_500(admin_client):
    response = admin_client.get("/settings/audit/?since=yesterday")
    assert response.status_code == 400 and "Enter a valid date" in text(response)
    response = admin_client.get("/settings/audit/?since=2026-03-01&until=2026-02-01")
    assert response.status_code == 400 and "before the start date" in text(response)
    assert admin_client.get("/settings/audit/export.csv?since=yesterday").status_code == 400


def test_audit_htmx_filtering_returns_only_the_results(tenant, admin_client):
    add_events(tenant, {"target_label": "Only one"})
    response = admin_client.get("/settings/audit/?q=only", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-results")
    body = text(response)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="audit-results"')
    assert "Only one" in body and "<html" not in body
    assert "/settings/audit/export.csv?q=only" in body  # the export follows the filters


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_audit_csv_export(tenant, admin_client):
    add_events(
        tenant,
        {"action": "member.updated", "target_label": "pat@alpha.test", "target_id": "7",
         "changes": {"role": ["viewer", "marketer"]}, "ip": "10.0.0.1", "user_agent": "Firefox, \"quoted\"",
         "at": datetime(2026, 3, 1, 12, tzinfo=dt_timezone.utc)},
        {"action": "role.created", "target_label": "Ops", "at": datetime(2026, 3, 2, 12, tzinfo=dt_timezone.utc)},
    )
    with time_machine.travel("2026-03-05 10:00Z", tick=False):
        response = admin_client.get("/settings/audit/export.csv?since=2026-03-01&until=2026-03-02")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="audit-alpha-2026-03-05.csv"'
    rows = csv_rows(response)
    assert rows[0] == ["at", "actor_kind", "actor", "action", "target_type", "target_id", "target", "changes", "ip",
                       "user_agent"]
    assert rows[1][3] == "role.created" and len(rows) == 3  # newest first
    assert rows[2] == ["2026-03-01T12:00:00+00:00", "user", "admin@alpha.test", "member.updated", "tenants.role", "7",
                       "pat@alpha.test", '{"role": ["viewer", "marketer"]}', "10.0.0.1", 'Firefox, "quoted"']
    filtered = csv_rows(admin_client.get("/settings/audit/export.csv?action=member.updated&since=2026-03-01"))
    assert [row[3] for row in filtered[1:]] == ["member.updated"]
    assert len(audit_log(tenant)) == 2  # reading and exporting are not audited
    unfiltered = csv_rows(admin_client.get("/settings/audit/export.csv"))
    assert {"member.updated", "role.created"} <= {row[3] for row in unfiltered[1:]}


def test_audit_csv_export_neutralises_cells_a_spreadsheet_would_run(tenant, admin_client):
    """A user agent or a target name that starts like a formula (= + - @, tab, CR) comes
    out with a leading apostrophe: the audit log records what outsiders typed."""
    add_events(tenant, {"action": "campaign.created", "target_label": "@SUM(1)", "ip": "10.0.0.2",
                        "user_agent": '=HYPERLINK("http://x","y")', "at": datetime(2026, 3, 1, 12, tzinfo=dt_timezone.utc)})
    rows = csv_rows(admin_client.get("/settings/audit/export.csv?since=2026-03-01&until=2026-03-01"))
    assert rows[1][6] == "'@SUM(1)" and rows[1][9] == "'=HYPERLINK(\"http://x\",\"y\")"


def test_workspace_settings_rename_is_audited_and_validated(tenant):
    from django_tenants.utils import schema_context
    from audit.models import AuditEvent
    from tenants.models import Tenant
    from tests.conftest import host_of, make_member, membership_of
    from django.test import Client

    admin = Client(HTTP_HOST=host_of(tenant))
    admin.force_login(membership_of(tenant, "admin@alpha.test").user)
    assert admin.get("/settings/workspace/").status_code == 200
    assert admin.post("/settings/workspace/", {"name": "Alpha Company"}).status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).name == "Alpha Company"
    with schema_context(tenant.schema_name):
        assert AuditEvent.objects.get(action="workspace.updated").changes == {"name": ["Alpha Co", "Alpha Company"]}
    bad = admin.post("/settings/workspace/", {"name": "  "})
    assert bad.status_code == 400 and "Give the workspace a name" in bad.content.decode()
    viewer = Client(HTTP_HOST=host_of(tenant))
    viewer.force_login(make_member(tenant, "v-ws@alpha.test", "viewer"))
    assert viewer.post("/settings/workspace/", {"name": "Hijacked"}).status_code == 403
    assert Tenant.objects.get(pk=tenant.pk).name == "Alpha Company"
