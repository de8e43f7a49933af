"""/api/v1/surveys/: the survey definitions — NPS and CSAT built in, custom ones with
their questions (scale or choice). Reading needs `customers.view`; defining and changing
one `settings.modify`."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import StrictInput, validated
from common.parsers import JsonBody
from customers.models import Survey
from customers.surveys import survey_create, survey_update


class SurveyOutput(serializers.ModelSerializer):
    class Meta:
        model = Survey
        fields = ["key", "kind", "name", "questions", "created_at", "updated_at"]


class SurveyListOutput(serializers.Serializer):
    results = SurveyOutput(many=True)


class SurveyInput(StrictInput):
    key = serializers.JSONField(help_text="a-z, 0-9, - and _; not nps, csat or responses")
    name = serializers.JSONField()
    questions = serializers.JSONField(help_text="[{key, text, type: scale, min, max} | "
                                                "{key, text, type: choice, options: [{value, label}]}]")


class SurveyChangeInput(StrictInput):
    name = serializers.JSONField(required=False, default=None)
    questions = serializers.JSONField(required=False, default=None, help_text="The whole list")


class SurveyListView(APIView):
    required_permissions = {"GET": "customers.view", "POST": "settings.modify"}
    parser_classes = [JsonBody]

    @extend_schema(responses=SurveyListOutput)
    def get(self, request):
        return Response({"results": SurveyOutput(Survey.objects.order_by("key"), many=True).data})

    @extend_schema(request=SurveyInput, responses={201: SurveyOutput})
    def post(self, request):
        survey = survey_create(actor=request.actor, **validated(SurveyInput, request))
        return Response(SurveyOutput(survey).data, status=status.HTTP_201_CREATED)


class SurveyDetailView(APIView):
    required_permissions = {"GET": "customers.view", "PATCH": "settings.modify"}
    parser_classes = [JsonBody]

    def _survey(self, key: str) -> Survey:
        survey = Survey.objects.filter(key=key).first()
        if survey is None:
            raise Http404
        return survey

    @extend_schema(responses=SurveyOutput)
    def get(self, request, key: str):
        return Response(SurveyOutput(self._survey(key)).data)

    @extend_schema(request=SurveyChangeInput, responses=SurveyOutput)
    def patch(self, request, key: str):
        survey = survey_update(actor=request.actor, survey=self._survey(key), **validated(SurveyChangeInput, request))
        return Response(SurveyOutput(survey).data)
