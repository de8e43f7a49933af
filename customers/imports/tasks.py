"""Celery task of the CSV import (registered by config.celery's autodiscovery)."""

from django.utils import timezone

from customers.imports.services import import_counts, import_run
from ops.tasking import tenant_task

# A 1M-row file takes minutes; the default 5-minute limit would stop it half-way (it
# would resume on retry, but should not need to).
IMPORT_LIMITS = {"soft_time_limit": 4 * 3600, "time_limit": 4 * 3600 + 300}


@tenant_task(name="customers.run_import", **IMPORT_LIMITS)
def run_import(*, import_id: int) -> dict | None:
    """Run one queued import. Idempotent: a redelivery resumes after the last committed
    chunk, and a finished import is left alone."""
    job = import_run(job_id=import_id, clock=timezone.now)
    return import_counts(job) if job is not None else None
