"""What every report page uses: list parameters, the charts' palette, shown durations
and the CSV response (through the one safe CSV writer)."""

from __future__ import annotations

import json

from django.http import HttpResponseBadRequest, StreamingHttpResponse

from common.csv import stream_rows
from common.errors import DomainError

PALETTE = ["#4f46e5", "#0891b2", "#d97706", "#dc2626", "#059669", "#7c3aed", "#db2777", "#65a30d", "#ea580c",
           "#0d9488", "#475569"]
BASE_COLOUR = "#94a3b8"


def listed(params, name: str) -> list[str]:
    """?name=a,b or ?name=a&name=b (forms send the second)."""
    return [item.strip() for value in params.getlist(name) for item in value.split(",") if item.strip()]


def chart(option: dict) -> str:
    return json.dumps({"option": option})


def duration(seconds: float | None) -> str:
    """A time between steps as a person reads it: 45 s, 12 min, 5.5 h, 3.2 d; "—" without one."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def csv_response(rows, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream_rows(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def bad_csv_query(error: DomainError) -> HttpResponseBadRequest:
    return HttpResponseBadRequest("; ".join(f"{p.path}: {p.message}" for p in error.problems),
                                  content_type="text/plain; charset=utf-8")
