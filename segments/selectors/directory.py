"""The segment directory and the builder: freshness, size trends and cheap hygiene flags
for a page of segments, the builder's catalogue of fields, events and metrics, and
typeahead values. One query per kind of fact for a whole page."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from customers.models import EventDefinition, Survey, TraitDefinition
from segments.models import (
    Segment,
    SegmentEvaluation,
    SegmentSizeSnapshot,
)
from segments.rules.personal import Personal
from segments.rules.vocabulary import BUILTIN_TRAITS, CHANNELS, METRICS, RFM_GROUPS, TRAIT_OPS_BY_TYPE, Category
from segments.selectors.hygiene import NEAR_DUPLICATE, overlap
from tenants.models import Department, User

SORTS = {"name": ("name", "id"), "size": ("size", "id"), "evaluated": ("last_evaluated_at", "id"),
         "created": ("created_at", "id")}
DEFAULT_SORT = "name"
FRESHNESS = ("fresh", "stale", "failed", "pending")
TREND_DAYS = 30


@dataclass(frozen=True)
class DirectoryQuery:
    search: str = ""
    kind: str = ""
    tag: str = ""
    department_id: int | None = None
    freshness: str = ""
    status: str = ""  # "" = active and paused (archived segments leave the directory)
    sort: str = DEFAULT_SORT

    @property
    def filtered(self) -> bool:
        return bool(self.search or self.kind or self.tag or self.department_id or self.freshness or self.status)


def with_freshness(queryset: QuerySet[Segment], *, now: datetime) -> QuerySet[Segment]:
    """Annotate `last_status` (the latest finished evaluation's) and `freshness`: failed when
    that evaluation failed, pending before the first success, stale when the last success is
    older than twice the refresh interval, fresh otherwise. Static and snapshot segments
    are not evaluated: `manual` / `frozen`."""
    finished = (SegmentEvaluation.objects.filter(segment=OuterRef("pk"),
                                                 status__in=[SegmentEvaluation.Status.SUCCEEDED,
                                                             SegmentEvaluation.Status.FAILED])
                .order_by("-created_at", "-id"))
    stale_before = ExpressionWrapper(Value(now, output_field=DateTimeField()) - F("refresh_interval") * 2,
                                     output_field=DateTimeField())
    return queryset.annotate(
        last_status=Subquery(finished.values("status")[:1]),
        last_error=Subquery(finished.values("error")[:1]),
        last_run_at=Subquery(finished.values("finished_at")[:1]),
    ).annotate(freshness=Case(
        When(kind=Segment.Kind.STATIC, then=Value("manual")),
        When(kind=Segment.Kind.SNAPSHOT, then=Value("frozen")),
        When(last_status=SegmentEvaluation.Status.FAILED, then=Value("failed")),
        When(last_evaluated_at__isnull=True, then=Value("pending")),
        When(last_evaluated_at__lt=stale_before, then=Value("stale")),
        default=Value("fresh"), output_field=CharField()))


def segment_directory(*, query: DirectoryQuery, now: datetime) -> QuerySet[Segment]:
    segments = with_freshness(Segment.objects.all(), now=now)
    if query.search:
        segments = segments.filter(Q(name__icontains=query.search) | Q(key__icontains=query.search)
                                   | Q(description__icontains=query.search))
    if query.kind:
        segments = segments.filter(kind=query.kind)
    if query.tag:
        segments = segments.filter(tags__contains=[query.tag])
    if query.department_id:
        segments = segments.filter(department_id=query.department_id)
    if query.freshness:
        segments = segments.filter(freshness=query.freshness)
    if query.status:
        segments = segments.filter(status=query.status)
    else:
        segments = segments.exclude(status=Segment.Status.ARCHIVED)
    sort = query.sort.lstrip("-")
    fields = SORTS.get(sort, SORTS[DEFAULT_SORT])
    prefix = "-" if query.sort.startswith("-") else ""
    return segments.order_by(*(prefix + f for f in fields))


def all_tags() -> list[str]:
    tags = set()
    for row in Segment.objects.values_list("tags", flat=True):
        tags.update(row)
    return sorted(tags, key=str.lower)


def size_trends(*, segment_ids: list[int], now: datetime, days: int = TREND_DAYS) -> dict[int, list[list]]:
    """{segment id: [[day ISO, size], …]} for the last `days` UTC days (one query)."""
    since = (now - timedelta(days=days)).date()
    trends: dict[int, list[list]] = defaultdict(list)
    for segment_id, day, size in (SegmentSizeSnapshot.objects.filter(segment_id__in=segment_ids, day__gte=since)
                                  .order_by("segment_id", "day").values_list("segment_id", "day", "size")):
        trends[segment_id].append([day.isoformat(), size])
    return dict(trends)


def near_duplicates(segments: list[Segment]) -> dict[int, list[tuple[Segment, float]]]:
    """Pairs among `segments` whose current members have Jaccard ≥ 0.9. Only segments of
    comparable stored size can qualify, so the overlap statement runs over those alone."""
    live = [s for s in segments if s.size > 0 and s.kind != Segment.Kind.SNAPSHOT]
    candidates = {a.pk: a for a in live
                  if any(b.pk != a.pk and min(a.size, b.size) >= NEAR_DUPLICATE * max(a.size, b.size) for b in live)}
    found: dict[int, list[tuple[Segment, float]]] = defaultdict(list)
    if len(candidates) < 2:
        return {}
    listed = list(candidates.values())[:10]
    result = overlap(segments=listed)
    for i, a in enumerate(listed):
        for j, b in enumerate(listed):
            value = result["jaccard"][i][j]
            if i != j and value is not None and value >= NEAR_DUPLICATE:
                found[a.pk].append((b, value))
    return dict(found)


def people_and_departments(*, owner_ids: set[int], department_ids: set[int]) -> tuple[dict[int, str], dict[int, str]]:
    owners = dict(User.objects.filter(pk__in=owner_ids).values_list("pk", "email"))
    departments = dict(Department.objects.filter(pk__in=department_ids).values_list("pk", "name"))
    return owners, departments


CATEGORY_LABELS = {c.value: c.value.capitalize() for c in Category}
METRIC_LABELS = {
    "recency_days": "Recency (days since last event)", "frequency": "Frequency (orders)", "monetary": "Monetary (revenue)",
    "r_score": "R score (1–5)", "f_score": "F score (1–5)", "m_score": "M score (1–5)", "rfm_segment": "RFM group",
    "arpu": "ARPU", "ltv": "Lifetime value", "churn_risk": "Churn risk (0–1)", "predicted_ltv": "Predicted LTV",
    "cluster": "Cluster", "engagement_score": "Engagement score",
}


def builder_catalogue(*, self_key: str | None, hidden: Personal | None = None) -> dict:
    """Everything the builder offers, as JSON: traits by category with their types, known
    events with their properties, metrics, surveys, other segments, consent channels and
    the operators each type allows (the parser's own table). Personal traits and event
    properties in `hidden` are left out: the member may not write rules on them."""
    registered = {t.key: t for t in TraitDefinition.objects.all()}
    traits = []
    for key, spec in BUILTIN_TRAITS.items():
        row = registered.get(key)
        if hidden is not None and hidden.trait(key):
            continue
        traits.append({"field": key, "label": key.replace("_", " ").capitalize(), "type": spec.type.value,
                       "category": (row.category if row else spec.category.value), "description": spec.description,
                       "builtin": True})
    for key, row in sorted(registered.items()):
        if row.is_builtin or key in BUILTIN_TRAITS or (hidden is not None and hidden.trait(key)):
            continue
        traits.append({"field": f"traits.{key}", "label": key, "type": row.type, "category": row.category,
                       "description": row.description, "builtin": False})
    events = [{"name": e.name, "volume": e.volume,
               "properties": {k: t for k, t in (e.properties or {}).items() if hidden is None or not hidden.property(k)}}
              for e in EventDefinition.objects.order_by("-volume", "name")[:500]]
    surveys = [{"key": s.key, "kind": s.kind, "name": s.name, "questions": s.questions or []}
               for s in Survey.objects.order_by("key")]
    if not any(s["key"] == "nps" for s in surveys):
        surveys.insert(0, {"key": "nps", "kind": "nps", "name": "NPS", "questions": []})
    if not any(s["key"] == "csat" for s in surveys):
        surveys.insert(1, {"key": "csat", "kind": "csat", "name": "CSAT", "questions": []})
    segments = [{"key": k, "name": n} for k, n in Segment.objects.exclude(key=self_key or "")
                .order_by("name").values_list("key", "name")]
    return {
        "categories": CATEGORY_LABELS, "traits": traits, "events": events, "surveys": surveys, "segments": segments,
        "metrics": [{"metric": m, "label": METRIC_LABELS.get(m, m), "type": t} for m, t in METRICS.items()],
        "rfm_groups": list(RFM_GROUPS), "channels": list(CHANNELS),
        "ops": {t: sorted(ops) for t, ops in TRAIT_OPS_BY_TYPE.items()},
    }


MAX_VALUES = 20


def trait_values(*, field: str, prefix: str = "", hidden: frozenset[str]) -> list[str]:
    """Up to 20 distinct known values of a string or list trait, most common first, for
    the builder's typeahead; nothing for personal traits the member may not read."""

    custom = field.startswith("traits.")
    key = field[len("traits."):] if custom else field
    if key in hidden:
        return []
    if not custom:
        spec = BUILTIN_TRAITS.get(key)
        if spec is None or spec.type.value not in ("string", "list"):
            return []
        column = connection.ops.quote_name(key)
        like = prefix.replace("%", r"\%").replace("_", r"\_") + "%"
        if spec.type.value == "list":  # a text[] column
            sql = (f"SELECT v, count(*) FROM customers_customer, unnest({column}) AS v WHERE v ILIKE %s "
                   "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s")
        else:
            sql = (f"SELECT {column}, count(*) FROM customers_customer WHERE {column} <> '' AND {column} ILIKE %s "
                   "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s")
        params = [like, MAX_VALUES]
    else:
        registered = TraitDefinition.objects.filter(key=key).values_list("type", flat=True).first()
        if registered not in ("string", "list"):
            return []
        value_sql = ("jsonb_array_elements_text(CASE WHEN jsonb_typeof(traits -> %s) = 'array' THEN traits -> %s END)"
                     if registered == "list" else None)
        if value_sql:
            sql = (f"SELECT v, count(*) FROM customers_customer, {value_sql} AS v WHERE v ILIKE %s "
                   "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s")
            params = [key, key]
        else:
            sql = ("SELECT traits ->> %s AS v, count(*) FROM customers_customer WHERE jsonb_typeof(traits -> %s) = 'string' "
                   "AND traits ->> %s ILIKE %s GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s")
            params = [key, key, key]
        params += [prefix.replace("%", r"\%").replace("_", r"\_") + "%", MAX_VALUES]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]
