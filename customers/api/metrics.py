"""Metrics over the REST API: the latest tenant figures and an on-demand refresh."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.metrics_refresh import metrics_refresh_request
from customers.models import MetricsSummary
from ops.api import TaskRunOutput


class MetricsSummaryOutput(serializers.ModelSerializer):
    computed_at = serializers.DateTimeField(allow_null=True, help_text="Null before the first refresh")

    class Meta:
        model = MetricsSummary
        fields = ["computed_at", "customers", "paying_customers", "revenue", "arpu", "churn_rate", "ltv_lifespan",
                  "ltv_churn", "churn_by_period", "rfm_groups", "settings"]


class MetricsView(APIView):
    """The figures of the latest refresh; before the first one, `computed_at` is null
    and every figure empty."""

    required_permissions = {"GET": "customers.view"}

    @extend_schema(responses=MetricsSummaryOutput)
    def get(self, request):
        summary = MetricsSummary.objects.first() or MetricsSummary(customers=0, paying_customers=0, revenue=0)
        return Response(MetricsSummaryOutput(summary).data)


class MetricsRefreshView(APIView):
    """Queue a refresh (or get the one already queued or running); poll the task's URL."""

    required_permissions = {"POST": "data.import"}

    @extend_schema(request=None, responses={202: TaskRunOutput})
    def post(self, request):
        run = metrics_refresh_request(actor=request.actor, now=timezone.now())
        return Response(TaskRunOutput(run).data, status=202)
