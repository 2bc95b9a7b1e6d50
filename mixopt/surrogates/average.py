"""A surrogate for averaged targets: one model per component metric, then the weighted mean.

A mean of per-domain losses is a flatter function of the mixture than each
domain's loss (gains on one domain offset losses on another), so a model of the
mean has less signal to learn from than models of its parts. On the 30-run demo
store, 5-fold CV Spearman of `mean:all-domains` (mean of 5 fold seeds) rose from
0.599 (one GP on the mean) to 0.702 (mean of seven per-domain GPs), MAE 0.166 ->
0.153 (`benchmarks/average_target.py`, figures in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import FitError, NotFittedError
from .base import check_weights


class MetricAverage(RegressorMixin, BaseEstimator):
    """Weighted mean of one ``estimator`` per column of a 2-D target.

    ``fit(W, Y)`` takes Y of shape (n_runs, n_metrics); ``predict(W)`` returns
    ``sum_j weights_j * model_j(W) / sum(weights)``. The std adds the component
    stds with the same weights, i.e. assumes fully correlated errors, which is
    an upper bound (domain losses of one run do move together).
    """

    name = "metric-average"

    def __init__(self, estimator: str = "default", weights=None, random_state: int = 0):
        self.estimator = estimator
        self.weights = weights
        self.random_state = random_state

    @property
    def min_runs(self) -> int:
        from .registry import ESTIMATORS

        return getattr(ESTIMATORS.get(self.estimator), "min_runs", 2)

    def min_rows(self, n_domains: int) -> int:
        from .registry import get_estimator

        return get_estimator(self.estimator).min_rows(n_domains)

    def _w(self, m: int) -> np.ndarray:
        w = np.ones(m) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (m,) or np.any(w < 0) or w.sum() <= 0:
            raise FitError(f"MetricAverage weights must be {m} non-negative numbers with a positive sum. Got {self.weights}.")
        return w / w.sum()

    def combine(self, Y) -> np.ndarray:
        """The averaged target the components make up, shape (n_runs,)."""
        Y = np.asarray(Y, dtype=float)
        return Y @ self._w(Y.shape[1])

    def fit(self, W, Y) -> "MetricAverage":
        from .registry import get_estimator

        W = check_weights(W)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim != 2 or Y.shape[0] != len(W):
            raise FitError(f"MetricAverage needs Y of shape (n_runs, n_metrics) = ({len(W)}, m). Got {Y.shape}. Pass one column per component metric.")
        self.weights_ = self._w(Y.shape[1])
        self.models_ = []
        for j in range(Y.shape[1]):
            model = get_estimator(self.estimator)
            if "random_state" in model.get_params():
                model.set_params(random_state=self.random_state)
            self.models_.append(model.fit(W, Y[:, j]))
        self.n_features_in_ = W.shape[1]
        return self

    def predict(self, W, return_std: bool = False):
        if not hasattr(self, "models_"):
            raise NotFittedError("This MetricAverage is not fitted yet. Call fit(W, Y) first.")
        outs = [m.predict(W, return_std=True) for m in self.models_]
        mean = np.stack([o[0] for o in outs], axis=1) @ self.weights_
        if not return_std:
            return mean
        return mean, np.stack([o[1] for o in outs], axis=1) @ self.weights_
