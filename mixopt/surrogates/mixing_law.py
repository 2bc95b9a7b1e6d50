"""Data Mixing Laws (Ye et al., 2024): ``L(r) = c + k * exp(sum_j t_j r_j)``."""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from .base import Surrogate


class MixingLawSurrogate(Surrogate):
    """Least-squares fit of ``L(r) = c + k exp(t · r)`` with seeded restarts.

    Parameters
    ----------
    n_restarts : int
        Random restarts besides the data-driven start; the lowest cost wins.
    random_state : int
        Seed of the restarts.

    Notes
    -----
    Uncertainty is the residual standard error combined with the parameter
    covariance ``s^2 (J^T J)^+`` propagated through the Jacobian (delta method).
    """

    min_runs = 4

    def __init__(self, n_restarts: int = 4, random_state: int = 0):
        self.n_restarts = n_restarts
        self.random_state = random_state

    def min_rows(self, n_domains: int) -> int:
        """``n_domains + 2`` parameters and one residual degree of freedom."""
        return max(self.min_runs, n_domains + 3)

    @staticmethod
    def _model(p, W):
        return p[0] + p[1] * np.exp(W @ p[2:])

    @staticmethod
    def _jac(p, W):
        e = np.exp(W @ p[2:])
        return np.column_stack([np.ones(len(W)), e, (p[1] * e)[:, None] * W])

    def _fit(self, W, y):
        z = (y - self.y_mean_) / self.y_scale_
        d = W.shape[1]
        rng = np.random.default_rng(self.random_state)
        # start: c below the minimum, k = 1, t from a log-linear fit of z - c
        c0 = z.min() - 0.5
        t0, *_ = np.linalg.lstsq(W, np.log(z - c0), rcond=None)
        starts = [np.r_[c0, 1.0, t0]]
        for _ in range(self.n_restarts):
            starts.append(np.r_[z.min() - rng.uniform(0.1, 2.0), rng.uniform(0.2, 2.0), t0 + rng.normal(0, 1.0, d)])
        best = None
        for p0 in starts:
            res = least_squares(lambda p: self._model(p, W) - z, p0, jac=lambda p: self._jac(p, W),
                                method="trf", max_nfev=2000)
            if best is None or res.cost < best.cost:
                best = res
        self.params_ = best.x  # in standardised units: [c, k, t_1..t_d]
        dof = max(len(z) - len(best.x), 1)
        self.sigma_ = float(np.sqrt(2 * best.cost / dof)) or 1e-6
        J = self._jac(best.x, W)
        self.param_cov_ = self.sigma_**2 * np.linalg.pinv(J.T @ J)

    def _predict(self, W, return_std):
        mean = self._model(self.params_, W) * self.y_scale_ + self.y_mean_
        if not return_std:
            return mean, None
        J = self._jac(self.params_, W)
        var = np.einsum("ij,jk,ik->i", J, self.param_cov_, J) + self.sigma_**2
        return mean, np.sqrt(np.maximum(var, 0.0)) * self.y_scale_
