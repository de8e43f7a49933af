"""The workspace's segmentation maturity, computed from what it does — never typed in.

The ladder (the seeds' model): 1 basic — who customers are (demographic, geographic,
firmographic or technographic traits); 2 behavioural — what they do (events, sequences,
RFM and engagement, value metrics); 3 psychographic and needs — what they think and need
(psychographic or needs traits, survey answers); 4 predictive — what they will do (churn
risk, predicted LTV, clusters, lookalikes). A rung counts when a live segment uses it; the
level is the highest rung reached with every rung below it reached too. Each missing rung
comes with a concrete next step.

The practices beside the ladder (activated, measured, reviewed) grade activation, which is
campaigns' data: campaigns/maturity.py assesses them and hands them to `maturity_report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime

from audit.models import AuditEvent
from customers.models import TraitDefinition
from insights.models import Cluster
from segments.models import Segment
from segments.rules.nodes import (
    EventCondition, MetricCondition, RuleError, SequenceCondition, SurveyCondition, TraitCondition,
)
from segments.rules.vocabulary import BUILTIN_TRAITS
from segments.selectors.rules import rule_context, rule_registry

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

Step = tuple[str, str, str]  # text, the URL name of the page that helps, the link's words


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


def live_segments() -> list[Segment]:
    """The segments maturity reads: neither archived nor snapshots."""
    return list(Segment.objects.exclude(status=Segment.Status.ARCHIVED).exclude(kind=Segment.Kind.SNAPSHOT)
                .order_by("key"))


def maturity_report(*, now: datetime, live: list[Segment], practices: list[Practice],
                    practice_steps: Mapping[str, Step]) -> MaturityReport:
    """The ladder over `live`, beside the practices assessed by campaigns and the next step
    of each practice not met (`practice_steps`, by practice key)."""
    types = segment_types(live)
    reached = [level for level, _, wanted in RUNGS if any(types[t] for t in wanted)]
    level = 0
    while level + 1 in reached:
        level += 1
    rungs = [{"level": lvl, "name": name, "reached": lvl in reached,
              "types": sorted(t for t in wanted if types[t])} for lvl, name, wanted in RUNGS]
    return MaturityReport(now=now, level=level, level_name=dict((lvl, n) for lvl, n, _ in RUNGS).get(level, "Not started"),
                          segments=len(live), types={t: sorted(keys) for t, keys in types.items()}, rungs=rungs,
                          practices=practices, next_steps=_next_steps(rungs, practices, practice_steps))


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
        group = rule_context(definition=segment.definition, registry=registry).group
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


def _next_steps(rungs: list[dict], practices: list[Practice], practice_steps: Mapping[str, Step]) -> list[dict]:
    steps = []
    missing = [rung for rung in rungs if not rung["reached"]]
    if missing:
        text, url, link = STEP_FOR_RUNG[missing[0]["level"]]
        steps.append({"text": text, "url_name": url, "link": link, "kind": "rung"})
    steps += [dict(zip(("text", "url_name", "link"), practice_steps[p.key]), kind=p.key)
              for p in practices if not p.met]
    return steps
