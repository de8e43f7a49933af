"""In-app messages a customer's app pulls: GET /v1/in-app/messages?userId=… (write-key auth).

A message is shown to a customer when its campaign is a running in-app campaign, the
customer is an open member of the campaign's segment, their stored arm is treatment
(assigned here on first sight, deterministically, as the sender would), they granted the
in-app channel, they have not dismissed it, and the frequency cap is not reached.

In-app messages are never "sent", so there is no Send row: the cap counts the
`in_app_impression` events the app reports back through /v1/track (properties
`campaign_id`, `message_id`), within the last `cap_days`. A dismissal
(`in_app_dismissed`) hides that campaign's message for good.

Identity verification (apikeys.IdentitySecret): the app sends `userHash`, the userId signed
by the tenant's backend. A verified request gets the messages rendered for the customer and
stores their arm on first sight (so results count them from the first time the app asked,
which is why it takes `now`). An unverified one — anyone can guess a userId, the write key
is public — gets the same choice of messages rendered without the customer's data, and
stores nothing, so an outsider can neither read a first name nor skew the holdout; the
tenant may refuse such requests altogether (then the view answers 401).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from campaigns import holdout, personalisation, sending
from campaigns.models import Assignment, Campaign
from common.errors import DomainError
from customers.models import Consent, Customer, CustomerIdentity, Event
from segments.models import Membership

IMPRESSION, CLICKED, DISMISSED = "in_app_impression", "in_app_clicked", "in_app_dismissed"


def message_id(campaign: Campaign, variant: str) -> str:
    return f"msg_{campaign.pk}_{variant or 'main'}"


def customer_for_user_id(user_id: str) -> Customer | None:
    """The customer a source's userId names: its identity, else the external id."""
    identity = CustomerIdentity.objects.filter(kind=CustomerIdentity.Kind.USER_ID, value=user_id).first()
    if identity is not None:
        return identity.customer
    return Customer.objects.filter(external_id=user_id).first()


def _event_count(customer: Customer, name: str, campaign: Campaign, *, since: datetime | None) -> int:
    # Properties arrive from SDKs as JSON: the campaign id may be a number or its string.
    events = Event.objects.filter(customer=customer, name=name).filter(
        Q(properties__campaign_id=campaign.pk) | Q(properties__campaign_id=str(campaign.pk)))
    if since is not None:
        events = events.filter(timestamp__gte=since)
    return events.count()


def _arm(campaign: Campaign, customer: Customer, *, now: datetime, store: bool) -> Assignment | holdout.Arm:
    """The customer's arm: stored on first sight for a verified request; for an unverified
    one the stored arm if any, else the one it would get (deterministic), stored nowhere."""
    if store:
        sending.assignments_ensure(campaign=campaign, customer_ids=[customer.pk], now=now)
    stored = Assignment.objects.filter(campaign=campaign, customer=customer).first()
    if stored is not None:
        return stored
    return holdout.assign(salt=campaign.salt, customer_id=customer.pk, percent=campaign.holdout_percent,
                          variants=campaign.variants)


def messages_for(*, user_id: str, now: datetime, verified: bool) -> list[dict]:
    customer = customer_for_user_id(user_id)
    if customer is None:
        return []
    if not Consent.objects.filter(customer=customer, channel=Consent.Channel.IN_APP, granted=True).exists():
        return []
    open_segments = Membership.objects.filter(customer=customer, exited_at__isnull=True).values("segment_id")
    campaigns = list(Campaign.objects.filter(channel=Campaign.Channel.IN_APP, status=Campaign.Status.RUNNING,
                                             segment_id__in=open_segments).order_by("launched_at", "id"))
    out = []
    data = personalisation.customer_context(customer) if verified else {}
    for campaign in campaigns:
        arm = _arm(campaign, customer, now=now, store=verified)
        if arm.group != Assignment.Group.TREATMENT:
            continue
        if _event_count(customer, DISMISSED, campaign, since=None):
            continue
        if campaign.cap_max_sends and campaign.cap_days and _event_count(
                customer, IMPRESSION, campaign, since=now - timedelta(days=campaign.cap_days)) >= campaign.cap_max_sends:
            continue
        try:
            rendered = personalisation.render_in_app(sending._content_for(campaign, arm.variant), data)
        except DomainError:  # a trait that breaks a filter: skip this message, not the others
            continue
        out.append({"id": message_id(campaign, arm.variant), "campaign": campaign.pk,
                    "title": rendered.get("title", ""), "body": rendered.get("body", ""),
                    "cta": {"label": rendered.get("cta_label", ""), "url": rendered.get("cta_url", "")}})
    return out
