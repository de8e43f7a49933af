"""Consent (current state + history) and survey answers."""

from datetime import datetime, timedelta, timezone

from customers.feedback import ConsentChangeIn, SurveyAnswerIn, consents_record, survey_answers_record
from customers.models import Consent, ConsentChange, Customer, Survey, SurveyResponse

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def customer(external_id="c1") -> Customer:
    return Customer.objects.create(external_id=external_id)


def test_consent_keeps_history_and_only_moves_forward(in_tenant):
    c = customer()
    consents_record(changes=[ConsentChangeIn(c.pk, "email", True, NOW - timedelta(days=2), "signup")])
    consents_record(changes=[ConsentChangeIn(c.pk, "email", False, NOW, "preferences"),
                             ConsentChangeIn(c.pk, "email", True, NOW - timedelta(days=1), "late sync")])
    current = Consent.objects.get(customer=c, channel="email")
    assert (current.granted, current.source) == (False, "preferences")  # the newest change wins
    assert ConsentChange.objects.filter(customer=c).count() == 3


def test_unknown_channels_are_reported_and_the_rest_kept(in_tenant):
    c = customer()
    problems = consents_record(changes=[ConsentChangeIn(c.pk, "fax", True, NOW, index=0, path="consents[0]"),
                                        ConsentChangeIn(c.pk, "sms", True, NOW, index=1, path="consents[1]")])
    assert [(p.path, p.code) for p in problems] == [("consents[0].channel", "invalid_choice")]
    assert list(Consent.objects.values_list("channel", flat=True)) == ["sms"]


def test_nps_and_csat_exist_and_their_scales_are_enforced(in_tenant):
    c = customer()
    assert set(Survey.objects.values_list("key", flat=True)) >= {"nps", "csat"}
    stored, problems = survey_answers_record(answers=[
        SurveyAnswerIn(c.pk, "nps", 9, NOW, message_id="s1", index=0, path="r[0]"),
        SurveyAnswerIn(c.pk, "nps", 11, NOW, index=1, path="r[1]"),
        SurveyAnswerIn(c.pk, "csat", 0, NOW, index=2, path="r[2]"),
        SurveyAnswerIn(c.pk, "csat", 4.5, NOW, index=3, path="r[3]"),
        SurveyAnswerIn(c.pk, "csat", "5", NOW, index=4, path="r[4]"),
        SurveyAnswerIn(c.pk, "ghost", 1, NOW, index=5, path="r[5]"),
        SurveyAnswerIn(c.pk, "csat", 5, NOW, comment="Great support", index=6, path="r[6]"),
    ])
    assert stored == 2
    assert [(p.path, p.code) for p in problems] == [
        ("r[1].score", "out_of_range"), ("r[2].score", "out_of_range"), ("r[3].score", "out_of_range"),
        ("r[4].score", "invalid_type"), ("r[5].survey", "unknown_survey")]


def test_custom_surveys_check_their_questions_and_retries_store_once(in_tenant):
    c = customer()
    Survey.objects.create(key="onboarding", kind="custom", name="Onboarding",
                          questions=[{"key": "ease", "text": "How easy was setup?", "min": 1, "max": 7}])
    answer = SurveyAnswerIn(c.pk, "onboarding", 6, NOW, question="ease", message_id="retry-me")
    assert survey_answers_record(answers=[answer, answer]) == (1, [])
    assert survey_answers_record(answers=[answer])[0] == 0
    _, problems = survey_answers_record(answers=[SurveyAnswerIn(c.pk, "onboarding", 6, NOW, question="speed")])
    assert problems[0].code == "unknown_question"
    assert SurveyResponse.objects.get(message_id="retry-me").score == 6
