"""Settings → Segments (admins): the minimum size below which a segment is flagged, and
the segments due for their quarterly review."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from common.errors import DomainError
from common.pages import page_status, refuse_forbidden, requires
from segments.selectors.hygiene import segment_settings, stale_segments
from segments.services import segment_settings_update


class SegmentSettingsForm(forms.Form):
    min_size = forms.IntegerField(label="Minimum size", min_value=0, max_value=10_000_000)

    def add_problems(self, error: DomainError) -> None:
        for problem in error.problems:
            self.add_error("min_size" if problem.path == "min_size" else None, problem.message)


@requires("settings.modify")
@require_http_methods(["GET", "POST"])
def settings_segments(request):
    current = segment_settings()
    form = SegmentSettingsForm(request.POST or None, initial={"min_size": current.min_size})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                segment_settings_update(actor=request.membership, min_size=form.cleaned_data["min_size"])
            except DomainError as error:
                refuse_forbidden(error)
                form.add_problems(error)
                status = page_status(error)
            else:
                messages.success(request, "Segment settings saved.")
                return redirect("settings_segments")
        else:
            status = 400
    return render(request, "settings/segments.html", {
        "section": "segments", "form": form, "stale": list(stale_segments(now=timezone.now())[:200])},
        status=status)
