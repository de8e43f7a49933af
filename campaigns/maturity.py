"""The workspace's segmentation maturity, computed from what it does — never typed in.

The ladder (the seeds' model): 1 basic — who customers are (demographic, geographic,
firmographic or technographic traits); 2 behavioural — what they do (events, sequences,
RFM and engagement, value metrics); 3 psychographic and needs — what they think and need
(psychographic or needs traits, survey answers); 4 predictive — what they will do (churn
risk, predicted LTV, clusters, lookalikes). A rung counts when a live segment uses it; the
level is the highest rung reached with every rung below it reached too.

Beside the ladder, three practices: activated (half or more of the live segments have a
play, campaign or webhook acting on them), measured (a campaign with a holdout has run) and
reviewed (a review decision in the last quarter, and no more than a fifth of the live
segments waiting in the review queue). Each missing rung and practice comes with a
concrete next step.

It lives in campaigns, beside the review cycle, because activation, holdouts and reviews
are campaigns' data (the layers let only the top room read them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from audit.models import AuditEvent
from campaigns.models import Campaign, Play, SegmentReview, WebhookEndpoint
from campaigns.review import LIVE_CAMPAIGNS, LIVE_PLAYS, review_queue
from customers.models import TraitDefinition
from insights.models import Cluster
from segments.models import Segment
from segments.rules.nodes import (
    EventCondition, MetricCondition, RuleError, SequenceCondition, SurveyCondition, TraitCondition,
)
from segments.rules.parse import parse
from segments.rules.vocabulary import BUILTIN_TRAITS
from segments.selectors.rules import rule_registry

TYPES = ("demographic", "geographic", "firmographic", "technographic", "behavioural", "psychographic_needs", "value",
         "predictive")
TYPE_LABELS = {"demographic": "Demographic", "geographic": "Geographic", "firmographic": "Firmographic",
               "technographic": "Technographic", "behavioural": "Behavioural",
               "psychographic_needs": "Psychographic and needs", "value": "Value", "predictive": "Predictive"}
RUNGS = (  # (level, name, the types that reach it)
    (1, "Basic", {"demographic", "geographic", "firmographic", "technographic"}),
    (2, "Behavioural", {"behavioural", "value"}),
    (3, "Psychographic and needs", {"psychographic_needs"}),
    (4, "Predictive", {"predictive"}),
)
PREDICTIVE_METRICS = {"churn_risk", "predicted_ltv", "cluster"}
VALUE_METRICS = {"arpu", "ltv", "monetary", "m_score"}
TRAIT_TYPES = {"behavioral": "behavioural", "psychographic": "psychographic_needs", "needs": "psychographic_needs"}
QUARTER = timedelta(days=92)


@dataclass
class Practice:
    key: str
    label: str
    met: bool
    detail: str


@dataclass
class MaturityReport:
    now: datetime
    level: int
    level_name: str
    segments: int  # live segments considered
    types: dict[str, list[str]]  # type → the keys of the segments using it
    rungs: list[dict]
    practices: list[Practice]
    next_steps: list[dict] = field(default_factory=list)  # {"text", "url_name", "link", "kind"}

    def as_dict(self) -> dict:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        return data


def workspace_maturity(*, now: datetime) -> MaturityReport:
    live = list(Segment.objects.exclude(status=Segment.Status.ARCHIVED).exclude(kind=Segment.Kind.SNAPSHOT)
                .order_by("key"))
    types = segment_types(live)
    reached = [level for level, _, wanted in RUNGS if any(types[t] for t in wanted)]
    level = 0
    while level + 1 in reached:
        level += 1
    rungs = [{"level": lvl, "name": name, "reached": lvl in reached,
              "types": sorted(t for t in wanted if types[t])} for lvl, name, wanted in RUNGS]
    practices = _practices(live, now)
    return MaturityReport(now=now, level=level, level_name=dict((lvl, n) for lvl, n, _ in RUNGS).get(level, "Not started"),
                          segments=len(live), types={t: sorted(keys) for t, keys in types.items()}, rungs=rungs,
                          practices=practices, next_steps=_next_steps(level, rungs, practices))


def segment_types(segments: list[Segment]) -> dict[str, set[str]]:
    """Which segmentation types each segment's rule reads (and which segments came from a
    model: a clustering run's cluster or a lookalike run)."""
    found: dict[str, set[str]] = {t: set() for t in TYPES}
    custom = dict(TraitDefinition.objects.filter(is_builtin=False).values_list("key", "category"))
    registry = rule_registry()
    for segment in segments:
        for kind in _rule_types(segment, custom, registry):
            found[kind].add(segment.key)
    modelled = set(Cluster.objects.filter(segment__in=segments).values_list("segment__key", flat=True))
    # A lookalike segment is a static list: the audit log's record of its making says where it came from.
    by_id = {str(s.pk): s.key for s in segments}
    lookalikes = {by_id[i] for i in AuditEvent.objects.filter(action="insights.lookalike_segment_created",
                                                                target_id__in=list(by_id))
                  .values_list("target_id", flat=True)}
    found["predictive"] |= modelled | lookalikes
    return found


def _rule_types(segment: Segment, custom: dict[str, str], registry) -> set[str]:
    if segment.kind != Segment.Kind.DYNAMIC or not segment.definition:
        return set()
    try:
        group, _ = parse(segment.definition, registry)
    except RuleError:  # a stored rule that no longer parses (a trait since removed) reads no type
        return set()
    kinds = set()
    for node in group.walk():
        if isinstance(node, TraitCondition):
            category = BUILTIN_TRAITS[node.field].category if node.field in BUILTIN_TRAITS \
                else custom.get(node.custom_key or "", "")
            kinds.add(TRAIT_TYPES.get(category, category))
        elif isinstance(node, (EventCondition, SequenceCondition)):
            kinds.add("behavioural")
        elif isinstance(node, MetricCondition):
            kinds.add("predictive" if node.metric in PREDICTIVE_METRICS else
                      "value" if node.metric in VALUE_METRICS else "behavioural")
        elif isinstance(node, SurveyCondition):
            kinds.add("psychographic_needs")
    return kinds & set(TYPES)


def _practices(live: list[Segment], now: datetime) -> list[Practice]:
    ids = {s.pk for s in live}
    acted = (set(Play.objects.filter(status__in=LIVE_PLAYS, segment_id__in=ids).values_list("segment_id", flat=True))
             | set(Campaign.objects.filter(status__in=LIVE_CAMPAIGNS + (Campaign.Status.COMPLETED,), segment_id__in=ids)
                   .values_list("segment_id", flat=True))
             | set(WebhookEndpoint.objects.filter(segment_id__in=ids).values_list("segment_id", flat=True)))
    measured = Campaign.objects.filter(holdout_percent__gt=0, status__in=[
        Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.COMPLETED]).count()
    reviews = SegmentReview.objects.filter(decided_at__gte=now - QUARTER).count()
    waiting = len(review_queue(now=now))
    return [
        Practice("activated", "Activated", bool(live) and len(acted) * 2 >= len(live),
                 f"{len(acted)} of {len(live)} live segments have a play, campaign or webhook acting on them."),
        Practice("measured", "Measured", measured > 0,
                 f"{measured} campaign{'s' if measured != 1 else ''} with a holdout "
                 f"{'have' if measured != 1 else 'has'} run."),
        Practice("reviewed", "Reviewed", reviews > 0 and waiting * 5 <= len(live),
                 f"{reviews} review decision{'s' if reviews != 1 else ''} in the last quarter; {waiting} "
                 f"segment{'s' if waiting != 1 else ''} waiting in the review queue."),
    ]


STEP_FOR_RUNG = {
    1: ("Build a segment on who customers are: a demographic, geographic or firmographic trait "
        "(e.g. country in a market you serve, or company size).", "segments_new", "Build a segment"),
    2: ("Segment on behaviour: customers who did a key event several times lately, or an RFM group "
        "such as champions or at risk.", "segments_new", "Build a segment"),
    3: ("Segment on needs and attitudes: define a custom survey (Settings → Surveys) and segment on its "
        "answers, or on NPS promoters and detractors.", "settings_surveys", "Define a survey"),
    4: ("Segment on predictions: train the churn model and segment on churn risk, or turn a cluster or "
        "lookalikes into a segment.", "insights_home", "Open Insights"),
}
STEP_FOR_PRACTICE = {
    "activated": ("Plan a play for the segments nothing acts on: an owner, a tactic and a KPI.", "plays_list",
                  "Open plays"),
    "measured": ("Launch a campaign with a holdout, so its lift is measured against customers who got nothing.",
                 "campaigns_list", "Open campaigns"),
    "reviewed": ("Work through the review queue: keep, merge or archive what no longer earns its keep.",
                 "segments_review", "Open the review queue"),
}


def _next_steps(level: int, rungs: list[dict], practices: list[Practice]) -> list[dict]:
    steps = []
    missing = [rung for rung in rungs if not rung["reached"]]
    if missing:
        text, url, link = STEP_FOR_RUNG[missing[0]["level"]]
        steps.append({"text": text, "url_name": url, "link": link, "kind": "rung"})
    steps += [dict(zip(("text", "url_name", "link"), STEP_FOR_PRACTICE[p.key]), kind=p.key)
              for p in practices if not p.met]
    return steps
