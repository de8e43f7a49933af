"""Writes to customer profiles, events, survey answers and consent from the REST API.

Profile changes and events go through `customers.ingest.ingest_messages`, like every
other way in, so trait types, the trait registry and identities are handled in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from audit.services import audit_record
from common.actors import Actor
from common.errors import Code, CustomerCode, DomainError, NotFound, Problem
from common.jsonvalues import value_problem
from common.moments import MOMENT_RANGE, in_range
from customers.feedback import ConsentChangeIn, SurveyAnswerIn, consents_record, survey_answers_record
from customers.ingest.message import ANON_PREFIX, ItemProblem, Message
from customers.ingest.store import IngestResult, ingest_messages
from customers.models import Customer, EventMessage
from customers.selectors import customer_get, customers_by_external_ids
from segments.rules.vocabulary import BUILTIN_TRAITS, flatten, parse_datetime
from tenants.permissions import ensure_permitted


def identity_of(external_id: str) -> tuple[str | None, str | None]:
    """(user_id, anonymous_id) of a message about `external_id`.

    TRICKY: an anonymous profile's external id is "anon:" + its anonymous id; naming it
    as a user id would create a second identity (and count a "created" customer)."""
    if external_id.startswith(ANON_PREFIX):
        return None, external_id[len(ANON_PREFIX):]
    return external_id, None


@transaction.atomic
def customer_upsert(*, actor: Actor, external_id: str, builtin: dict[str, Any], custom: dict[str, Any], now: datetime,
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
            raise NotFound.single(path="", code=Code.NOT_FOUND, message="No customer has this external id.")
        # Held until commit, so a concurrent delete cannot be undone by this update.
        Customer.objects.select_for_update().filter(pk=existing.pk).first()
    flat_custom = flatten(custom)
    problems = [Problem(path=f"traits.{key}", code=CustomerCode.BUILTIN_TRAIT,
                        message=f"“{key}” is a built-in trait: send it at the top level.")
                for key in flat_custom if key in BUILTIN_TRAITS]
    # ingest flattens objects into dotted custom keys: a built-in given as an object
    # would silently become custom traits.
    problems += [Problem(path=key, code=Code.TYPE_MISMATCH,
                         message=f"Expected {BUILTIN_TRAITS[key].type.value}, got object.")
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
def customer_delete(*, actor: Actor, customer: Customer) -> None:
    """Delete the profile with its events, identities, consents and survey answers."""
    ensure_permitted(actor, "customers.edit")
    # By external id, never by email or name: the audit log must not keep personal data
    # of someone who was deleted.
    audit_record(actor=actor, action="customer.deleted", target_type="customers.customer", target_id=customer.pk,
                 target_label=customer.external_id)
    # Its message ids go with its events: a source sending one again is storing it anew.
    EventMessage.objects.filter(
        message_id__in=customer.events.exclude(message_id=None).values("message_id")).delete()
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


def events_record(*, actor: Actor, events: list[NewEvent], now: datetime) -> IngestResult:
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


MAX_FEEDBACK_ITEMS = 1000


def _feedback_items(body: Any, key: str) -> list[dict]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise DomainError.single(path=key, code=Code.REQUIRED, message=f"Send a non-empty `{key}` list.")
    if len(body[key]) > MAX_FEEDBACK_ITEMS:
        raise DomainError.single(path=key, code=Code.TOO_MANY,
                                 message=f"At most {MAX_FEEDBACK_ITEMS} items per request.")
    return body[key]


def _when(item: dict, field_name: str, path: str, now: datetime) -> datetime:
    raw = item.get(field_name)
    if raw is None:
        return now
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise _Bad(f"{path}.{field_name}", "invalid_timestamp", "Use an ISO 8601 date or datetime.")
    if not in_range(parsed):
        raise _Bad(f"{path}.{field_name}", Code.OUT_OF_RANGE, f"Times must be {MOMENT_RANGE}.")
    return parsed


class _Bad(Exception):
    def __init__(self, path: str, code: str, message: str) -> None:
        super().__init__(message)
        self.problem = ItemProblem(0, path, code, message)


def _refuse_hostile(item: dict, path: str) -> None:
    hostile = value_problem(item, path)
    if hostile:
        raise _Bad(hostile.path, hostile.code, hostile.message)


def _customer_id(item: dict, path: str, known: dict[str, int]) -> int:
    external_id = item.get("external_id")
    if not isinstance(external_id, str) or not external_id:
        raise _Bad(f"{path}.external_id", "required", "Name the customer by `external_id`.")
    if external_id not in known:
        raise _Bad(f"{path}.external_id", "unknown_customer", f"No customer “{external_id}”.")
    return known[external_id]


def _known_customers(items: list) -> dict[str, int]:
    ids = {i.get("external_id") for i in items if isinstance(i, dict) and isinstance(i.get("external_id"), str)}
    return customers_by_external_ids(ids)


def survey_responses_submit(*, actor: Actor, body: Any, now: datetime) -> tuple[int, list[ItemProblem]]:
    """`{"responses": [{external_id, survey, score, question?, comment?, responded_at?, message_id?}]}`:
    valid answers are stored, each bad one is reported with its path."""
    ensure_permitted(actor, "data.import")
    items = _feedback_items(body, "responses")
    known, answers, problems = _known_customers(items), [], []
    for index, item in enumerate(items):
        path = f"responses[{index}]"
        try:
            if not isinstance(item, dict):
                raise _Bad(path, "invalid_item", "Each response must be an object.")
            _refuse_hostile(item, path)
            answers.append(SurveyAnswerIn(
                customer_id=_customer_id(item, path, known), survey=str(item.get("survey", "")),
                score=item.get("score"), responded_at=_when(item, "responded_at", path, now),
                question=str(item.get("question") or ""), comment=str(item.get("comment") or ""),
                message_id=item.get("message_id") if isinstance(item.get("message_id"), str) else None,
                index=index, path=path))
        except _Bad as bad:
            problems.append(ItemProblem(index, bad.problem.path, bad.problem.code, bad.problem.message))
    stored, refused = survey_answers_record(answers=answers)
    return stored, sorted(problems + refused, key=lambda p: p.index)


def consents_submit(*, actor: Actor, body: Any, now: datetime) -> tuple[int, list[ItemProblem]]:
    """`{"consents": [{external_id, channel, granted, changed_at?, source?}]}`."""
    ensure_permitted(actor, "data.import")
    items = _feedback_items(body, "consents")
    known, changes, problems = _known_customers(items), [], []
    for index, item in enumerate(items):
        path = f"consents[{index}]"
        try:
            if not isinstance(item, dict):
                raise _Bad(path, "invalid_item", "Each consent must be an object.")
            _refuse_hostile(item, path)
            customer_id = _customer_id(item, path, known)
            if not isinstance(item.get("granted"), bool):
                raise _Bad(f"{path}.granted", "invalid_type", "`granted` must be true or false.")
            changes.append(ConsentChangeIn(customer_id, str(item.get("channel", "")), item["granted"],
                                           _when(item, "changed_at", path, now), str(item.get("source") or "api"),
                                           index=index, path=path))
        except _Bad as bad:
            problems.append(ItemProblem(index, bad.problem.path, bad.problem.code, bad.problem.message))
    refused = consents_record(changes=changes)
    return len(changes) - len(refused), sorted(problems + refused, key=lambda p: p.index)
