"""Segment KPIs side by side against all customers (a table, charts and a CSV export),
and the KPI panel of one segment for its page. Aggregates only: no
customer is named, so `reports.view` is enough to read them."""

from __future__ import annotations

import json

from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from common.errors import DomainError
from common.pages import requires
from customers.models import EventDefinition, Survey
from insights.reports.kpis import KpiReport, kpi_query, segment_kpis
from insights.reports.views.shared import BASE_COLOUR, PALETTE, bad_csv_query, csv_response, listed
from segments.models import Segment

def query_from(request):
    return kpi_query(segments=listed(request.GET, "segments"), conversion=request.GET.get("conversion") or None,
                     features=listed(request.GET, "features"), survey=request.GET.get("survey") or None)


# (label, how to read the row's value, format): the table's rows, in order.
def table_rows(report: KpiReport) -> list[dict]:
    lines = [
        ("Customers", lambda r: r.size, "int"), ("Share of all customers", lambda r: r.share, "pct"),
        ("Growth, 30 days", lambda r: r.growth_30d, "signed_pct"), ("Growth, 90 days", lambda r: r.growth_90d, "signed_pct"),
        ("Revenue, 90 days", lambda r: r.revenue_90d, "money"), ("Share of revenue", lambda r: r.revenue_share, "pct"),
        ("Paying, 90 days", lambda r: r.paying_share, "pct"), ("ARPU a month", lambda r: r.arpu, "money"),
        ("LTV (ARPU × margin × lifespan)", lambda r: r.ltv_lifespan, "money"),
        ("LTV (ARPU × margin ÷ churn)", lambda r: r.ltv_churn, "money"),
        ("Churn, last 30 days", lambda r: r.churn_rate, "pct"),
        *((f"Retention at day {d}", (lambda d: lambda r: r.retention[f"day_{d}"])(d), "pct") for d in (7, 30, 90)),
        ("Engagement score", lambda r: r.engagement, "number"), ("NPS (latest answers)", lambda r: r.nps_score, "number"),
        ("NPS mean", lambda r: r.nps_mean, "number"), ("CSAT mean", lambda r: r.csat_mean, "number"),
    ]
    if report.conversion_event:
        lines.append((f"Did “{report.conversion_event}”, 90 days", lambda r: r.conversion, "pct"))
    lines += [(f"Used “{name}”, 30 days", (lambda n: lambda r: r.adoption[n])(name), "pct") for name in report.features]
    lines += survey_lines(report)
    out = []
    for label, read, fmt in lines:
        values = [read(row) for row in report.rows]
        out.append({"label": label, "values": values, "shown": [shown(value, fmt) for value in values]})
    return out


def survey_lines(report: KpiReport) -> list[tuple]:
    """A custom survey's question: who answered, then the mean (a scale) or each option's
    share of the answers (a choice)."""
    survey = report.survey
    if not survey:
        return []
    text = f"“{survey['text']}” ({survey['name']})"
    lines = [(f"Answered {text}", lambda r: r.survey["answered"], "pct")]
    if survey["type"] == "choice":
        lines += [(f"{text}: {survey['labels'][key]}", (lambda k: lambda r: r.survey["shares"].get(k))(key), "pct")
                  for key in survey["order"]]
    else:
        lines.append((f"Mean answer to {text}", lambda r: r.survey["mean"], "number"))
    return lines


def survey_questions() -> list[tuple[str, str]]:
    """Every custom survey question, as the form offers them: ("welcome.role", "Welcome: What is your role?")."""
    return [(f"{s.key}.{q['key']}", f"{s.name}: {q.get('text', q['key'])}")
            for s in Survey.objects.filter(kind=Survey.Kind.CUSTOM).order_by("name")
            for q in s.questions if isinstance(q, dict) and q.get("key")]


def shown(value, fmt: str) -> str:
    """A KPI as the table prints it; "—" where there is not enough data to say."""
    if value is None:
        return "—"
    if fmt == "int":
        return f"{value:,}"
    if fmt == "pct":
        return f"{value * 100:.1f}%"
    if fmt == "signed_pct":
        return f"{value * 100:+.1f}%"
    if fmt == "money":
        return f"{value:,.2f}"
    return f"{value:,.1f}"


def _bars(report: KpiReport, title: str, read, *, percent: bool) -> str:
    """One KPI per chart, a bar per segment and the base in grey."""
    values = [read(row) for row in report.rows]
    return json.dumps({"option": {
        "title": {"text": title, "left": 0, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "grid": {"left": 56, "right": 12, "top": 36, "bottom": 48},
        "xAxis": {"type": "category", "data": [row.name for row in report.rows],
                  "axisLabel": {"interval": 0, "width": 90, "overflow": "truncate"}},
        "yAxis": {"type": "value", **({"axisLabel": {"formatter": "{value}%"}} if percent else {})},
        "series": [{"type": "bar", "data": [
            {"value": None if v is None else round(v * 100, 1) if percent else v,
             "itemStyle": {"color": BASE_COLOUR if row.key == "all" else PALETTE[i % len(PALETTE)]}}
            for i, (row, v) in enumerate(zip(report.rows, values))]}],
    }})


def charts(report: KpiReport) -> list[dict]:
    specs = [("Share of customers vs share of revenue", None),
             ("ARPU a month", lambda r: r.arpu), ("Churn, last 30 days", lambda r: r.churn_rate),
             ("Retention at day 30", lambda r: r.retention["day_30"]), ("NPS", lambda r: r.nps_score)]
    out = [{"title": specs[0][0], "chart": json.dumps({"option": {
        "title": {"text": specs[0][0], "left": 0, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}}, "legend": {"bottom": 0},
        "grid": {"left": 56, "right": 12, "top": 36, "bottom": 56},
        "xAxis": {"type": "category", "data": [row.name for row in report.rows[:-1]],
                  "axisLabel": {"interval": 0, "width": 90, "overflow": "truncate"}},
        "yAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
        "series": [{"name": "Customers", "type": "bar", "color": "#94a3b8",
                    "data": [None if r.share is None else round(r.share * 100, 1) for r in report.rows[:-1]]},
                   {"name": "Revenue", "type": "bar", "color": "#4f46e5",
                    "data": [None if r.revenue_share is None else round(r.revenue_share * 100, 1)
                             for r in report.rows[:-1]]}]}})}]
    for title, read in specs[1:]:
        out.append({"title": title, "chart": _bars(report, title, read, percent="Churn" in title or "Retention" in title)})
    return out


@require_GET
@requires("reports.view")
def kpi_report(request):
    context = {"segments": Segment.objects.order_by("name").values_list("key", "name"),
               "events": EventDefinition.objects.order_by("-volume", "name").values_list("name", flat=True)[:200],
               "chosen": listed(request.GET, "segments"), "conversion": request.GET.get("conversion", ""),
               "chosen_features": ", ".join(listed(request.GET, "features")),
               "survey_questions": survey_questions(), "chosen_survey": request.GET.get("survey", ""),
               "can_export": request.membership.has("data.export")}
    status = 200
    if request.GET:
        try:
            report = segment_kpis(query=query_from(request), now=timezone.now())
            context.update(report=report, rows=table_rows(report), charts=charts(report),
                           export_query=request.GET.urlencode())
        except DomainError as error:
            context["problems"], status = error.problems, 400
    return render(request, "insights/reports/kpis.html", context, status=status)


@require_GET
@requires("data.export")
def kpi_report_csv(request):
    try:
        report = segment_kpis(query=query_from(request), now=timezone.now())
    except DomainError as error:
        return bad_csv_query(error)
    header = ["KPI", *(f"{row.name} ({row.key})" for row in report.rows)]
    lines = ([line["label"], *("" if v is None else v for v in line["values"])] for line in table_rows(report))
    return csv_response([header, *lines], "segment-kpis.csv")


@require_GET
@requires("reports.view")
def segment_kpi_panel(request, key: str):
    """The KPIs of one segment against all customers, for the segment's page (htmx)."""
    try:
        report = segment_kpis(query=kpi_query(segments=[key]), now=timezone.now())
    except DomainError:
        raise Http404 from None
    return render(request, "insights/reports/_segment_kpis.html", {"report": report, "rows": table_rows(report)})
