"""The tenant-aware Celery app.

tenant-schemas-celery stamps every message with the schema that was active when it was
sent and switches the worker's connection to it before the task runs. Tasks that work on
one tenant's data use `tenant_task` (fails closed in the public schema); beat dispatchers
use `public_task` and fan out with `for_each_tenant`.
"""

import os
import time

from celery.signals import beat_embedded_init, beat_init, before_task_publish
from django_structlog.celery.signals import bind_extra_task_metadata
from django_structlog.celery.steps import DjangoStructLogInitStep
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = CeleryApp("strata")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["customers.imports"])  # customers/imports/tasks.py
# Task logs carry task_id (django-structlog) and the tenant the task runs for.
app.steps["worker"].add(DjangoStructLogInitStep)


def _bind_tenant_to_logs(sender, task=None, logger=None, **_kwargs) -> None:
    # django-structlog clears the context at task start and then sends this signal;
    # tenant-schemas-celery has already switched the schema by then.
    import structlog
    from django.db import connection

    structlog.contextvars.bind_contextvars(tenant=connection.schema_name)


bind_extra_task_metadata.connect(_bind_tenant_to_logs, weak=False)


SENT_AT_HEADER = "strata_sent_at"


def _stamp_sent_at(sender=None, headers=None, **_kwargs) -> None:
    # When each message left for its queue: /healthz reads the oldest waiting one's to say
    # how far behind each queue is (ops.health.check_queues).
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, time.time())


before_task_publish.connect(_stamp_sent_at, weak=False)


BEAT_KEY = "strata:beat:last"  # global on purpose: beat serves every tenant (ops.health reads it)


def beat_started(**_kwargs) -> None:
    """Beat says it is alive as it starts, so /healthz need not wait for its first tick."""
    import redis
    from django.conf import settings
    from django.utils import timezone

    if settings.REDIS_URL:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1).set(BEAT_KEY, timezone.now().isoformat(),
                                                                        ex=24 * 3600)


beat_init.connect(beat_started, weak=False)
beat_embedded_init.connect(beat_started, weak=False)
