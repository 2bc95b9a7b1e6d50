"""Performance projection from OT distance (Kang et al. 2023, "projektor"), stage 1 and 2.

Stage 1 fits, on proxy runs at one data size, the loss of a mixture ``p`` (on
the simplex over ``K`` domains) as

.. math:: \\hat L(p) = \\Big(\\sum_i b_{2,i} p_i^2 + b_{1,i} p_i + b_0\\Big) OT(p)
          + \\sum_i c_{2,i} p_i^2 + c_{1,i} p_i + c_0

by ridge regression on the ``4K + 2`` features ``[OT p^2, OT p, OT, p^2, p, 1]``.
Stage 2 fits stage 1 at two sizes ``N0 < N1`` and extrapolates linearly in
``ln N`` with no further parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import FitError, MixtureError
from ..surrogates.base import EstimatorNotFittedError
from ..mixtures import SUM_TOLERANCE, check_simplex_rows
from .ot_distance import MixtureOT


def _design(W: np.ndarray, ot_values: np.ndarray) -> np.ndarray:
    """Features of shape ``(n, 4K + 2)``: ``[OT p^2, OT p, OT, p^2, p, 1]``."""
    o = ot_values[:, None]
    return np.hstack([o * W**2, o * W, o, W**2, W, np.ones_like(o)])


class OTProjector(RegressorMixin, BaseEstimator):
    """Stage-1 projector: loss as a quadratic-in-``p`` function of ``OT(p)``.

    Parameters
    ----------
    ot : MixtureOT
        Computes ``OT(p)`` (and its gradient) for the domains in ``ot.domains``.
    alpha : float, default 1e-3
        Ridge penalty on the standardised features (the intercept ``c0`` is not penalised).

    Attributes
    ----------
    coef_ : ndarray of shape (4K + 2,)
        ``[b2 (K), b1 (K), b0, c2 (K), c1 (K), c0]`` on the original scale.
    noise_var_ : float
        Residual variance ``sum r^2 / max(n - dof, 1)`` with ``dof`` the ridge's effective degrees of freedom.
    domains_ : list[str]
    n_samples_fit_ : int

    Notes
    -----
    ``predict(..., return_std=True)`` gives the predictive std of the Bayesian
    reading of ridge: ``sqrt(noise_var_ * (1 + x^T (X^T X + alpha I)^{-1} x))``
    on centred, standardised features.
    """

    def __init__(self, ot: MixtureOT | None = None, *, alpha: float = 1e-3):
        self.ot = ot
        self.alpha = alpha

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # rows are mixture weights
        return tags

    # ------------------------------------------------------------ fit / predict
    def fit(self, W, y, ot_values=None) -> "OTProjector":
        """Fit on mixtures ``W`` (shape ``(n, K)`` or list of dicts) and losses ``y`` (shape ``(n,)``).

        ``ot_values`` (shape ``(n,)``) skips the OT computation when given.
        """
        if not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise FitError(f"alpha must be a finite number >= 0. Got {self.alpha!r}. Try alpha=1e-3.")
        W = self._check_W(W, "fit")
        y = np.asarray(y, dtype=float)
        if y.shape != (W.shape[0],):
            raise FitError(f"y must have shape ({W.shape[0]},), one loss per mixture. Got shape {y.shape}. Pass one loss per row of W.")
        if not np.all(np.isfinite(y)):
            bad = np.flatnonzero(~np.isfinite(y))
            raise FitError(f"Losses must be finite. Got NaN/inf at rows {bad[:5].tolist()}. Drop failed runs before fitting.")
        if W.shape[0] < 3:
            raise FitError(f"OTProjector needs at least 3 runs to fit. Got n_samples={W.shape[0]}. Train more proxy runs.")
        o = self._ot_values(W, ot_values)
        X = _design(W, o)[:, :-1]
        self.x_mean_, self.x_scale_ = X.mean(axis=0), X.std(axis=0)
        self.x_scale_[self.x_scale_ < 1e-12] = 1.0
        Z = (X - self.x_mean_) / self.x_scale_
        y_mean = y.mean()
        A = Z.T @ Z + self.alpha * np.eye(Z.shape[1])
        A_inv = np.linalg.pinv(A, hermitian=True)
        beta = A_inv @ Z.T @ (y - y_mean)
        resid = y - y_mean - Z @ beta
        dof = 1.0 + float(np.trace(Z @ A_inv @ Z.T))
        self.noise_var_ = float(resid @ resid / max(W.shape[0] - dof, 1.0))
        self.cov_unscaled_ = A_inv
        self.n_samples_fit_ = W.shape[0]
        w = beta / self.x_scale_
        self.coef_ = np.concatenate([w, [y_mean - float(self.x_mean_ @ w)]])
        self.domains_ = list(self.ot.domains) if self.ot is not None else [f"d{i}" for i in range(W.shape[1])]
        self.n_features_in_ = W.shape[1]
        return self

    def predict(self, W, return_std: bool = False, ot_values=None):
        """Predicted loss of each mixture, shape ``(n,)``; with ``return_std`` also the predictive std."""
        self._check_fitted()
        W = self._check_W(W, "predict")
        o = self._ot_values(W, ot_values)
        X = _design(W, o)
        mean = X @ self.coef_
        if not return_std:
            return mean
        Z = (X[:, :-1] - self.x_mean_) / self.x_scale_
        var = self.noise_var_ * (1.0 + 1.0 / self.n_samples_fit_ + np.einsum("ij,jk,ik->i", Z, self.cov_unscaled_, Z))
        return mean, np.sqrt(np.maximum(var, 0.0))

    def predict_and_grad(self, p) -> tuple[float, np.ndarray]:
        """Predicted loss of one mixture ``p`` (shape ``(K,)``) and its gradient along the simplex.

        ``dL/dp_i = (2 b2_i p_i + b1_i) OT + A(p) dOT/dp_i + 2 c2_i p_i + c1_i`` with
        ``A(p) = sum_i b2_i p_i^2 + b1_i p_i + b0``; the mean over domains is
        subtracted (only simplex directions are defined).
        """
        self._check_fitted()
        if self.ot is None:
            raise FitError("predict_and_grad needs the MixtureOT given at construction (OTProjector(ot=...)). Got ot=None.")
        p = self._check_W(np.asarray(p, dtype=float)[None, :] if not isinstance(p, Mapping) else [p], "predict_and_grad")[0]
        k = p.shape[0]
        b2, b1, b0 = self.coef_[:k], self.coef_[k: 2 * k], self.coef_[2 * k]
        c2, c1, c0 = self.coef_[2 * k + 1: 3 * k + 1], self.coef_[3 * k + 1: 4 * k + 1], self.coef_[4 * k + 1]
        o, g_ot = self.ot.distance_and_grad(p)
        amp = float(b2 @ p**2 + b1 @ p + b0)
        value = amp * o + float(c2 @ p**2 + c1 @ p) + c0
        grad = (2 * b2 * p + b1) * o + amp * g_ot + 2 * c2 * p + c1
        return value, grad - grad.mean()

    # ------------------------------------------------------------ checks
    def _ot_values(self, W: np.ndarray, ot_values) -> np.ndarray:
        if ot_values is not None:
            o = np.asarray(ot_values, dtype=float)
            if o.shape != (W.shape[0],) or not np.all(np.isfinite(o)):
                raise FitError(f"ot_values must be {W.shape[0]} finite numbers, one per mixture. Got shape {o.shape}.")
            return o
        if self.ot is None:
            raise FitError("OT values are needed: pass ot_values=..., or construct OTProjector(ot=MixtureOT(...)).")
        return self.ot.distances(W)

    def _check_W(self, W, where: str) -> np.ndarray:
        domains = list(self.ot.domains) if self.ot is not None else None
        if isinstance(W, Sequence) and W and isinstance(W[0], Mapping):
            if domains is None:
                raise FitError("Mixtures given as dicts need the MixtureOT (for the domain order). Pass a 2-D array instead.")
            for r, m in enumerate(W):
                unknown = sorted(set(m) - set(domains))
                if unknown:
                    raise MixtureError(f"Row {r} names domains {unknown} that the projector's OT does not know "
                                       f"({domains}). Featurize those domains or drop them.")
            W = [[float(m.get(d, 0.0)) for d in domains] for m in W]
        if issparse(W):
            raise MixtureError(f"W is a sparse matrix in {where}; mixtures must be a dense array. Pass W.toarray().")
        W = np.asarray(W, dtype=float)
        if W.ndim != 2:
            raise FitError(f"W must be 2-D, shape (n_mixtures, n_domains). Got shape {W.shape} in {where}. "
                           "Use W.reshape(1, -1) for a single mixture.")
        expected = len(domains) if domains is not None else getattr(self, "n_features_in_", W.shape[1])
        if W.shape[1] != expected:
            raise FitError(f"W has {W.shape[1]} columns, but the projector expects {expected} (domains {domains}) in {where}. "
                           "Order the columns by sorted domain name.")
        return check_simplex_rows(W, where=f"W in {where}", tolerance=SUM_TOLERANCE)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise EstimatorNotFittedError("This OTProjector is not fitted yet. Call fit(W, y) with proxy-run mixtures and losses first.")


class TwoStageProjector(BaseEstimator):
    """Stage 2: stage-1 fits at sizes ``n0 < n1`` extrapolated linearly in ``ln N``.

    .. math:: \\hat L(N, p) = \\frac{\\ln(N/N_0) \\hat L(N_1, p) - \\ln(N/N_1) \\hat L(N_0, p)}{\\ln(N_1/N_0)}

    Parameters
    ----------
    ot : MixtureOT
    n0, n1 : float
        Token counts (e.g. two checkpoint sizes the trainer records), ``0 < n0 < n1``.
    alpha : float, default 1e-3
        Ridge penalty of both stage-1 fits.

    Attributes
    ----------
    stage0_, stage1_ : OTProjector
    """

    def __init__(self, ot: MixtureOT | None = None, *, n0: float = 0.0, n1: float = 0.0, alpha: float = 1e-3):
        self.ot = ot
        self.n0 = n0
        self.n1 = n1
        self.alpha = alpha

    def fit(self, W, y_n0, y_n1, ot_values=None, *, W_n0=None) -> "TwoStageProjector":
        """Fit on mixtures ``W`` (shape ``(n, K)``) with losses at ``n0`` and at ``n1`` (each shape ``(n,)``).

        ``W_n0``: the shares the runs had trained on by ``n0`` when they differ from ``W`` (a run that changed phase
        before ``n1``); stage 0 learns from them."""
        if not (np.isfinite(self.n0) and np.isfinite(self.n1) and 0 < self.n0 < self.n1):
            raise FitError(f"TwoStageProjector needs token counts 0 < n0 < n1. Got n0={self.n0!r}, n1={self.n1!r}. "
                           "Pass two checkpoint sizes, the smaller as n0.")
        W = OTProjector(self.ot)._check_W(W, "fit")
        o = OTProjector(self.ot)._ot_values(W, ot_values)
        if W_n0 is None:
            self.stage0_ = OTProjector(self.ot, alpha=self.alpha).fit(W, y_n0, ot_values=o)
        else:
            self.stage0_ = OTProjector(self.ot, alpha=self.alpha).fit(OTProjector(self.ot)._check_W(W_n0, "fit"), y_n0)
        self.stage1_ = OTProjector(self.ot, alpha=self.alpha).fit(W, y_n1, ot_values=o)
        return self

    def _weights(self, n_tokens: float) -> tuple[float, float]:
        if not (np.isfinite(n_tokens) and n_tokens > 0):
            raise FitError(f"n_tokens must be a positive finite token count. Got {n_tokens!r}.")
        span = np.log(self.n1 / self.n0)
        return -np.log(n_tokens / self.n1) / span, np.log(n_tokens / self.n0) / span  # weights of L(N0), L(N1)

    def predict(self, W, n_tokens: float, return_std: bool = False, ot_values=None):
        """Extrapolated loss at ``n_tokens`` for each mixture, shape ``(n,)`` (and the std, combining both stages independently)."""
        if not hasattr(self, "stage0_"):
            raise EstimatorNotFittedError("This TwoStageProjector is not fitted yet. Call fit(W, y_n0, y_n1) first.")
        w0, w1 = self._weights(n_tokens)
        W = self.stage0_._check_W(W, "predict")
        o = self.stage0_._ot_values(W, ot_values)
        m0, s0 = self.stage0_.predict(W, return_std=True, ot_values=o)
        m1, s1 = self.stage1_.predict(W, return_std=True, ot_values=o)
        mean = w0 * m0 + w1 * m1
        return (mean, np.sqrt((w0 * s0) ** 2 + (w1 * s1) ** 2)) if return_std else mean

    def predict_and_grad(self, p, n_tokens: float) -> tuple[float, np.ndarray]:
        """Extrapolated loss of one mixture at ``n_tokens`` and its simplex gradient, shape ``(K,)``."""
        if not hasattr(self, "stage0_"):
            raise EstimatorNotFittedError("This TwoStageProjector is not fitted yet. Call fit(W, y_n0, y_n1) first.")
        w0, w1 = self._weights(n_tokens)
        v0, g0 = self.stage0_.predict_and_grad(p)
        v1, g1 = self.stage1_.predict_and_grad(p)
        return w0 * v0 + w1 * v1, w0 * g0 + w1 * g1
