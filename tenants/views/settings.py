"""The workspace's settings area: members, roles, departments, API keys and the audit log.

Thin views (house rule 3): each parses a form, looks objects up inside `request.tenant`
(another tenant's id is a 404), calls one service with `request.membership` as the actor
and renders. A DomainError becomes form errors with a 4xx status, never a 500.
Invitations (invite, revoke, accept) live in tenants.views.invitations.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from common.errors import DomainError
from common.pages import ANY_MEMBER, page_status, requires
from tenants.context_processors import settings_pages_for
from tenants.forms_settings import (
    DepartmentForm, InviteForm, MemberForm, RoleForm,
)
from tenants.models import Department, Invitation, Role, TenantMembership
from tenants.permissions import BUILTIN_ROLES, CATALOGUE
from tenants.selectors import public_url
from tenants.services import (
    department_create, department_delete, department_rename, member_remove, member_update, role_create,
    role_delete, role_update, workspace_update,
)

_GROUP_LABELS = {"api_keys": "API keys"}


def _department_or_none(request, department_id: int | None) -> Department | None:
    if not department_id:
        return None
    return get_object_or_404(Department, pk=department_id, tenant=request.tenant)


# ----------------------------------------------------------------------------- index


@requires(ANY_MEMBER)
@require_GET
def settings_index(request):
    pages = settings_pages_for(request.membership)
    if not pages:
        raise PermissionDenied("no settings page")
    return redirect(pages[0].url_name)


# ----------------------------------------------------------------------------- members


def _tenant_roles(request) -> list[Role]:
    return list(Role.objects.filter(tenant=request.tenant))


def _tenant_departments(request) -> list[Department]:
    return list(Department.objects.filter(tenant=request.tenant))


def _memberships(request):
    return (TenantMembership.objects.filter(tenant=request.tenant)
            .select_related("user", "role", "department").order_by("user__email"))


def invite_form_for(request, data=None) -> InviteForm:
    roles = _tenant_roles(request)
    viewer = next((r for r in roles if r.is_builtin and r.key == "viewer"), None)  # least access by default
    return InviteForm(data, roles=roles, departments=_tenant_departments(request),
                      initial={"role": viewer.pk if viewer else None})


def members_page(request, *, invite_form: InviteForm | None = None, alerts: list[str] | None = None,
                 row_errors: dict[int, list[str]] | None = None, status: int = 200):
    """The members page; also rendered by a failed write, with its errors and status."""
    now = timezone.now()
    invitations = list(Invitation.objects.filter(tenant=request.tenant, accepted_at__isnull=True, revoked_at__isnull=True)
                       .select_related("role", "department", "invited_by").order_by("email"))
    for invitation in invitations:
        invitation.expired = not invitation.is_open(now=now)
    row_errors = row_errors or {}
    rows = [{"m": m, "errors": row_errors.get(m.pk, [])} for m in _memberships(request)]
    context = {
        "section": "members",
        "rows": rows,
        "invitations": invitations,
        "invite_form": invite_form or invite_form_for(request),
        "roles": _tenant_roles(request),
        "departments": _tenant_departments(request),
        "alerts": alerts or [],
    }
    return render(request, "settings/members.html", context, status=status)


@requires("members.manage")
@require_GET
def members(request):
    return members_page(request)


def _member_row(request, membership: TenantMembership, *, errors=(), saved=False, status=200):
    context = {"row": {"m": membership, "errors": list(errors), "saved": saved},
               "roles": _tenant_roles(request), "departments": _tenant_departments(request)}
    return render(request, "settings/_member_row.html", context, status=status)


@requires("members.manage")
@require_POST
def member_edit(request, pk: int):
    """Change a member's role and department; htmx gets the row back, a plain form a redirect."""
    membership = get_object_or_404(_memberships(request), pk=pk)
    form = MemberForm(request.POST)
    errors, status = [], 400
    if form.is_valid():
        role = get_object_or_404(Role, pk=form.cleaned_data["role"], tenant=request.tenant)
        department = _department_or_none(request, form.cleaned_data["department"])
        try:
            membership = member_update(actor=request.membership, membership=membership, role=role,
                                       department=department, clear_department=department is None)
        except DomainError as error:
            errors, status = error.messages, page_status(error)
        else:
            return _member_updated(request, membership)
    else:
        errors = [f"{form.fields[name].label}: {' '.join(msgs)}" for name, msgs in form.errors.items()]
    membership = get_object_or_404(_memberships(request), pk=pk)  # as stored: the write rolled back
    if request.htmx:
        return _member_row(request, membership, errors=errors, status=status)
    return members_page(request, row_errors={membership.pk: errors}, status=status)


def _member_updated(request, membership: TenantMembership):
    if membership.pk == request.membership.pk and "members.manage" not in membership.role.permission_set():
        # You demoted yourself out of this page.
        messages.success(request, f"Your role is now {membership.role.name}.")
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = "/"
            return response
        return redirect("/")
    if request.htmx:
        return _member_row(request, membership, saved=True)
    messages.success(request, f"Saved {membership.user.email}: {membership.role.name}"
                              f"{', ' + membership.department.name if membership.department else ''}.")
    return redirect("settings_members")


@requires("members.manage")
@require_POST
def member_remove_view(request, pk: int):
    membership = get_object_or_404(_memberships(request), pk=pk)
    email, is_self = membership.user.email, membership.pk == request.membership.pk
    try:
        member_remove(actor=request.membership, membership=membership)
    except DomainError as error:
        return members_page(request, row_errors={membership.pk: error.messages}, status=page_status(error))
    if is_self:
        return redirect(public_url("/workspaces/"))
    messages.success(request, f"{email} was removed from {request.tenant.name}.")
    return redirect("settings_members")


# ----------------------------------------------------------------------------- roles


def _permission_groups(checked: set[str]) -> list[dict[str, Any]]:
    """CATALOGUE grouped by the part before the dot, in catalogue order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for code, description in CATALOGUE.items():
        prefix = code.split(".", 1)[0]
        groups.setdefault(prefix, []).append({
            "code": code, "description": description, "checked": code in checked,
            "dom_id": "perm-" + code.replace(".", "-").replace("_", "-"),
        })
    return [{"label": _GROUP_LABELS.get(prefix, prefix.replace("_", " ").capitalize()), "permissions": items}
            for prefix, items in groups.items()]


def roles_page(request, *, alerts: list[str] | None = None, status: int = 200):
    # TRICKY: Meta.ordering does not apply to aggregating queries: order explicitly.
    roles = list(Role.objects.filter(tenant=request.tenant).annotate(member_count=Count("memberships"))
                 .order_by("name"))
    for role in roles:
        role.permission_list = sorted(role.permission_set())
    builtin_order = list(BUILTIN_ROLES)  # admin, marketer, analyst, viewer: most to least
    context = {
        "section": "roles",
        "builtin_roles": sorted((r for r in roles if r.is_builtin),
                                key=lambda r: builtin_order.index(r.key) if r.key in builtin_order else len(builtin_order)),
        "custom_roles": [r for r in roles if not r.is_builtin],
        "alerts": alerts or [],
    }
    return render(request, "settings/roles.html", context, status=status)


@requires("roles.manage")
@require_GET
def roles(request):
    return roles_page(request)


def _role_editor(request, form: RoleForm, role: Role | None, status: int = 200):
    if form.is_bound:
        checked = set(form.data.getlist("permissions"))
    else:
        checked = set(role.permission_set()) if role else set()
    context = {"section": "roles", "form": form, "role": role, "groups": _permission_groups(checked),
               "read_only": bool(role and role.is_builtin)}
    return render(request, "settings/role_edit.html", context, status=status)


def _role_args(form: RoleForm) -> dict:
    data = form.cleaned_data
    return {"name": data["name"], "description": data["description"], "permissions": data["permissions"]}


@requires("roles.manage")
@require_http_methods(["GET", "POST"])
def role_new(request):
    form = RoleForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                role = role_create(actor=request.membership, **_role_args(form))
            except DomainError as error:
                form.add_problems(error)
                status = page_status(error)
            else:
                messages.success(request, f"Role “{role.name}” created.")
                return redirect("settings_roles")
    return _role_editor(request, form, None, status)


@requires("roles.manage")
@require_http_methods(["GET", "POST"])
def role_edit(request, pk: int):
    role = get_object_or_404(Role, pk=pk, tenant=request.tenant)
    if request.method == "GET":
        form = RoleForm(initial={"name": role.name, "description": role.description})
        return _role_editor(request, form, role)
    form = RoleForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            role = role_update(actor=request.membership, role=role, **_role_args(form))
        except DomainError as error:
            form.add_problems(error)
            status = page_status(error)
            role = get_object_or_404(Role, pk=pk, tenant=request.tenant)  # as stored
        else:
            messages.success(request, f"Role “{role.name}” saved.")
            return redirect("settings_roles")
    return _role_editor(request, form, role, status)


@requires("roles.manage")
@require_POST
def role_delete_view(request, pk: int):
    role = get_object_or_404(Role, pk=pk, tenant=request.tenant)
    name = role.name
    try:
        role_delete(actor=request.membership, role=role)
    except DomainError as error:
        return roles_page(request, alerts=[f"“{name}”: {m}" for m in error.messages], status=page_status(error))
    messages.success(request, f"Role “{name}” deleted.")
    return redirect("settings_roles")


# ----------------------------------------------------------------------------- departments


def departments_page(request, *, form: DepartmentForm | None = None, row_errors: dict[int, list[str]] | None = None,
                     alerts: list[str] | None = None, status: int = 200):
    departments = (Department.objects.filter(tenant=request.tenant).annotate(member_count=Count("members"))
                   .order_by("name"))
    row_errors = row_errors or {}
    context = {
        "section": "departments",
        "rows": [{"d": d, "errors": row_errors.get(d.pk, [])} for d in departments],
        "form": form or DepartmentForm(),
        "alerts": alerts or [],
    }
    return render(request, "settings/departments.html", context, status=status)


@requires("settings.modify")
@require_http_methods(["GET", "POST"])
def departments(request):
    """The list (GET) and the create form (POST)."""
    if request.method == "GET":
        return departments_page(request)
    form = DepartmentForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            department = department_create(actor=request.membership, name=form.cleaned_data["name"])
        except DomainError as error:
            form.add_problems(error)
            status = page_status(error)
        else:
            messages.success(request, f"Department “{department.name}” added.")
            return redirect("settings_departments")
    return departments_page(request, form=form, status=status)


@requires("settings.modify")
@require_POST
def department_rename_view(request, pk: int):
    department = get_object_or_404(Department, pk=pk, tenant=request.tenant)
    before = department.name
    form = DepartmentForm(request.POST)
    form.is_valid()  # every field is optional; the service judges the name
    try:
        department = department_rename(actor=request.membership, department=department,
                                       name=form.cleaned_data.get("name", ""))
    except DomainError as error:
        return departments_page(request, row_errors={department.pk: error.messages}, status=page_status(error))
    messages.success(request, f"Renamed “{before}” to “{department.name}”.")
    return redirect("settings_departments")


@requires("settings.modify")
@require_POST
def department_delete_view(request, pk: int):
    department = get_object_or_404(Department, pk=pk, tenant=request.tenant)
    name = department.name
    try:
        department_delete(actor=request.membership, department=department)
    except DomainError as error:
        return departments_page(request, row_errors={department.pk: error.messages}, status=page_status(error))
    messages.success(request, f"Department “{name}” deleted.")
    return redirect("settings_departments")


@requires("settings.modify")
@require_http_methods(["GET", "POST"])
def workspace(request):
    """The workspace's own settings (its name; more arrive with the metrics)."""
    errors, status = [], 200
    if request.method == "POST":
        try:
            tenant = workspace_update(actor=request.membership, name=request.POST.get("name", ""))
        except DomainError as error:
            errors, status = error.messages, page_status(error)
        else:
            messages.success(request, f"Workspace renamed to “{tenant.name}”.")
            return redirect("settings_workspace")
    request.tenant.refresh_from_db(fields=["name"])
    context = {"section": "workspace", "errors": errors, "name": request.POST.get("name", request.tenant.name)}
    return render(request, "settings/workspace.html", context, status=status)
