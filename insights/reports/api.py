"""/api/v1/insights/reports/: the reports' data as JSON (aggregates: `reports.view`)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from insights.reports.kpis import segment_kpis
from insights.reports.views import query_from


class SegmentKpiView(APIView):
    """KPIs of 1..10 segments (?segments=a,b) side by side, then all customers (key
    "all"); ?conversion=<event>, ?features=<event>,<event> (the busiest events if none)."""

    required_permissions = {"GET": "reports.view"}

    @extend_schema(parameters=[OpenApiParameter("segments", OpenApiTypes.STR, required=True),
                               OpenApiParameter("conversion", OpenApiTypes.STR),
                               OpenApiParameter("features", OpenApiTypes.STR)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(segment_kpis(query=query_from(request), now=timezone.now()).as_dict())
