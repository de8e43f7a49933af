"""Input and output of the customers and events API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from common.api import StrictInput, drf_problems
from common.errors import Code, CustomerCode
from common.jsonvalues import value_problem
from common.masking import mask_email, mask_name, mask_properties
from common.moments import MOMENT_RANGE, in_range
from customers.ingest.message import ANON_PREFIX, ItemProblem
from customers.ingest.tracking import MAX_EVENT_BYTES
from customers.models import Customer, Event
from customers.selectors import personal_property_keys
from customers.services import NewEvent
from segments.rules.vocabulary import BUILTIN_TRAITS, TraitType, parse_datetime

MAX_EVENTS = 1000


# ------------------------------------------------------------------------------ customers

def _passthrough(schema) -> type[serializers.JSONField]:
    """A JSON value handed to ingestion unchanged: the trait registry checks its type
    (JSON types are never coerced: "5" is not 5), the schema only documents it."""
    return extend_schema_field(schema)(type("RawTraitValue", (serializers.JSONField,), {}))


_RAW = {
    TraitType.STRING: _passthrough(OpenApiTypes.STR),
    TraitType.NUMBER: _passthrough(OpenApiTypes.NUMBER),
    TraitType.BOOLEAN: _passthrough(OpenApiTypes.BOOL),
    TraitType.DATETIME: _passthrough(OpenApiTypes.DATETIME),
    TraitType.LIST: _passthrough({"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "number"}]}}),
}


class CustomerTraitsInput(StrictInput):
    traits = serializers.DictField(required=False, help_text="Custom traits; nested objects become dotted keys.")

    def get_fields(self):
        declared = super().get_fields()
        fields = {"external_id": declared.pop("external_id")} if "external_id" in declared else {}
        for key, spec in BUILTIN_TRAITS.items():
            fields[key] = _RAW[spec.type](required=False, allow_null=True, help_text=f"{spec.description}. Null clears it.")
        return {**fields, **declared}

    def split(self) -> tuple[dict, dict]:
        """(built-in traits, custom traits) of the validated input."""
        builtin = {k: v for k, v in self.validated_data.items() if k in BUILTIN_TRAITS}
        return builtin, dict(self.validated_data.get("traits") or {})


class CustomerUpsertInput(CustomerTraitsInput):
    """Built-in traits at the top level, custom ones under `traits`; null clears a trait."""

    external_id = serializers.CharField(max_length=255, help_text="Your id for the customer; creates or updates.")

    def validate_external_id(self, value: str) -> str:
        if value.startswith(ANON_PREFIX) and len(value) == len(ANON_PREFIX):
            raise serializers.ValidationError("Name the anonymous id after “anon:”.", code="invalid")
        return value


class CustomerPatchInput(CustomerTraitsInput):
    """Built-in traits at the top level, custom ones under `traits`; null clears a trait."""

    external_id = serializers.CharField(max_length=255, required=False, help_text="If sent, must be the URL's.")

    def validate_external_id(self, value: str) -> str:
        if value != self.context.get("external_id"):
            raise serializers.ValidationError("The external id cannot be changed.", code="immutable")
        return value


class CustomerOutput(serializers.ModelSerializer):
    """A customer profile. Without `customers.view_pii`, email and name are masked
    ("a***@example.test", "A***") and other personal traits are null."""

    # context["pii_hidden"]: the trait keys to mask for this actor (empty with view_pii).

    annual_revenue = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=False, allow_null=True)

    class Meta:
        model = Customer
        fields = ["external_id", *BUILTIN_TRAITS, "traits", "created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        hidden = self.context.get("pii_hidden") or ()
        traits = dict(data["traits"] or {})  # a copy: never mask the instance's own dict
        for key in hidden:
            if key == "email":
                data[key] = mask_email(data[key])
            elif key == "name":
                data[key] = mask_name(data[key])
            elif key in BUILTIN_TRAITS:
                data[key] = None
            elif key in traits:
                traits[key] = None
        data["traits"] = traits
        return data


class CustomerWrittenOutput(serializers.Serializer):
    """What a write answers to an actor without `customers.view` (e.g. a write-only key)."""

    external_id = serializers.CharField()


# ------------------------------------------------------------------------------ events

@extend_schema_field(OpenApiTypes.DATETIME)
class IsoTimestampField(serializers.Field):
    """ISO 8601 as the tracking endpoints read it (no offset = UTC, a date = its midnight)."""

    default_error_messages = {"invalid": "Use an ISO 8601 timestamp.", Code.OUT_OF_RANGE: f"Times must be {MOMENT_RANGE}."}

    def to_internal_value(self, data):
        parsed = parse_datetime(data) if isinstance(data, str) else None
        if parsed is None:
            self.fail("invalid")
        if not in_range(parsed):
            self.fail(Code.OUT_OF_RANGE)
        return parsed

    def to_representation(self, value):
        return value.isoformat()


class EventInput(StrictInput):
    """One event: who (`external_id` or `anonymous_id`), what (`name`), when (`timestamp`)."""

    external_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    anonymous_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    name = serializers.CharField(max_length=200)
    timestamp = IsoTimestampField(required=False, allow_null=True, help_text="ISO 8601; when it happened (default: now).")
    properties = serializers.DictField(required=False)
    message_id = serializers.CharField(max_length=255, required=False, allow_null=True,
                                       help_text="Sending the same message id again stores the event once.")

    def validate(self, attrs):
        external_id, anonymous_id = attrs.get("external_id"), attrs.get("anonymous_id")
        if not external_id and not anonymous_id:
            raise serializers.ValidationError({"external_id": [
                ErrorDetail("Send an external_id or an anonymous_id.", code=Code.REQUIRED)]})
        if external_id and anonymous_id and external_id.startswith(ANON_PREFIX):
            raise serializers.ValidationError({"anonymous_id": [
                ErrorDetail("An “anon:” external id already names the anonymous id.", code=CustomerCode.AMBIGUOUS)]})
        return attrs


class EventBatchInput(serializers.Serializer):
    """Documents the body; items are checked one by one by `parse_events`."""

    events = EventInput(many=True, help_text=f"At most {MAX_EVENTS} events.")


class EventBatchRejection(serializers.Serializer):
    index = serializers.IntegerField()
    path = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class EventBatchOutput(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Events whose message id was already stored.")
    rejected = EventBatchRejection(many=True)


def parse_events(body: Any) -> tuple[list[NewEvent], list[ItemProblem]]:
    """The valid items of a batch and a problem per invalid one. A body that is not a
    batch at all raises ValidationError (→ 400, nothing stored)."""
    if not isinstance(body, Mapping):
        raise serializers.ValidationError({"": [ErrorDetail("Send a JSON object with an `events` list.",
                                                            code=CustomerCode.INVALID_BODY)]})
    errors = {key: [ErrorDetail("Unknown field.", code=Code.UNKNOWN_FIELD)] for key in body if key != "events"}
    items = body.get("events")
    if items is None:
        errors["events"] = [ErrorDetail("Send the events in an `events` list.", code=Code.REQUIRED)]
    elif not isinstance(items, list):
        errors["events"] = [ErrorDetail("`events` must be a list.", code=CustomerCode.NOT_A_LIST)]
    elif not items:
        errors["events"] = [ErrorDetail("Send at least one event.", code=Code.EMPTY)]
    elif len(items) > MAX_EVENTS:
        errors["events"] = [ErrorDetail(f"Send at most {MAX_EVENTS} events per request.", code=Code.TOO_MANY)]
    if errors:
        raise serializers.ValidationError(errors)
    events, problems = [], []
    for index, item in enumerate(items):
        path = f"events[{index}]"
        hostile = value_problem(item, path)  # first: a deep item must not reach the size measure
        if hostile:
            problems.append(ItemProblem(index, hostile.path, hostile.code, hostile.message))
            continue
        if len(json.dumps(item, separators=(",", ":"))) > MAX_EVENT_BYTES:
            problems.append(ItemProblem(index, path, "event_too_large",
                                        f"An event may be at most {MAX_EVENT_BYTES // 1024} KB."))
            continue
        item_input = EventInput(data=item)
        if item_input.is_valid():
            events.append(NewEvent(index=index, **item_input.validated_data))
        else:
            problems += [ItemProblem(index, p.path, p.code, p.message)
                         for p in drf_problems(item_input.errors, path)]
    return events, problems


class EventOutput(serializers.ModelSerializer):
    """An event. Without `customers.view_pii` the values of personal property keys (email,
    phone, name, … and the keys of personal traits) read "hidden", at any depth."""

    customer = serializers.CharField(source="customer.external_id", help_text="The customer's external id.")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        hidden = self.context.get("pii_properties")
        if hidden is None or hidden:  # fails closed: no reader named, personal keys hidden
            data["properties"] = mask_properties(data["properties"], hidden or personal_property_keys())
        return data

    class Meta:
        model = Event
        fields = ["id", "customer", "name", "timestamp", "properties", "message_id", "source", "received_at"]
