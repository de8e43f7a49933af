"""Typed nodes of a parsed rule. Values are already normalised: durations are timedeltas,
dates and datetimes are `Moment`s, numbers are Decimals (exact: 1 == 1.0)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Union

from common.errors import DomainError, Problem


class RuleError(DomainError):
    """Every problem of a definition, each with its path (e.g. `conditions[1].count.op`)."""

    def __init__(self, problems: list[Problem]):
        super().__init__(problems=problems)


def child_path(path: str, key: str | int) -> str:
    """The path of a field or list item inside `path`: `conditions[1]`, `count.op`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


@dataclass(frozen=True)
class Moment:
    """A date-only or a full datetime value. A date compares with the UTC calendar date of
    a stored time, so it stands for a whole day: [start, end)."""

    value: datetime  # aware, UTC; midnight for a date
    is_date: bool

    @property
    def start(self) -> datetime:
        return self.value

    @property
    def end(self) -> datetime:
        """Just after the moment: the next midnight for a date; the instant itself for a datetime
        (callers use `end` for exclusive upper bounds of dates only)."""
        return self.value + timedelta(days=1) if self.is_date else self.value


def utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Window:
    """Half-open [start, end) in which events count, clipped to `now` when evaluated."""

    last: timedelta | None = None
    start: datetime | None = None  # from ("from" date → its midnight)
    end: datetime | None = None  # to (a date-only "to" takes in that whole day)

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime]:
        if self.last is not None:
            return now - self.last, now
        end = min(self.end, now) if self.end is not None else now
        return self.start, end


@dataclass(frozen=True)
class Rollups:
    """What the tenant's daily rollups can answer, offered to the compiler: per customer,
    event and UTC day the count, first and last event of the event names in `days`, and
    the sum, least and greatest of the (event, property) pairs in `values`; per customer and
    event the count, first and last event of all time of the event names in `lifetimes`."""

    values: frozenset[tuple[str, str]] = frozenset()
    days: frozenset[str] = frozenset()  # event names whose counts, days, first and last come from customers_eventday
    lifetimes: frozenset[str] = frozenset()  # event names with customers_eventlifetime rows


@dataclass(frozen=True)
class Comparison:
    """`op` and its normalised `value` on a value of `type` (string, number, boolean,
    datetime, list)."""

    op: str
    value: Any
    type: str


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    cmp: Comparison


@dataclass(frozen=True)
class When:
    """Time of week on the customer's local clock: ISO weekdays and an hour band [start, end);
    None leaves that part open (the parser requires one of them)."""

    days: frozenset[int] | None = None
    hours: tuple[int, int] | None = None


@dataclass(frozen=True)
class Measure:
    kind: str  # count | distinct_days | aggregate | first_occurred | last_occurred | share
    cmp: Comparison
    fn: str | None = None  # aggregate: sum avg min max
    property: str | None = None  # aggregate's numeric property


@dataclass(frozen=True)
class TraitCondition:
    field: str  # "country" or "traits.<key>"
    cmp: Comparison
    negate: bool = False

    @property
    def custom_key(self) -> str | None:
        return self.field[len("traits."):] if self.field.startswith("traits.") else None


@dataclass(frozen=True)
class EventCondition:
    event: str  # a name, or ANY_EVENT ("*") for events of every name
    measure: Measure
    where: tuple[PropertyFilter, ...] = ()
    window: Window | None = None
    negate: bool = False
    when: When | None = None  # filters events like `where`; `share` is the part of them it keeps


@dataclass(frozen=True)
class Step:
    event: str
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class SequenceCondition:
    steps: tuple[Step, ...]
    within: timedelta
    window: Window | None = None
    negate: bool = False


@dataclass(frozen=True)
class MetricCondition:
    metric: str
    cmp: Comparison
    negate: bool = False


@dataclass(frozen=True)
class SurveyCondition:
    survey: str
    measure: str  # latest | average | count
    cmp: Comparison
    question: str | None = None
    negate: bool = False


@dataclass(frozen=True)
class SegmentCondition:
    segment: str  # key
    inside: bool  # op "in" (True) or "not_in"
    negate: bool = False


@dataclass(frozen=True)
class ConsentCondition:
    channel: str
    granted: bool
    negate: bool = False


Condition = Union[TraitCondition, EventCondition, SequenceCondition, MetricCondition, SurveyCondition,
                  SegmentCondition, ConsentCondition]


@dataclass(frozen=True)
class Group:
    match: str  # all | any
    conditions: tuple[Union["Group", Condition], ...]
    negate: bool = False

    def walk(self):
        """Every node, depth first, this group included."""
        yield self
        for node in self.conditions:
            if isinstance(node, Group):
                yield from node.walk()
            else:
                yield node


Node = Union[Group, Condition]


@dataclass
class Registry:
    """What the parser needs to know of the tenant, resolved before parsing."""

    traits: dict[str, str] = field(default_factory=dict)  # custom trait key → type
    events: set[str] = field(default_factory=set)  # known event names (unknown → warning)
    surveys: dict[str, str] = field(default_factory=lambda: {"nps": "nps", "csat": "csat"})  # key → kind
    # segment key → keys its definition references (for cycle detection)
    segments: dict[str, set[str]] = field(default_factory=dict)
    self_key: str | None = None  # the segment being defined (None for a preview of a new one)

    def for_segment(self, key: str) -> Registry:
        """The registry as `key`'s definition sees it: every other segment, itself as self."""
        return replace(self, segments={k: refs for k, refs in self.segments.items() if k != key}, self_key=key)


def number(value: Any) -> Decimal:
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)
