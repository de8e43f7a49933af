"""Writes to plays: a segment bound to a department's tactic and KPI (house rule 1)."""

from __future__ import annotations

from typing import Any

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from audit.services import audit_record
from campaigns.models import Play
from campaigns.plays import kpi
from campaigns.services.input import (
    actor_user_id, clean_date, clean_decimal, clean_positive_int, clean_text, segment_problems,
)
from common.actors import Actor
from common.errors import CampaignCode, Code, DomainError, Problem
from common.fields import UNSET, Unset, given
from tenants.permissions import ensure_permitted
from tenants.selectors import department_problems


PLAY_FIELDS = ("name", "segment_id", "department_id", "tactic", "tactic_type", "kpi", "kpi_event", "kpi_days",
               "target", "spend", "status", "starts_on", "ends_on")


def _play_clean(actor: Actor, data: dict, *, current: Play | None) -> tuple[dict, list[Problem]]:
    problems: list[Problem] = []
    merged = {f: getattr(current, f) for f in PLAY_FIELDS} if current else {}
    merged |= {k: v for k, v in data.items() if k in PLAY_FIELDS}
    problems += clean_text(merged.get("name"), "name", required=True, limit=200)
    problems += clean_text(merged.get("tactic", ""), "tactic", required=False, limit=10_000)
    if merged.get("tactic_type") not in Play.TacticType.values:
        problems.append(Problem("tactic_type", Code.INVALID_CHOICE, f"One of {', '.join(Play.TacticType.values)}."))
    if merged.get("kpi") not in Play.Kpi.values:
        problems.append(Problem("kpi", Code.INVALID_CHOICE, f"One of {', '.join(Play.Kpi.values)}."))
    if merged.get("status", Play.Status.PLANNED) not in Play.Status.values:
        problems.append(Problem("status", Code.INVALID_CHOICE, f"One of {', '.join(Play.Status.values)}."))
    segment = None
    if "segment_id" in data or current is None:
        segment, found = segment_problems(actor, merged.get("segment_id"))
        problems += found
    if "department_id" in data:
        problems += department_problems(actor, data["department_id"])
    event_kpis = {Play.Kpi.FEATURE_ADOPTION, Play.Kpi.LEAD_TO_OPPORTUNITY, Play.Kpi.CUSTOM}
    if merged.get("kpi") in event_kpis:
        problems += clean_text(merged.get("kpi_event"), "kpi_event", required=True, limit=200)
    if merged.get("kpi") == Play.Kpi.CUSTOM and merged.get("kpi_days") is None:
        problems.append(Problem("kpi_days", Code.REQUIRED, "A custom KPI counts an event within N days: give N."))
    problems += clean_positive_int(merged.get("kpi_days"), "kpi_days")
    merged["target"] = clean_decimal(merged.get("target"), "target", problems, low=Decimal(0))
    merged["spend"] = clean_decimal(merged.get("spend"), "spend", problems, low=Decimal(0))
    if merged.get("kpi") == Play.Kpi.CAC and merged.get("spend") is None and "spend" not in [p.path for p in problems]:
        problems.append(Problem("spend", Code.REQUIRED, "CAC is spend ÷ customers acquired: enter the spend."))
    merged["starts_on"] = clean_date(merged.get("starts_on"), "starts_on", problems)
    merged["ends_on"] = clean_date(merged.get("ends_on"), "ends_on", problems)
    if merged["starts_on"] and merged["ends_on"] and merged["ends_on"] < merged["starts_on"]:
        problems.append(Problem("ends_on", CampaignCode.BEFORE_START, "A play ends on or after its start."))
    if segment is not None:
        merged["segment_label"] = segment.name
    return merged, problems


@transaction.atomic
def play_create(*, actor: Actor, name: str, segment_id: int, tactic_type: str, kpi: str,
                department_id: int | None | Unset = UNSET, tactic: str | Unset = UNSET,
                kpi_event: str | Unset = UNSET, kpi_days: int | Unset = UNSET, target: Any = UNSET, spend: Any = UNSET,
                status: str | Unset = UNSET, starts_on: Any = UNSET, ends_on: Any = UNSET) -> Play:
    ensure_permitted(actor, "campaigns.edit")
    fields = given(department_id=department_id, tactic=tactic, kpi_event=kpi_event, kpi_days=kpi_days,
                   target=target, spend=spend, status=status, starts_on=starts_on, ends_on=ends_on)
    data, problems = _play_clean(actor, {"name": name, "segment_id": segment_id, "tactic_type": tactic_type,
                                         "kpi": kpi, **fields}, current=None)
    if problems:
        raise DomainError(problems=problems)
    play = Play.objects.create(owner_id=actor_user_id(actor), name=data["name"].strip(),
                               **{k: v for k, v in data.items() if k != "name" and v is not None})
    audit_record(actor=actor, action="play.created", target=play)
    return play


@transaction.atomic
def play_update(*, actor: Actor, play: Play, name: str | Unset = UNSET, segment_id: int | Unset = UNSET,
                department_id: int | None | Unset = UNSET, tactic: str | Unset = UNSET,
                tactic_type: str | Unset = UNSET, kpi: str | Unset = UNSET, kpi_event: str | Unset = UNSET,
                kpi_days: int | Unset = UNSET, target: Any = UNSET, spend: Any = UNSET, status: str | Unset = UNSET,
                starts_on: Any = UNSET, ends_on: Any = UNSET) -> Play:
    """Change the fields passed; `target`, `spend` and the dates take what the API and forms
    send (numbers or text, ISO dates) and are checked here."""
    ensure_permitted(actor, "campaigns.edit")
    fields = given(name=name, segment_id=segment_id, department_id=department_id, tactic=tactic,
                   tactic_type=tactic_type, kpi=kpi, kpi_event=kpi_event, kpi_days=kpi_days, target=target,
                   spend=spend, status=status, starts_on=starts_on, ends_on=ends_on)
    play = Play.objects.select_for_update().get(pk=play.pk)
    data, problems = _play_clean(actor, fields, current=play)
    if problems:
        raise DomainError(problems=problems)
    for key in set(fields) | ({"segment_label"} if "segment_id" in fields else set()):
        setattr(play, key, data[key].strip() if key == "name" else data[key])
    play.save()
    audit_record(actor=actor, action="play.updated", target=play, changes={"fields": sorted(fields)})
    return play


def play_kpi(*, actor: Actor, play: Play, now: datetime) -> dict:
    ensure_permitted(actor, "campaigns.view")
    return kpi.play_kpi_actual(play=play, now=now)


def play_results(*, actor: Actor, play: Play, now: datetime) -> dict:
    ensure_permitted(actor, "campaigns.view")
    return kpi.play_results(play=play, now=now)
