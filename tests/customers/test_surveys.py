"""Custom survey definitions: scale and choice questions checked with paths, answers held
to them, questions with answers kept, the API and its permissions."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.db import connection

from audit.models import AuditEvent
from common.errors import DomainError, Forbidden
from customers.feedback import SurveyAnswerIn, survey_answers_record
from customers.models import Customer, Survey
from customers.surveys import survey_create, survey_update
from tests.conftest import make_member, session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
ROLE = {"key": "role", "text": "What is your role?", "type": "choice",
        "options": [{"value": 1, "label": "Developer"}, {"value": 2, "label": "Designer"},
                    {"value": 3, "label": "Manager"}]}
EASE = {"key": "ease", "text": "How easy was setup?", "type": "scale", "min": 1, "max": 7}


@pytest.fixture
def admin(in_tenant, tenant):
    return make_member(tenant, "survey-admin@alpha.test", "admin").memberships.get(tenant=tenant)


def test_a_welcome_survey_with_a_choice_and_a_scale(admin):
    survey = survey_create(actor=admin, key="welcome", name=" Welcome ", questions=[ROLE, EASE])
    assert (survey.kind, survey.name) == ("custom", "Welcome")
    assert survey.questions[0] == {**ROLE, "min": 1, "max": 3} and survey.questions[1] == EASE
    assert AuditEvent.objects.filter(action="survey.created", target_id=str(survey.pk)).exists()
    c = Customer.objects.create(external_id="c")
    stored, problems = survey_answers_record(answers=[
        SurveyAnswerIn(c.pk, "welcome", 2, NOW, question="role", index=0, path="r[0]"),
        SurveyAnswerIn(c.pk, "welcome", 2.5, NOW, question="role", index=1, path="r[1]"),
        SurveyAnswerIn(c.pk, "welcome", 8, NOW, question="ease", index=2, path="r[2]")])
    assert stored == 1 and [(p.path, p.code) for p in problems] == [("r[1].score", "out_of_range"),
                                                                    ("r[2].score", "out_of_range")]


@pytest.mark.parametrize("key, questions, path, code", [
    ("nps", [EASE], "key", "reserved"),
    ("responses", [EASE], "key", "reserved"),
    ("Bad Key", [EASE], "key", "invalid_value"),
    ("ok", [], "questions", "required"),
    ("ok", "ease", "questions", "required"),
    ("ok", [EASE, EASE], "questions[1].key", "duplicate"),
    ("ok", [{**EASE, "min": 5, "max": 5}], "questions[0].max", "invalid_range"),
    ("ok", [{**EASE, "min": 0, "max": 500}], "questions[0].max", "invalid_range"),
    ("ok", [{**EASE, "min": 1.5}], "questions[0].min", "invalid_type"),
    ("ok", [{**EASE, "type": "free"}], "questions[0].type", "invalid_choice"),
    ("ok", [{**EASE, "colour": 1}], "questions[0].colour", "unknown_field"),
    ("ok", [{**EASE, "text": ""}], "questions[0].text", "required"),
    ("ok", [{**ROLE, "options": [{"value": 1, "label": "A"}]}], "questions[0].options", "invalid_value"),
    ("ok", [{**ROLE, "options": [{"value": 1, "label": "A"}, {"value": 1, "label": "B"}]}],
     "questions[0].options[1].value", "invalid_value"),
    ("ok", [{**ROLE, "options": [{"value": 1, "label": "A"}, {"value": 2, "label": "A"}]}],
     "questions[0].options[1].label", "invalid_value"),
    ("ok", [{**EASE, "text": "a\x00"}], "questions[0].text", "null_characters_not_allowed"),
])
def test_bad_definitions_are_coded_at_their_path(admin, key, questions, path, code):
    with pytest.raises(DomainError) as raised:
        survey_create(actor=admin, key=key, name="Survey", questions=questions)
    assert (path, code) in [(p.path, p.code) for p in raised.value.problems]
    assert not Survey.objects.filter(kind="custom").exists()


def test_questions_with_answers_are_kept_and_their_answers_still_fit(admin):
    survey = survey_create(actor=admin, key="welcome", name="Welcome", questions=[ROLE, EASE])
    c = Customer.objects.create(external_id="c")
    survey_answers_record(answers=[SurveyAnswerIn(c.pk, "welcome", 3, NOW, question="role"),
                                   SurveyAnswerIn(c.pk, "welcome", 6, NOW, question="ease")])
    for questions, path in (([ROLE], "questions"), ([ROLE, {**EASE, "max": 5}], "questions[1]"),
                            ([{**ROLE, "options": ROLE["options"][:2] + [{"value": 4, "label": "Other"}]}, EASE],
                             "questions[0]")):
        with pytest.raises(DomainError) as raised:
            survey_update(actor=admin, survey=survey, questions=questions)
        assert raised.value.problems[0].code == "conflict" and raised.value.problems[0].path.startswith(path)
    wider = survey_update(actor=admin, survey=survey, name="Welcome v2", questions=[ROLE, {**EASE, "max": 10},
                                                                                     {**EASE, "key": "speed"}])
    assert wider.name == "Welcome v2" and [q["key"] for q in wider.questions] == ["role", "ease", "speed"]
    with pytest.raises(DomainError) as raised:
        survey_update(actor=admin, survey=Survey.objects.get(key="nps"), name="Mine")
    assert raised.value.problems[0].code == "reserved"


def test_only_settings_modify_defines_surveys(admin, tenant):
    marketer = make_member(tenant, "survey-marketer@alpha.test", "marketer").memberships.get(tenant=tenant)
    with pytest.raises(Forbidden):
        survey_create(actor=marketer, key="welcome", name="Welcome", questions=[EASE])


def test_the_api_defines_reads_and_changes_surveys(admin, tenant, other_tenant):
    connection.set_schema_to_public()
    client = session(tenant, "admin")
    created = client.post("/api/v1/surveys/", {"key": "welcome", "name": "Welcome", "questions": [ROLE]},
                          content_type="application/json")
    assert created.status_code == 201 and created.json()["questions"][0]["type"] == "choice"
    listed = session(tenant, "viewer").get("/api/v1/surveys/").json()["results"]
    assert [s["key"] for s in listed] == ["csat", "nps", "welcome"]
    changed = client.patch("/api/v1/surveys/welcome/", {"questions": [ROLE, EASE]}, content_type="application/json")
    assert changed.status_code == 200 and len(changed.json()["questions"]) == 2
    bad = client.post("/api/v1/surveys/", {"key": "x", "name": "X", "questions": [{"key": "q"}], "extra": 1},
                      content_type="application/json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "extra"
    assert session(tenant, "marketer").patch("/api/v1/surveys/welcome/", {"name": "Mine"},
                                             content_type="application/json").status_code == 403
    assert session(other_tenant, "admin").get("/api/v1/surveys/welcome/").status_code == 404
    assert client.get("/api/v1/surveys/responses/").status_code == 200  # the answers' list, not a survey


def test_the_settings_page_creates_and_edits_a_survey(admin, tenant):
    import json

    connection.set_schema_to_public()
    client = session(tenant, "admin")
    page = client.get("/settings/surveys/")
    assert page.status_code == 200 and b'data-testid="survey-list"' in page.content
    made = client.post("/settings/surveys/", {"key": "welcome", "name": "Welcome", "questions": json.dumps([ROLE])})
    assert made.status_code == 302 and made["Location"].endswith("/settings/surveys/welcome/")
    bad = client.post("/settings/surveys/welcome/", {"name": "Welcome", "questions": json.dumps([{**EASE, "max": 0}])})
    assert bad.status_code == 400 and b'data-code="invalid_range"' in bad.content
    assert client.post("/settings/surveys/welcome/", {"name": "Welcome", "questions": "not json"}).status_code == 400
    saved = client.post("/settings/surveys/welcome/", {"name": "Welcome!", "questions": json.dumps([ROLE, EASE])})
    assert saved.status_code == 302
    connection.set_tenant(tenant)
    assert [q["key"] for q in Survey.objects.get(key="welcome").questions] == ["role", "ease"]
