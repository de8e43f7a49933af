"""The compiled SQL selects exactly the customers the plain-Python reference selects, for
hypothesis-generated definitions over generated worlds, at a pinned `now`."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from django.db import connection, transaction

from customers.models import Consent, Customer, CustomerMetrics, Event, Survey, SurveyResponse
from segments.models import Membership, Segment
from segments.rules import reference
from segments.rules.compile import compile_rule
from segments.rules.nodes import Registry
from segments.rules.parse import parse
from segments.selectors.facts import customer_facts, segment_keys_at
from tests.segments.rules.strategies import CUSTOM, EVENTS, NOW, World, definitions, worlds

REGISTRY = Registry(traits=dict(CUSTOM), events=set(EVENTS), segments={"s1": set(), "s2": set()})


def depth(node: dict) -> int:
    children = [c for c in node.get("conditions", []) if "type" not in c]
    return 1 + max((depth(c) for c in children), default=0)


def store(world: World) -> list[int]:
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


def selected_by_sql(doc: dict, only: list[int] | None = None) -> set[int]:
    group, _ = parse(doc, REGISTRY)
    refs = dict(Segment.objects.filter(key__in=["s1", "s2"]).values_list("key", "id"))
    sql = compile_rule(group, now=NOW, refs=refs, only=only)
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
    and so does its incremental form for a subset of them; nothing stored is kept."""
    with transaction.atomic():
        ids = store(world)
        for doc in docs:
            expected = selected_by_reference(doc, ids)
            assert selected_by_sql(doc) == expected, doc
            # An incremental evaluation of some customers selects exactly those of them.
            some = ids[::2]
            assert selected_by_sql(doc, only=some) == expected & set(some), doc
        transaction.set_rollback(True)
