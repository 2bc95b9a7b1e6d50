"""Input validation and the shared estimator contract for surrogates.

Every surrogate maps mixture weights ``W`` (n_runs, n_domains), rows on the
simplex, to a scalar metric ``y`` (n_runs,), usually a validation loss. They
follow scikit-learn's conventions: ``__init__`` only stores keyword arguments,
``fit`` validates and sets attributes ending in ``_``, ``predict`` checks that
the model is fitted, and ``predict(W, return_std=True)`` returns ``(mean, std)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from ..errors import FitError, MixtureError, NotFittedError
from ..mixtures import ROW_SUM_TOLERANCE, as_float_array, check_simplex_rows

class EstimatorNotFittedError(NotFittedError, SklearnNotFittedError):
    """``predict`` before ``fit``: a :class:`mixopt.errors.NotFittedError` that scikit-learn also recognises."""


def check_weights(W, *, where: str = "W") -> np.ndarray:
    """Mixture rows given to an estimator: :func:`mixopt.mixtures.check_simplex_rows` at ``ROW_SUM_TOLERANCE``."""
    return check_simplex_rows(W, where=where, tolerance=ROW_SUM_TOLERANCE)


def check_target(y, n_rows: int, *, estimator: str) -> np.ndarray:
    """Validate a 1-D finite, non-constant target of length ``n_rows`` (at least 2 values)."""
    if y is None:
        raise FitError(f"{estimator} requires y to be passed, but the target y is None. Pass one target value per mixture.")
    y = as_float_array(y, where=f"the target of {estimator}", what="target values", error=FitError)
    if y.ndim != 1:
        raise FitError(f"y must be 1-D with shape (n_runs,). Got shape {y.shape}. Pass one metric column, e.g. y.ravel().")
    if len(y) != n_rows:
        raise FitError(f"y has {len(y)} values, but W has {n_rows} rows. Pass one target value per mixture.")
    nan = ~np.isfinite(y)
    if nan.any():
        idx = np.flatnonzero(nan)
        raise FitError(
            f"The target must be finite (no NaN or inf). Got {y[idx[0]]} at rows {idx[:5].tolist()} ({len(idx)} in all) for {estimator}. "
            "Drop failed runs before fitting."
        )
    if len(y) < 2:
        raise FitError(f"{estimator} needs at least 2 runs to learn from. Got n_samples={len(y)}. Run more of the sweep before fitting.")
    if np.ptp(y) <= 1e-12 * max(1.0, abs(float(y[0]))):
        raise FitError(f"The target is constant ({y[0]:.6g} in every row), so {estimator} has nothing to learn. Check the metric name.")
    return y


class Surrogate(RegressorMixin, BaseEstimator):
    """Base class: validation, standardisation of y, fitted checks and the ``return_std`` API.

    Subclasses implement ``_fit(W, y)`` and ``_predict(W, return_std)``, set
    ``min_runs`` and may override :meth:`min_rows` when the minimum depends on
    the number of domains. ``fit`` sets ``n_features_in_``, ``y_mean_`` and
    ``y_scale_`` (the target's mean and std) before calling ``_fit``. A subclass
    whose rows are not plain mixtures overrides :meth:`_check_X` and
    :meth:`_n_domains`. Errors name the estimator by its class name.
    """

    #: fewest runs ``fit`` accepts (see :meth:`min_rows`)
    min_runs: int = 2

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # rows are mixture weights
        return tags

    def min_rows(self, n_domains: int) -> int:
        """Fewest runs this estimator can be fitted on for ``n_domains`` columns."""
        return self.min_runs

    def _check_X(self, X) -> np.ndarray:
        """Validated rows, float64 of shape (n, n_features); mixtures on the simplex here."""
        return check_weights(X)

    def _n_domains(self, X: np.ndarray) -> int:
        """Number of domains behind validated rows ``X``."""
        return X.shape[1]

    def fit(self, W, y):
        """Fit on mixtures ``W`` (n_runs, n_domains) and targets ``y`` (n_runs,); returns self."""
        W = self._check_X(W)
        name = type(self).__name__
        need = self.min_rows(self._n_domains(W))
        if W.shape[0] < need:
            raise FitError(
                f"{name} needs at least {need} runs for {self._n_domains(W)} domains. Got n_samples={W.shape[0]}. "
                "Add runs or use a simpler estimator (see mixopt.surrogates.ESTIMATORS and their min_runs)."
            )
        y = check_target(y, W.shape[0], estimator=name)
        self.n_features_in_ = W.shape[1]
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std())
        self._fit(W, y)
        return self

    def predict(self, W, return_std: bool = False):
        """Predict the metric for mixtures ``W`` (n, n_domains).

        Returns
        -------
        mean : ndarray of shape (n,)
        std : ndarray of shape (n,), only when ``return_std`` is true; the
            predictive standard deviation (finite, > 0).
        """
        name = type(self).__name__
        if not hasattr(self, "n_features_in_"):
            raise EstimatorNotFittedError(f"This {name} estimator is not fitted yet. Call fit(W, y) before predict.")
        try:
            shape = np.asarray(W).shape
        except (TypeError, ValueError):  # ragged or odd input: _check_X says what is wrong
            shape = ()
        if len(shape) == 2 and shape[1] != self.n_features_in_:
            raise MixtureError(
                f"X has {shape[1]} features, but {name} is expecting {self.n_features_in_} features as input. "
                "Pass the same domains in the same (sorted) order as at fit time."
            )
        W = self._check_X(W)
        mean, std = self._predict(W, return_std)
        if not return_std:
            return mean
        return mean, np.maximum(std, 1e-12 * max(self.y_scale_, 1e-12))

    def _fit(self, W: np.ndarray, y: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(self, W: np.ndarray, return_std: bool):  # pragma: no cover - abstract
        raise NotImplementedError


def log_features(W: np.ndarray, eps: float) -> np.ndarray:
    """Compositional features ``log(w + eps)``, shape (n, n_domains)."""
    return np.log(W + eps)
