"""Segment-compatible tracking endpoints on a tenant host: POST /v1/batch, /v1/track, …

Authenticated by the tenant's write key (not a session), so CSRF does not apply; see
customers/ingest/tracking.py for what happens to bad input."""

import time

from django.core.exceptions import RequestDataTooBig
from django.db import connection, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apikeys.selectors import write_key_valid
from common.errors import Code
from customers.ingest import inbox
from customers.ingest.store import refusals
from customers.ingest.tracking import MAX_BATCH_BYTES, RequestRejected, parse_batch, read_body, write_key_from
from common import ratelimit
from ops import telemetry

BACKLOG_RETRY_S = 2


def _rejected(error: RequestRejected) -> JsonResponse:
    return JsonResponse({"success": False, "errors": [{"path": error.path, "code": error.code, "message": error.message}]},
                        status=error.status)


def _retry_later(status: int, code: str, message: str, wait: int) -> JsonResponse:
    response = _rejected(RequestRejected(status, "writeKey", code, message))
    response["Retry-After"] = str(wait)
    telemetry.request_rejected(source="tracking", code=code)
    return response


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise RequestRejected(400, "", "invalid_content_length", "Content-Length must be a number of bytes.") from None


@csrf_exempt
@require_POST
def sdk_metrics(request):
    """analytics.js reports its own health (retries, delivery counts) to /v1/m. Nothing of
    the tenant's customers is in it and nothing is kept: it is answered so the SDK does
    not retry it or log an error in the customer's page."""
    return JsonResponse({"success": True})


@csrf_exempt
@require_POST
def tracking(request, kind: str | None = None):
    now = timezone.now()
    try:
        if _declared_length(request) > MAX_BATCH_BYTES:
            raise RequestRejected(400, "", "batch_too_large", f"A request may carry at most {MAX_BATCH_BYTES // 1024} KB.")
        try:
            raw = request.body
        except RequestDataTooBig:
            raise RequestRejected(400, "", "batch_too_large", "The request is too large.") from None
        body = read_body(raw, request.META.get("HTTP_CONTENT_ENCODING", ""))
        write_key = write_key_from(body, request.META.get("HTTP_AUTHORIZATION", ""))
        if not write_key_valid(write_key):
            raise RequestRejected(401, "writeKey", "invalid_write_key", "Unknown or revoked write key.")
        wait, found = ratelimit.hit_reading(bucket=f"tracking:{write_key[:24]}", limit=ratelimit.configured("tracking"),
                                            now=time.time(), keys=[inbox.BACKLOG_KEY])
        if wait is not None:  # SDKs retry a 429 after Retry-After: nothing is lost
            return _retry_later(429, Code.RATE_LIMITED, f"Too many requests with this write key; retry in {wait} s.",
                                wait)
        if inbox.backlogged(found):  # and a 503: the workspace's earlier events are still being stored
            return _retry_later(503, Code.INGEST_BACKLOG, "Events are arriving faster than they are stored; retry "
                                f"in {BACKLOG_RETRY_S} s.", BACKLOG_RETRY_S)
        parsed = parse_batch(body, now=now, single_type=kind)
    except RequestRejected as error:
        telemetry.request_rejected(source="tracking", code=error.code)
        return _rejected(error)
    accepted, refused = refusals(parsed.messages)
    rejected = sorted(parsed.problems + refused, key=lambda p: p.index)
    with transaction.atomic():
        inbox.accept(messages=accepted, received_at=now)  # stored once this commits (customers/ingest/inbox.py)
    telemetry.ingest_counted(source="tracking", tenant=connection.schema_name, accepted=0, duplicates=0,
                             rejected=[p.code for p in rejected])  # the merge counts what it stores
    return JsonResponse({
        "success": bool(accepted or not rejected),
        "accepted": len(accepted),
        "rejected": [{"index": p.index, "path": p.path, "code": p.code, "message": p.message} for p in rejected],
    }, status=200 if (accepted or not rejected) else 400)
