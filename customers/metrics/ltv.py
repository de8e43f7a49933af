"""ARPU and lifetime value.

LTV has two textbook formulas, both shown because they disagree when churn is far from
1 / lifespan:
- by lifespan:   ARPU × gross margin × expected lifespan (in periods);
- by churn rate: ARPU × gross margin ÷ churn rate (a customer stays 1 / churn periods).
"""

from __future__ import annotations

import numpy as np

DAYS_PER_MONTH = 365.25 / 12


def arpu(revenue: float, customers: int) -> float | None:
    """Average revenue per customer; None when there are no customers."""
    return revenue / customers if customers else None


def ltv_by_lifespan(arpu: float | None, *, gross_margin: float, lifespan_periods: float) -> float | None:
    if arpu is None:
        return None
    return arpu * gross_margin * lifespan_periods


def ltv_by_churn(arpu: float | None, *, gross_margin: float, churn_rate: float | None) -> float | None:
    """None when churn is unknown or zero (no churn means an unbounded lifetime)."""
    if arpu is None or not churn_rate:
        return None
    return arpu * gross_margin / churn_rate


def lifespan_in_periods(lifespan_months: float, period_days: float) -> float:
    return lifespan_months * DAYS_PER_MONTH / period_days


def customer_arpu(revenue: np.ndarray, tenure_days: np.ndarray, *, period_days: float) -> np.ndarray:
    """Each customer's revenue per period of tenure; tenure shorter than one period counts
    as one (a customer who paid 50 on day 3 has an ARPU of 50, not 500). NaN tenure → NaN."""
    tenure = np.asarray(tenure_days, dtype=float)
    periods = np.maximum(tenure / period_days, 1.0)
    return np.where(np.isnan(tenure), np.nan, np.asarray(revenue, dtype=float) / periods)
