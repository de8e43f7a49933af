from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from common.pages import ANY_MEMBER
from common.pagination import Cursor
from tenants.models import TenantMembership


class MeOutput(serializers.Serializer):
    email = serializers.EmailField()
    full_name = serializers.CharField()
    tenant = serializers.DictField()
    role = serializers.CharField()
    department = serializers.CharField(allow_null=True)
    via = serializers.ChoiceField(choices=["session", "api_key"])
    scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)
    permissions = serializers.ListField(child=serializers.CharField())


class MeView(APIView):
    """Who the request acts as, in which workspace, with which permissions."""

    required_permissions = {"GET": ANY_MEMBER}

    @extend_schema(responses=MeOutput)
    def get(self, request):
        actor = request.actor
        membership = getattr(actor, "membership", actor)
        body = {
            "email": membership.user.email,
            "full_name": membership.user.full_name,
            "tenant": {"slug": request.tenant.slug, "name": request.tenant.name},
            "role": membership.role.key,
            "department": membership.department.name if membership.department else None,
            "via": "api_key" if getattr(actor, "is_api_key", False) else "session",
            "scopes": actor.scopes if getattr(actor, "is_api_key", False) else None,
            "permissions": sorted(actor.permissions),
        }
        return Response(MeOutput(body).data)


class MemberOutput(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    full_name = serializers.CharField(source="user.full_name")
    role = serializers.CharField(source="role.key")
    department = serializers.CharField(source="department.name", allow_null=True, default=None)

    class Meta:
        model = TenantMembership
        fields = ["id", "email", "full_name", "role", "department", "created_at"]


class ByCreated(Cursor):
    ordering = "-created_at"


class MemberListView(ListAPIView):
    required_permissions = {"GET": "members.manage"}
    serializer_class = MemberOutput
    pagination_class = ByCreated

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema is generated without a tenant
            return TenantMembership.objects.none()
        return TenantMembership.objects.filter(tenant=self.request.tenant).select_related("user", "role", "department")
