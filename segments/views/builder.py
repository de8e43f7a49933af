"""The segment builder: create and edit (name, key, kind, rule, persona, version note), its
live preview (count, sample, impact, hygiene, errors by path) and the typeahead of trait
values. The rule is JSON the Alpine builder (frontend/src/segment-builder.js) writes; the
services validate it."""

from __future__ import annotations

import copy
import json

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from common.errors import Code, DomainError, Problem
from common.pages import refuse_forbidden, requires
from segments.forms import PERSONA_FIELDS, SegmentForm
from segments.models import Segment
from segments.selectors.directory import builder_catalogue, trait_values
from segments.selectors.hygiene import hygiene
from segments.selectors.personal import definition_shown, hidden_from
from segments.selectors.preview import customers_in_order, preview
from segments.services import segment_create, segment_update
from segments.views.common import hidden_fields, segment_or_404, who
from tenants.models import Department

EMPTY_DEFINITION = {"version": 1, "match": "all", "conditions": []}



def _builder_context(request, *, segment: Segment | None, form: SegmentForm, definition, errors: list[Problem]) -> dict:
    initial_persona = {key: (form.data.get(f"persona_{key}") if form.is_bound else (segment.persona.get(key, "")
                                                                                    if segment else "")) or ""
                       for key, _ in PERSONA_FIELDS}
    return {
        "segment": segment, "form": form, "is_new": segment is None,
        "catalogue": builder_catalogue(self_key=segment.key if segment else None, hidden=hidden_from(request.membership)),
        "state": {"definition": definition_shown(request.membership, definition) or EMPTY_DEFINITION,
                  "errors": [p.as_dict() for p in errors if p.path == "definition" or p.path.startswith("definition.")],
                  "kind": (form.data.get("kind") if form.is_bound else None) or (segment.kind if segment else "dynamic")},
        "field_errors": {p.path: p.message for p in errors if not p.path.startswith("definition")},
        "definition_errors": [p.message for p in errors if p.path == "definition"],
        "departments": Department.objects.filter(tenant=request.tenant),
        "persona_fields": [(key, label, initial_persona[key]) for key, label in PERSONA_FIELDS],
        "preview_url": reverse("segments_preview"), "values_url": reverse("segments_values"),
    }


def _initial(segment: Segment | None) -> dict:
    if segment is None:
        return {"kind": Segment.Kind.DYNAMIC, "refresh_minutes": 15}
    return {"name": segment.name, "key": segment.key, "kind": segment.kind, "description": segment.description,
            "tags": ", ".join(segment.tags), "department": segment.department_id,
            "refresh_minutes": int(segment.refresh_interval.total_seconds() // 60)}


def _save(request, segment: Segment | None, form: SegmentForm) -> tuple[Segment, list]:
    data = form.cleaned_data
    attributes = {"name": data["name"], "description": data["description"] or "", "tags": data["tags"],
                  "refresh_minutes": data["refresh_minutes"], "department_id": data["department"]}
    now = timezone.now()
    persona = form.persona()
    if segment is None:
        kind = data["kind"] or Segment.Kind.DYNAMIC
        return segment_create(
            actor=request.membership, key=data["key"].strip(), kind=kind,
            definition=data["definition"] if kind == Segment.Kind.DYNAMIC else None, note=data["note"], now=now,
            persona=persona or None, **attributes)
    definition = data["definition"] if segment.kind == Segment.Kind.DYNAMIC else None
    return segment_update(actor=request.membership, segment=segment, now=now, definition=definition,
                          note=data["note"], persona=persona, **attributes)


def _builder(request, segment: Segment | None):
    if request.method == "POST":
        form = SegmentForm(request.POST)
        if form.is_valid():
            try:
                saved, warnings = _save(request, segment, form)
            except DomainError as error:
                refuse_forbidden(error)
                errors = error.problems
            else:
                version = f" (version {saved.definition_version})" if saved.kind == Segment.Kind.DYNAMIC else ""
                note = "" if not warnings else " " + " ".join(w.message for w in warnings)
                messages.success(request, f"Saved “{saved.name}”{version}. Its members are being evaluated.{note}"
                                 if saved.kind == Segment.Kind.DYNAMIC else f"Saved “{saved.name}”.{note}")
                return redirect("segments_detail", key=saved.key)
        else:
            errors = [Problem("definition" if name == "definition" else name, Code.INVALID, " ".join(messages_))
                      for name, messages_ in form.errors.items()]
        try:
            definition = json.loads(request.POST.get("definition") or "null")
        except json.JSONDecodeError:
            definition = None
        if not isinstance(definition, dict):
            definition = (segment.definition if segment else None) or EMPTY_DEFINITION
        context = _builder_context(request, segment=segment, form=form, definition=definition, errors=errors)
        return render(request, "segments/builder.html", context, status=400)
    form = SegmentForm(initial=_initial(segment))
    definition = segment.definition if segment else None
    if segment is None and request.GET.get("kind") == Segment.Kind.STATIC:
        form = SegmentForm(initial={**_initial(None), "kind": Segment.Kind.STATIC})
    return render(request, "segments/builder.html",
                  _builder_context(request, segment=segment, form=form, definition=definition, errors=[]))


@requires("segments.edit")
@require_http_methods(["GET", "POST"])
def segments_new(request):
    return _builder(request, None)


@requires("segments.edit")
@require_http_methods(["GET", "POST"])
def segments_edit(request, key: str):
    return _builder(request, segment_or_404(key))


def _preview_errors(request, problems: list[Problem]):
    errors = [p.as_dict() for p in problems]
    return render(request, "segments/_preview.html", {"errors": errors, "errors_json": json.dumps(errors)}, status=400)


@requires("segments.edit")
@require_POST
def segments_preview(request):
    """The builder's live panel: count and sample of a draft definition, the impact against
    the saved version when editing, hygiene warnings, and the parse errors by path (in
    `data-errors` for the builder to place at their nodes). Writes nothing.

    `"accuracy": "estimate"` answers from the hash-sample, at once; the panel then asks
    again for the exact count (`data-exact-pending`). Hygiene (size, near-duplicates) needs
    the exact members, so it comes with the exact answer."""
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return _preview_errors(request, [Problem("definition", Code.INVALID_JSON, "The definition is not valid JSON.")])
    accuracy = body.get("accuracy", "exact")
    if accuracy not in ("estimate", "exact"):
        return _preview_errors(request, [Problem("accuracy", Code.INVALID_CHOICE, "Ask for an estimate or exact.")])
    segment = Segment.objects.filter(key=body.get("segment") or "").first() if body.get("segment") else None
    definition = body.get("definition")
    now = timezone.now()
    try:
        result = preview(actor=request.membership, definition=definition, now=now, segment=segment, accuracy=accuracy)
    except DomainError as error:
        return _preview_errors(request, error.problems)
    hidden = hidden_fields(request)
    sample = [who(c, hidden) for c in customers_in_order(result.sample_ids)[:8]]
    flags = []
    if result.exact:
        draft = copy.copy(segment) if segment else Segment(pk=0, key="", kind=Segment.Kind.DYNAMIC, created_at=now)
        draft.definition = definition
        flags = [w for w in hygiene(segment=draft, now=now) if w.code != "stale"]
    return render(request, "segments/_preview.html", {
        "preview": result, "sample": sample, "segment": segment, "hygiene": flags, "errors": [], "errors_json": "[]",
        "warnings": [w.as_dict() for w in result.warnings],
        "delta": result.count - result.current_size if segment else None})


@requires("segments.edit")
@require_GET
def segments_values(request):
    """Known values of a trait for the builder's typeahead: {"values": [...]}."""
    field = request.GET.get("field", "")[:80]
    prefix = request.GET.get("q", "")[:100]
    return JsonResponse({"field": field, "values": trait_values(field=field, prefix=prefix,
                                                                       hidden=hidden_fields(request))})
