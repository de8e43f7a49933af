"""What every HTML view shares: declaring the permission a page needs, and the status a page
answers with when a service refuses. Apps' pages stay free of tenants' internals: a request
on a tenant host carries `request.membership` (set by tenants' middleware), whose `has`
answers for the member's role."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404

from common.http import http_status
from common.errors import DomainError, Forbidden

ANY_MEMBER = "member"  # declared by pages and API views every member (and key) may use


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


def refuse_forbidden(error: DomainError) -> None:
    """An HTML view's service said Forbidden: answer with Django's 403 page, as `requires`
    does, instead of rendering the form with the refusal as a field problem."""
    if isinstance(error, Forbidden):
        raise PermissionDenied(error.problems[0].message if error.problems else "")


def page_status(error: DomainError) -> int:
    """The status an HTML page answers with when it re-renders a form with the error: a page
    has no use for 401 (the session middleware already asked for a login), so it is a 400."""
    status = http_status(error)
    return 400 if status == 401 else status
