"""The retention page: cohorts by sign-up or a first event, returning on an event (or any),
weekly or monthly; the triangle (a table, each cell shaded by its rate), the curves of the
base and the compared segments, and a CSV export."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from common.errors import DomainError
from common.pages import requires
from customers.models import EventDefinition
from insights.reports.retention import PERIODS, RetentionReport, retention_query, retention_report
from insights.reports.views.shared import BASE_COLOUR, PALETTE, bad_csv_query, chart, csv_response, listed
from segments.models import Segment
from segments.rules.vocabulary import ANY_EVENT


def retention_input(params) -> dict:
    """?start_event= (empty: sign-up), return_event= (“*”: any), period=, cohorts=, segment=,
    compare=a,b."""
    cohorts = params.get("cohorts") or None
    if cohorts is not None and cohorts.isdigit():
        cohorts = int(cohorts)
    return {"start_event": params.get("start_event") or None, "return_event": params.get("return_event") or ANY_EVENT,
            "period": params.get("period") or "week", "cohorts": cohorts, "segment": params.get("segment") or None,
            "compare": listed(params, "compare")}


def triangle(report: RetentionReport) -> list[dict]:
    """The base group's rows: each cell's rate, shown and as the shade of its background."""
    width = max((len(c.returned) for c in report.groups[0].cohorts), default=0)
    rows = []
    for cohort in report.groups[0].cohorts:
        cells = [{"count": n, "shown": percent(rate), "shade": _shade(rate)}
                 for n, rate in zip(cohort.returned, cohort.rates)]
        rows.append({"cohort": cohort, "cells": cells, "blank": range(width - len(cells))})
    return rows


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def curve_rows(report: RetentionReport) -> list[dict]:
    return [{"group": group, "shown": [percent(v) for v in group.curve[1:]]} for group in report.groups]


def _shade(rate: float | None) -> str:
    """A background from white to brand blue, light enough for dark text throughout."""
    if rate is None:
        return "transparent"
    return f"rgba(79, 70, 229, {0.08 + 0.42 * rate:.2f})"


def curves(report: RetentionReport) -> str:
    periods = max(len(g.curve) for g in report.groups)
    return chart({
        "tooltip": {"trigger": "axis", "valueFormatter": None}, "legend": {"bottom": 0, "type": "scroll"},
        "grid": {"left": 56, "right": 16, "top": 24, "bottom": 56},
        "xAxis": {"type": "category", "data": [f"{report.period.title()} {i}" for i in range(periods)]},
        "yAxis": {"type": "value", "max": 100, "axisLabel": {"formatter": "{value}%"}},
        "series": [{"name": group.label, "type": "line", "connectNulls": False,
                    "color": BASE_COLOUR if i == 0 and len(report.groups) > 1 else PALETTE[i % len(PALETTE)],
                    "data": [None if v is None else round(v * 100, 1) for v in group.curve]}
                   for i, group in enumerate(report.groups)],
    })


@require_GET
@requires("reports.view")
def retention_page(request):
    params = request.GET
    chosen = retention_input(params)
    context = {
        "segments": Segment.objects.order_by("name").values_list("key", "name"),
        "events": EventDefinition.objects.order_by("-volume", "name").values_list("name", flat=True)[:200],
        "periods": PERIODS, "chosen": chosen, "can_export": request.membership.has("data.export"),
    }
    status = 200
    if params:
        try:
            report = retention_report(query=retention_query(**chosen), now=timezone.now())
            context.update(report=report, rows=triangle(report), chart=curves(report), curve_rows=curve_rows(report),
                           periods_shown=range(1, len(report.groups[0].curve)), query_string=params.urlencode())
        except DomainError as error:
            context["problems"], status = error.problems, 400
    return render(request, "insights/reports/retention.html", context, status=status)


@require_GET
@requires("data.export")
def retention_csv(request):
    try:
        report = retention_report(query=retention_query(**retention_input(request.GET)), now=timezone.now())
    except DomainError as error:
        return bad_csv_query(error)
    width = len(report.groups[0].curve) - 1
    header = ["Group", "Cohort", "Customers", *(f"Period {i}" for i in range(1, width + 1))]
    rows = ([group.label, cohort.start, cohort.size, *("" if r is None else r for r in cohort.rates)]
            for group in report.groups for cohort in group.cohorts)
    return csv_response([header, *rows], "retention.csv")
