import django_filters
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from audit.models import AuditEvent
from common.filters import Moment
from common.pagination import Cursor


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor_kind", "actor_id", "actor_label", "action", "target_type",
                  "target_id", "target_label", "changes", "ip", "user_agent"]


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(lookup_expr="startswith")
    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="icontains")
    since = Moment(field_name="at", lookup_expr="gte")
    until = Moment(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "actor_kind", "target_type", "target_id", "since", "until"]


class NewestFirst(Cursor):
    ordering = ("-at", "-id")


class AuditEventListView(ListAPIView):
    """The audit log, newest first; read-only (there is no write path at all)."""

    required_permissions = {"GET": "audit.view"}
    serializer_class = AuditEventOutput
    filterset_class = AuditEventFilter
    pagination_class = NewestFirst
    queryset = AuditEvent.objects.all()
