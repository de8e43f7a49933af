"""Forms of the activation plan pages. They parse and shape input (rates typed in percent,
empty inputs as absent); campaigns.services owns every rule and its message, shown on the
field its path names (ProblemsForm)."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from campaigns.models import Play
from tenants.forms_settings import ProblemsForm

NO_DEPARTMENT = "none"


class PlayForm(ProblemsForm):
    name = forms.CharField(label="Name", required=False, max_length=300)
    segment_id = forms.IntegerField(label="Segment", required=False)
    department_id = forms.IntegerField(label="Owning department", required=False)
    tactic_type = forms.CharField(label="Tactic type", required=False, max_length=50)
    tactic = forms.CharField(label="Tactic", required=False, max_length=10_000, widget=forms.Textarea)
    kpi = forms.CharField(label="KPI", required=False, max_length=50)
    kpi_event = forms.CharField(label="KPI event", required=False, max_length=300)
    kpi_days = forms.IntegerField(label="Within (days)", required=False)
    target = forms.DecimalField(label="Target", required=False, max_digits=16, decimal_places=4)
    spend = forms.DecimalField(label="Spend", required=False, max_digits=14, decimal_places=2)
    status = forms.CharField(label="Status", required=False, max_length=50)
    starts_on = forms.DateField(label="Starts on", required=False)
    ends_on = forms.DateField(label="Ends on", required=False)

    def clean(self):
        data = super().clean()
        target = data.get("target")
        # Rates are typed in percent here (the API takes fractions): more than 100% is a typo.
        if target is not None and data.get("kpi") != Play.Kpi.CAC and not Decimal(0) <= target <= Decimal(100):
            self.add_error("target", "A rate target is a percentage from 0 to 100.")
        return data

    def play_fields(self) -> dict:
        """The service's keyword arguments: rates as fractions, spend only for CAC."""
        data = self.cleaned_data
        target = data.get("target")
        if target is not None and data.get("kpi") != Play.Kpi.CAC:
            target = target / 100
        return {
            "name": data.get("name") or "", "segment_id": data.get("segment_id"),
            "department_id": data.get("department_id"), "tactic_type": data.get("tactic_type") or "",
            "tactic": data.get("tactic") or "", "kpi": data.get("kpi") or "",
            "kpi_event": (data.get("kpi_event") or "").strip(), "kpi_days": data.get("kpi_days"),
            "target": target, "spend": data.get("spend") if data.get("kpi") == Play.Kpi.CAC else None,
            "status": data.get("status") or Play.Status.PLANNED,
            "starts_on": data.get("starts_on"), "ends_on": data.get("ends_on"),
        }


class PlanFilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Live and done"), *Play.Status.choices])
    department = forms.CharField(label="Department", required=False, max_length=20)
    kpi = forms.ChoiceField(label="KPI", required=False, choices=[("", "Any KPI"), *Play.Kpi.choices])

    def clean_department(self):
        raw = self.cleaned_data.get("department") or ""
        if raw in ("", NO_DEPARTMENT) or raw.isdigit():
            return raw
        raise forms.ValidationError("Choose a department from the list.")
