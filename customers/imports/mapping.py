"""What a column can become, how a file's columns are matched to that, and how a cell's
text becomes a typed value. Pure: the trait registry is passed in.

Targets are strings:

- every kind: `external_id` (the customer, "anon:<id>" for an anonymous profile);
- customers: `trait:<key>`, a registered trait (built-in column or custom) or a new
  custom trait whose type is inferred from the sample rows;
- events: `name`, `timestamp`, `message_id`, `properties` (a JSON object, e.g. from a
  warehouse dump), `properties.<key>` (one property; wins over the object's);
- survey answers: `survey`, `score`, `question`, `comment`, `responded_at`, `message_id`.

A column mapped to "" (or left out of the mapping) is ignored.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from common.errors import Code, CustomerCode, Problem
from common.jsonvalues import text_problem, value_problem
from common.moments import MOMENT_RANGE, in_range
from segments.rules.vocabulary import (
    BUILTIN_TRAITS, CUSTOM_KEY, MAX_TRAIT_LIST, MAX_TRAIT_STRING, Category, TraitType, check_value, column_problem,
    key_problem, parse_datetime,
)

CUSTOMERS, EVENTS, SURVEY_RESPONSES = "customers", "events", "survey_responses"
KINDS = (CUSTOMERS, EVENTS, SURVEY_RESPONSES)
TRAIT, PROPERTY = "trait:", "properties."
IGNORE = ""

REQUIRED = {
    CUSTOMERS: ("external_id",),
    EVENTS: ("external_id", "name"),
    SURVEY_RESPONSES: ("external_id", "survey", "score"),
}
EVENT_FIELDS = {
    "external_id": "Customer external id",
    "name": "Event name",
    "timestamp": "Timestamp",
    "message_id": "Message id (deduplication)",
    "properties": "Properties (a JSON object)",
}
OBJECT = "object"  # how a `properties` cell is read: JSON text of an object
SURVEY_FIELDS = {
    "external_id": "Customer external id",
    "survey": "Survey key (nps, csat, …)",
    "score": "Score",
    "question": "Question key (custom surveys)",
    "comment": "Comment",
    "responded_at": "Answered at",
    "message_id": "Message id (deduplication)",
}
# Length limits of the columns values end up in (a longer value would fail the whole chunk).
MAX_EXTERNAL_ID = 255
MAX_EVENT_NAME = 200
MAX_MESSAGE_ID = 255
MAX_QUESTION = 64
MAX_COMMENT = 5000

_SYNONYMS = {
    "external_id": {"external_id", "externalid", "id", "user_id", "userid", "customer_id", "customerid", "customer",
                    "user", "contact_id", "distinct_id"},
    "name": {"event", "event_name", "eventname", "name", "action"},
    "timestamp": {"timestamp", "time", "ts", "occurred_at", "event_time", "sent_at", "created_at", "date"},
    "message_id": {"message_id", "messageid", "event_id", "eventid"},
    "survey": {"survey", "survey_key", "survey_id"},
    "score": {"score", "rating", "nps", "csat", "value"},
    "question": {"question", "question_key", "question_id"},
    "comment": {"comment", "comments", "feedback", "verbatim", "text", "answer"},
    "responded_at": {"responded_at", "answered_at", "submitted_at", "timestamp", "date", "created_at", "time"},
}
_TRAIT_SYNONYMS = {
    "e_mail": "email", "email_address": "email", "mail": "email", "full_name": "name", "customer_name": "name",
    "company_name": "company", "organization": "company", "organisation": "company", "employees": "company_size",
    "revenue": "annual_revenue", "dob": "birth_date", "date_of_birth": "birth_date", "birthday": "birth_date",
    "signup_date": "signed_up_at", "signed_up": "signed_up_at", "created_at": "signed_up_at", "state": "region",
    "province": "region", "device": "device_type", "operating_system": "os", "tz": "timezone", "subscription": "plan",
    "tier": "plan", "opt_in": "email_opt_in", "marketing_opt_in": "email_opt_in",
}


def normalise_name(column: str) -> str:
    """A column name as a key: "First Name" → "first_name"."""
    key = re.sub(r"[^0-9a-z_.]+", "_", column.strip().lower()).strip("_.")
    if key and not key[0].isalpha():
        key = "c_" + key
    return key[:64]


@dataclass(frozen=True)
class Registered:
    """A trait the registry knows."""

    key: str
    type: TraitType
    category: str
    builtin: bool


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    group: str


@dataclass(frozen=True)
class Targets:
    """What columns of one kind of file can map to, for the mapping screen and checks."""

    kind: str
    fixed: dict[str, str]  # target → label
    traits: dict[str, Registered] = field(default_factory=dict)  # key → registered trait (customers)

    def options(self) -> list[Option]:
        """The choices of a column's select, grouped: identity and fields first, then
        traits by segmentation category."""
        group = {CUSTOMERS: "Customer", EVENTS: "Event", SURVEY_RESPONSES: "Survey answer"}[self.kind]
        out = [Option(target, label, group) for target, label in self.fixed.items()]
        labels = dict(Category.__members__.items())
        order = [c.value for c in labels.values()]
        for trait in sorted(self.traits.values(), key=lambda t: (order.index(t.category) if t.category in order
                                                                  else len(order), not t.builtin, t.key)):
            category = trait.category.replace("_", " ").capitalize()
            kind = "" if trait.builtin else " (custom)"
            out.append(Option(TRAIT + trait.key, f"{trait.key}{kind} · {trait.type.value}", f"{category} traits"))
        return out


def targets_for(kind: str, registry: list[Registered]) -> Targets:
    if kind == CUSTOMERS:
        return Targets(kind, {"external_id": "Customer external id"}, {t.key: t for t in registry})
    if kind == EVENTS:
        return Targets(kind, dict(EVENT_FIELDS))
    return Targets(kind, dict(SURVEY_FIELDS))


# ------------------------------------------------------------------------------ inference


def infer_column(values: list[str]) -> TraitType:
    """The type of a new custom trait or property from its sample cells: the narrowest
    type every non-empty cell fits, else text."""
    cells = [v.strip() for v in values if v.strip()]
    if not cells:
        return TraitType.STRING
    for candidate in (TraitType.NUMBER, TraitType.BOOLEAN, TraitType.DATETIME):
        if all(convert(cell, candidate)[1] is None for cell in cells):
            return candidate
    return TraitType.STRING


def suggest(kind: str, header: list[str], sample: list[list[str]], targets: Targets) -> dict[str, str]:
    """A mapping guessed from the header: known names and synonyms; on a customers file
    other columns become custom traits, on an events file event properties."""
    mapping: dict[str, str] = {}
    # A column named exactly like a target takes it before any synonym can (a warehouse
    # dump has both `event_id` and `message_id`, both synonyms of the message id).
    exact = {normalise_name(c): c for c in header if normalise_name(c) in targets.fixed}
    taken: set[str] = set(exact)
    for column in header:
        key = normalise_name(column)
        if exact.get(key) == column:
            mapping[column] = key
            continue
        guess = IGNORE
        for target, names in _SYNONYMS.items():
            if target in targets.fixed and key in names and target not in taken:
                guess = target
                break
        if not guess and kind == CUSTOMERS:
            trait = key if key in targets.traits else _TRAIT_SYNONYMS.get(key, key)
            if trait and TRAIT + trait not in taken and key_problem(trait) is None:
                guess = TRAIT + trait
        elif not guess and kind == EVENTS and key and CUSTOM_KEY.match(key) and PROPERTY + key not in taken:
            guess = PROPERTY + key
        if guess:
            taken.add(guess)
        mapping[column] = guess
    return mapping


# ------------------------------------------------------------------------------ checking


@dataclass(frozen=True)
class Column:
    index: int
    name: str
    target: str
    type: TraitType | str | None = None  # how the cell's text is read (OBJECT: a JSON object)


@dataclass(frozen=True)
class Plan:
    """A checked mapping: which cell goes where, and how to read it."""

    kind: str
    columns: list[Column]
    width: int  # cells per row, from the header

    def column_of(self, target: str) -> Column | None:
        return next((c for c in self.columns if c.target == target), None)


def plan(kind: str, header: list[str], mapping: Any, targets: Targets, sample: list[list[str]],
         new_types: dict[str, str] | None = None) -> tuple[Plan | None, list[Problem], dict[str, str]]:
    """Check `mapping` ({column: target}) against the header and targets; returns the plan,
    the problems (paths `mapping`, `mapping.<column>`) and the types of new custom traits."""
    problems: list[Problem] = []
    if not isinstance(mapping, dict):
        return None, [Problem("mapping", Code.INVALID, "The mapping must be an object of column → target.")], {}
    index_of = {name: i for i, name in enumerate(header)}
    by_target: dict[str, str] = {}
    columns: list[Column] = []
    new_types = dict(new_types or {})
    for column, target in mapping.items():
        path = f"mapping.{column}"
        if column not in index_of:
            problems.append(Problem(path, CustomerCode.UNKNOWN_COLUMN, f"The file has no column “{column}”."))
            continue
        if target is None or target == IGNORE or target == "ignore":
            continue
        if not isinstance(target, str):
            problems.append(Problem(path, Code.INVALID, "A target must be text."))
            continue
        if target in by_target:
            problems.append(Problem(path, CustomerCode.DUPLICATE_TARGET,
                                    f"“{by_target[target]}” is already mapped to {target}; map each target once."))
            continue
        value_type, problem = _target_type(kind, target, targets, [row[index_of[column]] for row in sample
                                                                   if index_of[column] < len(row)], new_types)
        if problem:
            problems.append(Problem(path, problem[0], problem[1]))
            continue
        if kind == CUSTOMERS and target.startswith(TRAIT) and target[len(TRAIT):] not in targets.traits:
            new_types[target[len(TRAIT):]] = value_type.value
        by_target[target] = column
        columns.append(Column(index_of[column], column, target, value_type))
    missing = [t for t in REQUIRED[kind] if t not in by_target]
    for target in missing:
        label = {**EVENT_FIELDS, **SURVEY_FIELDS}.get(target, target)
        problems.append(Problem("mapping", CustomerCode.MISSING_TARGET, f"Map a column to “{label}” ({target})."))
    if problems:
        return None, problems, {}
    used_new = {k: v for k, v in new_types.items() if TRAIT + k in by_target}
    return Plan(kind, sorted(columns, key=lambda c: c.index), len(header)), [], used_new


def _target_type(kind: str, target: str, targets: Targets, cells: list[str],
                 new_types: dict[str, str]) -> tuple[TraitType | None, tuple[str, str] | None]:
    if target in targets.fixed:
        return {"score": TraitType.NUMBER, "timestamp": TraitType.DATETIME, "responded_at": TraitType.DATETIME,
                "properties": OBJECT}.get(target), None
    if kind == CUSTOMERS and target.startswith(TRAIT):
        key = target[len(TRAIT):]
        if key in targets.traits:
            return targets.traits[key].type, None
        bad = key_problem(key)
        if bad or not key:
            return None, ("invalid_key", bad.message if bad else "Name the custom trait.")
        if key in new_types:
            return TraitType(new_types[key]), None
        return infer_column(cells), None
    if kind == EVENTS and target.startswith(PROPERTY):
        key = target[len(PROPERTY):]
        if not CUSTOM_KEY.match(key):
            return None, ("invalid_key", "Property names start with a letter and use letters, digits, _ . - (≤ 64).")
        inferred = infer_column(cells)
        # JSON has no date type: dates stay text in event properties.
        return (TraitType.STRING if inferred is TraitType.DATETIME else inferred), None
    return None, ("unknown_target", f"“{target}” is not something a {kind.replace('_', ' ')} file can fill.")


# ------------------------------------------------------------------------------ cells


_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TRUE, _FALSE = {"true", "yes", "y", "1", "t"}, {"false", "no", "n", "0", "f"}


@dataclass(frozen=True)
class CellProblem:
    code: str
    message: str


def convert(text: str, value_type: TraitType | str | None) -> tuple[Any, CellProblem | None]:
    """The typed value of a cell, (None, None) for an empty cell (nothing to set), or a
    problem. CSV is text, so unlike JSON input "5" is read as 5 where a number is expected."""
    cell = text.strip()
    if not cell:
        return None, None
    if value_type == OBJECT:
        return _json_object(cell)
    if value_type is None or value_type is TraitType.STRING:
        if len(cell) > MAX_TRAIT_STRING:
            return None, CellProblem(Code.TOO_LONG, f"Text holds at most {MAX_TRAIT_STRING} characters.")
        found = text_problem(cell)
        return (None, CellProblem(*found)) if found else (cell, None)
    if value_type is TraitType.NUMBER:
        if _INT.match(cell):
            return int(cell), None
        if _FLOAT.match(cell):
            number = float(cell)
            if math.isfinite(number):
                return number, None
        return None, CellProblem(Code.TYPE_MISMATCH, f"Expected a number, got “{cell[:40]}”.")
    if value_type is TraitType.BOOLEAN:
        lowered = cell.lower()
        if lowered in _TRUE:
            return True, None
        if lowered in _FALSE:
            return False, None
        return None, CellProblem(Code.TYPE_MISMATCH, f"Expected yes/no (true, false, 1, 0), got “{cell[:40]}”.")
    if value_type is TraitType.DATETIME:
        parsed = parse_datetime(cell)
        if parsed is None:
            return None, CellProblem(Code.TYPE_MISMATCH, f"Expected an ISO 8601 date or datetime, got “{cell[:40]}”.")
        if not in_range(parsed):
            return None, CellProblem(Code.OUT_OF_RANGE, f"Dates must be {MOMENT_RANGE}.")
        return parsed.isoformat(), None
    if value_type is TraitType.LIST:
        if cell.startswith("["):
            try:
                items = json.loads(cell)
            except ValueError:
                return None, CellProblem(Code.TYPE_MISMATCH, "Expected a JSON list or values separated by |.")
        else:
            items = [item.strip() for item in cell.split("|") if item.strip()]
        normalised, problem = check_value(items, TraitType.LIST)
        if problem:
            return None, CellProblem(problem.code, problem.message)
        if len(normalised) > MAX_TRAIT_LIST:  # pragma: no cover - check_value covers it
            return None, CellProblem(Code.TOO_LONG, f"Lists hold at most {MAX_TRAIT_LIST} items.")
        return normalised, None
    raise ValueError(value_type)


def _json_object(cell: str) -> tuple[dict | None, CellProblem | None]:
    try:
        value = json.loads(cell)
    except (ValueError, RecursionError):
        return None, CellProblem(Code.INVALID_JSON, "Expected a JSON object, e.g. {\"plan\": \"pro\"}.")
    if not isinstance(value, dict):
        return None, CellProblem(Code.TYPE_MISMATCH, "Expected a JSON object, e.g. {\"plan\": \"pro\"}.")
    hostile = value_problem(value)
    if hostile:
        return None, CellProblem(hostile.code, hostile.message)
    return value, None


# Addresses of the everyday shape, which Django's validate_email accepts too (a dot-atom
# local part; domain labels that neither start nor end with '-'; a letters-only top-level
# domain): those skip the validator, ~5 µs a cell of a million-row file. Anything else
# (quoted local parts, IDN domains, odd characters) is still judged by validate_email.
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                          r"[A-Za-z]{2,63}\Z")


def check_builtin(key: str, value: Any) -> CellProblem | None:
    """Limits of the built-in columns beyond the trait type (a value past them would make
    the database refuse the whole chunk)."""
    if value is None:
        return None
    if key == "country" and not re.fullmatch(r"[A-Za-z]{2}", value):
        return CellProblem(Code.INVALID_VALUE, "Countries are two-letter ISO 3166-1 codes, e.g. DE.")
    column = column_problem(key, value)
    if column:
        return CellProblem(column.code, column.message)
    if key == "email" and not _PLAIN_EMAIL.match(value):
        try:
            validate_email(value)
        except ValidationError:
            return CellProblem(Code.INVALID_EMAIL, f"“{value[:60]}” is not an email address.")
    return None


__all__ = ["BUILTIN_TRAITS", "KINDS", "Plan", "Registered", "Targets", "check_builtin", "convert", "infer_column",
           "plan", "suggest", "targets_for"]
