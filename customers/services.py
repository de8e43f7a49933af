"""Writes to customer profiles and events from the REST API.

Profile changes and events go through `customers.ingest.ingest_messages`, like every
other way in, so trait types, the trait registry and identities are handled in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from audit.services import audit_record
from config.errors import DomainError, Problem
from customers.ingest import ANON_PREFIX, IngestResult, ItemProblem, Message, ingest_messages
from customers.models import Customer
from customers.selectors import customer_get
from customers.traits import BUILTIN_TRAITS, flatten
from tenants.access import ensure_permitted


def identity_of(external_id: str) -> tuple[str | None, str | None]:
    """(user_id, anonymous_id) of a message about `external_id`.

    TRICKY: an anonymous profile's external id is "anon:" + its anonymous id; naming it
    as a user id would create a second identity (and count a "created" customer)."""
    if external_id.startswith(ANON_PREFIX):
        return None, external_id[len(ANON_PREFIX):]
    return external_id, None


@transaction.atomic
def customer_upsert(*, actor, external_id: str, builtin: dict[str, Any], custom: dict[str, Any], now: datetime,
                    must_exist: bool = False) -> tuple[Customer, bool]:
    """Create or update the customer known by `external_id`; returns (customer, created).

    `builtin` holds built-in traits by key, `custom` the custom ones (nested objects become
    dotted keys). Null clears a trait. Problem paths name the request's fields: a built-in
    by its key, a custom trait as `traits.<key>`. With `must_exist`, an unknown customer
    is a 404 rather than created."""
    ensure_permitted(actor, "customers.edit")
    existing = customer_get(external_id=external_id)
    if must_exist:
        if existing is None:
            raise DomainError.single(path="", code="not_found", message="No customer has this external id.", status=404)
        # Held until commit, so a concurrent delete cannot be undone by this update.
        Customer.objects.select_for_update().filter(pk=existing.pk).first()
    flat_custom = flatten(custom)
    problems = [Problem(path=f"traits.{key}", code="builtin_trait",
                        message=f"“{key}” is a built-in trait: send it at the top level.")
                for key in flat_custom if key in BUILTIN_TRAITS]
    # ingest flattens objects into dotted custom keys: a built-in given as an object
    # would silently become custom traits.
    problems += [Problem(path=key, code="type_mismatch", message=f"Expected {BUILTIN_TRAITS[key].type.value}, got object.")
                 for key, value in builtin.items() if isinstance(value, dict)]
    if problems:
        raise DomainError(problems=problems)
    user_id, anonymous_id = identity_of(external_id)
    message = Message(type="identify", user_id=user_id, anonymous_id=anonymous_id, timestamp=now,
                      traits={**flat_custom, **builtin}, index=0, path="")
    result = ingest_messages(messages=[message], source="api", now=now)
    if result.problems:
        raise DomainError(problems=[Problem(path=_request_path(p.path), code=p.code, message=p.message)
                                    for p in result.problems])
    # TRICKY: ingestion counts a profile that existed without an identity row (made before
    # identities were recorded) as created; it was not.
    return customer_get(external_id=external_id), bool(result.customers_created) and existing is None


def _request_path(path: str) -> str:
    """An ingest path (".traits.nps_last", ".userId") as the request's field name."""
    path = path.lstrip(".")
    if path.startswith("traits."):
        key = path[len("traits."):]
        return key if key in BUILTIN_TRAITS else path
    if path in ("userId", "anonymousId"):
        return "external_id"
    return path


@transaction.atomic
def customer_delete(*, actor, customer: Customer) -> None:
    """Delete the profile with its events, identities, consents and survey answers."""
    ensure_permitted(actor, "customers.edit")
    # By external id, never by email or name: the audit log must not keep personal data
    # of someone who was deleted.
    audit_record(actor=actor, action="customer.deleted", target_type="customers.customer", target_id=customer.pk,
                 target_label=customer.external_id)
    customer.delete()


@dataclass(frozen=True)
class NewEvent:
    index: int  # position in the request's `events` list
    name: str
    timestamp: datetime | None = None
    external_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None


def events_record(*, actor, events: list[NewEvent], now: datetime) -> IngestResult:
    """Store a batch of events (a missing timestamp is `now`); an item ingestion refuses
    comes back in `problems` with its path (events[3].…) and the rest are stored."""
    ensure_permitted(actor, "data.import")
    messages = []
    for event in events:
        user_id, anonymous_id = identity_of(event.external_id) if event.external_id else (None, None)
        messages.append(Message(
            type="track", event=event.name, timestamp=event.timestamp or now, properties=event.properties,
            message_id=event.message_id, user_id=user_id, anonymous_id=event.anonymous_id or anonymous_id,
            index=event.index, path=f"events[{event.index}]",
        ))
    result = ingest_messages(messages=messages, source="api", now=now)
    result.problems = [ItemProblem(p.index, _event_path(p.path), p.code, p.message) for p in result.problems]
    return result


def _event_path(path: str) -> str:
    head, _, tail = path.partition(".")
    return f"{head}.external_id" if tail in ("userId", "anonymousId") else path
