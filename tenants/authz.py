"""Permission checks at the interfaces: `@requires` for HTML views, `TenantPermission`
for API views. Services check again (tenants.access.ensure_permitted)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from common.errors import Forbidden
from tenants.selectors import membership_for

ANY_MEMBER = "member"  # declared by pages every member may see


def requires(permission: str) -> Callable:
    """Declare and enforce the permission an HTML view needs on a tenant host.
    TenantAccessMiddleware has already turned away anonymous users and non-members."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None:
                raise Http404("Not a member of this workspace")
            if permission != ANY_MEMBER and not membership.has(permission):
                raise PermissionDenied(permission)
            return view(request, *args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorate


def refuse_forbidden(error) -> None:
    """An HTML view's service said 403 (a DomainError): answer with Django's 403 page, as
    `requires` does, instead of rendering the form with the refusal as a field problem."""
    if isinstance(error, Forbidden):
        raise PermissionDenied(error.problems[0].message if error.problems else "")


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
