"""The segment pages (HTML + htmx partials): the directory and a segment's detail (trends,
members, "why is this customer here?", versions and their diffs, the evaluation log,
static members, snapshot, delete). The builder is segments/views/builder.py, Settings →
Segments segments/views/settings.py, overlap segments/views/overlap.py.

Thin views (house rule 3): parse the query or form, call one service or selector with
`request.membership` as the actor, render. Personal data of members is masked here for
members without `customers.view_pii`, as on the customer pages.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from common.errors import DomainError
from common.masking import mask_explain_tree
from common.pages import page_status, refuse_forbidden, requires
from customers.models import Customer
from customers.selectors import pii_trait_keys
from segments.forms import PERSONA_FIELDS, DirectoryForm
from segments.models import Membership, Segment, SegmentEvaluation, SegmentSizeSnapshot, SegmentVersion
from segments.rules.explain import explain
from segments.selectors.directory import (
    DEFAULT_SORT, FRESHNESS, SORTS, all_tags, near_duplicates, people_and_departments, segment_directory,
    size_trends,
)
from segments.selectors.facts import customer_facts
from segments.selectors.hygiene import hygiene, is_stale, segment_settings
from segments.selectors.members import member_page, memberships_of, resolve_customers, resolve_upload
from segments.selectors.preview import compile_definition
from segments.selectors.versions import definition_diff
from segments.services import (
    segment_delete, segment_evaluate_request, segment_update, snapshot_create, static_members_change,
)
from segments.uploads import read_upload
from segments.views.common import hidden_fields, segment_or_404, who
from tenants.models import Department

MEMBERS_PAGE = 25
HISTORY_DAYS = 90
KIND_BADGES = {"dynamic": "badge-brand", "static": "badge-slate", "snapshot": "badge-amber"}
FRESHNESS_BADGES = {"fresh": "badge-green", "stale": "badge-amber", "failed": "badge-red", "pending": "badge-slate",
                    "manual": "badge-slate", "frozen": "badge-slate"}
FRESHNESS_LABELS = {"fresh": "Fresh", "stale": "Stale", "failed": "Failed", "pending": "Not evaluated yet",
                    "manual": "Hand-picked", "frozen": "Frozen"}


# ----------------------------------------------------------------------------- helpers


def _chart(option: dict) -> str:
    return json.dumps({"option": option})


def _sparkline(points: list[list]) -> str | None:
    if len(points) < 2:
        return None
    return _chart({
        "animation": False, "grid": {"left": 2, "right": 2, "top": 4, "bottom": 4},
        "xAxis": {"type": "category", "show": False, "data": [p[0] for p in points]},
        "yAxis": {"type": "value", "show": False, "scale": True},
        "tooltip": {"trigger": "axis", "confine": True},
        "series": [{"type": "line", "name": "Size", "data": [p[1] for p in points], "symbol": "none", "smooth": True,
                    "lineStyle": {"width": 1.5, "color": "#3b55e6"}, "areaStyle": {"color": "rgba(59,85,230,0.08)"}}],
    })


def _decorate(segments: list[Segment], *, now) -> list[dict]:
    """Rows of the directory: each segment with its badges, trend, owner, department and
    hygiene flags (too small by stored size, stale, near-duplicates among these)."""
    ids = [s.pk for s in segments]
    trends = size_trends(segment_ids=ids, now=now)
    owners, departments = people_and_departments(
        owner_ids={s.owner_id for s in segments if s.owner_id}, department_ids={s.department_id for s in segments
                                                                                if s.department_id})
    minimum = segment_settings().min_size
    duplicates = near_duplicates(segments)
    rows = []
    for s in segments:
        warnings = []
        if s.kind != Segment.Kind.SNAPSHOT and s.last_evaluated_at and s.size < minimum:
            warnings.append({"code": "too_small", "label": "Too small",
                             "message": f"{s.size:,} members, fewer than the workspace's minimum of {minimum:,}."})
        for other, jaccard in duplicates.get(s.pk, []):
            warnings.append({"code": "near_duplicate", "label": "Near duplicate",
                             "message": f"Nearly the same customers as “{other.name}” (Jaccard {jaccard:.2f})."})
        if is_stale(s, now=now):
            warnings.append({"code": "stale", "label": "Unused 90 days",
                             "message": "Neither changed nor used for 90 days: listed for the quarterly review."})
        rows.append({"segment": s, "sparkline": _sparkline(trends.get(s.pk, [])), "warnings": warnings,
                     "owner": owners.get(s.owner_id), "department": departments.get(s.department_id),
                     "kind_badge": KIND_BADGES[s.kind], "fresh_badge": FRESHNESS_BADGES[s.freshness],
                     "fresh_label": FRESHNESS_LABELS[s.freshness]})
    return rows


# ----------------------------------------------------------------------------- directory


def _encode(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(sorted(params.items()))


def _directory_context(request) -> tuple[dict, int]:
    form = DirectoryForm(request.GET)
    form.is_valid()
    problems = form.problems()
    query = form.query()
    now = timezone.now()
    segments = list(segment_directory(query=query, now=now)[:201])
    more = len(segments) > 200
    params = {k: v for k, v in request.GET.items() if v and (k, v) != ("sort", DEFAULT_SORT)}
    sort_links = {}
    for name in SORTS:
        state = "asc" if query.sort == name else ("desc" if query.sort == f"-{name}" else "")
        first = name if name == "name" else f"-{name}"
        target = {"asc": f"-{name}", "desc": name}.get(state, first)
        sort_links[name] = {"query": _encode({**params, "sort": target}), "state": state}
    context = {
        "form": form, "query": query, "problems": problems, "rows": _decorate(segments[:200], now=now), "more": more,
        "tags": all_tags(), "departments": Department.objects.filter(tenant=request.tenant),
        "sort_links": sort_links, "query_string": _encode(params), "kinds": Segment.Kind.choices,
        "freshness_choices": [(f, FRESHNESS_LABELS[f]) for f in FRESHNESS],
        "statuses": Segment.Status.choices,
        "can_edit": request.membership.has("segments.edit"), "total": Segment.objects.count(),
    }
    return context, 400 if problems else 200


@requires("segments.view")
@require_GET
def segments_list(request):
    context, status = _directory_context(request)
    return render(request, "segments/list.html", context, status=status)


@requires("segments.view")
@require_GET
def segments_table(request):
    """The directory's table alone, for htmx; the address bar follows the full page's URL."""
    context, status = _directory_context(request)
    response = render(request, "segments/_table.html", context, status=status)
    query = context["query_string"]
    response["HX-Push-Url"] = reverse("segments_list") + (f"?{query}" if query else "")
    return response


# ----------------------------------------------------------------------------- detail


def _history_charts(segment: Segment, now) -> tuple[str | None, str | None]:
    since = (now - timedelta(days=HISTORY_DAYS)).date()
    days = list(SegmentSizeSnapshot.objects.filter(segment=segment, day__gte=since).order_by("day"))
    if not days:
        return None, None
    labels = [d.day.isoformat() for d in days]
    size = _chart({
        "color": ["#3b55e6"], "tooltip": {"trigger": "axis"}, "grid": {"left": 48, "right": 16, "top": 16, "bottom": 28},
        "xAxis": {"type": "category", "data": labels, "boundaryGap": False},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "line", "name": "Members", "data": [d.size for d in days], "smooth": True,
                    "symbol": "circle", "symbolSize": 5, "areaStyle": {"color": "rgba(59,85,230,0.08)"}}],
    })
    flow = _chart({
        "color": ["#059669", "#dc2626"], "tooltip": {"trigger": "axis"},
        "legend": {"data": ["Entered", "Exited"], "bottom": 0},
        "grid": {"left": 48, "right": 16, "top": 16, "bottom": 48},
        "xAxis": {"type": "category", "data": labels}, "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "bar", "name": "Entered", "stack": "flow", "barMaxWidth": 24, "data": [d.entered for d in days]},
                   {"type": "bar", "name": "Exited", "stack": "flow", "barMaxWidth": 24, "data": [-d.exited for d in days]}],
    })
    return size, flow


def _every(interval: timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    for size, unit in ((1440, "day"), (60, "hour")):
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'s' if count != 1 else ''}" if count != 1 else unit
    return f"{minutes} minutes" if minutes != 1 else "minute"


def _versions(segment: Segment) -> list[dict]:
    versions = list(SegmentVersion.objects.filter(segment=segment).order_by("-version")[:50])
    authors, _ = people_and_departments(owner_ids={v.author_id for v in versions if v.author_id},
                                               department_ids=set())
    return [{"version": v, "author": authors.get(v.author_id)} for v in versions]


def _detail_context(request, segment: Segment, **extra) -> dict:
    now = timezone.now()
    owners, departments = people_and_departments(
        owner_ids={segment.owner_id} if segment.owner_id else set(),
        department_ids={segment.department_id} if segment.department_id else set())
    size_chart, flow_chart = _history_charts(segment, now)
    try:
        warnings = hygiene(segment=segment, now=now)
    except DomainError:
        warnings = []  # a definition that no longer parses (e.g. a trait retyped): the evaluation log says why
    versions = _versions(segment)
    membership = request.membership
    context = {
        "segment": segment, "owner": owners.get(segment.owner_id), "department": departments.get(segment.department_id),
        "kind_badge": KIND_BADGES[segment.kind], "fresh_badge": FRESHNESS_BADGES[segment.freshness],
        "fresh_label": FRESHNESS_LABELS[segment.freshness], "size_chart": size_chart, "flow_chart": flow_chart,
        "warnings": warnings, "versions": versions, "refresh_label": _every(segment.refresh_interval),
        "evaluations": list(SegmentEvaluation.objects.filter(segment=segment).order_by("-created_at", "-id")[:20]),
        "persona": [(label, segment.persona.get(key)) for key, label in PERSONA_FIELDS if segment.persona.get(key)],
        "persona_name": segment.persona.get("name", ""),
        "definition_json": json.dumps(segment.definition, indent=2, ensure_ascii=False) if segment.definition else "",
        "can_edit": membership.has("segments.edit"), "can_export": membership.has("data.export"),
        "can_see_pii": membership.has("customers.view_pii"),
        "dependents": sorted(Segment.objects.filter(references__contains=[segment.key]).exclude(pk=segment.pk)
                             .values_list("key", flat=True)),
        **_members_context(request, segment),
        **_activation_context(membership, segment),
        **extra,
    }
    return context


def _activation_context(membership, segment: Segment) -> dict:
    """The plays acting on the segment (for members who may read the activation plan)."""
    if not membership.has("campaigns.view"):
        return {"activation": None}
    plays = list(segment.plays.exclude(status="archived").order_by("-created_at")[:5])
    live = segment.plays.filter(status__in=("planned", "active")).exists()
    return {"activation": plays, "activation_live": live,
            "can_plan": membership.has("campaigns.edit")}


def _members_context(request, segment: Segment) -> dict:
    search = request.GET.get("q", "").strip()[:200]
    try:
        page = max(1, min(int(request.GET.get("page", "1")), 400))
    except ValueError:
        page = 1
    hidden = hidden_fields(request)
    rows = member_page(segment=segment, search=search, can_see_pii=not hidden,
                              offset=(page - 1) * MEMBERS_PAGE, limit=MEMBERS_PAGE)
    more = len(rows) > MEMBERS_PAGE
    return {"members": [{**who(r.customer, hidden), "membership": r} for r in rows[:MEMBERS_PAGE]],
            "members_search": search, "members_page": page, "members_more": more,
            "members_pii_search": not hidden}


@requires("segments.view")
@require_GET
def segments_detail(request, key: str):
    segment = segment_or_404(key)
    why = request.GET.get("why", "")  # from a customer profile: open "why?" for that customer
    extra = {"why_url": reverse("segments_explain", args=[segment.key, int(why)])} if why.isdigit() else {}
    return render(request, "segments/detail.html", _detail_context(request, segment, **extra))


@requires("segments.view")
@require_GET
def segments_members(request, key: str):
    """The members table alone (search, pages), for htmx."""
    segment = segment_or_404(key)
    return render(request, "segments/_members.html", {"segment": segment, **_members_context(request, segment),
                                                      "can_edit": request.membership.has("segments.edit")})


def _shown_tree(node: dict, hidden: frozenset[str]) -> dict:
    """The explain tree as this member may see it, each fact also as JSON for the page."""
    if hidden:
        node = mask_explain_tree(node, other="Hidden")
    return _with_fact_json(node)


def _with_fact_json(node: dict) -> dict:
    node = dict(node)
    if "conditions" in node:
        node["conditions"] = [_with_fact_json(child) for child in node["conditions"]]
    if isinstance(node.get("fact"), dict):
        node["fact_json"] = json.dumps({k: v for k, v in node["fact"].items() if k not in ("pii",)}, ensure_ascii=False)
    return node


@requires("segments.view")
@require_GET
def segments_explain(request, key: str, customer_id: int):
    """"Why is this customer here?": the rule's tree for one customer, each node green or red."""
    segment = segment_or_404(key)
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise Http404("No such customer.")
    now = timezone.now()
    hidden = hidden_fields(request)
    membership = Membership.objects.filter(segment=segment, customer=customer, exited_at__isnull=True).first()
    last = Membership.objects.filter(segment=segment, customer=customer).order_by("-entered_at").first()
    tree, error = None, None
    if segment.kind == Segment.Kind.DYNAMIC and segment.definition:
        try:
            _, group, _ = compile_definition(segment.definition, now=now, self_key=segment.key)
        except DomainError as problem:
            error = "; ".join(p.message for p in problem.problems)
        else:
            facts = customer_facts(customer_ids=[customer.pk], now=now,
                                   segment_keys_at={customer.pk: memberships_of(customer_id=customer.pk, now=now)})
            tree = _shown_tree(explain(group, facts[customer.pk], now=now, pii_traits=pii_trait_keys()), hidden)
    return render(request, "segments/_explain.html", {
        "segment": segment, **who(customer, hidden), "membership": membership, "last": last, "tree": tree,
        "error": error, "now": now})


@requires("segments.view")
@require_GET
def segments_diff(request, key: str):
    """What changed between two saved versions (?from=&to=), as green/red lines."""
    segment = segment_or_404(key)
    try:
        numbers = int(request.GET.get("from", "")), int(request.GET.get("to", ""))
    except ValueError:
        return render(request, "segments/_diff.html", {"error": "Pick two versions to compare."}, status=400)
    found = dict(SegmentVersion.objects.filter(segment=segment, version__in=numbers).values_list("version", "definition"))
    missing = [n for n in numbers if n not in found]
    if missing:
        return render(request, "segments/_diff.html",
                      {"error": f"{segment.name} has no version {missing[0]}."}, status=404)
    before, after = found[numbers[0]], found[numbers[1]]
    diff = definition_diff(before, after, labels=(f"v{numbers[0]}", f"v{numbers[1]}"))
    lines = []
    for line in diff["text"].splitlines():
        kind = ("meta" if line.startswith(("---", "+++", "@@")) else "add" if line.startswith("+")
                else "del" if line.startswith("-") else "same")
        lines.append({"kind": kind, "text": line})
    return render(request, "segments/_diff.html", {"segment": segment, "from": numbers[0], "to": numbers[1],
                                                   "lines": lines, "diff": diff})


# ----------------------------------------------------------------------------- actions


@requires("segments.edit")
@require_POST
def segments_evaluate(request, key: str):
    segment = segment_or_404(key)
    try:
        segment_evaluate_request(actor=request.membership, segment=segment, now=timezone.now())
    except DomainError as error:
        refuse_forbidden(error)
        messages.error(request, error.problems[0].message)
        return redirect("segments_detail", key=segment.key)
    messages.success(request, "Evaluation queued. The log below shows it when it has run.")
    return redirect("segments_detail", key=segment.key)


STATUS_MESSAGES = {
    Segment.Status.ACTIVE: "is active again and is being evaluated.",
    Segment.Status.PAUSED: "is paused: its members stay as they are until you resume it.",
    Segment.Status.ARCHIVED: "is archived: it is not evaluated and leaves the directory (filter by status to find it).",
}


@requires("segments.edit")
@require_POST
def segments_status(request, key: str):
    """Pause, resume or archive a segment (segment_update: archiving is refused while a
    segment in use references it)."""
    segment = segment_or_404(key)
    status = request.POST.get("status", "")
    try:
        segment_update(actor=request.membership, segment=segment, now=timezone.now(), status=status)
    except DomainError as error:
        refuse_forbidden(error)
        context = _detail_context(request, segment, action_errors=error.messages)
        return render(request, "segments/detail.html", context, status=page_status(error))
    messages.success(request, f"“{segment.name}” {STATUS_MESSAGES[status]}")
    return redirect("segments_detail", key=segment.key)


@requires("segments.edit")
@require_POST
def segments_snapshot(request, key: str):
    segment = segment_or_404(key)
    now = timezone.now()
    new_key = request.POST.get("key", "").strip() or f"{segment.key}-{now:%Y%m%d-%H%M}"[:64]
    name = request.POST.get("name", "").strip() or f"{segment.name} ({now:%Y-%m-%d %H:%M} UTC)"
    try:
        snapshot = snapshot_create(actor=request.membership, source=segment, key=new_key, name=name[:200], now=now)
    except DomainError as error:
        refuse_forbidden(error)
        context = _detail_context(request, segment, action_errors=error.messages)
        return render(request, "segments/detail.html", context, status=400)
    messages.success(request, f"Frozen {snapshot.size:,} members into “{snapshot.name}”.")
    return redirect("segments_detail", key=snapshot.key)


@requires("segments.edit")
@require_POST
def segments_delete(request, key: str):
    segment = segment_or_404(key)
    if request.POST.get("confirm", "") != segment.key:
        context = _detail_context(request, segment, delete_open=True,
                                  delete_error=f"Type the key “{segment.key}” to confirm.")
        return render(request, "segments/detail.html", context, status=400)
    try:
        segment_delete(actor=request.membership, segment=segment)
    except DomainError as error:
        refuse_forbidden(error)
        context = _detail_context(request, segment, action_errors=error.messages)
        return render(request, "segments/detail.html", context, status=page_status(error))
    messages.success(request, f"Segment “{segment.name}” was deleted with its history.")
    return redirect("segments_list")


def _ids(raw: str) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in raw.replace(",", "\n").splitlines() if v.strip()))


@requires("segments.edit")
@require_POST
def segments_static(request, key: str):
    """Add or remove hand-picked members of a static segment by external id."""
    segment = segment_or_404(key)
    add, remove = _ids(request.POST.get("add", "")), _ids(request.POST.get("remove", ""))
    problems = []
    if not add and not remove:
        problems.append("List at least one external id to add or remove.")
    found_add = resolve_customers(add, path="add")
    found_remove = resolve_customers(remove, path="remove")
    problems += [p.message for p in found_add.unmatched + found_remove.unmatched]
    if not problems:
        try:
            added, removed = static_members_change(actor=request.membership, segment=segment,
                                                   add=found_add.customer_ids, remove=found_remove.customer_ids,
                                                   now=timezone.now())
        except DomainError as error:
            refuse_forbidden(error)
            problems += error.messages
        else:
            messages.success(request, f"{added:,} added, {removed:,} removed.")
            return redirect("segments_detail", key=segment.key)
    context = _detail_context(request, segment, static_errors=problems, static_add=request.POST.get("add", ""),
                              action_errors=problems if segment.kind != Segment.Kind.STATIC else [],
                              static_remove=request.POST.get("remove", ""))
    return render(request, "segments/detail.html", context, status=400)


@requires("segments.edit")
@require_POST
def segments_upload(request, key: str):
    """A one-column CSV of external ids (or emails, for members who may read them) added
    to a static segment; rows naming nobody come back as a report."""
    segment = segment_or_404(key)
    try:
        rows = read_upload(request.FILES.get("file"))
        ids, unmatched = resolve_upload(rows, by_email=request.membership.has("customers.view_pii"))
        added, _ = static_members_change(actor=request.membership, segment=segment, add=ids, remove=[],
                                         now=timezone.now(), source=Membership.Source.IMPORT)
    except DomainError as error:
        refuse_forbidden(error)
        context = _detail_context(request, segment, upload_errors=error.messages)
        return render(request, "segments/detail.html", context, status=page_status(error))
    context = _detail_context(request, segment_or_404(key), upload_report={
        "rows": len(rows), "matched": len(rows) - len(unmatched), "added": added, "unmatched": unmatched[:100],
        "more": max(0, len(unmatched) - 100)})
    return render(request, "segments/detail.html", context)
