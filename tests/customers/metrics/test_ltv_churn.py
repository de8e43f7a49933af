"""ARPU, LTV (both formulas), churn per period and engagement against hand-computed examples."""

from datetime import datetime, timezone

import numpy as np
import pytest

from customers.metrics.churn import churn_by_period, period_starts
from customers.metrics.engagement import engagement_scores
from customers.metrics.ltv import arpu, customer_arpu, lifespan_in_periods, ltv_by_churn, ltv_by_lifespan

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=timezone.utc)


def _ts(*args) -> np.datetime64:
    return np.datetime64(datetime(*args), "us")


def test_ltv_by_churn_rate_is_arpu_times_margin_over_churn():
    """The issue's example: 200 × 0.7 ÷ 0.05 = 2800."""
    assert ltv_by_churn(200, gross_margin=0.7, churn_rate=0.05) == pytest.approx(2800)


def test_ltv_by_lifespan_is_arpu_times_margin_times_lifespan():
    assert ltv_by_lifespan(200, gross_margin=0.7, lifespan_periods=24) == pytest.approx(3360)


def test_ltv_is_unknown_without_revenue_or_churn():
    assert ltv_by_churn(200, gross_margin=0.7, churn_rate=0) is None
    assert ltv_by_churn(None, gross_margin=0.7, churn_rate=0.05) is None
    assert ltv_by_lifespan(None, gross_margin=0.7, lifespan_periods=24) is None
    assert arpu(1000, 0) is None


def test_arpu_is_revenue_per_customer():
    assert arpu(5000, 25) == 200


def test_lifespan_in_weeks():
    """24 months ≈ 104.4 weeks."""
    assert lifespan_in_periods(24, 7) == pytest.approx(24 * 30.4375 / 7)


def test_customer_arpu_counts_short_tenure_as_one_period():
    got = customer_arpu(np.array([300.0, 50.0, 0.0, 10.0]), np.array([90.0, 3.0, 400.0, np.nan]), period_days=30)
    assert got[:3].tolist() == pytest.approx([100.0, 50.0, 0.0]) and np.isnan(got[3])


def test_month_boundaries_are_calendar_months_in_utc():
    starts = period_starts("month", now=NOW, count=2)
    assert [s.date().isoformat() for s in starts] == ["2026-09-01", "2026-10-01", "2026-11-01"]
    assert [s.date().isoformat() for s in period_starts("quarter", now=NOW, count=1)] == ["2026-07-01", "2026-10-01"]
    assert [s.date().isoformat() for s in period_starts("week", now=NOW, count=1)] == ["2026-11-02", "2026-11-09"]


def test_churn_rate_of_october_by_hand():
    """Inactivity 30 days. Alive on 1 Oct: A, B, C, D (E starts in October).
    A's last event 5 Sep → churns 5 Oct (in October). B's 20 Aug → churned 19 Sep (before:
    not alive on 1 Oct). C active till 10 Nov → alive. D last 15 Sep → churns 15 Oct.
    So alive on 1 Oct = A, C, D = 3; churned in October = A, D = 2; rate 2/3."""
    first = np.array([_ts(2026, 1, 1), _ts(2026, 2, 1), _ts(2026, 3, 1), _ts(2026, 8, 1), _ts(2026, 10, 5)])
    last = np.array([_ts(2026, 9, 5), _ts(2026, 8, 20), _ts(2026, 11, 10), _ts(2026, 9, 15), _ts(2026, 10, 6)])
    september, october = churn_by_period(first, last, period="month", inactivity_days=30, now=NOW, count=2)
    assert (october.alive, october.churned) == (3, 2) and october.rate == pytest.approx(2 / 3)
    assert october.present == 4  # E joined during October
    assert (october.start.isoformat(), october.end.isoformat()) == ("2026-10-01T00:00:00+00:00",
                                                                    "2026-11-01T00:00:00+00:00")
    # September: alive on 1 Sep: A, B, C, D (none churned yet); B churns 19 Sep.
    assert (september.alive, september.churned) == (4, 1)


def test_a_customer_still_inside_the_inactivity_window_has_not_churned():
    """Last seen 1 Nov, inactivity 30 days, now 15 Nov: churn would be 1 Dec, after now."""
    first, last = np.array([_ts(2026, 1, 1)]), np.array([_ts(2026, 10, 20)])
    (october,) = churn_by_period(first, last, period="month", inactivity_days=30, now=NOW, count=1)
    assert (october.alive, october.churned) == (1, 0)


def test_customers_without_events_are_never_alive():
    first = np.array([np.datetime64("NaT", "us")])
    (october,) = churn_by_period(first, first.copy(), period="month", inactivity_days=30, now=NOW, count=1)
    assert (october.alive, october.churned, october.rate) == (0, 0, None)


def test_engagement_by_hand():
    """Customer 0: 15 active days (0.5·0.5), 2 of 3 peers have fewer events (0.3·2/3),
    last seen today (0.2·1) → 100·(0.25 + 0.2 + 0.2) = 65. Customer 2 has no events: NaN."""
    got = engagement_scores(np.array([15, 0, 0]), np.array([40, 3, 0]), np.array([0.0, 14.0, np.nan]))
    assert got[0] == pytest.approx(65.0)
    assert got[1] == pytest.approx(round(100 * (0 + 0.3 * 1 / 3 + 0.2 * np.exp(-1)), 1))
    assert np.isnan(got[2])
