"""Gaussian-process surrogate on compositional features, with MAP hyperparameters.

Kernel on standardised features ``z = (log(w + eps) - mean) / std``:

.. math::

    k(z, z') = s_f^2\\,\\mathrm{Matern}_{5/2}\\big(\\lVert (z - z')/\\ell \\rVert\\big)
             + s_l^2\\, z^\\top z' / d + s_n^2\\,\\delta_{zz'}

The ARD length scales ``ell`` (d,), ``s_f``, ``s_l`` and the noise ``s_n`` are
fitted by maximising the marginal likelihood plus weak log-normal priors (MAP),
from a seeded set of restarts. The priors keep small stores (10-30 runs) away
from the degenerate optima plain maximum likelihood falls into. Where the
seed noise has been measured (``noise_variance``), ``s_n^2`` is fixed to it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize

from ..errors import FitError
from .base import Surrogate, log_features

_SQRT5 = math.sqrt(5.0)


def _single_thread():
    """Limit BLAS to one thread while fitting (n <= ~1000 matrices run faster so)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _matern52(Z1: np.ndarray, Z2: np.ndarray, ls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matern-5/2 correlation and ``r`` between rows of Z1 (n, d) and Z2 (m, d)."""
    A, B = Z1 / ls, Z2 / ls
    r2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T  # (n, m)
    r = np.sqrt(np.maximum(r2, 0.0))
    return (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-_SQRT5 * r), r


class GPModel:
    """Plain GP regression with the kernel above; no input validation."""

    def __init__(self, n_restarts: int = 2, random_state: int = 0, max_iter: int = 200, noise: float | None = None):
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.max_iter = max_iter
        self.noise = noise  # fixed s_n^2 (in units of the standardised y), or None to fit it

    # theta = [log ell (d), log sf2, log sl2, log sn2]
    def _prior(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        mu = np.r_[np.full(d, math.log(math.sqrt(d))), 0.0, math.log(0.1), math.log(1e-2)]
        sd = np.r_[np.full(d, 1.5), 1.5, 2.0, 2.0]
        return mu, sd

    def _objective(self, theta, Z, y):
        n, d = Z.shape
        ls, sf2, sl2, sn2 = np.exp(theta[:d]), *np.exp(theta[d:])
        M, r = _matern52(Z, Z, ls)
        lin = Z @ Z.T / d
        K = sf2 * M + sl2 * lin + (sn2 + 1e-8) * np.eye(n)
        try:
            L = cholesky(K, lower=True)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve((L, True), y)
        nll = 0.5 * y @ alpha + np.log(np.diag(L)).sum() + 0.5 * n * math.log(2 * math.pi)
        Kinv = cho_solve((L, True), np.eye(n))
        Wm = np.outer(alpha, alpha) - Kinv  # d nll / dK = -0.5 * Wm
        G = Wm * (sf2 * (5.0 / 3.0) * (1.0 + _SQRT5 * r) * np.exp(-_SQRT5 * r))
        A = Z / ls
        g_ls = (A * A * G.sum(1)[:, None]).sum(0) * 2.0 - 2.0 * (A * (G @ A)).sum(0)
        grad = -0.5 * np.r_[g_ls, (Wm * (sf2 * M)).sum(), (Wm * (sl2 * lin)).sum(), sn2 * np.trace(Wm)]
        mu, sd = self._prior(d)
        nlp = 0.5 * (((theta - mu) / sd) ** 2).sum()
        return nll + nlp, grad + (theta - mu) / sd**2

    def fit(self, Z: np.ndarray, y: np.ndarray) -> "GPModel":
        """Fit on features Z (n, d) and standardised targets y (n,)."""
        n, d = Z.shape
        mu, sd = self._prior(d)
        rng = np.random.default_rng(self.random_state)
        starts = [mu] + [mu + sd * rng.normal(size=mu.shape) * 0.5 for _ in range(self.n_restarts)]
        bounds = [(math.log(1e-2), math.log(1e3))] * d + [(-9.0, 5.0), (-12.0, 5.0), (math.log(1e-6), math.log(2.0))]
        if self.noise is not None:  # a measured noise: equal bounds keep log s_n^2 fixed
            fixed = math.log(max(float(self.noise), 1e-10))
            bounds[-1] = (fixed, fixed)
        best = None
        with _single_thread():  # small dense algebra: threads only add contention
            for x0 in starts:
                x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
                res = minimize(self._objective, x0, args=(Z, y), jac=True, method="L-BFGS-B",
                               bounds=bounds, options={"maxiter": self.max_iter})
                if best is None or res.fun < best.fun:
                    best = res
        self.theta_ = best.x
        self.Z_ = Z
        ls, sf2, sl2, sn2 = np.exp(self.theta_[:d]), *np.exp(self.theta_[d:])
        self.ls_, self.sf2_, self.sl2_, self.sn2_ = ls, sf2, sl2, sn2
        K = self._cross(Z, Z) + (sn2 + 1e-8) * np.eye(n)
        self.L_ = cholesky(K, lower=True)
        self.alpha_ = cho_solve((self.L_, True), y)
        return self

    def _cross(self, Z1, Z2):
        """k(Z1, Z2) (n, m) without noise; in-place arithmetic keeps big chunks cheap."""
        A, B = Z1 / self.ls_, Z2 / self.ls_
        K = A @ B.T
        K *= -2.0
        K += (A * A).sum(1)[:, None]
        K += (B * B).sum(1)[None, :]
        np.maximum(K, 0.0, out=K)
        np.sqrt(K, out=K)  # r
        E = np.multiply(K, -_SQRT5)
        np.exp(E, out=E)
        E *= self.sf2_
        poly = np.multiply(K, 5.0 / 3.0)
        poly += _SQRT5
        poly *= K
        poly += 1.0
        poly *= E  # sf2 * Matern52(r)
        poly += (self.sl2_ / Z1.shape[1]) * (Z1 @ Z2.T)
        return poly

    def predict(self, Z: np.ndarray, return_std: bool = False, chunk: int = 20000):
        """Posterior mean (m,) and, if asked, predictive std (m,) incl. noise."""
        mean = np.empty(len(Z))
        std = np.empty(len(Z)) if return_std else None
        for s in range(0, len(Z), chunk):
            Ks = self._cross(Z[s:s + chunk], self.Z_)  # (c, n)
            mean[s:s + chunk] = Ks @ self.alpha_
            if return_std:
                v = solve_triangular(self.L_, Ks.T, lower=True)  # (n, c)
                prior = self.sf2_ + self.sl2_ * (Z[s:s + chunk] ** 2).sum(1) / Z.shape[1]
                std[s:s + chunk] = np.sqrt(np.maximum(prior - (v * v).sum(0), 0.0) + self.sn2_)
        return mean, std

    def cov(self, Z: np.ndarray) -> np.ndarray:
        """Predictive covariance (m, m) of single observations at Z (incl. noise on the diagonal); for small m."""
        v = solve_triangular(self.L_, self._cross(Z, self.Z_).T, lower=True)
        return self._cross(Z, Z) - v.T @ v + self.sn2_ * np.eye(len(Z))


class GPSurrogate(Surrogate):
    """GP on compositional features (ARD Matern-5/2 + linear kernel, MAP fit).

    This is mixopt's ``default`` surrogate (``eps=1e-3, features="log+raw"``),
    chosen by cross-validation on RegMix's 512 training runs (see
    benchmarks/RESULTS.md). Fitting costs O(n^3) per optimiser step,
    fine up to ~1000 runs; prediction is chunked, O(n) per candidate for the
    mean and O(n^2) with ``return_std``.

    Parameters
    ----------
    eps : float
        Offset in ``log(w + eps)``; sets how strongly small weights are resolved.
    features : {"log+raw", "log", "clr"}
        ``log(w + eps)``, optionally with the raw weights appended, or its
        centred log-ratio.
    n_restarts : int
        Extra seeded optimiser restarts besides the prior-mean start.
    random_state : int
        Seed of the restarts.
    noise_variance : float or None
        The measured seed-noise variance of one run's target, in the target's
        units (see :func:`mixopt.surrogates.noise.seed_noise`). When given, the
        kernel's white-noise level is fixed to it instead of fitted; None fits it.

    Attributes
    ----------
    noise_variance_ : float
        The white-noise variance used, in the target's units (fitted or given).
    """

    min_runs = 4

    def __init__(self, eps: float = 1e-3, features: str = "log+raw", n_restarts: int = 2, random_state: int = 0,
                 noise_variance: float | None = None):
        self.eps = eps
        self.features = features
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.noise_variance = noise_variance

    def _check_params(self) -> None:
        if self.features not in ("log+raw", "log", "clr"):
            raise FitError(f"features must be one of 'log+raw', 'log', 'clr'. Got {self.features!r}.")
        self._check_eps_and_noise()

    def _check_eps_and_noise(self) -> None:
        if not self.eps > 0:
            raise FitError(f"eps must be > 0 so that log(w + eps) is finite. Got {self.eps!r}.")
        nv = self.noise_variance
        if nv is not None and not (isinstance(nv, (int, float, np.floating, np.integer)) and math.isfinite(nv) and nv >= 0):
            raise FitError(f"noise_variance must be None or a finite variance >= 0 in the target's units. Got {nv!r}. "
                           "Pass the pooled seed-noise variance (mixopt.surrogates.noise.seed_noise) or None to fit it.")

    def _raw_features(self, W):
        X = log_features(W, self.eps)
        if self.features == "clr":
            return X - X.mean(1, keepdims=True)
        if self.features == "log+raw":
            return np.hstack([X, W])
        return X

    def _features(self, W):
        return (self._raw_features(W) - self.z_mean_) / self.z_scale_

    def _fit(self, W, y):
        self._check_params()
        X = self._raw_features(W)
        self.z_mean_ = X.mean(0)
        sd = X.std(0)
        self.z_scale_ = np.where(sd > 1e-12, sd, 1.0)
        z = (y - self.y_mean_) / self.y_scale_
        noise = None if self.noise_variance is None else float(self.noise_variance) / self.y_scale_**2
        self.gp_ = GPModel(self.n_restarts, self.random_state, noise=noise).fit(self._features(W), z)
        self.noise_variance_ = float(self.gp_.sn2_) * self.y_scale_**2

    def _predict(self, W, return_std):
        mean, std = self.gp_.predict(self._features(W), return_std)
        mean = mean * self.y_scale_ + self.y_mean_
        return mean, (std * self.y_scale_ if return_std else None)
