"""Persona card drafts from a cluster's lifts: a name from its standout words (behaviour
first), told apart from the run's other names by a further word before any number, and
the card's fields traceable to the features."""

from __future__ import annotations

from insights.models.persona import persona_draft, persona_name


def lift(*rows):
    return [{"feature": feature, "z": z, "mean": None, "base": None, "lift": None} for feature, z in rows]


WEEKEND_PRO = lift(("share.weekend", 2.4), ("trait.plan=pro", 1.1), ("tech.slack", 0.9), ("events_30d.export", 0.7),
                   ("survey.nps", -0.2))


def test_the_name_takes_behaviour_then_who_they_are():
    assert persona_name(WEEKEND_PRO, taken=set()) == "Weekend Pro-plan Users"
    assert persona_name(lift(("tenure_days", -1.5), ("trend_30d", -0.8)), taken=set()) == "New Fading Users"
    assert persona_name(lift(("share.weekend", 0.2)), taken=set()) == "Typical Users"  # nothing stands out


def test_a_long_trait_value_waits_for_a_shorter_one():
    needs = lift(("trait.need=on_the_go_tracking", 2.0), ("trait.access=mobile_access", 1.5), ("trait.os=android", 1.0))
    assert persona_name(needs, taken=set()) == "Mobile access Android Users"
    assert persona_name(lift(("trait.need=on_the_go_tracking", 2.0)), taken=set()) == "On the go tracking Users"


def test_a_taken_name_gets_a_third_word_before_a_number():
    assert persona_name(WEEKEND_PRO, taken={"Weekend Pro-plan Users"}) == "Weekend Pro-plan Slack Users"
    both = {"Weekend Pro-plan Users", "Weekend Pro-plan Slack Users"}
    assert persona_name(WEEKEND_PRO, taken=both) == "Weekend Pro-plan Users 2"
    assert persona_name(lift(), taken={"Typical Users"}) == "Typical Users 2"


def test_bland_values_never_name_anyone():
    assert persona_name(lift(("trait.industry=other", 2.0), ("trait.os=unknown", 1.0)), taken=set()) == "Typical Users"


def test_the_card_says_why():
    card = persona_draft(WEEKEND_PRO, taken=set())
    assert card["goals"] == "Get things done at the weekend, on their own schedule"
    assert card["needs"] == "plan: pro; works with slack"
    assert card["preferred_features"] == "export"
    assert card["notes"].startswith("Drafted from the cluster's distinguishing features: share.weekend (+2.4σ)")
