"""Reads of the warehouse export: history, one export, one file (tenant schema only, so an
id of another workspace is simply not found)."""

from __future__ import annotations

from django.db.models import QuerySet

from segments.warehouse.tables import TABLE_LABELS
from segments.warehouse.models import WarehouseExport, WarehouseExportFile


def exports_list() -> QuerySet[WarehouseExport]:
    return WarehouseExport.objects.select_related("task_run").order_by("-created_at", "-id")


def export_get(*, export_id: int) -> WarehouseExport | None:
    return exports_list().filter(pk=export_id).first()


def export_file_get(*, export: WarehouseExport, file_id: int) -> WarehouseExportFile | None:
    return export.files.filter(pk=file_id).first()


def export_tables(export: WarehouseExport) -> list[dict]:
    """Per table of an export: rows, files and bytes so far."""
    files = list(export.files.order_by("id"))
    return [{"name": name, "label": TABLE_LABELS[name], "rows": export.rows.get(name), "done": name in export.tables_done,
             "files": [f for f in files if f.table == name],
             "bytes": sum(f.bytes for f in files if f.table == name)} for name in export.tables]
