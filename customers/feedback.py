"""Recording what customers tell us: consent per channel (with history) and survey answers.

Set-based like the rest of the write path: one statement per batch and table. Callers
resolve customers first (ingest's identities); these functions take customer ids.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from common.errors import Code, CustomerCode
from customers.ingest.message import ItemProblem
from customers.models import Consent, Survey
from customers.touch import Touch, touched

SCALES = {"nps": (0, 10), "csat": (1, 5)}


@dataclass(frozen=True)
class ConsentChangeIn:
    customer_id: int
    channel: str
    granted: bool
    changed_at: datetime
    source: str = ""
    index: int = 0
    path: str = ""


@dataclass(frozen=True)
class SurveyAnswerIn:
    customer_id: int
    survey: str
    score: float | int | None
    responded_at: datetime
    question: str = ""
    comment: str = ""
    message_id: str | None = None
    index: int = 0
    path: str = ""


@transaction.atomic
def consents_record(*, changes: list[ConsentChangeIn]) -> list[ItemProblem]:
    """Append every valid change to the history; move the current state only forward in
    time, so a late-arriving older change never overrides a newer one."""
    problems = [ItemProblem(c.index, f"{c.path}.channel".strip("."), "invalid_choice",
                            f"Channel must be one of {', '.join(Consent.Channel.values)}.")
                for c in changes if c.channel not in Consent.Channel.values]
    valid = [c for c in changes if c.channel in Consent.Channel.values]
    if not valid:
        return problems
    latest: dict[tuple[int, str], ConsentChangeIn] = {}
    for change in valid:
        key = (change.customer_id, change.channel)
        if key not in latest or change.changed_at >= latest[key].changed_at:
            latest[key] = change
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO customers_consentchange (customer_id, channel, granted, changed_at, source, created_at) "
            "VALUES (%s, %s, %s, %s, %s, now())",
            [(c.customer_id, c.channel, c.granted, c.changed_at, c.source[:64]) for c in valid],
        )
        cursor.executemany(
            "INSERT INTO customers_consent (customer_id, channel, granted, changed_at, source) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (customer_id, channel) DO UPDATE SET "
            "granted = EXCLUDED.granted, changed_at = EXCLUDED.changed_at, source = EXCLUDED.source "
            "WHERE customers_consent.changed_at <= EXCLUDED.changed_at",
            [(c.customer_id, c.channel, c.granted, c.changed_at, c.source[:64]) for c in latest.values()],
        )
    channels = defaultdict(set)
    for change in valid:
        channels[change.channel].add(change.customer_id)
    touched(Touch.of(customer_ids=[c.customer_id for c in valid], channels=channels))
    return problems


def _answer_problem(answer: SurveyAnswerIn, surveys: dict[str, Survey]) -> ItemProblem | None:
    def problem(field: str, code: str, message: str) -> ItemProblem:
        return ItemProblem(answer.index, f"{answer.path}.{field}".strip("."), code, message)

    survey = surveys.get(answer.survey)
    if survey is None:
        return problem("survey", Code.UNKNOWN_SURVEY, f"There is no survey “{answer.survey}”.")
    score = answer.score
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        return problem("score", Code.INVALID_TYPE, "The score must be a number.")
    if survey.kind in SCALES:
        low, high = SCALES[survey.kind]
        if score is None or score != int(score) or not low <= score <= high:
            return problem("score", Code.OUT_OF_RANGE, f"{survey.name} scores are whole numbers from {low} to {high}.")
        return None
    questions = {q.get("key"): q for q in survey.questions if isinstance(q, dict)}
    if answer.question not in questions:
        return problem("question", CustomerCode.UNKNOWN_QUESTION, f"{survey.name} has no question “{answer.question}”.")
    spec = questions[answer.question]
    if score is not None and not spec.get("min", float("-inf")) <= score <= spec.get("max", float("inf")):
        return problem("score", Code.OUT_OF_RANGE,
                       f"Scores for this question go from {spec.get('min')} to {spec.get('max')}.")
    options = {o.get("value") for o in spec.get("options") or () if isinstance(o, dict)}
    if score is not None and options and score not in options:
        return problem("score", Code.OUT_OF_RANGE,
                       f"This question's answers are {', '.join(str(v) for v in sorted(options))}.")
    return None


@transaction.atomic
def survey_answers_record(*, answers: list[SurveyAnswerIn]) -> tuple[int, list[ItemProblem]]:
    """Store valid answers (a repeated message_id is stored once); return (stored, problems)."""
    surveys = {s.key: s for s in Survey.objects.filter(key__in={a.survey for a in answers})}
    problems, rows, reached = [], [], defaultdict(set)
    for answer in answers:
        problem = _answer_problem(answer, surveys)
        if problem:
            problems.append(problem)
            continue
        reached[answer.survey].add(answer.customer_id)
        score = None if answer.score is None else Decimal(str(answer.score))
        rows.append((answer.customer_id, surveys[answer.survey].pk, answer.question, score, answer.comment[:5000],
                     answer.responded_at, answer.message_id))
    if not rows:
        return 0, problems
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_surveyresponse (customer_id, survey_id, question, score, comment, responded_at, "
            "message_id, created_at) SELECT *, now() FROM unnest(%s::bigint[], %s::bigint[], %s::text[], "
            "%s::numeric[], %s::text[], %s::timestamptz[], %s::text[]) "
            "ON CONFLICT (message_id) WHERE message_id IS NOT NULL DO NOTHING RETURNING 1",
            [list(column) for column in zip(*rows)],
        )
        stored = len(cursor.fetchall())
    touched(Touch.of(customer_ids=[row[0] for row in rows], surveys=reached))
    return stored, problems
