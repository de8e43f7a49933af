"""Domain errors carry a machine-readable code and a path; HTTP mapping happens once, here."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.http import Http404


@dataclass(frozen=True)
class Problem:
    path: str
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"path": self.path, "code": self.code, "message": self.message}


@dataclass
class DomainError(Exception):
    """Bad input or a broken business rule. Holds every problem found, not just the first."""

    problems: list[Problem] = field(default_factory=list)
    status: int = 400

    @classmethod
    def single(cls, *, path: str, code: str, message: str, status: int = 400) -> "DomainError":
        return cls(problems=[Problem(path=path, code=code, message=message)], status=status)

    def __str__(self) -> str:
        return "; ".join(f"{p.path}: {p.code}: {p.message}" for p in self.problems)

    def as_payload(self) -> dict:
        return {"errors": [p.as_dict() for p in self.problems]}


def _drf_problems(detail, path: str = "") -> list[Problem]:
    from rest_framework import exceptions as drf_exceptions

    if isinstance(detail, dict):
        out: list[Problem] = []
        for key, value in detail.items():
            sub = key if key != "non_field_errors" else ""
            out += _drf_problems(value, f"{path}.{sub}".strip(".") if sub else path)
        return out
    if isinstance(detail, list):
        if all(isinstance(item, drf_exceptions.ErrorDetail) for item in detail):
            return [Problem(path=path, code=item.code, message=str(item)) for item in detail]
        out = []
        for index, item in enumerate(detail):
            out += _drf_problems(item, f"{path}[{index}]")
        return out
    return [Problem(path=path, code=getattr(detail, "code", "invalid"), message=str(detail))]


def api_exception_handler(exc, context):
    # DRF is imported here, not at module level: DRF's settings import the authentication
    # classes, whose services import this module.
    from rest_framework import exceptions as drf_exceptions
    from rest_framework.response import Response
    from rest_framework.views import exception_handler as drf_default_handler

    if isinstance(exc, DomainError):
        return Response(exc.as_payload(), status=exc.status)
    if isinstance(exc, Http404):
        return Response({"errors": [{"path": "", "code": "not_found", "message": "Not found."}]}, status=404)
    if isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_default_handler(exc, context)
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        response.data = {"errors": [p.as_dict() for p in _drf_problems(exc.detail)]}
    return response


def ensure_body_within(request, limit: int) -> None:
    """API writes state their own body limit: DRF's parsers read the body as a stream, so
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not bound it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise DomainError.single(path="", code="too_large", status=413,
                                 message=f"A request may carry at most {limit // 1024:,} KB.")
