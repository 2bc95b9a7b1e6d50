"""The contract every scale-aware estimator shares: inputs ``X = [W | model_params | tokens]`` and their checks.

``X`` has shape (n, n_domains + 2): the mixture's weights, then the model's (non-embedding) parameter count and the
training tokens of the measurement, as plain numbers (:func:`scale_inputs` builds it; :func:`split_inputs` checks it
and returns the weights and log10 scales). A scale column that is NaN for every training row (unknown) is inactive.
:class:`ScaleEstimator` is the base class of the surrogates in ``scale.py``, ``shift.py``, ``nested_law.py`` and
``annealing.py`` and of :class:`mixopt.projector.scale.ScaleProjector`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import FitError, MixtureError
from ..mixtures import as_float_array
from ..runs.record import check_scale_value
from .base import EstimatorNotFittedError, check_target, check_weights

N_SCALE = 2  # model_params, tokens


def check_positive(value, name: str, *, where: str) -> float:
    """A positive finite number (:func:`mixopt.runs.record.check_scale_value`'s rule), required here."""
    v = check_scale_value(value, name, where=where, error=FitError)
    if v is None:
        raise FitError(f"{name} must be a positive number. Got nothing for {where}. Write it as e.g. 1e9.")
    return v


def scale_inputs(W, model_params, tokens) -> np.ndarray:
    """``X = [W | model_params | tokens]`` (n, d + 2); scalars broadcast to every row."""
    W = np.asarray(W, dtype=float)
    n = len(W)
    mp = np.broadcast_to(np.asarray(np.nan if model_params is None else model_params, dtype=float), (n,))
    tk = np.broadcast_to(np.asarray(np.nan if tokens is None else tokens, dtype=float), (n,))
    return np.column_stack([W, mp, tk])


def split_inputs(X, *, where: str = "X") -> tuple[np.ndarray, np.ndarray]:
    """``(W, S)`` from ``X``: weights validated, ``S`` (n, 2) = log10 of (model_params, tokens), NaN when unknown."""
    X = as_float_array(X, where=where, what="[W | model_params | tokens] rows")
    if X.ndim != 2:
        raise MixtureError(f"{where} must be 2-D with shape (n, n_domains + 2). Got shape {X.shape}. Reshape your data: "
                           "one row is X.reshape(1, -1); build rows with scale_inputs(W, model_params, tokens).")
    if X.shape[1] < N_SCALE + 1:
        raise MixtureError(f"{where} has {X.shape[1]} feature(s) (shape={X.shape}) while a minimum of {N_SCALE + 1} is required: "
                           "shape (n, n_domains + 2), weights then model_params, tokens. Build it with scale_inputs(W, model_params, tokens).")
    W = check_weights(X[:, :-N_SCALE], where=where)
    raw = X[:, -N_SCALE:]
    bad = np.isfinite(raw) & (raw <= 0) | np.isinf(raw)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise FitError(f"{('model_params', 'tokens')[c]} must be positive and finite. Got {raw[r, c]:g} in row {r} of {where}. "
                       "Fix the run's scale or leave it unknown (NaN).")
    with np.errstate(divide="ignore", invalid="ignore"):
        return W, np.log10(raw)


class ScaleEstimator(RegressorMixin, BaseEstimator):
    """The base of every scale-aware estimator: shared checks of the scale columns, the reference scale, the fitted state.

    Subclasses: ``ScaleGP`` (``scale.py``), ``ShiftGP`` (``shift.py``), ``NestedMixingLaw`` (``nested_law.py``),
    ``AnnealingLaw`` (``annealing.py``) and the projector's ``ScaleProjector`` (``mixopt/projector/scale.py``).
    """

    name = "scale"
    min_runs = 4
    extrapolates_down = True  # whether a target below the smallest trained scale is allowed

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # mixture weights and positive scales
        return tags

    def _check_fit(self, X, y):
        W, S = split_inputs(X)
        y = check_target(y, len(W), estimator=self.name)
        partial = [j for j in range(N_SCALE) if 0 < np.isnan(S[:, j]).sum() < len(S)]
        if partial:
            j = partial[0]
            raise FitError(f"{('model_params', 'tokens')[j]} is known for some runs and unknown for {int(np.isnan(S[:, j]).sum())}. "
                           "Give every run its scale (runs import --model-params/--tokens) or none.")
        self.active_ = np.array([np.isfinite(S[:, j]).all() and np.ptp(S[:, j]) > 0 for j in range(N_SCALE)])
        self.ref_ = np.array([np.nanmin(S[:, j]) if np.isfinite(S[:, j]).any() else 0.0 for j in range(N_SCALE)])
        self.known_ = np.array([np.isfinite(S[:, j]).all() for j in range(N_SCALE)])
        self.trained_scales_ = np.unique(np.nan_to_num(S, nan=-1.0), axis=0)
        self.n_features_in_ = W.shape[1] + N_SCALE
        return W, S, y

    def _u(self, S) -> np.ndarray:
        """Scale in decades from the smallest trained scale; an unknown scale counts as trained (0)."""
        U = S - self.ref_
        return np.where(np.isfinite(U), U, 0.0)

    def check_target_scale(self, model_params: float | None = None, tokens: float | None = None) -> None:
        """Raise ``FitError`` when the model cannot speak for this target scale (call before predicting there).

        A scale dimension the runs never varied cannot be extrapolated in level:
        a one-scale store transfers rank only. A model that cannot extrapolate
        downwards (``extrapolates_down = False``) refuses a target below its smallest trained scale.
        """
        if not hasattr(self, "n_features_in_"):
            raise EstimatorNotFittedError(f"This {self.name} estimator is not fitted yet. Call fit(X, y) first.")
        for j, (name, flag, value) in enumerate([("model_params", "--model-params", model_params), ("tokens", "--tokens", tokens)]):
            if value is None:
                continue
            v = check_positive(value, name, where=flag)
            trained = sorted({float(10 ** s[j]) for s in self.trained_scales_ if s[j] != -1.0})
            if not self.active_[j] and not (trained and np.isclose(v, trained[0])):
                at = f"{trained[0]:g}" if trained else "an unknown value"
                raise FitError(f"{flag} {v:g} asks for another scale, but every run has {name} = {at}; one scale transfers "
                               f"the mixtures' rank, not their level. Drop {flag} (the ranking holds at any scale) or add runs at a second {name}.")
            if self.active_[j] and v < trained[0] and not self.extrapolates_down:
                raise FitError(f"{flag} {v:g} is below the smallest trained {name} ({trained[0]:g}), where {self.name} cannot "
                               f"interpolate. Ask for {trained[0]:g} or more, or use scale-gp.")

    @staticmethod
    def _check_outputs(return_std: bool, return_cov: bool) -> None:
        if return_std and return_cov:
            raise FitError("predict returns either the std or the covariance. Got return_std=True and return_cov=True. Ask for one.")

    def _check_predict(self, X):
        if not hasattr(self, "n_features_in_"):
            raise EstimatorNotFittedError(f"This {self.name} estimator is not fitted yet. Call fit(X, y) first.")
        try:
            shape = np.shape(X)
        except (TypeError, ValueError):  # ragged or odd input: split_inputs says what is wrong
            shape = ()
        if len(shape) == 2 and shape[1] != self.n_features_in_:
            raise MixtureError(f"X has {shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input: "
                               f"{self.n_features_in_ - N_SCALE} weight columns, model_params, tokens. Pass the same domains in the same order.")
        return split_inputs(X)
