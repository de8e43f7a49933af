"""/targeting/: the STP board — segments ranked on size, value, growth, reachability and
engagement less their overlap with the targets, with editable weights (?w_<measure>= to
re-rank before saving), targets marked with their positioning, the plays acting on each
target, and the board's saved versions."""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from campaigns.models import TargetingBoard
from campaigns.targeting import CHANNELS, MAX_WEIGHT, board_current, board_save, board_weights, targeting_rows
from common.errors import DomainError
from common.pages import refuse_forbidden, requires
from insights.reports.stp import MEASURES

LABELS = {"size": "Size", "value": "Value (revenue per member, 90 days)", "growth": "Growth (30 days)",
          "reachability": "Reachability (consented)", "engagement": "Engagement", "overlap": "Overlap with targets"}


def _preview_weights(params, saved: dict[str, float]) -> dict[str, float]:
    weights = dict(saved)
    for name in MEASURES:
        raw = params.get(f"w_{name}")
        try:
            value = float(raw) if raw not in (None, "") else None
        except ValueError:
            value = None
        if value is not None and 0 <= value <= MAX_WEIGHT:
            weights[name] = value
    return weights


def _json(text: str, fallback):
    try:
        return json.loads(text)
    except ValueError:
        return fallback if not text else text  # not JSON: the service reports it at its path


@require_GET
@requires("segments.view")
def targeting_page(request):
    return _board(request)


@require_POST
@requires("segments.edit")
def targeting_save(request):
    weights, targets = _json(request.POST.get("weights", ""), None), _json(request.POST.get("targets", ""), [])
    try:
        saved = board_save(actor=request.membership, weights=weights, targets=targets,
                           note=request.POST.get("note", ""), now=timezone.now())
    except DomainError as error:
        refuse_forbidden(error)
        return _board(request, problems=error.problems, status=400)
    messages.success(request, f"Targeting board saved as version {saved.version}.")
    return redirect("targeting_board")


def _board(request, *, problems=(), status=200):
    board, now = board_current(), timezone.now()
    weights = _preview_weights(request.GET, board_weights(board))
    rows = targeting_rows(weights=weights, targets=board.targets if board else [], now=now)
    state = {row.key: {"on": bool(row.target), "value_proposition": (row.target or {}).get("value_proposition", ""),
                       "message": (row.target or {}).get("message", ""),
                       "channel": (row.target or {}).get("channel", "email")} for row in rows}
    return render(request, "campaigns/targeting.html", {
        "board": board, "rows": rows, "weights": weights, "measures": [(m, LABELS[m]) for m in MEASURES],
        "state": state, "channels": CHANNELS, "problems": list(problems), "max_weight": MAX_WEIGHT,
        "versions": TargetingBoard.objects.all()[:20], "can_edit": request.membership.has("segments.edit"),
    }, status=status)
