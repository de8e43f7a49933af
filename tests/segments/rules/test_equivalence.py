"""The compiled SQL selects exactly the customers the plain-Python reference selects, for
hypothesis-generated definitions over generated worlds, at a pinned `now`."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from django.db import connection, transaction

from customers.models import (Consent, Customer, CustomerMetrics, Event, RollupEvent, RollupProperty, Survey,
                              SurveyResponse)
from segments.models import Membership, Segment
from segments.rules import reference
from segments.rules.compile import compile_rule
from segments.rules.nodes import Registry, Rollups
from segments.rules.parse import parse
from segments.selectors.facts import customer_facts, segment_keys_at
from tests.segments.rules.strategies import CUSTOM, EVENTS, NOW, World, definitions, measure, window, worlds

REGISTRY = Registry(traits=dict(CUSTOM), events=set(EVENTS), segments={"s1": set(), "s2": set()})
# Every event's day rows and lifetimes and `amount` (the only property the strategies aggregate) rolled
# up: with these the compiled statements read whole days from the rollups wherever they can.
ROLLED = Rollups(values=frozenset((event, "amount") for event in EVENTS), days=frozenset(EVENTS),
                 lifetimes=frozenset(EVENTS))

# The day rows alone: what conditions without a window start read where lifetimes are not there.
DAYS_ONLY = Rollups(values=ROLLED.values, days=ROLLED.days)


def depth(node: dict) -> int:
    children = [c for c in node.get("conditions", []) if "type" not in c]
    return 1 + max((depth(c) for c in children), default=0)


def roll_up_everything() -> None:
    RollupProperty.objects.bulk_create([RollupProperty(event=event, property=prop, requested_at=NOW, ready_at=NOW)
                                        for event, prop in ROLLED.values])
    RollupEvent.objects.bulk_create([RollupEvent(name=name, requested_at=NOW, ready_at=NOW, days_per_event=0.1)
                                     for name in ROLLED.days])


def store(world: World) -> list[int]:
    roll_up_everything()
    surveys = {s.key: s for s in Survey.objects.all()}
    segments = {key: Segment.objects.create(key=key, name=key, kind="static") for key in ("s1", "s2")}
    ids = []
    for spec in world.customers:
        customer = Customer.objects.create(**{k: v for k, v in spec.items()
                                              if k not in ("events", "surveys", "consents", "metrics", "memberships")})
        # Memberships of the referenced segments, some open, some closed, around `now`; at most
        # one open membership per segment (as the engine guarantees).
        open_in = set()
        for key, entered, exited in spec["memberships"]:
            if exited is None and key in open_in:
                continue
            open_in |= {key} if exited is None else set()
            Membership.objects.create(segment=segments[key], customer=customer, entered_at=entered, exited_at=exited)
        ids.append(customer.pk)
        Event.objects.bulk_create([Event(customer=customer, name=name, timestamp=ts, properties=props)
                                   for name, ts, props in spec["events"]])
        SurveyResponse.objects.bulk_create([
            SurveyResponse(customer=customer, survey=surveys[key], question=question, score=score, responded_at=ts)
            for key, question, score, ts in spec["surveys"]])
        Consent.objects.bulk_create([Consent(customer=customer, channel=channel, granted=granted, changed_at=NOW)
                                     for channel, granted in spec["consents"].items()])
        if spec["metrics"] is not None:
            CustomerMetrics.objects.create(customer=customer, computed_at=NOW, **spec["metrics"])
    return ids


def selected_by_sql(doc: dict, only: list[int] | None = None, rollups: Rollups | None = None) -> set[int]:
    group, _ = parse(doc, REGISTRY)
    refs = dict(Segment.objects.filter(key__in=["s1", "s2"]).values_list("key", "id"))
    sql = compile_rule(group, now=NOW, refs=refs, only=only, rollups=rollups)
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        return {row[0] for row in cursor.fetchall()}


def selected_by_reference(doc: dict, ids: list[int]) -> set[int]:
    group, _ = parse(doc, REGISTRY)
    facts = customer_facts(customer_ids=ids, segment_keys_at=segment_keys_at(customer_ids=ids, now=NOW))
    return {cid for cid, fact in facts.items() if reference.evaluate(group, fact, now=NOW)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(), docs=st.lists(definitions(), min_size=6, max_size=6))
def test_compiled_sql_equals_the_reference(in_tenant, world, docs):
    """60 worlds × 6 definitions = 360 cases per run, every condition type (segment
    references included), negation and nesting; each definition must select the same
    customers both ways, and so must its incremental form for a subset of customers."""
    for doc in docs:
        assume(depth(doc) <= 5)
    assert_sql_equals_reference(world, docs)


def assert_sql_equals_reference(world, docs) -> None:
    """Each definition selects the same customers of `world` compiled as by the reference,
    with the rollups (and with the day rows but no lifetimes) and without, and so does its incremental form for a subset of
    them; nothing stored is kept."""
    with transaction.atomic():
        ids = store(world)
        some = ids[::2]
        for doc in docs:
            expected = selected_by_reference(doc, ids)
            for rollups in (None, ROLLED, DAYS_ONLY):
                assert selected_by_sql(doc, rollups=rollups) == expected, (doc, rollups)
                # An incremental evaluation of some customers selects exactly those of them.
                assert selected_by_sql(doc, only=some, rollups=rollups) == expected & set(some), (doc, rollups)
        transaction.set_rollback(True)


@st.composite
def rolled_up_definitions(draw) -> dict:
    """Event conditions the rollups can answer (no property filter, no time of week, a named
    event, any measure but a share), windowed or not, negated or not."""
    spec = draw(measure().filter(lambda m: "share" not in m))
    node = {"type": "event", "event": draw(st.sampled_from(EVENTS)), **spec}
    if draw(st.booleans()):
        node["window"] = draw(window())
    if draw(st.booleans()):
        node["negate"] = True
    return {"version": 1, "match": draw(st.sampled_from(["all", "any"])), "conditions": [node]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(), docs=st.lists(rolled_up_definitions(), min_size=6, max_size=6))
def test_rolled_up_event_conditions_equal_the_reference(in_tenant, world, docs):
    """The conditions the rollups answer, at day edges (events at midnight, a microsecond
    before it, at `now` and after it): whole days from the rollups plus the edges from the
    events select what the reference selects."""
    assert_sql_equals_reference(world, docs)


def test_a_windowed_count_reads_whole_days_from_the_rollups_and_the_edges_from_events():
    doc = {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "login", "count": {"op": "gte", "value": 3}, "window": {"last": "30d"}}]}
    group, _ = parse(doc, REGISTRY)
    rolled = compile_rule(group, now=NOW, rollups=ROLLED).text
    assert "customers_eventday r" in rolled and rolled.count("FROM customers_event e") == 2  # both edge days
    assert "customers_eventday" not in compile_rule(group, now=NOW).text
    at_midnight = compile_rule(group, now=NOW.replace(hour=0), rollups=ROLLED).text
    assert at_midnight.count("FROM customers_event e") == 0  # 30 whole days: no edge to read


def test_rolled_up_aggregates_over_several_days_equal_the_reference(in_tenant):
    """Aggregates whose values spread over whole days and both edge days (the hypothesis
    worlds rarely give one customer several numeric amounts): each fn and threshold selects
    the same customers with the rollups (lifetime totals without a window start), without
    them and by the reference, over everyone and incrementally."""
    from datetime import timedelta

    roll_up_everything()
    # Days before NOW; "f" and "g" have a purchase an hour after it (not counted yet): their
    # lifetime totals cannot answer, their daily values can.
    amounts = {"a": [(40, 5), (10, 1), (0.5, 10)], "b": [(29.9, 2), (3, 7), (3, 7.5)], "c": [(0.1, -1)],
               "d": [(31, 100)], "e": [(2, "7"), (2.1, 7)], "f": [(-1 / 24, 50), (3, 6)], "g": [(-1 / 24, 1)], "h": []}
    ids = []
    for key, spec in amounts.items():
        customer = Customer.objects.create(external_id=key)
        ids.append(customer.pk)
        Event.objects.bulk_create([Event(customer=customer, name="purchase", timestamp=NOW - timedelta(days=days),
                                         properties={"amount": amount}) for days, amount in spec])
    for fn in ("sum", "avg", "min", "max"):
        for op, value in (("gte", 5), ("lt", 2), ("eq", 7), ("between", [1, 7.25])):
            for window in (None, {"last": "30d"}, {"from": "2026-05-20T06:00:00Z"}, {"to": "2026-06-12"}):
                node = {"type": "event", "event": "purchase",
                        "aggregate": {"fn": fn, "property": "amount", "op": op, "value": value}}
                if window:
                    node["window"] = window
                doc = {"version": 1, "match": "all", "conditions": [node]}
                expected = selected_by_reference(doc, ids)
                assert selected_by_sql(doc, rollups=ROLLED) == selected_by_sql(doc) == expected, doc
                assert selected_by_sql(doc, only=ids[::2], rollups=ROLLED) == expected & set(ids[::2]), doc
                negated = {**doc, "conditions": [{**node, "negate": True}]}  # "h" without values passes
                assert selected_by_sql(negated, rollups=ROLLED) == selected_by_reference(negated, ids), negated


def test_lifetimes_answer_counts_and_first_and_last_times_without_a_window_start(in_tenant):
    """Counts, "did it" / "never", first and last times before the window's end from the
    lifetime rows, with customers whose events run past the end (stamped after `now`, or
    after a `to` date) grouped from their events (windows with a start, beside them, read
    the events): the same customers as without rollups and by the reference, over everyone,
    incrementally and negated."""
    from datetime import timedelta

    roll_up_everything()
    # "h" has an event at `now`, "i" and "j" one at the `to` windows' ends: none of them counts.
    days_ago = {"a": [40, 10, 0.5], "b": [3], "c": [-1 / 24, 3], "d": [-2], "e": [], "f": [20, 20, 19, -0.1],
                "g": [0], "h": [1, 0], "i": [12, 9.5], "j": [20, 4.5], "k": [10, -0.5]}
    ids = []
    for key, spec in days_ago.items():
        customer = Customer.objects.create(external_id=key)
        ids.append(customer.pk)
        Event.objects.bulk_create([Event(customer=customer, name="login", timestamp=NOW - timedelta(days=days))
                                   for days in spec])
    measures = [{"count": {"op": op, "value": value}} for op, value in
                (("gte", 1), ("eq", 0), ("gte", 2), ("lt", 3), ("between", [1, 3]), ("eq", 1))]
    measures += [{kind: {"op": op, "value": value}} for kind in ("first_occurred", "last_occurred")
                 for op, value in (("before", "2026-06-01"), ("within_last", "7d"), ("after", "2026-06-10"))]
    for measure in measures:
        for window in (None, {"to": "2026-06-05"}, {"last": "7d"}, {"from": "2026-06-05T00:00:00Z", "to": "2026-06-10"}):
            node = {"type": "event", "event": "login", **measure, **({"window": window} if window else {})}
            doc = {"version": 1, "match": "all", "conditions": [node, {"type": "trait", "field": "email",
                                                                       "op": "is_not_set"}]}
            lone = {**doc, "conditions": [node]}
            for each in (doc, lone, {**lone, "conditions": [{**node, "negate": True}]}):
                expected = selected_by_reference(each, ids)
                assert selected_by_sql(each, rollups=ROLLED) == selected_by_sql(each) == expected, each
                assert selected_by_sql(each, only=ids[::2], rollups=ROLLED) == expected & set(ids[::2]), each
                assert selected_by_sql(each, only=ids, rollups=ROLLED) == expected, each
            if window is None or "last" not in window and "from" not in window:  # no window start
                sql = compile_rule(parse(lone, REGISTRY)[0], now=NOW, rollups=ROLLED).text
                assert "customers_eventlifetime" in sql, (measure, window)


def test_without_paying_day_rollups_counts_read_events_and_aggregates_still_roll_up():
    from dataclasses import replace

    no_days = replace(ROLLED, days=frozenset())
    count = {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "login", "count": {"op": "gte", "value": 3}, "window": {"last": "30d"}}]}
    total = {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "purchase", "aggregate": {"fn": "sum", "property": "amount", "op": "gte", "value": 3}}]}
    assert "customers_eventday" not in compile_rule(parse(count, REGISTRY)[0], now=NOW, rollups=no_days).text
    lifetime = compile_rule(parse(total, REGISTRY)[0], now=NOW, rollups=no_days).text
    assert "customers_eventtotal" in lifetime and "customers_eventdayvalue" in lifetime  # late customers: days
    total["conditions"][0]["window"] = {"last": "30d"}
    windowed = compile_rule(parse(total, REGISTRY)[0], now=NOW, rollups=no_days).text
    assert "customers_eventtotal" not in windowed and "customers_eventdayvalue" in windowed
    # Scoped to some customers (incremental, the estimate), counts probe the events.
    assert "customers_eventday" not in compile_rule(parse(count, REGISTRY)[0], now=NOW, rollups=ROLLED, only=[1]).text


def test_saved_rules_ask_for_day_rows_of_the_events_they_count_in_groups_only():
    from segments.rules.shapes import counted_events

    doc = {"version": 1, "match": "all", "conditions": [
        {"type": "event", "event": "login", "count": {"op": "gte", "value": 3}, "window": {"last": "30d"}},
        {"type": "event", "event": "purchase", "count": {"op": "gte", "value": 1}},  # EXISTS: no rollup
        {"type": "event", "event": "feature_x_used", "count": {"op": "gte", "value": 2},
         "where": [{"property": "plan", "op": "eq", "value": "pro"}]},  # a property filter: events only
        {"type": "event", "event": "*", "count": {"op": "gte", "value": 5}}]}  # any event: events only
    assert counted_events(parse(doc, REGISTRY)[0], NOW) == {"login"}
