"""What the plays, campaigns and webhooks API views share: validated input, an object of
this workspace or 404, cursor pages, choices from the query string, CSV answers."""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from rest_framework.exceptions import NotFound

from common.api import ensure_body_within
from common.errors import Code, DomainError, Problem
from common.pagination import Cursor


MAX_BODY_BYTES = 256 * 1024


def validated(serializer_class, request):
    ensure_body_within(request, MAX_BODY_BYTES)
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


def object_or_404(model, pk: int, *, related=()):
    obj = model.objects.select_related(*related).filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


class Newest(Cursor):
    """Keyset pages, newest first; a cursor this list did not hand out is a coded 400."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise DomainError.single(path="cursor", code=Code.INVALID_CURSOR,
                                     message="This cursor is not one this list handed out.") from None


class Log(Newest):
    page_size = 100
    max_page_size = 1000


def cursor_page(request, view, queryset, serializer, *, paginator=Newest, context=None):
    pager = paginator()
    page = pager.paginate_queryset(queryset, request, view=view)
    return pager.get_paginated_response(serializer(page, many=True, context=context or {}).data)


def choice_param(params, name: str, choices, problems: list[Problem]) -> str | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if value not in choices:
        problems.append(Problem(name, Code.INVALID_CHOICE, f"{name} is one of {', '.join(choices)}."))
        return None
    return value


def csv_response(chunks, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


CSV = {(200, "text/csv"): OpenApiTypes.STR}
