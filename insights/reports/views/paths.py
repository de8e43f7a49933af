"""The paths page: the events after (or before) a chosen one, as a Sankey chart with a
table of each step's events, counts and shares, and a CSV export."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from common.errors import DomainError
from common.pages import requires
from customers.models import EventDefinition
from insights.reports.paths import MAX_DEPTH, PathsReport, paths_query, paths_report
from insights.reports.views.shared import PALETTE, bad_csv_query, chart, csv_response
from segments.models import Segment

PERIOD_CHOICES = [("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days"), ("180d", "Last 180 days"),
                  ("365d", "Last 365 days")]
ENDED = "(path ended)"


def paths_input(params) -> dict:
    depth = params.get("depth") or "3"
    return {"event": params.get("event", ""), "window": {"last": params.get("period") or "30d"},
            "direction": params.get("direction") or "next", "depth": int(depth) if depth.isdigit() else depth,
            "segment": params.get("segment") or None}


def sankey(report: PathsReport) -> str:
    """Nodes per step (an event can be at several steps: each is its own node, so the
    chart has no cycles); links carry customers."""
    def node(step: int, event: str) -> str:
        return f"{event} · {step}" if step else event

    names = {node(0, report.event)} | {node(s, n.event) for s, nodes in enumerate(report.steps, 1) for n in nodes}
    ordered = sorted(names)
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted({n.rsplit(" · ", 1)[0] for n in names}))}
    return chart({
        "tooltip": {"trigger": "item"}, "animation": False,  # the reveal sweeps left to right for a second
        "series": [{"type": "sankey", "left": 8, "right": 120, "top": 8, "bottom": 8, "nodeGap": 10,
                    "emphasis": {"focus": "adjacency"}, "lineStyle": {"color": "gradient", "opacity": 0.35},
                    "label": {"fontSize": 11},
                    "data": [{"name": n, "itemStyle": {"color": colour[n.rsplit(" · ", 1)[0]]}} for n in ordered],
                    "links": [{"source": node(link.step - 1, link.source), "target": node(link.step, link.target),
                               "value": link.customers} for link in report.links]}],
    })


def step_columns(report: PathsReport) -> list[dict]:
    return [{"step": i, "nodes": [{"event": n.event, "customers": n.customers, "shown": _percent(n.share)}
                                  for n in nodes],
             "ended": ended, "ended_shown": _percent(ended / report.customers if report.customers else None)}
            for i, (nodes, ended) in enumerate(zip(report.steps, report.ended), 1)]


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


@require_GET
@requires("reports.view")
def paths_page(request):
    params = request.GET
    context = {"events": EventDefinition.objects.order_by("-volume", "name").values_list("name", flat=True)[:200],
               "segments": Segment.objects.order_by("name").values_list("key", "name"),
               "periods": PERIOD_CHOICES, "depths": range(1, MAX_DEPTH + 1), "chosen": paths_input(params),
               "can_export": request.membership.has("data.export")}
    status = 200
    if params.get("event") is not None:
        try:
            report = paths_report(query=paths_query(**paths_input(params)), now=timezone.now())
            context.update(report=report, chart=sankey(report), columns=step_columns(report),
                           query_string=params.urlencode())
        except DomainError as error:
            context["problems"], status = error.problems, 400
    return render(request, "insights/reports/paths.html", context, status=status)


@require_GET
@requires("data.export")
def paths_csv(request):
    try:
        report = paths_report(query=paths_query(**paths_input(request.GET)), now=timezone.now())
    except DomainError as error:
        return bad_csv_query(error)
    rows = [["Step", "Event", "Customers", "Share"]]
    for column in step_columns(report):
        share = (lambda n: "" if not report.customers else round(n / report.customers, 4))
        rows += [[column["step"], node["event"], node["customers"], share(node["customers"])] for node in column["nodes"]]
        rows.append([column["step"], ENDED, column["ended"], share(column["ended"])])
    return csv_response(rows, "paths.csv")
