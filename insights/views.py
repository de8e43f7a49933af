"""Insights pages: the overview (start a clustering run or a churn model, with progress),
a clustering run's results (silhouette, cluster map, per cluster its distinguishing
features, persona draft and proposed rule with precision/recall, "create segment"), the
churn model (quality, calibration, how early, drivers, riskiest customers, predicted
LTV), the feature catalogue, and a customer's scores for the profile page."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from common.errors import Code, DomainError
from common.pages import refuse_forbidden, requires
from customers.models import MetricsSummary
from insights.features import GROUPS, catalogue
from insights.models import ChurnModel, ClusteringRun, CustomerScore, LookalikeRun
from insights.services.churn import churn_model_request
from insights.services.clustering import DEFAULT_GROUPS, clustering_run_request, segment_from_cluster
from insights.services.lookalikes import lookalike_run_request, lookalike_segment_create
from segments.models import Segment
from segments.services import segment_create

PALETTE = ["#4f46e5", "#0891b2", "#d97706", "#dc2626", "#059669", "#7c3aed", "#db2777", "#65a30d", "#475569",
           "#ea580c", "#0d9488", "#9333ea", "#2563eb", "#ca8a04", "#be123c", "#15803d", "#6d28d9", "#0369a1",
           "#a16207", "#b91c1c"]
RISKIEST = 25


def _chart(option: dict) -> str:
    return json.dumps({"option": option})


def _run_or_404(model, version: int):
    found = model.objects.filter(version=version).first()
    if found is None:
        raise Http404
    return found


@require_GET
@requires("reports.view")
def insights_home(request):
    runs = list(ClusteringRun.objects.select_related("task_run")[:10])
    models = list(ChurnModel.objects.select_related("task_run")[:5])
    context = {
        "runs": runs, "active_run": next((r for r in runs if r.is_active), None)
        or ClusteringRun.objects.filter(is_active=True).first(),
        "models": models, "active_model": ChurnModel.objects.filter(is_active=True).first(),
        "groups": list(GROUPS.items()), "default_groups": DEFAULT_GROUPS,
        "segments": Segment.objects.order_by("name").values_list("key", "name"),
        "can_run": request.membership.has("insights.run"), "can_see_maturity": request.membership.has("reports.view"),
        "pending_run": next((r for r in runs if r.status in ("queued", "running")), None),
        "pending_model": next((m for m in models if m.status in ("queued", "running")), None),
        "lookalikes": list(LookalikeRun.objects.all()[:5]),
    }
    return render(request, "insights/home.html", context)


def _int(value: str | None) -> int | str | None:
    """A form's number as an int (the service names a bad one with its code)."""
    if value in (None, ""):
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


@require_POST
@requires("insights.run")
def clustering_run_start(request):
    form = request.POST
    try:
        run = clustering_run_request(
            actor=request.membership, now=timezone.now(), algorithm=form.get("algorithm", "kmeans"),
            k=_int(form.get("k")), k_min=_int(form.get("k_min")) or 2, k_max=_int(form.get("k_max")) or 8,
            groups=form.getlist("groups"), segment=form.get("segment") or None, seed=_int(form.get("seed")) or 42)
    except DomainError as error:
        refuse_forbidden(error)
        for problem in error.problems:
            messages.error(request, f"{problem.path or 'Run'}: {problem.message}")
        return redirect("insights_home")
    messages.info(request, f"Clustering run {run.version} queued.")
    return redirect("insights_clustering_run", version=run.version)


@require_POST
@requires("insights.run")
def churn_model_train(request):
    model = churn_model_request(actor=request.membership, now=timezone.now())
    messages.info(request, f"Churn model {model.version} queued.")
    return redirect("insights_churn_model", version=model.version)


# ---------------------------------------------------------------------- clustering


def _silhouette_chart(run: ClusteringRun) -> str | None:
    if not run.silhouette:
        return None
    ks = sorted(run.silhouette, key=int)
    return _chart({
        "color": ["#4f46e5"], "tooltip": {"trigger": "axis"}, "grid": {"left": 48, "right": 16, "top": 16, "bottom": 36},
        "xAxis": {"type": "category", "name": "k", "data": ks},
        "yAxis": {"type": "value", "name": "silhouette", "scale": True},
        "series": [{"type": "bar", "data": [{"value": round(run.silhouette[k], 4),
                                              "itemStyle": {"color": "#4f46e5" if int(k) == run.k else "#c7d2fe"}}
                                             for k in ks]}],
    })


def _map_chart(run: ClusteringRun, names: dict[int, str]) -> str | None:
    if not run.projection:
        return None
    series = []
    for index in sorted({p[2] for p in run.projection}):
        series.append({"name": names.get(index, f"Cluster {index + 1}"), "type": "scatter", "symbolSize": 6,
                       "itemStyle": {"color": PALETTE[index % len(PALETTE)], "opacity": 0.7},
                       "data": [[p[0], p[1]] for p in run.projection if p[2] == index]})
    return _chart({"tooltip": {"trigger": "item"}, "legend": {"bottom": 0, "type": "scroll"},
                   "grid": {"left": 40, "right": 16, "top": 16, "bottom": 56},
                   "xAxis": {"type": "value", "name": "PC 1", "scale": True, "splitLine": {"show": False}},
                   "yAxis": {"type": "value", "name": "PC 2", "scale": True, "splitLine": {"show": False}},
                   "series": series})


def _lift_chart(lift: list[dict], color: str) -> str:
    rows = [row for row in lift if row["z"] is not None][:8]
    return _chart({
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "grid": {"left": 190, "right": 24, "top": 8, "bottom": 24},
        "xAxis": {"type": "value", "name": "σ from the base"},
        "yAxis": {"type": "category", "inverse": True, "data": [row["feature"] for row in rows],
                  "axisLabel": {"width": 180, "overflow": "truncate"}},
        "series": [{"type": "bar", "data": [{"value": row["z"], "itemStyle": {"color": color if row["z"] > 0 else "#94a3b8"}}
                                             for row in rows]}],
    })


@require_GET
@requires("reports.view")
def clustering_run_detail(request, version: int):
    run = _run_or_404(ClusteringRun, version)
    clusters = list(run.clusters.select_related("segment"))
    names = {c.index: c.persona.get("name", c.key) for c in clusters}
    cards = [{"cluster": c, "color": PALETTE[c.index % len(PALETTE)], "lift_chart": _lift_chart(c.lift, PALETTE[c.index % len(PALETTE)]),
              "suggested_key": f"{c.key}-{c.persona.get('name', '').lower().replace(' ', '-')}"[:64].strip("-")}
             for c in clusters]
    context = {"run": run, "cards": cards, "silhouette_chart": _silhouette_chart(run), "map_chart": _map_chart(run, names),
               "can_create": request.membership.has("segments.edit"), "feature_count": len(run.features)}
    return render(request, "insights/clustering_run.html", context)


@require_POST
@requires("segments.edit")
def cluster_segment_create(request, version: int, index: int):
    run = _run_or_404(ClusteringRun, version)
    cluster = run.clusters.filter(index=index).first()
    if cluster is None:
        raise Http404
    try:
        segment = segment_from_cluster(actor=request.membership, cluster=cluster, key=request.POST.get("key", ""),
                                       name=request.POST.get("name") or None, now=timezone.now())
    except DomainError as error:
        refuse_forbidden(error)
        for problem in error.problems:
            messages.error(request, f"{problem.path or 'Segment'}: {problem.message}")
        return redirect("insights_clustering_run", version=version)
    messages.success(request, f"Segment “{segment.name}” created from {cluster.key}.")
    return redirect("segments_detail", key=segment.key)


# ---------------------------------------------------------------------- churn


def _calibration_chart(model: ChurnModel) -> str:
    return _chart({
        "tooltip": {"trigger": "axis"}, "legend": {"bottom": 0},
        "grid": {"left": 48, "right": 16, "top": 16, "bottom": 56},
        "xAxis": {"type": "value", "name": "predicted", "min": 0, "max": 1},
        "yAxis": {"type": "value", "name": "observed", "min": 0, "max": 1},
        "series": [
            {"name": "Perfect", "type": "line", "data": [[0, 0], [1, 1]], "symbol": "none",
             "lineStyle": {"type": "dashed", "color": "#94a3b8"}},
            {"name": "Held-out customers", "type": "line", "color": "#4f46e5",
             "data": [[row["predicted"], row["observed"]] for row in model.calibration],
             "symbolSize": [8], "label": {"show": False}},
        ],
    })


def _lead_chart(model: ChurnModel) -> str:
    return _chart({
        "color": ["#0891b2", "#d97706"], "tooltip": {"trigger": "axis"}, "legend": {"bottom": 0},
        "grid": {"left": 48, "right": 16, "top": 16, "bottom": 56},
        "xAxis": {"type": "category", "data": [f"{row['days_ahead']} days ahead" for row in model.by_lead]},
        "yAxis": {"type": "value", "min": 0, "max": 1},
        "series": [{"name": "AUC", "type": "bar", "data": [row["auc"] for row in model.by_lead]},
                   {"name": "Churners in the riskiest fifth", "type": "bar",
                    "data": [row["churners_in_top_fifth"] for row in model.by_lead]}],
    })


def _importance_chart(model: ChurnModel) -> str:
    rows = model.importance[:8]
    return _chart({
        "color": ["#dc2626"], "tooltip": {"trigger": "axis"}, "grid": {"left": 110, "right": 24, "top": 8, "bottom": 24},
        "xAxis": {"type": "value", "name": "mean |Δ risk|"},
        "yAxis": {"type": "category", "inverse": True, "data": [GROUPS.get(r["group"], r["group"]) for r in rows]},
        "series": [{"type": "bar", "data": [r["mean_abs_contribution"] for r in rows]}],
    })


def _ltv_chart(model: ChurnModel) -> str | None:
    bins = model.ltv.get("histogram") or []
    if not bins:
        return None
    return _chart({
        "color": ["#059669"], "tooltip": {"trigger": "axis"}, "grid": {"left": 56, "right": 16, "top": 16, "bottom": 64},
        "xAxis": {"type": "category", "data": [f"{b['from']:,.0f}–{b['to']:,.0f}" for b in bins],
                  "axisLabel": {"rotate": 30}},
        "yAxis": {"type": "value", "name": "customers"},
        "series": [{"type": "bar", "data": [b["customers"] for b in bins]}],
    })


@require_GET
@requires("reports.view")
def churn_model_latest(request):
    model = ChurnModel.objects.filter(is_active=True).first() or ChurnModel.objects.first()
    if model is None:
        return redirect("insights_home")
    return redirect("insights_churn_model", version=model.version)


@require_GET
@requires("reports.view")
def churn_model_detail(request, version: int):
    model = _run_or_404(ChurnModel, version)
    finished = model.status == "succeeded"
    per_customer = request.membership.has("customers.view_pii")  # viewers read aggregates only
    riskiest = list(CustomerScore.objects.filter(model=model, churn_risk__lt=1).select_related("customer")
                    .order_by("-churn_risk")[:RISKIEST]) if finished and per_customer else []
    potential = list(CustomerScore.objects.filter(model=model, high_potential=True).select_related("customer")
                     .order_by("-predicted_ltv")[:RISKIEST]) if finished and per_customer else []
    for score in riskiest:
        score.reasons = _reasons(score.drivers)
    summary = MetricsSummary.objects.first()  # the formula LTV, beside the predicted one
    context = {
        "model": model, "finished": finished, "riskiest": riskiest, "potential": potential, "summary": summary,
        "per_customer": per_customer, "groups": GROUPS,
        "calibration_chart": _calibration_chart(model) if finished else None,
        "lead_chart": _lead_chart(model) if finished and model.by_lead else None,
        "importance_chart": _importance_chart(model) if finished and model.importance else None,
        "ltv_chart": _ltv_chart(model) if finished else None,
        "can_create": request.membership.has("segments.edit"),
    }
    return render(request, "insights/churn_model.html", context)


def _reasons(drivers: list[dict]) -> list[dict]:
    """Drivers with their group's label: "Activity +37 points", or the driver's own note."""
    return [{"label": d.get("note") or GROUPS.get(d["group"], d["group"]), "points": round(100 * d["contribution"]),
             "note": bool(d.get("note"))} for d in drivers]


@require_POST
@requires("segments.edit")
def high_risk_segment_create(request, version: int):
    _run_or_404(ChurnModel, version)
    try:
        threshold = float(request.POST.get("threshold", "0.5"))
    except ValueError:
        threshold = -1.0
    definition = {"version": 1, "match": "all", "conditions": [
        {"type": "metric", "metric": "churn_risk", "op": "gte", "value": threshold},
        {"type": "metric", "metric": "churn_risk", "op": "lt", "value": 1}]}
    try:
        if not 0 < threshold < 1:
            raise DomainError.single(path="threshold", code=Code.INVALID_VALUE, message="A risk between 0 and 1.")
        segment, _ = segment_create(
            actor=request.membership, key=request.POST.get("key", ""), name=request.POST.get("name") or "High churn risk",
            definition=definition, now=timezone.now(),
            description=f"Churn risk of at least {threshold:.0%} (not yet inactive), from churn model {version}.",
            note=f"From churn model {version}")
    except DomainError as error:
        refuse_forbidden(error)
        for problem in error.problems:
            messages.error(request, f"{problem.path or 'Segment'}: {problem.message}")
        return redirect("insights_churn_model", version=version)
    messages.success(request, f"Segment “{segment.name}” created.")
    return redirect("segments_detail", key=segment.key)


# ---------------------------------------------------------------------- catalogue and profile


@require_GET
@requires("reports.view")
def feature_catalogue(request):
    features = catalogue()
    return render(request, "insights/features.html", {
        "by_group": [(GROUPS[g], [f for f in features if f.group == g]) for g in GROUPS
                     if any(f.group == g for f in features)], "count": len(features)})


@require_GET
@requires("customers.view")
def customer_scores(request, external_id: str):
    """The profile page's churn risk, drivers and predicted LTV (an htmx partial)."""
    score = CustomerScore.objects.select_related("model", "customer").filter(customer__external_id=external_id).first()
    reasons = _reasons(score.drivers) if score else []
    return render(request, "insights/_customer_scores.html", {"score": score, "reasons": reasons})


# ---------------------------------------------------------------------- lookalikes


def _problems_to_messages(request, error: DomainError, what: str) -> None:
    refuse_forbidden(error)
    for problem in error.problems:
        messages.error(request, f"{problem.path or what}: {problem.message}")


@require_POST
@requires("insights.run")
def lookalike_run_start(request):
    try:
        run = lookalike_run_request(actor=request.membership, segment=request.POST.get("segment", ""),
                                    now=timezone.now())
    except DomainError as error:
        _problems_to_messages(request, error, "Lookalikes")
        return redirect("insights_home")
    messages.info(request, f"Lookalikes of {run.seed_key} queued.")
    return redirect("insights_lookalike_run", version=run.version)


def _histogram_chart(run: LookalikeRun) -> str | None:
    if not run.histogram:
        return None
    return _chart({
        "color": ["#7c3aed"], "tooltip": {"trigger": "axis"}, "grid": {"left": 56, "right": 16, "top": 16, "bottom": 40},
        "xAxis": {"type": "category", "name": "score", "data": [f"{b['from']:.1f}–{b['to']:.1f}" for b in run.histogram]},
        "yAxis": {"type": "value", "name": "customers"},
        "series": [{"type": "bar", "data": [b["customers"] for b in run.histogram]}],
    })


@require_GET
@requires("reports.view")
def lookalike_run_detail(request, version: int):
    run = _run_or_404(LookalikeRun, version)
    return render(request, "insights/lookalikes.html", {
        "run": run, "chart": _histogram_chart(run), "can_create": request.membership.has("segments.edit"),
        "suggested_top": run.metrics.get("held_out") or 100})


@require_POST
@requires("segments.edit")
def lookalike_segment(request, version: int):
    run = _run_or_404(LookalikeRun, version)
    top = _int(request.POST.get("top"))
    try:
        segment = lookalike_segment_create(actor=request.membership, run=run, key=request.POST.get("key", ""),
                                           name=request.POST.get("name", ""), top=top, now=timezone.now())
    except DomainError as error:
        _problems_to_messages(request, error, "Segment")
        return redirect("insights_lookalike_run", version=version)
    messages.success(request, f"Segment “{segment.name}” created with the top {top:,} lookalikes.")
    return redirect("segments_detail", key=segment.key)
