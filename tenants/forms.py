from django import forms
from django.contrib.auth.password_validation import validate_password

from tenants.services import SLUG_MAX


class SignupForm(forms.Form):
    name = forms.CharField(label="Company name", max_length=200)
    slug = forms.CharField(
        label="Subdomain", max_length=64, help_text="Lower-case letters, digits and hyphens."
    )
    admin_email = forms.EmailField(label="Your work email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, min_length=10)

    def clean_password(self):
        password = self.cleaned_data["password"]
        validate_password(password)
        return password

    field_order = ["name", "slug", "admin_email", "password"]
    slug_max = SLUG_MAX
