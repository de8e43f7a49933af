"""/api/v1/segments/<key>/members/…: members now or at a moment (cursor pages), the CSV
export, static members added or removed by id or by upload, and the entered/exited changes."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.csv import stream_rows
from common.errors import Code, DomainError, Problem, TooLarge
from common.masking import mask_email, mask_name
from common.pagination import paged
from common.parsers import JsonBody
from customers.models import Customer
from segments.api import serializers as s
from segments.api.views.common import (
    AT, LIMIT, MAX_PAGE, ByCustomer, int_param, masks_pii, parse_moment, segment_or_404, validated,
)
from segments.models import Membership
from segments.selectors.members import (
    member_batches, member_rows, resolve_customers, resolve_upload, segment_changes,
)
from segments.services import (
    ensure_static, segment_mark_used,
    segment_members_export, static_members_change,
)
from segments.uploads import MAX_UPLOAD_BYTES, read_upload


class SegmentMembersView(APIView):
    """GET: members by customer id (cursor pages), now or `?at=` a past moment.
    POST (static segments): {"add": [...], "remove": [...]} customer ids or external ids."""

    required_permissions = {"GET": "segments.view", "POST": "segments.edit"}
    parser_classes = [JsonBody]

    @extend_schema(parameters=[AT, LIMIT], responses=paged(s.SegmentMemberOutput))
    def get(self, request, key: str):
        segment = segment_or_404(key)
        now = timezone.now()
        at = parse_moment(request.query_params.get("at"), path="at", now=now)
        int_param(request, "limit", default=None, low=1, high=MAX_PAGE)
        paginator = ByCustomer()
        page = paginator.paginate_queryset(member_rows(segment=segment, at=at), request, view=self)
        segment_mark_used(segment=segment, now=now)
        return paginator.get_paginated_response(s.SegmentMemberOutput(page, many=True,
                                                               context={"mask_pii": masks_pii(request.actor)}).data)

    @extend_schema(request=s.StaticMembersInput, responses=s.StaticMembersOutput)
    def post(self, request, key: str):
        """Customers named by nobody are reported per item in `unmatched`; the others are
        added or removed together. 409 `not_static` for rule and snapshot segments."""
        segment = segment_or_404(key)
        ensure_static(segment)
        data = validated(s.StaticMembersInput, request)
        add = resolve_customers(data["add"], path="add")
        remove = resolve_customers(data["remove"], path="remove")
        unmatched = add.unmatched + remove.unmatched
        if not add.customer_ids and not remove.customer_ids:
            raise DomainError(problems=unmatched)  # nobody named exists: nothing to do
        added, removed = static_members_change(actor=request.actor, segment=segment, add=add.customer_ids,
                                               remove=remove.customer_ids, now=timezone.now())
        segment.refresh_from_db()
        return Response(s.StaticMembersOutput({"added": added, "removed": removed, "size": segment.size,
                                               "unmatched": [p.as_dict() for p in unmatched]}).data)


class SegmentMembersExportView(APIView):
    """All members (now or `?at=`) as CSV: customer_id, external_id, email, name,
    entered_at. Needs `data.export`; personal data masked without `customers.view_pii`."""

    required_permissions = {"GET": "data.export"}

    @extend_schema(parameters=[AT], responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, key: str) -> StreamingHttpResponse:
        segment = segment_or_404(key)
        now = timezone.now()
        at = parse_moment(request.query_params.get("at"), path="at", now=now)
        segment_members_export(actor=request.actor, segment=segment, at=at, now=now)
        masked = masks_pii(request.actor)

        def rows():
            yield ["customer_id", "external_id", "email", "name", "entered_at"]
            for batch in member_batches(segment=segment, at=at):
                for row in batch:
                    c = row.customer
                    email, name = (mask_email(c.email), mask_name(c.name)) if masked else (c.email, c.name)
                    yield [row.customer_id, c.external_id, email, name, row.entered_at.isoformat()]

        stamp = (at or now).strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(stream_rows(rows()), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="segment-{segment.key}-{stamp}.csv"'
        return response


class SegmentMembersUploadView(APIView):
    """Add the customers of a one-column CSV (external ids, or emails for actors who may
    see personal data) to a static segment; unmatched rows are reported with their row."""

    required_permissions = {"POST": "segments.edit"}
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": inline_serializer("MembersUpload", {"file": serializers.FileField()})},
                   responses=s.UploadOutput)
    def post(self, request, key: str):
        segment = segment_or_404(key)
        ensure_static(segment)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_UPLOAD_BYTES + 64 * 1024:
            raise TooLarge.single(path="file", code=Code.TOO_LARGE,
                                  message=f"Files may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        rows = read_upload(request.FILES.get("file"))
        ids, unmatched = resolve_upload(rows, by_email=request.actor.has("customers.view_pii"))
        if not ids:
            raise DomainError(problems=[Problem(f"file.row[{u['row']}]", u["code"], u["message"]) for u in unmatched])
        added, _ = static_members_change(actor=request.actor, segment=segment, add=ids, remove=[], now=timezone.now(),
                                         source=Membership.Source.IMPORT)
        segment.refresh_from_db()
        return Response(s.UploadOutput({"rows": len(rows), "matched": len(rows) - len(unmatched), "added": added,
                                        "size": segment.size, "unmatched": unmatched}).data)


class SegmentChangesView(APIView):
    """Entered/exited facts in order (by id): ?since=<ISO> (at or after), ?after=<id> to
    continue from the last one read, ?limit= (≤ 1000)."""

    required_permissions = {"GET": "segments.view"}

    @extend_schema(parameters=[OpenApiParameter("since", OpenApiTypes.STR), OpenApiParameter("after", OpenApiTypes.INT),
                               LIMIT], responses=s.ChangesOutput)
    def get(self, request, key: str):
        segment = segment_or_404(key)
        since = parse_moment(request.query_params.get("since"), path="since", now=timezone.now())
        after = int_param(request, "after", default=None, low=0)
        limit = int_param(request, "limit", default=100, low=1, high=MAX_PAGE)
        changes = list(segment_changes(segment=segment, since=since, after_id=after)[:limit + 1])
        more, changes = len(changes) > limit, changes[:limit]
        external_ids = dict(Customer.objects.filter(id__in={c.customer_id for c in changes})
                            .values_list("id", "external_id"))
        last_id = changes[-1].id if changes else after
        next_url = None
        if more:
            query = request.query_params.copy()
            query["after"] = str(last_id)
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response({"results": s.ChangeOutput(changes, many=True, context={"external_ids": external_ids}).data,
                         "next": next_url, "last_id": last_id})
