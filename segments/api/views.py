"""/api/v1/segments/: thin views over segments.services (writes) and segments.selectors
(reads). Segments are named by key; a key of another workspace is
simply unknown here (404). Personal data (email, name, personal traits) in member rows
and explanations is masked for actors without `customers.view_pii`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone as dt_timezone

from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework import exceptions as drf_exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.actors import Actor
from common.api import ensure_body_within
from common.csv import stream_rows
from common.errors import DomainError, NotFound, Problem, TooLarge
from common.masking import mask_email, mask_explain_tree, mask_name
from customers.models import Customer
from customers.selectors import pii_trait_keys
from segments.api import serializers as s
from segments.models import Membership, Segment, SegmentVersion
from segments.rules.explain import explain
from segments.rules.schema import definition_schema
from segments.selectors.facts import customer_facts
from segments.selectors.hygiene import MAX_OVERLAP, hygiene, overlap, stale_segments
from segments.selectors.members import (
    member_batches, member_rows, memberships_of, resolve_customers, resolve_upload, segment_changes,
)
from segments.selectors.preview import Preview, as_warnings, compile_definition, customers_in_order, preview
from segments.selectors.versions import definition_diff
from segments.services import (
    ensure_static, segment_create, segment_delete, segment_evaluate_request, segment_mark_used,
    segment_members_export, segment_update, snapshot_create, static_members_change,
)
from segments.uploads import MAX_UPLOAD_BYTES, read_upload

MAX_BODY_BYTES = 1024 * 1024
MAX_PAGE = 1000


# ------------------------------------------------------------------------------ helpers


def _segment(key: str) -> Segment:
    segment = Segment.objects.select_related("source").filter(key=key).first()
    if segment is None:
        raise Http404("No segment has this key.")
    return segment


def _input(serializer_class, request, **kwargs):
    ensure_body_within(request, MAX_BODY_BYTES)
    data = serializer_class(data=request.data, **kwargs)
    data.is_valid(raise_exception=True)
    return data.validated_data


def parse_moment(raw: str | None, *, path: str, now: datetime) -> datetime | None:
    """An ISO 8601 date or datetime from a query string. A datetime without offset is UTC;
    a date stands for the end of that UTC day (as the daily sizes do). Not after `now`."""
    if raw is None or raw == "":
        return None
    moment = None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime.combine(day + timedelta(days=1), time(), dt_timezone.utc) - timedelta(microseconds=1)
        else:
            moment = datetime.fromisoformat(raw.replace(" ", "+"))  # a "+" arrives as a space when not encoded
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt_timezone.utc)
    except ValueError:
        raise DomainError.single(path=path, code="invalid_datetime",
                                 message="Use an ISO 8601 date (2026-05-31) or datetime (2026-05-31T12:00:00Z).") from None
    start = moment if len(raw) != 10 else moment - timedelta(days=1) + timedelta(microseconds=1)
    if start > now:
        raise DomainError.single(path=path, code="in_future", message="History does not reach into the future.")
    return min(moment, now)  # today, as a date: as of now


def _int_param(request, name: str, *, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f" to {high:,}" if high is not None else " or more"
        raise DomainError.single(path=name, code="invalid_value", message=f"`{name}` is a whole number from {low}{bound}.")
    return value


def _mask(actor: Actor) -> bool:
    return not actor.has("customers.view_pii")


def _written(segment: Segment, warnings, *, status_code: int = 200) -> Response:
    segment.refresh_from_db()
    data = s.SegmentWrittenOutput(segment, context={"now": timezone.now(), "warnings": warnings}).data
    return Response(data, status=status_code)


class ByKey(CursorPagination):
    ordering = "key"
    page_size = 50


class ByCustomer(CursorPagination):
    """Keyset on customer id: pages stay cheap at any depth of a million-member segment."""

    ordering = "customer_id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = MAX_PAGE

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except drf_exceptions.NotFound:
            raise DomainError.single(path="cursor", code="invalid_cursor",
                                     message="This cursor is not one this list handed out.") from None


AT = OpenApiParameter("at", OpenApiTypes.STR, description="ISO date or datetime: members at that moment "
                                                          "(a date: at the end of that UTC day)")
LIMIT = OpenApiParameter("limit", OpenApiTypes.INT, description=f"Rows per page (≤ {MAX_PAGE})")


# ------------------------------------------------------------------------------ segments


class SegmentListView(APIView):
    """Segments by key. Filters: ?kind=, ?status=, ?tag=, ?search= (start of key or name),
    ?review=stale (neither changed nor used for 90 days: the quarterly review list)."""

    required_permissions = {"GET": "segments.view", "POST": "segments.edit"}
    parser_classes = [JSONParser]

    @extend_schema(parameters=[OpenApiParameter("kind", OpenApiTypes.STR), OpenApiParameter("status", OpenApiTypes.STR),
                               OpenApiParameter("tag", OpenApiTypes.STR), OpenApiParameter("search", OpenApiTypes.STR),
                               OpenApiParameter("review", OpenApiTypes.STR, enum=["stale"])],
                   responses=s.SegmentOutput(many=True))
    def get(self, request):
        now = timezone.now()
        params = request.query_params
        segments = Segment.objects.select_related("source")
        problems = []
        if params.get("kind"):
            if params["kind"] not in Segment.Kind.values:
                problems.append(Problem("kind", "invalid_value", "kind is dynamic, static or snapshot."))
            segments = segments.filter(kind=params["kind"])
        if params.get("status"):
            if params["status"] not in Segment.Status.values:
                problems.append(Problem("status", "invalid_value", "status is active, paused or archived."))
            segments = segments.filter(status=params["status"])
        if params.get("tag"):
            segments = segments.filter(tags__contains=[params["tag"]])
        if params.get("search"):
            term = params["search"]
            segments = segments.filter(key__startswith=term.lower()) | segments.filter(name__istartswith=term)
        if params.get("review"):
            if params["review"] != "stale":
                problems.append(Problem("review", "invalid_value", "review=stale lists segments for the quarterly review."))
            segments = segments.filter(pk__in=stale_segments(now=now).values("pk"))
        if problems:
            raise DomainError(problems=problems)
        paginator = ByKey()
        page = paginator.paginate_queryset(segments, request, view=self)
        return paginator.get_paginated_response(s.SegmentOutput(page, many=True, context={"now": now}).data)

    @extend_schema(request=s.SegmentCreateInput, responses={201: s.SegmentWrittenOutput})
    def post(self, request):
        """Create a dynamic (with `definition`) or static segment. The answer carries
        `warnings`: unknown events in the rule and hygiene (too_small, near_duplicate)."""
        data = _input(s.SegmentCreateInput, request)
        now = timezone.now()
        segment, warnings = segment_create(actor=request.actor, now=now, **data)
        return _written(segment, as_warnings(warnings) + hygiene(segment=segment, now=now),
                        status_code=status.HTTP_201_CREATED)


class SegmentDetailView(APIView):
    required_permissions = {"GET": "segments.view", "PATCH": "segments.edit", "DELETE": "segments.edit"}
    parser_classes = [JSONParser]

    @extend_schema(responses=s.SegmentDetailOutput)
    def get(self, request, key: str):
        return Response(s.SegmentDetailOutput(_segment(key), context={"now": timezone.now()}).data)

    @extend_schema(request=s.SegmentUpdateInput, responses=s.SegmentWrittenOutput)
    def patch(self, request, key: str):
        """Change the fields sent. A changed definition becomes a new version and is
        evaluated at once; `warnings` as for create."""
        segment = _segment(key)
        data = dict(_input(s.SegmentUpdateInput, request))
        if "persona" in data:
            data["persona"] = dict(data["persona"])
        now = timezone.now()
        segment, warnings = segment_update(actor=request.actor, segment=segment, now=now, **data)
        flags = hygiene(segment=segment, now=now, use_memberships="definition" not in data)
        return _written(segment, as_warnings(warnings) + flags)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="Other segments reference it (`referenced`)")})
    def delete(self, request, key: str):
        """Delete the segment with its history; refused (409) while other segments use it."""
        segment_delete(actor=request.actor, segment=_segment(key))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _preview_response(request, preview: Preview) -> Response:
    sample = customers_in_order(preview.sample_ids)
    return Response(s.PreviewOutput({
        "count": preview.count,
        "sample": sample,
        "impact": {"would_enter": preview.would_enter, "would_exit": preview.would_exit,
                   "current_size": preview.current_size},
        "warnings": [w.as_dict() for w in preview.warnings],
    }, context={"mask_pii": _mask(request.actor)}).data)


class SegmentPreviewNewView(APIView):
    """Preview a definition before saving a new segment: count and sample (nothing is written)."""

    required_permissions = {"POST": "segments.view"}  # a read, sent as POST for its body
    parser_classes = [JSONParser]

    @extend_schema(request=s.NewPreviewInput, responses=s.PreviewOutput, operation_id="segments_preview_new")
    def post(self, request):
        data = _input(s.NewPreviewInput, request)
        return _preview_response(request, preview(definition=data["definition"], now=timezone.now()))


class SegmentPreviewView(APIView):
    """Preview a definition (default: the saved one) against this segment: count, sample
    and impact — how many would enter and exit versus its current members."""

    required_permissions = {"POST": "segments.view"}
    parser_classes = [JSONParser]

    @extend_schema(request=s.PreviewInput, responses=s.PreviewOutput)
    def post(self, request, key: str):
        segment = _segment(key)
        data = _input(s.PreviewInput, request)
        definition = data.get("definition", segment.definition)
        if definition is None:
            raise DomainError.single(path="definition", code="required",
                                     message="This segment has no rule: send a definition to preview.")
        now = timezone.now()
        result = preview(definition=definition, now=now, segment=segment)
        segment_mark_used(segment=segment, now=now)
        return _preview_response(request, result)


class SegmentEvaluateView(APIView):
    required_permissions = {"POST": "segments.edit"}

    @extend_schema(request=None, responses={202: inline_serializer("EvaluationQueued", {
        "key": serializers.CharField(), "queued": serializers.BooleanField(), "now": serializers.DateTimeField()})})
    def post(self, request, key: str):
        """Queue an evaluation of a dynamic segment now (the segment's `last_evaluation` follows it)."""
        segment = _segment(key)
        now = timezone.now()
        segment_evaluate_request(actor=request.actor, segment=segment, now=now)
        return Response({"key": segment.key, "queued": True, "now": now.isoformat()}, status=status.HTTP_202_ACCEPTED)


# ------------------------------------------------------------------------------ members


class SegmentMembersView(APIView):
    """GET: members by customer id (cursor pages), now or `?at=` a past moment.
    POST (static segments): {"add": [...], "remove": [...]} customer ids or external ids."""

    required_permissions = {"GET": "segments.view", "POST": "segments.edit"}
    parser_classes = [JSONParser]

    @extend_schema(parameters=[AT, LIMIT], responses=s.SegmentMemberOutput(many=True))
    def get(self, request, key: str):
        segment = _segment(key)
        now = timezone.now()
        at = parse_moment(request.query_params.get("at"), path="at", now=now)
        _int_param(request, "limit", default=None, low=1, high=MAX_PAGE)
        paginator = ByCustomer()
        page = paginator.paginate_queryset(member_rows(segment=segment, at=at), request, view=self)
        segment_mark_used(segment=segment, now=now)
        return paginator.get_paginated_response(s.SegmentMemberOutput(page, many=True,
                                                               context={"mask_pii": _mask(request.actor)}).data)

    @extend_schema(request=s.StaticMembersInput, responses=s.StaticMembersOutput)
    def post(self, request, key: str):
        """Customers named by nobody are reported per item in `unmatched`; the others are
        added or removed together. 409 `not_static` for rule and snapshot segments."""
        segment = _segment(key)
        ensure_static(segment)
        data = _input(s.StaticMembersInput, request)
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
        segment = _segment(key)
        now = timezone.now()
        at = parse_moment(request.query_params.get("at"), path="at", now=now)
        segment_members_export(actor=request.actor, segment=segment, at=at, now=now)
        masked = _mask(request.actor)

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
        segment = _segment(key)
        ensure_static(segment)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_UPLOAD_BYTES + 64 * 1024:
            raise TooLarge.single(path="file", code="too_large",
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


# ------------------------------------------------------------------------------ history


class SegmentChangesView(APIView):
    """Entered/exited facts in order (by id): ?since=<ISO> (at or after), ?after=<id> to
    continue from the last one read, ?limit= (≤ 1000)."""

    required_permissions = {"GET": "segments.view"}

    @extend_schema(parameters=[OpenApiParameter("since", OpenApiTypes.STR), OpenApiParameter("after", OpenApiTypes.INT),
                               LIMIT], responses=s.ChangesOutput)
    def get(self, request, key: str):
        segment = _segment(key)
        since = parse_moment(request.query_params.get("since"), path="since", now=timezone.now())
        after = _int_param(request, "after", default=None, low=0)
        limit = _int_param(request, "limit", default=100, low=1, high=MAX_PAGE)
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


class SegmentVersionsView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(responses=s.VersionOutput(many=True))
    def get(self, request, key: str):
        """Every saved definition, newest first."""
        segment = _segment(key)
        versions = SegmentVersion.objects.filter(segment=segment).order_by("-version")
        return Response(s.VersionOutput(versions, many=True).data)


class SegmentVersionDiffView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(parameters=[OpenApiParameter("from", OpenApiTypes.INT, required=True),
                               OpenApiParameter("to", OpenApiTypes.INT, required=True)], responses=s.DiffOutput)
    def get(self, request, key: str):
        """What changed from version `from` to version `to`: added/removed/changed paths and a unified text diff."""
        segment = _segment(key)
        numbers, problems = {}, []
        for name in ("from", "to"):
            if request.query_params.get(name) in (None, ""):
                problems.append(Problem(name, "required", f"Name the version in ?{name}=."))
                continue
            try:
                numbers[name] = _int_param(request, name, default=None, low=1)
            except DomainError as error:
                problems += error.problems
        if problems:
            raise DomainError(problems=problems)
        found = dict(SegmentVersion.objects.filter(segment=segment, version__in=set(numbers.values()))
                     .values_list("version", "definition"))
        missing = [Problem(name, "unknown_version", f"{segment.key} has no version {number}.")
                   for name, number in numbers.items() if number not in found]
        if missing:
            raise NotFound(problems=missing)
        before, after = found[numbers["from"]], found[numbers["to"]]
        diff = definition_diff(before, after, labels=(f"v{numbers['from']}", f"v{numbers['to']}"))
        return Response(s.DiffOutput({"key": segment.key, "from": numbers["from"], "to": numbers["to"], **diff}).data)


# ------------------------------------------------------------------------------ explain


class SegmentExplainView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(responses=s.ExplainOutput)
    def get(self, request, key: str, customer_id: int):
        """Why the customer is in or out: the rule's tree with each node's truth at now and
        the facts that decided it, and whether the customer has an open membership."""
        segment = _segment(key)
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise Http404("No such customer.")
        now = timezone.now()
        membership = Membership.objects.filter(segment=segment, customer=customer, exited_at__isnull=True).first()
        tree = matches = None
        if segment.kind == Segment.Kind.DYNAMIC and segment.definition:
            _, group, _ = compile_definition(segment.definition, now=now, self_key=segment.key)
            facts = customer_facts(customer_ids=[customer.pk], now=now,
                                   segment_keys_at={customer.pk: memberships_of(customer_id=customer.pk, now=now)})
            tree = explain(group, facts[customer.pk], now=now, pii_traits=pii_trait_keys())
            if _mask(request.actor):
                tree = mask_explain_tree(tree, other=None)
            matches = tree["result"]
        mask = _mask(request.actor)
        return Response(s.ExplainOutput({
            "segment": segment.key, "customer": customer, "now": now, "member": membership is not None,
            "entered_at": membership.entered_at if membership else None, "matches": matches, "tree": tree,
        }, context={"mask_pii": mask}).data)


# ------------------------------------------------------------------------------ snapshot


class SegmentSnapshotView(APIView):
    required_permissions = {"POST": "segments.edit"}
    parser_classes = [JSONParser]

    @extend_schema(request=s.SnapshotInput, responses={201: s.SegmentWrittenOutput})
    def post(self, request, key: str):
        """Freeze this segment's members now into a new snapshot segment {"key", "name"}."""
        source = _segment(key)
        data = _input(s.SnapshotInput, request)
        snapshot = snapshot_create(actor=request.actor, source=source, key=data["key"], name=data["name"],
                                   now=timezone.now())
        return _written(snapshot, [], status_code=status.HTTP_201_CREATED)


# ------------------------------------------------------------------------------ across segments


class SegmentOverlapView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(parameters=[OpenApiParameter("keys", OpenApiTypes.STR, required=True,
                                                description=f"2 to {MAX_OVERLAP} keys, comma-separated"), AT],
                   responses=s.OverlapOutput)
    def get(self, request):
        """Pairwise intersections (a matrix; the diagonal is each size), Jaccard, each
        segment's exclusive count and the union — now or ?at= a past moment."""
        raw = request.query_params.get("keys", "")
        keys = [k.strip() for k in raw.split(",")] if raw.strip() else []
        if len(keys) < 2:
            raise DomainError.single(path="keys", code="required", message="Name at least two segments: ?keys=a,b.")
        if len(keys) > MAX_OVERLAP:
            raise DomainError.single(path="keys", code="too_many",
                                     message=f"Compare at most {MAX_OVERLAP} segments at once.")
        at = parse_moment(request.query_params.get("at"), path="at", now=timezone.now())
        found = {seg.key: seg for seg in Segment.objects.filter(key__in=keys)}
        problems, seen = [], set()
        for index, key in enumerate(keys):
            if key in seen:
                problems.append(Problem(f"keys[{index}]", "duplicate", f"“{key}” is listed twice."))
            elif key not in found:
                problems.append(Problem(f"keys[{index}]", "unknown_segment", f"No segment has the key “{key}”."))
            seen.add(key)
        if problems:
            raise DomainError(problems=problems)
        return Response(s.OverlapOutput(overlap(segments=[found[k] for k in keys], at=at)).data)


class SegmentSchemaView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="JSON Schema of a definition")})
    def get(self, request):
        """The rule language as JSON Schema (shared/specs/segment-rules.md), for builders and validators."""
        return Response(definition_schema())
