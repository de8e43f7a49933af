"""A customer's data rights: export everything Strata holds about one customer, or
anonymise them (keep what aggregates need, strip what names the person). Deleting is
`customers.services.customer_delete`. All three are audited by external id — never by
email or name, which the append-only audit log would otherwise keep forever.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from audit.services import audit_record
from common.actors import Actor
from customers.models import (
    Consent, ConsentChange, Customer, CustomerIdentity, CustomerMetrics, Event, EventMessage, SurveyResponse,
)
from customers.selectors import PII_BUILTINS, PII_PROPERTY_KEYS, pii_trait_keys
from segments.rules.vocabulary import BUILTIN_TRAITS
from tenants.permissions import ensure_permitted

EXPORT_FORMAT = "strata.customer-export/1"
ANONYMISED_PREFIX = "anonymised-"
_CHUNK = 2000


def customer_export(*, actor: Actor, customer: Customer) -> dict[str, Any]:
    """Everything about one customer: profile with every trait, identities, events,
    survey answers, consent with its history and computed metrics. Personal data is
    included unmasked, so it needs both `data.export` and `customers.view_pii`."""
    ensure_permitted(actor, "data.export")
    ensure_permitted(actor, "customers.view_pii")
    profile = {"external_id": customer.external_id, "anonymous_ids": list(customer.anonymous_ids)}
    profile.update((key, getattr(customer, key)) for key in BUILTIN_TRAITS)
    profile.update(traits=dict(customer.traits or {}), created_at=customer.created_at, updated_at=customer.updated_at)
    metrics = CustomerMetrics.objects.filter(customer=customer).values().first()
    if metrics:
        metrics.pop("customer_id", None)
    document = {
        "format": EXPORT_FORMAT,
        "customer": profile,
        "identities": list(CustomerIdentity.objects.filter(customer=customer).order_by("kind", "value")
                           .values("kind", "value", "created_at")),
        "events": list(Event.objects.filter(customer=customer).order_by("timestamp", "id")
                       .values("name", "timestamp", "properties", "message_id", "source", "received_at")
                       .iterator(chunk_size=_CHUNK)),
        "survey_responses": [
            {"survey": r["survey__key"], "survey_kind": r["survey__kind"], "question": r["question"],
             "score": r["score"], "comment": r["comment"], "responded_at": r["responded_at"],
             "message_id": r["message_id"]}
            for r in SurveyResponse.objects.filter(customer=customer).order_by("responded_at", "id")
            .values("survey__key", "survey__kind", "question", "score", "comment", "responded_at", "message_id")
        ],
        "consents": list(Consent.objects.filter(customer=customer).order_by("channel")
                         .values("channel", "granted", "changed_at", "source")),
        "consent_history": list(ConsentChange.objects.filter(customer=customer).order_by("changed_at", "id")
                                .values("channel", "granted", "changed_at", "source")),
        "metrics": metrics,
    }
    audit_record(actor=actor, action="customer.exported", target_type="customers.customer", target_id=customer.pk,
                 target_label=customer.external_id,
                 changes={"events": len(document["events"]), "survey_responses": len(document["survey_responses"])})
    return document


@transaction.atomic
def customer_anonymise(*, actor: Actor, customer: Customer, now: datetime) -> Customer:
    """Irreversibly strip what identifies the person and keep what aggregates need.

    Cleared: email, name, birth date and every trait the registry marks as PII; all
    identities (user ids, anonymous ids), replaced by one random opaque external id;
    personal keys (email, name, phone, … and PII trait keys) in event properties, at any
    depth; survey comments. Kept: the other traits, events (names, times, other
    properties), scores, consent and metrics — counts, funnels and RFM stay true.

    TRICKY: a source that still sends the old user id afterwards creates a new profile;
    that is the point — nothing links the old id to this one any more."""
    ensure_permitted(actor, "customers.edit")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    customer_was = Customer(external_id=customer.external_id, anonymous_ids=list(customer.anonymous_ids))
    pii_keys = pii_trait_keys() | PII_BUILTINS
    new_id = ANONYMISED_PREFIX + secrets.token_hex(12)

    cleared_columns = []
    for key in sorted(pii_keys & set(BUILTIN_TRAITS)):
        setattr(customer, key, None)  # every built-in column is NULL when the trait is missing
        cleared_columns.append(key)
    traits = dict(customer.traits or {})
    removed_traits = sorted(key for key in traits if key in pii_keys)
    for key in removed_traits:
        del traits[key]
    customer.traits = traits
    customer.external_id = new_id
    customer.anonymous_ids = []
    customer.save()

    old_ids = [customer_was.external_id, *customer_was.anonymous_ids,
               *CustomerIdentity.objects.filter(customer=customer).values_list("value", flat=True)]
    CustomerIdentity.objects.filter(customer=customer).delete()
    CustomerIdentity.objects.create(customer=customer, kind=CustomerIdentity.Kind.USER_ID, value=new_id)
    # TRICKY: sources often build message ids from the user id ("u42-…"), which would tie
    # the opaque profile back to the old id. Those lose their message id (retry dedupe
    # for them ends here); opaque ones (uuids) keep it.
    naming = Q(pk__in=[])
    for old_id in {i for i in old_ids if i}:
        naming |= Q(message_id__icontains=old_id)
    named = Event.objects.filter(naming, customer=customer)
    EventMessage.objects.filter(message_id__in=named.exclude(message_id=None).values("message_id")).delete()
    unlinked = named.update(message_id=None)
    SurveyResponse.objects.filter(naming, customer=customer).update(message_id=None)

    hidden = frozenset(k.lower() for k in PII_PROPERTY_KEYS | pii_keys)
    scrubbed = _scrub_event_properties(customer=customer, hidden=hidden)
    comments = SurveyResponse.objects.filter(customer=customer).exclude(comment="").update(comment="")

    # Only the new opaque id, not even the row id: the log is append-only, and earlier
    # lines name this customer's row id with the old external id.
    audit_record(actor=actor, action="customer.anonymised", target_type="customers.customer", target_id="",
                 target_label=new_id, changes={
                     "cleared": cleared_columns + [f"traits.{k}" for k in removed_traits],
                     "events_scrubbed": scrubbed, "message_ids_cleared": unlinked, "comments_cleared": comments,
                     "at": now.isoformat(),
                 })
    return customer


def _scrub_event_properties(*, customer: Customer, hidden: frozenset[str]) -> int:
    """Remove personal keys from the customer's event properties; returns events changed.
    One customer's events, in chunks; only rows that change are written."""
    changed, total = [], 0
    events = Event.objects.filter(customer=customer).exclude(properties={}).only("id", "properties")
    for event in events.iterator(chunk_size=_CHUNK):
        cleaned = _without_keys(event.properties, hidden)
        if cleaned != event.properties:
            event.properties = cleaned
            changed.append(event)
        if len(changed) >= _CHUNK:
            Event.objects.bulk_update(changed, ["properties"])
            total, changed = total + len(changed), []
    if changed:
        Event.objects.bulk_update(changed, ["properties"])
        total += len(changed)
    return total


def _without_keys(value: Any, hidden: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without_keys(v, hidden) for k, v in value.items() if k.lower() not in hidden}
    if isinstance(value, list):
        return [_without_keys(v, hidden) for v in value]
    return value
