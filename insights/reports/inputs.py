"""Input checks the reports share: a segment's key and feature events, named at their path."""

from __future__ import annotations

from typing import Any

from common.errors import Code, Problem
from common.jsonvalues import text_problem
from segments.models import Segment

MAX_FEATURES = 12
DEFAULT_FEATURES = 8  # a report without chosen features counts the workspace's busiest events


def segment_problems(segment: Any, path: str) -> list[Problem]:
    """None or "" (no segment) is fine; else a known segment's key."""
    if segment is None or segment == "":
        return []
    if not isinstance(segment, str) or len(segment) > 100:
        return [Problem(path, Code.INVALID_TYPE, "A segment's key.")]
    if found := text_problem(segment):
        return [Problem(path, *found)]
    if not Segment.objects.filter(key=segment).exists():
        return [Problem(path, Code.UNKNOWN_SEGMENT, f"No segment “{segment}”.")]
    return []


def feature_problems(names: Any) -> list[Problem]:
    """Feature events to count adoption of: up to 12 names (unknown ones are allowed — as in
    rules, an event may not have arrived yet)."""
    names = names or []
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names):
        return [Problem("features", Code.INVALID_TYPE, "A list of event names.")]
    if len(names) > MAX_FEATURES:
        return [Problem("features", Code.TOO_MANY, f"At most {MAX_FEATURES} feature events.")]
    return [Problem(f"features[{i}]", *found) for i, name in enumerate(names) if (found := text_problem(name))]
