"""The campaign pages' wording and form plumbing (pure): schedules in one sentence, the
results verdict in plain words, and problem paths placed at the editor's fields."""

from __future__ import annotations

from campaigns import display, forms
from campaigns.lift import lift
from common.errors import Problem


def test_schedules_read_as_one_sentence():
    assert display.schedule_summary({"kind": "once", "at": "2026-06-01T09:00:00+00:00"}) == "Once, 1 Jun 2026, 09:00 UTC"
    assert display.schedule_summary({"kind": "recurring", "every": "weekly", "weekday": 0, "time": "08:30",
                                     "until": "2026-07-01T00:00:00+00:00"}) == \
        "Every Monday at 08:30 UTC until 1 Jul 2026, 00:00 UTC"
    assert display.schedule_summary({"kind": "recurring", "every": "hours", "hours": 6}) == "Every 6 hours"
    assert display.schedule_summary({"kind": "on_entry"}) == "When a customer enters the segment"


def test_the_verdict_follows_the_test_and_says_what_is_missing():
    def verdict(treated, converted, held, held_converted, holdout=10.0, goal="upgraded"):
        result = lift(treatment_n=treated, treatment_conversions=converted, holdout_n=held,
                      holdout_conversions=held_converted).as_dict()
        return display.verdict(result, goal_event=goal, holdout_percent=holdout)

    assert verdict(1000, 200, 1000, 100)["title"].startswith("Significant: the campaign raised conversion by 10.00")
    assert verdict(1000, 100, 1000, 200)["tone"] == "red"
    assert verdict(100, 12, 100, 10)["title"] == "Not yet significant — need more data"
    assert verdict(100, 12, 0, 0, holdout=0)["short"] == "No holdout"
    assert verdict(0, 0, 0, 0)["title"] == "No results yet"
    assert verdict(100, 12, 100, 10, goal="")["title"] == "No conversion goal yet"


def test_problems_land_at_the_field_or_variant_row_they_name():
    rows = [forms.VariantRow(key="a"), forms.VariantRow(key="b")]
    placed = forms.place_problems([
        Problem("content.subject", "template_syntax", "x"), Problem("schedule.at", "invalid_datetime", "x"),
        Problem("variants[1].content.subject", "required", "x"), Problem("variants[0].weight", "invalid_range", "x"),
        Problem("", "finished", "x"), Problem("segment_id", "unknown_segment", "x")], "email", rows)
    assert {name: [p.code for p in problems] for name, problems in placed.items()} == {
        "email_subject": ["template_syntax"], "schedule_at": ["invalid_datetime"], "": ["finished"],
        "segment": ["unknown_segment"]}
    assert [p.code for p in rows[1].errors["subject"]] == ["required"]
    assert [p.code for p in rows[0].errors["weight"]] == ["invalid_range"]
    assert forms.field_of("content.title", "in_app") == "inapp_title"


def test_typed_numbers_that_do_not_parse_reach_the_service_as_typed():
    from django.http import QueryDict

    post = QueryDict(mutable=True)
    post.update({"channel": "email", "cap_max_sends": "lots", "goal_days": "0", "schedule_kind": "once",
                 "schedule_at": "2026-06-01T09:00"})
    fields, _ = forms.campaign_fields(post, campaign=None)
    assert fields["cap_max_sends"] == "lots" and fields["goal_days"] == 0
    assert fields["schedule"] == {"kind": "once", "at": "2026-06-01T09:00:00+00:00"}
