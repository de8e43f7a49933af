"""CSV import pages under /customers/imports/: upload, map the columns, watch it run, see
what became of each row. Thin views (house rule 3): parse the form, call one service,
render; a DomainError becomes messages on the page with its 4xx status."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from common.csv import stream_rows
from common.errors import DomainError
from customers.imports import mapping as maps
from customers.imports.models import ImportJob
from customers.imports.selectors import (
    import_get,
    import_problems,
    import_problems_by_code,
    imports_list,
)
from customers.imports.services import (
    import_previous,
    import_retry,
    import_start,
    import_suggestion,
    import_upload,
    max_upload_bytes,
    report_rows,
    targets_for,
)
from segments.rules.vocabulary import TraitType
from common.pages import page_status, requires

PERMISSION = "data.import"
KIND_HELP = {
    ImportJob.Kind.CUSTOMERS: "One row per customer: an external id and any traits. Rows update existing profiles.",
    ImportJob.Kind.EVENTS: "One row per event: the customer's external id, the event name, optionally a timestamp "
                           "and properties.",
    ImportJob.Kind.SURVEY_RESPONSES: "One row per answer: the customer's external id, the survey (nps, csat or a "
                                     "custom survey's key) and the score.",
}


def _job_or_404(pk: int) -> ImportJob:
    job = import_get(import_id=pk)
    if job is None:
        raise Http404("No such import")
    return job


def _list_context(errors=None, kind: str = "") -> dict:
    return {
        "jobs": imports_list()[:50],
        "kinds": [(value, label, KIND_HELP[value]) for value, label in ImportJob.Kind.choices],
        "chosen_kind": kind or ImportJob.Kind.CUSTOMERS,
        "errors": errors or [],
        "max_mb": max_upload_bytes() // (1024 * 1024),
    }


@never_cache
@require_GET
@requires(PERMISSION)
def imports_list_view(request):
    return render(request, "customers/imports/list.html", _list_context())


@require_POST
@requires(PERMISSION)
def imports_upload(request):
    kind = request.POST.get("kind", "")
    try:
        job = import_upload(actor=request.membership, kind=kind, upload=request.FILES.get("file"), now=timezone.now())
    except DomainError as error:
        return render(request, "customers/imports/list.html", _list_context(error.problems, kind), status=page_status(error))
    return redirect("imports_map", pk=job.pk)


def _column_rows(job: ImportJob, chosen: dict[str, str], errors: dict[str, list[str]]) -> list[dict]:
    """Per column of the file: its sample values and the grouped choices of its select."""
    targets = targets_for(job.kind)
    base = targets.options()
    rows = []
    for index, column in enumerate(job.header):
        cells = [row[index] for row in job.sample if index < len(row)]
        key = maps.normalise_name(column)
        extra = []
        if job.kind == maps.CUSTOMERS and key and key not in targets.traits and maps.key_problem(key) is None:
            extra.append(maps.Option(maps.TRAIT + key, f"New custom trait “{key}” · {maps.infer_column(cells).value}",
                                     "New"))
        if job.kind == maps.EVENTS and key and maps.CUSTOM_KEY.match(key):
            inferred = maps.infer_column(cells)
            shown = TraitType.STRING if inferred is TraitType.DATETIME else inferred
            extra.append(maps.Option(maps.PROPERTY + key, f"Property “{key}” · {shown.value}", "Event properties"))
        groups: dict[str, list[maps.Option]] = {}
        for option in base[:len(targets.fixed)] + extra + base[len(targets.fixed):]:
            groups.setdefault(option.group, []).append(option)
        selected = chosen.get(column, "")
        known = {o.value for o in base + extra}
        if selected and selected not in known:  # e.g. an API-style target typed by hand earlier
            groups.setdefault("Other", []).append(maps.Option(selected, selected, "Other"))
        rows.append({"index": index, "name": column, "samples": [c for c in cells if c.strip()][:3],
                     "groups": list(groups.items()), "selected": selected, "errors": errors.get(column, [])})
    return rows


def _map_context(job: ImportJob, chosen: dict[str, str], problems=()) -> dict:
    by_column: dict[str, list[str]] = {}
    general = []
    for problem in problems:
        if problem.path.startswith("mapping."):
            by_column.setdefault(problem.path[len("mapping."):], []).append(problem.message)
        else:
            general.append(problem.message)
    return {
        "job": job, "columns": _column_rows(job, chosen, by_column), "general_errors": general,
        "required": maps.REQUIRED[job.kind], "previous": import_previous(job=job),
        "sample_rows": job.sample[:5],
    }


@never_cache
@require_http_methods(["GET", "POST"])
@requires(PERMISSION)
def imports_map(request, pk: int):
    job = _job_or_404(pk)
    if job.is_started:
        return redirect("imports_detail", pk=job.pk)
    if request.method == "GET":
        return render(request, "customers/imports/map.html", _map_context(job, import_suggestion(job=job)))
    chosen = {column: request.POST.get(f"column-{index}", "") for index, column in enumerate(job.header)}
    try:
        import_start(actor=request.membership, job=job, mapping={c: t for c, t in chosen.items() if t},
                     now=timezone.now())
    except DomainError as error:
        return render(request, "customers/imports/map.html", _map_context(job, chosen, error.problems),
                      status=page_status(error))
    return redirect("imports_detail", pk=job.pk)


def _detail_context(job: ImportJob) -> dict:
    return {"job": job, "run": job.task_run, "problems": import_problems(job=job) if job.rows_failed else [],
            "by_code": import_problems_by_code(job=job) if job.rows_failed else [],
            # In the file's column order (the JSON object's order is not kept).
            "mapped": [(column, job.mapping[column]) for column in job.header if column in job.mapping]}


@never_cache
@require_GET
@requires(PERMISSION)
def imports_detail(request, pk: int):
    job = _job_or_404(pk)
    if not job.is_started:
        return redirect("imports_map", pk=job.pk)
    return render(request, "customers/imports/detail.html", _detail_context(job))


@never_cache
@require_GET
@requires(PERMISSION)
def imports_summary(request, pk: int):
    """The counts and problems of a running or finished import (an htmx partial that
    polls itself until the import finishes)."""
    return render(request, "customers/imports/_summary.html", _detail_context(_job_or_404(pk)))


@require_POST
@requires(PERMISSION)
def imports_retry(request, pk: int):
    job = _job_or_404(pk)
    try:
        import_retry(actor=request.membership, job=job)
    except DomainError as error:
        context = _detail_context(job) | {"retry_error": error.problems[0].message}
        return render(request, "customers/imports/detail.html", context, status=page_status(error))
    return redirect("imports_detail", pk=job.pk)


def error_report_response(job: ImportJob):
    """The stored report of a finished import; while it runs, the problems so far."""
    filename = f"import-{job.pk}-errors.csv"
    if job.error_report and default_storage.exists(job.error_report.name):
        return FileResponse(default_storage.open(job.error_report.name, "rb"), as_attachment=True,
                            filename=filename, content_type="text/csv; charset=utf-8")
    response = StreamingHttpResponse(stream_rows(report_rows(job)),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@require_GET
@requires(PERMISSION)
def imports_errors(request, pk: int):
    return error_report_response(_job_or_404(pk))

