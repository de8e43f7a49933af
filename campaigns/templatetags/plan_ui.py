"""Template filters for rates and lifts: fractions as people read them."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.1234 → "12.3%"; None → "—"."""
    return "—" if value is None else f"{value * 100:.1f}%"


@register.filter
def points(value) -> str:
    """A difference of two rates in percentage points: 0.021 → "+2.1 pp"."""
    return "—" if value is None else f"{value * 100:+.1f} pp"


@register.filter
def signed_percent(value) -> str:
    """A relative change: 0.15 → "+15.0%"."""
    return "—" if value is None else f"{value * 100:+.1f}%"
