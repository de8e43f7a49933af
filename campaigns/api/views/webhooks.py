"""/api/v1/webhooks/: endpoints that receive a segment's entries and exits, a test
delivery, and the delivery log."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api import serializers as s
from campaigns.api.views.common import choice_param, cursor_page, Log, object_or_404, validated
from campaigns.models import WebhookDelivery, WebhookEndpoint
from campaigns.services import endpoints
from common.errors import DomainError, Problem
from common.pagination import paged
from common.parsers import JsonBody


def _webhook_context(request) -> dict:
    return {"show_secret": request.actor.has("campaigns.edit")}


class WebhookListView(APIView):
    """Webhook endpoints subscribed to segments' entered/exited changes. Filter: ?segment=<key>."""

    required_permissions = {"GET": "campaigns.view", "POST": "campaigns.edit"}
    parser_classes = [JsonBody]

    @extend_schema(parameters=[OpenApiParameter("segment", OpenApiTypes.STR), OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=paged(s.WebhookOutput))
    def get(self, request):
        endpoints = WebhookEndpoint.objects.select_related("segment")
        if request.query_params.get("segment"):
            endpoints = endpoints.filter(segment__key=request.query_params["segment"])
        return cursor_page(request, self, endpoints, s.WebhookOutput, context=_webhook_context(request))

    @extend_schema(request=s.WebhookInput, responses={201: s.WebhookOutput})
    def post(self, request):
        endpoint = endpoints.webhook_endpoint_create(actor=request.actor, **validated(s.WebhookInput, request))
        return Response(s.WebhookOutput(endpoint, context=_webhook_context(request)).data,
                        status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    required_permissions = {"GET": "campaigns.view", "PATCH": "campaigns.edit"}
    parser_classes = [JsonBody]

    @extend_schema(responses=s.WebhookOutput)
    def get(self, request, pk: int):
        return Response(s.WebhookOutput(object_or_404(WebhookEndpoint, pk, related=["segment"]),
                                        context=_webhook_context(request)).data)

    @extend_schema(request=s.WebhookUpdateInput, responses=s.WebhookOutput)
    def patch(self, request, pk: int):
        endpoint = endpoints.webhook_endpoint_update(actor=request.actor, endpoint=object_or_404(WebhookEndpoint, pk),
                                                    **validated(s.WebhookUpdateInput, request))
        return Response(s.WebhookOutput(object_or_404(WebhookEndpoint, endpoint.pk, related=["segment"]),
                                        context=_webhook_context(request)).data)


class WebhookTestView(APIView):
    """POST a signed `webhook.test` message to the endpoint now and report its answer."""

    required_permissions = {"POST": "campaigns.edit"}

    @extend_schema(request=None, responses=s.WebhookTestOutput)
    def post(self, request, pk: int):
        endpoint = object_or_404(WebhookEndpoint, pk)
        return Response(s.WebhookTestOutput(endpoints.webhook_send_test(actor=request.actor, endpoint=endpoint,
                                                                       now=timezone.now())).data)


class WebhookDeliveriesView(APIView):
    """The delivery log, newest first (keyset pages). Filter: ?status=."""

    required_permissions = {"GET": "campaigns.view"}

    @extend_schema(parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=WebhookDelivery.Status.values),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=paged(s.DeliveryOutput))
    def get(self, request, pk: int):
        endpoint = object_or_404(WebhookEndpoint, pk)
        problems: list[Problem] = []
        deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
        if (value := choice_param(request.query_params, "status", WebhookDelivery.Status.values, problems)) is not None:
            deliveries = deliveries.filter(status=value)
        if problems:
            raise DomainError(problems=problems)
        return cursor_page(request, self, deliveries, s.DeliveryOutput, paginator=Log)
