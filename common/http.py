"""The one mapping of a domain error's kind to its HTTP status, for the API's exception
handler and the HTML pages alike. No DRF import here: DRF's settings import the permission
classes, which import the pages' helpers, which import this."""

from __future__ import annotations

from common.errors import Conflict, DomainError, Forbidden, Gone, NotFound, TooLarge, Unauthenticated

_STATUS_BY_KIND: tuple[tuple[type[DomainError], int], ...] = (
    (Unauthenticated, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409), (Gone, 410), (TooLarge, 413),
)


def http_status(error: DomainError) -> int:
    """The HTTP status of a domain error's kind (400 for plain bad input)."""
    for kind, status in _STATUS_BY_KIND:
        if isinstance(error, kind):
            return status
    return 400
