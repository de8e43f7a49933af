from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.models import ApiKey
from apikeys.selectors import api_keys
from apikeys.services import api_key_create, api_key_revoke
from common.pagination import Cursor, paged


class ApiKeyOutput(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_by", "created_at", "expires_at",
                  "last_used_at", "revoked_at"]


class ApiKeyCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, allow_blank=True)
    scopes = serializers.ListField(child=serializers.CharField(max_length=32), max_length=10)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The plain key. Shown only in this response.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "key"]


class ByCreated(Cursor):
    ordering = "-created_at"


class ApiKeyListView(APIView):
    required_permissions = {"GET": "api_keys.manage", "POST": "api_keys.manage"}

    @extend_schema(responses=paged(ApiKeyOutput))
    def get(self, request):
        paginator = ByCreated()
        page = paginator.paginate_queryset(api_keys(), request, view=self)
        return paginator.get_paginated_response(ApiKeyOutput(page, many=True).data)

    @extend_schema(request=ApiKeyCreateInput, responses={201: ApiKeyCreatedOutput})
    def post(self, request):
        data = ApiKeyCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, plain = api_key_create(actor=request.actor, now=timezone.now(), **data.validated_data)
        key.key = plain
        return Response(ApiKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(APIView):
    required_permissions = {"GET": "api_keys.manage", "DELETE": "api_keys.manage"}

    @extend_schema(responses=ApiKeyOutput)
    def get(self, request, pk: int):
        return Response(ApiKeyOutput(get_object_or_404(ApiKey, pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        """Revoke the key (it stays listed, marked revoked)."""
        api_key_revoke(actor=request.actor, key=get_object_or_404(ApiKey, pk=pk), now=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)
