"""The KPI trends page: a chosen KPI per day, week or month for up to ten segments and all
customers — a line chart with its table — and a CSV of every KPI."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from common.errors import DomainError
from common.pages import requires
from customers.models import EventDefinition
from insights.reports.trends import INTERVALS, TrendReport, TrendSeries, trend_query, trend_report
from insights.reports.views.shared import BASE_COLOUR, PALETTE, bad_csv_query, chart, csv_response, listed
from segments.models import Segment

# metric: (label, how the table shows it, whether the chart plots it as a percentage);
# besides these, "adoption:<event>" for each feature event of the report.
METRICS = {
    "members": ("Members at the period's end", "int", False),
    "share": ("Share of all customers", "pct", True),
    "growth": ("Growth over the previous period", "pct", True),
    "active": ("Active in the period", "pct", True),
    "revenue": ("Revenue", "money", False),
    "revenue_share": ("Share of all customers' revenue", "pct", True),
    "arpu": ("ARPU a month", "money", False),
    "churn": ("Churn rate", "pct", True),
    "ltv_lifespan": ("LTV (ARPU × margin × lifespan)", "money", False),
    "ltv_churn": ("LTV (ARPU × margin ÷ churn)", "money", False),
    "retention_7": ("Sign-up cohort retained at day 7", "pct", True),
    "retention_30": ("Sign-up cohort retained at day 30", "pct", True),
    "retention_90": ("Sign-up cohort retained at day 90", "pct", True),
    "conversion": ("Did the conversion event", "pct", True),
    "engagement": ("Engagement score (mean, nightly snapshot)", "number", False),
    "nps": ("NPS", "number", False),
    "csat": ("CSAT (mean answer)", "number", False),
}
ADOPTION = "adoption:"


def trend_input(params) -> dict:
    periods = params.get("periods") or None
    return {"segments": listed(params, "segments"), "interval": params.get("interval") or "week",
            "periods": int(periods) if periods and periods.isdigit() else periods,
            "conversion": params.get("conversion") or None, "features": listed(params, "features")}


def _shown(value, fmt: str) -> str:
    if value is None:
        return "—"
    return {"int": f"{value:,}", "pct": f"{value * 100:.1f}%", "money": f"{value:,.2f}"}.get(fmt, f"{value:,.1f}")


def metric_spec(metric: str) -> tuple[str, str, bool]:
    if metric.startswith(ADOPTION):
        return (f"Used “{metric.removeprefix(ADOPTION)}” in the period", "pct", True)
    return METRICS[metric]


def metric_values(series: TrendSeries, metric: str) -> list:
    if metric.startswith(ADOPTION):
        return series.adoption[metric.removeprefix(ADOPTION)]
    if metric.startswith("retention_"):
        return series.retention["day_" + metric.removeprefix("retention_")]
    return getattr(series, metric)


def metric_choices(features: list[str]) -> dict[str, str]:
    return {**{key: spec[0] for key, spec in METRICS.items()},
            **{ADOPTION + name: metric_spec(ADOPTION + name)[0] for name in features}}


def metric_rows(report: TrendReport, metric: str) -> list[dict]:
    fmt = metric_spec(metric)[1]
    return [{"name": s.name, "key": s.key, "shown": [_shown(v, fmt) for v in metric_values(s, metric)]}
            for s in report.series]


def metric_chart(report: TrendReport, metric: str) -> str:
    percent = metric_spec(metric)[2]
    return chart({
        "tooltip": {"trigger": "axis"}, "legend": {"bottom": 0, "type": "scroll"},
        "grid": {"left": 64, "right": 16, "top": 24, "bottom": 56},
        "xAxis": {"type": "category", "data": report.periods},
        "yAxis": {"type": "value", **({"axisLabel": {"formatter": "{value}%"}} if percent else {})},
        "series": [{"name": s.name, "type": "line", "connectNulls": False,
                    "color": BASE_COLOUR if s.key == "all" else PALETTE[i % len(PALETTE)],
                    "lineStyle": {"type": "dashed"} if s.key == "all" else {},
                    "data": [None if v is None else round(v * 100, 1) if percent else v
                             for v in metric_values(s, metric)]}
                   for i, s in enumerate(report.series)],
    })


@require_GET
@requires("reports.view")
def trends_page(request):
    params = request.GET
    chosen = trend_input(params)
    metric = params.get("metric") or "members"
    context = {"segments": Segment.objects.order_by("name").values_list("key", "name"),
               "events": EventDefinition.objects.order_by("-volume", "name").values_list("name", flat=True)[:200],
               "chosen": chosen, "chosen_features": ", ".join(chosen["features"]), "metric": metric,
               "metrics": metric_choices(chosen["features"]), "intervals": INTERVALS,
               "can_export": request.membership.has("data.export")}
    status = 200
    if params:
        try:
            report = trend_report(query=trend_query(**chosen), now=timezone.now())
            choices = metric_choices(report.features)
            metric = metric if metric in choices else "members"
            context.update(report=report, rows=metric_rows(report, metric), chart=metric_chart(report, metric),
                           metrics=choices, metric=metric, metric_label=choices[metric],
                           query_string=params.urlencode())
        except DomainError as error:
            context["problems"], status = error.problems, 400
    return render(request, "insights/reports/trends.html", context, status=status)


def segment_chart(report: TrendReport) -> str:
    """Members at each week's end (bars) and the share of them active that week (a line)."""
    series = report.series[0]
    return chart({
        "tooltip": {"trigger": "axis"}, "legend": {"bottom": 0},
        "grid": {"left": 56, "right": 56, "top": 16, "bottom": 56},
        "xAxis": {"type": "category", "data": report.periods},
        "yAxis": [{"type": "value", "name": "members"},
                  {"type": "value", "name": "active", "max": 100, "axisLabel": {"formatter": "{value}%"}}],
        "series": [{"name": "Members", "type": "bar", "color": BASE_COLOUR, "data": series.members},
                   {"name": "Active that week", "type": "line", "yAxisIndex": 1, "color": PALETTE[0],
                    "data": [None if v is None else round(v * 100, 1) for v in series.active]}],
    })


@require_GET
@requires("reports.view")
def segment_trend_panel(request, key: str):
    """The segment page's panel: 12 weeks of members and activity, with the KPI trends page a click away."""
    try:
        report = trend_report(query=trend_query(segments=[key], interval="week", periods=12), now=timezone.now())
    except DomainError:
        raise Http404 from None
    rows = [{"period": p, "members": f"{m:,}", "active": _shown(a, "pct"), "revenue": _shown(r, "money")}
            for p, m, a, r in zip(report.periods, report.series[0].members, report.series[0].active,
                                  report.series[0].revenue)]
    return render(request, "insights/reports/_segment_trends.html",
                  {"report": report, "chart": segment_chart(report), "rows": rows, "key": key})


@require_GET
@requires("data.export")
def trends_csv(request):
    try:
        report = trend_report(query=trend_query(**trend_input(request.GET)), now=timezone.now())
    except DomainError as error:
        return bad_csv_query(error)
    header, columns = csv_columns(report.features)
    rows = ([s.name, period, *("" if v is None else v for v in values)]
            for s in report.series
            for period, *values in zip(report.periods, *(metric_values(s, column) for column in columns)))
    return csv_response([header, *rows], "kpi-trends.csv")


def csv_columns(features: list[str]) -> tuple[list[str], list[str]]:
    """The CSV's header and the metric behind each column after (group, period)."""
    columns = [*METRICS, *(ADOPTION + name for name in features)]
    columns.insert(columns.index("nps") + 1, "nps_answers")
    labels = {**metric_choices(features), "nps_answers": "NPS answers"}
    return ["Group", "Period", *(labels[c] for c in columns)], columns
