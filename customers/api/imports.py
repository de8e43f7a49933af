"""/api/v1/imports/: CSV uploads for customers, events and survey answers.

POST a multipart form (`file`, `kind`, optional `mapping` as JSON). Without a mapping the
answer is 201 with the detected header, sample rows and a suggested mapping; start it
with POST /api/v1/imports/<id>/ {"mapping": {…}}. With a mapping the import is queued at
once: 202 with the job and its task. Progress: GET the job (or the task URL); problems of
single rows: GET /api/v1/imports/<id>/errors.csv.
"""

from __future__ import annotations

import json

from django.http import Http404, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import Code, DomainError, TooLarge
from common.pagination import NewestFirst
from common.parsers import JsonBody
from customers.imports.models import ImportJob
from customers.imports.selectors import import_get, imports_list
from customers.imports.services import import_create, import_start, import_suggestion, max_upload_bytes
from customers.imports.views import error_report_response


class ImportOutput(serializers.ModelSerializer):
    task = serializers.SerializerMethodField()
    errors_url = serializers.SerializerMethodField()
    suggested_mapping = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = ["id", "kind", "status", "original_name", "size", "sha256", "delimiter", "header", "sample",
                  "mapping", "suggested_mapping", "rows_total", "rows_processed", "rows_imported", "rows_unchanged",
                  "rows_failed", "error", "task", "errors_url", "created_at", "started_at", "finished_at"]

    @extend_schema_field({"type": "object", "nullable": True, "description": "The import's task and its progress"})
    def get_task(self, job) -> dict | None:
        run = job.task_run
        if run is None:
            return None
        return {"id": run.pk, "status": run.status, "done": run.done, "total": run.total, "message": run.message,
                "url": reverse("task_run", kwargs={"pk": run.pk})}

    def get_errors_url(self, job) -> str:
        return reverse("api_import_errors", kwargs={"pk": job.pk})

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": {"type": "string"},
                          "description": "column → target, while the upload awaits its mapping; else null"})
    def get_suggested_mapping(self, job) -> dict | None:
        return import_suggestion(job=job) if job.status == ImportJob.Status.UPLOADED else None


def _ensure_within_limit(request) -> None:
    """Refuse an oversized body before Django spools it to disk."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = max_upload_bytes()
    if length > limit + 64 * 1024:  # the multipart envelope around the file
        raise TooLarge.single(path="file", code=Code.TOO_LARGE,
                              message=f"Files may be at most {limit // (1024 * 1024):,} MB.")


def _mapping_of(raw):
    if raw is None or raw == "":
        return None
    if isinstance(raw, (dict, list)):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise DomainError.single(path="mapping", code=Code.INVALID_JSON, message="The mapping must be JSON.") from None


class ImportListView(ListAPIView):
    """CSV imports, newest first. POST uploads a file (multipart: file, kind, mapping?)."""

    required_permissions = {"GET": "data.import", "POST": "data.import"}
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = ImportOutput
    pagination_class = NewestFirst

    def get_queryset(self):
        return imports_list()

    @extend_schema(
        request={"multipart/form-data": inline_serializer("ImportUpload", {
            "file": serializers.FileField(), "kind": serializers.ChoiceField(choices=ImportJob.Kind.choices),
            "mapping": serializers.CharField(required=False, help_text='JSON: {"<column>": "<target>"}')})},
        responses={201: OpenApiResponse(ImportOutput, description="Uploaded; waiting for a mapping"),
                   202: OpenApiResponse(ImportOutput, description="Uploaded and queued")})
    def post(self, request):
        _ensure_within_limit(request)
        mapping = _mapping_of(request.data.get("mapping"))
        job = import_create(actor=request.actor, kind=str(request.data.get("kind") or ""),
                            upload=request.FILES.get("file"), mapping=mapping, now=timezone.now())
        code = status.HTTP_201_CREATED if job.status == ImportJob.Status.UPLOADED else status.HTTP_202_ACCEPTED
        return Response(ImportOutput(job).data, status=code)


def _job(pk: int) -> ImportJob:
    job = import_get(import_id=pk)
    if job is None:
        raise Http404("No such import")
    return job


class ImportDetailView(APIView):
    """One import with its counts. POST {"mapping": {…}} starts an uploaded import."""

    required_permissions = {"GET": "data.import", "POST": "data.import"}
    parser_classes = [JsonBody]

    @extend_schema(responses=ImportOutput)
    def get(self, request, pk: int):
        return Response(ImportOutput(_job(pk)).data)

    @extend_schema(request=inline_serializer("ImportStart", {"mapping": serializers.DictField()}),
                   responses={202: ImportOutput})
    def post(self, request, pk: int):
        job = _job(pk)
        body = request.data if isinstance(request.data, dict) else {}
        if "mapping" not in body:
            raise DomainError.single(path="mapping", code=Code.REQUIRED,
                                     message="Send the mapping to start the import.")
        job = import_start(actor=request.actor, job=job, mapping=_mapping_of(body["mapping"]), now=timezone.now())
        return Response(ImportOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ImportErrorsView(APIView):
    """The per-row problems as CSV: row, column, code, message."""

    required_permissions = {"GET": "data.import"}

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, pk: int) -> StreamingHttpResponse:
        return error_report_response(_job(pk))
