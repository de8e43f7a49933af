"""/api/v1/maturity/: the workspace's segmentation maturity (a report: `reports.view`)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.maturity import workspace_maturity


class MaturityView(APIView):
    """The level (0–4) on the ladder, each rung and the types reaching it, the segments per
    type, the practices (activated, measured, reviewed) and the next steps."""

    required_permissions = {"GET": "reports.view"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(workspace_maturity(now=timezone.now()).as_dict())
