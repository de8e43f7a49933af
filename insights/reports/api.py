"""/api/v1/insights/reports/: the reports' data as JSON (aggregates: `reports.view`).

A funnel is asked for with a JSON body (its steps carry property filters), so it is a
POST that reads and writes nothing; a segment of its drop-offs is a POST that creates
one (`segments.edit`)."""

from __future__ import annotations

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import StrictInput, validated
from common.errors import DomainError
from common.jsonvalues import text_problem
from common.parsers import JsonBody
from insights.reports.funnel import DEFAULT_WITHIN, funnel_query, funnel_report
from insights.reports.journeys import journey_report, journey_save, journey_stages
from insights.reports.kpis import segment_kpis
from insights.reports.paths import paths_query, paths_report
from insights.reports.retention import retention_query, retention_report
from insights.reports.trends import trend_query, trend_report
from insights.reports.views.kpis import query_from
from insights.reports.views.paths import paths_input
from insights.reports.views.retention import retention_input
from insights.reports.views.trends import trend_input
from insights.reports.dropoffs import dropoff_segment_create
from segments.api.serializers import SegmentOutput
from segments.models import Segment


class SegmentKpiView(APIView):
    """KPIs of 1..10 segments (?segments=a,b) side by side, then all customers (key
    "all"); ?conversion=<event>, ?features=<event>,<event> (the busiest events if none),
    ?survey=<custom survey>.<question> (each group's latest answers)."""

    required_permissions = {"GET": "reports.view"}

    @extend_schema(parameters=[OpenApiParameter("segments", OpenApiTypes.STR, required=True),
                               OpenApiParameter("conversion", OpenApiTypes.STR),
                               OpenApiParameter("features", OpenApiTypes.STR),
                               OpenApiParameter("survey", OpenApiTypes.STR)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(segment_kpis(query=query_from(request), now=timezone.now()).as_dict())


class RetentionView(APIView):
    """Cohorts (?start_event=<event>, or sign-up when absent) returning on ?return_event=
    (“*”: any event), ?period=week|month, ?cohorts=N, ?segment=<key>, ?compare=a,b: each
    group's triangle and its curve."""

    required_permissions = {"GET": "reports.view"}

    @extend_schema(parameters=[OpenApiParameter(name, OpenApiTypes.STR) for name in
                               ("start_event", "return_event", "period", "cohorts", "segment", "compare")],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request):
        query = retention_query(**retention_input(request.GET))
        return Response(retention_report(query=query, now=timezone.now()).as_dict())


class PathsView(APIView):
    """The events after (?direction=next) or before (previous) ?event= within ?period=30d
    (7d … 365d), ?depth=1..5,
    ?segment=<key>: each step's busiest events, the path's end, and the links."""

    required_permissions = {"GET": "reports.view"}

    @extend_schema(parameters=[OpenApiParameter(name, OpenApiTypes.STR) for name in
                               ("event", "direction", "depth", "period", "segment")],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(paths_report(query=paths_query(**paths_input(request.GET)), now=timezone.now()).as_dict())


class TrendView(APIView):
    """Every KPI per ?interval=day|week|month for ?periods=N, for ?segments=a,b (up to 10)
    and all customers; ?conversion=<event> for the conversion share, ?features=a,b (up to
    12; the busiest events if none) for adoption."""

    required_permissions = {"GET": "reports.view"}

    @extend_schema(parameters=[OpenApiParameter(name, OpenApiTypes.STR) for name in
                               ("segments", "interval", "periods", "conversion", "features")],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(trend_report(query=trend_query(**trend_input(request.GET)), now=timezone.now()).as_dict())


class FunnelInput(StrictInput):
    """The funnel; steps, within and window are checked as a sequence condition's."""

    steps = serializers.JSONField(help_text="2..10 of {\"event\": name, \"where\": [property filters]}")
    within = serializers.JSONField(required=False, default=DEFAULT_WITHIN,
                                   help_text="From the first step to the last, e.g. \"7d\"")
    window = serializers.JSONField(required=False, default=None,
                                   help_text="The period: {\"last\": \"30d\"} (the default) or {\"from\", \"to\"}")
    segment = serializers.JSONField(required=False, default=None, help_text="A segment's key: its members only")
    breakdown = serializers.JSONField(required=False, default=None,
                                      help_text="{\"trait\": \"country\"} or {\"segments\": [keys]}")


class FunnelDropoffInput(StrictInput):
    funnel = FunnelInput()
    step = serializers.JSONField(help_text="2..k: those who reached the step before and not this one")
    key = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class FunnelView(APIView):
    """A funnel's steps: reached, conversion from step 1 and from the previous step,
    drop-off, median and 90th-percentile seconds from the previous step; per breakdown
    group too. Unknown events are `warnings`."""

    required_permissions = {"POST": "reports.view"}
    parser_classes = [JsonBody]

    @extend_schema(request=FunnelInput, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        query = funnel_query(**validated(FunnelInput, request))
        return Response(funnel_report(query=query, now=timezone.now()).as_dict())


class FunnelDropoffView(APIView):
    """A dynamic segment of those who dropped at `step`: sequence(1..step-1) and not
    sequence(1..step), in the funnel's window (and segment)."""

    required_permissions = {"POST": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(request=FunnelDropoffInput, responses={201: SegmentOutput})
    def post(self, request):
        data, now = validated(FunnelDropoffInput, request), timezone.now()
        try:
            query = funnel_query(**data["funnel"])
        except DomainError as error:
            raise error.prefixed("funnel") from None
        segment = dropoff_segment_create(actor=request.actor, query=query, step=data["step"], key=data["key"],
                                         name=data["name"] or None, now=now)
        return Response(SegmentOutput(segment, context={"now": now, "actor": request.actor}).data,
                        status=status.HTTP_201_CREATED)


class JourneyInput(StrictInput):
    stages = serializers.JSONField(help_text="[{name, events: [names], goals, pains}], 1..8, in order")


class JourneyView(APIView):
    """A segment's journey: its stages (saved, or the defaults) with the members in each now,
    who reached each, and the median days to reach it; PUT replaces the stages."""

    required_permissions = {"GET": "reports.view", "PUT": "segments.edit"}
    parser_classes = [JsonBody]

    def _segment(self, key: str) -> Segment:
        segment = None if text_problem(key) else Segment.objects.filter(key=key).first()
        if segment is None:
            raise Http404
        return segment

    def _answer(self, segment: Segment) -> Response:
        stages, saved = journey_stages(segment)
        return Response({**journey_report(segment=segment, stages=stages, now=timezone.now()).as_dict(),
                         "saved": saved})

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, key: str):
        return self._answer(self._segment(key))

    @extend_schema(request=JourneyInput, responses=OpenApiTypes.OBJECT)
    def put(self, request, key: str):
        segment = self._segment(key)
        journey_save(actor=request.actor, segment=segment, stages=validated(JourneyInput, request)["stages"],
                     now=timezone.now())
        return self._answer(segment)
