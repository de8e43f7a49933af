"""Routing by host and the gate in front of every tenant page."""

from __future__ import annotations

import structlog
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django_tenants.middleware.main import TenantMainMiddleware

from tenants.routing import routed
from tenants.selectors import membership_for

# Paths a tenant host serves without a logged-in member: login, the handoff from the
# public site, health checks and assets. (Tracking endpoints join with the ingest issue.)
# /v1/ is the tracking API, authenticated by the write key. /unsubscribe/ is reached by
# the tenant's end customers from a campaign email: its signed token is the credential.
OPEN_PREFIXES = ("/accounts/", "/auth/handoff/", "/invitations/", "/unsubscribe/", "/v1/", "/healthz", "/static/",
                 "/favicon.ico")
# The API answers for itself (401/403/404 JSON from DRF), never with a login redirect.
API_PREFIXES = ("/api/",)


class TenantRoutingMiddleware(TenantMainMiddleware):
    """django-tenants' host lookup, remembered per process (tenants/routing.py); an unknown
    host is a plain 404 page."""

    def get_tenant(self, domain_model, hostname):
        return routed(hostname, lambda: super(TenantRoutingMiddleware, self).get_tenant(domain_model, hostname))

    def no_tenant_found(self, request, hostname):
        raise Http404(f"No Strata workspace at {hostname}")


class TenantAccessMiddleware:
    """On a tenant host: suspended tenants get a clear page, anonymous users the login,
    and people who are not members a 404 (the workspace's existence is not disclosed)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        structlog.contextvars.bind_contextvars(tenant=getattr(tenant, "slug", None))
        if tenant is None or tenant.is_public:
            return self.get_response(request)
        if request.path.startswith(("/healthz", "/static/")):
            return self.get_response(request)
        if tenant.status != tenant.Status.ACTIVE:
            return render(request, "tenants/suspended.html", {"tenant": tenant}, status=403)
        if request.path.startswith(OPEN_PREFIXES + API_PREFIXES):
            return self.get_response(request)
        user = request.user
        if not user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={request.get_full_path()}")
        request.membership = membership_for(user=user, tenant=tenant)
        if request.membership is None:
            raise Http404("Not a member of this workspace")
        return self.get_response(request)
