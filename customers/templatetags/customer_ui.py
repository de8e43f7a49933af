"""Small display helpers for the customer pages."""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """"3 days ago", one unit only (naturaltime's "1 month, 3 weeks ago" wraps in a table)."""
    if not value:
        return ""
    now = timezone.now()
    if value > now:
        return "just now" if value - now < timedelta(minutes=1) else f"in {timesince(now, value, depth=1)}"
    if now - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, now, depth=1)} ago"
