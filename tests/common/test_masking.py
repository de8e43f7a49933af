"""Masked personal data keeps a hint for telling people apart, and nothing more."""

from __future__ import annotations

from common.masking import HIDDEN, mask_email, mask_explain_tree, mask_name, mask_properties, mask_trait


def test_email_and_name_keep_their_first_letter():
    assert mask_email("ada@example.test") == "a***@example.test"
    assert mask_name("Ada Lovelace") == "A***"
    assert mask_email("") == "" and mask_name("") == ""


def test_other_personal_traits_become_the_placeholder():
    assert mask_trait("phone", "+44 20 7946 0958", other=None) is None
    assert mask_trait("email", "ada@example.test", other=None) == "a***@example.test"


def test_properties_are_masked_at_any_depth_whatever_the_key_case():
    value = {"Email": "ada@example.test", "items": [{"phone": "1"}, {"sku": "x"}], "plan": "pro"}
    assert mask_properties(value, frozenset({"email", "phone"})) == {
        "Email": HIDDEN, "items": [{"phone": HIDDEN}, {"sku": "x"}], "plan": "pro"}


def test_explain_tree_masks_personal_facts_only():
    tree = {"result": True, "conditions": [
        {"result": True, "fact": {"field": "email", "value": "ada@example.test", "pii": True}},
        {"result": False, "fact": {"field": "plan", "value": "pro"}},
        {"result": False, "fact": {"field": "phone", "value": "123", "pii": True}},
    ]}
    masked = mask_explain_tree(tree, other="Hidden")
    facts = [child["fact"] for child in masked["conditions"]]
    assert facts[0] == {"field": "email", "value": "a***@example.test", "pii": True, "masked": True}
    assert facts[1] == {"field": "plan", "value": "pro"}
    assert facts[2]["value"] == "Hidden"
    assert tree["conditions"][0]["fact"]["value"] == "ada@example.test"  # the input is not changed
