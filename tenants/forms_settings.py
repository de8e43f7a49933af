"""Forms of the settings area. They parse and shape input; the services own every rule
(names, duplicates, the last admin, unknown permissions), so the forms stay permissive
where a service gives the better message and the error shows up on the right field."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from apikeys.models import ApiKey
from common.errors import DomainError
from tenants.permissions import CATALOGUE

def problem_field(path: str) -> str:
    """`permissions[2]` → `permissions`, `name` → `name`, `` → ``."""
    return re.split(r"[.\[]", path or "", maxsplit=1)[0]


class ProblemsForm(forms.Form):
    def add_problems(self, error: DomainError) -> None:
        """Show a service's problems on their fields; paths the form does not know are
        shown above the form (non-field errors)."""
        for problem in error.problems:
            field = problem_field(problem.path)
            self.add_error(field if field in self.fields else None, problem.message)


class _AnyChoices(forms.MultipleChoiceField):
    """Checkboxes whose values the service validates (it names the unknown one)."""

    def valid_value(self, value) -> bool:
        return True


def _id_choices(objects, blank: str | None = None) -> list[tuple[str, str]]:
    choices = [("", blank)] if blank is not None else []
    return choices + [(str(obj.pk), obj.name) for obj in objects]


class InviteForm(ProblemsForm):
    email = forms.CharField(label="Email address", max_length=254)
    # Ids, looked up by the view inside the current tenant: an id from elsewhere is a 404.
    role = forms.IntegerField(label="Role", widget=forms.Select)
    department = forms.IntegerField(label="Department", required=False, widget=forms.Select)

    def __init__(self, *args, roles=(), departments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].widget.choices = _id_choices(roles)
        self.fields["department"].widget.choices = _id_choices(departments, blank="No department")


class MemberForm(ProblemsForm):
    role = forms.IntegerField(label="Role")
    department = forms.IntegerField(label="Department", required=False)


class InvitationAcceptForm(ProblemsForm):
    full_name = forms.CharField(label="Full name", max_length=200, required=False)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, required=False, strip=False)


class RoleForm(ProblemsForm):
    name = forms.CharField(label="Name", required=False, max_length=300)
    description = forms.CharField(label="Description", required=False, max_length=300)
    permissions = _AnyChoices(label="Permissions", required=False, choices=list(CATALOGUE.items()))


class DepartmentForm(ProblemsForm):
    name = forms.CharField(label="Name", required=False, max_length=300)


class ApiKeyForm(ProblemsForm):
    name = forms.CharField(label="Name", required=False, max_length=300)
    scopes = _AnyChoices(label="Scopes", required=False, choices=ApiKey.Scope.choices)
    expires_on = forms.DateField(label="Expires on", required=False)

    def expires_at(self) -> datetime | None:
        """The key stops working at the start of the chosen day (UTC)."""
        day: date | None = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


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
