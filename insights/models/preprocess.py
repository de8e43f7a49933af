"""Features → the matrix a model fits: missing values imputed with the median plus an
indicator column (so "no data" is its own signal, never a silent 0), heavy-tailed counts,
amounts and days log-scaled, everything standardised. Columns weigh alike: weighting each
feature group alike instead let two time-of-week columns outvote sixty trait columns
(planted personas: ARI 0.56 against 0.93). Pure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_KINDS = {"count", "amount", "days"}


@dataclass
class Preprocessor:
    names: list[str]
    groups: list[str]
    log: np.ndarray  # bool per feature
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    indicators: np.ndarray  # feature columns that get a missing indicator

    @classmethod
    def fit(cls, features, values: np.ndarray) -> Preprocessor:
        log = np.array([f.kind in LOG_KINDS for f in features])
        medians = np.nan_to_num(np.nanmedian(np.where(np.isnan(values).all(axis=0), 0, values), axis=0)) \
            if len(values) else np.zeros(len(features))
        indicators = _distinct_indicators(values)
        filled = _impute(values, medians)
        scaled = _log(filled, log)
        means, scales = scaled.mean(axis=0), scaled.std(axis=0)
        scales[scales == 0] = 1.0
        return cls(names=[f.name for f in features], groups=[f.group for f in features], log=log, medians=medians,
                   means=means, scales=scales, indicators=indicators)

    def transform(self, values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values[:, self.indicators]).astype(np.float32)
        scaled = (_log(_impute(values, self.medians), self.log) - self.means) / self.scales
        # Indicators centred so a column that is never missing in a batch adds nothing.
        return np.hstack([scaled, missing - 0.5]).astype(np.float32)

    def impute(self, values: np.ndarray) -> np.ndarray:
        """Raw values with the medians in place of missing ones (for trees, which need no scaling)."""
        return _impute(values, self.medians)

    @property
    def output_names(self) -> list[str]:
        return self.names + [f"{self.names[i]} (missing)" for i in self.indicators]


def _distinct_indicators(values: np.ndarray) -> np.ndarray:
    """Columns that are sometimes missing, one per pattern of missingness: the thirteen
    time-of-week shares of a customer without recent events are missing together, and
    thirteen copies of "no recent events" would outweigh everything else."""
    if not len(values):
        return np.array([], dtype=int)
    missing = np.isnan(values)
    seen, kept = set(), []
    for column in np.flatnonzero(missing.any(axis=0)):
        pattern = np.packbits(missing[:, column]).tobytes()
        if pattern not in seen:
            seen.add(pattern)
            kept.append(column)
    return np.array(kept, dtype=int)


def _impute(values: np.ndarray, medians: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), medians, values)


def _log(values: np.ndarray, log: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[:, log] = np.sign(out[:, log]) * np.log1p(np.abs(out[:, log]))
    return out
