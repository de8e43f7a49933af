"""Who is acting, from where: set once per request at the edge, read by audit_record."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None
    user_agent: str


request_meta: ContextVar[RequestMeta | None] = ContextVar("strata_request_meta", default=None)


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = RequestMeta(ip=request.META.get("REMOTE_ADDR") or None,
                           user_agent=request.META.get("HTTP_USER_AGENT", "")[:400])
        token = request_meta.set(meta)
        try:
            return self.get_response(request)
        finally:
            request_meta.reset(token)
