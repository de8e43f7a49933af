"""How Strata declares Celery tasks (house rule 4) and fans work out to tenants.

- `tenant_task`: runs inside one tenant's schema, which tenant-schemas-celery restores
  from the message header. Sent from the public schema (no tenant), it fails closed.
- `public_task`: beat dispatchers and other cross-tenant work, run in the public schema.
- `for_each_tenant`: the dispatcher's loop; it stamps each message with the tenant's
  schema instead of switching the connection, so the dispatcher itself stays public.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from celery import Task
from celery.signals import task_postrun

from django.conf import settings
from django.db import close_old_connections, connection
from django_tenants.utils import get_public_schema_name

from config.celery import SENT_AT_HEADER, app
from tenants.selectors import tenants_active

DEFAULTS = {"acks_late": True, "reject_on_worker_lost": True, "soft_time_limit": 300, "time_limit": 360}


class TenantRequired(RuntimeError):
    """A tenant task was delivered without a tenant; refusing to touch the public schema."""


def tenant_task(*, name: str, **options) -> Callable:
    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            if connection.schema_name == get_public_schema_name():
                raise TenantRequired(f"{name} needs a tenant; it was sent from the public schema")
            return fn(*args, **kwargs)

        return app.task(name=name, **(DEFAULTS | options))(run)

    return decorate


_schemas_served: set[str] = set()


def connection_recycle() -> bool:
    """After a task: close this worker's database connection once it has served
    settings.WORKER_SCHEMAS_PER_CONNECTION schemas (the next task opens a fresh one); True
    when it closed. A PostgreSQL backend keeps the catalog entries of every schema its
    queries touched — ~0.5 MB a tenant (bench/tenants.py, worker part) — so one connection
    kept across a thousand tenants would hold hundreds of MB in its backend."""
    _schemas_served.add(connection.schema_name)
    if len(_schemas_served) < settings.WORKER_SCHEMAS_PER_CONNECTION:
        return False
    connection.close()
    _schemas_served.clear()
    return True


def _recycle_after_task(task=None, **_kwargs) -> None:
    # What Django does around a request: drop a connection past CONN_MAX_AGE or broken by an
    # error, keep a healthy one. Celery's own fixup would close it after every task (a new
    # backend and its catalog cache per task); settings.CELERY_DB_REUSE_MAX keeps it from that.
    # Not for a task run in the caller's process (`apply`, eager): its caller's connection,
    # maybe inside a transaction, is not the task's to close.
    if not getattr(getattr(task, "request", None), "is_eager", False) and not connection.in_atomic_block:
        close_old_connections()
    connection_recycle()


# Connected where every task module is declared (the worker imports them all).
task_postrun.connect(_recycle_after_task, weak=False)


def public_task(*, name: str, **options) -> Callable:
    def decorate(fn: Callable) -> Callable:
        return app.task(name=name, **(DEFAULTS | options))(fn)

    return decorate


def send_to_tenant(task: str | Task, *, schema_name: str, countdown: float | None = None, **kwargs):
    """Enqueue a task to run in a tenant's schema (`countdown` seconds from now at the
    earliest). A service names the task it queues ("segments.evaluate_segment") rather
    than importing its tasks module, which imports the service: the registered name is the
    contract between the two."""
    name = task if isinstance(task, str) else task.name
    return app.send_task(name, kwargs=kwargs, headers={"_schema_name": schema_name}, countdown=countdown)


def for_each_tenant(task, **kwargs) -> int:
    """Enqueue `task(**kwargs)` once per active tenant; returns how many were sent."""
    sent = 0
    for schema_name in tenants_active().values_list("schema_name", flat=True).iterator():
        send_to_tenant(task, schema_name=schema_name, **kwargs)
        sent += 1
    return sent


def header(request, name: str):
    """A message header of a task: its running context keeps custom headers as `headers`
    or as attributes (by protocol); a worker's Request (task_revoked) in `request_dict`."""
    for headers in (getattr(request, "headers", None), getattr(request, "request_dict", None)):
        if headers and name in headers:
            return headers[name]
    return request.get(name) if hasattr(request, "get") else None


def sent_at(request) -> float | None:
    """When the running task's message was published (config.celery stamps it)."""
    try:
        return float(header(request, SENT_AT_HEADER))
    except (TypeError, ValueError):
        return None
