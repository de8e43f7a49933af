"""Input checks the reports share: a segment's key, named at its path."""

from __future__ import annotations

from typing import Any

from common.errors import Code, Problem
from common.jsonvalues import text_problem
from segments.models import Segment


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


def unprefixed(problem: Problem) -> Problem:
    """A problem of a one-condition definition parsed for a report, at the report's own
    path: `conditions[0].steps[1]` → `steps[1]`."""
    path = problem.path.removeprefix("conditions[0].").removeprefix("conditions[0]")
    return Problem(path, problem.code, problem.message)
