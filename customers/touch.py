"""The hand-off from customer data to whoever re-checks what depends on it.

Every write of customer data ends in one of two calls, and nowhere else:

- `touched(Touch)`: ingestion, CSV imports, survey answers and consent changes say which
  customers the write reached, and with what. Once the write commits (never for a batch that
  rolls back), each function named in settings.CUSTOMER_TOUCH_HANDLERS receives the Touch;
  segments.scheduling.touched decides which segments to re-check and queues the check.
- `merged(survivor=, losers=, now=)`: an identity merge folds profiles into one. Inside the
  merge's transaction, before the losers are deleted, each function named in
  settings.CUSTOMER_MERGE_HANDLERS moves what its room keeps per customer onto the survivor;
  one that raises rolls the whole batch back.

customers owns the payload and imports none of the handlers' rooms; settings name them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

Reached = Mapping[str, frozenset[int]]  # a name (event, trait, survey, channel) → the customers it reached


@dataclass(frozen=True)
class Touch:
    """What a write brought, and to whom. `merged`: survivors of identity merges, whose facts
    may all have changed (they took over other profiles' events, traits and answers)."""

    customer_ids: frozenset[int] = frozenset()
    events: Reached = field(default_factory=dict)
    traits: Reached = field(default_factory=dict)
    surveys: Reached = field(default_factory=dict)
    channels: Reached = field(default_factory=dict)
    merged: frozenset[int] = frozenset()

    @classmethod
    def of(cls, *, customer_ids: Iterable[int] = (), merged: Iterable[int] = (), **reached: Mapping) -> Touch:
        """From plain collections: per kind, a name → the ids it reached; empty names dropped."""
        merged = frozenset(merged)
        kinds = {kind: {name: frozenset(ids) for name, ids in (names or {}).items() if ids}
                 for kind, names in reached.items()}
        return cls(customer_ids=frozenset(customer_ids) | merged, merged=merged, **kinds)

    @classmethod
    def from_payload(cls, payload: Mapping) -> Touch:
        return cls.of(**payload)

    @classmethod
    def combined(cls, touches: Iterable[Touch]) -> Touch:
        """One touch reaching, per name, every customer any of `touches` reached."""
        reached: dict[str, dict[str, set[int]]] = {kind: {} for kind in ("events", "traits", "surveys", "channels")}
        customer_ids: set[int] = set()
        merged: set[int] = set()
        for touch in touches:
            customer_ids |= touch.customer_ids
            merged |= touch.merged
            for kind, names in reached.items():
                for name, ids in getattr(touch, kind).items():
                    names.setdefault(name, set()).update(ids)
        return cls.of(customer_ids=customer_ids, merged=merged, **reached)

    def as_payload(self) -> dict:
        """JSON-ready (sorted id lists), for the task that carries it to a worker."""
        def listed(reached: Reached) -> dict[str, list[int]]:
            return {name: sorted(ids) for name, ids in sorted(reached.items())}

        return {"customer_ids": sorted(self.customer_ids), "events": listed(self.events),
                "traits": listed(self.traits), "surveys": listed(self.surveys), "channels": listed(self.channels),
                "merged": sorted(self.merged)}


def touched(touch: Touch) -> None:
    """Hand `touch` to every touch handler once the current transaction commits."""
    if not touch.customer_ids:
        return
    for handler in _handlers(tuple(settings.CUSTOMER_TOUCH_HANDLERS)):
        transaction.on_commit(functools.partial(handler, touch))


def merged(*, survivor: int, losers: list[int], now: datetime) -> None:
    """Let every merge handler move its rows onto the survivor, now, in the merge's transaction."""
    for handler in _handlers(tuple(settings.CUSTOMER_MERGE_HANDLERS)):
        handler(survivor=survivor, losers=list(losers), now=now)


@functools.cache
def _handlers(names: tuple[str, ...]) -> list[Callable]:
    return [import_string(name) for name in names]
