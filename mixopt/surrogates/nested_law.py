"""Data Mixing Laws' nested laws across scales (registry name ``nested-law``).

Ye et al. (2024) use the mixing law nested: one ``L(r) = c + k exp(t·r)`` per
trained scale (``MixingLawSurrogate``); at another scale, each candidate's
per-scale predictions are carried by a power law ``L(N) = E + B N^-alpha`` (at
least 3 scales) or by a line in log N / log D (2 scales). Inputs are
``scale.py``'s ``X = [W | model_params | tokens]``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import curve_fit

from ..errors import FitError
from .mixing_law import MixingLawSurrogate
from .scale_base import ScaleEstimator


class NestedMixingLaw(ScaleEstimator):
    """Data Mixing Laws' nested laws: a mixing law per scale, carried across scales per candidate.

    Parameters
    ----------
    n_restarts, random_state : passed to each scale's ``MixingLawSurrogate``.
    """

    name = "nested-law"
    extrapolates_down = False  # the power law in N is fitted for growth; below the data it is not a law of anything

    def __init__(self, n_restarts: int = 4, random_state: int = 0):
        self.n_restarts = n_restarts
        self.random_state = random_state

    def fit(self, X, y) -> "NestedMixingLaw":
        W, S, y = self._check_fit(X, y)
        keys = np.nan_to_num(S, nan=-1.0)
        self.laws_ = []
        for key in np.unique(keys, axis=0):
            rows = np.all(keys == key, axis=1)
            law = MixingLawSurrogate(n_restarts=self.n_restarts, random_state=self.random_state)
            if rows.sum() >= law.min_rows(W.shape[1]):
                self.laws_.append((np.where(key == -1.0, np.nan, key), law.fit(W[rows], y[rows])))
        if not self.laws_:
            raise FitError(f"{self.name} needs one scale with at least {W.shape[1] + 3} runs to fit a mixing law. Add runs.")
        return self

    def predict(self, X, return_std: bool = False):
        W, S = self._check_predict(X)
        P = np.array([law.predict(W, return_std=True) for _, law in self.laws_])  # (n_scales, 2, n)
        U = np.array([self._u(s[None])[0] for s, _ in self.laws_])  # (n_scales, 2)
        Uq = self._u(S)
        mean, std = np.empty(len(W)), np.empty(len(W))
        for i in range(len(W)):
            hit = np.flatnonzero(np.all(np.isclose(U, Uq[i]), axis=1))
            if hit.size:
                mean[i], std[i] = P[hit[0], 0, i], P[hit[0], 1, i]
                continue
            mean[i], std[i] = self._carry(U, P[:, 0, i], P[:, 1, i], Uq[i])
        return (mean, std) if return_std else mean

    def _carry(self, U, m, s, uq):
        """Extrapolate one candidate's per-scale predictions to scale ``uq`` (power law in N, else a line)."""
        act = self.active_
        if len(m) == 1 or not act.any():
            return m[0], s[0] * (1.0 + np.abs(uq - U[0]).sum())
        if len(m) >= 3 and act[0] and not act[1]:
            try:
                f = lambda n, e, b, al: e + b * np.exp(-al * n * math.log(10))  # noqa: E731  L(N) = E + B N^-alpha, N in decades
                p, _ = curve_fit(f, U[:, 0], m, p0=[m.min() - 0.1, m.max() - m.min() + 0.1, 0.3], maxfev=2000)
                return float(f(uq[0], *p)), float(np.max(s) * (1.0 + max(0.0, uq[0] - U[:, 0].max())))
            except RuntimeError:
                pass
        A = np.column_stack([np.ones(len(m)), U[:, act]])
        coef, *_ = np.linalg.lstsq(A, m, rcond=None)
        dist = np.abs(uq[act] - U[:, act]).min(0).sum()
        return float(np.r_[1.0, uq[act]] @ coef), float(np.max(s) * (1.0 + dist))
