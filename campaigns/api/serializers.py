"""Input and output of the campaigns API. Inputs refuse unknown fields (StrictInput) and
check only types and ranges DRF knows; every business rule (schedules, templates that
must render, segments of this workspace, the SSRF guard) is the services' job, so its
problems come back with the same paths whichever interface was used."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from campaigns.models import Campaign, Play, Send, WebhookDelivery, WebhookEndpoint
from common.api import StrictInput
from common.errors import Code
from segments.models import Segment

MAX_ID = 2**63 - 1


def IdField(**kwargs) -> serializers.IntegerField:  # noqa: N802 — a field factory
    # Bounded: an id past bigint would otherwise reach PostgreSQL and fail there.
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field({"type": "object", "description": "once: {kind, at}; recurring: {kind, every: daily|weekly|"
                                                       "hours, time, weekday, hours, start, until}; on_entry: {kind}"})
class ScheduleField(serializers.JSONField):
    """Handed to campaigns.services.schedules.schedule_clean unchanged (problems at schedule.*)."""


@extend_schema_field({"type": "object", "description": "email: {subject, body, format: text|html, from_email?}; "
                                                       "in_app: {title, body, cta_label?, cta_url?}; "
                                                       "webhook: {endpoint_id}. Django template syntax, sandboxed."})
class ContentField(serializers.JSONField):
    pass


@extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
    "key": {"type": "string"}, "weight": {"type": "number"}, "content": {"type": "object"}}}})
class VariantsField(serializers.JSONField):
    pass


class NamesASegment(StrictInput):
    """A segment is named by `segment` (its key, as the segments API names it) or by
    `segment_id` (the `id` every output shows): one of them. The key is turned into the
    id here; every other check of the segment is the service's."""

    segment = serializers.SlugField(max_length=100, required=False, help_text="The segment's key (or send segment_id)")
    segment_id = IdField(required=False, help_text="The segment's id (or send its key as segment)")
    renamed = {"segment": "segment_id"}  # input field → the service's parameter
    segment_required = True

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "segment" not in attrs:
            if self.segment_required and "segment_id" not in attrs:
                raise serializers.ValidationError({"segment": [
                    ErrorDetail("Name the segment by its key (segment) or id (segment_id).", code=Code.REQUIRED)]})
            return attrs
        if "segment_id" in attrs:
            raise serializers.ValidationError({"segment": [
                ErrorDetail("Send segment or segment_id, not both.", code=Code.INVALID)]})
        key = attrs.pop("segment")
        attrs["segment_id"] = Segment.objects.filter(key=key).values_list("pk", flat=True).first()
        if attrs["segment_id"] is None:
            raise serializers.ValidationError({"segment": [
                ErrorDetail(f"No segment has the key “{key}”.", code=Code.UNKNOWN_SEGMENT)]})
        return attrs


# ------------------------------------------------------------------------------ plays


class PlayInput(NamesASegment):
    name = serializers.CharField(max_length=200, allow_blank=True)
    department_id = IdField(required=False, allow_null=True)
    tactic = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    tactic_type = serializers.ChoiceField(choices=Play.TacticType.choices)
    kpi = serializers.ChoiceField(choices=Play.Kpi.choices)
    kpi_event = serializers.CharField(max_length=200, required=False, allow_blank=True)
    kpi_days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3650)
    target = serializers.DecimalField(max_digits=14, decimal_places=4, required=False, allow_null=True,
                                      help_text="Rates as fractions (0.25 = 25%); CAC in money")
    spend = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    status = serializers.ChoiceField(choices=Play.Status.choices, required=False)
    starts_on = serializers.DateField(required=False, allow_null=True)
    ends_on = serializers.DateField(required=False, allow_null=True)


class PlayUpdateInput(PlayInput):
    """Only the fields sent change."""

    segment_required = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class PlayOutput(serializers.ModelSerializer):
    segment = serializers.SerializerMethodField()

    class Meta:
        model = Play
        fields = ["id", "name", "segment", "segment_label", "department_id", "owner_id", "tactic", "tactic_type", "kpi",
                  "kpi_event", "kpi_days", "target", "spend", "status", "starts_on", "ends_on", "created_at",
                  "updated_at"]

    @extend_schema_field({"type": "object", "nullable": True, "properties": {
        "id": {"type": "integer"}, "key": {"type": "string"}, "name": {"type": "string"}}})
    def get_segment(self, obj):
        return segment_brief(obj.segment)


def segment_brief(segment) -> dict | None:
    return {"id": segment.pk, "key": segment.key, "name": segment.name} if segment is not None else None


class KpiOutput(serializers.Serializer):
    kpi = serializers.CharField()
    value = serializers.FloatField(allow_null=True, help_text="The actual: a rate (0–1) or, for CAC, money")
    numerator = serializers.IntegerField(allow_null=True)
    denominator = serializers.IntegerField(allow_null=True)
    target = serializers.FloatField(allow_null=True)
    met = serializers.BooleanField(allow_null=True, help_text="Against the target (lower is better for churn, CAC)")
    window = serializers.ListField(child=serializers.DateTimeField(), help_text="[start, end) measured")


# ------------------------------------------------------------------------------ campaigns


class CampaignInput(NamesASegment):
    name = serializers.CharField(max_length=200, allow_blank=True)
    play_id = IdField(required=False, allow_null=True)
    channel = serializers.ChoiceField(choices=Campaign.Channel.choices)
    schedule = ScheduleField()
    content = ContentField(required=False)
    variants = VariantsField(required=False)
    holdout_percent = serializers.DecimalField(max_digits=5, decimal_places=2, required=False,
                                               help_text="0 to 50: the share never sent to, for measuring lift")
    cap_max_sends = serializers.IntegerField(required=False, allow_null=True, help_text="Frequency cap: sends …")
    cap_days = serializers.IntegerField(required=False, allow_null=True, help_text="… per this many days")
    goal_event = serializers.CharField(max_length=200, required=False, allow_blank=True)
    goal_days = serializers.IntegerField(required=False)


class CampaignUpdateInput(CampaignInput):
    """Only the fields sent change; segment, channel, holdout, variants and schedule are
    locked once launched."""

    segment_required = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class CampaignOutput(serializers.ModelSerializer):
    segment = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = ["id", "name", "play_id", "segment", "segment_label", "channel", "status", "pause_reason", "schedule",
                  "next_run_at", "content", "variants", "holdout_percent", "cap_max_sends", "cap_days", "goal_event",
                  "goal_days", "owner_id", "launched_at", "finished_at", "created_at", "updated_at"]

    @extend_schema_field({"type": "object", "nullable": True, "properties": {
        "id": {"type": "integer"}, "key": {"type": "string"}, "name": {"type": "string"}}})
    def get_segment(self, obj):
        return segment_brief(obj.segment)


class PauseInput(StrictInput):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class CampaignPreviewInput(StrictInput):
    customer_id = IdField(required=False, allow_null=True,
                          help_text="Default: the segment's first member, else a sample customer")
    variant = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class RenderedOutput(serializers.Serializer):
    subject = serializers.CharField(required=False, help_text="email")
    text = serializers.CharField(required=False, help_text="email: the plain-text body")
    html = serializers.CharField(required=False, help_text="email: the HTML body, or empty")
    title = serializers.CharField(required=False, help_text="in-app")
    body = serializers.CharField(required=False, help_text="in-app")
    cta_label = serializers.CharField(required=False, help_text="in-app")
    cta_url = serializers.CharField(required=False, help_text="in-app")


class CampaignPreviewOutput(serializers.Serializer):
    channel = serializers.CharField()
    customer_id = serializers.IntegerField(allow_null=True, help_text="The customer asked for, or null")
    variant = serializers.CharField()
    rendered = RenderedOutput()


class LiftOutput(serializers.Serializer):
    treatment_n = serializers.IntegerField()
    treatment_conversions = serializers.IntegerField()
    holdout_n = serializers.IntegerField()
    holdout_conversions = serializers.IntegerField()
    treatment_rate = serializers.FloatField(allow_null=True)
    holdout_rate = serializers.FloatField(allow_null=True)
    absolute_lift = serializers.FloatField(allow_null=True, help_text="treatment rate − holdout rate")
    relative_lift = serializers.FloatField(allow_null=True, help_text="absolute ÷ holdout rate")
    ci_low = serializers.FloatField(allow_null=True, help_text="95% Wald interval of the absolute lift")
    ci_high = serializers.FloatField(allow_null=True)
    z = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    significant = serializers.BooleanField(help_text="Two-proportion z-test, p < 0.05")
    reliable = serializers.BooleanField(help_text="Every cell ≥ 5: the normal approximation is reasonable")


class ResultsOutput(serializers.Serializer):
    goal_event = serializers.CharField()
    goal_days = serializers.IntegerField()
    holdout_percent = serializers.FloatField()
    overall = LiftOutput(help_text="Every treatment arm against the holdout (intention to treat)")
    variants = serializers.DictField(child=LiftOutput(), help_text="Per variant key, against the holdout")
    sends = serializers.DictField(child=serializers.IntegerField(), help_text="Send log rows by status")


class SendOutput(serializers.ModelSerializer):
    customer = serializers.SerializerMethodField()

    class Meta:
        model = Send
        fields = ["id", "customer", "occasion", "channel", "variant", "status", "reason", "error", "claimed_at",
                  "sent_at"]

    @extend_schema_field({"type": "object", "properties": {"id": {"type": "integer"},
                                                           "external_id": {"type": "string"}}})
    def get_customer(self, obj):
        return {"id": obj.customer_id, "external_id": obj.customer.external_id}


# ------------------------------------------------------------------------------ webhooks


class WebhookInput(NamesASegment):
    url = serializers.CharField(max_length=2000, help_text="http(s); refused when it resolves to a private address")
    events = serializers.ListField(child=serializers.CharField(max_length=8), max_length=2,
                                   help_text="entered, exited or both")


class WebhookUpdateInput(StrictInput):
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.CharField(max_length=8), max_length=2, required=False)
    active = serializers.BooleanField(required=False)


class WebhookOutput(serializers.ModelSerializer):
    segment = serializers.SerializerMethodField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEndpoint.Event.choices))
    secret = serializers.SerializerMethodField(help_text="Standard Webhooks signing secret (whsec_…); shown to "
                                                         "those who may edit webhooks")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "segment", "segment_label", "url", "events", "active", "disabled_reason", "secret",
                  "owner_id", "created_at", "updated_at"]

    @extend_schema_field({"type": "object", "nullable": True, "properties": {
        "id": {"type": "integer"}, "key": {"type": "string"}, "name": {"type": "string"}}})
    def get_segment(self, obj):
        return segment_brief(obj.segment)

    def get_secret(self, obj) -> str | None:
        return obj.secret if self.context.get("show_secret") else None


class WebhookTestOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.IntegerField(allow_null=True, help_text="The receiver's HTTP status")
    error = serializers.CharField()


class DeliveryOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "change_id", "payload", "status", "attempts", "response_code", "error", "next_attempt_at",
                  "delivered_at", "created_at"]
