"""/api/v1/segments/ and /<key>/: list, create, read, update, delete, preview (saved or
new), evaluate now, and freeze a snapshot."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import Code, DomainError, Problem
from common.pagination import paged
from common.parsers import JsonBody
from segments.api import serializers as s
from segments.api.views.common import ByKey, masks_pii, segment_or_404, validated, written
from segments.models import Segment
from segments.selectors.hygiene import hygiene, stale_segments
from segments.selectors.preview import Preview, as_warnings, customers_in_order, preview
from segments.services import (
    segment_create, segment_delete, segment_evaluate_request, segment_mark_used,
    segment_update, snapshot_create,
)


class SegmentListView(APIView):
    """Segments by key. Filters: ?kind=, ?status=, ?tag=, ?search= (start of key or name),
    ?review=stale (neither changed nor used for 90 days: the quarterly review list)."""

    required_permissions = {"GET": "segments.view", "POST": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(parameters=[OpenApiParameter("kind", OpenApiTypes.STR), OpenApiParameter("status", OpenApiTypes.STR),
                               OpenApiParameter("tag", OpenApiTypes.STR), OpenApiParameter("search", OpenApiTypes.STR),
                               OpenApiParameter("review", OpenApiTypes.STR, enum=["stale"])],
                   responses=paged(s.SegmentOutput))
    def get(self, request):
        now = timezone.now()
        params = request.query_params
        segments = Segment.objects.select_related("source")
        problems = []
        if params.get("kind"):
            if params["kind"] not in Segment.Kind.values:
                problems.append(Problem("kind", Code.INVALID_VALUE, "kind is dynamic, static or snapshot."))
            segments = segments.filter(kind=params["kind"])
        if params.get("status"):
            if params["status"] not in Segment.Status.values:
                problems.append(Problem("status", Code.INVALID_VALUE, "status is active, paused or archived."))
            segments = segments.filter(status=params["status"])
        if params.get("tag"):
            segments = segments.filter(tags__contains=[params["tag"]])
        if params.get("search"):
            term = params["search"]
            segments = segments.filter(key__startswith=term.lower()) | segments.filter(name__istartswith=term)
        if params.get("review"):
            if params["review"] != "stale":
                problems.append(Problem("review", Code.INVALID_VALUE,
                                        "review=stale lists segments for the quarterly review."))
            segments = segments.filter(pk__in=stale_segments(now=now).values("pk"))
        if problems:
            raise DomainError(problems=problems)
        paginator = ByKey()
        page = paginator.paginate_queryset(segments, request, view=self)
        return paginator.get_paginated_response(s.SegmentOutput(page, many=True, context={"now": now, "actor": request.actor}).data)

    @extend_schema(request=s.SegmentCreateInput, responses={201: s.SegmentWrittenOutput})
    def post(self, request):
        """Create a dynamic (with `definition`) or static segment. The answer carries
        `warnings`: unknown events in the rule and hygiene (too_small, near_duplicate)."""
        data = validated(s.SegmentCreateInput, request)
        now = timezone.now()
        segment, warnings = segment_create(actor=request.actor, now=now, **data)
        return written(request.actor, segment, as_warnings(warnings) + hygiene(segment=segment, now=now),
                        status_code=status.HTTP_201_CREATED)


class SegmentDetailView(APIView):
    required_permissions = {"GET": "segments.view", "PATCH": "segments.edit", "DELETE": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(responses=s.SegmentDetailOutput)
    def get(self, request, key: str):
        return Response(s.SegmentDetailOutput(segment_or_404(key), context={"now": timezone.now(), "actor": request.actor}).data)

    @extend_schema(request=s.SegmentUpdateInput, responses=s.SegmentWrittenOutput)
    def patch(self, request, key: str):
        """Change the fields sent. A changed definition becomes a new version and is
        evaluated at once; `warnings` as for create."""
        segment = segment_or_404(key)
        data = dict(validated(s.SegmentUpdateInput, request))
        if "persona" in data:
            data["persona"] = dict(data["persona"])
        now = timezone.now()
        segment, warnings = segment_update(actor=request.actor, segment=segment, now=now, **data)
        flags = hygiene(segment=segment, now=now, use_memberships="definition" not in data)
        return written(request.actor, segment, as_warnings(warnings) + flags)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="Other segments reference it (`referenced`)")})
    def delete(self, request, key: str):
        """Delete the segment with its history; refused (409) while other segments use it."""
        segment_delete(actor=request.actor, segment=segment_or_404(key))
        return Response(status=status.HTTP_204_NO_CONTENT)


# The API's exact preview carries the estimate too (its cost is small beside the exact
# count's), so a client can see how far an estimate lands from the truth.
_ACCURACY = {"estimate": "estimate", "exact": "both"}


def _preview_response(request, preview: Preview) -> Response:
    sample = customers_in_order(preview.sample_ids)
    estimate = preview.estimate
    return Response(s.PreviewOutput({
        "count": preview.count,
        "exact": preview.count if preview.exact else None,
        "estimate": estimate.count if estimate else None,
        "margin": estimate.margin if estimate else None,
        "sampled": estimate.sampled if estimate else None,
        "population": estimate.population if estimate else None,
        "sample": sample,
        "impact": {"would_enter": preview.would_enter, "would_exit": preview.would_exit,
                   "current_size": preview.current_size},
        "warnings": [w.as_dict() for w in preview.warnings],
    }, context={"mask_pii": masks_pii(request.actor)}).data)


class SegmentPreviewNewView(APIView):
    """Preview a definition before saving a new segment: count and sample (nothing is written)."""

    required_permissions = {"POST": "segments.view"}  # a read, sent as POST for its body
    parser_classes = [JsonBody]

    @extend_schema(request=s.NewPreviewInput, responses=s.PreviewOutput, operation_id="segments_preview_new")
    def post(self, request):
        data = validated(s.NewPreviewInput, request)
        return _preview_response(request, preview(actor=request.actor, definition=data["definition"], now=timezone.now(),
                                                  accuracy=_ACCURACY[data["accuracy"]]))


class SegmentPreviewView(APIView):
    """Preview a definition (default: the saved one) against this segment: count, sample
    and impact — how many would enter and exit versus its current members."""

    required_permissions = {"POST": "segments.view"}
    parser_classes = [JsonBody]

    @extend_schema(request=s.PreviewInput, responses=s.PreviewOutput)
    def post(self, request, key: str):
        segment = segment_or_404(key)
        data = validated(s.PreviewInput, request)
        definition = data.get("definition", segment.definition)
        if definition is None:
            raise DomainError.single(path="definition", code=Code.REQUIRED,
                                     message="This segment has no rule: send a definition to preview.")
        now = timezone.now()
        result = preview(actor=request.actor, definition=definition, now=now, segment=segment,
                         accuracy=_ACCURACY[data["accuracy"]])
        segment_mark_used(segment=segment, now=now)
        return _preview_response(request, result)


class SegmentEvaluateView(APIView):
    required_permissions = {"POST": "segments.edit"}

    @extend_schema(request=None, responses={202: inline_serializer("EvaluationQueued", {
        "key": serializers.CharField(), "queued": serializers.BooleanField(), "now": serializers.DateTimeField()})})
    def post(self, request, key: str):
        """Queue an evaluation of a dynamic segment now (the segment's `last_evaluation` follows it)."""
        segment = segment_or_404(key)
        now = timezone.now()
        segment_evaluate_request(actor=request.actor, segment=segment, now=now)
        return Response({"key": segment.key, "queued": True, "now": now.isoformat()}, status=status.HTTP_202_ACCEPTED)


class SegmentSnapshotView(APIView):
    required_permissions = {"POST": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(request=s.SnapshotInput, responses={201: s.SegmentWrittenOutput})
    def post(self, request, key: str):
        """Freeze this segment's members now into a new snapshot segment {"key", "name"}."""
        source = segment_or_404(key)
        data = validated(s.SnapshotInput, request)
        snapshot = snapshot_create(actor=request.actor, source=source, key=data["key"], name=data["name"],
                                   now=timezone.now())
        return written(request.actor, snapshot, [], status_code=status.HTTP_201_CREATED)
