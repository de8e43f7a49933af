"""Clustering (pure: arrays in, arrays out): k chosen by silhouette over a range on a
sample, k-means by default (fitted on at most 100k customers) or a Gaussian mixture, a
2-D projection for the cluster map, and the features that distinguish each cluster."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture

SILHOUETTE_SAMPLE = 4000
SILHOUETTE_TOLERANCE = 0.01
FIT_SAMPLE_FOR_K = 20_000
GMM_FIT_SAMPLE = 50_000
PROJECTION_SAMPLE = 1500
PREDICT_CHUNK = 100_000
# k-means fits full batch (Lloyd) on at most this many customers and labels the rest: on
# one-hot traits mini-batches settle in poorer optima (planted personas: ARI 0.59 against
# 0.95 with Lloyd on 3,000 customers; 0.74 against a 0.99 ceiling with mini-batches over
# 1M customers, bench/RESULTS.md), and 100k customers pin the centres as well as 1M do.
KMEANS_FIT_SAMPLE = 100_000


def _sample(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size, replace=False))


def _model(algorithm: str, k: int, seed: int):
    if algorithm == "gmm":
        return GaussianMixture(n_components=k, covariance_type="diag", random_state=seed, reg_covar=1e-4, n_init=2)
    return KMeans(n_clusters=k, random_state=seed, n_init=10)


def choose_k(matrix: np.ndarray, ks: range, *, algorithm: str, seed: int) -> tuple[int, dict[int, float]]:
    """The k of the range with the best silhouette (on a sample), and every k's score."""
    rng = np.random.default_rng(seed)
    fit_rows = matrix[_sample(rng, len(matrix), FIT_SAMPLE_FOR_K)]
    scored = _sample(rng, len(fit_rows), SILHOUETTE_SAMPLE)
    scores = {}
    for k in ks:
        if k >= len(fit_rows):
            break
        labels = _model(algorithm, k, seed).fit(fit_rows).predict(fit_rows[scored])
        if len(set(labels.tolist())) < 2:
            scores[k] = -1.0
            continue
        scores[k] = float(silhouette_score(fit_rows[scored], labels, random_state=seed))
    top = max(scores.values())
    # Within 1% of the best: the fewest clusters (silhouettes of neighbouring k differ by
    # noise; a persona split in two is the usual cost of the larger k).
    best = min(k for k, score in scores.items() if score >= top - abs(top) * SILHOUETTE_TOLERANCE)
    return best, scores


@dataclass
class Fitted:
    labels: np.ndarray
    model: object
    rank: np.ndarray  # the model's cluster number → the run's (largest first)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Clusters of customers the run did not see (a nightly re-assignment)."""
        if not len(matrix):
            return np.array([], dtype=np.int16)
        return np.concatenate([self.rank[self.model.predict(matrix[i:i + PREDICT_CHUNK])]
                               for i in range(0, len(matrix), PREDICT_CHUNK)])


def fit(matrix: np.ndarray, k: int, *, algorithm: str, seed: int) -> Fitted:
    """Fit on a sample of the customers (all of them up to 100k for k-means, 50k for a
    mixture), label every customer in chunks, clusters renumbered largest first so a rerun
    reads the same."""
    rng = np.random.default_rng(seed)
    model = _model(algorithm, k, seed)
    model.fit(matrix[_sample(rng, len(matrix), GMM_FIT_SAMPLE if algorithm == "gmm" else KMEANS_FIT_SAMPLE)])
    labels = np.concatenate([model.predict(matrix[i:i + PREDICT_CHUNK]) for i in range(0, len(matrix), PREDICT_CHUNK)]) \
        if len(matrix) else np.array([], dtype=int)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    rank = np.empty(k, dtype=np.int16)
    rank[order] = np.arange(k)
    return Fitted(labels=rank[labels], model=model, rank=rank)


def projection(matrix: np.ndarray, labels: np.ndarray, *, seed: int) -> list[list[float]]:
    """[x, y, cluster] of a sample: the first two principal components, for the map."""
    rng = np.random.default_rng(seed)
    rows = _sample(rng, len(matrix), PROJECTION_SAMPLE)
    if len(rows) < 3:
        return []
    points = PCA(n_components=2, random_state=seed).fit_transform(matrix[rows])
    return [[round(float(x), 3), round(float(y), 3), int(c)] for (x, y), c in zip(points, labels[rows])]


class Moments:
    """Per cluster and feature: how many values are known, their sum and sum of squares —
    added a block at a time, so the lifts of a million customers need no matrix of them."""

    def __init__(self, k: int, width: int):
        self.count = np.zeros((k, width))
        self.total = np.zeros((k, width))
        self.squares = np.zeros((k, width))

    @classmethod
    def of(cls, values: np.ndarray, labels: np.ndarray, k: int) -> Moments:
        moments = cls(k, values.shape[1])
        moments.add(values, labels)
        return moments

    def add(self, values: np.ndarray, labels: np.ndarray) -> None:
        known = ~np.isnan(values)
        filled = np.where(known, values, 0.0)
        for cluster in np.unique(labels).tolist():
            rows = labels == cluster
            self.count[cluster] += known[rows].sum(axis=0)
            self.total[cluster] += filled[rows].sum(axis=0)
            self.squares[cluster] += (filled[rows] ** 2).sum(axis=0)

    @staticmethod
    def _mean_std(count, total, squares) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
            variance = np.where(count > 0, squares / count - mean ** 2, np.nan)
        return mean, np.sqrt(np.maximum(variance, 0))

    def base(self) -> tuple[np.ndarray, np.ndarray]:
        return self._mean_std(self.count.sum(axis=0), self.total.sum(axis=0), self.squares.sum(axis=0))

    def cluster_mean(self, cluster: int) -> np.ndarray:
        return self._mean_std(self.count[cluster], self.total[cluster], self.squares[cluster])[0]


def lifts(moments: Moments, names: list[str], *, top: int = 8) -> list[list[dict]]:
    """Per cluster, the features that set it apart: its mean against the base's, the lift
    (ratio, where the base mean is positive) and the standardised difference, strongest first."""
    base_mean, base_std = moments.base()
    base_std[~(base_std > 0)] = 1.0
    out = []
    for cluster in range(len(moments.count)):
        mean = moments.cluster_mean(cluster)
        z = (mean - base_mean) / base_std
        order = [i for i in np.argsort(-np.abs(np.nan_to_num(z))) if not np.isnan(z[i])][:top]
        out.append([{"feature": names[i], "mean": _round(mean[i]), "base": _round(base_mean[i]),
                     "lift": _round(mean[i] / base_mean[i]) if base_mean[i] > 0 else None, "z": _round(z[i])}
                    for i in order])
    return out


def _round(value) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 4)
