"""How personal data looks to a role without `customers.view_pii`: enough to tell two
people apart on a screen ("a***@example.test", "A***"), not enough to contact them."""

from __future__ import annotations

from typing import Any

HIDDEN = "hidden"


def mask_email(value: str) -> str:
    if not value:
        return value
    local, at, domain = value.partition("@")
    return f"{local[:1]}***{at}{domain}"


def mask_name(value: str) -> str:
    return f"{value[:1]}***" if value else value


def mask_trait(field: str, value: Any, *, other: Any) -> Any:
    """A personal trait's value as shown masked: email and name keep a hint, any other
    personal trait becomes `other`."""
    if field == "email" and isinstance(value, str):
        return mask_email(value)
    if field == "name" and isinstance(value, str):
        return mask_name(value)
    return other


def mask_properties(value: Any, hidden_keys: frozenset[str]) -> Any:
    """Event properties with the values of personal keys replaced, at any depth."""
    if isinstance(value, dict):
        return {k: (HIDDEN if k.lower() in hidden_keys else mask_properties(v, hidden_keys)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_properties(v, hidden_keys) for v in value]
    return value


def mask_explain_tree(node: dict, *, other: Any) -> dict:
    """An explain tree with the values of personal facts (explain marks them `pii`) masked."""
    node = dict(node)
    if "conditions" in node:
        node["conditions"] = [mask_explain_tree(child, other=other) for child in node["conditions"]]
    fact = node.get("fact")
    if isinstance(fact, dict) and fact.get("pii"):
        node["fact"] = {**fact, "value": mask_trait(fact.get("field"), fact.get("value"), other=other), "masked": True}
        if "samples" in fact:
            node["fact"]["samples"] = [{**sample, "property_value": other} if "property_value" in sample else sample
                                       for sample in fact["samples"]]
    return node
