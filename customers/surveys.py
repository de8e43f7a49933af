"""Custom survey definitions: a key, a name and questions, each a scale (whole numbers from
min to max) or a choice (options, each a whole-number value with a label — a welcome
survey's "role"). Answers arrive through the feedback API and CSV import and are checked
against these (customers.feedback); rules read them as `survey` conditions by key and
question; reports show them per segment.

NPS and CSAT are built in and not edited here. A question that has answers cannot be
removed, nor its range or options narrowed below an answer already stored: the answers
would lose their meaning.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Max, Min

from audit.services import audit_record
from common.actors import Actor
from common.errors import Code, DomainError, Problem
from common.jsonvalues import value_problem
from customers.models import Survey, SurveyResponse
from tenants.permissions import ensure_permitted

KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
BUILT_IN = ("nps", "csat")
RESERVED = (*BUILT_IN, "responses")  # /api/v1/surveys/responses/ lists the answers
MAX_QUESTIONS = 30
MAX_OPTIONS = 30
MAX_SCALE_SPAN = 100
TYPES = ("scale", "choice")


def survey_create(*, actor: Actor, key: Any, name: Any, questions: Any) -> Survey:
    ensure_permitted(actor, "settings.modify")
    problems = _key_problems(key) + _name_problems(name)
    cleaned, more = clean_questions(questions)
    problems += more
    if problems:
        raise DomainError(problems=problems)
    with transaction.atomic():
        survey = Survey.objects.create(key=key, kind=Survey.Kind.CUSTOM, name=name.strip(), questions=cleaned)
        audit_record(actor=actor, action="survey.created", target=survey, target_label=survey.key,
                     changes={"questions": [q["key"] for q in cleaned]})
    return survey


def survey_update(*, actor: Actor, survey: Survey, name: Any = None, questions: Any = None) -> Survey:
    """A new name and/or question list (the whole list: questions not in it are removed)."""
    ensure_permitted(actor, "settings.modify")
    if survey.kind != Survey.Kind.CUSTOM:
        raise DomainError.single(path="key", code=Code.RESERVED, message=f"{survey.name} is built in.")
    problems = [] if name is None else _name_problems(name)
    cleaned = survey.questions
    if questions is not None:
        cleaned, more = clean_questions(questions)
        problems += more or _answered_problems(survey, cleaned)
    if problems:
        raise DomainError(problems=problems)
    before = {"name": survey.name, "questions": [q["key"] for q in survey.questions]}
    with transaction.atomic():
        survey.name = survey.name if name is None else name.strip()
        survey.questions = cleaned
        survey.save(update_fields=["name", "questions", "updated_at"])
        audit_record(actor=actor, action="survey.updated", target=survey, target_label=survey.key,
                     changes={"before": before, "after": {"name": survey.name,
                                                          "questions": [q["key"] for q in cleaned]}})
    return survey


def _key_problems(key: Any) -> list[Problem]:
    if not isinstance(key, str) or not KEY.match(key):
        return [Problem("key", Code.INVALID_VALUE, "Keys start with a lower-case letter and use a-z, 0-9, - and _ "
                                                   "(≤ 64).")]
    if key in RESERVED:
        return [Problem("key", Code.RESERVED, f"“{key}” is reserved.")]
    if Survey.objects.filter(key=key).exists():
        return [Problem("key", Code.DUPLICATE, f"A survey “{key}” exists.")]
    return []


def _name_problems(name: Any) -> list[Problem]:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return [Problem("name", Code.REQUIRED, "Name the survey (≤ 200 characters).")]
    if hostile := value_problem(name):
        return [Problem("name", hostile.code, hostile.message)]
    return []


def clean_questions(questions: Any) -> tuple[list[dict], list[Problem]]:
    """The questions as stored ({key, text, type, min, max[, options]}; a choice's min and
    max are its lowest and highest values), and every problem with its path."""
    if hostile := value_problem(questions, "questions"):
        return [], [hostile]
    if not isinstance(questions, list) or not questions:
        return [], [Problem("questions", Code.REQUIRED, "At least one question (a list).")]
    if len(questions) > MAX_QUESTIONS:
        return [], [Problem("questions", Code.TOO_MANY, f"At most {MAX_QUESTIONS} questions.")]
    cleaned, problems, seen = [], [], set()
    for index, question in enumerate(questions):
        path = f"questions[{index}]"
        item, more = _question(question, path)
        if item is not None and item["key"] in seen:
            more.append(Problem(f"{path}.key", Code.DUPLICATE, f"Two questions are keyed “{item['key']}”."))
        problems += more
        if item is not None:
            seen.add(item["key"])
            cleaned.append(item)
    return cleaned, problems


def _question(question: Any, path: str) -> tuple[dict | None, list[Problem]]:
    if not isinstance(question, dict):
        return None, [Problem(path, Code.INVALID_TYPE, "A question is an object.")]
    problems = [Problem(f"{path}.{field}", Code.UNKNOWN_FIELD, f"“{field}” is not a field of a question.")
                for field in sorted(set(question) - {"key", "text", "type", "min", "max", "options"}, key=str)]
    key, text, type_ = question.get("key"), question.get("text"), question.get("type", "scale")
    if not isinstance(key, str) or not KEY.match(key):
        problems.append(Problem(f"{path}.key", Code.INVALID_VALUE, "A question's key: a-z, 0-9, - and _ (≤ 64)."))
    if not isinstance(text, str) or not text.strip() or len(text) > 300:
        problems.append(Problem(f"{path}.text", Code.REQUIRED, "The question as asked (≤ 300 characters)."))
    if type_ not in TYPES:
        problems.append(Problem(f"{path}.type", Code.INVALID_CHOICE, "A question is a “scale” or a “choice”."))
        return None, problems
    shape, more = (_scale if type_ == "scale" else _choice)(question, path)
    problems += more
    if problems:
        return None, problems
    return {"key": key, "text": text.strip(), "type": type_, **shape}, []


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scale(question: dict, path: str) -> tuple[dict, list[Problem]]:
    low, high = question.get("min"), question.get("max")
    if not _whole(low) or not _whole(high):
        return {}, [Problem(f"{path}.min", Code.INVALID_TYPE, "A scale has whole-number `min` and `max`.")]
    if not low < high or high - low > MAX_SCALE_SPAN:
        return {}, [Problem(f"{path}.max", Code.INVALID_RANGE,
                            f"`max` is above `min`, at most {MAX_SCALE_SPAN} apart.")]
    return {"min": low, "max": high}, []


def _choice(question: dict, path: str) -> tuple[dict, list[Problem]]:
    options = question.get("options")
    opath = f"{path}.options"
    if not isinstance(options, list) or not 2 <= len(options) <= MAX_OPTIONS:
        return {}, [Problem(opath, Code.INVALID_VALUE, f"A choice has 2 to {MAX_OPTIONS} options.")]
    problems, values, labels = [], set(), set()
    for i, option in enumerate(options):
        value = option.get("value") if isinstance(option, dict) else None
        label = option.get("label") if isinstance(option, dict) else None
        if not _whole(value) or value in values:
            problems.append(Problem(f"{opath}[{i}].value", Code.INVALID_VALUE, "Each option has its own whole number."))
        if not isinstance(label, str) or not label.strip() or len(label) > 100 or label.strip() in labels:
            problems.append(Problem(f"{opath}[{i}].label", Code.INVALID_VALUE, "Each option has its own label "
                                                                             "(≤ 100 characters)."))
        values.add(value)
        labels.add(label.strip() if isinstance(label, str) else label)
    if problems:
        return {}, problems
    cleaned = [{"value": o["value"], "label": o["label"].strip()} for o in options]
    return {"min": min(values), "max": max(values), "options": cleaned}, []


def _answered_problems(survey: Survey, questions: list[dict]) -> list[Problem]:
    """Answers already stored must keep their question and fit its new range or options."""
    stored = {row["question"]: row for row in SurveyResponse.objects.filter(survey=survey, score__isnull=False)
              .values("question").annotate(low=Min("score"), high=Max("score"))}
    answered = set(SurveyResponse.objects.filter(survey=survey).values_list("question", flat=True).distinct())
    kept = {q["key"]: (i, q) for i, q in enumerate(questions)}
    problems = [Problem("questions", Code.CONFLICT, f"“{key}” has answers: it cannot be removed.")
                for key in sorted(answered - set(kept))]
    for key, (index, question) in kept.items():
        if key not in stored:
            continue
        low, high = stored[key]["low"], stored[key]["high"]
        if low < question["min"] or high > question["max"]:
            problems.append(Problem(f"questions[{index}]", Code.CONFLICT,
                                    f"Answers from {low:g} to {high:g} are stored: the range must keep them."))
        elif question["type"] == "choice":
            values = {o["value"] for o in question["options"]}
            used = set(SurveyResponse.objects.filter(survey=survey, question=key, score__isnull=False)
                       .values_list("score", flat=True).distinct())
            missing = sorted(v for v in used if v not in values)
            if missing:
                problems.append(Problem(f"questions[{index}].options", Code.CONFLICT,
                                        f"Answers {', '.join(f'{v:g}' for v in missing)} are stored: keep their "
                                        f"options."))
    return problems
