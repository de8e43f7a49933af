"""Plays (a segment bound to a department's tactic and KPI), campaigns that act on a
segment through a channel, their holdout/variant assignments, the per-customer send log,
and webhook destinations with their delivery log (tenant schema).

Writes go through campaigns.services / campaigns.sending / campaigns.webhooks only.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Play(models.Model):
    class TacticType(models.TextChoices):
        EMAIL = "email", "Email"
        IN_APP = "in_app", "In-app message"
        SALES_OUTREACH = "sales_outreach", "Sales outreach"
        SUCCESS_CALL = "success_call", "Success call"
        AD_AUDIENCE = "ad_audience", "Ad audience"
        PRODUCT_CHANGE = "product_change", "Product change"

    class Kpi(models.TextChoices):
        CAC = "cac", "Customer acquisition cost"
        LEAD_TO_OPPORTUNITY = "lead_to_opportunity", "Lead-to-opportunity rate"
        FEATURE_ADOPTION = "feature_adoption", "Feature adoption rate"
        CHURN_RATE = "churn_rate", "Churn rate"
        CONVERSION_RATE = "conversion_rate", "Conversion rate"
        CUSTOM = "custom", "Custom: did an event within N days"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ACTIVE = "active", "Active"
        DONE = "done", "Done"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=200)
    # SET_NULL, not CASCADE: deleting a segment must not erase the plan and its results.
    segment = models.ForeignKey("segments.Segment", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="plays")
    segment_label = models.CharField(max_length=200, blank=True, help_text="The segment's name when last bound")
    # Public-schema ids: no cross-schema foreign keys.
    department_id = models.BigIntegerField(null=True, blank=True)
    owner_id = models.BigIntegerField(null=True, blank=True)
    tactic = models.TextField(blank=True)
    tactic_type = models.CharField(max_length=16, choices=TacticType.choices)
    kpi = models.CharField(max_length=24, choices=Kpi.choices)
    kpi_event = models.CharField(max_length=200, blank=True,
                                 help_text="The event the KPI counts (feature, opportunity, goal, custom)")
    kpi_days = models.PositiveIntegerField(null=True, blank=True, help_text="Custom and conversion KPIs: within N days")
    target = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True,
                                 help_text="Rates as fractions (0.25 = 25%); CAC in money")
    spend = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, help_text="For CAC")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["department_id", "status"], name="play_department_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__isnull=True) | Q(starts_on__isnull=True)
                                   | Q(ends_on__gte=models.F("starts_on")), name="play_ends_after_start"),
        ]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        IN_APP = "in_app", "In-app"
        WEBHOOK = "webhook", "Webhook"
        AD_AUDIENCE = "ad_audience", "Ad-audience export"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class ScheduleKind(models.TextChoices):
        ONCE = "once", "Once, at a time"
        RECURRING = "recurring", "Recurring"
        ON_ENTRY = "on_entry", "When a customer enters the segment"

    name = models.CharField(max_length=200)
    play = models.ForeignKey(Play, on_delete=models.SET_NULL, null=True, blank=True, related_name="campaigns")
    # SET_NULL: a deleted segment pauses its campaigns with a reason (campaigns.services
    # campaigns_segment_gone); the label keeps the reason readable afterwards.
    segment = models.ForeignKey("segments.Segment", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="campaigns")
    segment_label = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    pause_reason = models.CharField(max_length=300, blank=True)
    # {"kind": "once", "at": iso} | {"kind": "recurring", "every": "daily"|"weekly", "time": "09:00",
    #  "weekday": 0-6 (weekly), "until": iso?} | {"kind": "on_entry"}
    schedule = models.JSONField(default=dict)
    schedule_kind = models.CharField(max_length=16, choices=ScheduleKind.choices, default=ScheduleKind.ONCE)
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="Next occasion (once/recurring)")
    # email: {"subject", "body", "html"?}; in_app: {"title", "body", "cta_label", "cta_url"}
    content = models.JSONField(default=dict, blank=True)
    # [{"key": "segmented", "weight": 50, "content": {...}}, …]; empty = one message.
    variants = models.JSONField(default=list, blank=True)
    holdout_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    # Stable per campaign; assignments hash (salt, customer id). Never changed after launch.
    salt = models.CharField(max_length=32)
    cap_max_sends = models.PositiveIntegerField(null=True, blank=True, help_text="Frequency cap: sends per customer …")
    cap_days = models.PositiveIntegerField(null=True, blank=True, help_text="… per this many days")
    goal_event = models.CharField(max_length=200, blank=True)
    goal_days = models.PositiveIntegerField(default=7)
    # on_entry: the last segments_membershipchange id consumed.
    entry_cursor = models.BigIntegerField(default=0)
    owner_id = models.BigIntegerField(null=True, blank=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the dispatcher: WHERE status IN ('scheduled','running') AND next_run_at <= now
            models.Index(fields=["status", "next_run_at"], name="campaign_due_idx"),
            models.Index(fields=["segment", "status"], name="campaign_segment_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(holdout_percent__gte=0) & Q(holdout_percent__lte=50),
                                   name="campaign_holdout_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Assignment(models.Model):
    """Which arm a customer is in, decided once by hash and stored (so results are
    reproducible even if the percentage were edited)."""

    class Group(models.TextChoices):
        TREATMENT = "treatment", "Treatment"
        HOLDOUT = "holdout", "Holdout"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="campaign_assignments")
    group = models.CharField(max_length=16, choices=Group.choices)
    variant = models.CharField(max_length=64, blank=True)
    assigned_at = models.DateTimeField()

    class Meta:
        ordering = ["campaign", "customer"]
        constraints = [models.UniqueConstraint(fields=["campaign", "customer"], name="assignment_unique")]
        indexes = [models.Index(fields=["campaign", "group"], name="assignment_group_idx")]


class Send(models.Model):
    """One intended delivery of a campaign to a customer on one occasion. The unique
    (campaign, customer, occasion) row is claimed before anything is sent: never twice."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Claimed, sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed"
        UNKNOWN = "unknown", "Unknown (claimed, never confirmed)"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sends")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="campaign_sends")
    # "once", "run:<iso slot>", "entry:<membership change id>"
    occasion = models.CharField(max_length=64)
    channel = models.CharField(max_length=16, choices=Campaign.Channel.choices)
    variant = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=32, blank=True, help_text="Why suppressed: no_consent, frequency_cap, no_address")
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-claimed_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "customer", "occasion"], name="send_once")]
        indexes = [
            # the frequency cap: WHERE campaign_id = %s AND customer_id = %s AND claimed_at >= %s
            models.Index(fields=["campaign", "customer", "claimed_at"], name="send_cap_idx"),
            models.Index(fields=["campaign", "status"], name="send_status_idx"),
        ]


class WebhookEndpoint(models.Model):
    class Event(models.TextChoices):
        ENTERED = "entered", "Entered"
        EXITED = "exited", "Exited"

    segment = models.ForeignKey("segments.Segment", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="webhook_endpoints")
    segment_label = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=2000)
    # Standard Webhooks secret: "whsec_" + base64 of the key bytes.
    secret = models.CharField(max_length=100)
    events = ArrayField(models.CharField(max_length=8, choices=Event.choices), default=list)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    cursor = models.BigIntegerField(default=0, help_text="Last segments_membershipchange id turned into deliveries")
    owner_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    change_id = models.BigIntegerField(help_text="segments_membershipchange id (not a key: the outbox may be pruned)")
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "change_id"], name="delivery_once_per_change")]
        indexes = [
            # the deliverer: WHERE status = 'pending' AND next_attempt_at <= now
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
        ]


class SegmentReview(models.Model):
    """One decision of the review cycle about a segment (campaigns.review): kept until a
    next review date, merged into another segment, or archived — with the reasons it was in
    the queue. Append-only: the history of a segment's reviews."""

    class Decision(models.TextChoices):
        KEPT = "kept", "Kept"
        MERGED = "merged", "Merged into another segment"
        ARCHIVED = "archived", "Archived"

    segment = models.ForeignKey("segments.Segment", on_delete=models.CASCADE, related_name="reviews")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    note = models.TextField(blank=True)
    reasons = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    next_review_at = models.DateField(null=True, blank=True, help_text="Kept: back in the queue from this day")
    merged_into = models.ForeignKey("segments.Segment", on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    reviewer_id = models.BigIntegerField(null=True, blank=True)  # a public-schema user id
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["-decided_at", "-id"]
        indexes = [models.Index(fields=["segment", "-decided_at"], name="review_segment_latest_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.decision}"


class TargetingBoard(models.Model):
    """One saved version of the STP targeting board (campaigns.targeting): the weights the
    segments were ranked with and the targets chosen, each with its positioning. Every save
    is a new version; the newest is the board in force."""

    version = models.PositiveIntegerField(unique=True)
    weights = models.JSONField(default=dict)
    # [{"segment": key, "value_proposition", "message", "channel"}]
    targets = models.JSONField(default=list)
    note = models.CharField(max_length=500, blank=True)
    author_id = models.BigIntegerField(null=True, blank=True)  # a public-schema user id
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"targeting board v{self.version}"
