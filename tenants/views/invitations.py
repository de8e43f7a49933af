"""Inviting people (settings → members) and accepting an invitation from its emailed link.

The accept page is open to anyone holding the link (TenantAccessMiddleware lets
/invitations/ through): the single-use token is the credential, and the service decides
whether the visitor may use it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from common.errors import DomainError
from common.pages import page_status, requires
from tenants.forms_settings import InvitationAcceptForm
from tenants.models import Invitation, Role, TenantMembership, User
from tenants.services import invitation_accept, invitation_for_token, invitation_revoke, member_invite
from tenants.views.settings import _department_or_none, invite_form_for, members_page

BACKEND = "django.contrib.auth.backends.ModelBackend"


@requires("members.manage")
@require_POST
def invite(request):
    form = invite_form_for(request, request.POST)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        role = get_object_or_404(Role, pk=data["role"], tenant=request.tenant)
        department = _department_or_none(request, data["department"])
        try:
            invitation, _token = member_invite(
                actor=request.membership, email=data["email"], role=role, department=department,
                now=timezone.now(), accept_url=request.build_absolute_uri("/invitations/"))
        except DomainError as error:
            form.add_problems(error)
            status = page_status(error)
        else:
            messages.success(request, f"Invitation sent to {invitation.email} as {role.name}.")
            return redirect("settings_members")
    return members_page(request, invite_form=form, status=status)


@requires("members.manage")
@require_POST
def invitation_revoke_view(request, pk: int):
    invitation = get_object_or_404(Invitation, pk=pk, tenant=request.tenant)
    try:
        invitation_revoke(actor=request.membership, invitation=invitation, now=timezone.now())
    except DomainError as error:
        return members_page(request, alerts=error.messages, status=page_status(error))
    messages.success(request, f"Invitation for {invitation.email} revoked; its link no longer works.")
    return redirect("settings_members")


def _visitor_state(request, invitation: Invitation) -> str:
    """What the page offers: accept, log out (someone else), log in, or create an account."""
    user = request.user
    if user.is_authenticated:
        if user.email.lower() != invitation.email.lower():
            return "wrong_user"
        if TenantMembership.objects.filter(tenant=request.tenant, user=user).exists():
            return "already_member"
        return "accept"
    if User.objects.filter(email__iexact=invitation.email).exists():
        return "login"
    return "create"


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept_view(request, token: str):
    now = timezone.now()
    try:
        invitation = invitation_for_token(token=token, now=now, tenant_id=request.tenant.pk)
    except DomainError as error:
        context = {"problem": error.problems[0], "tenant": request.tenant}
        return render(request, "tenants/invitation_accept.html", context, status=page_status(error))
    form = InvitationAcceptForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                membership = invitation_accept(
                    token=token, tenant_id=request.tenant.pk, now=now,
                    user=request.user if request.user.is_authenticated else None,
                    password=form.cleaned_data["password"], full_name=form.cleaned_data["full_name"])
            except DomainError as error:
                form.add_problems(error)
                status = page_status(error)
            else:
                login(request, membership.user, backend=BACKEND)
                messages.success(request, f"Welcome to {request.tenant.name}! You joined as {membership.role.name}.")
                return redirect("/")
    context = {
        "invitation": invitation,
        "tenant": request.tenant,
        "form": form,
        "state": _visitor_state(request, invitation),
        "login_url": f"{reverse('account_login')}?{urlencode({'next': request.path})}",
    }
    return render(request, "tenants/invitation_accept.html", context, status=status)
