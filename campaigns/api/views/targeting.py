"""/api/v1/targeting/: the STP board — GET the board in force and every live segment
ranked with its measures (`segments.view`); POST a new version (`segments.edit`);
GET versions/."""

from __future__ import annotations

from dataclasses import asdict

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import TargetingBoard
from campaigns.targeting import board_current, board_save, board_weights, targeting_rows
from common.api import StrictInput, validated
from common.parsers import JsonBody


class BoardOutput(serializers.ModelSerializer):
    class Meta:
        model = TargetingBoard
        fields = ["version", "weights", "targets", "note", "created_at"]


class BoardListOutput(serializers.Serializer):
    results = BoardOutput(many=True)


class BoardInput(StrictInput):
    weights = serializers.JSONField(required=False, default=None, help_text="measure → 0..5; missing ones default")
    targets = serializers.JSONField(help_text="[{segment, value_proposition, message, channel}]")
    note = serializers.JSONField(required=False, default="")


class TargetingView(APIView):
    required_permissions = {"GET": "segments.view", "POST": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        board = board_current()
        rows = targeting_rows(weights=board_weights(board), targets=board.targets if board else [], now=timezone.now())
        return Response({"board": BoardOutput(board).data if board else None,
                         "weights": board_weights(board), "rows": [asdict(row) for row in rows]})

    @extend_schema(request=BoardInput, responses={201: BoardOutput})
    def post(self, request):
        board = board_save(actor=request.actor, now=timezone.now(), **validated(BoardInput, request))
        return Response(BoardOutput(board).data, status=status.HTTP_201_CREATED)


class TargetingVersionsView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(responses=BoardListOutput)
    def get(self, request):
        return Response({"results": BoardOutput(TargetingBoard.objects.all()[:100], many=True).data})
