"""The rule language's vocabulary: trait types and categories, the built-in traits, the
operators each type takes, measures, metrics, channels and limits, and how a value is
checked against a trait's type.

Pure (no database): ingestion, CSV import, the API, the trait registry and the rule parser
all ask this module what a trait is, whether a value fits and which operators apply. Follows shared/specs/segment-rules.md: JSON types
are never coerced ("5" is not 5, true is not 1), and a value that contradicts a registered
type is refused with a code rather than stored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

from common.errors import Code
from common.jsonvalues import text_problem
from common.moments import EARLIEST, LATEST, MOMENT_RANGE, in_range  # noqa: F401 - the rule room's names too


class TraitType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    LIST = "list"


class Category(StrEnum):
    DEMOGRAPHIC = "demographic"
    GEOGRAPHIC = "geographic"
    FIRMOGRAPHIC = "firmographic"
    TECHNOGRAPHIC = "technographic"
    PSYCHOGRAPHIC = "psychographic"
    NEEDS = "needs"
    BEHAVIORAL = "behavioral"
    VALUE = "value"


@dataclass(frozen=True)
class TraitSpec:
    key: str
    type: TraitType
    category: Category
    description: str
    is_pii: bool = False


def _spec(key, type_, category, description, pii=False) -> tuple[str, TraitSpec]:
    return key, TraitSpec(key, TraitType(type_), Category(category), description, pii)


# Built-in traits are columns of customers_customer (the rule compiler addresses them
# directly); their types are fixed by the rule language's contract.
BUILTIN_TRAITS: dict[str, TraitSpec] = dict([
    _spec("email", "string", "demographic", "Email address", pii=True),
    _spec("name", "string", "demographic", "Full name", pii=True),
    _spec("birth_date", "datetime", "demographic", "Date of birth", pii=True),
    _spec("gender", "string", "demographic", "Gender as the customer gave it"),
    _spec("income_band", "string", "demographic", "Household income band"),
    _spec("occupation", "string", "demographic", "Job title or occupation"),
    _spec("country", "string", "geographic", "Country (ISO 3166-1 alpha-2)"),
    _spec("region", "string", "geographic", "State, province or region"),
    _spec("city", "string", "geographic", "City"),
    _spec("language", "string", "geographic", "Preferred language (BCP 47)"),
    _spec("timezone", "string", "geographic", "IANA time zone"),
    _spec("company", "string", "firmographic", "Company name"),
    _spec("industry", "string", "firmographic", "Industry"),
    _spec("company_size", "number", "firmographic", "Number of employees"),
    _spec("annual_revenue", "number", "firmographic", "Company's annual revenue"),
    _spec("device_type", "string", "technographic", "desktop, mobile or tablet"),
    _spec("os", "string", "technographic", "Operating system"),
    _spec("tech_stack", "list", "technographic", "Technologies the customer uses"),
    _spec("plan", "string", "value", "Subscription plan"),
    _spec("signed_up_at", "datetime", "behavioral", "When the customer signed up"),
    _spec("last_seen_at", "datetime", "behavioral", "Last activity"),
    _spec("email_opt_in", "boolean", "behavioral", "Agreed to marketing email"),
])

CUSTOM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
MAX_TRAIT_STRING = 2000
MAX_TRAIT_LIST = 200
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")


# Built-in traits live in typed columns and take only what the column holds (a value past
# it would make PostgreSQL refuse the whole statement): text columns' lengths, company_size
# a whole number in an integer column, annual_revenue a numeric(16, 2), tech_stack's items
# varchar(64).
BUILTIN_MAX_LENGTH = {
    "email": 254, "name": 255, "gender": 32, "income_band": 32, "occupation": 128, "country": 2, "region": 128,
    "city": 128, "language": 16, "timezone": 64, "company": 255, "industry": 128, "device_type": 32, "os": 64,
    "plan": 64, "tech_stack": 64,
}
MAX_COMPANY_SIZE = 2**31 - 1
MAX_REVENUE = 10**14  # exclusive


@dataclass(frozen=True)
class ValueProblem:
    code: str
    message: str


def key_problem(key: str) -> ValueProblem | None:
    if key in BUILTIN_TRAITS:
        return None
    if not isinstance(key, str) or not CUSTOM_KEY.match(key):
        return ValueProblem(Code.INVALID_KEY, "Trait keys start with a letter and use letters, digits, _ . - (≤ 64).")
    return None


def parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 date or datetime as an aware UTC datetime; None when it is not one.
    A datetime without an offset is UTC; a date is its UTC midnight."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _ISO_DATE.match(text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=timezone.utc)
        if _ISO_DATETIME.match(text):
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    except ValueError:
        return None
    except OverflowError:
        # An instant past year 9999 or before year 1 once its offset is applied
        # (9999-12-31T23:59:59-12:00): a datetime, but out of any range, so the caller's
        # range check names it.
        return (datetime.max if text[:4] == "9999" else datetime.min).replace(tzinfo=timezone.utc)
    return None


def infer_type(value: Any) -> TraitType | None:
    """The type a first-seen custom trait is registered with; None for null (unknown yet)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return TraitType.BOOLEAN
    if isinstance(value, (int, float)):
        return TraitType.NUMBER
    if isinstance(value, list):
        return TraitType.LIST
    if isinstance(value, str):
        moment = parse_datetime(value)
        if moment is not None and in_range(moment):
            return TraitType.DATETIME
    return TraitType.STRING


def check_value(value: Any, trait_type: TraitType, key: str = "") -> tuple[Any, ValueProblem | None]:
    """(normalised value, None) when `value` fits `trait_type` (and, for a built-in `key`,
    its column), else (None, problem). Null always fits: it clears the trait."""
    if value is None:
        return None, None
    if trait_type is TraitType.STRING:
        if not isinstance(value, str):
            return None, _mismatch(value, trait_type)
        if len(value) > MAX_TRAIT_STRING:
            return None, ValueProblem(Code.TOO_LONG, f"Text traits hold at most {MAX_TRAIT_STRING} characters.")
        normalised, problem = _text(value)
        return (None, problem) if problem else (normalised, column_problem(key, value) if key in BUILTIN_TRAITS else None)
    if trait_type is TraitType.NUMBER:
        return _number(value, key)
    if trait_type is TraitType.BOOLEAN:
        return (value, None) if isinstance(value, bool) else (None, _mismatch(value, trait_type))
    if trait_type is TraitType.DATETIME:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            return None, ValueProblem(Code.TYPE_MISMATCH, "Expected an ISO 8601 date or datetime.")
        if not in_range(parsed):
            return None, ValueProblem(Code.OUT_OF_RANGE, f"Dates must be {MOMENT_RANGE}.")
        return parsed.isoformat(), None
    if trait_type is TraitType.LIST:
        return _list(value, key)
    raise ValueError(trait_type)  # unreachable: TraitType is closed


def _text(value: str) -> tuple[Any, ValueProblem | None]:
    found = text_problem(value)
    return (None, ValueProblem(*found)) if found else (value, None)


def _number(value: Any, key: str) -> tuple[Any, ValueProblem | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, _mismatch(value, TraitType.NUMBER)
    if isinstance(value, float) and not math.isfinite(value):
        return None, ValueProblem(Code.INVALID_VALUE, "Numbers must be finite.")
    return value, column_problem(key, value) if key in BUILTIN_TRAITS else None


def _list(value: Any, key: str) -> tuple[Any, ValueProblem | None]:
    if not isinstance(value, list):
        return None, _mismatch(value, TraitType.LIST)
    if len(value) > MAX_TRAIT_LIST:
        return None, ValueProblem(Code.TOO_LONG, f"Lists hold at most {MAX_TRAIT_LIST} items.")
    if not all(isinstance(item, str) or (isinstance(item, (int, float)) and not isinstance(item, bool)
                                         and math.isfinite(item)) for item in value):
        return None, ValueProblem(Code.INVALID_VALUE, "List items must be text or finite numbers.")
    for item in value:
        if isinstance(item, str):
            if len(item) > MAX_TRAIT_STRING:
                return None, ValueProblem(Code.TOO_LONG, f"List items hold at most {MAX_TRAIT_STRING} characters.")
            _, problem = _text(item)
            if problem:
                return None, problem
    return value, column_problem(key, value) if key in BUILTIN_TRAITS else None


def column_problem(key: str, value: Any) -> ValueProblem | None:
    """What the built-in `key`'s column cannot hold of a value of the trait's type."""
    limit = BUILTIN_MAX_LENGTH.get(key)
    if limit and isinstance(value, str) and len(value) > limit:
        return ValueProblem(Code.TOO_LONG, f"{key} holds at most {limit} characters.")
    if limit and isinstance(value, list) and any(len(str(item)) > limit for item in value):
        return ValueProblem(Code.TOO_LONG, f"Each item of {key} holds at most {limit} characters.")
    if key == "company_size" and (value != int(value) or not 0 <= value <= MAX_COMPANY_SIZE):
        return ValueProblem(Code.OUT_OF_RANGE, f"Company size is a whole number of employees, 0 to {MAX_COMPANY_SIZE:,}.")
    if key == "annual_revenue" and not abs(value) < MAX_REVENUE:
        return ValueProblem(Code.OUT_OF_RANGE, f"Annual revenue must be below {MAX_REVENUE:,} in size.")
    return None


def _mismatch(value: Any, trait_type: TraitType) -> ValueProblem:
    return ValueProblem(Code.TYPE_MISMATCH, f"Expected {trait_type.value}, got {_json_type(value)}.")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def flatten(traits: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted keys ({"address": {"city": "X"}} → {"address.city": "X"}),
    so every trait is a scalar or a list the rule language can address as traits.<key>."""
    flat: dict[str, Any] = {}
    for key, value in traits.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=name + "."))
        else:
            flat[name] = value
    return flat


# ------------------------------------------------------------------ the language's tables

VERSION = 1
MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_LIST = 1000  # values of an in/not_in/has_* list in a rule
MIN_STEPS, MAX_STEPS = 2, 10
MAX_DURATION = timedelta(days=3650)

EQUALITY = {"eq", "neq"}
SETS = {"in", "not_in"}
TEXT = {"contains", "not_contains", "starts_with", "ends_with"}
ORDER = {"gt", "gte", "lt", "lte"}
RANGE = {"between"}
PRESENCE = {"is_set", "is_not_set"}
RELATIVE = {"within_last", "more_than_ago"}
LISTS = {"has_any", "has_all", "has_none"}
OCCURRED = {"within_last", "more_than_ago", "before", "after"}
ANNIVERSARY = {"anniversary_within"}  # datetime traits only: not event properties, not measures
ALL_OPS = EQUALITY | SETS | TEXT | ORDER | RANGE | PRESENCE | RELATIVE | LISTS | OCCURRED | ANNIVERSARY

OPS_BY_TYPE = {
    "string": EQUALITY | SETS | TEXT | PRESENCE,
    "number": EQUALITY | SETS | ORDER | RANGE | PRESENCE,
    "boolean": EQUALITY | PRESENCE,
    "datetime": EQUALITY | ORDER | RANGE | RELATIVE | PRESENCE,
    "list": LISTS | PRESENCE,
}
TRAIT_OPS_BY_TYPE = {**OPS_BY_TYPE, "datetime": OPS_BY_TYPE["datetime"] | ANNIVERSARY}
MAX_ANNIVERSARY_DAYS = 366
MEASURE_OPS = EQUALITY | SETS | ORDER | RANGE
MEASURES = ("count", "distinct_days", "aggregate", "first_occurred", "last_occurred", "share")
AGGREGATES = ("sum", "avg", "min", "max")
SURVEY_MEASURES = ("latest", "average", "count")
CHANNELS = ("email", "sms", "push", "in_app", "ads")
RFM_GROUPS = ("champions", "loyal", "potential_loyalist", "new_customer", "promising", "needs_attention",
              "about_to_sleep", "at_risk", "cannot_lose", "hibernating", "lost")
METRICS = {
    "recency_days": "number", "frequency": "number", "monetary": "number", "r_score": "number",
    "f_score": "number", "m_score": "number", "rfm_segment": "string", "arpu": "number", "ltv": "number",
    "churn_risk": "number", "predicted_ltv": "number", "cluster": "string", "engagement_score": "number",
}
CONDITION_TYPES = ("trait", "event", "sequence", "metric", "survey", "segment", "consent")
FILTER_OPS = ALL_OPS - {"before", "after"} - ANNIVERSARY
ANY_EVENT = "*"  # an event condition's name matching events of every name (not in sequence steps)
ISO_DAYS = range(1, 8)  # `when.days`: 1 = Monday … 7 = Sunday
HOURS = (0, 24)  # `when.hours`: [start, end), 0 ≤ start < end ≤ 24


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) and value == value \
        and value not in (float("inf"), float("-inf"))


def json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    return None
