"""Input and output of the segments API. Inputs refuse unknown fields (StrictInput);
personal data in outputs is masked for actors without `customers.view_pii`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.api import StrictInput
from common.errors import Code
from common.masking import mask_email, mask_name
from segments.models import MembershipChange, Segment, SegmentVersion
from segments.selectors.hygiene import is_stale
from segments.selectors.personal import definition_shown

MAX_ITEMS = 10_000


# ------------------------------------------------------------------------------ inputs


@extend_schema_field({"type": "object", "description": "A rule (see GET /api/v1/segments/schema/)."})
class DefinitionField(serializers.JSONField):
    """Handed to the rule parser unchanged: it reports every problem with its path."""


class PersonaInput(StrictInput):
    name = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    goals = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    challenges = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    needs = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    preferred_features = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class SegmentCreateInput(StrictInput):
    key = serializers.CharField(max_length=64, help_text="Lower-case letters, digits, - and _; never changes.")
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=[Segment.Kind.DYNAMIC, Segment.Kind.STATIC], default=Segment.Kind.DYNAMIC)
    definition = DefinitionField(required=False, allow_null=True, help_text="Required for dynamic segments.")
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), max_length=20, required=False, default=list)
    refresh_minutes = serializers.IntegerField(required=False, allow_null=True, help_text="1 to 10080 (default 15).")
    department_id = serializers.IntegerField(required=False, allow_null=True)
    persona = PersonaInput(required=False, help_text="The persona card shown with the segment.")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                 help_text="Recorded with the version.")


class SegmentUpdateInput(StrictInput):
    """Only the fields sent change; a changed definition is a new version, evaluated at once."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), max_length=20, required=False)
    refresh_minutes = serializers.IntegerField(required=False)
    department_id = serializers.IntegerField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=Segment.Status.choices, required=False)
    persona = PersonaInput(required=False)
    definition = DefinitionField(required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


ACCURACY_HELP = ("`estimate`: counted on a fixed hash-sample of customers (~1% of a large workspace) and scaled "
                 "up, with `margin` (95%), in a fraction of the time; `exact` (default): counted over everyone, "
                 "with the estimate beside it.")


class PreviewInput(StrictInput):
    definition = DefinitionField(required=False, help_text="Default: the segment's saved definition.")
    accuracy = serializers.ChoiceField(choices=["estimate", "exact"], default="exact", help_text=ACCURACY_HELP)


class NewPreviewInput(StrictInput):
    definition = DefinitionField()
    accuracy = serializers.ChoiceField(choices=["estimate", "exact"], default="exact", help_text=ACCURACY_HELP)


CustomerRef = extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}],
                                   "description": "A customer id or an external id"})(
    type("CustomerRef", (serializers.JSONField,), {}))


class StaticMembersInput(StrictInput):
    add = serializers.ListField(child=CustomerRef(allow_null=True), required=False, default=list, max_length=MAX_ITEMS)
    remove = serializers.ListField(child=CustomerRef(allow_null=True), required=False, default=list, max_length=MAX_ITEMS)

    def validate(self, attrs):
        errors = {}
        for name in ("add", "remove"):
            for index, item in enumerate(attrs[name]):
                if isinstance(item, bool) or not isinstance(item, (int, str)) or (isinstance(item, str) and not item):
                    errors[f"{name}[{index}]"] = [serializers.ErrorDetail(
                        "Name a customer by id (a number) or external id (a string).", code=Code.INVALID_TYPE)]
        if not errors and not attrs["add"] and not attrs["remove"]:
            errors[""] = [serializers.ErrorDetail("Send customers to `add` or `remove`.", code=Code.REQUIRED)]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class SnapshotInput(StrictInput):
    key = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)


# ------------------------------------------------------------------------------ outputs


class WarningOutput(serializers.Serializer):
    path = serializers.CharField()
    code = serializers.CharField(help_text="unknown_event, too_small, near_duplicate, stale")
    message = serializers.CharField()
    details = serializers.DictField(help_text="near_duplicate: segment, jaccard, intersection; too_small: size, min_size")


class ShownDefinition(serializers.JSONField):
    """A definition as its reader may see it (context["actor"]): the literals of conditions
    on personal data masked without `customers.view_pii`."""

    def to_representation(self, value):
        return definition_shown(self.context.get("actor"), super().to_representation(value))


class SegmentOutput(serializers.ModelSerializer):
    definition = ShownDefinition(allow_null=True, help_text="The rule; personal literals masked without "
                                                            "customers.view_pii")
    refresh_minutes = serializers.SerializerMethodField()
    source = serializers.CharField(source="source.key", default=None, allow_null=True,
                                   help_text="What a snapshot froze")
    stale = serializers.SerializerMethodField(help_text="Neither changed nor used for 90 days (quarterly review)")

    class Meta:
        model = Segment
        fields = ["id", "key", "name", "description", "kind", "status", "definition", "definition_version", "references",
                  "tags", "refresh_minutes", "department_id", "owner_id", "persona", "source", "frozen_at", "size",
                  "last_evaluated_at", "last_changed_at", "last_used_at", "next_evaluation_at", "stale",
                  "created_at", "updated_at"]

    def get_refresh_minutes(self, segment) -> int:
        return int(segment.refresh_interval.total_seconds() // 60)

    def get_stale(self, segment) -> bool:
        return is_stale(segment, now=self.context["now"])


class EvaluationOutput(serializers.Serializer):
    now = serializers.DateTimeField()
    trigger = serializers.CharField()
    status = serializers.CharField()
    entered = serializers.IntegerField()
    exited = serializers.IntegerField()
    size = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)


class SegmentDetailOutput(SegmentOutput):
    referenced_by = serializers.SerializerMethodField(help_text="Keys of the segments whose rules use this one")
    last_evaluation = serializers.SerializerMethodField()

    class Meta(SegmentOutput.Meta):
        fields = [*SegmentOutput.Meta.fields, "referenced_by", "last_evaluation"]

    def get_referenced_by(self, segment) -> list[str]:
        return sorted(Segment.objects.filter(references__contains=[segment.key]).exclude(pk=segment.pk)
                      .values_list("key", flat=True))

    @extend_schema_field(EvaluationOutput(allow_null=True))
    def get_last_evaluation(self, segment):
        evaluation = segment.evaluations.order_by("-created_at", "-id").first()
        return EvaluationOutput(evaluation).data if evaluation else None


class SegmentWrittenOutput(SegmentDetailOutput):
    warnings = serializers.SerializerMethodField()

    class Meta(SegmentDetailOutput.Meta):
        fields = [*SegmentDetailOutput.Meta.fields, "warnings"]

    @extend_schema_field(WarningOutput(many=True))
    def get_warnings(self, segment):
        return [w.as_dict() for w in self.context.get("warnings", [])]


class CustomerBrief(serializers.Serializer):
    """Who a customer is; email and name masked without `customers.view_pii`."""

    id = serializers.IntegerField()
    external_id = serializers.CharField()
    email = serializers.CharField()
    name = serializers.CharField()

    def to_representation(self, customer):
        data = super().to_representation(customer)
        if self.context.get("mask_pii", True):
            data["email"], data["name"] = mask_email(data["email"]), mask_name(data["name"])
        return data


class SegmentMemberOutput(serializers.Serializer):
    customer_id = serializers.IntegerField()
    external_id = serializers.CharField(source="customer.external_id")
    email = serializers.CharField(source="customer.email")
    name = serializers.CharField(source="customer.name")
    entered_at = serializers.DateTimeField()
    exited_at = serializers.DateTimeField(allow_null=True, help_text="Set when listing at a past time")
    source = serializers.CharField()

    def to_representation(self, row):
        data = super().to_representation(row)
        if self.context.get("mask_pii", True):
            data["email"], data["name"] = mask_email(data["email"]), mask_name(data["name"])
        return data


class StaticMembersOutput(serializers.Serializer):
    added = serializers.IntegerField(help_text="Customers who were not members yet")
    removed = serializers.IntegerField()
    size = serializers.IntegerField()
    unmatched = serializers.ListField(child=serializers.DictField(), help_text="path, code, message per item")


class UploadOutput(serializers.Serializer):
    rows = serializers.IntegerField(help_text="Data rows read (the header is not counted)")
    matched = serializers.IntegerField()
    added = serializers.IntegerField()
    size = serializers.IntegerField()
    unmatched = serializers.ListField(child=serializers.DictField(), help_text="row, value, code, message per row")


class PreviewOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text="`exact` when it was counted, else `estimate`")
    estimate = serializers.IntegerField(allow_null=True, help_text="Scaled up from the hash-sample")
    margin = serializers.IntegerField(allow_null=True, help_text="Half-width of the estimate's 95% interval")
    exact = serializers.IntegerField(allow_null=True, help_text="Counted over everyone; null for an estimate")
    sampled = serializers.IntegerField(allow_null=True, help_text="Customers the estimate read")
    population = serializers.IntegerField(allow_null=True, help_text="Customers in the workspace")
    sample = CustomerBrief(many=True)
    impact = serializers.DictField(help_text="would_enter, would_exit, current_size (vs open memberships)")
    warnings = WarningOutput(many=True)


class ChangeOutput(serializers.ModelSerializer):
    external_id = serializers.SerializerMethodField()

    class Meta:
        model = MembershipChange
        fields = ["id", "customer_id", "external_id", "change", "at", "evaluation_id"]

    def get_external_id(self, change) -> str | None:
        return self.context["external_ids"].get(change.customer_id)


class ChangesOutput(serializers.Serializer):
    results = ChangeOutput(many=True)
    next = serializers.CharField(allow_null=True, help_text="URL of the next page (after the last id)")
    last_id = serializers.IntegerField(allow_null=True, help_text="Pass as ?after= to continue the feed")


class VersionOutput(serializers.ModelSerializer):
    definition = ShownDefinition()

    class Meta:
        model = SegmentVersion
        fields = ["version", "definition", "author_id", "note", "created_at"]


class DiffOutput(serializers.Serializer):
    key = serializers.CharField()
    from_version = serializers.IntegerField(source="from")
    to_version = serializers.IntegerField(source="to")
    added = serializers.ListField(child=serializers.DictField(), help_text="path, value")
    removed = serializers.ListField(child=serializers.DictField(), help_text="path, value")
    changed = serializers.ListField(child=serializers.DictField(), help_text="path, from, to")
    text = serializers.CharField(help_text="Unified diff of the pretty-printed JSON")


class ExplainOutput(serializers.Serializer):
    segment = serializers.CharField()
    customer = CustomerBrief()
    now = serializers.DateTimeField()
    member = serializers.BooleanField(help_text="Has an open membership now")
    entered_at = serializers.DateTimeField(allow_null=True)
    matches = serializers.BooleanField(allow_null=True, help_text="What the rule says now (null: not a rule segment)")
    tree = serializers.JSONField(allow_null=True, help_text="Each node's truth and the facts that decided it")


class OverlapSegment(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    exclusive = serializers.IntegerField(help_text="Members of no other listed segment")


class OverlapOutput(serializers.Serializer):
    keys = serializers.ListField(child=serializers.CharField())
    segments = OverlapSegment(many=True)
    matrix = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()),
                                   help_text="matrix[i][j]: members of both keys[i] and keys[j] (diagonal: size)")
    jaccard = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)))
    union = serializers.IntegerField(help_text="Members of any listed segment")


@extend_schema_field(OpenApiTypes.OBJECT)
class SchemaField(serializers.JSONField):
    pass
