"""The audit log's filter: what the page and its CSV export select by."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone


class AuditFilterForm(forms.Form):
    action = forms.CharField(label="Action", required=False, widget=forms.Select)
    actor = forms.CharField(label="Actor", required=False, max_length=254)
    target_type = forms.CharField(label="Target type", required=False, widget=forms.Select)
    q = forms.CharField(label="Search", required=False, max_length=200)
    since = forms.DateField(label="From", required=False)
    until = forms.DateField(label="To", required=False)

    def __init__(self, *args, actions=(), target_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].widget.choices = [("", "Any action")] + [(a, a) for a in actions]
        self.fields["target_type"].widget.choices = [("", "Any target")] + [(t, t) for t in target_types]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data

    def selector_args(self) -> dict:
        """Arguments for audit.selectors.audit_events from the fields that are valid
        (an invalid date is reported and ignored, not guessed). `until` is inclusive."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        tz = timezone.get_current_timezone()
        since, until = data.get("since"), data.get("until")
        return {
            "action": data.get("action", ""),
            "actor": data.get("actor", "").strip(),
            "target_type": data.get("target_type", ""),
            "search": data.get("q", "").strip(),
            "since": datetime.combine(since, time.min, tzinfo=tz) if since else None,
            "until": datetime.combine(until + timedelta(days=1), time.min, tzinfo=tz) if until else None,
        }
