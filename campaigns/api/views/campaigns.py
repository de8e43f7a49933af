"""/api/v1/campaigns/: create, read, update; launch, pause, cancel; preview; results
against the holdout; the send log; the treatment arm's hashed audience."""

from __future__ import annotations

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api import serializers as s
from campaigns.api.views.common import CSV, choice_param, csv_response, cursor_page, Log, object_or_404, validated
from campaigns.models import Campaign, Send
from campaigns.services import campaigns as campaign_services
from campaigns.services import exports
from common.errors import CampaignCode, Code, DomainError, Problem
from common.pagination import paged
from common.parsers import JsonBody
from customers.models import Customer
from segments.models import Segment


class CampaignListView(APIView):
    """Campaigns, newest first. Filters: ?status=, ?channel=, ?segment=<key>, ?play_id=."""

    required_permissions = {"GET": "campaigns.view", "POST": "campaigns.edit"}
    parser_classes = [JsonBody]

    @extend_schema(parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=Campaign.Status.values),
                               OpenApiParameter("channel", OpenApiTypes.STR, enum=Campaign.Channel.values),
                               OpenApiParameter("segment", OpenApiTypes.STR, description="A segment key"),
                               OpenApiParameter("play_id", OpenApiTypes.INT),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=paged(s.CampaignOutput))
    def get(self, request):
        params, problems = request.query_params, []
        campaigns = Campaign.objects.select_related("segment")
        if (value := choice_param(params, "status", Campaign.Status.values, problems)) is not None:
            campaigns = campaigns.filter(status=value)
        if (value := choice_param(params, "channel", Campaign.Channel.values, problems)) is not None:
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
        return cursor_page(request, self, campaigns, s.CampaignOutput)

    @extend_schema(request=s.CampaignInput, responses={201: s.CampaignOutput})
    def post(self, request):
        campaign = campaign_services.campaign_create(actor=request.actor, **validated(s.CampaignInput, request))
        return Response(s.CampaignOutput(object_or_404(Campaign, campaign.pk, related=["segment"])).data,
                        status=status.HTTP_201_CREATED)


class CampaignDetailView(APIView):
    required_permissions = {"GET": "campaigns.view", "PATCH": "campaigns.edit"}
    parser_classes = [JsonBody]

    @extend_schema(responses=s.CampaignOutput)
    def get(self, request, pk: int):
        return Response(s.CampaignOutput(object_or_404(Campaign, pk, related=["segment"])).data)

    @extend_schema(request=s.CampaignUpdateInput, responses=s.CampaignOutput)
    def patch(self, request, pk: int):
        campaign = campaign_services.campaign_update(actor=request.actor, campaign=object_or_404(Campaign, pk),
                                            **validated(s.CampaignUpdateInput, request))
        return Response(s.CampaignOutput(object_or_404(Campaign, campaign.pk, related=["segment"])).data)


class CampaignLaunchView(APIView):
    """Draft or paused → scheduled (its next occasion) or running (on entry). Audited."""

    required_permissions = {"POST": "campaigns.launch"}

    @extend_schema(request=None, responses=s.CampaignOutput)
    def post(self, request, pk: int):
        campaign = campaign_services.campaign_launch(actor=request.actor, campaign=object_or_404(Campaign, pk), now=timezone.now())
        return Response(s.CampaignOutput(object_or_404(Campaign, campaign.pk, related=["segment"])).data)


class CampaignPauseView(APIView):
    """Scheduled or running → paused (sending stops between batches). Audited."""

    required_permissions = {"POST": "campaigns.launch"}
    parser_classes = [JsonBody]

    @extend_schema(request=s.PauseInput, responses=s.CampaignOutput)
    def post(self, request, pk: int):
        campaign = object_or_404(Campaign, pk)
        data = validated(s.PauseInput, request)
        campaign = campaign_services.campaign_pause(actor=request.actor, campaign=campaign, reason=data["reason"])
        return Response(s.CampaignOutput(object_or_404(Campaign, campaign.pk, related=["segment"])).data)


class CampaignCancelView(APIView):
    """Any unfinished campaign → cancelled, for good. Audited."""

    required_permissions = {"POST": "campaigns.launch"}

    @extend_schema(request=None, responses=s.CampaignOutput)
    def post(self, request, pk: int):
        campaign = campaign_services.campaign_cancel(actor=request.actor, campaign=object_or_404(Campaign, pk), now=timezone.now())
        return Response(s.CampaignOutput(object_or_404(Campaign, campaign.pk, related=["segment"])).data)


class CampaignPreviewView(APIView):
    """The content rendered for one customer (`customer_id`), else the segment's first
    member, else a sample. Personal data is the sample's without `customers.view_pii`."""

    required_permissions = {"POST": "campaigns.view"}  # a read, sent as POST for its body
    parser_classes = [JsonBody]

    @extend_schema(request=s.CampaignPreviewInput, responses=s.CampaignPreviewOutput)
    def post(self, request, pk: int):
        campaign = object_or_404(Campaign, pk)
        data = validated(s.CampaignPreviewInput, request)
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
        campaign = object_or_404(Campaign, pk)
        return Response(s.ResultsOutput(campaign_services.campaign_results(actor=request.actor, campaign=campaign,
                                                                  now=timezone.now())).data)


class CampaignSendsView(APIView):
    """The send log, newest first (keyset pages). Filter: ?status=."""

    required_permissions = {"GET": "campaigns.view"}

    @extend_schema(parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=Send.Status.values),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=paged(s.SendOutput))
    def get(self, request, pk: int):
        campaign = object_or_404(Campaign, pk)
        problems: list[Problem] = []
        sends = Send.objects.filter(campaign=campaign).select_related("customer")
        if (value := choice_param(request.query_params, "status", Send.Status.values, problems)) is not None:
            sends = sends.filter(status=value)
        if problems:
            raise DomainError(problems=problems)
        return cursor_page(request, self, sends, s.SendOutput, paginator=Log)


class CampaignAudienceView(APIView):
    """The campaign's treatment members as SHA-256-hashed, normalised emails and phones
    (CSV, streamed), for upload to ad platforms. Needs `data.export`; audited."""

    required_permissions = {"GET": "data.export"}

    @extend_schema(responses=CSV)
    def get(self, request, pk: int):
        campaign = object_or_404(Campaign, pk, related=["segment"])
        now = timezone.now()
        chunks = exports.campaign_audience_export(actor=request.actor, campaign=campaign, now=now)
        return csv_response(chunks, f"campaign-{campaign.pk}-audience-{now:%Y%m%d-%H%M}.csv")


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
        return csv_response(chunks, f"segment-{segment.key}-audience-{timezone.now():%Y%m%d-%H%M}.csv")
