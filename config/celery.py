"""The tenant-aware Celery app.

tenant-schemas-celery stamps every message with the schema that was active when it was
sent and switches the worker's connection to it before the task runs. Tasks that work on
one tenant's data use `tenant_task` (fails closed in the public schema); beat dispatchers
use `public_task` and fan out with `for_each_tenant`.
"""

import os

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
