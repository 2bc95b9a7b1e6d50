"""A surrogate for averaged targets: one model per component metric, then the weighted mean.

A mean of per-domain losses is a flatter function of the mixture than each
domain's loss (gains on one domain offset losses on another), so a model of the
mean has less signal to learn from than models of its parts. On the 30-run demo
store, 5-fold CV Spearman of `mean:all-domains` (mean of 5 fold seeds) rose from
0.599 (one GP on the mean) to 0.702 (mean of seven per-domain GPs), MAE 0.166 ->
0.153 (`benchmarks/average_target.py`, figures in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone

from ..errors import FitError
from .base import EstimatorNotFittedError, check_target, check_weights
from .gp import GPSurrogate
from .registry import get_estimator


class MetricAverage(RegressorMixin, BaseEstimator):
    """Weighted mean of one clone of ``estimator`` per column of a 2-D target.

    ``fit(W, Y)`` takes Y of shape (n_runs, n_metrics) (a 1-D y is one metric; NaN marks a component a run did not
    measure, e.g. an earlier sweep's run on a domain added since: each component fits on the runs that measured it,
    and the runs that measured all must be enough for the component model); ``predict(W)`` returns
    ``sum_j weights_j * model_j(W) / sum(weights)``. The std adds the component
    stds with the same weights, i.e. assumes fully correlated errors, which is
    an upper bound (domain losses of one run do move together).

    Parameters
    ----------
    estimator : estimator or str or None
        The component model, cloned once per metric; None is ``GPSurrogate()``.
        A registry name (``"default"``) is built with :func:`get_estimator`.
    weights : array-like of shape (n_metrics,) or None
        Non-negative weights of the components; None weighs them equally.
    random_state : int
        Given to every component that has a ``random_state``.
    noise_variance : float, array-like of shape (n_metrics,), or None
        Measured seed-noise variance of each component metric (one number: the
        same for all), given to every component as its ``noise_variance``;
        None lets each component fit its own.

    Attributes
    ----------
    estimators_ : list of fitted estimators, one per component
    weights_ : ndarray of shape (n_metrics,), summing to 1
    """

    def __init__(self, estimator=None, weights=None, random_state: int = 0, noise_variance=None):
        self.estimator = estimator
        self.weights = weights
        self.random_state = random_state
        self.noise_variance = noise_variance

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # rows are mixture weights
        return tags

    def _component(self):
        """An unfitted copy of the component estimator."""
        if self.estimator is None:
            return GPSurrogate()
        if isinstance(self.estimator, str):
            return get_estimator(self.estimator)
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict")):
            raise FitError(f"MetricAverage's estimator must be an estimator with fit/predict, a registry name, or None. "
                           f"Got {self.estimator!r}. Pass e.g. GPSurrogate().")
        return clone(self.estimator)

    @property
    def min_runs(self) -> int:
        return getattr(self._component(), "min_runs", 2)

    def min_rows(self, n_domains: int) -> int:
        comp = self._component()
        return comp.min_rows(n_domains) if hasattr(comp, "min_rows") else self.min_runs

    def _w(self, m: int) -> np.ndarray:
        w = np.ones(m) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (m,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise FitError(f"MetricAverage weights must be {m} non-negative numbers with a positive sum. Got {self.weights}. "
                           "Pass one weight per column of Y.")
        return w / w.sum()

    def _noise(self, m: int) -> list:
        if self.noise_variance is None:
            return [None] * m
        nv = np.broadcast_to(np.asarray(self.noise_variance, dtype=float), (m,)) if np.ndim(self.noise_variance) == 0 \
            else np.asarray(self.noise_variance, dtype=float)
        if nv.shape != (m,) or not all(math.isfinite(v) and v >= 0 for v in nv):
            raise FitError(f"MetricAverage noise_variance must be None, one variance >= 0, or {m} of them (one per column of Y). "
                           f"Got {self.noise_variance!r}.")
        return [float(v) for v in nv]

    def combine(self, Y) -> np.ndarray:
        """The averaged target the components make up, shape (n_runs,)."""
        Y = np.asarray(Y, dtype=float)
        Y = Y[:, None] if Y.ndim == 1 else Y
        return Y @ self._w(Y.shape[1])

    def fit(self, W, Y) -> "MetricAverage":
        """Fit one component per column of ``Y`` (n_runs, n_metrics) on mixtures ``W`` (n_runs, n_domains); returns self."""
        W = check_weights(W)
        if Y is None:
            raise FitError("MetricAverage requires y to be passed, but the target y is None. Pass one column per component metric.")
        Y = np.asarray(Y, dtype=float)
        Y = Y[:, None] if Y.ndim == 1 else Y
        if Y.ndim != 2 or Y.shape[0] != len(W):
            raise FitError(f"MetricAverage needs Y of shape (n_runs, n_metrics) = ({len(W)}, m). Got {Y.shape}. "
                           "Pass one column per component metric.")
        self.weights_ = self._w(Y.shape[1])
        measured = ~np.isnan(Y)  # NaN: a run that did not measure that component (an earlier sweep's, before a domain came)
        complete = measured.all(axis=1)
        check_target(self.combine(Y[complete]), int(complete.sum()), estimator="MetricAverage")  # infinities, too few runs
        self.estimators_ = []
        for j, nv in enumerate(self._noise(Y.shape[1])):
            model = self._component()
            params = model.get_params()
            if "random_state" in params:
                model.set_params(random_state=self.random_state)
            if nv is not None:
                if "noise_variance" not in params:
                    raise FitError(f"MetricAverage got noise_variance, but {type(model).__name__} has no noise_variance "
                                   "parameter. Use GPSurrogate() or leave noise_variance=None.")
                model.set_params(noise_variance=nv)
            self.estimators_.append(model.fit(W[measured[:, j]], Y[measured[:, j], j]))
        self.n_features_in_ = W.shape[1]
        return self

    def predict(self, W, return_std: bool = False):
        """Weighted mean (n,) of the components' predictions at mixtures ``W`` (n, n_domains), and its std."""
        if not hasattr(self, "estimators_"):
            raise EstimatorNotFittedError("This MetricAverage is not fitted yet. Call fit(W, Y) first.")
        outs = [m.predict(W, return_std=True) for m in self.estimators_]
        mean = np.stack([o[0] for o in outs], axis=1) @ self.weights_
        if not return_std:
            return mean
        return mean, np.stack([o[1] for o in outs], axis=1) @ self.weights_
