"""/maturity/: the workspace's segmentation maturity, a report (`reports.view`) — the level on the ladder,
the types its segments use, the practices, and the next steps (insights/reports/maturity.py;
the practices: campaigns/maturity.py)."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from campaigns.maturity import workspace_maturity
from common.pages import requires
from insights.reports.maturity import TYPE_LABELS, TYPES


@require_GET
@requires("reports.view")
def maturity_page(request):
    report = workspace_maturity(now=timezone.now())
    types = [{"key": t, "label": TYPE_LABELS[t], "segments": report.types[t]} for t in TYPES]
    return render(request, "campaigns/maturity.html", {"report": report, "types": types})
