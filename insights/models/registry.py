"""The model registry: each clustering run with its settings, its clusters (persona draft,
proposed rule and its measured precision/recall) and its per-customer assignments.

A run is versioned per tenant; at most one is active, and `metric cluster` reads the
active run's keys (CustomerMetrics.cluster, written when the run is activated, in the
same transaction). A run that failed or whose worker died never becomes active, so the
previous one stays in force and nothing half-written is read.
"""

from __future__ import annotations

from django.db import models


class ModelRun(models.Model):
    """What every run shares: a version per tenant, its status, its TaskRun (progress), who
    asked (a public-schema user id: no cross-schema key), its error and times."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    version = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    task_run = models.ForeignKey("ops.TaskRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by_id = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-version"]


class ClusteringRun(ModelRun):
    class Algorithm(models.TextChoices):
        KMEANS = "kmeans", "k-means"
        GMM = "gmm", "Gaussian mixture"

    algorithm = models.CharField(max_length=16, choices=Algorithm.choices, default=Algorithm.KMEANS)
    k_requested = models.PositiveSmallIntegerField(null=True, blank=True, help_text="None: chosen by silhouette")
    k_min = models.PositiveSmallIntegerField(default=2)
    k_max = models.PositiveSmallIntegerField(default=10)
    k = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The number of clusters fitted")
    groups = models.JSONField(default=list, blank=True, help_text="Feature groups used (empty: all)")
    features = models.JSONField(default=list, blank=True, help_text="The catalogue entries the run used")
    # The scope: every customer, or a segment's members at `as_of` (key kept if the segment goes).
    scope_segment = models.ForeignKey("segments.Segment", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="+")
    scope_key = models.CharField(max_length=64, blank=True)
    seed = models.IntegerField(default=42)
    as_of = models.DateTimeField(help_text="The `now` the features were computed at")
    customers = models.IntegerField(null=True, blank=True)
    silhouette = models.JSONField(default=dict, blank=True, help_text="k → silhouette on a sample")
    projection = models.JSONField(default=list, blank=True, help_text="2-D points of a sample: [x, y, cluster]")
    quality = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    artifact = models.CharField(max_length=300, blank=True, help_text="The fitted preprocessing and model (joblib)")
    reassigned_at = models.DateTimeField(null=True, blank=True, help_text="Last nightly assignment of every customer")

    class Meta(ModelRun.Meta):
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True),
                                    name="insights_one_active_clustering_run"),
        ]

    def __str__(self) -> str:
        return f"clustering run {self.version}"


class Cluster(models.Model):
    run = models.ForeignKey(ClusteringRun, on_delete=models.CASCADE, related_name="clusters")
    index = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=64, help_text="What `metric cluster` compares with: r<version>c<n>")
    size = models.IntegerField()
    share = models.FloatField()
    lift = models.JSONField(default=list, blank=True, help_text="Distinguishing features, strongest first")
    persona = models.JSONField(default=dict, blank=True, help_text="The generated persona card draft")
    proposal = models.JSONField(null=True, blank=True, help_text="A rule-language definition distilled from a tree")
    proposal_summary = models.TextField(blank=True)
    precision = models.FloatField(null=True, blank=True)
    recall = models.FloatField(null=True, blank=True)
    matched = models.IntegerField(null=True, blank=True, help_text="Customers in scope the proposal selects")
    segment = models.ForeignKey("segments.Segment", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+", help_text="The segment made from the proposal")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="insights_cluster_run_index")]

    def __str__(self) -> str:
        return self.key

    @property
    def f1(self) -> float | None:
        if not self.precision or not self.recall:
            return None if self.precision is None else 0.0
        return 2 * self.precision * self.recall / (self.precision + self.recall)


class ClusterAssignment(models.Model):
    """A customer's cluster in a run (kept for the runs retained; the active run's key is
    also in CustomerMetrics.cluster for the rule language)."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(ClusteringRun, on_delete=models.CASCADE, related_name="assignments")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    index = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["run", "customer"]
        constraints = [models.UniqueConstraint(fields=["run", "customer"], name="insights_assignment_run_customer")]


class ChurnModel(ModelRun):
    """One training of the tenant's churn model: its time split, its held-out quality and
    the artifact (joblib in tenant-aware storage). At most one is active; its scores are
    the customers' churn_risk and predicted_ltv."""

    as_of = models.DateTimeField(help_text="`now`: the label horizon ends here; scores are as of it")
    horizon_days = models.PositiveSmallIntegerField(help_text="No activity this long is churn")
    lead_days = models.PositiveSmallIntegerField(help_text="Days between the features' cutoff and the label window")
    seed = models.IntegerField(default=42)
    features = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out AUC, PR-AUC, Brier, ECE: model and baseline")
    calibration = models.JSONField(default=list, blank=True)
    by_lead = models.JSONField(default=list, blank=True, help_text="Held-out AUC with features 30–60 days ahead")
    importance = models.JSONField(default=list, blank=True, help_text="Mean contribution per feature group")
    ltv = models.JSONField(default=dict, blank=True, help_text="Predicted LTV settings and distribution")
    artifact = models.CharField(max_length=300, blank=True)
    customers = models.IntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=False)

    class Meta(ModelRun.Meta):
        constraints = [models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True),
                                               name="insights_one_active_churn_model")]

    def __str__(self) -> str:
        return f"churn model {self.version}"


class CustomerScore(models.Model):
    """A customer's scores from the active churn model: risk, its drivers, predicted LTV
    with its interval. (churn_risk and predicted_ltv are also in CustomerMetrics, for rules.)"""

    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, primary_key=True,
                                    related_name="insight_score")
    model = models.ForeignKey(ChurnModel, on_delete=models.CASCADE, related_name="scores")
    churn_risk = models.FloatField()
    drivers = models.JSONField(default=list, blank=True, help_text="[{group, contribution}] raising the risk")
    predicted_ltv = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    ltv_low = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    ltv_high = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    high_potential = models.BooleanField(default=False, help_text="In its first 30 days, predicted LTV in the top decile")
    scored_at = models.DateTimeField()

    class Meta:
        ordering = ["-churn_risk"]
        indexes = [models.Index(fields=["-churn_risk"], name="insights_score_risk_idx")]


class LookalikeRun(ModelRun):
    """Customers scored by their resemblance to a seed segment, with the precision the
    ranking reached on a held-out part of the seed."""

    seed_segment = models.ForeignKey("segments.Segment", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    seed_key = models.CharField(max_length=64)
    seed = models.IntegerField(default=42)
    as_of = models.DateTimeField()
    seed_size = models.IntegerField(null=True, blank=True)
    customers = models.IntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    histogram = models.JSONField(default=list, blank=True, help_text="Customers outside the seed per score tenth")

    class Meta(ModelRun.Meta):
        pass

    def __str__(self) -> str:
        return f"lookalikes of {self.seed_key} ({self.version})"


class LookalikeScore(models.Model):
    """A customer outside the seed and its seed-likeness in a run."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(LookalikeRun, on_delete=models.CASCADE, related_name="scores")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()

    class Meta:
        ordering = ["run", "-score"]
        indexes = [models.Index(fields=["run", "-score"], name="insights_lookalike_rank_idx")]


class JourneyMap(models.Model):
    """A segment's journey (insights.reports.journeys): ordered stages, each with the events
    that mark it and notes on the customers' goals and pains there."""

    segment = models.OneToOneField("segments.Segment", on_delete=models.CASCADE, related_name="journey")
    # [{"name", "events": [names], "goals", "pains"}]
    stages = models.JSONField(default=list)
    author_id = models.BigIntegerField(null=True, blank=True)  # a public-schema user id
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"journey of {self.segment_id}"


class EngagementSnapshot(models.Model):
    """The mean engagement score of a segment's members (segment NULL: all customers) as of
    one moment, one row per group and UTC day (insights.reports.snapshots): the engagement
    KPI's history, which the customers' metrics keep only for today."""

    segment = models.ForeignKey("segments.Segment", on_delete=models.CASCADE, null=True, blank=True,
                                related_name="+")
    day = models.DateField()  # taken_at's UTC day
    taken_at = models.DateTimeField()
    members = models.PositiveIntegerField()
    scored = models.PositiveIntegerField()  # members with any event, who have a score
    mean = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "day"], nulls_distinct=False,
                                    name="insights_engagement_one_per_group_and_day"),
        ]

    def __str__(self) -> str:
        return f"engagement of {self.segment_id or 'all'} on {self.day}"
