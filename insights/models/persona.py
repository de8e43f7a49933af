"""A persona card draft from what distinguishes a cluster: a memorable name built from its
standout features ("Weekend Power Users", "Mobile On-the-go Users"), and goals,
challenges, needs and preferred features in plain words, each traceable to a feature.
The same fields as a segment's persona card; the marketer edits them. Pure."""

from __future__ import annotations

HIGH = 0.5  # a standardised difference from the base that counts as standing out
# Trait values that say nothing about who someone is.
_BLAND = {"none", "other", "unknown", "n/a", ""}
_BEHAVIOUR_WORDS = {  # feature → word when the cluster is high / low on it
    "share.weekend": ("Weekend", None), "share.friday_to_sunday": ("Weekend", None),
    "share.evening": ("Evening", None), "share.night": ("Night-owl", None), "share.morning": ("Early-bird", None),
    "events_30d": ("Power", "Quiet"), "active_days_30d": ("Daily", "Occasional"),
    "days_since_last_seen": ("Dormant", None), "tenure_days": ("Veteran", "New"),
    "revenue_90d": ("High-value", None), "trend_30d": ("Rising", "Fading"), "survey.nps": ("Promoter", "Detractor"),
}
_GOALS = {
    "share.weekend": "Get things done at the weekend, on their own schedule",
    "share.friday_to_sunday": "Get things done at the weekend, on their own schedule",
    "events_30d": "Use the product every day as part of their work",
    "active_days_30d": "Use the product every day as part of their work",
    "revenue_90d": "Get more out of a paid plan they rely on",
    "survey.nps": "Keep the tool that works for them (they recommend it)",
}
_CHALLENGES = {
    ("days_since_last_seen", True): "Have drifted away: little or no recent activity",
    ("events_30d", False): "Little recent activity",
    ("trend_30d", False): "Activity falling month on month",
    ("survey.nps", False): "Unhappy: low NPS answers",
    ("survey.csat", False): "Unsatisfied with support or the product (low CSAT)",
    ("tenure_days", False): "New: still finding their way",
}


def _standouts(lift: list[dict]) -> list[tuple[str, float]]:
    return [(row["feature"], row["z"]) for row in lift if row["z"] is not None and abs(row["z"]) >= HIGH]


def _trait(feature: str) -> tuple[str, str] | None:
    """trait.plan=pro → ("plan", "pro"); tech.github → ("tech", "github")."""
    if feature.startswith("trait.") and "=" in feature:
        key, value = feature[len("trait."):].split("=", 1)
        return key, value
    if feature.startswith("tech."):
        return "tech", feature[len("tech."):]
    return None


def _word(feature: str, z: float) -> str | None:
    if feature in _BEHAVIOUR_WORDS:
        high, low = _BEHAVIOUR_WORDS[feature]
        return high if z > 0 else low
    trait = _trait(feature)
    if trait and z > 0 and trait[1].lower() not in _BLAND:
        key, value = trait
        text = value.replace("_", " ")
        text = text if text[:1].isupper() else text.capitalize()
        return f"{text}-plan" if key == "plan" else text
    return None


NAME_WORDS = 3  # before "Users": longer names stop being memorable


def persona_name(lift: list[dict], taken: set[str]) -> str:
    """Standout words, behaviour first, then who they are, up to three words and "Users"
    (a longer trait value waits for a shorter one: "Mobile access Users", not "On the go
    tracking Mobile access Users"); where another cluster of the run already has the name,
    one more standout tells them apart, and only when none is left a number."""
    standouts = _standouts(lift)
    ordered = [s for s in standouts if s[0] in _BEHAVIOUR_WORDS] + [s for s in standouts if s[0] not in _BEHAVIOUR_WORDS]
    words = list(dict.fromkeys(word for feature, z in ordered if (word := _word(feature, z))))
    fitting = _within_budget(words)
    names = [" ".join(fitting + ["Users"])] if fitting else ["Typical Users"]
    names += [" ".join(fitting + [extra, "Users"]) for extra in words if extra not in fitting][:2]
    for name in names:
        if name not in taken:
            return name
    candidate, n = names[0], 2
    while candidate in taken:
        candidate, n = f"{names[0]} {n}", n + 1
    return candidate


def _within_budget(words: list[str]) -> list[str]:
    chosen, used = [], 0
    for word in words:
        size = len(word.split())
        if used + size <= NAME_WORDS and len(chosen) < 2:
            chosen.append(word)
            used += size
    return chosen or words[:1]


def persona_draft(lift: list[dict], *, taken: set[str]) -> dict:
    """name, goals, challenges, needs, preferred_features, notes — strings, as the card holds."""
    standouts = _standouts(lift)
    goals = list(dict.fromkeys(_GOALS[f] for f, z in standouts if z > 0 and f in _GOALS))
    challenges = list(dict.fromkeys(text for (f, high), text in _CHALLENGES.items()
                                    for g, z in standouts if g == f and (z > 0) == high))
    needs = []
    for feature, z in standouts:
        trait = _trait(feature)
        if trait and z > 0 and trait[0] != "tech" and trait[1].lower() not in _BLAND:
            needs.append(f"{trait[0].replace('_', ' ')}: {trait[1].replace('_', ' ')}")
    tools = [t[1] for f, z in standouts if z > 0 and (t := _trait(f)) and t[0] == "tech"]
    events = [f.split(".", 1)[1] for f, z in standouts if z > 0 and f.startswith(("events_30d.", "events_90d.", "mix."))]
    preferred = list(dict.fromkeys(events))
    return {
        "name": persona_name(lift, taken),
        "goals": "; ".join(goals) or "—",
        "challenges": "; ".join(challenges) or "—",
        "needs": "; ".join(needs[:4] + ([f"works with {', '.join(tools[:4])}"] if tools else [])) or "—",
        "preferred_features": ", ".join(preferred[:5]) or "—",
        "notes": "Drafted from the cluster's distinguishing features: "
                 + ", ".join(f"{f} ({'+' if z > 0 else '−'}{abs(z):.1f}σ)" for f, z in standouts[:6]),
    }
