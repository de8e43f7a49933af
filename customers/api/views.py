"""/api/v1/customers/ and /api/v1/events/: thin views over customers.services and
customers.selectors. Personal data is masked for actors without `customers.view_pii`
(people and API keys alike)."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from common.actors import Actor
from common.api import ensure_body_within
from common.errors import DomainError, Problem
from common.pagination import Cursor, NewestFirst
from common.parsers import JsonBody
from customers.api.filters import CustomerFilter, EventFilter
from customers.api.serializers import (
    CustomerOutput,
    CustomerPatchInput,
    CustomerUpsertInput,
    CustomerWrittenOutput,
    EventBatchInput,
    EventBatchOutput,
    EventOutput,
    parse_events,
)
from customers.selectors import customer_get, customers_list, events_list, personal_property_keys, pii_trait_keys
from customers.services import customer_delete, customer_upsert, events_record

# DRF's parsers read the body as a stream, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE does
# not bound it: each write endpoint states its own limit.
MAX_CUSTOMER_BYTES = 256 * 1024
MAX_EVENTS_BYTES = 5 * 1024 * 1024


def _output_context(actor: Actor) -> dict:
    if actor.has("customers.view_pii"):
        return {"pii_hidden": frozenset(), "pii_properties": frozenset()}
    return {"pii_hidden": pii_trait_keys(), "pii_properties": personal_property_keys()}


def _written(actor: Actor, customer) -> dict:
    """The stored customer; only its external id for an actor that may write but not read."""
    if not actor.has("customers.view"):
        return CustomerWrittenOutput(customer).data
    return CustomerOutput(customer, context=_output_context(actor)).data


class LatestFirst(Cursor):
    ordering = ("-timestamp", "-id")


class MasksForItsReader:
    """A list whose outputs mask personal data for the request's actor (_output_context)."""

    def get_serializer_context(self):
        context = super().get_serializer_context()
        actor = getattr(self.request, "actor", None)
        if actor is not None:  # None only while the schema is generated
            context.update(_output_context(actor))
        return context


class CustomerListView(MasksForItsReader, ListAPIView):
    """Customers, newest first. POST creates or updates one by `external_id`."""

    required_permissions = {"GET": "customers.view", "POST": "customers.edit"}
    parser_classes = [JsonBody]  # traits are typed JSON values; form fields would all be text
    serializer_class = CustomerOutput
    filterset_class = CustomerFilter
    pagination_class = NewestFirst

    def get_queryset(self):
        return customers_list()

    @extend_schema(request=CustomerUpsertInput, responses={
        201: OpenApiResponse(CustomerOutput, description="Created"),
        200: OpenApiResponse(CustomerOutput, description="Updated"),
    })
    def post(self, request):
        """Upsert by external id: traits sent are set (null clears one), others are kept.
        Trait values must fit the registered types; new custom traits are registered."""
        ensure_body_within(request, MAX_CUSTOMER_BYTES)
        data = CustomerUpsertInput(data=request.data)
        data.is_valid(raise_exception=True)
        builtin, custom = data.split()
        customer, created = customer_upsert(actor=request.actor, external_id=data.validated_data["external_id"],
                                            builtin=builtin, custom=custom, now=timezone.now())
        return Response(_written(request.actor, customer), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CustomerDetailView(APIView):
    required_permissions = {"GET": "customers.view", "PATCH": "customers.edit", "DELETE": "customers.edit"}
    parser_classes = [JsonBody]

    @staticmethod
    def _customer(external_id: str):
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise Http404("No customer has this external id.")
        return customer

    @extend_schema(responses=CustomerOutput)
    def get(self, request, external_id: str):
        customer = self._customer(external_id)
        return Response(CustomerOutput(customer, context=_output_context(request.actor)).data)

    @extend_schema(request=CustomerPatchInput, responses=CustomerOutput)
    def patch(self, request, external_id: str):
        """Change traits of an existing customer (as POST to the list, but never creates)."""
        ensure_body_within(request, MAX_CUSTOMER_BYTES)
        self._customer(external_id)
        data = CustomerPatchInput(data=request.data, context={"external_id": external_id})
        data.is_valid(raise_exception=True)
        builtin, custom = data.split()
        customer, _ = customer_upsert(actor=request.actor, external_id=external_id, builtin=builtin, custom=custom,
                                      now=timezone.now(), must_exist=True)
        return Response(_written(request.actor, customer))

    @extend_schema(responses={204: None})
    def delete(self, request, external_id: str):
        """Delete the customer with their events, identities, consents and survey answers."""
        customer_delete(actor=request.actor, customer=self._customer(external_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventListView(MasksForItsReader, ListAPIView):
    """Events, latest first. POST stores a batch of up to 1,000."""

    required_permissions = {"GET": "customers.view", "POST": "data.import"}
    parser_classes = [JsonBody]
    serializer_class = EventOutput
    filterset_class = EventFilter
    pagination_class = LatestFirst

    def get_queryset(self):
        return events_list()

    @extend_schema(request=EventBatchInput, responses=EventBatchOutput)
    def post(self, request):
        """Valid events are stored and bad ones reported in `rejected` (with paths like
        `events[3].name`); 400 when the body is not a batch or no event is valid.
        Events naming an unknown customer create it."""
        ensure_body_within(request, MAX_EVENTS_BYTES)
        events, problems = parse_events(request.data)
        result = events_record(actor=request.actor, events=events, now=timezone.now())
        rejected = sorted(problems + result.problems, key=lambda p: p.index)
        if not (result.accepted or result.duplicates):
            raise DomainError(problems=[Problem(path=p.path, code=p.code, message=p.message) for p in rejected])
        return Response(EventBatchOutput({
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [{"index": p.index, "path": p.path, "code": p.code, "message": p.message} for p in rejected],
        }).data)
