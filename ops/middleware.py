"""Every request is counted by route pattern (ops.telemetry), outermost so its latency is
the whole of what the server spent on it."""

import time

from django.conf import settings

from ops import telemetry


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        telemetry.request_observed(route=route_of(request), method=request.method, status=response.status_code,
                                   seconds=time.perf_counter() - started)
        return response


def route_of(request) -> str:
    """The URL pattern that answered (`/api/v1/customers/<str:external_id>/`), never the
    path itself: ids in a label would make a series per customer."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return "/" + match.route.lstrip("^")
    if settings.STATIC_URL and request.path_info.startswith("/" + settings.STATIC_URL.strip("/") + "/"):
        return "static"
    return "unmatched"
