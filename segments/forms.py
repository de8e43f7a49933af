"""Forms of the segment pages: the directory's query and the builder's attributes. The
definition itself is JSON the builder writes; the services validate it (with paths)."""

from __future__ import annotations

import json

from django import forms

from segments.models import Segment
from segments.selectors.directory import DEFAULT_SORT, FRESHNESS, SORTS, DirectoryQuery

PERSONA_FIELDS = (("name", "Persona name"), ("goals", "Goals"), ("challenges", "Challenges"), ("needs", "Needs"),
                  ("preferred_features", "Preferred features"), ("notes", "Notes"))
SORT_CHOICES = [(s, s) for s in SORTS] + [(f"-{s}", f"-{s}") for s in SORTS]


class DirectoryForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "All kinds"), *Segment.Kind.choices])
    tag = forms.CharField(label="Tag", required=False, max_length=50)
    department = forms.IntegerField(label="Department", required=False, min_value=1)
    freshness = forms.ChoiceField(label="Freshness", required=False,
                                  choices=[("", "Any freshness"), *[(f, f.capitalize()) for f in FRESHNESS]])
    status = forms.ChoiceField(label="Status", required=False,
                               choices=[("", "Active and paused"), *Segment.Status.choices])
    sort = forms.ChoiceField(label="Sort", required=False, choices=SORT_CHOICES)

    def query(self) -> DirectoryQuery:
        data = self.cleaned_data if self.is_valid() else {k: v for k, v in getattr(self, "cleaned_data", {}).items()}
        return DirectoryQuery(search=(data.get("q") or "").strip(), kind=data.get("kind") or "",
                              tag=data.get("tag") or "", department_id=data.get("department"),
                              freshness=data.get("freshness") or "", status=data.get("status") or "",
                              sort=data.get("sort") or DEFAULT_SORT)

    def problems(self) -> list[str]:
        return [f"{self.fields[name].label}: {' '.join(errors)}" for name, errors in self.errors.items()]


class SegmentForm(forms.Form):
    """The builder's fields beside the rule. `definition` arrives as the JSON text the
    Alpine state serialises (or the member pasted)."""

    name = forms.CharField(label="Name", max_length=200)
    key = forms.CharField(label="Key", max_length=64, required=False)
    kind = forms.ChoiceField(label="Kind", required=False,
                             choices=[(Segment.Kind.DYNAMIC, "Dynamic (rule)"), (Segment.Kind.STATIC, "Static (hand-picked)")])
    description = forms.CharField(label="Description", required=False, max_length=5000, widget=forms.Textarea)
    tags = forms.CharField(label="Tags", required=False, max_length=1200)
    department = forms.IntegerField(label="Department", required=False)
    refresh_minutes = forms.IntegerField(label="Refresh every (minutes)", required=False)
    definition = forms.CharField(label="Definition (JSON)", required=False, max_length=1_000_000)
    note = forms.CharField(label="Version note", required=False, max_length=500)
    persona_name = forms.CharField(label="Persona name", required=False, max_length=5000)
    persona_goals = forms.CharField(label="Goals", required=False, max_length=5000)
    persona_challenges = forms.CharField(label="Challenges", required=False, max_length=5000)
    persona_needs = forms.CharField(label="Needs", required=False, max_length=5000)
    persona_preferred_features = forms.CharField(label="Preferred features", required=False, max_length=5000)
    persona_notes = forms.CharField(label="Notes", required=False, max_length=5000)

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data.get("tags") or ""
        return list(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))

    def clean_definition(self):
        raw = self.cleaned_data.get("definition") or ""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"Not valid JSON: {error.msg} (line {error.lineno}, column {error.colno}).")

    def persona(self) -> dict:
        return {key: self.cleaned_data.get(f"persona_{key}", "").strip() for key, _ in PERSONA_FIELDS
                if self.cleaned_data.get(f"persona_{key}", "").strip()}
