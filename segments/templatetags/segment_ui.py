"""Segment fragments that other rooms' pages show: the customer profile's segments panel.
The profile (customers) names the tag; segments fills it, so customers never reads segments."""

from django import template

from segments.selectors.members import customer_memberships

register = template.Library()


@register.inclusion_tag("segments/_customer_memberships.html", takes_context=True)
def customer_segments(context, customer) -> dict:
    """Every membership of the customer, open ones first, for a member who may see segments;
    nothing at all for one who may not."""
    membership = getattr(context.get("request"), "membership", None)
    visible = membership is not None and membership.has("segments.view")
    return {"visible": visible, "memberships": customer_memberships(customer=customer) if visible else []}
