"""Forms of the customer pages: the directory's search and filters, the privacy confirmations."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from customers.selectors import DEFAULT_SORT, SORTS, DirectoryQuery

MAX_PAGE = 1000  # OFFSET beyond 50,000 rows gets slow; filters narrow faster than paging
SEEN_CHOICES = [("", "Any time"), ("1", "Last 24 hours"), ("7", "Last 7 days"), ("30", "Last 30 days"),
                ("90", "Last 90 days"), ("365", "Last year")]
SORT_CHOICES = [(key, key) for name in SORTS for key in (name, f"-{name}")]


class DirectoryForm(forms.Form):
    """The list's query string. An invalid value is reported and that filter ignored: the
    page still lists customers."""

    q = forms.CharField(required=False, max_length=255, strip=True, label="Search")
    country = forms.CharField(required=False, label="Country", validators=[
        RegexValidator(r"^[A-Za-z]{2}$", "Use a two-letter country code, like DE.", code="invalid_country")])
    plan = forms.CharField(required=False, max_length=64, label="Plan")
    industry = forms.CharField(required=False, max_length=128, label="Industry")
    rfm = forms.CharField(required=False, max_length=32, label="RFM segment")
    seen = forms.IntegerField(required=False, min_value=1, max_value=3650, label="Last seen")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, label="Sort")
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE, label="Page")

    def query(self) -> DirectoryQuery:
        """The valid part of the input (call after is_valid())."""
        data = getattr(self, "cleaned_data", {})
        return DirectoryQuery(
            search=data.get("q") or "",
            country=(data.get("country") or "").upper(),
            plan=data.get("plan") or "",
            industry=data.get("industry") or "",
            rfm_segment=data.get("rfm") or "",
            seen_within_days=data.get("seen"),
            sort=data.get("sort") or DEFAULT_SORT,
        )

    def page_number(self) -> int:
        return getattr(self, "cleaned_data", {}).get("page") or 1

    def problems(self) -> list[str]:
        return [f"{self.fields[name].label}: {' '.join(messages)}" for name, messages in self.errors.items()]


class ConfirmForm(forms.Form):
    """Anonymise and delete ask for the customer's external id, typed out."""

    confirm = forms.CharField(max_length=255, strip=True, label="Type the external id to confirm")

    def __init__(self, *args, external_id: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.external_id = external_id

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value != self.external_id:
            raise forms.ValidationError("That is not this customer's external id.", code="mismatch")
        return value
