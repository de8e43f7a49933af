"""The API keys page of the settings area: keys with their scopes, creation (the plain key
shown once), revocation, and the tracking write key's rotation."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apikeys.forms import ApiKeyForm
from apikeys.models import ApiKey
from apikeys.selectors import api_keys, identity_secret_current, lookup_key_current, write_key_current
from apikeys.services import (
    api_key_create, api_key_revoke, identity_secret_rotate, identity_verification_require, lookup_key_rotate,
    write_key_rotate,
)
from common.errors import DomainError
from common.pages import page_status, requires
from tenants.permissions import SCOPES



def _key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def api_keys_page(request, *, form: ApiKeyForm | None = None, alerts: list[str] | None = None, status: int = 200):
    now = timezone.now()
    keys = list(api_keys())
    for key in keys:
        key.status = _key_status(key, now)
    form = form or ApiKeyForm(initial={"scopes": ["read"]})
    checked = set(form.data.getlist("scopes")) if form.is_bound else set(form.initial.get("scopes", []))
    scopes = [{"value": value, "label": label, "checked": value in checked,
               "grants": ", ".join(sorted(SCOPES[value]))} for value, label in ApiKey.Scope.choices]
    context = {
        "section": "api_keys",
        "keys": keys,
        "form": form,
        "scopes": scopes,
        "write_key": write_key_current(), "lookup_key": lookup_key_current(),
        "identity_secret": identity_secret_current(),
        "alerts": alerts or [],
        "today": timezone.localdate(now).isoformat(),
    }
    return render(request, "settings/api_keys.html", context, status=status)


@requires("api_keys.manage")
@require_http_methods(["GET", "POST"])
@never_cache  # the POST response carries the plain key: no cache may keep it
def api_keys_view(request):
    """The list (GET) and key creation (POST), whose response shows the plain key once."""
    if request.method == "GET":
        return api_keys_page(request)
    form = ApiKeyForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            key, plain = api_key_create(actor=request.membership, name=form.cleaned_data["name"],
                                        scopes=form.cleaned_data["scopes"], now=timezone.now(),
                                        expires_at=form.expires_at())
        except DomainError as error:
            form.add_problems(error)
            status = page_status(error)
        else:
            # TRICKY: the plain key goes into this response only — not a redirect URL, the
            # session or a flash message, which would store it server-side or in history.
            return render(request, "settings/api_key_created.html", {"section": "api_keys", "key": key, "plain": plain})
    return api_keys_page(request, form=form, status=status)


@requires("api_keys.manage")
@require_POST
def api_key_revoke_view(request, pk: int):
    key = get_object_or_404(ApiKey, pk=pk)  # ApiKey lives in the tenant's schema
    try:
        api_key_revoke(actor=request.membership, key=key, now=timezone.now())
    except DomainError as error:
        return api_keys_page(request, alerts=[f"“{key.name}”: {m}" for m in error.messages],
                             status=page_status(error))
    messages.success(request, f"API key “{key.name}” revoked; requests using it are now refused.")
    return redirect("settings_api_keys")


@requires("api_keys.manage")
@require_POST
def write_key_rotate_view(request):
    try:
        write_key_rotate(actor=request.membership, now=timezone.now())
    except DomainError as error:
        return api_keys_page(request, alerts=error.messages, status=page_status(error))
    messages.success(request, "New write key issued. Update your tracking snippets and SDKs: the old key no longer works.")
    return redirect("settings_api_keys")


@requires("api_keys.manage")
@require_POST
def lookup_key_rotate_view(request):
    try:
        lookup_key_rotate(actor=request.membership, now=timezone.now())
    except DomainError as error:
        return api_keys_page(request, alerts=error.messages, status=page_status(error))
    messages.success(request, "New lookup key issued. Give it to your product's pages: the old key no longer works.")
    return redirect("settings_api_keys")


@requires("api_keys.manage")
@require_POST
def identity_secret_rotate_view(request):
    try:
        identity_secret_rotate(actor=request.membership, now=timezone.now())
    except DomainError as error:
        return api_keys_page(request, alerts=error.messages, status=page_status(error))
    messages.success(request, "New identity secret issued. Sign userIds with it on your backend: signatures made "
                              "with the old one no longer verify.")
    return redirect("settings_api_keys")


@requires("api_keys.manage")
@require_POST
def identity_verification_view(request):
    required = request.POST.get("required") == "on"
    try:
        identity_verification_require(actor=request.membership, required=required)
    except DomainError as error:
        return api_keys_page(request, alerts=error.messages, status=page_status(error))
    messages.success(request, "In-app requests without a valid userHash are now refused." if required else
                     "In-app requests without a valid userHash now get messages without personal data.")
    return redirect("settings_api_keys")

