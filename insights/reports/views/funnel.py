"""The funnel page: steps with a property filter each, the conversion window and period,
for everyone or a segment, broken down by a trait or by segments; a chart and tables, a
CSV export, and a segment of the drop-offs at any step in one click."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from common.errors import DomainError
from common.pages import refuse_forbidden, requires
from customers.models import EventDefinition
from insights.reports.funnel import (
    DEFAULT_WITHIN, FunnelReport, breakdown_traits, funnel_query, funnel_report,
)
from insights.reports.views.shared import (
    BASE_COLOUR, PALETTE, bad_csv_query, chart, csv_response, duration, listed,
)
from insights.reports.dropoffs import dropoff_segment_create
from segments.models import Segment
from segments.rules.vocabulary import FILTER_OPS, LISTS, PRESENCE, SETS

WITHIN_CHOICES = [("1h", "1 hour"), ("1d", "1 day"), ("3d", "3 days"), ("7d", "7 days"), ("14d", "14 days"),
                  ("30d", "30 days"), ("90d", "90 days")]
PERIOD_CHOICES = [("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days"), ("180d", "Last 180 days"),
                  ("365d", "Last 365 days"), ("custom", "Between dates")]
STEP_OPS = sorted(FILTER_OPS)


def funnel_input(params) -> dict:
    """The page's parameters as funnel_query's arguments: `step` (events, in order), with
    `where_property`, `where_op`, `where_value` at the same index for a step's filter;
    `within`; `period` ("30d", or "custom" with `from`, `to`); `segment`; `by` ("trait"
    with `by_trait`, or "segments" with `by_segments`)."""
    events = params.getlist("step")
    props, ops, values = (params.getlist(name) for name in ("where_property", "where_op", "where_value"))
    steps = [_step(event, _at(props, i), _at(ops, i), _at(values, i)) for i, event in enumerate(events)]
    period = params.get("period") or "30d"
    window = {"last": period} if period != "custom" else \
        {key: params[key] for key in ("from", "to") if params.get(key)}
    by = params.get("by") or ""
    breakdown = {"trait": params.get("by_trait", "")} if by == "trait" else \
        {"segments": listed(params, "by_segments")} if by == "segments" else None
    return {"steps": steps, "within": params.get("within") or DEFAULT_WITHIN, "window": window,
            "segment": params.get("segment") or None, "breakdown": breakdown}


def _at(items: list[str], index: int) -> str:
    return items[index].strip() if index < len(items) else ""


def _step(event: str, prop: str, op: str, value: str) -> dict:
    step = {"event": event.strip()}
    if prop:
        op = op or "eq"
        where = {"property": prop, "op": op}
        if op not in PRESENCE:
            where["value"] = [_typed(v.strip()) for v in value.split(",")] if op in SETS | LISTS else _typed(value)
        step["where"] = [where]
    return step


def _typed(text: str):
    """A typed filter value: a number or true/false when it reads as one, else the text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (bool, int, float)) else text


def _form_steps(params) -> list[dict]:
    """The step rows to show (two empty ones on a first visit)."""
    events = params.getlist("step") or ["", ""]
    props, ops, values = (params.getlist(name) for name in ("where_property", "where_op", "where_value"))
    return [{"event": event, "property": _at(props, i), "op": _at(ops, i) or "eq", "value": _at(values, i)}
            for i, event in enumerate(events)]


@require_GET
@requires("reports.view")
def funnel_page(request):
    params = request.GET
    context = {
        "form_steps": _form_steps(params), "ops": STEP_OPS, "within_choices": WITHIN_CHOICES,
        "period_choices": PERIOD_CHOICES, "traits": breakdown_traits(),
        "segments": Segment.objects.order_by("name").values_list("key", "name"),
        "events": EventDefinition.objects.order_by("-volume", "name").values_list("name", flat=True)[:200],
        "chosen": {"within": params.get("within") or DEFAULT_WITHIN, "period": params.get("period") or "30d",
                   "from": params.get("from", ""), "to": params.get("to", ""), "segment": params.get("segment", ""),
                   "by": params.get("by", ""), "by_trait": params.get("by_trait", ""),
                   "by_segments": listed(params, "by_segments")},
        "can_export": request.membership.has("data.export"), "can_create": request.membership.has("segments.edit"),
    }
    status = 200
    if params.getlist("step"):
        try:
            report = funnel_report(query=funnel_query(**funnel_input(params)), now=timezone.now())
            context.update(report=report, funnel_chart=_funnel_chart(report), steps=_step_rows(report),
                           groups=_group_rows(report), breakdown_chart=_breakdown_chart(report),
                           query_string=params.urlencode())
        except DomainError as error:
            context["problems"], status = error.problems, 400
    return render(request, "insights/reports/funnel.html", context, status=status)


def _step_rows(report: FunnelReport) -> list[dict]:
    return [{"step": step, "median": duration(step.median_seconds), "p90": duration(step.p90_seconds)}
            for step in report.overall.steps]


def _group_rows(report: FunnelReport) -> list[dict]:
    return [{"group": group, "entered": group.steps[0].reached, "cells": group.steps[1:],
             "converted": group.steps[-1].conversion, "median": duration(group.median_total_seconds)}
            for group in report.groups]


def _funnel_chart(report: FunnelReport) -> str:
    steps = report.overall.steps
    return chart({
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "grid": {"left": 64, "right": 16, "top": 24, "bottom": 64},
        "xAxis": {"type": "category", "data": [f"{s.number}. {s.event}" for s in steps],
                  "axisLabel": {"interval": 0, "width": 110, "overflow": "truncate"}},
        "yAxis": {"type": "value", "name": "customers"},
        "series": [
            {"name": "Reached", "type": "bar", "stack": "funnel", "color": PALETTE[0],
             "data": [s.reached for s in steps],
             "label": {"show": True, "position": "insideTop", "color": "#fff",
                       "formatter": "{c}"}},
            {"name": "Dropped here", "type": "bar", "stack": "funnel", "color": "#fecaca",
             "data": [s.dropped for s in steps]}],
    })


def _breakdown_chart(report: FunnelReport) -> str | None:
    if not report.groups:
        return None
    groups = [report.overall, *report.groups]
    return chart({
        "tooltip": {"trigger": "axis"}, "legend": {"bottom": 0, "type": "scroll"},
        "grid": {"left": 56, "right": 16, "top": 24, "bottom": 64},
        "xAxis": {"type": "category", "data": [f"{s.number}. {s.event}" for s in report.overall.steps],
                  "axisLabel": {"interval": 0, "width": 90, "overflow": "truncate"}},
        "yAxis": {"type": "value", "max": 100, "axisLabel": {"formatter": "{value}%"}},
        "series": [{"name": group.label, "type": "line",
                    "color": BASE_COLOUR if i == 0 else PALETTE[(i - 1) % len(PALETTE)],
                    "lineStyle": {"type": "dashed"} if i == 0 else {},
                    "data": [None if s.conversion is None else round(s.conversion * 100, 1) for s in group.steps]}
                   for i, group in enumerate(groups)],
    })


@require_GET
@requires("data.export")
def funnel_csv(request):
    try:
        report = funnel_report(query=funnel_query(**funnel_input(request.GET)), now=timezone.now())
    except DomainError as error:
        return bad_csv_query(error)
    header = ["Group", "Step", "Event", "Reached", "Conversion from step 1", "Conversion from previous step",
              "Dropped before this step", "Median seconds from previous step", "90th percentile seconds"]
    rows = ([group.label, step.number, step.label, step.reached, step.conversion, step.from_previous, step.dropped,
             step.median_seconds, step.p90_seconds]
            for group in [report.overall, *report.groups] for step in group.steps)
    return csv_response([header, *([("" if v is None else v) for v in row] for row in rows)], "funnel.csv")


@require_POST
@requires("segments.edit")
def funnel_dropoffs(request):
    """A segment of the drop-offs at `step`, its key made from the step's event."""
    params = QueryDict(request.POST.get("query", ""))
    try:
        query = funnel_query(**funnel_input(params))
        step = int(request.POST.get("step", "0")) if request.POST.get("step", "").isdigit() else None
        missed = query.sequence.steps[step - 1].event if step and 1 < step <= len(query.sequence.steps) else "step"
        segment = dropoff_segment_create(actor=request.membership, query=query, step=step, key=_free_key(missed),
                                         name=request.POST.get("name") or None, now=timezone.now())
    except DomainError as error:
        refuse_forbidden(error)
        for problem in error.problems:
            messages.error(request, f"{problem.path or 'Segment'}: {problem.message}")
        return redirect(f"{reverse('insights_funnel')}?{params.urlencode()}")
    messages.success(request, f"Segment “{segment.name}” created: those who dropped at step {step}.")
    return redirect("segments_detail", key=segment.key)


def _free_key(event: str) -> str:
    """dropped-before-invite_sent, or with -2, -3 … when taken."""
    stem = f"dropped-before-{slugify(event)}"[:56].strip("-") or "dropped"
    taken = set(Segment.objects.filter(key__startswith=stem).values_list("key", flat=True))
    if stem not in taken:
        return stem
    return next(f"{stem}-{n}" for n in range(2, len(taken) + 3) if f"{stem}-{n}" not in taken)
