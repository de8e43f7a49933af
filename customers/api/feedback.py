"""Survey answers and consent over the REST API: batches in, per-item problems out."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from common.errors import DomainError, Problem
from common.pagination import Cursor
from customers.models import Consent, SurveyResponse
from customers.services import consents_submit, survey_responses_submit


class SurveyResponseOutput(serializers.ModelSerializer):
    """An answer. A comment is free text a person wrote (names, emails, phone numbers): it
    is null for readers without `customers.view_pii` (context["pii_hidden"]), as on the
    profile page."""

    external_id = serializers.CharField(source="customer.external_id")
    survey = serializers.CharField(source="survey.key")
    comment = serializers.CharField(allow_null=True, help_text="Null without customers.view_pii")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.context.get("pii_hidden", True):  # fails closed: no reader named, nothing shown
            data["comment"] = None
        return data

    class Meta:
        model = SurveyResponse
        fields = ["id", "external_id", "survey", "question", "score", "comment", "responded_at", "message_id"]


class ConsentOutput(serializers.ModelSerializer):
    external_id = serializers.CharField(source="customer.external_id")

    class Meta:
        model = Consent
        fields = ["id", "external_id", "channel", "granted", "changed_at", "source"]


class SurveyResponseInput(serializers.Serializer):
    """One answer (documents the body; customers.services checks each item)."""

    external_id = serializers.CharField(help_text="The customer")
    survey = serializers.CharField(help_text="nps, csat or a custom survey's key")
    score = serializers.IntegerField(required=False, allow_null=True, help_text="NPS 0–10, CSAT 1–5; null: a comment "
                                                                                "alone")
    question = serializers.CharField(required=False, allow_blank=True)
    comment = serializers.CharField(required=False, allow_blank=True)
    responded_at = serializers.DateTimeField(required=False, help_text="Default: now")
    message_id = serializers.CharField(required=False, help_text="Sending the same id again stores the answer once")


class SurveyResponsesInput(serializers.Serializer):
    responses = SurveyResponseInput(many=True, help_text="At most 1,000")


class ConsentInput(serializers.Serializer):
    external_id = serializers.CharField(help_text="The customer")
    channel = serializers.ChoiceField(choices=Consent.Channel.choices)
    granted = serializers.BooleanField()
    changed_at = serializers.DateTimeField(required=False, help_text="Default: now")
    source = serializers.CharField(required=False, help_text="Default: api")


class ConsentsInput(serializers.Serializer):
    consents = ConsentInput(many=True, help_text="At most 1,000")


class BatchRejection(serializers.Serializer):
    index = serializers.IntegerField()
    path = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class BatchOutput(serializers.Serializer):
    stored = serializers.IntegerField()
    rejected = BatchRejection(many=True)


def _answer(stored: int, problems) -> Response:
    if not stored and problems:
        raise DomainError(problems=[Problem(path=p.path, code=p.code, message=p.message) for p in problems])
    return Response({"stored": stored, "rejected": [
        {"index": p.index, "path": p.path, "code": p.code, "message": p.message} for p in problems]})


class ById(Cursor):
    ordering = "-id"


class SurveyResponseListView(ListAPIView):
    """Answers to NPS, CSAT and custom surveys; POST stores a batch (≤ 1,000)."""

    required_permissions = {"GET": "customers.view", "POST": "data.import"}
    serializer_class = SurveyResponseOutput
    pagination_class = ById

    def get_serializer_context(self):
        actor = getattr(self.request, "actor", None)
        return {**super().get_serializer_context(), "pii_hidden": actor is None or not actor.has("customers.view_pii")}

    def get_queryset(self):
        responses = SurveyResponse.objects.select_related("customer", "survey")
        if self.request.query_params.get("survey"):
            responses = responses.filter(survey__key=self.request.query_params["survey"])
        if self.request.query_params.get("customer"):
            responses = responses.filter(customer__external_id=self.request.query_params["customer"])
        return responses

    @extend_schema(request=SurveyResponsesInput, responses=BatchOutput)
    def post(self, request):
        return _answer(*survey_responses_submit(actor=request.actor, body=request.data, now=timezone.now()))


class ConsentListView(ListAPIView):
    """Current consent per customer and channel; POST records changes (history is kept)."""

    required_permissions = {"GET": "customers.view", "POST": "data.import"}
    serializer_class = ConsentOutput
    pagination_class = ById

    def get_queryset(self):
        consents = Consent.objects.select_related("customer")
        if self.request.query_params.get("customer"):
            consents = consents.filter(customer__external_id=self.request.query_params["customer"])
        if self.request.query_params.get("channel"):
            consents = consents.filter(channel=self.request.query_params["channel"])
        return consents

    @extend_schema(request=ConsentsInput, responses=BatchOutput)
    def post(self, request):
        return _answer(*consents_submit(actor=request.actor, body=request.data, now=timezone.now()))
