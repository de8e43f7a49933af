"""A persona card draft from what distinguishes a cluster: a memorable name built from its
standout features ("Weekend Power Users", "Dormant Free-plan Users"), and goals,
challenges, needs and preferred features in plain words, each traceable to a feature.
The same fields as a segment's persona card; the marketer edits them. Pure."""

from __future__ import annotations

HIGH, LOW = 0.5, -0.5  # standardised differences that count as standing out

# feature (prefix) → adjective when the cluster is high / low on it
_ADJECTIVES = {
    "share.weekend": ("Weekend", None), "share.friday_to_sunday": ("Weekend", None),
    "share.evening": ("Evening", None), "share.night": ("Night-owl", None), "share.morning": ("Early-bird", None),
    "share.afternoon": ("Daytime", None),
    "events_30d": ("Power", "Quiet"), "events_7d": ("Power", "Quiet"), "active_days_30d": ("Daily", "Occasional"),
    "days_since_last_seen": ("Dormant", "Active"), "tenure_days": ("Veteran", "New"),
    "revenue_90d": ("High-value", None), "revenue_total": ("High-value", "Non-paying"),
    "trend_30d": ("Rising", "Fading"), "survey.nps": ("Promoter", "Detractor"),
}


def _standouts(lift: list[dict]) -> list[tuple[str, float]]:
    return [(row["feature"], row["z"]) for row in lift if row["z"] is not None and abs(row["z"]) >= HIGH]


def _label(feature: str) -> str:
    """trait.plan=pro → "Pro-plan"; events_30d.report_exported → "Report exported"."""
    if feature.startswith("trait.") and "=" in feature:
        key, value = feature[len("trait."):].split("=", 1)
        return f"{value.replace('_', ' ').capitalize()}-{key.replace('_', ' ')}" if key == "plan" else \
            value.replace("_", " ").capitalize()
    if feature.startswith("tech."):
        return feature[len("tech."):].capitalize()
    return feature.split(".", 1)[-1].replace("_", " ").capitalize()


def persona_name(lift: list[dict], taken: set[str]) -> str:
    """Two standout words and "Users": the first adjective the features give, then the
    strongest trait or event; numbered if another cluster of the run has the name."""
    words = []
    for feature, z in _standouts(lift):
        high, low = _ADJECTIVES.get(feature, (None, None))
        word = high if z > 0 else low
        if word is None and z > 0 and (feature.startswith(("trait.", "tech.", "events_"))):
            word = _label(feature)
        if word and word not in words:
            words.append(word)
        if len(words) == 2:
            break
    name = " ".join(words + ["Users"]) if words else "Typical Users"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} {n}", n + 1
    return candidate


def persona_draft(lift: list[dict], *, taken: set[str]) -> dict:
    """name, goals, challenges, needs, preferred_features, notes — strings, as the card holds."""
    standouts = _standouts(lift)
    high = [f for f, z in standouts if z > 0]
    low = [f for f, z in standouts if z < 0]
    events = [f.split(".", 1)[1] for f in high if f.startswith(("events_30d.", "events_90d."))]
    preferred = list(dict.fromkeys(events))
    traits = [_label(f) for f in high if f.startswith(("trait.", "tech."))]
    goals, challenges, needs = [], [], []
    if any(f.startswith(("share.weekend", "share.friday")) for f in high):
        goals.append("Get things done at the weekend, on their own schedule")
    if "events_30d" in high or "active_days_30d" in high:
        goals.append("Use the product every day as part of their work")
    if "revenue_90d" in high or "revenue_total" in high:
        goals.append("Get more value from a paid plan they rely on")
    if "days_since_last_seen" in high or "events_30d" in low:
        challenges.append("Have drifted away: little or no recent activity")
    if "trend_30d" in low:
        challenges.append("Activity is falling month on month")
    if "survey.nps" in low:
        challenges.append("Unhappy: low NPS answers")
    if "tenure_days" in low:
        needs.append("A fast, guided start: they signed up recently")
    needs += [f"Fits their profile: {t}" for t in traits[:3]]
    return {
        "name": persona_name(lift, taken),
        "goals": "; ".join(goals) or "—",
        "challenges": "; ".join(challenges) or "—",
        "needs": "; ".join(needs) or "—",
        "preferred_features": ", ".join(preferred[:5]) or "—",
        "notes": "Drafted from the cluster's distinguishing features: "
                 + ", ".join(f"{f} ({'+' if z > 0 else '−'}{abs(z):.1f}σ)" for f, z in standouts[:5]),
    }
