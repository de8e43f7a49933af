"""The activation plan (reads): plays with their KPI actuals and trends, by segment and by
department, and the segments no live play acts on — "a segment without activation is a
spreadsheet". Every number comes from campaigns.plays.kpi (computed from the data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, QuerySet

from campaigns.models import Play
from campaigns.plays import kpi
from segments.models import Segment
from tenants.models import Department

LIVE = (Play.Status.PLANNED, Play.Status.ACTIVE)
TREND_WEEKS = 8


def kpi_text(kpi_code: str, value: float | None) -> str:
    """A KPI value as people read it: rates in percent, CAC in money."""
    if value is None:
        return "—"
    if kpi_code == Play.Kpi.CAC:
        return f"{value:,.2f}"
    return f"{value * 100:.1f}%"


def target_for_form(play: Play) -> str:
    """The stored target as the form shows it (rates in percent)."""
    if play.target is None:
        return ""
    if play.kpi == Play.Kpi.CAC:
        return f"{play.target.normalize():f}"
    return f"{(play.target * 100).normalize():f}"


@dataclass
class PlayLine:
    """One play as the plan pages show it: its KPI now, against target, and its trend."""

    play: Play
    department: str | None
    kpi: dict
    trend: list[tuple[datetime, float | None]] = field(default_factory=list)

    @property
    def actual(self) -> str:
        return kpi_text(self.play.kpi, self.kpi["value"])

    @property
    def target(self) -> str:
        return kpi_text(self.play.kpi, self.kpi["target"])

    @property
    def verdict(self) -> str:
        """on_target, off_target, no_target (none set) or no_data (nothing to measure yet)."""
        if self.kpi["target"] is None:
            return "no_target"
        if self.kpi["value"] is None:
            return "no_data"
        return "on_target" if self.kpi["met"] else "off_target"


def kpi_trend(play: Play, *, now: datetime, weeks: int = TREND_WEEKS) -> list[tuple[datetime, float | None]]:
    """The KPI as it stood at the end of each of the last `weeks` weeks (each point is the
    KPI computed as of that moment, so the last one equals the actual now)."""
    points = []
    for back in range(weeks - 1, -1, -1):
        at = now - timedelta(weeks=back)
        points.append((at, kpi.play_kpi_actual(play=play, now=at)["value"]))
    return points


def play_lines(plays, *, now: datetime, trend: bool = False) -> list[PlayLine]:
    plays = list(plays)
    names = dict(Department.objects.filter(pk__in={p.department_id for p in plays if p.department_id})
                 .values_list("pk", "name"))
    return [PlayLine(play=p, department=names.get(p.department_id), kpi=kpi.play_kpi_actual(play=p, now=now),
                     trend=kpi_trend(p, now=now) if trend else []) for p in plays]


def plays_query(*, status: str = "", department_id: int | None = None, kpi_code: str = "",
                segment: Segment | None = None) -> QuerySet[Play]:
    plays = Play.objects.select_related("segment")
    if status:
        plays = plays.filter(status=status)
    else:  # archived plays are out of the plan unless asked for
        plays = plays.exclude(status=Play.Status.ARCHIVED)
    if department_id is not None:
        plays = plays.filter(department_id=department_id)
    if kpi_code:
        plays = plays.filter(kpi=kpi_code)
    if segment is not None:
        plays = plays.filter(segment=segment)
    return plays


def segments_without_play() -> QuerySet[Segment]:
    """Active segments that no planned or active play acts on (flagged on the plan)."""
    live = Play.objects.filter(segment=OuterRef("pk"), status__in=LIVE)
    return Segment.objects.filter(status=Segment.Status.ACTIVE).exclude(Exists(live)).order_by("name")


@dataclass
class DepartmentCard:
    pk: int | None
    name: str
    plays: int
    live: int


def department_cards(tenant) -> list[DepartmentCard]:
    """Every department of the workspace (with or without plays) with its count of plays
    and live ones, then the plays without a department. Counts only: KPIs are computed on
    the department's own page."""
    from django.db.models import Count, Q

    counts = {row["department_id"]: row for row in plays_query().values("department_id").annotate(
        n=Count("id"), live=Count("id", filter=Q(status__in=LIVE)))}
    buckets = [(d.pk, d.name) for d in Department.objects.filter(tenant=tenant)]
    if None in counts:
        buckets.append((None, "No department"))
    return [DepartmentCard(pk=pk, name=name, plays=counts.get(pk, {}).get("n", 0),
                           live=counts.get(pk, {}).get("live", 0)) for pk, name in buckets]
