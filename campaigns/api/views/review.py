"""/api/v1/segments/review/: the review queue (`segments.view`) and a decision on one
segment (`segments.edit`): keep (note, next_review_at), merge (into, note), archive (note)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import SegmentReview
from campaigns.review import review_archive, review_keep, review_merge, review_queue, review_segment_get
from common.api import StrictInput, validated
from common.parsers import JsonBody


class ReviewOutput(serializers.ModelSerializer):
    segment = serializers.CharField(source="segment.key")
    merged_into = serializers.CharField(source="merged_into.key", allow_null=True, default=None)

    class Meta:
        model = SegmentReview
        fields = ["id", "segment", "decision", "note", "reasons", "next_review_at", "merged_into", "decided_at"]


class DecisionInput(StrictInput):
    decision = serializers.ChoiceField(choices=["keep", "merge", "archive"])
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    next_review_at = serializers.DateField(required=False, allow_null=True, default=None,
                                           help_text="keep: back in the queue from this day (default in 90 days)")
    into = serializers.CharField(required=False, default="", allow_blank=True, help_text="merge: the segment's key")


class ReviewQueueView(APIView):
    """Segments due for review with their reasons, ?owner=me for the caller's own."""

    required_permissions = {"GET": "segments.view"}

    @extend_schema(parameters=[OpenApiParameter("owner", OpenApiTypes.STR, enum=["me", "all"])],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request):
        mine = request.query_params.get("owner") == "me"
        owner = getattr(request.actor, "user_id", None) if mine else None
        # An API key acts for no person: "me" is nobody's segments.
        items = [] if mine and owner is None else review_queue(now=timezone.now(), owner_id=owner)
        return Response({"results": [{
            "segment": item.segment.key, "name": item.segment.name, "size": item.segment.size, "owner": item.owner,
            "reasons": item.reasons,
            "last_review": ReviewOutput(item.last_review).data if item.last_review else None} for item in items]})


class ReviewDecisionView(APIView):
    required_permissions = {"POST": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(request=DecisionInput, responses={201: ReviewOutput})
    def post(self, request, key: str):
        data, now = validated(DecisionInput, request), timezone.now()
        segment = review_segment_get(key=key)
        if data["decision"] == "keep":
            review = review_keep(actor=request.actor, segment=segment, note=data["note"],
                                 next_review_at=data["next_review_at"], now=now)
        elif data["decision"] == "merge":
            review = review_merge(actor=request.actor, segment=segment, into=data["into"], note=data["note"], now=now)
        else:
            review = review_archive(actor=request.actor, segment=segment, note=data["note"], now=now)
        return Response(ReviewOutput(review).data, status=status.HTTP_201_CREATED)
