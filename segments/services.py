"""Writes to segments (definitions, versions, static members, snapshots). Memberships
themselves are written by `segments.engine`; these services validate, record versions and
ask for evaluations once their transaction commits."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from audit.services import audit_record
from common.actors import Actor
from common.errors import Code, Conflict, DomainError, Problem, SegmentCode
from common.fields import UNSET, Unset, given
from customers.rollups import rollups_request
from ops.tasking import send_to_tenant
from segments import engine
from segments.lookup import lookup_forget_all
from segments.models import Segment, SegmentEvaluation, SegmentSettings, SegmentVersion
from segments.rules.parse import aggregated_properties
from segments.rules.shapes import rolled_up_events
from segments.selectors.personal import ensure_rule_readable
from segments.selectors.rules import rule_context
from tenants.permissions import ensure_permitted
from tenants.selectors import department_problems

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Fixed routes beside /api/v1/segments/<key>/ and /segments/<key>/ (the builder's
# /segments/new/): a segment cannot be called so.
RESERVED_KEYS = frozenset({"overlap", "schema", "preview", "review", "settings", "new"})
MIN_INTERVAL, MAX_INTERVAL = timedelta(minutes=1), timedelta(days=7)
MAX_TAGS = 20


def definition_check(*, definition: Any, self_key: str | None) -> tuple[list[str], list[Problem]]:
    """(referenced keys, warnings) of a valid definition; a RuleError (paths under
    `definition.`) otherwise."""
    rule = rule_context(definition=definition, self_key=self_key)
    return sorted(rule.references), rule.warnings


def _attributes(*, key: str | None, name: Any, description: Any, tags: Any, refresh_minutes: Any) -> list[Problem]:
    problems = []
    if key is not None and (not isinstance(key, str) or not KEY.match(key)):
        problems.append(Problem("key", Code.INVALID_VALUE, "Keys use lower-case letters, digits, - and _ (≤ 64)."))
    elif key in RESERVED_KEYS:
        problems.append(Problem("key", Code.RESERVED, f"“{key}” is reserved; choose another key."))
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        problems.append(Problem("name", Code.REQUIRED, "Name the segment (≤ 200 characters)."))
    if not isinstance(description, str) or len(description) > 5000:
        problems.append(Problem("description", Code.INVALID_TYPE, "A description is text (≤ 5,000 characters)."))
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in tags):
        problems.append(Problem("tags", Code.INVALID_VALUE, f"Tags are up to {MAX_TAGS} short strings."))
    if refresh_minutes is not None and (isinstance(refresh_minutes, bool) or not isinstance(refresh_minutes, int)
                                        or not MIN_INTERVAL <= timedelta(minutes=refresh_minutes) <= MAX_INTERVAL):
        problems.append(Problem("refresh_minutes", Code.INVALID_RANGE,
                                "Refresh every 1 minute to 7 days (10080 minutes)."))
    return problems


def _rollups_request(definition: Any, *, now: datetime) -> None:
    """Ask for daily rollups of the events a saved rule counts and the numeric properties it
    aggregates, so its evaluations read days instead of events once they are back-filled."""
    group = rule_context(definition=definition).group
    events, properties = rolled_up_events(group, now), aggregated_properties(group)
    if events or properties:
        rollups_request(events=events, properties=properties, now=now)


def _evaluate_after_commit(segment: Segment, *, now: datetime, trigger: str) -> None:
    schema = connection.schema_name
    transaction.on_commit(lambda: send_to_tenant("segments.evaluate_segment", schema_name=schema,
                                                 segment_id=segment.pk, now_iso=now.isoformat(), trigger=trigger))


@transaction.atomic
def segment_create(*, actor: Actor, key: str, name: str, kind: str = Segment.Kind.DYNAMIC, definition: Any = None,
                   description: str = "", tags: list | None = None, refresh_minutes: int | None = None,
                   department_id: int | None = None, persona: dict | None = None, note: str = "",
                   now: datetime) -> tuple[Segment, list[Problem]]:
    """A new segment (and its version 1 when dynamic), with its persona card if given;
    returns it with the definition's warnings."""
    ensure_permitted(actor, "segments.edit")
    if kind == Segment.Kind.DYNAMIC:
        ensure_rule_readable(actor, definition)
    tags = [] if tags is None else tags
    problems = _attributes(key=key, name=name, description=description, tags=tags, refresh_minutes=refresh_minutes)
    if kind not in (Segment.Kind.DYNAMIC, Segment.Kind.STATIC):
        problems.append(Problem("kind", Code.INVALID_VALUE,
                                "Create a dynamic or a static segment (snapshots are frozen from one)."))
    if isinstance(key, str) and Segment.objects.filter(key=key).exists():
        problems.append(Problem("key", Code.DUPLICATE, f"A segment “{key}” exists."))
    problems += department_problems(actor, department_id)
    if persona is not None and not _persona_ok(persona):
        problems.append(Problem("persona", Code.INVALID_VALUE, PERSONA_MESSAGE))
    refs, warnings = [], []
    if kind == Segment.Kind.DYNAMIC:
        try:
            refs, warnings = definition_check(definition=definition, self_key=key if isinstance(key, str) else None)
        except DomainError as error:
            problems += error.problems
    elif definition is not None:
        problems.append(Problem("definition", Code.INVALID_VALUE, "Static segments have no rule."))
    if problems:
        raise DomainError(problems=problems)
    segment = Segment.objects.create(
        key=key, name=name.strip(), description=description, kind=kind, definition=definition,
        definition_version=1 if kind == Segment.Kind.DYNAMIC else 0, references=refs, tags=tags,
        refresh_interval=timedelta(minutes=refresh_minutes or 15), owner_id=getattr(actor, "user_id", None),
        department_id=department_id, persona=persona or {}, next_evaluation_at=now)
    if kind == Segment.Kind.DYNAMIC:
        SegmentVersion.objects.create(segment=segment, version=1, definition=definition,
                                      author_id=getattr(actor, "user_id", None), note=note[:500])
        _rollups_request(definition, now=now)
        _evaluate_after_commit(segment, now=now, trigger=SegmentEvaluation.Trigger.EDIT)
    audit_record(actor=actor, action="segment.created", target=segment, target_label=segment.key)
    return segment, warnings


@transaction.atomic
def segment_update(*, actor: Actor, segment: Segment, now: datetime, definition: Any = None, note: str = "",
                   name: str | Unset = UNSET, description: str | Unset = UNSET, tags: list[str] | Unset = UNSET,
                   refresh_minutes: int | None | Unset = UNSET, department_id: int | None | Unset = UNSET,
                   status: str | Unset = UNSET, persona: dict | Unset = UNSET) -> tuple[Segment, list[Problem]]:
    """Change the attributes passed and/or the definition; a changed definition is a new
    version and is evaluated once this commits."""
    ensure_permitted(actor, "segments.edit")
    attributes = given(name=name, description=description, tags=tags, refresh_minutes=refresh_minutes,
                       department_id=department_id, status=status, persona=persona)
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    merged = {"name": segment.name, "description": segment.description, "tags": list(segment.tags),
              "refresh_minutes": None, **attributes}
    problems = _attributes(key=None, **{k: merged[k] for k in ("name", "description", "tags", "refresh_minutes")})
    if "department_id" in attributes:
        problems += department_problems(actor, attributes["department_id"])
    if "status" in attributes:
        problems += _status_problems(segment, attributes["status"])
    if "persona" in attributes and not _persona_ok(attributes["persona"]):
        problems.append(Problem("persona", Code.INVALID_VALUE, PERSONA_MESSAGE))
    warnings, refs = [], segment.references
    changed_definition = definition is not None and definition != segment.definition
    if changed_definition:
        ensure_rule_readable(actor, definition)
    if definition is not None and segment.kind != Segment.Kind.DYNAMIC:
        problems.append(Problem("definition", Code.INVALID_VALUE, "Only dynamic segments have a rule."))
    elif changed_definition:
        try:
            refs, warnings = definition_check(definition=definition, self_key=segment.key)
        except DomainError as error:
            problems += error.problems
    if problems:
        raise DomainError(problems=problems)
    resumed = attributes.get("status") == Segment.Status.ACTIVE and segment.status != Segment.Status.ACTIVE
    if "status" in attributes and Segment.Status.ARCHIVED in (attributes["status"], segment.status) \
            and attributes["status"] != segment.status:
        transaction.on_commit(lookup_forget_all)  # the lookup never names an archived segment
    for field in ("name", "description", "tags", "department_id", "status", "persona"):
        if field in attributes:
            setattr(segment, field, attributes[field].strip() if field == "name" else attributes[field])
    if attributes.get("refresh_minutes") is not None:
        segment.refresh_interval = timedelta(minutes=attributes["refresh_minutes"])
    if changed_definition:
        segment.definition, segment.references = definition, refs
        segment.definition_version += 1
        SegmentVersion.objects.create(segment=segment, version=segment.definition_version, definition=definition,
                                      author_id=getattr(actor, "user_id", None), note=note[:500])
        _rollups_request(definition, now=now)
    segment.save()
    # A resumed segment missed what happened while it slept: evaluate it now, like an edit.
    if (changed_definition or resumed) and segment.kind == Segment.Kind.DYNAMIC:
        _evaluate_after_commit(segment, now=now, trigger=SegmentEvaluation.Trigger.EDIT)
    audit_record(actor=actor, action="segment.updated", target=segment, target_label=segment.key,
                 changes={"fields": sorted(attributes), "definition_version": segment.definition_version})
    return segment, warnings


def _status_problems(segment: Segment, status: Any) -> list[Problem]:
    """Paused segments keep their members but are not re-evaluated; archived ones also leave
    the directory — refused while a segment still in use references them (its members
    would freeze under the rules that read them)."""
    if status not in Segment.Status.values:
        return [Problem("status", Code.INVALID_VALUE, "Status is active, paused or archived.")]
    if status == Segment.Status.ARCHIVED and segment.status != Segment.Status.ARCHIVED:
        users = sorted(Segment.objects.filter(references__contains=[segment.key]).exclude(pk=segment.pk)
                       .exclude(status=Segment.Status.ARCHIVED).values_list("key", flat=True))
        if users:
            return [Problem("status", SegmentCode.REFERENCED,
                            f"Used by {', '.join(users)}: change those segments first.")]
    return []


_PERSONA_KEYS = {"name", "goals", "challenges", "needs", "preferred_features", "notes"}


PERSONA_MESSAGE = "A persona has name, goals, challenges, needs, preferred_features and notes (text)."


def _persona_ok(persona: Any) -> bool:
    return isinstance(persona, dict) and set(persona) <= _PERSONA_KEYS and all(
        isinstance(v, str) and len(v) <= 5000 for v in persona.values())


@transaction.atomic
def segment_delete(*, actor: Actor, segment: Segment) -> None:
    """Delete a segment with its history; refused while other segments reference it."""
    ensure_permitted(actor, "segments.edit")
    users = list(Segment.objects.filter(references__contains=[segment.key]).exclude(pk=segment.pk)
                 .values_list("key", flat=True))
    if users:
        raise Conflict.single(path="", code=SegmentCode.REFERENCED,
                              message=f"Used by {', '.join(sorted(users))}: change those segments first.")
    audit_record(actor=actor, action="segment.deleted", target=segment, target_label=segment.key)
    segment.delete()
    transaction.on_commit(lookup_forget_all)


def segment_evaluate_request(*, actor: Actor, segment: Segment, now: datetime) -> None:
    ensure_permitted(actor, "segments.edit")
    if segment.kind != Segment.Kind.DYNAMIC:
        raise DomainError.single(path="", code=SegmentCode.NOT_DYNAMIC, message="Only dynamic segments are evaluated.")
    ensure_rule_readable(actor, segment.definition)
    _evaluate_after_commit(segment, now=now, trigger=SegmentEvaluation.Trigger.MANUAL)


def ensure_static(segment: Segment) -> None:
    if segment.kind != Segment.Kind.STATIC:
        raise Conflict.single(path="", code=SegmentCode.NOT_STATIC,
                              message="Members are added by hand only to static segments.")


def static_members_add(*, actor: Actor, segment: Segment, customer_ids: list[int], now: datetime,
                       source: str = "manual") -> int:
    ensure_permitted(actor, "segments.edit")
    ensure_static(segment)
    added = engine.members_add(segment=segment, customer_ids=customer_ids, now=now, source=source)
    audit_record(actor=actor, action="segment.members_added", target=segment, target_label=segment.key,
                 changes={"added": added})
    return added


def static_members_remove(*, actor: Actor, segment: Segment, customer_ids: list[int], now: datetime) -> int:
    ensure_permitted(actor, "segments.edit")
    ensure_static(segment)
    removed = engine.members_remove(segment=segment, customer_ids=customer_ids, now=now)
    audit_record(actor=actor, action="segment.members_removed", target=segment, target_label=segment.key,
                 changes={"removed": removed})
    return removed


@transaction.atomic
def snapshot_create(*, actor: Actor, source: Segment, key: str, name: str, now: datetime) -> Segment:
    """Freeze `source`'s members at `now` into a new snapshot segment."""
    ensure_permitted(actor, "segments.edit")
    problems = _attributes(key=key, name=name, description="", tags=[], refresh_minutes=None)
    if isinstance(key, str) and Segment.objects.filter(key=key).exists():
        problems.append(Problem("key", Code.DUPLICATE, f"A segment “{key}” exists."))
    if problems:
        raise DomainError(problems=problems)
    snapshot = Segment.objects.create(key=key, name=name.strip(), kind=Segment.Kind.SNAPSHOT, source=source,
                                      tags=list(source.tags), owner_id=getattr(actor, "user_id", None),
                                      department_id=source.department_id,
                                      description=f"Members of “{source.name}” at {now:%Y-%m-%d %H:%M} UTC.")
    engine.snapshot_fill(snapshot=snapshot, source=source, now=now)
    audit_record(actor=actor, action="segment.snapshot_created", target=snapshot, target_label=snapshot.key,
                 changes={"source": source.key})
    snapshot.refresh_from_db()
    return snapshot


@transaction.atomic
def static_members_change(*, actor: Actor, segment: Segment, add: list[int], remove: list[int], now: datetime,
                          source: str = "manual") -> tuple[int, int]:
    """Add and remove hand-picked members together: both happen or neither."""
    ensure_permitted(actor, "segments.edit")
    ensure_static(segment)
    if set(add) & set(remove):
        raise DomainError.single(path="remove", code=Code.CONFLICT,
                                 message="A customer cannot be added and removed at once.")
    added = static_members_add(actor=actor, segment=segment, customer_ids=add, now=now, source=source) if add else 0
    removed = static_members_remove(actor=actor, segment=segment, customer_ids=remove, now=now) if remove else 0
    return added, removed


USE_RESOLUTION = timedelta(hours=1)


def segment_mark_used(*, segment: Segment, now: datetime) -> None:
    """Record that the segment's members were read (list, preview, export): at most one
    UPDATE an hour per segment, so reads stay reads."""
    if segment.last_used_at is not None and segment.last_used_at > now - USE_RESOLUTION:
        return
    # TRICKY: an evaluation holds the segment's row lock for its whole run; SKIP LOCKED
    # lets a reader pass instead of waiting for it (the next read records the use).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE segments_segment SET last_used_at = %(now)s WHERE id = (SELECT id FROM segments_segment "
            "WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at <= %(since)s) FOR UPDATE SKIP LOCKED)",
            {"now": now, "id": segment.pk, "since": now - USE_RESOLUTION})
    segment.last_used_at = now


def segment_members_export(*, actor: Actor, segment: Segment, at: datetime | None, now: datetime) -> None:
    """Allow and record an export of the segment's members (the caller streams the rows)."""
    ensure_permitted(actor, "segments.view")
    ensure_permitted(actor, "data.export")
    audit_record(actor=actor, action="segment.members_exported", target=segment, target_label=segment.key,
                 changes={"at": at.isoformat() if at else None})
    segment_mark_used(segment=segment, now=now)


MAX_MIN_SIZE = 10_000_000


@transaction.atomic
def segment_settings_update(*, actor: Actor, min_size: Any) -> SegmentSettings:
    """Change the tenant's hygiene thresholds; audited."""
    ensure_permitted(actor, "settings.modify")
    if isinstance(min_size, bool) or not isinstance(min_size, int) or not 0 <= min_size <= MAX_MIN_SIZE:
        raise DomainError.single(path="min_size", code=Code.INVALID_RANGE,
                                 message=f"The minimum size is a whole number from 0 to {MAX_MIN_SIZE:,}.")
    settings = SegmentSettings.objects.select_for_update().order_by("id").first() or SegmentSettings()
    before = settings.min_size if settings.pk else None
    settings.min_size = min_size
    settings.save()
    audit_record(actor=actor, action="segment.settings_updated", target=settings, target_label="segments",
                 changes={"min_size": [before, min_size]})
    return settings
