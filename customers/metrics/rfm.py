"""RFM: quintile scores and the 11 named groups.

Scores are 1–5 by the customer's position among the tenant's scored customers: with
`rank` the number of customers strictly worse, score = 1 + ⌊5 · rank / n⌋. Ties share a
score (the lowest of their range), so 60% of customers with no purchase all score 1 on
frequency instead of being split arbitrarily. Recency is better when smaller.

Groups come from R and FM = round-half-up((F + M) / 2), on this grid (rows R, columns FM):

    R\\FM  1               2                  3                  4          5
    5     new_customer    potential_loyalist potential_loyalist champions  champions
    4     promising       potential_loyalist potential_loyalist loyal      loyal
    3     about_to_sleep  about_to_sleep     needs_attention    loyal      loyal
    2     hibernating     hibernating        at_risk            at_risk    cannot_lose
    1     lost            hibernating        at_risk            at_risk    cannot_lose
"""

from __future__ import annotations

import numpy as np

GROUPS = ("champions", "loyal", "potential_loyalist", "new_customer", "promising", "needs_attention",
          "about_to_sleep", "at_risk", "cannot_lose", "hibernating", "lost")

_GRID = {  # R score → the group for FM = 1..5
    5: ("new_customer", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "needs_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cannot_lose"),
}


def quintile_scores(values: np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """Scores 1–5 for `values` (NaN → 0, meaning "not scored"); ties share a score."""
    values = np.asarray(values, dtype=float)
    scores = np.zeros(values.shape, dtype=np.int8)
    known = ~np.isnan(values)
    n = int(known.sum())
    if n == 0:
        return scores
    goodness = values[known] if higher_is_better else -values[known]
    worse = np.searchsorted(np.sort(goodness), goodness, side="left")  # customers strictly worse
    scores[known] = 1 + (5 * worse) // n
    return scores


def fm_score(f: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (np.asarray(f, dtype=np.int16) + np.asarray(m, dtype=np.int16) + 1) // 2


def group_of(r: int, fm: int) -> str:
    """The named group of one (R, FM) pair; "" when unscored."""
    if not (1 <= r <= 5 and 1 <= fm <= 5):
        return ""
    return _GRID[r][fm - 1]


def groups(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The named group per customer (object array of str; "" where R is unscored)."""
    fm = fm_score(f, m)
    table = np.array([[""] * 6] + [[""] + list(_GRID[score]) for score in range(1, 6)], dtype=object)
    r = np.asarray(r, dtype=np.int16)
    out = table[np.clip(r, 0, 5), np.clip(fm, 0, 5)]
    out[(r < 1) | (fm < 1)] = ""
    return out
