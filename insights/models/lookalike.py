"""Lookalikes (pure): who resembles a seed segment. A classifier learns seed against
everyone else from the feature catalogue (positive-unlabelled: the rest are not known
to differ, only not in the seed); a quarter of the seed is held out, so the precision of
the top N — N the size of that held-out part — and its lift over the base rate say, before
anything is saved, how well the ranking finds seed-like customers it never saw. Pure but
for reading its rows from a spilled `FeatureTable`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from insights.table import FeatureTable, draw

HOLDOUT = 0.25
NEGATIVE_SAMPLE = 200_000


@dataclass
class Lookalikes:
    scores: np.ndarray  # per row, 0..1 (seed-likeness)
    training: np.ndarray  # rows of the seed the model learnt from
    metrics: dict


def fit_and_score(table: FeatureTable, seed_mask: np.ndarray, *, seed: int) -> Lookalikes:
    """Learn the seed (less its held-out part) against a sample of the rest from the
    table's rows, then score every row a block at a time."""
    rng = np.random.default_rng(seed)
    seed_rows = np.flatnonzero(seed_mask)
    held_out = rng.random(len(seed_rows)) < HOLDOUT
    training = np.zeros(len(table), dtype=bool)
    training[seed_rows[~held_out]] = True
    negatives = draw(np.flatnonzero(~seed_mask), NEGATIVE_SAMPLE, seed=seed)
    rows = np.sort(np.concatenate([seed_rows[~held_out], negatives]))
    model = HistGradientBoostingClassifier(random_state=seed, max_iter=200, class_weight="balanced").fit(
        table.rows(rows), training[rows].astype(int))
    scores = np.empty(len(table))
    for block, values in table.blocks():
        scores[block] = model.predict_proba(values)[:, 1]
    return Lookalikes(scores=scores, training=training, metrics=_held_out_quality(scores, seed_mask, training,
                                                                                  seed_rows[held_out]))


def _held_out_quality(scores, seed_mask, training, held_out_rows) -> dict:
    """Among every customer the model did not learn from, the top N (N = the held-out seed)."""
    candidates = np.flatnonzero(~training)
    n = len(held_out_rows)
    if not n or not len(candidates):
        return {"held_out": n, "candidates": int(len(candidates))}
    top = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
    hits = int(seed_mask[top].sum())
    base_rate = n / len(candidates)
    precision = hits / n
    return {"held_out": n, "candidates": int(len(candidates)), "precision_at_n": round(precision, 4),
            "base_rate": round(base_rate, 4), "lift": round(precision / base_rate, 2) if base_rate else None,
            "recall_at_n": round(hits / n, 4)}
