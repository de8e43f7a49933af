"""Input and output of /api/v1/insights/."""

from __future__ import annotations

from rest_framework import serializers

from common.api import StrictInput
from insights.models import ChurnModel, Cluster, ClusteringRun, CustomerScore, LookalikeRun


class FeatureOutput(serializers.Serializer):
    name = serializers.CharField()
    group = serializers.CharField()
    kind = serializers.CharField()
    source = serializers.CharField()
    description = serializers.CharField()
    missing = serializers.BooleanField(help_text="May be missing (then imputed with an indicator), never a silent 0")
    rule = serializers.JSONField(allow_null=True, help_text="The rule-language condition a threshold on it becomes")


class ClusteringRunInput(StrictInput):
    algorithm = serializers.CharField(required=False, default=ClusteringRun.Algorithm.KMEANS)
    k = serializers.IntegerField(required=False, allow_null=True, default=None,
                                 help_text="Clusters to fit; omit to choose by silhouette over k_min..k_max")
    k_min = serializers.IntegerField(required=False, default=2)
    k_max = serializers.IntegerField(required=False, default=8)
    groups = serializers.ListField(child=serializers.CharField(), required=False, default=list, max_length=20)
    features = serializers.ListField(child=serializers.CharField(), required=False, default=list, max_length=500)
    segment = serializers.CharField(required=False, allow_null=True, default=None,
                                    help_text="Cluster only this segment's members")
    seed = serializers.IntegerField(required=False, default=42)


class ClusterOutput(serializers.ModelSerializer):
    f1 = serializers.FloatField(read_only=True, allow_null=True)
    segment = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)

    class Meta:
        model = Cluster
        fields = ["index", "key", "size", "share", "lift", "persona", "proposal", "proposal_summary", "precision",
                  "recall", "f1", "matched", "segment"]


class ClusteringRunOutput(serializers.ModelSerializer):
    segment = serializers.CharField(source="scope_key", help_text="The scope's segment key (empty: everyone)")
    task_run = serializers.IntegerField(source="task_run_id", allow_null=True, help_text="GET /api/v1/tasks/<id>/")

    class Meta:
        model = ClusteringRun
        fields = ["version", "status", "algorithm", "k_requested", "k_min", "k_max", "k", "groups", "segment", "seed",
                  "as_of", "customers", "silhouette", "quality", "is_active", "error", "task_run", "created_at",
                  "finished_at"]


class ClusteringRunDetailOutput(ClusteringRunOutput):
    clusters = ClusterOutput(many=True, read_only=True)

    class Meta(ClusteringRunOutput.Meta):
        fields = [*ClusteringRunOutput.Meta.fields, "features", "projection", "clusters"]


class SegmentFromClusterInput(StrictInput):
    key = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ChurnModelInput(StrictInput):
    seed = serializers.IntegerField(required=False, default=42)


class ChurnModelOutput(serializers.ModelSerializer):
    task_run = serializers.IntegerField(source="task_run_id", allow_null=True)

    class Meta:
        model = ChurnModel
        fields = ["version", "status", "as_of", "horizon_days", "lead_days", "seed", "metrics", "calibration", "by_lead",
                  "importance", "ltv", "customers", "is_active", "error", "task_run", "created_at", "finished_at"]


class ScoreOutput(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    model = serializers.IntegerField(source="model.version")

    class Meta:
        model = CustomerScore
        fields = ["customer", "churn_risk", "drivers", "predicted_ltv", "ltv_low", "ltv_high", "high_potential",
                  "scored_at", "model"]


class LookalikeRunInput(StrictInput):
    segment = serializers.CharField(max_length=64, help_text="The seed segment's key")
    seed = serializers.IntegerField(required=False, default=42)


class LookalikeRunOutput(serializers.ModelSerializer):
    segment = serializers.CharField(source="seed_key")
    task_run = serializers.IntegerField(source="task_run_id", allow_null=True)

    class Meta:
        model = LookalikeRun
        fields = ["version", "status", "segment", "seed", "as_of", "seed_size", "customers", "metrics", "histogram",
                  "error", "task_run", "created_at", "finished_at"]


class LookalikeSegmentInput(StrictInput):
    key = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    top = serializers.IntegerField(required=False, allow_null=True, default=None)
    min_score = serializers.FloatField(required=False, allow_null=True, default=None)
