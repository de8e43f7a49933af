"""/api/v1/insights/: the feature catalogue, clustering runs and their clusters (with a
segment from a cluster's proposal), churn models, and per-customer scores.

Aggregates (runs, clusters, model quality) need `reports.view`; per-customer scores
`customers.view`; starting a run `insights.run`; a segment from a proposal `segments.edit`.
"""

from __future__ import annotations

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import validated
from common.pagination import Newest, cursor_page, paged
from common.errors import Code, DomainError, Problem
from common.parsers import JsonBody
from insights.api import serializers as s
from insights.features import catalogue
from insights.models import ChurnModel, ClusteringRun, CustomerScore, LookalikeRun
from insights.services.churn import churn_model_request
from insights.services.clustering import clustering_run_request, segment_from_cluster
from insights.services.lookalikes import lookalike_run_request, lookalike_segment_create
from segments.api.serializers import SegmentOutput

MAX_VERSION = 2**31 - 1


def _version(model, version: int, *, related=()):
    found = model.objects.prefetch_related(*related).filter(version=version).first() if version <= MAX_VERSION else None
    if found is None:
        raise Http404
    return found


class ByVersion(Newest):
    ordering = "-version"


class FeatureCatalogueView(APIView):
    """The features the models read, with where each comes from."""

    required_permissions = {"GET": "reports.view"}

    @extend_schema(responses=s.FeatureOutput(many=True))
    def get(self, request):
        return Response(s.FeatureOutput([f.as_json() for f in catalogue()], many=True).data)


class ClusteringRunListView(APIView):
    required_permissions = {"GET": "reports.view", "POST": "insights.run"}
    parser_classes = [JsonBody]

    @extend_schema(parameters=[OpenApiParameter("limit", OpenApiTypes.INT)], responses=paged(s.ClusteringRunOutput))
    def get(self, request):
        return cursor_page(request, self, ClusteringRun.objects.all(), s.ClusteringRunOutput, paginator=ByVersion)

    @extend_schema(request=s.ClusteringRunInput, responses={202: s.ClusteringRunOutput})
    def post(self, request):
        run = clustering_run_request(actor=request.actor, now=timezone.now(), **validated(s.ClusteringRunInput, request))
        return Response(s.ClusteringRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class ClusteringRunDetailView(APIView):
    required_permissions = {"GET": "reports.view"}

    @extend_schema(responses=s.ClusteringRunDetailOutput)
    def get(self, request, version: int):
        return Response(s.ClusteringRunDetailOutput(_version(ClusteringRun, version, related=["clusters"])).data)


class SegmentFromClusterView(APIView):
    """A dynamic segment from a cluster's proposed rule, its persona card filled in."""

    required_permissions = {"POST": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(request=s.SegmentFromClusterInput, responses={201: SegmentOutput})
    def post(self, request, version: int, index: int):
        run = _version(ClusteringRun, version)
        cluster = run.clusters.filter(index=index).first()
        if cluster is None:
            raise Http404
        data, now = validated(s.SegmentFromClusterInput, request), timezone.now()
        segment = segment_from_cluster(actor=request.actor, cluster=cluster, key=data["key"], name=data["name"] or None,
                                       now=now)
        return Response(SegmentOutput(segment, context={"now": now, "actor": request.actor}).data,
                        status=status.HTTP_201_CREATED)


class ChurnModelListView(APIView):
    required_permissions = {"GET": "reports.view", "POST": "insights.run"}
    parser_classes = [JsonBody]

    @extend_schema(parameters=[OpenApiParameter("limit", OpenApiTypes.INT)], responses=paged(s.ChurnModelOutput))
    def get(self, request):
        return cursor_page(request, self, ChurnModel.objects.all(), s.ChurnModelOutput, paginator=ByVersion)

    @extend_schema(request=s.ChurnModelInput, responses={202: s.ChurnModelOutput})
    def post(self, request):
        model = churn_model_request(actor=request.actor, now=timezone.now(), **validated(s.ChurnModelInput, request))
        return Response(s.ChurnModelOutput(model).data, status=status.HTTP_202_ACCEPTED)


class ChurnModelDetailView(APIView):
    required_permissions = {"GET": "reports.view"}

    @extend_schema(responses=s.ChurnModelOutput)
    def get(self, request, version: int):
        return Response(s.ChurnModelOutput(_version(ChurnModel, version)).data)


class ByRisk(Newest):
    ordering = ("-churn_risk", "customer_id")


class ScoreListView(APIView):
    """Customers' scores from the active churn model, riskiest first. ?customer=<external id>
    for one; ?min_risk=0.5; ?high_potential=true for the high-potential new sign-ups."""

    required_permissions = {"GET": "customers.view"}

    @extend_schema(parameters=[OpenApiParameter("customer", OpenApiTypes.STR),
                               OpenApiParameter("min_risk", OpenApiTypes.FLOAT),
                               OpenApiParameter("high_potential", OpenApiTypes.BOOL),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=paged(s.ScoreOutput))
    def get(self, request):
        params, problems = request.query_params, []
        scores = CustomerScore.objects.select_related("customer", "model")
        if params.get("customer"):
            scores = scores.filter(customer__external_id=params["customer"])
        if params.get("min_risk"):
            try:
                risk = float(params["min_risk"])
                if not 0 <= risk <= 1:
                    raise ValueError
                scores = scores.filter(churn_risk__gte=risk)
            except ValueError:
                problems.append(Problem("min_risk", Code.INVALID_VALUE, "A risk between 0 and 1."))
        if params.get("high_potential"):
            if params["high_potential"] not in ("true", "false"):
                problems.append(Problem("high_potential", Code.INVALID_VALUE, "true or false."))
            else:
                scores = scores.filter(high_potential=params["high_potential"] == "true")
        if problems:
            raise DomainError(problems=problems)
        return cursor_page(request, self, scores, s.ScoreOutput, paginator=ByRisk)


class LookalikeRunListView(APIView):
    required_permissions = {"GET": "reports.view", "POST": "insights.run"}
    parser_classes = [JsonBody]

    @extend_schema(parameters=[OpenApiParameter("limit", OpenApiTypes.INT)], responses=paged(s.LookalikeRunOutput))
    def get(self, request):
        return cursor_page(request, self, LookalikeRun.objects.all(), s.LookalikeRunOutput, paginator=ByVersion)

    @extend_schema(request=s.LookalikeRunInput, responses={202: s.LookalikeRunOutput})
    def post(self, request):
        run = lookalike_run_request(actor=request.actor, now=timezone.now(), **validated(s.LookalikeRunInput, request))
        return Response(s.LookalikeRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class LookalikeRunDetailView(APIView):
    required_permissions = {"GET": "reports.view"}

    @extend_schema(responses=s.LookalikeRunOutput)
    def get(self, request, version: int):
        return Response(s.LookalikeRunOutput(_version(LookalikeRun, version)).data)


class LookalikeSegmentView(APIView):
    """A static segment of the run's top N, or of those scoring at least min_score."""

    required_permissions = {"POST": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(request=s.LookalikeSegmentInput, responses={201: SegmentOutput})
    def post(self, request, version: int):
        run, now = _version(LookalikeRun, version), timezone.now()
        segment = lookalike_segment_create(actor=request.actor, run=run, now=now,
                                           **validated(s.LookalikeSegmentInput, request))
        return Response(SegmentOutput(segment, context={"now": now, "actor": request.actor}).data,
                        status=status.HTTP_201_CREATED)
