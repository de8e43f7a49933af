"""How the campaign pages say things (pure, no queries): status badges, a schedule in one
sentence, the results' verdict in plain words, and the ECharts options of the results page
(server-built JSON in `data-chart`, drawn by frontend/src/main.js)."""

from __future__ import annotations

import json
from datetime import datetime

from campaigns.forms import WEEKDAYS

STATUS_BADGES = {"draft": "badge-slate", "scheduled": "badge-brand", "running": "badge-green", "paused": "badge-amber",
                 "completed": "badge-slate", "cancelled": "badge-red"}
SEND_BADGES = {"sent": "badge-green", "queued": "badge-brand", "failed": "badge-red", "suppressed": "badge-amber",
               "unknown": "badge-slate"}
DELIVERY_BADGES = {"delivered": "badge-green", "pending": "badge-brand", "failed": "badge-red"}
TREATMENT, HOLDOUT, LIFT = "#3b55e6", "#94a3b8", "#059669"


def _when(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).strftime("%-d %b %Y, %H:%M UTC")
    except ValueError:
        return iso


def schedule_summary(schedule: dict) -> str:
    """"Once, 1 Jun 2026, 09:00 UTC", "Every Monday at 09:00 UTC until …", "When a customer enters"."""
    kind = (schedule or {}).get("kind")
    if kind == "once":
        return f"Once, {_when(schedule.get('at'))}"
    if kind == "on_entry":
        return "When a customer enters the segment"
    if kind != "recurring":
        return "Not scheduled"
    every = schedule.get("every")
    if every == "hours":
        hours = schedule.get("hours")
        text = "Every hour" if hours == 1 else f"Every {hours} hours"
    elif every == "weekly" and isinstance(schedule.get("weekday"), int) and 0 <= schedule["weekday"] <= 6:
        text = f"Every {WEEKDAYS[schedule['weekday']]} at {schedule.get('time', '09:00')} UTC"
    else:
        text = f"Every day at {schedule.get('time', '09:00')} UTC"
    if schedule.get("until"):
        text += f" until {_when(schedule['until'])}"
    return text


def _pp(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.2f} pp"


def verdict(result: dict, *, goal_event: str, holdout_percent: float) -> dict:
    """The headline an analyst reads first: {"tone", "title", "detail"} in plain words."""
    if not goal_event:
        return {"tone": "slate", "title": "No conversion goal yet", "short": "No goal",
                "detail": "Choose the event that counts as a conversion (for example “upgraded”) in the editor; "
                          "results are measured from then on, for everyone already assigned too."}
    if not result["treatment_n"]:
        return {"tone": "slate", "title": "No results yet", "short": "No results yet",
                "detail": "Nobody has been assigned to the campaign yet: results appear after its first send."}
    if not holdout_percent or not result["holdout_n"]:
        return {"tone": "amber", "title": "No holdout — lift cannot be measured", "short": "No holdout",
                "detail": "Every member receives the message, so there is nobody to compare with. Set a holdout "
                          "(10% is usual) on the next campaign."}
    low, high, p = result["ci_low"], result["ci_high"], result["p_value"]
    interval = f"95% CI {_pp(low)} to {_pp(high)}, p = {p:.3f}"
    if result["significant"]:
        direction = "raised" if result["absolute_lift"] > 0 else "lowered"
        return {"tone": "green" if direction == "raised" else "red",
                "short": "Significant rise" if direction == "raised" else "Significant drop",
                "title": f"Significant: the campaign {direction} conversion by {_pp(abs(result['absolute_lift']))[1:]}",
                "detail": f"Unlikely to be chance ({interval})."
                          + ("" if result["reliable"] else " Some groups have fewer than 5 conversions or "
                                                          "non-conversions, so the interval is approximate.")}
    return {"tone": "amber", "title": "Not yet significant — need more data", "short": "Not yet significant",
            "detail": f"The difference ({_pp(result['absolute_lift'])}) could still be chance ({interval}). "
                      "Wait for more conversions or a larger audience before deciding."}


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _chart(option: dict) -> str:
    return json.dumps({"option": option})


def arms(results: dict) -> list[dict]:
    """Holdout, all of treatment, then each variant: the rows of the results table."""
    overall = results["overall"]
    rows = [{"label": "Holdout", "n": overall["holdout_n"], "x": overall["holdout_conversions"],
             "rate": overall["holdout_rate"], "lift": None},
            {"label": "Treatment (all)", "n": overall["treatment_n"], "x": overall["treatment_conversions"],
             "rate": overall["treatment_rate"], "lift": overall}]
    for key, result in results["variants"].items():
        rows.append({"label": f"Variant “{key}”", "key": key, "n": result["treatment_n"],
                     "x": result["treatment_conversions"], "rate": result["treatment_rate"], "lift": result})
    return rows


def rate_chart(rows: list[dict]) -> str | None:
    """Conversion rate per arm, in %."""
    if not any(r["n"] for r in rows):
        return None
    return _chart({
        "animation": False, "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 16, "top": 24, "bottom": 32},
        "xAxis": {"type": "category", "data": [r["label"] for r in rows], "axisLabel": {"interval": 0}},
        "yAxis": {"type": "value", "name": "% converted", "nameTextStyle": {"align": "left"}, "min": 0},
        "series": [{"type": "bar", "name": "Conversion rate (%)", "barMaxWidth": 56,
                    "label": {"show": True, "position": "top", "formatter": "{c}%"},
                    "data": [{"value": _rate(r["rate"]),
                              "itemStyle": {"color": HOLDOUT if r["label"] == "Holdout" else TREATMENT}}
                             for r in rows]}],
    })


def lift_chart(rows: list[dict]) -> str | None:
    """Absolute lift vs the holdout with its 95% interval as an error bar (a boxplot whose
    box collapses onto the estimate draws exactly whiskers and caps), and a zero line."""
    measured = [r for r in rows if r["lift"] and r["lift"]["absolute_lift"] is not None]
    if not measured:
        return None
    labels = [r["label"] for r in measured]
    points = [_rate(r["lift"]["absolute_lift"]) for r in measured]
    bars = [[_rate(r["lift"]["ci_low"]), p, p, p, _rate(r["lift"]["ci_high"])] for r, p in zip(measured, points)]
    return _chart({
        "animation": False, "tooltip": {"trigger": "item"},
        "grid": {"left": 56, "right": 16, "top": 24, "bottom": 32},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"interval": 0}},
        "yAxis": {"type": "value", "name": "lift, percentage points", "nameTextStyle": {"align": "left"}},
        "series": [
            {"type": "boxplot", "name": "95% interval", "data": bars, "boxWidth": [8, 24], "tooltip": {"show": False},
             "itemStyle": {"color": "#ffffff", "borderColor": LIFT, "borderWidth": 2},
             "markLine": {"silent": True, "symbol": "none", "data": [{"yAxis": 0}],
                          "lineStyle": {"color": "#64748b", "type": "dashed"}, "label": {"formatter": "no effect", "position": "insideStartTop"}}},
            {"type": "scatter", "name": "Lift (pp)", "data": points, "symbolSize": 10, "itemStyle": {"color": LIFT},
             "label": {"show": True, "position": "right", "formatter": "{c} pp"}},
        ],
    })
