"""What the segment API views share: the segment named in the URL, validated input,
moments and integers from the query string, cursor pages, the written-segment answer."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone as dt_timezone

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from common.actors import Actor
from common.api import ensure_body_within
from common.errors import Code, DomainError
from common.moments import MOMENT_RANGE, utc_moment
from common.pagination import Cursor
from segments.api import serializers as s
from segments.models import Segment


MAX_BODY_BYTES = 1024 * 1024
MAX_PAGE = 1000


def segment_or_404(key: str) -> Segment:
    segment = Segment.objects.select_related("source").filter(key=key).first()
    if segment is None:
        raise Http404("No segment has this key.")
    return segment


def validated(serializer_class, request, **kwargs):
    ensure_body_within(request, MAX_BODY_BYTES)
    data = serializer_class(data=request.data, **kwargs)
    data.is_valid(raise_exception=True)
    return data.validated_data


def parse_moment(raw: str | None, *, path: str, now: datetime) -> datetime | None:
    """An ISO 8601 date or datetime from a query string. A datetime without offset is UTC;
    a date stands for the end of that UTC day (as the daily sizes do). Not after `now`."""
    if raw is None or raw == "":
        return None
    moment = None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime.combine(day + timedelta(days=1), time(), dt_timezone.utc) - timedelta(microseconds=1)
        else:
            moment = datetime.fromisoformat(raw.replace(" ", "+"))  # a "+" arrives as a space when not encoded
    except ValueError:
        raise DomainError.single(path=path, code=Code.INVALID_DATETIME,
                                 message="Use an ISO 8601 date (2026-05-31) or datetime (2026-05-31T12:00:00Z).") from None
    moment = utc_moment(moment)
    if moment is None:
        raise DomainError.single(path=path, code=Code.OUT_OF_RANGE, message=f"Times must be {MOMENT_RANGE}.")
    start = moment if len(raw) != 10 else moment - timedelta(days=1) + timedelta(microseconds=1)
    if start > now:
        raise DomainError.single(path=path, code=Code.IN_FUTURE, message="History does not reach into the future.")
    return min(moment, now)  # today, as a date: as of now


def int_param(request, name: str, *, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f" to {high:,}" if high is not None else " or more"
        raise DomainError.single(path=name, code=Code.INVALID_VALUE,
                                 message=f"`{name}` is a whole number from {low}{bound}.")
    return value


def masks_pii(actor: Actor) -> bool:
    return not actor.has("customers.view_pii")


def written(actor: Actor, segment: Segment, warnings, *, status_code: int = 200) -> Response:
    segment.refresh_from_db()
    data = s.SegmentWrittenOutput(segment, context={"now": timezone.now(), "warnings": warnings, "actor": actor}).data
    return Response(data, status=status_code)


class ByKey(Cursor):
    ordering = "key"
    page_size = 50


class ByCustomer(Cursor):
    """Keyset on customer id: pages stay cheap at any depth of a million-member segment."""

    ordering = "customer_id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = MAX_PAGE

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except drf_exceptions.NotFound:
            raise DomainError.single(path="cursor", code=Code.INVALID_CURSOR,
                                     message="This cursor is not one this list handed out.") from None


AT = OpenApiParameter("at", OpenApiTypes.STR, description="ISO date or datetime: members at that moment "
                                                          "(a date: at the end of that UTC day)")
LIMIT = OpenApiParameter("limit", OpenApiTypes.INT, description=f"Rows per page (≤ {MAX_PAGE})")
