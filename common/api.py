"""What every API shares: strict input, request limits, and the exception handler that
turns domain errors into responses (their status: common.http). Pages: common.pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from django.http import JsonResponse
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

from common.errors import Code, DomainError, Problem, TooLarge
from common.http import http_status
from common.jsonvalues import value_problem


class StrictInput(serializers.Serializer):
    # Refuses fields it does not know (code `unknown_field`) instead of ignoring them:
    # a typo in a trait name must not look like success. Refuses first what PostgreSQL
    # cannot hold (NUL, lone surrogates, NaN, nesting past MAX_DEPTH), with its path.

    def to_internal_value(self, data):
        hostile = value_problem(data)
        if hostile:
            raise serializers.ValidationError({hostile.path or "non_field_errors": [
                ErrorDetail(hostile.message, code=hostile.code)]})
        errors: dict[str, Any] = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, Mapping):
                raise
            errors, value = dict(error.detail), None
        if isinstance(data, Mapping):
            for key in data:
                if key not in self.fields:
                    errors[key] = [ErrorDetail("Unknown field.", code=Code.UNKNOWN_FIELD)]
        if errors:
            raise serializers.ValidationError(errors)
        return value


def drf_problems(detail, path: str = "") -> list[Problem]:
    """DRF's nested error detail as flat problems with dotted/indexed paths."""
    if isinstance(detail, dict):
        out: list[Problem] = []
        for key, value in detail.items():
            sub = key if key != "non_field_errors" else ""
            out += drf_problems(value, f"{path}.{sub}".strip(".") if sub else path)
        return out
    if isinstance(detail, list):
        if all(isinstance(item, ErrorDetail) for item in detail):
            return [Problem(path=path, code=item.code, message=str(item)) for item in detail]
        out = []
        for index, item in enumerate(detail):
            out += drf_problems(item, f"{path}[{index}]")
        return out
    return [Problem(path=path, code=getattr(detail, "code", "invalid"), message=str(detail))]


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_payload(), status=http_status(exc))
    if isinstance(exc, Http404):
        return Response({"errors": [{"path": "", "code": "not_found", "message": "Not found."}]}, status=404)
    if isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_default_handler(exc, context)
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        response.data = {"errors": [p.as_dict() for p in drf_problems(exc.detail)]}
    return response


def ensure_body_within(request, limit: int) -> None:
    """API writes state their own body limit: DRF's parsers read the body as a stream, so
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not bound it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise TooLarge.single(path="", code=Code.TOO_LARGE,
                              message=f"A request may carry at most {limit // 1024:,} KB.")


MAX_INPUT_BYTES = 256 * 1024


def validated(serializer_class, request, *, limit: int = MAX_INPUT_BYTES) -> dict:
    """The request's body through its input serializer (a coded 400 with paths when it is
    wrong; 413 past `limit` bytes)."""
    ensure_body_within(request, limit)
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Any address under /api/ (or /v1/) that names no route: the API's error shape, not a page."""
    return JsonResponse({"errors": [{"path": "", "code": Code.NOT_FOUND.value,
                                     "message": f"No API route at {request.path}."}]}, status=404)

