"""The segment directory: search, filters, sort and pages of segments with their size,
freshness, trend sparkline and hygiene flags (htmx swaps the table alone)."""

from __future__ import annotations

import json

from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from common.pages import requires
from segments.forms import DirectoryForm
from segments.models import Segment
from segments.selectors.directory import (
    DEFAULT_SORT, FRESHNESS, SORTS, all_tags, near_duplicates, people_and_departments, segment_directory,
    size_trends,
)
from segments.selectors.hygiene import is_stale, segment_settings
from tenants.models import Department


KIND_BADGES = {"dynamic": "badge-brand", "static": "badge-slate", "snapshot": "badge-amber"}
FRESHNESS_BADGES = {"fresh": "badge-green", "stale": "badge-amber", "failed": "badge-red", "pending": "badge-slate",
                    "manual": "badge-slate", "frozen": "badge-slate"}
FRESHNESS_LABELS = {"fresh": "Fresh", "stale": "Stale", "failed": "Failed", "pending": "Not evaluated yet",
                    "manual": "Hand-picked", "frozen": "Frozen"}


def chart_option(option: dict) -> str:
    return json.dumps({"option": option})


def sparkline(points: list[list]) -> str | None:
    if len(points) < 2:
        return None
    return chart_option({
        "animation": False, "grid": {"left": 2, "right": 2, "top": 4, "bottom": 4},
        "xAxis": {"type": "category", "show": False, "data": [p[0] for p in points]},
        "yAxis": {"type": "value", "show": False, "scale": True},
        "tooltip": {"trigger": "axis", "confine": True},
        "series": [{"type": "line", "name": "Size", "data": [p[1] for p in points], "symbol": "none", "smooth": True,
                    "lineStyle": {"width": 1.5, "color": "#3b55e6"}, "areaStyle": {"color": "rgba(59,85,230,0.08)"}}],
    })


def decorated(segments: list[Segment], *, now) -> list[dict]:
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
        rows.append({"segment": s, "sparkline": sparkline(trends.get(s.pk, [])), "warnings": warnings,
                     "owner": owners.get(s.owner_id), "department": departments.get(s.department_id),
                     "kind_badge": KIND_BADGES[s.kind], "fresh_badge": FRESHNESS_BADGES[s.freshness],
                     "fresh_label": FRESHNESS_LABELS[s.freshness]})
    return rows


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
        "form": form, "query": query, "problems": problems, "rows": decorated(segments[:200], now=now), "more": more,
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
