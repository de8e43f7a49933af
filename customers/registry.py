"""The tenant's trait registry, as people edit it: descriptions, categories, the PII flag,
whether the membership lookup serves the trait, and the type of a custom trait (refused
while stored values contradict the new type)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction

from audit.services import audit_record
from common.actors import Actor
from common.errors import Code, CustomerCode, DomainError, NotFound, Problem
from common.jsonvalues import text_problem
from customers.models import PersonalPropertyKey, TraitDefinition
from tenants.permissions import ensure_permitted

EDITABLE = {"type", "category", "description", "is_pii", "exposed"}
BUILTIN_EDITABLE = {"description", "is_pii", "exposed"}
# The lookup's stored answers carry this cache key's value: a new one when the exposed
# traits change drops them all (segments.lookup reads it; customers cannot import it).
EXPOSED_TRAITS_VERSION = "customers:exposed-traits"
# A stored JSON value fits a type when (used to refuse a type change that would turn
# stored values into "missing" for every segment rule).
_FITS = {
    "string": "jsonb_typeof(traits -> %(key)s) = 'string'",
    "number": "jsonb_typeof(traits -> %(key)s) = 'number'",
    "boolean": "jsonb_typeof(traits -> %(key)s) = 'boolean'",
    "list": "jsonb_typeof(traits -> %(key)s) = 'array'",
    "datetime": "jsonb_typeof(traits -> %(key)s) = 'string' AND strata_timestamptz(traits ->> %(key)s) IS NOT NULL",
}


def _contradicting(key: str, type_: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM customers_customer WHERE traits ? %(key)s "
            f"AND jsonb_typeof(traits -> %(key)s) <> 'null' AND NOT ({_FITS[type_]})", {"key": key})
        return cursor.fetchone()[0]


@transaction.atomic
def trait_definition_update(*, actor: Actor, key: str, changes: dict[str, Any]) -> TraitDefinition:
    ensure_permitted(actor, "settings.modify")
    trait = TraitDefinition.objects.select_for_update().filter(key=key).first()
    if trait is None:
        raise NotFound.single(path="", code=Code.NOT_FOUND, message=f"No trait “{key}”.")
    allowed = BUILTIN_EDITABLE if trait.is_builtin else EDITABLE
    problems = [Problem(field, "builtin_trait" if field in EDITABLE else "unknown_field",
                        f"The {field} of a built-in trait is fixed by the rule language." if field in EDITABLE
                        else f"“{field}” is not a field of a trait.")
                for field in sorted(set(changes) - allowed)]
    if "type" in changes and changes["type"] not in TraitDefinition.Type.values:
        problems.append(Problem("type", Code.INVALID_VALUE, f"Types: {', '.join(TraitDefinition.Type.values)}."))
    if "category" in changes and changes["category"] not in TraitDefinition.Category.values:
        problems.append(Problem("category", Code.INVALID_VALUE,
                                f"Categories: {', '.join(TraitDefinition.Category.values)}."))
    if "description" in changes and (not isinstance(changes["description"], str) or len(changes["description"]) > 300):
        problems.append(Problem("description", Code.INVALID_VALUE, "A description is text of at most 300 characters."))
    for flag in ("is_pii", "exposed"):
        if flag in changes and not isinstance(changes[flag], bool):
            problems.append(Problem(flag, Code.INVALID_TYPE, f"`{flag}` is true or false."))
    if changes.get("exposed", trait.exposed) is True and changes.get("is_pii", trait.is_pii) is True:
        problems.append(Problem("exposed", CustomerCode.PERSONAL_EXPOSED,
                                f"“{key}” is personal: the lookup never serves personal traits."))
    if not problems and "type" in changes and changes["type"] != trait.type:
        conflicts = _contradicting(key, changes["type"])
        if conflicts:
            problems.append(Problem("type", CustomerCode.TYPE_CONFLICT,
                                    f"{conflicts:,} customers hold a “{key}” that is not a {changes['type']}; "
                                    "correct or clear those values first."))
    if problems:
        raise DomainError(problems=problems)
    before = {field: getattr(trait, field) for field in changes}
    for field, value in changes.items():
        setattr(trait, field, value)
    trait.save()
    if "exposed" in changes and before["exposed"] != trait.exposed:
        transaction.on_commit(lambda: cache.set(EXPOSED_TRAITS_VERSION, uuid.uuid4().hex[:12], None))
    audit_record(actor=actor, action="trait.updated", target=trait, target_label=trait.key,
                 changes={field: [before[field], value] for field, value in changes.items() if before[field] != value})
    return trait


MAX_PERSONAL_PROPERTY_KEYS = 200


@transaction.atomic
def personal_property_keys_set(*, actor: Actor, keys: Any) -> list[str]:
    """The event property keys the tenant declares personal, replacing the list (lower-case,
    each ≤ 64 characters of printable text). Their values are masked wherever a reader without
    customers.view_pii reads events, and rules on them need that permission. Audited."""
    ensure_permitted(actor, "settings.modify")
    if not isinstance(keys, list):
        raise DomainError.single(path="keys", code=CustomerCode.NOT_A_LIST, message="Send a list of property keys.")
    problems, wanted = [], set()
    if len(keys) > MAX_PERSONAL_PROPERTY_KEYS:
        problems.append(Problem("keys", Code.TOO_MANY, f"At most {MAX_PERSONAL_PROPERTY_KEYS} keys."))
    for index, key in enumerate(keys[:MAX_PERSONAL_PROPERTY_KEYS]):
        path = f"keys[{index}]"
        if not isinstance(key, str) or not key.strip():
            problems.append(Problem(path, Code.INVALID_VALUE, "A key is a non-empty text."))
        elif len(key.strip()) > 64 or text_problem(key) or not key.strip().isprintable():
            problems.append(Problem(path, Code.INVALID_KEY, "A key has at most 64 printable characters."))
        else:
            wanted.add(key.strip().lower())
    if problems:
        raise DomainError(problems=problems)
    before = set(PersonalPropertyKey.objects.values_list("key", flat=True))
    PersonalPropertyKey.objects.exclude(key__in=wanted).delete()
    PersonalPropertyKey.objects.bulk_create([PersonalPropertyKey(key=key) for key in sorted(wanted - before)])
    if wanted != before:
        audit_record(actor=actor, action="personal_properties.changed", target_type="customers.personalpropertykey",
                     target_label="personal property keys",
                     changes={"added": sorted(wanted - before), "removed": sorted(before - wanted)})
    return sorted(wanted)

