"""Loads what the reference evaluator and `explain` need about some customers, with one
query per kind of fact (never one per customer)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime

from django.db import connection

from segments.rules.reference import CustomerFacts, EventFact, SurveyFact
from segments.rules.vocabulary import BUILTIN_TRAITS


# TRICKY: Django's psycopg backend hands jsonb to the ORM undecoded (JSONField decodes it),
# so raw queries see text.
def _json(value):
    return json.loads(value) if isinstance(value, str) else value


_COLUMNS = sorted(BUILTIN_TRAITS)
_METRICS = ("recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "rfm_segment", "arpu", "ltv",
            "churn_risk", "predicted_ltv", "cluster", "engagement_score")


def customer_facts(*, customer_ids: list[int], segment_keys_at: dict[int, set[str]] | None = None,
                   now: datetime | None = None) -> dict[int, CustomerFacts]:
    """{customer id: facts}. Events and answers at or after `now` are left out when `now`
    is given (the reference ignores them anyway). `segment_keys_at` gives each customer's
    memberships, which the caller resolves for the evaluation's `now`."""
    ids = list(customer_ids)
    facts: dict[int, CustomerFacts] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, traits, {', '.join(_COLUMNS)} FROM customers_customer WHERE id = ANY(%s)", [ids])
        for row in cursor.fetchall():
            facts[row[0]] = CustomerFacts(id=row[0], traits=_json(row[1]) or {}, builtin=dict(zip(_COLUMNS, row[2:])))
        events = defaultdict(list)
        cursor.execute(
            "SELECT customer_id, id, name, timestamp, properties FROM customers_event WHERE customer_id = ANY(%s)"
            + (" AND timestamp < %s" if now else "") + " ORDER BY customer_id, timestamp, id",
            [ids, now] if now else [ids])
        for customer_id, event_id, name, ts, props in cursor.fetchall():
            events[customer_id].append(EventFact(name=name, timestamp=ts, properties=_json(props) or {}, id=event_id))
        cursor.execute(
            "SELECT r.customer_id, r.id, s.key, r.question, r.score, r.responded_at FROM customers_surveyresponse r "
            "JOIN customers_survey s ON s.id = r.survey_id WHERE r.customer_id = ANY(%s)", [ids])
        surveys = defaultdict(list)
        for customer_id, response_id, key, question, score, at in cursor.fetchall():
            surveys[customer_id].append(SurveyFact(survey=key, score=score, responded_at=at, question=question,
                                                   id=response_id))
        cursor.execute("SELECT customer_id, channel, granted FROM customers_consent WHERE customer_id = ANY(%s)", [ids])
        consents = defaultdict(dict)
        for customer_id, channel, granted in cursor.fetchall():
            consents[customer_id][channel] = granted
        cursor.execute(f"SELECT customer_id, {', '.join(_METRICS)} FROM customers_customermetrics "
                       "WHERE customer_id = ANY(%s)", [ids])
        metrics = {row[0]: dict(zip(_METRICS, row[1:])) for row in cursor.fetchall()}
    for customer_id, fact in facts.items():
        fact.events = events.get(customer_id, [])
        fact.surveys = surveys.get(customer_id, [])
        fact.consents = consents.get(customer_id, {})
        fact.metrics = metrics.get(customer_id)
        fact.segments = (segment_keys_at or {}).get(customer_id, set())
    return facts


def segment_keys_at(*, customer_ids: list[int], now: datetime) -> dict[int, set[str]]:
    """{customer id: keys of the segments they were in at `now`} (one query)."""
    found: dict[int, set[str]] = defaultdict(set)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.customer_id, s.key FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id "
            "WHERE m.customer_id = ANY(%s) AND m.entered_at <= %s AND (m.exited_at IS NULL OR m.exited_at > %s)",
            [list(customer_ids), now, now])
        for customer_id, key in cursor.fetchall():
            found[customer_id].add(key)
    return dict(found)
