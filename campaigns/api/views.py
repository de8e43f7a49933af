"""/api/v1/plays/, /api/v1/campaigns/, /api/v1/webhooks/ and the ad-audience exports: thin
views over campaigns.services and campaigns.plays.services. Objects are named by id; an id of another workspace is
simply unknown here (404). Business rules and their coded problems live in the services."""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api import serializers as s
from campaigns.models import Campaign, Play, Send, WebhookDelivery, WebhookEndpoint
from campaigns.plays import services as play_services
from campaigns.services import campaigns as campaign_services
from campaigns.services import endpoints, exports
from common.api import ensure_body_within
from common.errors import CampaignCode, Code, DomainError, Problem
from customers.models import Customer
from segments.models import Segment

MAX_BODY_BYTES = 256 * 1024


# ------------------------------------------------------------------------------ helpers


def _input(serializer_class, request):
    ensure_body_within(request, MAX_BODY_BYTES)
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


def _get(model, pk: int, *, related=()):
    obj = model.objects.select_related(*related).filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


class Newest(CursorPagination):
    """Keyset pages, newest first; a cursor this list did not hand out is a coded 400."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise DomainError.single(path="cursor", code=Code.INVALID_CURSOR,
                                     message="This cursor is not one this list handed out.") from None


class Log(Newest):
    page_size = 100
    max_page_size = 1000


def _page(request, view, queryset, serializer, *, paginator=Newest, context=None):
    pager = paginator()
    page = pager.paginate_queryset(queryset, request, view=view)
    return pager.get_paginated_response(serializer(page, many=True, context=context or {}).data)


def _choice(params, name: str, choices, problems: list[Problem]) -> str | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if value not in choices:
        problems.append(Problem(name, Code.INVALID_CHOICE, f"{name} is one of {', '.join(choices)}."))
        return None
    return value


def _csv(chunks, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


CSV = {(200, "text/csv"): OpenApiTypes.STR}


# ------------------------------------------------------------------------------ plays


class PlayListView(APIView):
    """The activation plan: plays, newest first. Filters: ?segment=<key>, ?department_id=, ?status=."""

    required_permissions = {"GET": "campaigns.view", "POST": "campaigns.edit"}
    parser_classes = [JSONParser]

    @extend_schema(parameters=[OpenApiParameter("segment", OpenApiTypes.STR, description="A segment key"),
                               OpenApiParameter("department_id", OpenApiTypes.INT),
                               OpenApiParameter("status", OpenApiTypes.STR, enum=Play.Status.values),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=s.PlayOutput(many=True))
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
        if (value := _choice(params, "status", Play.Status.values, problems)) is not None:
            plays = plays.filter(status=value)
        if problems:
            raise DomainError(problems=problems)
        return _page(request, self, plays, s.PlayOutput)

    @extend_schema(request=s.PlayInput, responses={201: s.PlayOutput})
    def post(self, request):
        play = play_services.play_create(actor=request.actor, **_input(s.PlayInput, request))
        return Response(s.PlayOutput(play).data, status=status.HTTP_201_CREATED)


class PlayDetailView(APIView):
    required_permissions = {"GET": "campaigns.view", "PATCH": "campaigns.edit"}
    parser_classes = [JSONParser]

    @extend_schema(responses=s.PlayOutput)
    def get(self, request, pk: int):
        return Response(s.PlayOutput(_get(Play, pk, related=["segment"])).data)

    @extend_schema(request=s.PlayUpdateInput, responses=s.PlayOutput)
    def patch(self, request, pk: int):
        play = _get(Play, pk)
        play = play_services.play_update(actor=request.actor, play=play, **_input(s.PlayUpdateInput, request))
        return Response(s.PlayOutput(_get(Play, play.pk, related=["segment"])).data)


class PlayKpiView(APIView):
    """The play's KPI actual, computed from the data now, against its target."""

    required_permissions = {"GET": "campaigns.view"}

    @extend_schema(responses=s.KpiOutput)
    def get(self, request, pk: int):
        play = _get(Play, pk)
        return Response(s.KpiOutput(play_services.play_kpi(actor=request.actor, play=play, now=timezone.now())).data)


# ------------------------------------------------------------------------------ campaigns


class CampaignListView(APIView):
    """Campaigns, newest first. Filters: ?status=, ?channel=, ?segment=<key>, ?play_id=."""

    required_permissions = {"GET": "campaigns.view", "POST": "campaigns.edit"}
    parser_classes = [JSONParser]

    @extend_schema(parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=Campaign.Status.values),
                               OpenApiParameter("channel", OpenApiTypes.STR, enum=Campaign.Channel.values),
                               OpenApiParameter("segment", OpenApiTypes.STR, description="A segment key"),
                               OpenApiParameter("play_id", OpenApiTypes.INT),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=s.CampaignOutput(many=True))
    def get(self, request):
        params, problems = request.query_params, []
        campaigns = Campaign.objects.select_related("segment")
        if (value := _choice(params, "status", Campaign.Status.values, problems)) is not None:
            campaigns = campaigns.filter(status=value)
        if (value := _choice(params, "channel", Campaign.Channel.values, problems)) is not None:
            campaigns = campaigns.filter(channel=value)
        if params.get("segment"):
            campaigns = campaigns.filter(segment__key=params["segment"])
        if params.get("play_id"):
            if not params["play_id"].isdigit() or int(params["play_id"]) > s.MAX_ID:
                problems.append(Problem("play_id", Code.INVALID_VALUE, "A play id."))
            else:
                campaigns = campaigns.filter(play_id=int(params["play_id"]))
        if problems:
            raise DomainError(problems=problems)
        return _page(request, self, campaigns, s.CampaignOutput)

    @extend_schema(request=s.CampaignInput, responses={201: s.CampaignOutput})
    def post(self, request):
        campaign = campaign_services.campaign_create(actor=request.actor, **_input(s.CampaignInput, request))
        return Response(s.CampaignOutput(_get(Campaign, campaign.pk, related=["segment"])).data,
                        status=status.HTTP_201_CREATED)


class CampaignDetailView(APIView):
    required_permissions = {"GET": "campaigns.view", "PATCH": "campaigns.edit"}
    parser_classes = [JSONParser]

    @extend_schema(responses=s.CampaignOutput)
    def get(self, request, pk: int):
        return Response(s.CampaignOutput(_get(Campaign, pk, related=["segment"])).data)

    @extend_schema(request=s.CampaignUpdateInput, responses=s.CampaignOutput)
    def patch(self, request, pk: int):
        campaign = campaign_services.campaign_update(actor=request.actor, campaign=_get(Campaign, pk),
                                            **_input(s.CampaignUpdateInput, request))
        return Response(s.CampaignOutput(_get(Campaign, campaign.pk, related=["segment"])).data)


class CampaignLaunchView(APIView):
    """Draft or paused → scheduled (its next occasion) or running (on entry). Audited."""

    required_permissions = {"POST": "campaigns.launch"}

    @extend_schema(request=None, responses=s.CampaignOutput)
    def post(self, request, pk: int):
        campaign = campaign_services.campaign_launch(actor=request.actor, campaign=_get(Campaign, pk), now=timezone.now())
        return Response(s.CampaignOutput(_get(Campaign, campaign.pk, related=["segment"])).data)


class CampaignPauseView(APIView):
    """Scheduled or running → paused (sending stops between batches). Audited."""

    required_permissions = {"POST": "campaigns.launch"}
    parser_classes = [JSONParser]

    @extend_schema(request=s.PauseInput, responses=s.CampaignOutput)
    def post(self, request, pk: int):
        campaign = _get(Campaign, pk)
        data = _input(s.PauseInput, request)
        campaign = campaign_services.campaign_pause(actor=request.actor, campaign=campaign, reason=data["reason"])
        return Response(s.CampaignOutput(_get(Campaign, campaign.pk, related=["segment"])).data)


class CampaignCancelView(APIView):
    """Any unfinished campaign → cancelled, for good. Audited."""

    required_permissions = {"POST": "campaigns.launch"}

    @extend_schema(request=None, responses=s.CampaignOutput)
    def post(self, request, pk: int):
        campaign = campaign_services.campaign_cancel(actor=request.actor, campaign=_get(Campaign, pk), now=timezone.now())
        return Response(s.CampaignOutput(_get(Campaign, campaign.pk, related=["segment"])).data)


class CampaignPreviewView(APIView):
    """The content rendered for one customer (`customer_id`), else the segment's first
    member, else a sample. Personal data is the sample's without `customers.view_pii`."""

    required_permissions = {"POST": "campaigns.view"}  # a read, sent as POST for its body
    parser_classes = [JSONParser]

    @extend_schema(request=s.CampaignPreviewInput, responses=s.CampaignPreviewOutput)
    def post(self, request, pk: int):
        campaign = _get(Campaign, pk)
        data = _input(s.CampaignPreviewInput, request)
        customer = None
        if data.get("customer_id") is not None:
            customer = Customer.objects.filter(pk=data["customer_id"]).first()
            if customer is None:
                raise DomainError.single(path="customer_id", code=Code.UNKNOWN_CUSTOMER,
                                         message="No such customer in this workspace.")
        if data["variant"] and data["variant"] not in {v.get("key") for v in campaign.variants or []}:
            raise DomainError.single(path="variant", code=CampaignCode.UNKNOWN_VARIANT,
                                     message="No such variant in this campaign.")
        rendered = campaign_services.campaign_preview(actor=request.actor, campaign=campaign, customer=customer,
                                             variant=data["variant"])
        return Response(s.CampaignPreviewOutput({"channel": campaign.channel, "customer_id": data.get("customer_id"),
                                         "variant": data["variant"], "rendered": rendered}).data)


class CampaignResultsView(APIView):
    """Treatment vs holdout conversion to the goal event, with lift, its 95% interval and
    significance, per variant too; and the send log's counts."""

    required_permissions = {"GET": "campaigns.view"}

    @extend_schema(responses=s.ResultsOutput)
    def get(self, request, pk: int):
        campaign = _get(Campaign, pk)
        return Response(s.ResultsOutput(campaign_services.campaign_results(actor=request.actor, campaign=campaign,
                                                                  now=timezone.now())).data)


class CampaignSendsView(APIView):
    """The send log, newest first (keyset pages). Filter: ?status=."""

    required_permissions = {"GET": "campaigns.view"}

    @extend_schema(parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=Send.Status.values),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=s.SendOutput(many=True))
    def get(self, request, pk: int):
        campaign = _get(Campaign, pk)
        problems: list[Problem] = []
        sends = Send.objects.filter(campaign=campaign).select_related("customer")
        if (value := _choice(request.query_params, "status", Send.Status.values, problems)) is not None:
            sends = sends.filter(status=value)
        if problems:
            raise DomainError(problems=problems)
        return _page(request, self, sends, s.SendOutput, paginator=Log)


class CampaignAudienceView(APIView):
    """The campaign's treatment members as SHA-256-hashed, normalised emails and phones
    (CSV, streamed), for upload to ad platforms. Needs `data.export`; audited."""

    required_permissions = {"GET": "data.export"}

    @extend_schema(responses=CSV)
    def get(self, request, pk: int):
        campaign = _get(Campaign, pk, related=["segment"])
        now = timezone.now()
        chunks = exports.campaign_audience_export(actor=request.actor, campaign=campaign, now=now)
        return _csv(chunks, f"campaign-{campaign.pk}-audience-{now:%Y%m%d-%H%M}.csv")


class SegmentAudienceView(APIView):
    """A segment's members as SHA-256-hashed, normalised emails and phones (CSV, streamed).
    Needs `data.export`; audited."""

    required_permissions = {"GET": "data.export"}

    @extend_schema(responses=CSV)
    def get(self, request, key: str):
        segment = Segment.objects.filter(key=key).first()
        if segment is None:
            raise Http404
        chunks = exports.audience_export(actor=request.actor, segment=segment)
        return _csv(chunks, f"segment-{segment.key}-audience-{timezone.now():%Y%m%d-%H%M}.csv")


# ------------------------------------------------------------------------------ webhooks


def _webhook_context(request) -> dict:
    return {"show_secret": request.actor.has("campaigns.edit")}


class WebhookListView(APIView):
    """Webhook endpoints subscribed to segments' entered/exited changes. Filter: ?segment=<key>."""

    required_permissions = {"GET": "campaigns.view", "POST": "campaigns.edit"}
    parser_classes = [JSONParser]

    @extend_schema(parameters=[OpenApiParameter("segment", OpenApiTypes.STR), OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=s.WebhookOutput(many=True))
    def get(self, request):
        endpoints = WebhookEndpoint.objects.select_related("segment")
        if request.query_params.get("segment"):
            endpoints = endpoints.filter(segment__key=request.query_params["segment"])
        return _page(request, self, endpoints, s.WebhookOutput, context=_webhook_context(request))

    @extend_schema(request=s.WebhookInput, responses={201: s.WebhookOutput})
    def post(self, request):
        endpoint = endpoints.webhook_endpoint_create(actor=request.actor, **_input(s.WebhookInput, request))
        return Response(s.WebhookOutput(endpoint, context=_webhook_context(request)).data,
                        status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    required_permissions = {"GET": "campaigns.view", "PATCH": "campaigns.edit"}
    parser_classes = [JSONParser]

    @extend_schema(responses=s.WebhookOutput)
    def get(self, request, pk: int):
        return Response(s.WebhookOutput(_get(WebhookEndpoint, pk, related=["segment"]),
                                        context=_webhook_context(request)).data)

    @extend_schema(request=s.WebhookUpdateInput, responses=s.WebhookOutput)
    def patch(self, request, pk: int):
        endpoint = endpoints.webhook_endpoint_update(actor=request.actor, endpoint=_get(WebhookEndpoint, pk),
                                                    **_input(s.WebhookUpdateInput, request))
        return Response(s.WebhookOutput(_get(WebhookEndpoint, endpoint.pk, related=["segment"]),
                                        context=_webhook_context(request)).data)


class WebhookTestView(APIView):
    """POST a signed `webhook.test` message to the endpoint now and report its answer."""

    required_permissions = {"POST": "campaigns.edit"}

    @extend_schema(request=None, responses=s.WebhookTestOutput)
    def post(self, request, pk: int):
        endpoint = _get(WebhookEndpoint, pk)
        return Response(s.WebhookTestOutput(endpoints.webhook_send_test(actor=request.actor, endpoint=endpoint,
                                                                       now=timezone.now())).data)


class WebhookDeliveriesView(APIView):
    """The delivery log, newest first (keyset pages). Filter: ?status=."""

    required_permissions = {"GET": "campaigns.view"}

    @extend_schema(parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=WebhookDelivery.Status.values),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=s.DeliveryOutput(many=True))
    def get(self, request, pk: int):
        endpoint = _get(WebhookEndpoint, pk)
        problems: list[Problem] = []
        deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
        if (value := _choice(request.query_params, "status", WebhookDelivery.Status.values, problems)) is not None:
            deliveries = deliveries.filter(status=value)
        if problems:
            raise DomainError(problems=problems)
        return _page(request, self, deliveries, s.DeliveryOutput, paginator=Log)
