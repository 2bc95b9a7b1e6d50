"""DSIR: importance weights from hashed n-gram models (Xie et al. 2023).

Two bag-of-n-grams models over ``n_buckets`` hashed buckets are fitted, one on
the target documents and one on the raw (pool) documents, each with add-alpha
smoothing. A document x scores

    score(x) = sum_b counts_b(x) * (log p_target[b] - log p_raw[b]),

its log importance weight. :func:`gumbel_top_k` draws a sample without
replacement proportional to ``exp(score)`` (the Gumbel-max trick), DSIR's
resampling step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ConfigError, DataError, NotFittedError
from .ngrams import HashedNgrams, NgramCounts


class DSIR(BaseEstimator):
    """Hashed n-gram importance weights, scikit-learn style.

    Parameters
    ----------
    n_buckets : int, default 10_000
    alpha : float, default 1.0
        Add-alpha smoothing of both bucket distributions.

    Attributes
    ----------
    log_ratio_ : ndarray (n_buckets,)
        ``log p_target - log p_raw`` per bucket.
    """

    def __init__(self, n_buckets: int = 10_000, alpha: float = 1.0):
        self.n_buckets = n_buckets
        self.alpha = alpha

    def featurizer(self) -> HashedNgrams:
        return HashedNgrams(self.n_buckets)

    def fit(self, target: NgramCounts, raw: NgramCounts) -> DSIR:
        """Fit both n-gram models from counts made by :meth:`featurizer`."""
        if not self.alpha > 0:
            raise ConfigError(f"DSIR alpha must be > 0. Got {self.alpha}. Use 1.0 (add-one smoothing).")
        for what, c in (("target", target), ("raw", raw)):
            if c.n_buckets != self.n_buckets:
                raise ConfigError(f"DSIR was built with {self.n_buckets} buckets but the {what} counts have {c.n_buckets}. "
                                  "Count with DSIR.featurizer().")
            if c.docs.shape[0] == 0:
                raise DataError(f"The {what} documents hold no words to count. Give DSIR non-empty text.")
        self.log_ratio_ = _log_dist(target.totals(), self.alpha) - _log_dist(raw.totals(), self.alpha)
        return self

    def score(self, counts: NgramCounts) -> np.ndarray:
        """(n_docs,) log importance weight of each document (0 for an empty document)."""
        if not hasattr(self, "log_ratio_"):
            raise NotFittedError("DSIR is not fitted. Call fit(target_counts, raw_counts) first.")
        return counts.dot(self.log_ratio_)

    def fit_score(self, target_texts: Sequence[str], pool_texts: Sequence[str],
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Hash both sets once, fit on them (raw = the pool) and score the pool."""
        feat = self.featurizer()
        target = feat.counts(target_texts, progress)
        pool = feat.counts(pool_texts, progress)
        return self.fit(target, pool).score(pool)


def _log_dist(counts: np.ndarray, alpha: float) -> np.ndarray:
    smoothed = counts + alpha
    return np.log(smoothed) - np.log(smoothed.sum())


def gumbel_top_k(log_weights: np.ndarray, sizes: np.ndarray, budget: float, *, seed: int = 0) -> np.ndarray:
    """Sample items without replacement with probability proportional to ``exp(log_weights)``, until ``budget``.

    Items are taken in decreasing order of ``log_weights + Gumbel(0, 1)`` noise
    (the Gumbel-top-k trick) while their ``sizes`` (e.g. tokens) sum to at most
    ``budget``; the first item is always taken. Returns a boolean mask (n,).
    Non-finite log weights (e.g. empty documents) are never taken.
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    if log_weights.shape != sizes.shape:
        raise ConfigError(f"gumbel_top_k needs one size per weight. Got {log_weights.shape} weights and {sizes.shape} sizes.")
    keys = log_weights + np.random.default_rng(seed).gumbel(size=log_weights.shape)
    return top_by_budget(keys, sizes, budget)


def top_by_budget(keys: np.ndarray, sizes: np.ndarray, budget: float) -> np.ndarray:
    """Mask of the highest-``keys`` items whose ``sizes`` fit in ``budget`` (at least one); NaN/-inf keys never."""
    keys = np.asarray(keys, dtype=np.float64)
    ok = np.isfinite(keys)
    order = np.argsort(-np.where(ok, keys, -np.inf), kind="stable")
    order = order[ok[order]]
    mask = np.zeros(keys.shape[0], dtype=bool)
    if order.size == 0:
        return mask
    used = np.cumsum(np.asarray(sizes, dtype=np.float64)[order])
    n = max(1, int(np.searchsorted(used, budget, side="right")))
    mask[order[:n]] = True
    return mask
