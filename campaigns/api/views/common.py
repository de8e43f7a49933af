"""What the plays, campaigns and webhooks API views share: validated input, an object of
this workspace or 404, cursor pages, choices from the query string, CSV answers."""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes


from common.api import validated  # noqa: F401 - the views' names
from common.errors import Code, Problem
from common.pagination import Newest, cursor_page  # noqa: F401 - the views' names


def object_or_404(model, pk: int, *, related=()):
    obj = model.objects.select_related(*related).filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


class Log(Newest):
    page_size = 100
    max_page_size = 1000


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
