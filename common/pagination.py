"""The API's paging (settings: REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]).

TRICKY: its own module, like common.parsers: DRF's generic views read the setting when
they are imported."""

from __future__ import annotations

from functools import cache

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, NotFound
from rest_framework.pagination import CursorPagination

from common.errors import Code


class Cursor(CursorPagination):
    """Every API list pages by an opaque cursor; one that does not decode is the client's
    mistake (400 `invalid_cursor` at `cursor`), not a missing page (DRF answers 404)."""

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise serializers.ValidationError({self.cursor_query_param: [
                ErrorDetail("This cursor is not one a page of this list gave out.", code=Code.INVALID_CURSOR)]}) from None


class NewestFirst(Cursor):
    """Lists of records newest first (created_at, then id: a stable order for the cursor)."""

    ordering = ("-created_at", "-id")


@cache
def paged(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of one page of a cursor-paged list of `item` (for extend_schema on views
    that page by hand): {"next", "previous", "results"}."""
    name = "Paged" + item.__name__.removesuffix("Output")
    return type(name, (serializers.Serializer,), {
        "__module__": item.__module__,
        "next": serializers.URLField(allow_null=True, help_text="The next page (null: this is the last)"),
        "previous": serializers.URLField(allow_null=True, help_text="The previous page (null: this is the first)"),
        "results": item(many=True),
    })



class Newest(Cursor):
    """Keyset pages of an API list, newest first (?limit= up to 500)."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


def cursor_page(request, view, queryset, serializer, *, paginator=Newest, context=None):
    """One page of `queryset` as the list's answer: {"next", "previous", "results"}."""
    pager = paginator()
    page = pager.paginate_queryset(queryset, request, view=view)
    return pager.get_paginated_response(serializer(page, many=True, context=context or {}).data)
