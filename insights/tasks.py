"""Celery tasks of insights: thin, they take ids and call one service."""

from django.utils import timezone

from insights.services.clustering import clustering_run_execute
from ops.tasking import tenant_task

# A run over 1M customers reads features for minutes; the default 5-minute limit would kill it.
RUN_LIMITS = {"soft_time_limit": 3600, "time_limit": 3700}


@tenant_task(name="insights.run_clustering", **RUN_LIMITS)
def run_clustering(*, run_id: int) -> None:
    clustering_run_execute(run_id=run_id, clock=timezone.now)
