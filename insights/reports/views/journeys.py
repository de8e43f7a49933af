"""Journey maps: the segment page's stage chart (htmx), the editor of a segment's stages,
and the persona gallery — every segment with a persona card or a journey, side by side."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from common.errors import DomainError
from common.jsonvalues import text_problem
from common.pages import refuse_forbidden, requires
from insights.models import JourneyMap
from insights.reports.journeys import JourneyReport, journey_report, journey_save, journey_stages
from insights.reports.views.shared import BASE_COLOUR, PALETTE, chart
from segments.models import Segment

GALLERY_LIMIT = 24


def _segment(key: str) -> Segment:
    # A key PostgreSQL cannot hold (NUL, lone surrogate) names no segment: 404, not a failed query.
    segment = None if text_problem(key) else Segment.objects.filter(key=key).first()
    if segment is None:
        raise Http404("No such segment")
    return segment


def stage_chart(report: JourneyReport) -> str:
    names = [s.name for s in report.stages]
    return chart({
        "tooltip": {"trigger": "axis"}, "legend": {"bottom": 0}, "animation": False,  # several on one page
        "grid": {"left": 48, "right": 16, "top": 16, "bottom": 56},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"interval": 0}},
        "yAxis": {"type": "value", "max": 100, "axisLabel": {"formatter": "{value}%"}},
        "series": [
            {"name": "In this stage now", "type": "bar", "color": PALETTE[0],
             "data": [None if s.now_share is None else round(s.now_share * 100, 1) for s in report.stages]},
            {"name": "Reached it", "type": "line", "color": BASE_COLOUR,
             "data": [None if s.reached_share is None else round(s.reached_share * 100, 1) for s in report.stages]},
        ],
    })


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def stage_rows(report: JourneyReport) -> list[dict]:
    return [{"stage": s, "now": _percent(s.now_share), "reached": _percent(s.reached_share),
             "days": "—" if s.median_days is None else f"{s.median_days:g} d"} for s in report.stages]


@require_GET
@requires("reports.view")
def segment_journey_panel(request, key: str):
    segment = _segment(key)
    stages, saved = journey_stages(segment)
    report = journey_report(segment=segment, stages=stages, now=timezone.now())
    return render(request, "insights/reports/_journey.html", {
        "segment": segment, "report": report, "rows": stage_rows(report), "chart": stage_chart(report), "saved": saved,
        "can_edit": request.membership.has("segments.edit")})


@require_http_methods(["GET", "POST"])
@requires("segments.edit")
def journey_edit(request, key: str):
    segment = _segment(key)
    stages, _ = journey_stages(segment)
    problems, status = [], 200
    if request.method == "POST":
        text = request.POST.get("stages", "")
        try:
            posted = json.loads(text)
        except ValueError:
            posted = text
        try:
            journey_save(actor=request.membership, segment=segment, stages=posted, now=timezone.now())
        except DomainError as error:
            refuse_forbidden(error)
            problems, status, stages = error.problems, 400, posted if isinstance(posted, list) else stages
        else:
            messages.success(request, f"Journey of “{segment.name}” saved.")
            return redirect("segments_detail", key=segment.key)
    return render(request, "insights/reports/journey_edit.html",
                  {"segment": segment, "stages": stages, "problems": problems}, status=status)


@require_GET
@requires("reports.view")
def persona_gallery(request):
    """Segments with a persona card or a saved journey, each with its card and stage chart."""
    mapped = set(JourneyMap.objects.values_list("segment_id", flat=True))
    segments = [s for s in Segment.objects.exclude(status=Segment.Status.ARCHIVED).order_by("name")
                if s.persona or s.pk in mapped][:GALLERY_LIMIT]
    now, cards = timezone.now(), []
    for segment in segments:
        stages, saved = journey_stages(segment)
        report = journey_report(segment=segment, stages=stages, now=now)
        cards.append({"segment": segment, "persona": segment.persona, "report": report, "saved": saved,
                      "chart": stage_chart(report), "rows": stage_rows(report)})
    return render(request, "insights/reports/personas.html", {"cards": cards})
