"""The unsubscribe link of an email: withdrawing the email consent it was made for."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from campaigns.sending import unsubscribe_read
from common.errors import Code, DomainError
from customers.feedback import ConsentChangeIn, consents_record
from customers.models import Consent, Customer


@transaction.atomic
def unsubscribe_apply(*, token: str, now: datetime) -> dict:
    """Withdraw the email consent the link was made for. Idempotent: a second click (or a
    mail client's link prefetch) records nothing new. Bad or foreign tokens → 400."""
    data = unsubscribe_read(token)
    customer = Customer.objects.filter(pk=data["u"]).first() if data else None
    if customer is None:
        raise DomainError.single(path="token", code=Code.INVALID_TOKEN, message="This unsubscribe link is not valid.")
    current = Consent.objects.filter(customer=customer, channel=Consent.Channel.EMAIL).first()
    if current is not None and not current.granted:
        return {"changed": False, "customer_id": customer.pk}
    consents_record(changes=[ConsentChangeIn(customer_id=customer.pk, channel=Consent.Channel.EMAIL, granted=False,
                                             changed_at=now, source=f"unsubscribe:campaign:{data['c']}")])
    return {"changed": True, "customer_id": customer.pk}
