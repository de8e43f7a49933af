"""The unit of ingestion: every way in (tracking endpoints, REST API, CSV import) turns its
input into `Message`s; a refused item is an `ItemProblem` with its path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ANON_PREFIX = "anon:"  # an external id that names an anonymous id: "anon:<anonymousId>"


@dataclass
class Message:
    type: str
    timestamp: datetime
    message_id: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    previous_id: str | None = None
    received_at: datetime | None = None  # when it reached Strata, if not with the batch being stored
    index: int = 0  # position in the caller's batch, for problem paths
    path: str = ""  # e.g. "batch[3]"


@dataclass(frozen=True)
class ItemProblem:
    index: int
    path: str
    code: str
    message: str
