"""The activation plan pages: every play with its KPI against target (and the segments no
live play acts on), a play's page (KPI, trend, measured lift of its campaigns), the editor,
and the plan of one segment (its plays across departments) and of one department (its
plays, KPIs against targets, trend).

Thin views (house rule 3): parse, call a service or a campaigns.plays.plan selector with
`request.membership` as the actor, render.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from campaigns.plays import plan
from campaigns.plays.forms import NO_DEPARTMENT, PlanFilterForm, PlayForm
from campaigns.models import Play
from campaigns.plays.services import play_create, play_results, play_update
from common.errors import DomainError
from customers.models import EventDefinition
from segments.models import Segment
from common.pages import page_status, requires
from tenants.models import Department

PLAYS_PAGE = 50
VERDICTS = {"on_target": ("On target", "badge-green"), "off_target": ("Off target", "badge-red"),
            "no_data": ("No data yet", "badge-slate"), "no_target": ("No target", "badge-slate")}
STATUS_BADGES = {"planned": "badge-slate", "active": "badge-brand", "done": "badge-green", "archived": "badge-slate"}
BRAND, GREEN, RED, SLATE = "#3b55e6", "#059669", "#dc2626", "#94a3b8"


# ----------------------------------------------------------------------------- helpers


def _play_or_404(pk: int) -> Play:
    play = Play.objects.select_related("segment").filter(pk=pk).first()
    if play is None:
        raise Http404("No play has this id.")
    return play


def _department_or_404(request, pk: int) -> Department:
    department = Department.objects.filter(pk=pk, tenant=request.tenant).first()
    if department is None:  # ids are global (public schema): another workspace's is absent here
        raise Http404("No department has this id.")
    return department


def _chart(option: dict) -> str:
    return json.dumps({"option": option})


def _chart_value(play: Play, value: float | None) -> float | None:
    """Chart units: percent for rates, money for CAC (as the tables show them)."""
    if value is None:
        return None
    return round(value, 2) if play.kpi == Play.Kpi.CAC else round(value * 100, 2)


def _trend_chart(line: plan.PlayLine, *, compact: bool) -> str | None:
    points = [(at.date().isoformat(), _chart_value(line.play, value)) for at, value in line.trend]
    if not any(value is not None for _, value in points):
        return None
    series = {"type": "line", "name": line.play.get_kpi_display(), "data": [v for _, v in points],
              "symbol": "none" if compact else "circle", "connectNulls": True,
              "lineStyle": {"width": 1.5 if compact else 2, "color": BRAND}}
    target = _chart_value(line.play, line.kpi["target"])
    if target is not None:
        series["markLine"] = {"symbol": "none", "silent": True,
                              "label": {"show": not compact, "formatter": "Target", "position": "insideEndTop"},
                              "lineStyle": {"type": "dashed", "color": SLATE}, "data": [{"yAxis": target}]}
    unit = "" if line.play.kpi == Play.Kpi.CAC else "%"
    option = {
        "animation": False, "tooltip": {"trigger": "axis", "confine": True},
        "xAxis": {"type": "category", "data": [d for d, _ in points], "show": not compact},
        # The full chart puts rates on 0–100% (one point or a flat line would otherwise fill
        # it) and CAC from 0; a sparkline shows the shape only.
        "yAxis": {"type": "value", "show": not compact, "axisLabel": {"formatter": "{value}" + unit},
                  **({"scale": True} if compact else {"min": 0, **({"max": 100} if unit else {})})},
        "grid": {"left": 2, "right": 2, "top": 4, "bottom": 4} if compact else
                {"left": 56, "right": 24, "top": 24, "bottom": 32},
        "series": [series],
    }
    return _chart(option)


def _row(line: plan.PlayLine, *, trend: bool = False) -> dict:
    label, badge = VERDICTS[line.verdict]
    return {"line": line, "play": line.play, "verdict": label, "verdict_badge": badge,
            "status_badge": STATUS_BADGES.get(line.play.status, "badge-slate"),
            "sparkline": _trend_chart(line, compact=True) if trend else None}


def _form_context(request, form: PlayForm, play: Play | None) -> dict:
    segments = Segment.objects.exclude(status=Segment.Status.ARCHIVED).order_by("name") \
        if request.membership.has("segments.view") else Segment.objects.none()
    return {
        "form": form, "play": play, "segments": segments,
        "departments": Department.objects.filter(tenant=request.tenant),
        "tactic_types": Play.TacticType.choices, "kpis": Play.Kpi.choices, "statuses": Play.Status.choices,
        "event_names": EventDefinition.objects.order_by("name").values_list("name", flat=True)[:500],
    }


def _initial(play: Play) -> dict:
    fields = {f: getattr(play, f) for f in ("name", "segment_id", "department_id", "tactic_type", "tactic", "kpi",
                                            "kpi_event", "kpi_days", "spend", "status", "starts_on", "ends_on")}
    return fields | {"target": plan.target_for_form(play)}


def _save(request, play: Play | None):
    """The editor's POST: the form shapes input, the service decides; problems are shown at
    their fields with the service's status (400, or 403/404 as it says) and nothing is saved."""
    form = PlayForm(request.POST)
    if form.is_valid():
        fields = form.play_fields()
        try:
            if play is None:
                play = play_create(actor=request.membership, **fields)
                messages.success(request, f"Play “{play.name}” was created.")
            else:
                play = play_update(actor=request.membership, play=play, **fields)
                messages.success(request, f"Play “{play.name}” was saved.")
            return redirect("plays_detail", pk=play.pk)
        except DomainError as error:
            form.add_problems(error)
            status = page_status(error)
    else:
        status = 400
    return render(request, "plays/form.html", _form_context(request, form, play), status=status)


# ----------------------------------------------------------------------------- pages


@requires("campaigns.view")
@require_GET
def plays_list(request):
    """The activation plan: departments, segments without a live play, and every play."""
    now = timezone.now()
    filters = PlanFilterForm(request.GET)
    valid = filters.is_valid()
    data = filters.cleaned_data if valid else {}
    department = data.get("department") or ""
    plays = plan.plays_query(status=data.get("status") or "", kpi_code=data.get("kpi") or "",
                             department_id=int(department) if department.isdigit() else None)
    if department == NO_DEPARTMENT:
        plays = plays.filter(department_id__isnull=True)
    page = Paginator(plays, PLAYS_PAGE).get_page(request.GET.get("page"))
    rows = [_row(line) for line in plan.play_lines(page.object_list, now=now)]
    return render(request, "plays/list.html", {
        "rows": rows, "page": page, "filters": filters, "query": data, "filter_errors": [] if valid else
        [f"{filters.fields[name].label}: {' '.join(errors)}" for name, errors in filters.errors.items()],
        "cards": plan.department_cards(request.tenant), "unplanned": list(plan.segments_without_play()[:50]),
        "unplanned_count": plan.segments_without_play().count(), "departments": Department.objects.filter(
            tenant=request.tenant), "statuses": Play.Status.choices, "kpis": Play.Kpi.choices,
        "can_edit": request.membership.has("campaigns.edit"), "no_department": NO_DEPARTMENT,
    }, status=200 if valid else 400)


@requires("campaigns.edit")
@require_http_methods(["GET", "POST"])
def plays_new(request):
    if request.method == "POST":
        return _save(request, None)
    initial = {"status": Play.Status.PLANNED, "kpi": Play.Kpi.CONVERSION_RATE, "tactic_type": Play.TacticType.EMAIL}
    segment = Segment.objects.filter(key=request.GET.get("segment", "")).first()
    if segment is not None:
        initial |= {"segment_id": segment.pk, "department_id": segment.department_id}
    if request.GET.get("department", "").isdigit():
        initial["department_id"] = int(request.GET["department"])
    return render(request, "plays/form.html", _form_context(request, PlayForm(initial=initial), None))


@requires("campaigns.edit")
@require_http_methods(["GET", "POST"])
def plays_edit(request, pk: int):
    play = _play_or_404(pk)
    if request.method == "POST":
        return _save(request, play)
    return render(request, "plays/form.html", _form_context(request, PlayForm(initial=_initial(play)), play))


@requires("campaigns.view")
@require_GET
def plays_detail(request, pk: int):
    """A play: its KPI now and over the last weeks, and the measured lift of its campaigns."""
    play = _play_or_404(pk)
    now = timezone.now()
    (line,) = plan.play_lines([play], now=now, trend=True)
    results = play_results(actor=request.membership, play=play, now=now)
    return render(request, "plays/detail.html", {
        "row": _row(line), "play": play, "line": line, "trend_chart": _trend_chart(line, compact=False),
        "results": results, "overall": results["overall"], "can_edit": request.membership.has("campaigns.edit"),
        "window_start": line.kpi["window"][0][:10], "window_end": line.kpi["window"][1][:10],
    })


@requires("campaigns.view")
@require_GET
def plays_segment(request, key: str):
    """A segment's activation plan: its plays across departments."""
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        raise Http404("No segment has this key.")
    now = timezone.now()
    lines = plan.play_lines(plan.plays_query(segment=segment), now=now)
    by_department: dict[str, list[dict]] = {}
    for line in lines:
        by_department.setdefault(line.department or "No department", []).append(_row(line))
    return render(request, "plays/segment.html", {
        "segment": segment, "groups": sorted(by_department.items()),
        "live": sum(line.play.status in plan.LIVE for line in lines),
        "can_edit": request.membership.has("campaigns.edit"),
    })


@requires("campaigns.view")
@require_GET
def plays_department(request, pk: int):
    """A department's plays: KPI actuals against targets, with each play's trend."""
    department = _department_or_404(request, pk)
    now = timezone.now()
    rows = [_row(line, trend=True) for line in
            plan.play_lines(plan.plays_query(department_id=department.pk), now=now, trend=True)]
    verdicts = [row["line"].verdict for row in rows]
    progress, bars = _progress_chart(rows)
    return render(request, "plays/department.html", {
        "department": department, "rows": rows, "on_target": verdicts.count("on_target"),
        "off_target": verdicts.count("off_target"), "unmeasured": len(rows) - verdicts.count("on_target")
        - verdicts.count("off_target"), "progress_chart": progress, "progress_height": 72 + 36 * bars,
        "can_edit": request.membership.has("campaigns.edit"), "weeks": plan.TREND_WEEKS,
    })


def _progress_chart(rows: list[dict]) -> tuple[str | None, int]:
    """Each measured play's actual as a share of its target (100% = target met; for churn
    and CAC, where lower is better, target ÷ actual), capped at 200% so one outlier does
    not flatten the rest. Returns the chart and its number of bars (the page sizes it)."""
    bars = []
    for row in rows:
        line = row["line"]
        value, target = line.kpi["value"], line.kpi["target"]
        if value is None or not target:
            continue
        lower_better = line.play.kpi in (Play.Kpi.CHURN_RATE, Play.Kpi.CAC)
        share = (target / value if value else 2.0) if lower_better else value / target
        bars.append((line.play.name, round(min(share, 2.0) * 100, 1), GREEN if line.kpi["met"] else RED))
    if not bars:
        return None, 0
    return _chart({
        "animation": False, "grid": {"left": 8, "right": 40, "top": 24, "bottom": 8, "containLabel": True},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "xAxis": {"type": "value", "max": 200, "axisLabel": {"formatter": "{value}%"}},
        "yAxis": {"type": "category", "data": [name for name, _, _ in bars], "inverse": True},
        "series": [{"type": "bar", "name": "Of target", "barMaxWidth": 18,
                    "data": [{"value": share, "itemStyle": {"color": color}} for _, share, color in bars],
                    "markLine": {"symbol": "none", "silent": True, "data": [{"xAxis": 100}],
                                 "lineStyle": {"type": "dashed", "color": SLATE},
                                 "label": {"formatter": "Target", "position": "start"}}}],  # the top: y is inverted
    }), len(bars)
