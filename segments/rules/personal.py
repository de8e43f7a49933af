"""Rules over personal data: which conditions read it, and the rule as a reader without
`customers.view_pii` sees it (the rule shown, its literals masked).

A condition reads personal data when it tests a personal trait (the built-in email, name
and birth date, or a custom trait the tenant's registry marks personal) or filters events
by a personal property (email, phone, address… or a personal trait's key). Such a rule
answers counts that spell out what masking hides (`email starts_with "a"`, then "ab"…),
so writing, previewing or evaluating one needs `customers.view_pii` (segments.services),
and it is shown to others with its literals masked.

Pure: the caller says which keys are personal (`Personal`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from common.masking import HIDDEN, mask_email, mask_name
from segments.rules.nodes import EventCondition, Group, PropertyFilter, SequenceCondition, TraitCondition, child_path


@dataclass(frozen=True)
class Personal:
    traits: frozenset[str]  # trait keys: built-in names and custom keys (without "traits.")
    properties: frozenset[str]  # event property keys, lower-case

    def trait(self, field: Any) -> bool:
        if not isinstance(field, str):
            return False
        return (field[len("traits."):] if field.startswith("traits.") else field) in self.traits

    def property(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower() in self.properties


def personal_paths(doc: Any, personal: Personal, path: str = "") -> list[str]:
    """Paths of the conditions (and property filters) of a definition that read personal data."""
    found: list[str] = []
    if isinstance(doc, dict):
        if doc.get("type") == "trait" and personal.trait(doc.get("field")):
            found.append(path)
        elif "property" in doc and "op" in doc and personal.property(doc.get("property")):
            found.append(path)
        else:
            for key, value in doc.items():
                found += personal_paths(value, personal, child_path(path, str(key)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += personal_paths(value, personal, child_path(path, index))
    return found


def mask_definition(doc: Any, personal: Personal) -> Any:
    """The definition with the values personal conditions compare against masked."""
    if isinstance(doc, dict):
        if doc.get("type") == "trait" and personal.trait(doc.get("field")) and "value" in doc:
            return {**doc, "value": _masked(doc["field"], doc["value"])}
        if "property" in doc and "op" in doc and personal.property(doc.get("property")) and "value" in doc:
            return {**doc, "value": _masked(doc["property"], doc["value"])}
        return {key: mask_definition(value, personal) for key, value in doc.items()}
    if isinstance(doc, list):
        return [mask_definition(value, personal) for value in doc]
    return doc


def mask_group(group: Group, personal: Personal) -> Group:
    """Parsed nodes with the same literals masked, for a one-line summary of a rule."""
    return replace(group, conditions=tuple(_mask_node(node, personal) for node in group.conditions))


def _mask_node(node, personal: Personal):
    if isinstance(node, Group):
        return mask_group(node, personal)
    if isinstance(node, TraitCondition) and personal.trait(node.field):
        return replace(node, cmp=replace(node.cmp, value=_masked(node.field, node.cmp.value)))
    if isinstance(node, EventCondition):
        return replace(node, where=_mask_filters(node.where, personal))
    if isinstance(node, SequenceCondition):
        return replace(node, steps=tuple(replace(step, where=_mask_filters(step.where, personal))
                                         for step in node.steps))
    return node


def _mask_filters(filters: tuple[PropertyFilter, ...], personal: Personal) -> tuple[PropertyFilter, ...]:
    return tuple(replace(f, cmp=replace(f.cmp, value=_masked(f.property, f.cmp.value)))
                 if personal.property(f.property) else f for f in filters)


def _masked(field: str, value: Any) -> Any:
    """email and name keep the hint the rest of the product shows; any other value hides."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(field, item) for item in value)
    key = field[len("traits."):] if field.startswith("traits.") else field
    if key.lower() == "email" and isinstance(value, str):
        return mask_email(value)
    if key.lower() == "name" and isinstance(value, str):
        return mask_name(value)
    return HIDDEN
