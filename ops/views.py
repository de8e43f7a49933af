import hmac
import ipaddress
import time

import structlog
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.actors import Actor
from common.errors import OpsCode, Unauthenticated
from common.pages import ANY_MEMBER, requires
from ops import health, telemetry
from ops.models import TaskRun
from ops.selectors import task_run_get

# Who may watch a run of each kind: the permission its work needs.
KIND_PERMISSIONS = {
    TaskRun.Kind.CSV_IMPORT: "data.import",
    TaskRun.Kind.METRICS_REFRESH: "customers.view",
    TaskRun.Kind.CLUSTERING: "reports.view",
    TaskRun.Kind.CHURN_MODEL: "reports.view",
    TaskRun.Kind.LOOKALIKES: "reports.view",
    TaskRun.Kind.WAREHOUSE_EXPORT: "data.export",
}


@never_cache
@require_GET
def healthz(request):
    body, healthy = health.report(now=timezone.now())
    return JsonResponse(body, status=200 if healthy else 503)


logger = structlog.get_logger(__name__)


@never_cache
@require_GET
def metrics(request):
    """Prometheus' scrape: every process's counters and the cluster's queue gauges (ops.telemetry).
    Behind the bearer METRICS_TOKEN; without one configured, only loopback clients."""
    if not _may_scrape(request):
        refused = Unauthenticated.single(path="Authorization", code=OpsCode.METRICS_UNAUTHORIZED, message=(
            "Send Authorization: Bearer <METRICS_TOKEN>." if settings.METRICS_TOKEN else
            "Set METRICS_TOKEN to scrape from another host; without it only loopback clients may."))
        response = JsonResponse(refused.as_payload(), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    now = time.time()
    try:
        queues = health.check_queues(now=now).get("queues", {})
    except Exception as error:  # the broker is down: the counters are still worth scraping
        logger.warning("metrics_queues_unavailable", error=f"{type(error).__name__}: {error}"[:200])
        queues = {}
    return HttpResponse(telemetry.exposition(queues=queues, now=now), content_type=telemetry.CONTENT_TYPE)


def _may_scrape(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        offered = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(offered.encode(), token.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def visible_kinds(actor: Actor) -> set[str]:
    return {kind for kind, permission in KIND_PERMISSIONS.items() if actor.has(permission)}


@never_cache
@require_GET
@requires(ANY_MEMBER)
def task_run_view(request, pk: int):
    """The progress bar of one background run (an HTMX partial that polls itself until
    the run finishes). Another tenant's run is 404 (ids are per schema); a run of a kind
    the member's role does not cover is 403."""
    run = task_run_get(run_id=pk)
    if run is None:
        raise Http404("No such task")
    if run.kind not in visible_kinds(request.membership):
        raise PermissionDenied(KIND_PERMISSIONS.get(run.kind, "unknown task kind"))
    return render(request, "ops/_task_run.html", {"run": run})
