"""Inviting, joining, changing and removing members; custom roles; departments."""

from datetime import datetime, timedelta, timezone

import pytest
from django.core import mail

from audit.models import AuditEvent
from common.errors import DomainError
from common.http import http_status
from tenants.models import Department, Invitation, Role, TenantMembership, User
from tenants.services import (
    department_create, department_delete, department_rename, invitation_accept, invitation_revoke,
    member_invite, member_remove, member_update, role_create, role_delete, role_update,
)
from tests.conftest import make_member, membership_of

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def role(tenant, key: str) -> Role:
    return Role.objects.get(tenant=tenant, key=key)


def codes(caught) -> list[tuple[str, str]]:
    return [(p.path, p.code) for p in caught.value.problems]


def invite(actor, email="new@example.test", key="marketer", **extra):
    return member_invite(actor=actor, email=email, role=role(actor.tenant, key), department=extra.get("department"),
                         now=extra.get("now", NOW), accept_url=extra.get("accept_url", ""))


# ----------------------------------------------------------------------------- invitations


def test_invitation_stores_only_a_hash_emails_the_link_and_is_audited(alpha_admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = invite(alpha_admin, "Pat@Example.test", accept_url="http://alpha.localhost/invitations/")
    assert invitation.email == "pat@example.test"
    assert token not in invitation.token_hash and len(invitation.token_hash) == 64
    assert invitation.expires_at == NOW + timedelta(days=7)
    assert mail.outbox[-1].to == ["pat@example.test"]
    assert f"http://alpha.localhost/invitations/{token}" in mail.outbox[-1].body
    event = AuditEvent.objects.get(action="member.invited")
    assert event.actor_label == "admin@alpha.test" and event.changes["role"] == [None, "marketer"]


def test_only_members_managers_can_invite(in_tenant):
    viewer = make_member(in_tenant, "v@alpha.test", "viewer").memberships.get()
    with pytest.raises(DomainError) as caught:
        invite(viewer)
    assert codes(caught) == [("", "permission_denied")] and http_status(caught.value) == 403
    assert not Invitation.objects.exists()


def test_duplicate_invitation_and_existing_member_are_refused(alpha_admin):
    invite(alpha_admin, "dup@example.test")
    with pytest.raises(DomainError) as caught:
        invite(alpha_admin, "DUP@example.test")
    assert codes(caught) == [("email", "duplicate_invitation")] and http_status(caught.value) == 409
    with pytest.raises(DomainError) as caught:
        invite(alpha_admin, "admin@alpha.test")
    assert codes(caught) == [("email", "already_member")]
    with pytest.raises(DomainError) as caught:
        invite(alpha_admin, "not an email")
    assert codes(caught) == [("email", "invalid_email")]


def test_an_expired_invitation_can_be_replaced(alpha_admin):
    invite(alpha_admin, "late@example.test", now=NOW - timedelta(days=8))
    invitation, _ = invite(alpha_admin, "late@example.test")
    assert invitation.expires_at > NOW
    assert Invitation.objects.filter(email="late@example.test", revoked_at__isnull=False).count() == 1


def test_another_tenants_role_is_not_found(alpha_admin, other_tenant):
    with pytest.raises(DomainError) as caught:
        member_invite(actor=alpha_admin, email="x@example.test", role=role(other_tenant, "admin"), department=None, now=NOW)
    assert http_status(caught.value) == 404 and not Invitation.objects.exists()


def test_accepting_creates_the_account_and_membership(alpha_admin):
    marketing = Department.objects.get(tenant=alpha_admin.tenant, name="Marketing")
    invitation, token = invite(alpha_admin, "fresh@example.test", department=marketing)
    membership = invitation_accept(token=token, tenant_id=alpha_admin.tenant_id, now=NOW,
                                   password="a-long-secret-42", full_name="Fresh Person")
    assert membership.role.key == "marketer" and membership.department == marketing
    assert membership.user.check_password("a-long-secret-42") and membership.user.full_name == "Fresh Person"
    assert membership.user.emailaddress_set.get().verified
    invitation.refresh_from_db()
    assert invitation.accepted_by == membership.user
    assert AuditEvent.objects.filter(action="member.joined", actor_label="fresh@example.test").exists()


def test_a_logged_in_user_joins_with_their_account(alpha_admin, other_tenant):
    existing = make_member(other_tenant, "both@example.test", "viewer")
    _, token = invite(alpha_admin, "both@example.test")
    membership = invitation_accept(token=token, tenant_id=alpha_admin.tenant_id, now=NOW, user=existing)
    assert membership.user == existing and existing.memberships.count() == 2


@pytest.mark.parametrize(("case", "code", "status"), [
    ("reused", "used_token", 410), ("revoked", "revoked_token", 410), ("expired", "expired_token", 410),
    ("unknown", "invalid_token", 404), ("wrong_user", "email_mismatch", 403),
    ("has_account", "login_required", 401), ("weak_password", "weak_password", 400),
    ("other_tenant", "invalid_token", 404),
])
def test_bad_acceptances_are_refused_with_a_code(alpha_admin, other_tenant, case, code, status):
    invitation, token = invite(alpha_admin, "who@example.test")
    kwargs = {"token": token, "tenant_id": alpha_admin.tenant_id, "now": NOW, "password": "a-long-secret-42"}
    if case == "reused":
        invitation_accept(**kwargs)
    elif case == "revoked":
        invitation_revoke(actor=alpha_admin, invitation=invitation, now=NOW)
    elif case == "expired":
        kwargs["now"] = NOW + timedelta(days=8)
    elif case == "unknown":
        kwargs["token"] = "x" * 43
    elif case == "wrong_user":
        kwargs["user"] = User.objects.get(email="admin@alpha.test")
    elif case == "has_account":
        make_member(other_tenant, "who@example.test")
    elif case == "weak_password":
        kwargs["password"] = "123"
    elif case == "other_tenant":
        kwargs["tenant_id"] = other_tenant.pk
    members_before = TenantMembership.objects.count()
    with pytest.raises(DomainError) as caught:
        invitation_accept(**kwargs)
    assert caught.value.problems[0].code == code and http_status(caught.value) == status
    assert TenantMembership.objects.count() == members_before


# ----------------------------------------------------------------------------- members


def test_changing_role_and_department_is_audited_with_before_and_after(alpha_admin):
    member = make_member(alpha_admin.tenant, "m@alpha.test", "viewer").memberships.get()
    sales = Department.objects.get(tenant=alpha_admin.tenant, name="Sales")
    member_update(actor=alpha_admin, membership=member, role=role(alpha_admin.tenant, "analyst"), department=sales)
    member.refresh_from_db()
    assert member.role.key == "analyst" and member.department == sales
    event = AuditEvent.objects.get(action="member.updated")
    assert event.changes == {"role": ["viewer", "analyst"], "department": [None, "Sales"]}


def test_the_last_admin_cannot_be_demoted_or_removed(alpha_admin):
    with pytest.raises(DomainError) as caught:
        member_update(actor=alpha_admin, membership=alpha_admin, role=role(alpha_admin.tenant, "viewer"))
    assert codes(caught) == [("role", "last_admin")]
    with pytest.raises(DomainError) as caught:
        member_remove(actor=alpha_admin, membership=alpha_admin)
    assert codes(caught) == [("role", "last_admin")]
    assert membership_of(alpha_admin.tenant, "admin@alpha.test").is_admin


def test_with_a_second_admin_the_first_can_step_down(alpha_admin):
    make_member(alpha_admin.tenant, "second@alpha.test", "admin")
    member_update(actor=alpha_admin, membership=alpha_admin, role=role(alpha_admin.tenant, "viewer"))
    assert not membership_of(alpha_admin.tenant, "admin@alpha.test").is_admin


def test_removing_a_member_is_audited(alpha_admin):
    member = make_member(alpha_admin.tenant, "gone@alpha.test").memberships.get()
    member_remove(actor=alpha_admin, membership=member)
    assert not TenantMembership.objects.filter(pk=member.pk).exists()
    assert User.objects.filter(email="gone@alpha.test").exists()  # the person keeps their account
    assert AuditEvent.objects.get(action="member.removed").target_label.startswith("gone@alpha.test")


def test_members_of_another_tenant_are_not_found(alpha_admin, other_tenant):
    stranger = membership_of(other_tenant, "admin@beta.test")
    with pytest.raises(DomainError) as caught:
        member_remove(actor=alpha_admin, membership=stranger)
    assert http_status(caught.value) == 404
    assert TenantMembership.objects.filter(pk=stranger.pk).exists()


# ----------------------------------------------------------------------------- roles


def test_a_custom_role_grants_exactly_its_permissions(alpha_admin):
    custom = role_create(actor=alpha_admin, name="Campaign reviewer", permissions=["campaigns.view", "reports.view"])
    member = make_member(alpha_admin.tenant, "rev@alpha.test").memberships.get()
    member_update(actor=alpha_admin, membership=member, role=custom)
    member = membership_of(alpha_admin.tenant, "rev@alpha.test")
    assert member.permissions == {"campaigns.view", "reports.view"}
    assert custom.key == "campaign-reviewer"
    assert AuditEvent.objects.get(action="role.created").changes["permissions"][1] == ["campaigns.view", "reports.view"]


def test_role_input_problems_are_all_reported(alpha_admin):
    with pytest.raises(DomainError) as caught:
        role_create(actor=alpha_admin, name="", permissions=["segments.view", "root.everything", "nope"])
    assert set(codes(caught)) == {("name", "required"), ("permissions[1]", "unknown_permission"),
                                  ("permissions[2]", "unknown_permission")}
    assert not Role.objects.filter(tenant=alpha_admin.tenant, is_builtin=False).exists()


def test_role_names_are_unique_case_insensitively(alpha_admin):
    role_create(actor=alpha_admin, name="Growth", permissions=[])
    with pytest.raises(DomainError) as caught:
        role_create(actor=alpha_admin, name="growth", permissions=[])
    assert codes(caught) == [("name", "duplicate_name")] and http_status(caught.value) == 409
    with pytest.raises(DomainError):
        role_create(actor=alpha_admin, name="ADMIN", permissions=[])


def test_builtin_roles_cannot_change_and_used_roles_cannot_go(alpha_admin):
    with pytest.raises(DomainError) as caught:
        role_update(actor=alpha_admin, role=role(alpha_admin.tenant, "viewer"), name="Viewer", permissions=["members.manage"])
    assert codes(caught) == [("role", "builtin_role")]
    custom = role_create(actor=alpha_admin, name="Temp", permissions=["reports.view"])
    member = make_member(alpha_admin.tenant, "t@alpha.test").memberships.get()
    member_update(actor=alpha_admin, membership=member, role=custom)
    with pytest.raises(DomainError) as caught:
        role_delete(actor=alpha_admin, role=custom)
    assert codes(caught) == [("role", "role_in_use")]
    role_update(actor=alpha_admin, role=custom, name="Temp 2", permissions=["reports.view", "data.export"])
    assert AuditEvent.objects.get(action="role.updated").changes["name"] == ["Temp", "Temp 2"]


def test_marketers_cannot_manage_roles(in_tenant):
    marketer = make_member(in_tenant, "mk@alpha.test", "marketer").memberships.get()
    with pytest.raises(DomainError) as caught:
        role_create(actor=marketer, name="Mine", permissions=[])
    assert http_status(caught.value) == 403


# ----------------------------------------------------------------------------- departments


def test_departments_are_seeded_editable_and_audited(alpha_admin):
    names = set(Department.objects.filter(tenant=alpha_admin.tenant).values_list("name", flat=True))
    assert names == {"Marketing", "Sales", "Product", "Customer Success", "Support"}
    growth = department_create(actor=alpha_admin, name="Growth")
    department_rename(actor=alpha_admin, department=growth, name="Growth & Lifecycle")
    with pytest.raises(DomainError) as caught:
        department_create(actor=alpha_admin, name="sales")
    assert codes(caught) == [("name", "duplicate_name")]
    member = make_member(alpha_admin.tenant, "d@alpha.test").memberships.get()
    member_update(actor=alpha_admin, membership=member, department=growth)
    department_delete(actor=alpha_admin, department=growth)
    assert membership_of(alpha_admin.tenant, "d@alpha.test").department is None
    assert list(AuditEvent.objects.filter(action__startswith="department.").order_by("id")
                .values_list("action", flat=True)) == ["department.created", "department.renamed", "department.deleted"]
