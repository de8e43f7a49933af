"""Settings → Surveys: NPS and CSAT (built in) and the workspace's custom surveys, each
with its questions — a scale or a choice — defined and edited here (the editor sends the
question list as JSON, checked by customers.surveys with a path per problem)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from common.errors import DomainError
from common.pages import refuse_forbidden, requires
from customers.models import Survey
from customers.surveys import survey_create, survey_update

BLANK_QUESTION = {"key": "", "text": "", "type": "scale", "min": 1, "max": 5, "options": []}


def _questions(request) -> object:
    text = request.POST.get("questions") or "[]"
    try:
        return json.loads(text)
    except ValueError:
        return text  # not a list: the service reports it at `questions`


def _form(request, survey: Survey | None, *, problems=(), key="", name="", questions=None, status=200):
    shown = questions if isinstance(questions, list) else (survey.questions if survey else [BLANK_QUESTION])
    surveys = sorted(Survey.objects.annotate(answers=Count("responses")), key=lambda s: (s.kind == "custom", s.key))
    return render(request, "settings/surveys.html", {
        "section": "surveys", "surveys": surveys, "survey": survey, "problems": list(problems),
        "key": key, "name": name or (survey.name if survey else ""),
        "questions_state": [{**BLANK_QUESTION, **q} for q in shown]}, status=status)


@require_http_methods(["GET", "POST"])
@requires("settings.modify")
def settings_surveys(request):
    if request.method == "GET":
        return _form(request, None)
    key, name, questions = request.POST.get("key", "").strip(), request.POST.get("name", ""), _questions(request)
    try:
        survey = survey_create(actor=request.membership, key=key, name=name, questions=questions)
    except DomainError as error:
        refuse_forbidden(error)
        return _form(request, None, problems=error.problems, key=key, name=name, questions=questions, status=400)
    messages.success(request, f"Survey “{survey.name}” created.")
    return redirect("settings_survey_edit", key=survey.key)


@require_http_methods(["GET", "POST"])
@requires("settings.modify")
def settings_survey_edit(request, key: str):
    survey = Survey.objects.filter(key=key, kind=Survey.Kind.CUSTOM).first()
    if survey is None:
        raise Http404("No such custom survey")
    if request.method == "GET":
        return _form(request, survey)
    name, questions = request.POST.get("name", ""), _questions(request)
    try:
        survey_update(actor=request.membership, survey=survey, name=name, questions=questions)
    except DomainError as error:
        refuse_forbidden(error)
        survey.refresh_from_db()
        return _form(request, survey, problems=error.problems, name=name, questions=questions, status=400)
    messages.success(request, f"Survey “{survey.name}” saved.")
    return redirect("settings_survey_edit", key=survey.key)
