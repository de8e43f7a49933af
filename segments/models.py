"""Segments, their versions, memberships with full history, evaluations and the outbox
of membership changes (tenant schema). Memberships are written by `segments.engine` only."""

from datetime import timedelta

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Segment(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", "Dynamic (rule)"
        STATIC = "static", "Static (hand-picked)"
        SNAPSHOT = "snapshot", "Snapshot (frozen copy)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DYNAMIC)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    definition = models.JSONField(null=True, blank=True, help_text="The rule (dynamic segments)")
    definition_version = models.PositiveIntegerField(default=0)
    # Keys of the segments the definition refers to: dependency order and delete guard.
    references = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    source = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="snapshots",
                               help_text="What a snapshot froze")
    frozen_at = models.DateTimeField(null=True, blank=True)
    # Public-schema ids (users, departments): no cross-schema foreign keys.
    owner_id = models.BigIntegerField(null=True, blank=True)
    department_id = models.BigIntegerField(null=True, blank=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    refresh_interval = models.DurationField(default=timedelta(minutes=15))
    persona = models.JSONField(default=dict, blank=True,
                               help_text="name, goals, challenges, needs, preferred_features, notes")
    # Freshness, written by the engine in the evaluation's own transaction.
    size = models.IntegerField(default=0)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, help_text="`now` of the last successful evaluation")
    last_changed_at = models.DateTimeField(null=True, blank=True, help_text="Last evaluation that changed membership")
    next_evaluation_at = models.DateTimeField(null=True, blank=True)
    # Last read of its members (API/UI list, preview, export) or use by a campaign; kept at
    # most hourly (segments.services.segment_mark_used). With last_changed_at it decides
    # which segments are listed for quarterly review.
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["status", "next_evaluation_at"], name="segment_due_idx")]

    def __str__(self) -> str:
        return self.name


class SegmentVersion(models.Model):
    """Every saved definition, so history and a diff between any two versions exist."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    author_id = models.BigIntegerField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["segment", "-version"]
        constraints = [models.UniqueConstraint(fields=["segment", "version"], name="segment_version_unique")]

    def __str__(self) -> str:
        return f"{self.segment.key} v{self.version}"


class Membership(models.Model):
    """One membership of a customer in a segment: [entered_at, exited_at). Leaving closes the row;
    coming back opens a new one; rows are never rewritten otherwise."""

    class Source(models.TextChoices):
        RULE = "rule", "Rule"
        MANUAL = "manual", "Added by hand"
        IMPORT = "import", "Uploaded"
        SNAPSHOT = "snapshot", "Snapshot"

    # TRICKY: the engine writes 100k+ rows per evaluation, and a foreign key costs a deferred
    # check per row at commit, which also locks the referenced row FOR KEY SHARE — a third of
    # a large first evaluation for the customer's key alone. Neither key is declared in the
    # database. The segment's writers
    # (segments.engine, the only one) hold the segment row FOR UPDATE while they write, and
    # Django cascades deletes itself. For the customer's, what the key guaranteed — no membership
    # outlives its customer, even when the delete races an evaluation — is kept by the
    # trigger of migration 0005, which removes a deleted customer's memberships once the
    # membership writes running in the tenant have committed (engine.hold_customer_deletes).
    # DO_NOTHING: the trigger is the cascade, for ORM and SQL deletes alike; a cascade from
    # Django would lock the memberships before the trigger waits, and could deadlock with an
    # evaluation closing one of them. Neither key has its own index:
    # membership_entered_idx / membership_customer_idx lead with the same column.
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships",
                                db_constraint=False, db_index=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.DO_NOTHING, related_name="memberships",
                                 db_constraint=False, db_index=False)
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)
    definition_version = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.RULE)

    class Meta:
        ordering = ["-entered_at", "-id"]
        constraints = [
            # At most one open membership per customer and segment; its index also serves the
            # engine's diff and "members now" (WHERE segment_id = %s AND exited_at IS NULL).
            models.UniqueConstraint(fields=["segment", "customer"], condition=Q(exited_at__isnull=True),
                                    name="membership_one_open_row"),
            models.CheckConstraint(condition=Q(exited_at__isnull=True) | Q(exited_at__gte=models.F("entered_at")),
                                   name="membership_exit_after_entry"),
        ]
        indexes = [
            # members at a past time: WHERE segment_id = %s AND entered_at <= %s AND (exited_at > %s OR NULL)
            models.Index(fields=["segment", "entered_at"], name="membership_entered_idx"),
            # a customer's memberships on their profile
            models.Index(fields=["customer", "-entered_at"], name="membership_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id} from {self.entered_at:%Y-%m-%d %H:%M}"


class SegmentEvaluation(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        INGEST = "ingest", "New data"
        EDIT = "edit", "Definition saved"
        MANUAL = "manual", "Run by hand"
        DEPENDENCY = "dependency", "A referenced segment changed"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="evaluations")
    now = models.DateTimeField(help_text="The moment the rule was evaluated as of")
    definition_version = models.PositiveIntegerField(default=0)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    incremental = models.BooleanField(default=False, help_text="Only the customers new data touched")
    customers_checked = models.IntegerField(null=True, blank=True)
    entered = models.IntegerField(default=0)
    exited = models.IntegerField(default=0)
    size = models.IntegerField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["segment", "-created_at"], name="evaluation_segment_idx"),
                   models.Index(fields=["status", "started_at"], name="evaluation_status_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id} @ {self.now:%Y-%m-%d %H:%M} ({self.status})"


class MembershipChange(models.Model):
    """The outbox: every entered/exited fact, in order, for campaigns and webhooks to
    consume by id (each consumer keeps its own cursor)."""

    class Change(models.TextChoices):
        ENTERED = "entered", "Entered"
        EXITED = "exited", "Exited"

    # No database-level keys, for the reason on Membership.segment (the engine writes these
    # rows with the memberships, holding the segment row and having committed the
    # evaluation's); change_segment_idx leads with segment, so no index of its own.
    # `evaluation` is a note of which run wrote the row, read with the row and never
    # searched by: no index (one fewer per change written), and nothing to null — an
    # evaluation is only deleted with its segment, whose changes go too.
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes", db_constraint=False,
                                db_index=False)
    # Not a foreign key: an exit must stay readable after its customer is deleted.
    customer_id = models.BigIntegerField()
    change = models.CharField(max_length=8, choices=Change.choices)
    at = models.DateTimeField()
    evaluation = models.ForeignKey(SegmentEvaluation, on_delete=models.DO_NOTHING, null=True, blank=True,
                                   db_constraint=False, db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        # (segment, at) serves the changes feed's ?since=. A BRIN on `at` instead would save
        # 0.2–0.4 s of a 180k first evaluation, but the planner then reads the segment's whole
        # history for a recent `since` (190 ms at 3M changes, against ~1 ms): kept a B-tree.
        indexes = [models.Index(fields=["segment", "id"], name="change_segment_idx"),
                   models.Index(fields=["segment", "at"], name="change_segment_at_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.change} {self.segment_id} at {self.at:%Y-%m-%d %H:%M}"


class SegmentSizeSnapshot(models.Model):
    """Size per UTC day (the last evaluation's), with the day's entries and exits: trend charts."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="daily_sizes")
    day = models.DateField()
    size = models.IntegerField()
    entered = models.IntegerField(default=0)
    exited = models.IntegerField(default=0)

    class Meta:
        ordering = ["segment", "day"]
        constraints = [models.UniqueConstraint(fields=["segment", "day"], name="segment_day_unique")]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.day}: {self.size}"


class SegmentSettings(models.Model):
    """Hygiene thresholds of the tenant (one row per tenant schema, made on first use)."""

    min_size = models.PositiveIntegerField(
        default=50, help_text="Segments smaller than this are flagged as too small to act on")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "segment settings"

    def __str__(self) -> str:
        return f"minimum size {self.min_size}"


class DeletedCustomer(models.Model):
    """Ids of customers deleted in the last day, written by the delete trigger (migration
    0005). A full evaluation reads customers for seconds before it may write; the ids here
    are what it drops from its rows once it holds the delete lock — a lookup in a small
    table instead of re-reading every matched customer (1 s at 180k). Ids are never
    reused, so an id here is gone for good."""

    customer_id = models.BigIntegerField(primary_key=True)
    deleted_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["deleted_at"]

    def __str__(self) -> str:
        return f"customer {self.customer_id} deleted at {self.deleted_at:%Y-%m-%d %H:%M}"


from segments.warehouse.models import WarehouseExport, WarehouseExportFile, WarehouseSchedule  # noqa: E402,F401
