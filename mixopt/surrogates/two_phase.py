"""A surrogate of two-phase runs: a base mixture ``p``, then an end mixture ``q`` for the last ``f`` of the tokens.

Blakeney et al. (2024, "Does your data spark joy?") found that upsampling
domain-specific data for the last 10-20% of training gives large gains on that
domain. :class:`TwoPhaseSurrogate` learns the metric over ``(p, q, f)`` from sweep
runs (single-phase runs enter as ``q = p, f = 0``); rows are built by
:func:`phase_features`. The search over end phases lives in ``mixopt.planning.phases``.
"""

from __future__ import annotations

import numpy as np

from ..errors import MixtureError
from ..mixtures import as_float_array, check_simplex_rows
from .gp import GPSurrogate

#: how far the r and q blocks of a row may sum from 1


def phase_features(p, q, f) -> np.ndarray:
    """Rows ``[r, q, f]`` of shape (n, 2k+1), with ``r = (1 - f) p + f q`` the run's overall token share.

    ``p``, ``q``: (n, k) or (k,) simplex rows; ``f``: (n,) or a scalar, the end phase's share of tokens.
    """
    P, Q = np.atleast_2d(np.asarray(p, dtype=float)), np.atleast_2d(np.asarray(q, dtype=float))
    n = max(len(P), len(Q))
    F = np.broadcast_to(np.asarray(f, dtype=float).reshape(-1), (n,))
    P, Q = np.broadcast_to(P, (n, P.shape[1])), np.broadcast_to(Q, (n, Q.shape[1]))
    if P.shape != Q.shape:
        raise MixtureError(f"p and q must have the same number of domains. Got {P.shape[1]} and {Q.shape[1]}.")
    R = (1.0 - F)[:, None] * P + F[:, None] * Q
    return np.hstack([R, Q, F[:, None]])


def split_phase_features(X, where: str = "X") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate :func:`phase_features` rows; returns r (n, k), q (n, k), f (n,)."""
    X = as_float_array(X, where=where, what="phase_features rows")
    if X.ndim != 2:
        raise MixtureError(f"{where} must be 2-D phase_features(p, q, f) rows of shape (n, 2k+1). Got shape {X.shape}. "
                           "Reshape your data: a single row is X.reshape(1, -1).")
    if X.shape[1] < 3 or X.shape[1] % 2 == 0:
        raise MixtureError(f"{where} has {X.shape[1]} feature(s) (shape={X.shape}) while a minimum of 3 is required, and an odd "
                           "number (2k+1) of them. Build the rows with mixopt.surrogates.two_phase.phase_features.")
    if not np.all(np.isfinite(X)):
        raise MixtureError(f"{where} must be finite (no NaN or inf). Got one in row {int(np.argwhere(~np.isfinite(X))[0, 0])}. "
                           "Drop that row.")
    if (X < 0).any():
        raise MixtureError(f"{where} must be >= 0. Negative values in data passed to {where}: row {int(np.argwhere(X < 0)[0, 0])}. "
                           "Build the rows with phase_features from mixtures.")
    k = (X.shape[1] - 1) // 2
    R, Q, F = X[:, :k], X[:, k:2 * k], X[:, -1]
    for name, M in (("r", R), ("q", Q)):
        check_simplex_rows(M, where=f"the {name} block of {where} (normalise p and q before phase_features)")
    if (F >= 1.0).any():
        raise MixtureError(f"The end-phase fraction f must be < 1. Got {F.max():.4g} in {where}.")
    return R, Q, F


class TwoPhaseSurrogate(GPSurrogate):
    """GP over (overall share r, end-phase tilt f * (q - r)), with predictive std.

    Features are ``log(r + eps)`` (what the run saw overall, as in the single-mixture
    surrogate) and ``f * (q - r)`` (how far the end phase leans away from it, weighted
    by how long it lasts). Both are invariant to relabelling a single-phase run as
    ``q = p`` with any ``f``, so single-phase runs teach the r-part and two-phase runs
    the tilt. Standardisation, fitting and prediction are :class:`GPSurrogate`'s (ARD
    Matern-5/2 + linear kernel, MAP hyperparameters), which stays sensible with 20-50 runs.

    ``fit(X, y)`` and ``predict(X)`` take :func:`phase_features` rows X of shape (n, 2k+1).

    Parameters
    ----------
    eps : float
        Offset in ``log(r + eps)``.
    n_restarts, random_state : int
        Extra seeded optimiser restarts of the GP fit, and their seed.
    noise_variance : float or None
        A measured seed-noise variance to fix the white-noise level to (see :class:`GPSurrogate`).

    Attributes
    ----------
    n_domains_ : int
        ``k``, the number of domains.
    n_two_phase_ : int
        How many training rows had an end phase (``f > 0``).
    """

    min_runs = 4

    def __init__(self, eps: float = 1e-3, n_restarts: int = 2, random_state: int = 0, noise_variance: float | None = None):
        self.eps = eps
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.noise_variance = noise_variance

    def _check_X(self, X) -> np.ndarray:
        split_phase_features(X)
        return np.asarray(X, dtype=float)

    def _n_domains(self, X: np.ndarray) -> int:
        return (X.shape[1] - 1) // 2

    def _check_params(self) -> None:
        self._check_eps_and_noise()

    def _raw_features(self, X):
        k = self._n_domains(X)
        R, Q, F = X[:, :k], X[:, k:2 * k], X[:, -1]
        return np.hstack([np.log(R + self.eps), F[:, None] * (Q - R)])

    def _fit(self, X, y):
        self.n_domains_ = self._n_domains(X)
        self.n_two_phase_ = int((X[:, -1] > 0).sum())
        super()._fit(X, y)


class BaseMixtureView:
    """A fitted TwoPhaseSurrogate seen as a single-mixture surrogate (q = p, f = 0), for the mixture search."""

    def __init__(self, model: TwoPhaseSurrogate):
        self.model = model

    def predict(self, W, return_std: bool = False):
        W = np.atleast_2d(np.asarray(W, dtype=float))
        return self.model.predict(phase_features(W, W, 0.0), return_std=return_std)
