"""Predicted LTV from a churn risk (pure: arrays in, arrays out): monthly revenue × gross
margin × the paying months expected over LTV_MONTHS under the monthly hazard the risk
implies, with an interval from the risk's uncertainty in its calibration bin."""

from __future__ import annotations

import numpy as np

from customers.metrics.ltv import DAYS_PER_MONTH

LTV_MONTHS = 24


def monthly_hazard(risk: np.ndarray, window_days: int) -> np.ndarray:
    """The monthly chance of churning that a risk over a window of `window_days` implies."""
    window_months = window_days / DAYS_PER_MONTH
    return 1 - (1 - np.clip(risk, 0, 0.999)) ** (1 / window_months)


def expected_months(hazard: np.ndarray) -> np.ndarray:
    """Paying months expected over the next LTV_MONTHS (each month survived counts one)."""
    survive = 1 - hazard
    return np.sum([survive ** month for month in range(1, LTV_MONTHS + 1)], axis=0)


def risk_spread(risk: np.ndarray, calibration: list[dict]) -> np.ndarray:
    """1.96 standard errors of the observed churn rate in the risk's calibration bin, plus
    that bin's gap between predicted and observed."""
    spread = np.full(len(risk), 0.1)
    for row in calibration:
        low, high = np.floor(row["predicted"] * 10) / 10, np.floor(row["predicted"] * 10) / 10 + 0.1
        inside = (risk >= low) & (risk < high)
        error = 1.96 * np.sqrt(max(row["observed"] * (1 - row["observed"]), 0.01) / max(row["customers"], 1))
        spread[inside] = error + abs(row["observed"] - row["predicted"])
    return spread


def predicted_ltv(monthly_margin: np.ndarray, risk: np.ndarray, calibration: list[dict],
                  window_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LTV and its low and high ends: a higher risk gives the low end, a lower one the high."""
    spread = risk_spread(risk, calibration)

    def worth(at: np.ndarray) -> np.ndarray:
        return monthly_margin * expected_months(monthly_hazard(at, window_days))

    return worth(risk), worth(np.clip(risk + spread, 0, 1)), worth(np.clip(risk - spread, 0, 1))


def ltv_summary(ltv: np.ndarray, threshold: float, high_potential: int) -> dict:
    """Median, mean, where the top decile starts and a decile histogram of predicted LTV."""
    if not len(ltv):
        return {}
    edges = np.unique(np.quantile(ltv, np.linspace(0, 1, 11)))
    counts, edges = np.histogram(ltv, bins=edges if len(edges) > 1 else 10)
    return {"months": LTV_MONTHS, "median": round(float(np.median(ltv)), 2), "mean": round(float(ltv.mean()), 2),
            "top_decile_from": round(threshold, 2), "high_potential_sign_ups": high_potential,
            "histogram": [{"from": round(float(a), 2), "to": round(float(b), 2), "customers": int(c)}
                          for a, b, c in zip(edges[:-1], edges[1:], counts)]}
