"""/api/v1/segments/<key>/versions/: every version of a definition, and the diff of two."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import Code, DomainError, NotFound, Problem, SegmentCode
from segments.api import serializers as s
from segments.api.views.common import int_param, segment_or_404
from segments.models import SegmentVersion
from segments.selectors.personal import definition_shown
from segments.selectors.versions import definition_diff


class SegmentVersionsView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(responses=s.VersionOutput(many=True))
    def get(self, request, key: str):
        """Every saved definition, newest first."""
        segment = segment_or_404(key)
        versions = SegmentVersion.objects.filter(segment=segment).order_by("-version")
        return Response(s.VersionOutput(versions, many=True, context={"actor": request.actor}).data)


class SegmentVersionDiffView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(parameters=[OpenApiParameter("from", OpenApiTypes.INT, required=True),
                               OpenApiParameter("to", OpenApiTypes.INT, required=True)], responses=s.DiffOutput)
    def get(self, request, key: str):
        """What changed from version `from` to version `to`: added/removed/changed paths and a unified text diff."""
        segment = segment_or_404(key)
        numbers, problems = {}, []
        for name in ("from", "to"):
            if request.query_params.get(name) in (None, ""):
                problems.append(Problem(name, Code.REQUIRED, f"Name the version in ?{name}=."))
                continue
            try:
                numbers[name] = int_param(request, name, default=None, low=1)
            except DomainError as error:
                problems += error.problems
        if problems:
            raise DomainError(problems=problems)
        found = dict(SegmentVersion.objects.filter(segment=segment, version__in=set(numbers.values()))
                     .values_list("version", "definition"))
        missing = [Problem(name, SegmentCode.UNKNOWN_VERSION, f"{segment.key} has no version {number}.")
                   for name, number in numbers.items() if number not in found]
        if missing:
            raise NotFound(problems=missing)
        before, after = (definition_shown(request.actor, found[numbers[name]]) for name in ("from", "to"))
        diff = definition_diff(before, after, labels=(f"v{numbers['from']}", f"v{numbers['to']}"))
        return Response(s.DiffOutput({"key": segment.key, "from": numbers["from"], "to": numbers["to"], **diff}).data)
