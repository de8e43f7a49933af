"""Across segments: the overlap of several, and the rule language's JSON Schema."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import Code, DomainError, Problem
from segments.api import serializers as s
from segments.api.views.common import AT, parse_moment
from segments.models import Segment
from segments.rules.schema import definition_schema
from segments.selectors.hygiene import MAX_OVERLAP, overlap


class SegmentOverlapView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(parameters=[OpenApiParameter("keys", OpenApiTypes.STR, required=True,
                                                description=f"2 to {MAX_OVERLAP} keys, comma-separated"), AT],
                   responses=s.OverlapOutput)
    def get(self, request):
        """Pairwise intersections (a matrix; the diagonal is each size), Jaccard, each
        segment's exclusive count and the union — now or ?at= a past moment."""
        raw = request.query_params.get("keys", "")
        keys = [k.strip() for k in raw.split(",")] if raw.strip() else []
        if len(keys) < 2:
            raise DomainError.single(path="keys", code=Code.REQUIRED, message="Name at least two segments: ?keys=a,b.")
        if len(keys) > MAX_OVERLAP:
            raise DomainError.single(path="keys", code=Code.TOO_MANY,
                                     message=f"Compare at most {MAX_OVERLAP} segments at once.")
        at = parse_moment(request.query_params.get("at"), path="at", now=timezone.now())
        found = {seg.key: seg for seg in Segment.objects.filter(key__in=keys)}
        problems, seen = [], set()
        for index, key in enumerate(keys):
            if key in seen:
                problems.append(Problem(f"keys[{index}]", Code.DUPLICATE, f"“{key}” is listed twice."))
            elif key not in found:
                problems.append(Problem(f"keys[{index}]", Code.UNKNOWN_SEGMENT, f"No segment has the key “{key}”."))
            seen.add(key)
        if problems:
            raise DomainError(problems=problems)
        return Response(s.OverlapOutput(overlap(segments=[found[k] for k in keys], at=at)).data)


class SegmentSchemaView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="JSON Schema of a definition")})
    def get(self, request):
        """The rule language as JSON Schema (shared/specs/segment-rules.md), for builders and validators."""
        return Response(definition_schema())
