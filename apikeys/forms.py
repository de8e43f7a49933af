"""The API key form of the settings area; the service owns the rules (names, scopes)."""

from __future__ import annotations

from datetime import date, datetime, time

from django import forms
from django.utils import timezone

from apikeys.models import ApiKey
from tenants.forms_settings import AnyChoices, ProblemsForm


class ApiKeyForm(ProblemsForm):
    name = forms.CharField(label="Name", required=False, max_length=300)
    scopes = AnyChoices(label="Scopes", required=False, choices=ApiKey.Scope.choices)
    expires_on = forms.DateField(label="Expires on", required=False)

    def expires_at(self) -> datetime | None:
        """The key stops working at the start of the chosen day (UTC)."""
        day: date | None = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
