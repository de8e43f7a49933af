"""The tenant-aware Celery app.

tenant-schemas-celery stamps every message with the schema that was active when it was
sent and switches the worker's connection to it before the task runs. Tasks that work on
one tenant's data use `tenant_task` (fails closed in the public schema); beat dispatchers
use `public_task` and fan out with `for_each_tenant`.
"""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = CeleryApp("strata")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
