"""The pure parts of campaigns: holdout/variant hashing, lift statistics, the template sandbox."""

from __future__ import annotations

import math

import pytest

from campaigns import holdout, lift, personalisation
from common.errors import DomainError


def test_holdout_assignment_is_deterministic_and_depends_on_the_salt():
    """The same (salt, customer) always lands in the same arm; another campaign's salt reshuffles."""
    first = [holdout.in_holdout(salt="s1", customer_id=i, percent=10) for i in range(2000)]
    again = [holdout.in_holdout(salt="s1", customer_id=i, percent=10) for i in range(2000)]
    other = [holdout.in_holdout(salt="s2", customer_id=i, percent=10) for i in range(2000)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("percent", [5, 10, 20, 50])
def test_holdout_share_is_within_three_sigma_of_the_percentage_on_100k_ids(percent):
    """Observed holdout share over 100,000 ids: |observed − p| < 3·sqrt(p(1−p)/n)."""
    n, p = 100_000, percent / 100
    observed = sum(holdout.in_holdout(salt="campaign-42", customer_id=i, percent=percent) for i in range(n)) / n
    assert abs(observed - p) < 3 * math.sqrt(p * (1 - p) / n)


def test_zero_percent_holds_out_nobody():
    assert not any(holdout.in_holdout(salt="x", customer_id=i, percent=0) for i in range(5000))


def test_variants_follow_their_weights_and_are_independent_of_the_holdout_draw():
    variants = [{"key": "segmented", "weight": 70}, {"key": "generic", "weight": 30}]
    n = 50_000
    arms = [holdout.assign(salt="s", customer_id=i, percent=20, variants=variants) for i in range(n)]
    treated = [a for a in arms if a.group == "treatment"]
    share = sum(a.variant == "segmented" for a in treated) / len(treated)
    assert abs(share - 0.7) < 3 * math.sqrt(0.7 * 0.3 / len(treated))
    assert all(a.variant == "" for a in arms if a.group == "holdout")


def test_lift_matches_a_hand_computed_example():
    """Treatment 150/1000, holdout 100/1000.

    p1 = 0.15, p0 = 0.10; absolute lift d = 0.05; relative lift = 0.05 / 0.10 = 0.5.
    Wald SE = sqrt(0.15·0.85/1000 + 0.10·0.90/1000) = sqrt(0.0001275 + 0.00009) = sqrt(0.0002175)
            = 0.0147478812…; 95% CI = 0.05 ± 1.959964 · 0.0147479 = [0.0210947, 0.0789053].
    Pooled p̂ = 250/2000 = 0.125; SE₀ = sqrt(0.125·0.875·(1/1000 + 1/1000)) = sqrt(0.00021875)
            = 0.0147902; z = 0.05 / 0.0147902 = 3.38062; p = erfc(3.38062/√2) = 0.000723 < 0.05.
    """
    result = lift.lift(treatment_n=1000, treatment_conversions=150, holdout_n=1000, holdout_conversions=100)
    assert (result.treatment_rate, result.holdout_rate) == (0.15, 0.10)
    assert result.absolute_lift == pytest.approx(0.05, abs=1e-15)
    assert result.relative_lift == pytest.approx(0.5, abs=1e-12)
    assert round(result.ci_low, 7) == 0.0210947 and round(result.ci_high, 7) == 0.0789053
    assert round(result.z, 5) == 3.38062 and round(result.p_value, 6) == 0.000723
    assert result.significant and result.reliable


def test_a_small_difference_is_not_significant_and_empty_groups_give_no_lift():
    close = lift.lift(treatment_n=200, treatment_conversions=22, holdout_n=200, holdout_conversions=20)
    assert not close.significant and close.ci_low < 0 < close.ci_high
    empty = lift.lift(treatment_n=10, treatment_conversions=1, holdout_n=0, holdout_conversions=0)
    assert empty.absolute_lift is None and not empty.significant
    with pytest.raises(ValueError):
        lift.lift(treatment_n=10, treatment_conversions=11, holdout_n=10, holdout_conversions=0)


def test_templates_personalise_with_a_default_and_escape_html():
    data = {"first_name": "<script>x</script>", "name": "", "traits": {}, "unsubscribe_url": "https://u/1"}
    out = personalisation.render_email({"subject": "Hi {{ first_name|default:'there' }}", "format": "html",
                                  "body": "<p>Hello {{ first_name }}</p>"}, data)
    assert "&lt;script&gt;" in out["html"] and "<script>" not in out["html"]
    assert "https://u/1" in out["html"]  # the unsubscribe link is appended when the body lacks it
    plain = personalisation.render_email({"subject": "Hi {{ first_name|default:'there' }}", "body": "Hi"},
                                   {"first_name": "", "unsubscribe_url": "https://u/2"})
    assert plain["subject"] == "Hi there" and "Unsubscribe: https://u/2" in plain["text"]


@pytest.mark.parametrize("source", [
    "{% load static %}", "{% debug %}", "{% include 'base.html' %}", "{% extends 'base.html' %}",
    "{{ first_name|safe }}", "{{ first_name|ljust:'100000000' }}", "{{ first_name.__class__ }}", "{% url 'x' %}",
    "{% if %}",
])
def test_the_sandbox_refuses_tags_filters_and_lookups_outside_the_allow_list(source):
    problems = personalisation.compile_content({"body": source}, ("body",))
    assert [(p.path, p.code) for p in problems] == [("content.body", "template_syntax")]


def test_a_render_error_is_a_coded_problem_with_the_field_path():
    with pytest.raises(DomainError) as error:
        personalisation.render("{% if %}", {}, html=False, path="content.subject")
    assert error.value.problems[0].path == "content.subject" and error.value.problems[0].code == "template_syntax"


def test_subjects_lose_line_breaks():
    out = personalisation.render_email({"subject": "Hi\nBcc: evil@example.com", "body": "x"}, {})
    assert "\n" not in out["subject"]
