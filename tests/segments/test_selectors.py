"""segments.selectors (hygiene, overlap, preview, versions) on real PostgreSQL: hygiene (too small against the tenant's minimum,
near-duplicates by member Jaccard computed by hand, stale for the quarterly review),
use recorded at most hourly, overlap at a past time, the structural diff."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from common.errors import DomainError
from customers.models import Customer
from segments import engine
from segments.models import Segment
from segments.selectors import preview as preview_module
from segments.selectors.hygiene import hygiene, overlap, segment_settings, stale_segments
from segments.selectors.preview import _KEY_SHIFT, _PREVIEW_SQL, preview
from segments.selectors.versions import definition_diff
from segments.services import segment_mark_used, segment_settings_update
from tests.conftest import host_of, membership_of

NOW = datetime(2026, 6, 10, 12, tzinfo=timezone.utc)
T0 = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


class _Everyone:
    """An actor that may read everything (these tests are about the preview's numbers)."""

    tenant_id = 0

    @staticmethod
    def has(permission: str) -> bool:
        return True


SYSTEM = _Everyone()


def plan_is(plan: str) -> dict:
    return {"version": 1, "match": "all", "conditions": [{"type": "trait", "field": "plan", "op": "eq", "value": plan}]}


def static(key: str, customers: list[Customer], now: datetime = T0) -> Segment:
    segment = Segment.objects.create(key=key, name=key.title(), kind=Segment.Kind.STATIC)
    engine.members_add(segment=segment, customer_ids=[c.pk for c in customers], now=now)
    segment.refresh_from_db()
    return segment


def by_code(warnings) -> dict:
    return {w.code: w for w in warnings}


@pytest.fixture
def pros(in_tenant):
    """20 customers on the pro plan, 5 on free; `pros` matches the 20."""
    pro = [Customer.objects.create(external_id=f"p{i:02}", plan="pro") for i in range(20)]
    free = [Customer.objects.create(external_id=f"f{i}", plan="free") for i in range(5)]
    segment = Segment.objects.create(key="pros", name="Pros", definition=plan_is("pro"), definition_version=1)
    return segment, pro, free


def test_near_duplicate_names_the_other_segment_and_its_jaccard(pros):
    """`hand` = 19 of the 20 pros → Jaccard 19/20 = 0.95 (reported); `close` = 17 pros + 2
    free → 17/22 ≈ 0.77 (not reported); `half` = 10 pros is outside the comparable sizes."""
    segment, pro, free = pros
    static("hand", pro[:19])
    static("close", pro[:17] + free[:2])
    static("half", pro[:10])
    warnings = hygiene(segment=segment, now=NOW)
    near = [w for w in warnings if w.code == "near_duplicate"]
    assert [(w.details["segment"], w.details["jaccard"], w.details["intersection"]) for w in near] == [("hand", 0.95, 19)]
    assert "“Hand” (hand): Jaccard 0.95" in near[0].message
    # From the static side: `hand`'s 19 members against the rule's open memberships.
    engine.evaluate(segment_id=segment.pk, now=T0, trigger="manual", clock=lambda: T0)
    hand = Segment.objects.get(key="hand")
    near_hand = [w.details for w in hygiene(segment=hand, now=NOW) if w.code == "near_duplicate"]
    assert [(d["segment"], d["jaccard"]) for d in near_hand] == [("pros", 0.95)]


def test_archived_and_snapshot_segments_are_not_near_duplicates(pros):
    segment, pro, _ = pros
    static("hand", pro[:19])
    Segment.objects.filter(key="hand").update(status=Segment.Status.ARCHIVED)
    frozen = static("frozen", pro)
    Segment.objects.filter(pk=frozen.pk).update(kind=Segment.Kind.SNAPSHOT)
    assert "near_duplicate" not in by_code(hygiene(segment=segment, now=NOW))


def test_too_small_follows_the_workspace_minimum(pros, tenant):
    """Default minimum 50: 20 members are too small; at a minimum of 20 they are not. The
    change is audited; a bad value is refused with its path."""
    segment, _, _ = pros
    assert by_code(hygiene(segment=segment, now=NOW))["too_small"].details == {"size": 20, "min_size": 50}
    admin = membership_of(tenant, "admin@alpha.test")
    segment_settings_update(actor=admin, min_size=20)
    assert "too_small" not in by_code(hygiene(segment=segment, now=NOW))
    assert AuditEvent.objects.filter(action="segment.settings_updated").get().changes == {"min_size": [None, 20]}
    for bad in (-1, "20", True, 10**9):
        with pytest.raises(DomainError) as error:
            segment_settings_update(actor=admin, min_size=bad)
        assert [(p.path, p.code) for p in error.value.problems] == [("min_size", "invalid_range")]


def test_settings_segments_page_saves_the_minimum(tenant):
    """Settings → Segments (admins): the form saves the minimum size."""
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(membership_of(tenant, "admin@alpha.test").user)
    assert client.get("/settings/segments/").status_code == 200
    assert client.post("/settings/segments/", {"min_size": "7"}).status_code == 302
    from django.db import connection

    connection.set_tenant(tenant)
    assert segment_settings().min_size == 7
    assert client.post("/settings/segments/", {"min_size": "-3"}).status_code == 400


def test_stale_lists_segments_neither_changed_nor_used_for_90_days(pros):
    segment, pro, _ = pros
    old = NOW - timedelta(days=100)
    hand = static("hand", pro[:3])
    Segment.objects.filter(pk__in=[segment.pk, hand.pk]).update(created_at=old, last_changed_at=old, last_used_at=None)
    Segment.objects.filter(pk=hand.pk).update(last_used_at=NOW - timedelta(days=10))
    assert list(stale_segments(now=NOW).values_list("key", flat=True)) == ["pros"]
    segment.refresh_from_db()
    warning = by_code(hygiene(segment=segment, now=NOW))["stale"]
    assert warning.details == {"last_changed_at": old.isoformat(), "last_used_at": None}
    segment_mark_used(segment=segment, now=NOW)
    assert list(stale_segments(now=NOW)) == []


def test_use_is_recorded_at_most_once_an_hour(pros):
    segment, _, _ = pros
    segment_mark_used(segment=segment, now=NOW)
    segment_mark_used(segment=Segment.objects.get(pk=segment.pk), now=NOW + timedelta(minutes=30))
    assert Segment.objects.get(pk=segment.pk).last_used_at == NOW
    segment_mark_used(segment=Segment.objects.get(pk=segment.pk), now=NOW + timedelta(minutes=61))
    assert Segment.objects.get(pk=segment.pk).last_used_at == NOW + timedelta(minutes=61)


def test_reading_members_through_the_api_marks_the_segment_used(tenant):
    from django.db import connection

    connection.set_tenant(tenant)
    Segment.objects.create(key="pros", name="Pros", definition=plan_is("pro"), definition_version=1)
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(membership_of(tenant, "admin@alpha.test").user)
    with time_machine.travel(NOW, tick=False):
        assert client.get("/api/v1/segments/pros/members/").status_code == 200
    connection.set_tenant(tenant)
    assert Segment.objects.get(key="pros").last_used_at == NOW


def test_preview_writes_nothing_and_overlap_reads_the_past(pros):
    segment, pro, _ = pros
    engine.evaluate(segment_id=segment.pk, now=T0, trigger="manual", clock=lambda: T0)
    hand = static("hand", pro[:5], now=T0 + timedelta(hours=1))
    result = preview(actor=SYSTEM, definition=plan_is("free"), now=NOW, segment=segment)
    assert (result.count, result.would_enter, result.would_exit, result.current_size) == (5, 5, 20, 20)
    assert Segment.objects.get(pk=segment.pk).size == 20
    now = overlap(segments=[segment, hand])
    before = overlap(segments=[segment, hand], at=T0)
    assert (now["matrix"], now["segments"][0]["exclusive"], now["union"]) == ([[20, 5], [5, 5]], 15, 20)
    assert (before["matrix"], before["segments"][1]["exclusive"]) == ([[20, 0], [0, 0]], 0)


def test_definition_diff_compares_json_types_exactly():
    diff = definition_diff({"a": 1, "b": [1, 2], "c": True}, {"a": 1.0, "b": [1], "c": 1, "d": None})
    assert diff["changed"] == [{"path": "c", "from": True, "to": 1}]
    assert diff["removed"] == [{"path": "b[1]", "value": 2}]
    assert diff["added"] == [{"path": "d", "value": None}]
    assert json.loads(json.dumps(diff))  # plain JSON for the API


def test_hygiene_of_an_unsaved_draft_and_from_open_memberships(pros):
    """A draft (no pk) is compared with every other segment; `use_memberships` reads an
    evaluated segment's open memberships instead of running its rule again."""
    segment, pro, _ = pros
    static("hand", pro[:19])
    draft = Segment(key="draft", name="Draft", definition=plan_is("pro"))
    assert [w.details["segment"] for w in hygiene(segment=draft, now=NOW) if w.code == "near_duplicate"] == [
        "hand"]
    engine.evaluate(segment_id=segment.pk, now=T0, trigger="manual", clock=lambda: T0)
    segment.refresh_from_db()
    Customer.objects.filter(plan="pro").update(plan="free")  # the rule now matches nobody
    assert by_code(hygiene(segment=segment, now=NOW))["too_small"].details["size"] == 0
    assert by_code(hygiene(segment=segment, now=NOW, use_memberships=True))["too_small"].details["size"] == 20


def test_preview_of_a_dense_rule_samples_its_probes_and_counts_alone(pros, monkeypatch):
    """Every id of a small tenant is a probe: 20 of 25 match, a whole sample, so the bucketed
    pass never runs; the sample is ordered by the same key as the sparse way's, so both
    ways give the same ids."""
    _, pro, _ = pros
    ids = {c.pk for c in pro}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM customers_customer WHERE plan = 'pro' ORDER BY "
                       f"((hashint8(id) >> 8)::bigint << {_KEY_SHIFT}) + id")
        by_key = [row[0] for row in cursor.fetchall()]
    real_bucketed = _PREVIEW_SQL
    monkeypatch.setattr(preview_module, "_PREVIEW_SQL", "SELECT 1/0 FROM ({matched}) m")  # must not run
    first = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW)
    assert first.count == 20 and set(first.sample_ids) == ids and first.sample_ids == by_key
    assert preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, sample_size=3).sample_ids == by_key[:3]
    monkeypatch.setattr(preview_module, "_PREVIEW_SQL", real_bucketed)
    monkeypatch.setattr(preview_module, "SAMPLE_PROBES", 0)  # the sparse way: every match a bucket minimum, or the fallback
    assert preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW).sample_ids == by_key


def test_a_dense_preview_against_a_segment_counts_its_impact_on_the_open_memberships(pros, monkeypatch):
    """The probes give a whole sample, so the statement is counted beside the open
    memberships (2 of the 20 pros left the plan, 1 free customer joined it)."""
    segment, pro, free = pros
    engine.evaluate(segment_id=segment.pk, now=T0, trigger="manual", clock=lambda: T0)
    Customer.objects.filter(pk__in=[pro[0].pk, pro[1].pk]).update(plan="free")
    Customer.objects.filter(pk=free[0].pk).update(plan="pro")
    segment.refresh_from_db()
    monkeypatch.setattr(preview_module, "_PREVIEW_SQL", "SELECT 1/0 FROM ({matched}) m")  # must not run
    result = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, segment=segment, sample_size=5)
    assert (result.count, result.current_size, result.would_enter, result.would_exit) == (19, 20, 1, 2)
    assert len(result.sample_ids) == 5


def test_preview_probes_spread_over_a_large_id_range(pros, monkeypatch):
    """Fewer probes than ids: they are spread over the id range, and a dense rule's sample
    comes from them alone."""
    _, pro, _ = pros
    monkeypatch.setattr(preview_module, "SAMPLE_PROBES", 7)  # 7 of 25 ids; 6 of them on the pro plan
    monkeypatch.setattr(preview_module, "_PREVIEW_SQL", "SELECT 1/0 FROM ({matched}) m")  # must not run
    result = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, sample_size=5)
    assert result.count == 20 and len(result.sample_ids) == 5 and set(result.sample_ids) <= {c.pk for c in pro}
    assert max(result.sample_ids) - min(result.sample_ids) >= 10  # spread, not the 5 smallest ids


def test_preview_of_a_sparse_rule_takes_the_smallest_keys_of_the_buckets_and_falls_back(pros, monkeypatch):
    """Probes that find less than a sample: one bucketed pass. 20 matches: with 256 buckets
    some share one, so fewer than 20 minima exist and the sample comes from the sorted
    statement; with 2 buckets the same. Either way it is the matches, min(20, count) of
    them, the same on every call."""
    _, pro, free = pros
    ids = {c.pk for c in pro}
    monkeypatch.setattr(preview_module, "SAMPLE_PROBES", 0)
    first = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW)
    assert first.count == 20 and set(first.sample_ids) == ids
    monkeypatch.setattr(preview_module, "SAMPLE_BUCKETS", 2)
    few = preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, sample_size=3)
    assert len(few.sample_ids) == 3 and set(few.sample_ids) <= ids  # two minima < 3: the fallback
    assert preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW, sample_size=3).sample_ids == few.sample_ids
    two = preview(actor=SYSTEM, definition=plan_is("free"), now=NOW, sample_size=2)
    assert set(two.sample_ids) <= {c.pk for c in free} and len(two.sample_ids) == 2
    assert preview(actor=SYSTEM, definition=plan_is("nobody"), now=NOW).sample_ids == []


def test_the_rule_registry_is_the_tenants_custom_traits_events_surveys_and_other_segments(in_tenant):
    from customers.models import EventDefinition, Survey, TraitDefinition
    from segments.selectors.rules import rule_registry

    builtins = set(TraitDefinition.objects.filter(is_builtin=True).values_list("key", flat=True))
    TraitDefinition.objects.create(key="seats", type="number", category="firmographic")
    EventDefinition.objects.create(name="purchase", first_seen_at=T0, last_seen_at=T0)
    Survey.objects.create(key="onboarding", kind="custom", name="Onboarding")
    Segment.objects.create(key="base", name="Base", definition=plan_is("pro"))
    Segment.objects.create(key="vip", name="VIP", references=["base"])

    registry = rule_registry(self_key="vip")

    assert registry.traits == {"seats": "number"} and not builtins & set(registry.traits)
    assert registry.events == {"purchase"}
    assert registry.surveys == dict(Survey.objects.values_list("key", "kind")) and registry.surveys["onboarding"] == "custom"
    assert registry.segments == {"base": set()} and registry.self_key == "vip"
    assert rule_registry().segments == {"base": set(), "vip": {"base"}}


def test_the_registry_seen_by_one_segment_is_the_one_read_for_it(in_tenant):
    from segments.selectors.rules import rule_registry

    Segment.objects.create(key="base", name="Base", definition=plan_is("pro"))
    Segment.objects.create(key="vip", name="VIP", references=["base"])
    assert rule_registry().for_segment("vip") == rule_registry(self_key="vip").read()
    assert rule_registry().for_segment("new") == rule_registry(self_key="new").read()


def test_the_registry_is_read_only_when_the_definition_needs_it(pros):
    """Metrics and built-in traits parse without it; an event condition reads it, once."""
    reads = []

    def count_reads(execute, sql, params, many, context):
        reads.extend(["registry"] if "json_object_agg(key, type)" in sql else [])
        return execute(sql, params, many, context)

    metric = {"version": 1, "match": "all",
              "conditions": [{"type": "metric", "metric": "rfm_segment", "op": "in", "value": ["champions"]}]}
    event = {"version": 1, "match": "any", "conditions": [
        {"type": "event", "event": "purchase", "count": {"op": "gte", "value": 1}},
        {"type": "event", "event": "signup", "count": {"op": "gte", "value": 1}}]}
    with connection.execute_wrapper(count_reads):
        assert preview(actor=SYSTEM, definition=metric, now=NOW).count == 0
        assert preview(actor=SYSTEM, definition=plan_is("pro"), now=NOW).count == 20
        assert reads == []
        warnings = preview(actor=SYSTEM, definition=event, now=NOW).warnings
    assert reads == ["registry"] and {w.code for w in warnings} == {"unknown_event"}


def test_a_registry_is_read_only_in_the_tenant_it_was_made_for(in_tenant, other_tenant):
    from segments.selectors.rules import rule_registry

    registry = rule_registry()
    connection.set_tenant(other_tenant)
    with pytest.raises(RuntimeError, match="registry of schema"):
        registry.events
