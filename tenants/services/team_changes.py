"""The hand-off from a change to a team (invitations, members, roles, departments, the
workspace's name) to the tenant's audit log.

tenants keeps the public schema and imports no tenant-data room, yet each such change is a
line in the tenant's own log. A service says what changed with `team_changed`; inside the
service's transaction each function named in settings.TEAM_CHANGE_HANDLERS receives the
TeamChange, so a change that rolls back leaves no line and one that commits always has one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.module_loading import import_string

from common.actors import Actor


@dataclass(frozen=True)
class TeamChange:
    """`changes`: {field: [before, after]}; None stands for "did not exist" on either side."""

    actor: Actor | None
    action: str
    target: models.Model
    changes: Mapping[str, list[Any]] = field(default_factory=dict)


def team_changed(*, actor: Actor | None, action: str, target: models.Model,
                 changes: Mapping[str, list[Any]] | None = None) -> None:
    """Hand the change to every team-change handler, now, in the caller's transaction."""
    change = TeamChange(actor=actor, action=action, target=target, changes=dict(changes or {}))
    for handler in _handlers(tuple(settings.TEAM_CHANGE_HANDLERS)):
        handler(change)


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields whose value differs."""
    return {key: [before.get(key), after.get(key)] for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)}


@functools.cache
def _handlers(names: tuple[str, ...]) -> list[Callable[[TeamChange], None]]:
    return [import_string(name) for name in names]
