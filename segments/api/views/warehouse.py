"""/api/v1/exports/: warehouse exports (Parquet) of customers, events, memberships and
segment definitions, and their schedule.

POST {"tables": [...], "include_personal": false} queues an export: 202 with it and its
task (progress). GET one export for its files and, once done, its manifest; each file and
the manifest download from here (data.export)."""

from __future__ import annotations

import json

from django.http import FileResponse, Http404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import StrictInput, validated
from common.pagination import NewestFirst
from common.parsers import JsonBody
from segments.warehouse import services as warehouse
from segments.warehouse.models import WarehouseExport, WarehouseExportFile, WarehouseSchedule
from segments.warehouse.selectors import export_file_get, export_get, exports_list

PERMISSION = warehouse.PERMISSION


class ExportFileOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = WarehouseExportFile
        fields = ["id", "table", "partition", "path", "rows", "row_groups", "bytes", "sha256", "url"]

    def get_url(self, file) -> str:
        return reverse("api_export_file", kwargs={"pk": file.export_id, "file_id": file.pk})


class ExportOutput(serializers.ModelSerializer):
    task = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()
    manifest_url = serializers.SerializerMethodField()

    class Meta:
        model = WarehouseExport
        fields = ["id", "status", "trigger", "tables", "include_personal", "events_after", "events_until",
                  "tables_done", "rows", "bytes", "error", "task", "files", "manifest_url", "created_at", "started_at",
                  "finished_at"]

    @extend_schema_field({"type": "object", "nullable": True, "description": "The export's task and its progress"})
    def get_task(self, export) -> dict | None:
        run = export.task_run
        if run is None:
            return None
        return {"id": run.pk, "status": run.status, "done": run.done, "total": run.total, "message": run.message,
                "url": reverse("task_run", kwargs={"pk": run.pk})}

    @extend_schema_field(ExportFileOutput(many=True))
    def get_files(self, export) -> list:
        return ExportFileOutput(export.files.order_by("id"), many=True).data

    def get_manifest_url(self, export) -> str | None:
        return reverse("api_export_manifest", kwargs={"pk": export.pk}) if export.manifest else None


class ExportInput(StrictInput):
    tables = serializers.JSONField(help_text=f"Any of {', '.join(warehouse.warehouse_tables.TABLES)}")
    include_personal = serializers.JSONField(required=False, default=False)


class ScheduleInput(StrictInput):
    enabled = serializers.JSONField()
    every = serializers.JSONField(help_text="hour, day or week")
    tables = serializers.JSONField()
    include_personal = serializers.JSONField(required=False, default=False)


class ScheduleOutput(serializers.ModelSerializer):
    class Meta:
        model = WarehouseSchedule
        fields = ["enabled", "every", "tables", "include_personal", "next_run_at", "updated_at"]


def _export(pk: int) -> WarehouseExport:
    export = export_get(export_id=pk)
    if export is None:
        raise Http404("No such export")
    return export


class ExportListView(ListAPIView):
    """Exports, newest first. POST queues one."""

    required_permissions = {"GET": PERMISSION, "POST": PERMISSION}
    parser_classes = [JsonBody]
    serializer_class = ExportOutput
    pagination_class = NewestFirst

    def get_queryset(self):
        return exports_list()

    @extend_schema(request=ExportInput, responses={202: ExportOutput})
    def post(self, request):
        data = validated(ExportInput, request)
        export = warehouse.export_create(actor=request.actor, tables=data["tables"],
                                         include_personal=data["include_personal"], now=timezone.now())
        return Response(ExportOutput(export_get(export_id=export.pk)).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailView(APIView):
    """One export, its files and progress. POST retries a failed one."""

    required_permissions = {"GET": PERMISSION, "POST": PERMISSION}
    parser_classes = [JsonBody]

    @extend_schema(responses=ExportOutput)
    def get(self, request, pk: int):
        return Response(ExportOutput(_export(pk)).data)

    @extend_schema(request=None, responses={202: ExportOutput})
    def post(self, request, pk: int):
        export = warehouse.export_retry(actor=request.actor, export=_export(pk))
        return Response(ExportOutput(export_get(export_id=export.pk)).data, status=status.HTTP_202_ACCEPTED)


class ExportManifestView(APIView):
    required_permissions = {"GET": PERMISSION}

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        export = _export(pk)
        if not export.manifest:
            raise Http404("The export has no manifest yet")
        with stored_file_open(export.manifest) as stream:
            return Response(json.load(stream))


class ExportFileView(APIView):
    required_permissions = {"GET": PERMISSION}

    @extend_schema(responses={(200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY})
    def get(self, request, pk: int, file_id: int):
        return file_response(_export(pk), file_id)


def file_response(export: WarehouseExport, file_id: int) -> FileResponse:
    file = export_file_get(export=export, file_id=file_id)
    if file is None:
        raise Http404("No such file in this export")
    name = f"{file.table}-{file.partition or 'all'}-{file.path.rsplit('/', 1)[-1]}".replace("=", "-")
    return FileResponse(stored_file_open(file.path), as_attachment=True, filename=name,
                        content_type="application/vnd.apache.parquet")


def stored_file_open(path: str):
    """The stored file, or a 404 when it was removed from storage behind the app's back
    (a bucket lifecycle rule, an operator's clean-up): not a server error."""
    storage = warehouse.warehouse_storage()
    try:
        if not storage.exists(path):
            raise FileNotFoundError(path)
        return storage.open(path, "rb")
    except FileNotFoundError:
        raise Http404("The file is no longer in the export's storage") from None


class ExportScheduleView(APIView):
    """The workspace's export schedule. PUT replaces it."""

    required_permissions = {"GET": PERMISSION, "PUT": PERMISSION}
    parser_classes = [JsonBody]

    @extend_schema(responses=ScheduleOutput)
    def get(self, request):
        return Response(ScheduleOutput(warehouse.schedule_get()).data)

    @extend_schema(request=ScheduleInput, responses=ScheduleOutput)
    def put(self, request):
        data = validated(ScheduleInput, request)
        schedule = warehouse.schedule_update(actor=request.actor, now=timezone.now(), **data)
        return Response(ScheduleOutput(schedule).data)
