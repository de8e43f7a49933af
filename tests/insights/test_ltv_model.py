"""Predicted LTV from a churn risk (insights/models/ltv.py): pure arithmetic, checked by hand."""

import numpy as np
import pytest

from customers.metrics.ltv import DAYS_PER_MONTH
from insights.models.ltv import LTV_MONTHS, expected_months, ltv_summary, monthly_hazard, predicted_ltv, risk_spread


def test_a_risk_over_one_month_is_that_months_hazard_and_no_risk_keeps_every_month():
    assert monthly_hazard(np.array([0.2]), DAYS_PER_MONTH)[0] == pytest.approx(0.2)
    # 1 - (1 - h)^2 = 0.36 over two months: h = 0.2
    assert monthly_hazard(np.array([0.36]), 2 * DAYS_PER_MONTH)[0] == pytest.approx(0.2)
    assert expected_months(np.array([0.0]))[0] == LTV_MONTHS
    assert expected_months(np.array([0.5]))[0] == pytest.approx(sum(0.5 ** m for m in range(1, LTV_MONTHS + 1)))


def test_a_certain_churner_still_counts_a_sliver_not_infinity():
    assert 0 < expected_months(monthly_hazard(np.array([1.0]), 45))[0] < 0.1


def test_the_spread_is_the_calibration_bins_error_and_its_gap():
    calibration = [{"predicted": 0.35, "observed": 0.25, "customers": 100}]
    spread = risk_spread(np.array([0.31, 0.39, 0.5]), calibration)
    in_bin = 1.96 * np.sqrt(0.25 * 0.75 / 100) + 0.10
    assert spread == pytest.approx([in_bin, in_bin, 0.1])


def test_ltv_lies_between_its_ends_and_scales_with_the_margin():
    risk = np.array([0.05, 0.3, 0.9])
    ltv, low, high = predicted_ltv(np.array([10.0, 10.0, 10.0]), risk, [], 45)
    assert np.all(low <= ltv) and np.all(ltv <= high) and ltv[0] > ltv[1] > ltv[2]
    doubled, _, _ = predicted_ltv(np.array([20.0, 20.0, 20.0]), risk, [], 45)
    assert doubled == pytest.approx(2 * ltv)


def test_the_summary_of_nobody_is_empty_and_of_somebody_has_deciles():
    assert ltv_summary(np.array([]), 0.0, 0) == {}
    summary = ltv_summary(np.arange(1, 101, dtype=float), 90.0, 3)
    assert (summary["median"], summary["months"], summary["high_potential_sign_ups"]) == (50.5, LTV_MONTHS, 3)
    assert sum(row["customers"] for row in summary["histogram"]) == 100
