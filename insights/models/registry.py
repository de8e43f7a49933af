"""The model registry: each clustering run with its settings, its clusters (persona draft,
proposed rule and its measured precision/recall) and its per-customer assignments.

A run is versioned per tenant; at most one is active, and `metric cluster` reads the
active run's keys (CustomerMetrics.cluster, written when the run is activated, in the
same transaction). A run that failed or whose worker died never becomes active, so the
previous one stays in force and nothing half-written is read.
"""

from __future__ import annotations

from django.db import models


class ClusteringRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Algorithm(models.TextChoices):
        KMEANS = "kmeans", "k-means (mini-batch)"
        GMM = "gmm", "Gaussian mixture"

    version = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
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
    task_run = models.ForeignKey("ops.TaskRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by_id = models.BigIntegerField(null=True, blank=True)  # public-schema user: no cross-schema key
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-version"]
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
