"""Inviting people, changing their role or department, removing them. Every write checks
`members.manage` again (house rule 14) and is audited."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from common.actors import Actor
from common.errors import Code, Conflict, DomainError, Forbidden, Gone, NotFound, Problem, TenantCode, Unauthenticated
from tenants.models import Department, Invitation, Role, TenantMembership, User
from tenants.permissions import ensure_permitted, ensure_same_tenant
from tenants.services.provisioning import _email_problems, user_get_or_create
from tenants.services.team_changes import changes_between, team_changed

INVITATION_DAYS = 7


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _member_state(membership: TenantMembership) -> dict:
    return {"role": membership.role.key, "department": membership.department.name if membership.department else None}


@transaction.atomic
def member_invite(*, actor: TenantMembership, email: str, role: Role, department: Department | None,
                  now: datetime, accept_url: str = "") -> tuple[Invitation, str]:
    """Invite `email` with a role; returns the invitation and its single-use token
    (emailed as `accept_url` + token; only a hash of it is stored). The actor is a member,
    not any Actor: the invitation names the person who sent it."""
    ensure_permitted(actor, "members.manage")
    ensure_same_tenant(actor, role, department)
    email = (email or "").strip().lower()
    problems = _email_problems(email, "email")
    if not problems and TenantMembership.objects.filter(tenant_id=actor.tenant_id, user__email__iexact=email).exists():
        problems.append(Problem(path="email", code=TenantCode.ALREADY_MEMBER, message=f"{email} is already a member."))
    if problems:
        raise DomainError(problems=problems)
    # An expired invitation no longer counts, but still holds the "one open invitation"
    # constraint: close it first.
    Invitation.objects.filter(tenant_id=actor.tenant_id, email__iexact=email, accepted_at__isnull=True,
                              revoked_at__isnull=True, expires_at__lte=now).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                tenant_id=actor.tenant_id, email=email, role=role, department=department,
                token_hash=_token_hash(token), invited_by=actor.user, expires_at=now + timedelta(days=INVITATION_DAYS),
            )
    except IntegrityError:
        raise Conflict.single(path="email", code=TenantCode.DUPLICATE_INVITATION,
                              message=f"{email} already has an open invitation.") from None
    team_changed(actor=actor, action="member.invited", target=invitation,
                  changes={"email": [None, email], "role": [None, role.key],
                           "department": [None, department.name if department else None]})
    if accept_url:
        transaction.on_commit(lambda: _send_invitation(invitation, accept_url + token))
    return invitation, token


def _send_invitation(invitation: Invitation, link: str) -> None:
    inviter = invitation.invited_by.email if invitation.invited_by else "A colleague"
    send_mail(
        subject=f"{inviter} invited you to {invitation.tenant.name} on Strata",
        message=(f"{inviter} invited you to join {invitation.tenant.name} on Strata as "
                 f"{invitation.role.name}.\n\nAccept within {INVITATION_DAYS} days:\n{link}\n"),
        from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_revoke(*, actor: Actor, invitation: Invitation, now: datetime) -> Invitation:
    ensure_permitted(actor, "members.manage")
    ensure_same_tenant(actor, invitation)
    if invitation.accepted_at or invitation.revoked_at:
        raise Conflict.single(path="invitation", code=TenantCode.NOT_OPEN,
                              message="This invitation was already accepted or revoked.")
    invitation.revoked_at = now
    invitation.save(update_fields=["revoked_at", "updated_at"])
    team_changed(actor=actor, action="member.invitation_revoked", target=invitation)
    return invitation


def invitation_for_token(*, token: str, now: datetime, tenant_id: int) -> Invitation:
    """The open invitation behind `token` in this tenant, or a coded error saying why not."""
    invitation = (Invitation.objects.select_related("tenant", "role", "department")
                  .filter(token_hash=_token_hash(token or ""), tenant_id=tenant_id).first())
    if invitation is None:
        raise NotFound.single(path="token", code=Code.INVALID_TOKEN,
                              message="This invitation link is not valid.")
    if invitation.accepted_at:
        raise Gone.single(path="token", code=TenantCode.USED_TOKEN,
                          message="This invitation has already been used.")
    if invitation.revoked_at:
        raise Gone.single(path="token", code=TenantCode.REVOKED_TOKEN,
                          message="This invitation was withdrawn.")
    if invitation.expires_at <= now:
        raise Gone.single(path="token", code=TenantCode.EXPIRED_TOKEN,
                          message="This invitation has expired; ask for a new one.")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, tenant_id: int, now: datetime, user: User | None = None,
                      password: str = "", full_name: str = "") -> TenantMembership:
    """Join the tenant. A logged-in user must be the invited address; someone without an
    account creates one here (the emailed link proves the address)."""
    found = invitation_for_token(token=token, now=now, tenant_id=tenant_id)
    # Row lock: of two simultaneous acceptances, the second sees accepted_at and fails.
    invitation = Invitation.objects.select_for_update(of=("self",)).select_related("role", "department").get(pk=found.pk)
    if invitation.accepted_at:
        raise Gone.single(path="token", code=TenantCode.USED_TOKEN,
                          message="This invitation has already been used.")
    if user is not None and user.is_authenticated:
        if user.email.lower() != invitation.email.lower():
            raise Forbidden.single(path="token", code=TenantCode.EMAIL_MISMATCH,
                                   message=f"This invitation is for {invitation.email}; log out and open the link again.")
    elif User.objects.filter(email__iexact=invitation.email).exists():
        raise Unauthenticated.single(path="token", code=TenantCode.LOGIN_REQUIRED,
                                     message=f"{invitation.email} already has a Strata account: log in to accept.")
    else:
        try:
            validate_password(password, User(email=invitation.email, full_name=full_name))
        except ValidationError as error:
            raise DomainError(problems=[Problem(path="password", code=TenantCode.WEAK_PASSWORD, message=m)
                                        for m in error.messages]) from None
        user = user_get_or_create(email=invitation.email, password=password, full_name=full_name.strip()[:200])
    if TenantMembership.objects.filter(tenant_id=tenant_id, user=user).exists():
        raise Conflict.single(path="token", code=TenantCode.ALREADY_MEMBER,
                              message="You are already a member of this workspace.")
    membership = TenantMembership.objects.create(
        user=user, tenant_id=tenant_id, role=invitation.role, department=invitation.department)
    invitation.accepted_at, invitation.accepted_by = now, user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    team_changed(actor=membership, action="member.joined", target=membership,
                  changes={"role": [None, invitation.role.key]})
    return membership


def _lock_admins(tenant_id: int) -> int:
    """Count the tenant's admins, holding their rows so two concurrent demotions cannot
    both see 'another admin remains'."""
    admins = TenantMembership.objects.select_for_update().filter(
        tenant_id=tenant_id, role__is_builtin=True, role__key="admin")
    return len(list(admins.values_list("pk", flat=True)))


def _ensure_not_last_admin(membership: TenantMembership) -> None:
    if membership.is_admin and _lock_admins(membership.tenant_id) <= 1:
        raise Conflict.single(path="role", code=TenantCode.LAST_ADMIN,
                              message="A workspace needs at least one admin; make someone else admin first.")


@transaction.atomic
def member_update(*, actor: Actor, membership: TenantMembership, role: Role | None = None,
                  department: Department | None = None, clear_department: bool = False) -> TenantMembership:
    ensure_permitted(actor, "members.manage")
    ensure_same_tenant(actor, membership, role, department)
    before = _member_state(membership)
    if role is not None and role.pk != membership.role_id:
        if not (role.is_builtin and role.key == "admin"):
            _ensure_not_last_admin(membership)
        membership.role = role
    if department is not None or clear_department:
        membership.department = department
    membership.save(update_fields=["role", "department", "updated_at"])
    changes = changes_between(before, _member_state(membership))
    if changes:
        team_changed(actor=actor, action="member.updated", target=membership, changes=changes)
    return membership


@transaction.atomic
def member_remove(*, actor: Actor, membership: TenantMembership) -> None:
    ensure_permitted(actor, "members.manage")
    ensure_same_tenant(actor, membership)
    _ensure_not_last_admin(membership)
    team_changed(actor=actor, action="member.removed", target=membership,
                  changes={"role": [membership.role.key, None]})
    membership.delete()
