"""Settings → Data: how long the workspace keeps events, and the months it stores now."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from common.errors import DomainError
from common.pages import page_status, requires
from customers import partitions
from tenants.forms_settings import ProblemsForm


class RetentionForm(ProblemsForm):
    event_months = forms.IntegerField(label="Keep events for (months)", required=False)


@require_http_methods(["GET", "POST"])
@requires("settings.modify")
def settings_data(request):
    retention = partitions.retention_get()
    form = RetentionForm(request.POST or None, initial={"event_months": retention.event_months})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                partitions.retention_update(actor=request.membership, now=timezone.now(), **form.cleaned_data)
            except DomainError as error:
                form.add_problems(error)
                status = page_status(error)
            else:
                messages.success(request, "Retention saved." if form.cleaned_data["event_months"] is None else
                                 "Retention saved; older events are removed within minutes.")
                return redirect("settings_data")
        else:
            status = 400
    now = timezone.now()
    cutoff = partitions.retention_cutoff(retention, now)
    storage = partitions.event_storage()
    for month in storage:
        month["removed"] = cutoff is not None and month["month"] is not None and month["month"] < cutoff.date()
    return render(request, "settings/data.html", {
        "section": "data", "form": form, "retention": retention, "cutoff": cutoff, "storage": storage,
        "total_rows": sum(m["rows"] for m in storage), "total_bytes": sum(m["bytes"] for m in storage)}, status=status)
