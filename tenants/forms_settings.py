"""Forms of the settings area. They parse and shape input; the services own every rule
(names, duplicates, the last admin, unknown permissions), so the forms stay permissive
where a service gives the better message and the error shows up on the right field."""

from __future__ import annotations

import re

from django import forms

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


class AnyChoices(forms.MultipleChoiceField):
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
    permissions = AnyChoices(label="Permissions", required=False, choices=list(CATALOGUE.items()))


class DepartmentForm(ProblemsForm):
    name = forms.CharField(label="Name", required=False, max_length=300)
