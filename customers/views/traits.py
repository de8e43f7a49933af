"""Settings → Traits: the registry of built-in and custom traits, editable in place."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from common.errors import DomainError
from common.pages import page_status, requires
from customers.models import PersonalPropertyKey, TraitDefinition
from customers.registry import BUILTIN_EDITABLE, EDITABLE, personal_property_keys_set, trait_definition_update
from customers.selectors import PII_PROPERTY_KEYS


def _row(request, trait: TraitDefinition, *, errors=(), saved=False, status=200):
    return render(request, "settings/_trait_row.html", {"trait": trait, "errors": list(errors), "saved": saved,
                                                        "types": TraitDefinition.Type.choices,
                                                        "categories": TraitDefinition.Category.choices},
                  status=status)


@require_GET
@requires("settings.modify")
def settings_traits(request):
    traits = list(TraitDefinition.objects.all())
    groups = [(label, [t for t in traits if t.category == value]) for value, label in TraitDefinition.Category.choices]
    return render(request, "settings/traits.html", {
        "section": "traits", "groups": [(label, rows) for label, rows in groups if rows],
        "types": TraitDefinition.Type.choices, "categories": TraitDefinition.Category.choices,
        "usual_personal": sorted(PII_PROPERTY_KEYS),
        "personal_properties": list(PersonalPropertyKey.objects.values_list("key", flat=True))})


@require_POST
@requires("settings.modify")
def settings_personal_properties(request):
    keys = [line for line in request.POST.get("keys", "").splitlines() if line.strip()]
    try:
        saved = personal_property_keys_set(actor=request.membership, keys=keys)
    except DomainError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, f"{len(saved)} personal property key{'s' if len(saved) != 1 else ''} saved.")
    return redirect("settings_traits")


@require_POST
@requires("settings.modify")
def settings_trait_edit(request, key: str):
    trait = TraitDefinition.objects.filter(key=key).first()
    if trait is None:
        raise Http404("No such trait")
    fields = BUILTIN_EDITABLE if trait.is_builtin else EDITABLE
    changes = {flag: request.POST.get(flag) == "on" for flag in ("is_pii", "exposed")}
    for field in fields - {"is_pii", "exposed"}:
        if field in request.POST:
            changes[field] = request.POST[field]
    try:
        trait = trait_definition_update(actor=request.membership, key=key, changes=changes)
    except DomainError as error:
        trait.refresh_from_db()
        errors, status = error.messages, page_status(error)
        if request.htmx:
            return _row(request, trait, errors=errors, status=status)
        for message in errors:
            messages.error(request, message)
        return redirect("settings_traits")
    if request.htmx:
        return _row(request, trait, saved=True)
    messages.success(request, f"Trait “{trait.key}” saved.")
    return redirect("settings_traits")
