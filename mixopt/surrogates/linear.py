"""Ordinary least squares on the mixture weights (RegMix's linear baseline)."""

from __future__ import annotations

import numpy as np

from .base import Surrogate


class LinearSurrogate(Surrogate):
    """OLS ``y ≈ W @ beta`` with the OLS predictive standard deviation.

    Rows of ``W`` sum to 1, so the intercept is absorbed by ``beta`` (d,).
    The std is ``s * sqrt(1 + w^T (W^T W)^-1 w)`` with ``s`` the residual
    standard error on ``n - d`` degrees of freedom.
    """

    min_runs = 3

    def __init__(self):
        pass

    def min_rows(self, n_domains: int) -> int:
        """OLS needs one residual degree of freedom: ``n_domains + 1`` runs."""
        return max(self.min_runs, n_domains + 1)

    def _fit(self, W, y):
        self.coef_, *_ = np.linalg.lstsq(W, y, rcond=None)
        resid = y - W @ self.coef_
        dof = max(len(y) - np.linalg.matrix_rank(W), 1)
        self.sigma_ = float(np.sqrt(resid @ resid / dof)) or 1e-6 * self.y_scale_
        self.cov_ = np.linalg.pinv(W.T @ W)  # (d, d)

    def _predict(self, W, return_std):
        mean = W @ self.coef_
        if not return_std:
            return mean, None
        lev = np.einsum("ij,jk,ik->i", W, self.cov_, W)
        return mean, self.sigma_ * np.sqrt(1.0 + np.maximum(lev, 0.0))
