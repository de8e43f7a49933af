"""The trait registry over the REST API: list and read for members, edit for admins."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import Code, DomainError, NotFound
from common.parsers import JsonBody
from customers.models import TraitDefinition
from customers.registry import trait_definition_update


class TraitOutput(serializers.ModelSerializer):
    class Meta:
        model = TraitDefinition
        fields = ["key", "type", "category", "description", "is_pii", "exposed", "is_builtin", "first_seen_at"]


class TraitPatchInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=TraitDefinition.Type.choices, required=False)
    category = serializers.ChoiceField(choices=TraitDefinition.Category.choices, required=False)
    description = serializers.CharField(max_length=300, allow_blank=True, required=False)
    is_pii = serializers.BooleanField(required=False)
    exposed = serializers.BooleanField(required=False, help_text="Served by the membership lookup (never personal)")


class TraitListView(ListAPIView):
    """Every trait (built-in columns and custom traits), grouped by category; `?category=`."""

    required_permissions = {"GET": "customers.view"}
    serializer_class = TraitOutput
    pagination_class = None

    def get_queryset(self):
        traits = TraitDefinition.objects.all()
        if self.request.query_params.get("category"):
            traits = traits.filter(category=self.request.query_params["category"])
        return traits


class TraitDetailView(APIView):
    required_permissions = {"GET": "customers.view", "PATCH": "settings.modify"}
    parser_classes = [JsonBody]

    @extend_schema(responses=TraitOutput)
    def get(self, request, key: str):
        trait = TraitDefinition.objects.filter(key=key).first()
        if trait is None:
            raise NotFound.single(path="", code=Code.NOT_FOUND, message=f"No trait “{key}”.")
        return Response(TraitOutput(trait).data)

    @extend_schema(request=TraitPatchInput, responses=TraitOutput)
    def patch(self, request, key: str):
        # Unknown fields reach the service, which names them (a serializer would drop them).
        if not isinstance(request.data, dict):
            raise DomainError.single(path="", code=Code.INVALID_TYPE, message="Send a JSON object.")
        trait = trait_definition_update(actor=request.actor, key=key, changes=dict(request.data))
        return Response(TraitOutput(trait).data)
