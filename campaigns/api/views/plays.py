"""/api/v1/plays/: the activation plan's plays, and a play's KPI now."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api import serializers as s
from campaigns.api.views.common import choice_param, cursor_page, object_or_404, validated
from campaigns.models import Play
from campaigns.plays import services as play_services
from common.errors import Code, DomainError, Problem
from common.pagination import paged
from common.parsers import JsonBody


class PlayListView(APIView):
    """The activation plan: plays, newest first. Filters: ?segment=<key>, ?department_id=, ?status=."""

    required_permissions = {"GET": "campaigns.view", "POST": "campaigns.edit"}
    parser_classes = [JsonBody]

    @extend_schema(parameters=[OpenApiParameter("segment", OpenApiTypes.STR, description="A segment key"),
                               OpenApiParameter("department_id", OpenApiTypes.INT),
                               OpenApiParameter("status", OpenApiTypes.STR, enum=Play.Status.values),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=paged(s.PlayOutput))
    def get(self, request):
        params, problems = request.query_params, []
        plays = Play.objects.select_related("segment")
        if params.get("segment"):
            plays = plays.filter(segment__key=params["segment"])
        if params.get("department_id"):
            if not params["department_id"].isdigit() or int(params["department_id"]) > s.MAX_ID:
                problems.append(Problem("department_id", Code.INVALID_VALUE, "A department id."))
            else:
                plays = plays.filter(department_id=int(params["department_id"]))
        if (value := choice_param(params, "status", Play.Status.values, problems)) is not None:
            plays = plays.filter(status=value)
        if problems:
            raise DomainError(problems=problems)
        return cursor_page(request, self, plays, s.PlayOutput)

    @extend_schema(request=s.PlayInput, responses={201: s.PlayOutput})
    def post(self, request):
        play = play_services.play_create(actor=request.actor, **validated(s.PlayInput, request))
        return Response(s.PlayOutput(play).data, status=status.HTTP_201_CREATED)


class PlayDetailView(APIView):
    required_permissions = {"GET": "campaigns.view", "PATCH": "campaigns.edit"}
    parser_classes = [JsonBody]

    @extend_schema(responses=s.PlayOutput)
    def get(self, request, pk: int):
        return Response(s.PlayOutput(object_or_404(Play, pk, related=["segment"])).data)

    @extend_schema(request=s.PlayUpdateInput, responses=s.PlayOutput)
    def patch(self, request, pk: int):
        play = object_or_404(Play, pk)
        play = play_services.play_update(actor=request.actor, play=play, **validated(s.PlayUpdateInput, request))
        return Response(s.PlayOutput(object_or_404(Play, play.pk, related=["segment"])).data)


class PlayKpiView(APIView):
    """The play's KPI actual, computed from the data now, against its target."""

    required_permissions = {"GET": "campaigns.view"}

    @extend_schema(responses=s.KpiOutput)
    def get(self, request, pk: int):
        play = object_or_404(Play, pk)
        return Response(s.KpiOutput(play_services.play_kpi(actor=request.actor, play=play, now=timezone.now())).data)
