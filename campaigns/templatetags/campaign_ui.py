"""Number formats of the results page: rates as %, lifts as signed percentage points."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """0.1234 → "12.34%"; None (an empty group) → "—"."""
    return "—" if value is None else f"{value * 100:.2f}%"


@register.filter
def points(value: float | None) -> str:
    """A difference of rates in percentage points, signed: 0.021 → "+2.10 pp"."""
    return "—" if value is None else f"{value * 100:+.2f} pp"


@register.filter
def signed_percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f}%"


@register.filter
def get_item(mapping: dict, key):
    return (mapping or {}).get(key)
