"""The audit log page of the settings area: who did what, filtered, paged and exported as CSV."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_tenants.utils import tenant_context

from audit.forms import AuditFilterForm
from audit.models import AuditEvent
from audit.selectors import audit_actions, audit_events
from common.csv import stream_rows
from common.pages import requires

AUDIT_PAGE_SIZE = 50
AUDIT_CSV_HEADER = ["at", "actor_kind", "actor", "action", "target_type", "target_id", "target", "changes", "ip",
                    "user_agent"]



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
