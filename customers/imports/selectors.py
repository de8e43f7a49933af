"""Reads of the CSV import."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from customers.imports.models import ImportJob, ImportRowError


def imports_list() -> QuerySet[ImportJob]:
    return ImportJob.objects.select_related("task_run").order_by("-created_at", "-id")


def import_get(*, import_id: int) -> ImportJob | None:
    """One job of the current tenant (ids are per schema: another tenant's is None)."""
    return imports_list().filter(pk=import_id).first()


def import_problems(*, job: ImportJob, limit: int = 50) -> QuerySet[ImportRowError]:
    return ImportRowError.objects.filter(job=job).order_by("row", "id")[:limit]


def import_problems_by_code(*, job: ImportJob) -> list[tuple[str, int]]:
    rows = (ImportRowError.objects.filter(job=job).values("code").annotate(n=Count("id")).order_by("-n", "code"))
    return [(r["code"], r["n"]) for r in rows]
