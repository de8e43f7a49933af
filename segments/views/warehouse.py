"""The Data exports page (/exports/): export now, the schedule, the history; one export's
progress, files and manifest. Thin views: parse the form, call one service, render."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from common.errors import DomainError
from common.pages import page_status, requires
from segments.api.views.warehouse import file_response, stored_file_open
from segments.warehouse import services as warehouse
from segments.warehouse import tables as warehouse_tables
from segments.warehouse.models import WarehouseExport, WarehouseSchedule
from segments.warehouse.selectors import export_get, export_tables, exports_list

PERMISSION = warehouse.PERMISSION


def _export_or_404(pk: int) -> WarehouseExport:
    export = export_get(export_id=pk)
    if export is None:
        raise Http404("No such export")
    return export


def storage_label() -> str:
    """Where the files go, in words (never a credential)."""
    storage = warehouse.warehouse_storage()
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        prefix = getattr(storage, "location", "") or ""
        return f"S3 bucket “{bucket}”{f' under {prefix}/' if prefix else ''}"
    return "the server's export directory (WAREHOUSE_DIR)"


def _list_context(request, *, errors=(), schedule_errors=(), chosen=None, schedule_form=None) -> dict:
    schedule = warehouse.schedule_get()
    return {
        "exports": exports_list()[:50],
        "tables": [(name, warehouse_tables.TABLE_LABELS[name]) for name in warehouse_tables.TABLES],
        "chosen": chosen if chosen is not None else list(warehouse_tables.TABLES),
        "may_export_personal": request.membership.has("customers.view_pii"),
        "schedule": schedule, "schedule_form": schedule_form or {
            "enabled": schedule.enabled, "every": schedule.every, "tables": schedule.tables,
            "include_personal": schedule.include_personal},
        "every_choices": WarehouseSchedule.Every.choices,
        "errors": errors, "schedule_errors": schedule_errors, "storage_label": storage_label(),
    }


@never_cache
@require_GET
@requires(PERMISSION)
def exports_list_view(request):
    return render(request, "segments/exports/list.html", _list_context(request))


@require_POST
@requires(PERMISSION)
def exports_start(request):
    tables = request.POST.getlist("tables")
    try:
        export = warehouse.export_create(actor=request.membership, tables=tables,
                                         include_personal=request.POST.get("include_personal") == "on",
                                         now=timezone.now())
    except DomainError as error:
        return render(request, "segments/exports/list.html",
                      _list_context(request, errors=error.problems, chosen=tables), status=page_status(error))
    return redirect("exports_detail", pk=export.pk)


@require_POST
@requires(PERMISSION)
def exports_schedule(request):
    form = {"enabled": request.POST.get("enabled") == "on", "every": request.POST.get("every", ""),
            "tables": request.POST.getlist("tables"), "include_personal": request.POST.get("include_personal") == "on"}
    try:
        warehouse.schedule_update(actor=request.membership, now=timezone.now(), **form)
    except DomainError as error:
        return render(request, "segments/exports/list.html",
                      _list_context(request, schedule_errors=error.problems, schedule_form=form),
                      status=page_status(error))
    return redirect("exports_list")


@never_cache
@require_GET
@requires(PERMISSION)
def exports_detail(request, pk: int):
    export = _export_or_404(pk)
    return render(request, "segments/exports/detail.html", {
        "export": export, "run": export.task_run, "tables": export_tables(export)})


@require_POST
@requires(PERMISSION)
def exports_retry(request, pk: int):
    export = _export_or_404(pk)
    try:
        warehouse.export_retry(actor=request.membership, export=export)
    except DomainError as error:
        return render(request, "segments/exports/detail.html", {
            "export": export, "run": export.task_run, "tables": export_tables(export),
            "errors": error.problems}, status=page_status(error))
    return redirect("exports_detail", pk=export.pk)


@require_GET
@requires(PERMISSION)
def exports_file(request, pk: int, file_id: int) -> FileResponse:
    return file_response(_export_or_404(pk), file_id)


@require_GET
@requires(PERMISSION)
def exports_manifest(request, pk: int) -> FileResponse:
    export = _export_or_404(pk)
    if not export.manifest:
        raise Http404("The export has no manifest yet")
    return FileResponse(stored_file_open(export.manifest), as_attachment=True,
                        filename=f"export-{export.pk}-manifest.json", content_type="application/json")
