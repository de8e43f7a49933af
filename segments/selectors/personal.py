"""Personal data in rules, per actor: which keys are personal in this tenant, the refusal of
a rule over them to an actor without `customers.view_pii` (its counts would spell out what
masking hides), and a definition as such an actor is shown it (segments.rules.personal)."""

from __future__ import annotations

from typing import Any

from common.actors import Actor
from common.errors import Code, Forbidden, Problem
from customers.selectors import personal_property_keys, pii_trait_keys
from segments.rules.nodes import Group
from segments.rules.personal import Personal, mask_definition, mask_group, personal_paths

PII_PERMISSION = "customers.view_pii"
REFUSAL = ("This condition reads personal data: writing, previewing or evaluating it needs the "
           "“customers.view_pii” permission.")


def personal_keys() -> Personal:
    """Personal traits (built-in and marked in the registry) and event property keys (the
    usual personal names, and any personal trait's key)."""
    return Personal(traits=pii_trait_keys(), properties=personal_property_keys())


def hidden_from(actor: Actor) -> Personal | None:
    """What `actor` may not read: None when it may read all personal data."""
    return None if actor.has(PII_PERMISSION) else personal_keys()


def ensure_rule_readable(actor: Actor, definition: Any) -> None:
    """Forbidden (403), naming each condition, when `definition` reads personal data that
    `actor` may not read."""
    hidden = hidden_from(actor)
    paths = personal_paths(definition, hidden) if hidden is not None else []
    if paths:
        raise Forbidden(problems=[Problem(f"definition.{path}" if path else "definition", Code.PERMISSION_DENIED,
                                          REFUSAL) for path in paths])


def definition_shown(actor: Actor | None, definition: Any) -> Any:
    """The definition as `actor` may read it: personal literals masked without view_pii
    (and when no actor is known: masking fails closed)."""
    hidden = personal_keys() if actor is None else hidden_from(actor)
    return definition if hidden is None or definition is None else mask_definition(definition, hidden)


def group_shown(actor: Actor, group: Group) -> Group | None:
    """The parsed rule as `actor` may read it, for summaries (None: as it is)."""
    hidden = hidden_from(actor)
    return None if hidden is None else mask_group(group, hidden)
