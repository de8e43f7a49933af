"""Metrics pages: the overview (RFM groups, churn, ARPU, LTV) with an on-demand refresh,
and Settings → Metrics for how they are computed."""

from __future__ import annotations

import json
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from common.errors import DomainError
from customers.metrics.rfm import GROUPS
from customers.metrics_refresh import metrics_refresh_request, metrics_settings_get, metrics_settings_update
from customers.models import MetricsSettings, MetricsSummary
from ops.models import TaskRun
from common.pages import page_status, requires
from tenants.forms_settings import ProblemsForm

GROUP_LABELS = {g: g.replace("_", " ").capitalize() for g in GROUPS}


def _chart(option: dict) -> str:
    return json.dumps({"option": option})


def _active_periods(summary: MetricsSummary) -> list[dict]:
    """Periods from the first one with any customer or revenue (a young workspace would
    otherwise show a year of zeros)."""
    periods = summary.churn_by_period
    first = next((i for i, p in enumerate(periods) if p["present"] or p["revenue"]), len(periods))
    return periods[first:]


def _period_chart(summary: MetricsSummary) -> str:
    periods = _active_periods(summary)
    return _chart({
        "color": ["#dc2626", "#818cf8"],
        "tooltip": {"trigger": "axis"}, "legend": {"data": ["Churn rate", "ARPU"], "bottom": 0},
        "grid": {"left": 48, "right": 56, "top": 36, "bottom": 56},
        "xAxis": {"type": "category", "data": [p["period"] for p in periods]},
        "yAxis": [{"type": "value", "name": "Churn %", "axisLabel": {"formatter": "{value}%"}},
                  {"type": "value", "name": "ARPU"}],
        "series": [
            {"name": "Churn rate", "type": "line", "smooth": True,
             "data": [None if p["rate"] is None else round(100 * p["rate"], 2) for p in periods]},
            {"name": "ARPU", "type": "bar", "yAxisIndex": 1, "itemStyle": {"opacity": 0.55},
             "data": [None if p["arpu"] is None else round(p["arpu"], 2) for p in periods]},
        ],
    })


def _groups_chart(summary: MetricsSummary) -> str:
    groups = [g for g in GROUPS if summary.rfm_groups.get(g)]
    return _chart({
        "color": ["#4f46e5"], "tooltip": {"trigger": "axis"},
        "grid": {"left": 130, "right": 24, "top": 8, "bottom": 24},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "inverse": True, "data": [GROUP_LABELS[g] for g in groups]},
        "series": [{"type": "bar", "name": "Customers", "data": [summary.rfm_groups[g] for g in groups]}],
    })


def _pct(rate: float | None) -> float | None:
    return None if rate is None else 100 * rate


@require_GET
@requires("customers.view")
def metrics_overview(request):
    summary = MetricsSummary.objects.first()
    run = TaskRun.objects.filter(kind=TaskRun.Kind.METRICS_REFRESH).first()
    context = {
        "summary": summary, "run": run, "settings_row": metrics_settings_get(),
        "period_chart": _period_chart(summary) if summary else None,
        "groups_chart": _groups_chart(summary) if summary and summary.rfm_groups else None,
        "groups": [(GROUP_LABELS[g], summary.rfm_groups.get(g, 0)) for g in GROUPS] if summary else [],
        "periods": [{**p, "pct": _pct(p["rate"])} for p in reversed(_active_periods(summary))] if summary else [],
        "churn_pct": _pct(summary.churn_rate) if summary else None,
        "can_refresh": request.membership.has("data.import"),
        "can_configure": request.membership.has("settings.modify"),
    }
    return render(request, "customers/metrics.html", context)


@require_POST
@requires("data.import")
def metrics_refresh_view(request):
    run = metrics_refresh_request(actor=request.membership, now=timezone.now())
    if request.htmx:
        return render(request, "ops/_task_run.html", {"run": run}, status=202)
    messages.info(request, "Metrics refresh queued.")
    return redirect("metrics_overview")


class MetricsSettingsForm(ProblemsForm):
    revenue_event = forms.CharField(label="Revenue event", max_length=200)
    revenue_property = forms.CharField(label="Amount property", max_length=200)
    gross_margin = forms.DecimalField(label="Gross margin", max_digits=5, decimal_places=4)
    expected_lifespan_months = forms.DecimalField(label="Expected lifespan (months)", max_digits=7, decimal_places=2)
    churn_period = forms.ChoiceField(label="Churn period", choices=MetricsSettings.Period.choices)
    churn_inactivity_days = forms.IntegerField(label="Churned after inactive for (days)")


@require_http_methods(["GET", "POST"])
@requires("settings.modify")
def settings_metrics(request):
    current = metrics_settings_get()
    form = MetricsSettingsForm(request.POST or None, initial={
        "revenue_event": current.revenue_event, "revenue_property": current.revenue_property,
        "gross_margin": current.gross_margin, "expected_lifespan_months": current.expected_lifespan_months,
        "churn_period": current.churn_period, "churn_inactivity_days": current.churn_inactivity_days})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                metrics_settings_update(actor=request.membership, **form.cleaned_data)
            except DomainError as error:
                form.add_problems(error)
                status = page_status(error)
            else:
                messages.success(request, "Metrics settings saved; they apply from the next refresh.")
                return redirect("settings_metrics")
        else:
            status = 400
    return render(request, "settings/metrics.html", {"section": "metrics", "form": form,
                                                     "example_ltv": _example(current)}, status=status)


def _example(current: MetricsSettings) -> dict:
    """The LTV formulas with this workspace's numbers, for an ARPU of 100."""
    return {"arpu": 100, "margin": current.gross_margin.normalize(), "lifespan": current.expected_lifespan_months.normalize(),
            "ltv": (Decimal(100) * current.gross_margin * current.expected_lifespan_months).quantize(Decimal("0.01"))}
