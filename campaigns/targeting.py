"""STP targeting: segment → target → position. The scores of every live segment come from
insights/reports/stp.py; this is the board a marketer keeps: the weights, the segments
marked as targets and their positioning (value proposition, message and channel), each
target linked to the plays that act on it (the activation plan). Saving the board stores a
new version and an audit line; the newest version is the board in force.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from audit.services import audit_record
from campaigns.models import Play, TargetingBoard
from campaigns.review import LIVE_PLAYS
from common.actors import Actor
from common.errors import Code, DomainError, Problem
from common.jsonvalues import value_problem
from insights.reports.stp import DEFAULT_WEIGHTS, MEASURES, TargetRow, segment_scores
from segments.models import Segment
from tenants.permissions import ensure_permitted

MAX_WEIGHT = 5
CHANNELS = ("email", "in_app", "ads", "sales", "success", "product", "other")
MAX_TARGETS = 20
MAX_TEXT = 1000


# ---------------------------------------------------------------------- the board


def board_current() -> TargetingBoard | None:
    return TargetingBoard.objects.order_by("-version").first()


def board_weights(board: TargetingBoard | None) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **(board.weights if board else {})}


def targeting_rows(*, weights: dict[str, float], targets: list[dict], now: datetime) -> list[TargetRow]:
    """Every live segment with members, scored with `weights` against `targets`, ranked."""
    rows = segment_scores(weights=weights, target_keys=[t["segment"] for t in targets], now=now)
    chosen = {t["segment"]: t for t in targets}
    plays = _plays([r.key for r in rows if r.key in chosen])
    for row in rows:
        row.target, row.plays = chosen.get(row.key), plays.get(row.key, [])
    return rows


def _plays(keys: list[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for play in Play.objects.filter(segment__key__in=keys, status__in=LIVE_PLAYS).select_related("segment"):
        found.setdefault(play.segment.key, []).append({"id": play.pk, "name": play.name, "status": play.status})
    return found


# ---------------------------------------------------------------------- saving a version


def _weights_problems(weights: Any) -> tuple[dict[str, float], list[Problem]]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS), []
    if not isinstance(weights, dict):
        return {}, [Problem("weights", Code.INVALID_TYPE, "Weights are an object of measure → number.")]
    problems = [Problem(f"weights.{name}", Code.UNKNOWN_FIELD, f"Measures: {', '.join(MEASURES)}.")
                for name in weights if name not in MEASURES]
    for name, value in weights.items():
        if name in MEASURES and (isinstance(value, bool) or not isinstance(value, (int, float))
                                 or not 0 <= value <= MAX_WEIGHT):
            problems.append(Problem(f"weights.{name}", Code.OUT_OF_RANGE, f"A weight from 0 to {MAX_WEIGHT}."))
    return {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in weights.items() if k in MEASURES and not problems}}, problems


def _targets_problems(targets: Any) -> tuple[list[dict], list[Problem]]:
    if not isinstance(targets, list):
        return [], [Problem("targets", Code.INVALID_TYPE, "Targets are a list.")]
    if len(targets) > MAX_TARGETS:
        return [], [Problem("targets", Code.TOO_MANY, f"At most {MAX_TARGETS} targets.")]
    known = set(Segment.objects.exclude(status=Segment.Status.ARCHIVED)
                .filter(key__in=[t.get("segment") for t in targets if isinstance(t, dict)]).values_list("key", flat=True))
    cleaned, problems, seen = [], [], set()
    for i, target in enumerate(targets):
        path = f"targets[{i}]"
        if not isinstance(target, dict):
            problems.append(Problem(path, Code.INVALID_TYPE, "A target is an object."))
            continue
        problems += [Problem(f"{path}.{k}", Code.UNKNOWN_FIELD, "Not a field of a target.")
                     for k in target if k not in ("segment", "value_proposition", "message", "channel")]
        key = target.get("segment")
        if key not in known:
            problems.append(Problem(f"{path}.segment", Code.UNKNOWN_SEGMENT, f"No live segment “{key}”."))
        elif key in seen:
            problems.append(Problem(f"{path}.segment", Code.DUPLICATE, f"“{key}” is a target already."))
        seen.add(key)
        for name in ("value_proposition", "message"):
            text = target.get(name, "")
            if not isinstance(text, str) or len(text) > MAX_TEXT:
                problems.append(Problem(f"{path}.{name}", Code.INVALID_VALUE, f"Text up to {MAX_TEXT} characters."))
        if target.get("channel", "email") not in CHANNELS:
            problems.append(Problem(f"{path}.channel", Code.INVALID_CHOICE, f"Channels: {', '.join(CHANNELS)}."))
        cleaned.append({"segment": key, "value_proposition": str(target.get("value_proposition", "")).strip(),
                        "message": str(target.get("message", "")).strip(), "channel": target.get("channel", "email")})
    return cleaned, problems


@transaction.atomic
def board_save(*, actor: Actor, weights: Any, targets: Any, note: Any = "", now: datetime) -> TargetingBoard:
    """A new version of the board (weights and targets with their positioning), audited."""
    ensure_permitted(actor, "segments.edit")
    if hostile := value_problem({"weights": weights, "targets": targets, "note": note}):
        raise DomainError(problems=[hostile])
    clean_weights, problems = _weights_problems(weights)
    clean_targets, more = _targets_problems(targets)
    problems += more
    if not isinstance(note, str) or len(note) > 500:
        problems.append(Problem("note", Code.INVALID_VALUE, "A note up to 500 characters."))
    if problems:
        raise DomainError(problems=problems)
    list(TargetingBoard.objects.select_for_update().order_by("-version")[:1])  # one saver at a time after the first
    version = (TargetingBoard.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    board = TargetingBoard.objects.create(version=version, weights=clean_weights, targets=clean_targets,
                                          note=note.strip(), author_id=getattr(actor, "user_id", None), created_at=now)
    audit_record(actor=actor, action="targeting.board_saved", target=board, target_label=f"v{version}",
                 changes={"weights": clean_weights, "targets": [t["segment"] for t in clean_targets]})
    return board
