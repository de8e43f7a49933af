"""Celery tasks of insights: thin, they take ids and call one service; beat's nightly
dispatcher re-assigns every customer to the active clusters, retrains the churn model and
takes the engagement snapshot per tenant."""

from datetime import datetime

from django.utils import timezone

from insights.models import ChurnModel, ClusteringRun, LookalikeRun
from insights.services import runs
from insights.services.churn import churn_model_execute, churn_model_nightly
from insights.services.clustering import clustering_reassign, clustering_run_execute
from insights.reports.snapshots import engagement_snapshot_take
from insights.services.lookalikes import lookalike_run_execute
from ops.tasking import for_each_tenant, public_task, tenant_task

# A run over 1M customers reads features for minutes; the default 5-minute limit would kill it.
RUN_LIMITS = {"soft_time_limit": 3600, "time_limit": 3700}


@tenant_task(name="insights.run_clustering", **RUN_LIMITS)
def run_clustering(*, run_id: int) -> None:
    clustering_run_execute(run_id=run_id, clock=timezone.now)


@tenant_task(name="insights.train_churn_model", **RUN_LIMITS)
def train_churn_model(*, model_id: int) -> None:
    churn_model_execute(model_id=model_id, clock=timezone.now)


@tenant_task(name="insights.score_lookalikes", **RUN_LIMITS)
def score_lookalikes(*, run_id: int) -> None:
    lookalike_run_execute(run_id=run_id, clock=timezone.now)


@tenant_task(name="insights.nightly", **RUN_LIMITS)
def nightly(*, now_iso: str) -> None:
    now = datetime.fromisoformat(now_iso)
    runs.fail_stuck(models=[ClusteringRun, ChurnModel, LookalikeRun], now=timezone.now())
    clustering_reassign(now=now)
    churn_model_nightly(now=now, clock=timezone.now)
    engagement_snapshot_take(now=now)


@public_task(name="insights.dispatch_nightly", soft_time_limit=60, time_limit=90)
def dispatch_nightly() -> int:
    return for_each_tenant(nightly, now_iso=timezone.now().isoformat())
