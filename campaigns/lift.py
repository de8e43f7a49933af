"""Treatment vs holdout: conversion rates, lift, a 95% interval and a significance test (pure).

- Interval: the **Wald** interval of the difference of two independent proportions,
  d ± z·sqrt(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀), z = 1.959964 (the unpooled standard error).
  Wald is what analysts can recompute by hand; it is too narrow for tiny groups or rates
  near 0/1, which is why `reliable` says when every cell has ≥ 5 successes and failures.
- Significance: the two-proportion **z-test** with the pooled rate,
  z = d / sqrt(p̂(1−p̂)(1/n₁ + 1/n₀)), two-sided p = erfc(|z|/√2), significant when p < 0.05.
  (The test and the interval use different standard errors, as usual; at the edge one may
  say "significant" while the interval touches 0 — the flag follows the test.)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

Z95 = 1.959963984540054
ALPHA = 0.05


@dataclass(frozen=True)
class Lift:
    treatment_n: int
    treatment_conversions: int
    holdout_n: int
    holdout_conversions: int
    treatment_rate: float | None
    holdout_rate: float | None
    absolute_lift: float | None  # treatment_rate − holdout_rate
    relative_lift: float | None  # absolute / holdout_rate (None when the holdout rate is 0)
    ci_low: float | None  # 95% Wald interval of the absolute lift
    ci_high: float | None
    z: float | None
    p_value: float | None
    significant: bool
    reliable: bool  # every cell ≥ 5: the normal approximation is reasonable

    def as_dict(self) -> dict:
        return asdict(self)


def lift(*, treatment_n: int, treatment_conversions: int, holdout_n: int, holdout_conversions: int) -> Lift:
    for n, x in ((treatment_n, treatment_conversions), (holdout_n, holdout_conversions)):
        if n < 0 or x < 0 or x > n:
            raise ValueError("conversions must be between 0 and the group size")
    p1 = treatment_conversions / treatment_n if treatment_n else None
    p0 = holdout_conversions / holdout_n if holdout_n else None
    if p1 is None or p0 is None:
        return Lift(treatment_n, treatment_conversions, holdout_n, holdout_conversions, p1, p0,
                    None, None, None, None, None, None, False, False)
    diff = p1 - p0
    relative = diff / p0 if p0 > 0 else None
    se = math.sqrt(p1 * (1 - p1) / treatment_n + p0 * (1 - p0) / holdout_n)
    pooled = (treatment_conversions + holdout_conversions) / (treatment_n + holdout_n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / treatment_n + 1 / holdout_n))
    if se_pooled == 0:  # both groups all-converted or none converted: no evidence either way
        z, p_value = 0.0, 1.0
    else:
        z = diff / se_pooled
        p_value = math.erfc(abs(z) / math.sqrt(2))
    reliable = min(treatment_conversions, treatment_n - treatment_conversions,
                   holdout_conversions, holdout_n - holdout_conversions) >= 5
    return Lift(treatment_n, treatment_conversions, holdout_n, holdout_conversions, p1, p0, diff, relative,
                diff - Z95 * se, diff + Z95 * se, z, p_value, p_value < ALPHA, reliable)
