"""The API's permission check: `TenantPermission` (DRF's DEFAULT_PERMISSION_CLASSES) finds
the member or key behind a request and enforces the view's `required_permissions`. Pages use
common.pages.requires; services check again (tenants.permissions.ensure_permitted)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from common.pages import ANY_MEMBER
from tenants.selectors import membership_for


def api_actor(request):
    """The member or API key behind an API request, or None (→ 404: no such workspace for you)."""
    actor = getattr(request.auth, "actor", None)
    if actor is not None:
        return actor
    user = request.user
    if not user.is_authenticated:
        return None
    return membership_for(user=user, tenant=request.tenant)


class TenantPermission(BasePermission):
    """API views declare `required_permissions = {"GET": "...", "POST": "..."}`; a method
    without an entry is refused (fail closed). ANY_MEMBER allows every member and key."""

    def has_permission(self, request, view) -> bool:
        if not request.user.is_authenticated and request.auth is None:
            raise exceptions.NotAuthenticated()
        actor = api_actor(request)
        if actor is None:
            raise exceptions.NotFound()
        request.actor = actor
        needed = getattr(view, "required_permissions", {}).get(request.method)
        if needed is None and request.method in ("HEAD", "OPTIONS"):
            needed = getattr(view, "required_permissions", {}).get("GET")
        if needed is None:
            raise exceptions.MethodNotAllowed(request.method)
        if needed != ANY_MEMBER and not actor.has(needed):
            raise exceptions.PermissionDenied(f"This needs the “{needed}” permission.", code="permission_denied")
        return True
