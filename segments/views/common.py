"""What the segment pages share: the segment named in the URL (with its freshness), and the
personal traits a member may not see with a customer as shown to them."""

from __future__ import annotations

from django.http import Http404
from django.utils import timezone

from common.masking import mask_email, mask_name
from customers.models import Customer
from customers.selectors import pii_trait_keys
from segments.models import Segment
from segments.selectors.directory import with_freshness


def segment_or_404(key: str) -> Segment:
    segment = with_freshness(Segment.objects.filter(key=key), now=timezone.now()).first()
    if segment is None:
        raise Http404("No segment has this key.")
    return segment


def hidden_fields(request) -> frozenset[str]:
    return frozenset() if request.membership.has("customers.view_pii") else pii_trait_keys()


def who(customer: Customer, hidden: frozenset[str]) -> dict:
    email = mask_email(customer.email) if "email" in hidden else customer.email
    name = mask_name(customer.name) if "name" in hidden else customer.name
    return {"customer": customer, "email": email, "name": name, "title": name or email or customer.external_id}
