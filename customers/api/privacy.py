"""/api/v1/customers/<external_id>/export/ and …/anonymise/: a customer's data rights
over the API, thin views over customers.privacy (which checks permissions again and
writes the audit events)."""

from __future__ import annotations

import json
import re

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.parsers import JsonBody
from customers.privacy import customer_anonymise, customer_export
from customers.selectors import customer_get

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def _customer(external_id: str):
    customer = customer_get(external_id=external_id)
    if customer is None:
        raise Http404("No customer has this external id.")
    return customer


class AnonymisedOutput(serializers.Serializer):
    external_id = serializers.CharField(help_text="The random opaque id the customer is known by from now on.")


class CustomerExportView(APIView):
    """Everything Strata holds about one customer as a JSON file: profile with all traits
    (unmasked), identities, events, survey answers, consent with history, metrics.
    Needs `data.export` and `customers.view_pii`; audited."""

    required_permissions = {"GET": "data.export"}  # customers.view_pii is checked by the service

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The export document")})
    def get(self, request, external_id: str):
        customer = _customer(external_id)
        document = customer_export(actor=request.actor, customer=customer)
        # A plain HttpResponse: DRF's renderers know nothing of Decimal-as-string and an
        # attachment must not be the browsable API's HTML.
        response = HttpResponse(json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
                                content_type="application/json; charset=utf-8")
        safe = _UNSAFE_FILENAME.sub("_", customer.external_id)[:80] or "customer"
        response["Content-Disposition"] = f'attachment; filename="customer-{safe}.json"'
        return response


class CustomerAnonymiseView(APIView):
    """Strip the customer's personal data for good, keeping their events and scores for
    aggregates; they get a random opaque external id (answered). Needs `customers.edit`;
    audited with the new id only."""

    required_permissions = {"POST": "customers.edit"}
    parser_classes = [JsonBody]

    @extend_schema(request=None, responses=AnonymisedOutput)
    def post(self, request, external_id: str):
        customer = customer_anonymise(actor=request.actor, customer=_customer(external_id), now=timezone.now())
        return Response(AnonymisedOutput({"external_id": customer.external_id}).data)
