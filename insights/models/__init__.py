"""insights.models: the tables of model runs (registry.py, what Django loads) beside the
pure modelling code (preprocess, clustering, distil, persona: arrays in, arrays out)."""

from insights.models.registry import (  # noqa: F401
    ChurnModel, Cluster, ClusterAssignment, ClusteringRun, CustomerScore, EngagementSnapshot, JourneyMap, LookalikeRun,
    LookalikeScore,
)
