"""Overlap: pick segments → a heatmap of their pairwise overlaps and each one's
exclusive members (segments.overlap, one statement)."""

from __future__ import annotations

import json

from django.shortcuts import render
from django.views.decorators.http import require_GET

from common.pages import requires
from segments.models import Segment
from segments.selectors.hygiene import MAX_OVERLAP, overlap


def _heatmap(result: dict) -> str:
    names = [s["name"] for s in result["segments"]]
    n = len(names)
    # Cell (i, j): share of segment i's members who are also in j (the diagonal is 100%).
    cells = []
    for i in range(n):
        size = result["matrix"][i][i]
        for j in range(n):
            count = result["matrix"][i][j]
            share = round(100 * count / size, 1) if size else 0
            cells.append({"value": [j, i, share], "count": count, "jaccard": result["jaccard"][i][j]})
    return json.dumps({"option": {
        "tooltip": {"position": "top"},
        "grid": {"left": 150, "right": 24, "top": 12, "bottom": 90},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30, "interval": 0}},
        "yAxis": {"type": "category", "data": names, "inverse": True},
        "visualMap": {"min": 0, "max": 100, "orient": "horizontal", "left": "center", "bottom": 0,
                      "calculable": True, "inRange": {"color": ["#eef2ff", "#4f46e5"]}},
        "series": [{"type": "heatmap", "name": "Overlap", "data": cells,
                    "label": {"show": True, "formatter": "{@[2]}%"}}],
    }})


@require_GET
@requires("segments.view")
def segments_overlap(request):
    """`?keys=a&keys=b…` (or `?keys=a,b`): 2 to MAX_OVERLAP segments."""
    raw = [k for value in request.GET.getlist("keys") for k in value.split(",") if k.strip()]
    keys = list(dict.fromkeys(k.strip() for k in raw))
    found = {s.key: s for s in Segment.objects.filter(key__in=keys)}
    unknown = [k for k in keys if k not in found]
    error, result = None, None
    if unknown:
        error = f"No segment “{unknown[0]}” in this workspace."
    elif len(keys) > MAX_OVERLAP:
        error = f"Compare at most {MAX_OVERLAP} segments at once."
    elif len(keys) >= 2:
        result = overlap(segments=[found[k] for k in keys])
    context = {
        "all_segments": Segment.objects.exclude(status=Segment.Status.ARCHIVED).order_by("name"),
        "chosen": set(keys), "error": error, "result": result,
        "heatmap": _heatmap(result) if result else None,
        "rows": [{**s, "share": round(100 * s["exclusive"] / s["size"], 1) if s["size"] else None}
                 for s in result["segments"]] if result else [],
        "max_keys": MAX_OVERLAP,
    }
    return render(request, "segments/overlap.html", context, status=400 if error else 200)
