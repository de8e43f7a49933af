"""The workspace's settings area: members, roles, departments, API keys and the audit log.

Thin views (house rule 3): each parses a form, looks objects up inside `request.tenant`
(another tenant's id is a 404), calls one service with `request.membership` as the actor
and renders. A DomainError becomes form errors with a 4xx status, never a 500.
Invitations (invite, revoke, accept) live in tenants.views_invitations.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tenants.utils import tenant_context

from common.csv import stream_rows
from apikeys.models import ApiKey
from apikeys.selectors import api_keys, write_key_current
from apikeys.services import api_key_create, api_key_revoke, write_key_rotate
from audit.models import AuditEvent
from audit.selectors import audit_actions, audit_events
from common.api import page_status
from common.errors import DomainError
from tenants.authz import ANY_MEMBER, requires
from tenants.context_processors import settings_pages_for
from tenants.forms_settings import (
    ApiKeyForm, AuditFilterForm, DepartmentForm, InviteForm, MemberForm, RoleForm,
)
from tenants.models import Department, Invitation, Role, TenantMembership
from tenants.permissions import BUILTIN_ROLES, CATALOGUE, SCOPES
from tenants.selectors import public_url
from tenants.services import (
    department_create, department_delete, department_rename, member_remove, member_update, role_create,
    role_delete, role_update, workspace_update,
)

AUDIT_PAGE_SIZE = 50
AUDIT_CSV_HEADER = ["at", "actor_kind", "actor", "action", "target_type", "target_id", "target", "changes", "ip",
                    "user_agent"]
_GROUP_LABELS = {"api_keys": "API keys"}


def _messages_of(error: DomainError) -> list[str]:
    return [problem.message for problem in error.problems]


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
            errors, status = _messages_of(error), page_status(error)
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
        return members_page(request, row_errors={membership.pk: _messages_of(error)}, status=page_status(error))
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
        return roles_page(request, alerts=[f"“{name}”: {m}" for m in _messages_of(error)], status=page_status(error))
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
        return departments_page(request, row_errors={department.pk: _messages_of(error)}, status=page_status(error))
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
        return departments_page(request, row_errors={department.pk: _messages_of(error)}, status=page_status(error))
    messages.success(request, f"Department “{name}” deleted.")
    return redirect("settings_departments")


# ----------------------------------------------------------------------------- API keys


def _key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def api_keys_page(request, *, form: ApiKeyForm | None = None, alerts: list[str] | None = None, status: int = 200):
    now = timezone.now()
    keys = list(api_keys())
    for key in keys:
        key.status = _key_status(key, now)
    form = form or ApiKeyForm(initial={"scopes": ["read"]})
    checked = set(form.data.getlist("scopes")) if form.is_bound else set(form.initial.get("scopes", []))
    scopes = [{"value": value, "label": label, "checked": value in checked,
               "grants": ", ".join(sorted(SCOPES[value]))} for value, label in ApiKey.Scope.choices]
    context = {
        "section": "api_keys",
        "keys": keys,
        "form": form,
        "scopes": scopes,
        "write_key": write_key_current(),
        "alerts": alerts or [],
        "today": timezone.localdate(now).isoformat(),
    }
    return render(request, "settings/api_keys.html", context, status=status)


@requires("api_keys.manage")
@require_http_methods(["GET", "POST"])
@never_cache  # the POST response carries the plain key: no cache may keep it
def api_keys_view(request):
    """The list (GET) and key creation (POST), whose response shows the plain key once."""
    if request.method == "GET":
        return api_keys_page(request)
    form = ApiKeyForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            key, plain = api_key_create(actor=request.membership, name=form.cleaned_data["name"],
                                        scopes=form.cleaned_data["scopes"], now=timezone.now(),
                                        expires_at=form.expires_at())
        except DomainError as error:
            form.add_problems(error)
            status = page_status(error)
        else:
            # TRICKY: the plain key goes into this response only — not a redirect URL, the
            # session or a flash message, which would store it server-side or in history.
            return render(request, "settings/api_key_created.html", {"section": "api_keys", "key": key, "plain": plain})
    return api_keys_page(request, form=form, status=status)


@requires("api_keys.manage")
@require_POST
def api_key_revoke_view(request, pk: int):
    key = get_object_or_404(ApiKey, pk=pk)  # ApiKey lives in the tenant's schema
    try:
        api_key_revoke(actor=request.membership, key=key, now=timezone.now())
    except DomainError as error:
        return api_keys_page(request, alerts=[f"“{key.name}”: {m}" for m in _messages_of(error)],
                             status=page_status(error))
    messages.success(request, f"API key “{key.name}” revoked; requests using it are now refused.")
    return redirect("settings_api_keys")


@requires("api_keys.manage")
@require_POST
def write_key_rotate_view(request):
    try:
        write_key_rotate(actor=request.membership, now=timezone.now())
    except DomainError as error:
        return api_keys_page(request, alerts=_messages_of(error), status=page_status(error))
    messages.success(request, "New write key issued. Update your tracking snippets and SDKs: the old key no longer works.")
    return redirect("settings_api_keys")


# ----------------------------------------------------------------------------- audit log


def _audit_filter(request) -> AuditFilterForm:
    target_types = (AuditEvent.objects.exclude(target_type="").order_by("target_type")
                    .values_list("target_type", flat=True).distinct())
    form = AuditFilterForm(request.GET, actions=audit_actions(), target_types=list(target_types))
    form.is_valid()
    return form


def _display_value(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _display_changes(changes: dict) -> list[dict[str, str]]:
    out = []
    for field, change in sorted((changes or {}).items()):
        if isinstance(change, list) and len(change) == 2:
            out.append({"field": field, "before": _display_value(change[0]), "after": _display_value(change[1])})
        else:
            out.append({"field": field, "before": "", "after": _display_value(change)})
    return out


@requires("audit.view")
@require_GET
def audit(request):
    form = _audit_filter(request)
    paginator = Paginator(audit_events(**form.selector_args()), AUDIT_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    for event in page.object_list:
        event.change_list = _display_changes(event.changes)
    context = {"section": "audit", "form": form, "page": page, "paginator": paginator,
               "filtered": any(form.data.get(name) for name in form.fields),
               "export_query": _export_query(request)}
    status = 400 if form.errors else 200
    if request.htmx and not request.htmx.history_restore_request and request.htmx.target == "audit-results":
        return render(request, "settings/_audit_results.html", context, status=status)
    return render(request, "settings/audit.html", context, status=status)


def _export_query(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@requires("audit.view")
@require_GET
def audit_export(request):
    form = _audit_filter(request)
    if form.errors:
        problems = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in form.errors.items())
        return HttpResponse(f"Invalid filter: {problems}\n", status=400, content_type="text/plain; charset=utf-8")
    events = audit_events(**form.selector_args())
    tenant = request.tenant
    filename = f"audit-{tenant.slug}-{timezone.localdate().isoformat()}.csv"
    response = StreamingHttpResponse(_audit_csv(events, tenant), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _audit_csv(events, tenant):
    # TRICKY: a streaming body is produced after the view has returned, when the
    # connection's schema is no longer the request's business: pin it for the iteration.
    with tenant_context(tenant):
        yield from stream_rows(_audit_rows(events))


def _audit_rows(events):
    yield AUDIT_CSV_HEADER
    for event in events.iterator(chunk_size=1000):
        yield [
            event.at.isoformat(), event.actor_kind, event.actor_label, event.action, event.target_type,
            event.target_id, event.target_label, json.dumps(event.changes, sort_keys=True, default=str),
            event.ip or "", event.user_agent,
        ]


@requires("settings.modify")
@require_http_methods(["GET", "POST"])
def workspace(request):
    """The workspace's own settings (its name; more arrive with the metrics)."""
    errors, status = [], 200
    if request.method == "POST":
        try:
            tenant = workspace_update(actor=request.membership, name=request.POST.get("name", ""))
        except DomainError as error:
            errors, status = _messages_of(error), page_status(error)
        else:
            messages.success(request, f"Workspace renamed to “{tenant.name}”.")
            return redirect("settings_workspace")
    request.tenant.refresh_from_db(fields=["name"])
    context = {"section": "workspace", "errors": errors, "name": request.POST.get("name", request.tenant.name)}
    return render(request, "settings/workspace.html", context, status=status)
