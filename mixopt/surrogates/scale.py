"""Scale-aware surrogates: predict a metric for (mixture, model_params, tokens).

Inputs are ``X = [W | model_params | tokens]``, shape (n, n_domains + 2): the
mixture's weights, then the model's (non-embedding) parameter count and the
training tokens of the measurement, as plain numbers (see :func:`scale_inputs`).
A scale column that is NaN for every training row (unknown) is inactive.

``ScaleGP`` (registry name ``scale-gp``, the default scale-aware model) extends
the default GP across scales. With ``u`` the scale in decades
(``log10 N - log10 N_ref``, ``log10 D - log10 D_ref``):

.. math::

    k((w,u),(w',u')) = a\\,k_w(w,w')\\,\\exp\\big(-\\textstyle\\sum_j (u_j-u'_j)^2 / 2\\ell_j^2\\big)
                     + b_0 + \\textstyle\\sum_j b_j u_j u'_j + \\textstyle\\sum_j v_j \\phi_j(u) \\phi_j(u') + s_n^2\\,\\delta,
    \\qquad \\phi_j(u) = (u_j - lo_j)(u_j - hi_j)\\ \\text{outside } [lo_j, hi_j],\\ 0 \\text{ inside}

``k_w`` is the default GP's kernel, fitted on the largest scale that has at
least ``min_runs`` runs (the mixture effect nearest the targets above it), and
centred over the training mixtures (``P k_w P``), so the product term carries
only how mixtures differ, not a common level. The product lets the mixture
effect decorrelate across scales (an intrinsic-coregionalisation model over a
continuous scale), and ``b_0 + b_j u_j u_j'`` is a Bayesian linear trend of the
level in scale (log N; tokens warped to a power law, ``u_D = (1 - (D/D_ref)^-beta) / (beta ln 10)``
with ``beta = token_exponent`` = 0.3, Chinchilla's 0.28; None keeps log D), so the predictive std grows with the distance to the
trained scales: linearly through the trend, and through the product term's
decorrelation. ``v_j \\phi_j`` is the level's curvature in log scale (real loss
curves bend: ``E + A N^-alpha``): a quadratic's deviation from its chord over
the trained range ``[lo_j, hi_j]`` beyond it, and 0 inside it, so it is 0 at
every trained scale: the data never fit it, it leaves the fit and every
prediction within the trained range unchanged, and only widens the std beyond
(as distance x (distance + range)). Its prior ties the curvature to the slope:
``log v_j ~ N(log b_j + 2 log curvature, 1)``, where ``curvature`` = 0.35 is
``alpha ln10 / 2`` for a power law with ``alpha`` about 0.3 (Chinchilla's
``alpha`` in N is 0.34). ``a``, ``ell``, ``b``, ``v`` and ``s_n`` are MAP-fitted with ``k_w``
held fixed. With ``ell`` fixed very long (``length_scale=inf``) it is the GP
with per-scale offsets. At an inactive scale dimension ``ell_j`` and ``b_j``
stay at their prior (1 decade; 0.25 standardised units² per decade²).

Why centred, on the largest scale (``benchmarks/RESULTS.md``, scale transfer):
uncentred, the level part of the mixture effect decorrelated with scale and
reverted to the overall mean, so predictions one size above the trained ones
missed the level by 0.13-0.18 nats with ±1σ covering 18% (embedded corpus);
centred, the miss halves and RegMix's 60M figures improve slightly. Why the
curvature term: without it the level one size beyond the trained ones was a
straight line whose std held only the slope's uncertainty, and ±1σ covered
45-56% of runs there; with it 55-71% (means and ranks unchanged; RegMix part (i)
identical, its targets are at a trained scale). Why the power law in tokens and
the term's zero inside the range: fitted on one size's WSD budgets (125k-500k) the
quadratic was fitted by the data and extrapolated the level *upward*, 2.94
predicted at 2M tokens where runs measured 2.68 (MAE 0.25); now 0.07
(``benchmarks/budget_transfer.py``; the model-size figures above are unchanged).

``NestedMixingLaw`` (``nested_law.py``) is the Data Mixing Laws alternative on
the same inputs; ``ShiftGP`` (``shift.py``) keeps one scale's mixture ranking and
moves only ScaleGP's level (the default of ``fit --budgets`` on one proxy size).
"""

from __future__ import annotations

import copy
import hashlib
import math

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from ..errors import FitError
from .crossval import group_folds
from .gp import GPSurrogate
from .scale_base import N_SCALE, ScaleEstimator, check_positive, scale_inputs, split_inputs

_BASE_CACHE: dict[str, GPSurrogate] = {}  # identical base fits (e.g. across CV folds that share the small-scale runs)
_BASE_CACHE_SIZE = 4


def _fit_base(W: np.ndarray, y: np.ndarray, params: dict, random_state: int) -> GPSurrogate:
    """The mixture GP on the base scale; an identical fit (same data, params, seed) is reused, not repeated."""
    key = hashlib.sha256(W.tobytes() + y.tobytes() + repr((sorted(params.items()), random_state)).encode()).hexdigest()
    if key not in _BASE_CACHE:
        while len(_BASE_CACHE) >= _BASE_CACHE_SIZE:
            _BASE_CACHE.pop(next(iter(_BASE_CACHE)))
        _BASE_CACHE[key] = GPSurrogate(**params, random_state=random_state).fit(W, y)
    return copy.deepcopy(_BASE_CACHE[key])


_ScaleBase = ScaleEstimator  # its name before it moved to scale_base.py


class ScaleGP(ScaleEstimator):
    """The default GP across scales (see the module docstring for the kernel).

    Parameters
    ----------
    length_scale : float or None
        Fix the scale length ``ell`` (decades) instead of fitting it; ``inf``
        gives per-scale offsets with a fully shared mixture effect.
    base_params : dict or None
        Parameters of the mixture GP (``GPSurrogate``) fitted on the base scale.
    random_state : int
        Seed of the mixture GP's restarts.
    noise_variance : float or None
        The measured seed-noise variance of one run's target (target units); fixes
        the white noise of the mixture GP and is the floor of the scale model's
        white noise, which must also hold the level's misfit across scales (held
        at the seed noise, the fit collapsed the token scale length and ranked a
        held-out scale at 0.60 instead of 0.95; RESULTS.md). None fits it.
    centre : bool
        Centre ``k_w`` over the training mixtures (``P K_w P``), so the product
        term carries only how mixtures differ from each other and the level at
        each scale is carried by the trend alone. Without it, the level part of
        the mixture effect decorrelates with scale like the rest and reverts to
        the overall mean when extrapolating in model size.
    base : {"most", "largest"}
        Which scale's runs fit the mixture kernel ``k_w``: the one with the most
        runs, or the largest with at least ``min_runs``.
    curvature : float or None
        Prior median of the level's curvature per unit of slope in log scale
        (``|L''| / 2|L'|`` per decade; ``alpha ln10 / 2`` for ``E + A N^-alpha``):
        the curvature term's variance is centred on ``curvature² b_j``. It widens
        the std beyond the trained scales (and between three or more); None or 0
        drops the term (the kernel before 2026-11-30). Fitted attribute ``v_`` (N_SCALE,).
    token_exponent : float or None
        The level's trend in tokens is a power law ``D^-token_exponent`` (the token axis is warped before the
        kernel sees it); None or 0 keeps it linear in log D (the kernel before 2026-11-30, and how models pickled
        before then still predict).
    """

    name = "scale-gp"

    def __init__(self, length_scale: float | None = None, base_params: dict | None = None, random_state: int = 0,
                 noise_variance: float | None = None, centre: bool = True, base: str = "largest",
                 curvature: float | None = 0.35, token_exponent: float | None = 0.3):
        self.length_scale = length_scale
        self.base_params = base_params
        self.random_state = random_state
        self.noise_variance = noise_variance
        self.centre = centre
        self.base = base
        self.curvature = curvature
        self.token_exponent = token_exponent

    def __setstate__(self, state):
        # models pickled before a parameter existed behave as they did then
        state = {"curvature": None, "token_exponent": None, **state}
        super().__setstate__(state)

    def _u(self, S) -> np.ndarray:
        """Scale in decades from the smallest trained scale; the token axis warped to a power law (``token_exponent``)."""
        U = super()._u(S)
        beta = self.token_exponent
        if beta is None or beta == 0:
            return U
        if not (isinstance(beta, (int, float, np.floating)) and math.isfinite(beta) and beta > 0):
            raise FitError(f"{self.name} token_exponent must be a positive number or None. Got {beta!r}. Use e.g. 0.3 (the default) or None.")
        U = U.copy()
        U[:, 1] = -np.expm1(-beta * math.log(10) * U[:, 1]) / (beta * math.log(10))  # (1 - (D/D_ref)^-beta) / (beta ln 10)
        return U

    # theta = [log a, log ell_j, log b0, log b_j, log sn2, (log v_j with curvature)]  (j: the q active dimensions)
    CURVATURE_SD = 1.0  # prior sd of log(v_j / (curvature^2 b_j))

    def _prior(self, q):
        """Prior mean and sd of theta; the curvature entries' mean is relative: log v_j - log b_j (see _penalty)."""
        nv = q if self._curved() else 0
        mu = np.r_[0.0, np.full(q, math.log(1.0)), math.log(4.0), np.full(q, math.log(0.25)), math.log(1e-2),
                   np.full(nv, 2 * math.log(self.curvature or 1.0))]
        sd = np.r_[1.0, np.full(q, 1.5), 2.0, np.full(q, 2.0), 2.0, np.full(nv, self.CURVATURE_SD)]
        return mu, sd

    def _curved(self) -> bool:
        c = self.curvature
        if c is None or c == 0:
            return False
        if not (isinstance(c, (int, float, np.floating)) and math.isfinite(c) and c > 0):
            raise FitError(f"{self.name} curvature must be a positive number or None. Got {c!r}. Use e.g. 0.35 (the default) or None.")
        return True

    def _penalty(self, theta, q):
        """Negative log prior and its gradient. log v_j is centred on log b_j + 2 log curvature (a hierarchical prior)."""
        mu, sd = self._prior(q)
        r = theta - mu
        if self._curved():
            r[3 + 2 * q:] -= theta[2 + q:2 + 2 * q]  # relative to log b_j
        grad = r / sd**2
        if self._curved():
            grad[2 + q:2 + 2 * q] -= grad[3 + 2 * q:]
        return 0.5 * ((r / sd) ** 2).sum(), grad

    def _unpack(self, theta, q):
        a, ell, b0, b, sn2 = math.exp(theta[0]), np.exp(theta[1:1 + q]), math.exp(theta[1 + q]), np.exp(theta[2 + q:2 + 2 * q]), math.exp(theta[2 + 2 * q])
        if self.length_scale is not None:
            ell = np.full(q, float(self.length_scale))
        v = np.exp(theta[3 + 2 * q:]) if self._curved() else np.zeros(q)
        return a, ell, b0, b, sn2, v

    def _objective(self, theta, Kw, D2, UU, QQ, y):
        n, q = len(y), D2.shape[0]
        a, ell, b0, b, sn2, v = self._unpack(theta, q)
        E = np.exp(-0.5 * np.tensordot(1.0 / ell**2, D2, axes=1)) if q else np.ones_like(Kw)
        KE = a * Kw * E
        K = KE + b0 + (np.tensordot(b, UU, axes=1) if q else 0.0) + (sn2 + 1e-8) * np.eye(n)
        if self._curved() and q:
            K = K + np.tensordot(v, QQ, axes=1)
        try:
            L = cholesky(K, lower=True)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve((L, True), y)
        nll = 0.5 * y @ alpha + np.log(np.diag(L)).sum()
        Wm = np.outer(alpha, alpha) - cho_solve((L, True), np.eye(n))
        g = [(Wm * KE).sum()]
        g += [(Wm * KE * D2[j] / ell[j] ** 2).sum() if self.length_scale is None else 0.0 for j in range(q)]
        g += [(Wm * b0).sum()] + [(Wm * b[j] * UU[j]).sum() for j in range(q)] + [sn2 * np.trace(Wm)]
        if self._curved():
            g += [(Wm * v[j] * QQ[j]).sum() for j in range(q)]
        pen, pgrad = self._penalty(theta, q)
        return nll + pen, -0.5 * np.array(g) + pgrad

    def fit(self, X, y) -> "ScaleGP":
        """Fit on ``X`` (n, d + 2) and targets ``y`` (n,); returns self."""
        W, S, y = self._check_fit(X, y)
        keys = [tuple(s) for s in np.nan_to_num(S, nan=-1.0)]
        counts = {k: keys.count(k) for k in set(keys)}
        if self.base not in ("most", "largest"):
            raise FitError(f"{self.name} base must be 'most' or 'largest'. Got {self.base!r}. Use 'largest' (the default).")
        if self.base == "largest":  # the largest scale with enough runs: the mixture effect nearest the targets above
            enough = [k for k in counts if counts[k] >= self.min_runs] or list(counts)
            base_key = max(enough, key=lambda k: (list(k), counts[k]))
        else:
            base_key = max(counts, key=lambda k: (counts[k], [-v for v in k]))  # most runs; ties -> smallest scale
        base_rows = np.array([k == base_key for k in keys])
        self.base_scale_ = np.array([10.0**v if v != -1.0 else np.nan for v in base_key])  # (model_params, tokens) of k_w's runs
        self.base_rows_ = base_rows  # (n,) the training rows at that scale
        if base_rows.sum() < self.min_runs:
            raise FitError(f"{self.name} needs at least {self.min_runs} runs at one scale to learn the mixture effect. Got {int(base_rows.sum())}. Add runs.")
        base_params = dict(self.base_params or {})
        if self.noise_variance is not None:
            base_params["noise_variance"] = check_positive(self.noise_variance, "noise_variance", where=self.name) if self.noise_variance else 0.0
        self.base_ = _fit_base(np.ascontiguousarray(W[base_rows]), np.ascontiguousarray(y[base_rows]), base_params, self.random_state)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        self.kw_scale_ = self.base_.y_scale_ ** 2 / self.y_scale_**2  # k_w in the base scale's units -> global units
        self.W_centre_ = np.unique(np.round(W, 9), axis=0) if self.centre else None
        if self.centre:
            self.kw_mean_ = float(self._kw_raw(self.W_centre_, self.W_centre_).mean())
        Kw = self._kw(W, W)
        U = self._u(S)[:, self.active_]
        q = U.shape[1]
        D2 = np.stack([(U[:, j, None] - U[None, :, j]) ** 2 for j in range(q)]) if q else np.zeros((0, len(y), len(y)))
        UU = np.stack([U[:, j, None] * U[None, :, j] for j in range(q)]) if q else np.zeros((0, len(y), len(y)))
        Uall = self._u(S)
        self.u_span_ = np.stack([Uall.min(0), Uall.max(0)])  # (2, N_SCALE): the trained range, where the curvature term is 0
        Q = self._quad(Uall)[:, self.active_]
        QQ = np.stack([Q[:, j, None] * Q[None, :, j] for j in range(q)]) if q else np.zeros((0, len(y), len(y)))
        z = (y - self.y_mean_) / self.y_scale_
        mu, sd = self._prior(q)
        isn = 2 + 2 * q  # log sn2
        if self._curved():  # a typical log b_j stands in for the relative prior mean in the bounds and the start
            mu[isn + 1:] += math.log(0.25)
        bounds = [(m - 4 * s, m + 4 * s) for m, s in zip(mu, sd)]
        if self._curved():
            bounds[isn + 1:] = [(m - 4 * (s + 2.0), m + 4 * (s + 2.0)) for m, s in zip(mu[isn + 1:], sd[isn + 1:])]
        if self.noise_variance is not None:  # measured seed noise: the floor of the white noise, which also holds misfit
            floor = math.log(max(float(self.noise_variance) / self.y_scale_**2, 1e-10))
            bounds[isn] = (floor, max(floor, bounds[isn][1]))
        x0 = np.clip(mu, [b[0] for b in bounds], [b[1] for b in bounds])
        with threadpool_limits(limits=1, user_api="blas"):
            res = minimize(self._objective, x0, args=(Kw, D2, UU, QQ, z), jac=True, method="L-BFGS-B",
                           bounds=bounds, options={"maxiter": 200})
        self.theta_ = res.x
        a, ell, b0, b, sn2, v = self._unpack(res.x, q)
        self.a_, self.b0_, self.sn2_ = a, b0, sn2
        self.ell_ = np.ones(N_SCALE)  # the prior for inactive dimensions
        self.b_ = np.full(N_SCALE, 0.25)
        self.v_ = np.zeros(N_SCALE)  # no curvature at an inactive dimension (or without `curvature`)
        self.ell_[self.active_], self.b_[self.active_], self.v_[self.active_] = ell, b, v
        self.W_, self.U_ = W, Uall
        K = self._cov(W, self.U_, W, self.U_, Kw=Kw) + (sn2 + 1e-8) * np.eye(len(z))
        self.L_ = cholesky(K, lower=True)
        self.alpha_ = cho_solve((self.L_, True), z)
        return self

    def _kw_raw(self, W1, W2):
        return self.base_.gp_._cross(self.base_._features(W1), self.base_._features(W2)) * self.kw_scale_

    def _kw(self, W1, W2):
        """The mixture kernel in global units; centred over the training mixtures when ``centre``."""
        K = self._kw_raw(W1, W2)
        if getattr(self, "W_centre_", None) is None:  # (models saved before `centre` existed have no W_centre_)
            return K
        m1 = self._kw_raw(W1, self.W_centre_).mean(1)
        m2 = m1 if W2 is W1 else self._kw_raw(W2, self.W_centre_).mean(1)
        return K - m1[:, None] - m2[None, :] + self.kw_mean_

    def _quad(self, U):
        """The curvature term's features: ``(u_j - lo_j)(u_j - hi_j)`` beyond the trained range ``[lo_j, hi_j]``
        (a quadratic's deviation from its chord, growing as distance x (distance + range)), 0 within it.

        0 at every trained scale, so the data never fit the term: it only widens the std beyond the trained
        scales. (Until 2026-11-30 it was the quadratic everywhere; with three trained budgets the data fitted it and
        its mean extrapolated the level upward, predicting a *higher* loss at 4x the tokens: MAE 0.25 instead of
        0.07, benchmarks/budget_transfer.py.)"""
        Q = (U - self.u_span_[0]) * (U - self.u_span_[1])
        return np.where((U < self.u_span_[0]) | (U > self.u_span_[1]), Q, 0.0)

    def _cov(self, W1, U1, W2, U2, Kw=None):
        if Kw is None:
            Kw = self._kw(W1, W2)
        D2 = ((U1[:, None, :] - U2[None, :, :]) ** 2 / self.ell_**2).sum(-1)
        K = self.a_ * Kw * np.exp(-0.5 * D2) + self.b0_ + (U1 * self.b_) @ U2.T
        v = getattr(self, "v_", None)  # (models saved before `curvature` existed have no v_)
        return K if v is None or not v.any() else K + (self._quad(U1) * v) @ self._quad(U2).T

    def predict(self, X, return_std: bool = False, return_cov: bool = False):
        """Mean (n,) and, with ``return_std``, the predictive std (n,) at each row's scale.

        ``return_cov`` gives the predictive covariance (n, n) of single runs at the rows instead (for
        small n): the level's uncertainty (trend, curvature) is shared by rows at one scale, so a
        difference of two mixtures there, ``var(a - b) = C_aa + C_bb - 2 C_ab``, does not carry it.
        """
        self._check_outputs(return_std, return_cov)
        W, S = self._check_predict(X)
        U = self._u(S)
        if return_cov:
            Ks = self._cov(W, U, self.W_, self.U_)
            v = solve_triangular(self.L_, Ks.T, lower=True)
            cov = self._cov(W, U, W, U) - v.T @ v + self.sn2_ * np.eye(len(W))
            return Ks @ self.alpha_ * self.y_scale_ + self.y_mean_, cov * self.y_scale_**2
        mean, std = np.empty(len(W)), np.empty(len(W))
        for s in range(0, len(W), 4096):
            Ks = self._cov(W[s:s + 4096], U[s:s + 4096], self.W_, self.U_)
            mean[s:s + 4096] = Ks @ self.alpha_
            if return_std:
                Zs = self.base_._features(W[s:s + 4096])
                kw = self.base_.gp_.sf2_ + self.base_.gp_.sl2_ * (Zs**2).sum(1) / Zs.shape[1]
                if getattr(self, "W_centre_", None) is not None:  # diagonal of the centred kernel: k(w,w) - 2 m(w) + mean
                    kw = kw - 2 * self._kw_raw(W[s:s + 4096], self.W_centre_).mean(1) / self.kw_scale_ + self.kw_mean_ / self.kw_scale_
                prior = self.a_ * kw * self.kw_scale_ + self.b0_ + (U[s:s + 4096] ** 2 * self.b_).sum(1)
                if getattr(self, "v_", None) is not None:
                    prior = prior + (self._quad(U[s:s + 4096]) ** 2 * self.v_).sum(1)
                v = solve_triangular(self.L_, Ks.T, lower=True)
                std[s:s + 4096] = np.sqrt(np.maximum(prior - (v * v).sum(0), 0.0) + self.sn2_)
        mean = mean * self.y_scale_ + self.y_mean_
        return (mean, np.maximum(std * self.y_scale_, 1e-12)) if return_std else mean


class AtScale:
    """A fitted scale-aware estimator seen at one target scale: ``predict(W)`` is its prediction at ``[W | N | D]``.

    The mixture search and the CLI's ``predict`` use this view, so every mixture-only consumer works unchanged.
    Construction checks the scale (:meth:`~mixopt.surrogates.scale_base.ScaleEstimator.check_target_scale`).
    """

    def __init__(self, estimator, model_params: float | None, tokens: float | None):
        estimator.check_target_scale(model_params, tokens)
        self.estimator, self.model_params, self.tokens = estimator, model_params, tokens

    def predict(self, W, return_std: bool = False, return_cov: bool = False):
        W = np.atleast_2d(np.asarray(W, dtype=float))
        X = scale_inputs(W, self.model_params, self.tokens)
        if return_cov:  # only estimators that give a covariance (ScaleGP) accept it
            return self.estimator.predict(X, return_cov=True)
        return self.estimator.predict(X, return_std=return_std)


def _largest(key: np.ndarray) -> np.ndarray:
    """The largest scale among rows of log10 (model_params, tokens) (unknown as -inf): by size, then by tokens."""
    return key[np.lexsort((key[:, 1], key[:, 0]))[-1]]


def largest_scale_rows(X) -> tuple[tuple, np.ndarray]:
    """``((model_params, tokens), rows)``: the largest scale of inputs ``X`` (None where unknown) and the indices of
    its rows, the rows :func:`held_out_scale_cv` holds out (callers size its ``k`` from them)."""
    _, S = split_inputs(X)
    key = np.nan_to_num(S, nan=-np.inf)
    top = _largest(key)
    return tuple(float(10**v) if np.isfinite(v) else None for v in top), np.flatnonzero(np.all(key == top, axis=1))


def held_out_scale_cv(estimator, X, y, *, k: int = 5, seed: int = 0, groups=None, progress=None) -> dict:
    """Cross-validation that holds out the largest scale: K folds over its runs, every other run always trains.

    ``groups`` (n,) marks runs of one mixture (e.g. its weights' hash); a held-out
    run's whole group at the largest scale leaves together. A 2-D ``y`` (component
    metrics) is for an estimator with ``combine(Y)``, which gives the scored target. Returns the same
    metrics as :func:`~mixopt.surrogates.crossval.cross_validate`, on the
    largest scale's runs, plus ``largest_scale`` = (model_params, tokens). ``progress(done, k)``, when given, hears
    of each fold fitted (a progress bar's).
    """
    largest, big = largest_scale_rows(X)
    Y = np.asarray(y, dtype=float)
    y = estimator.combine(Y) if Y.ndim == 2 else Y  # the scored target
    if len(big) == len(y):
        raise FitError("held-out-scale CV needs runs at two or more scales; the store has one. Use cross_validate, or add runs at another scale.")
    held = np.asarray(groups)[big] if groups is not None else np.arange(len(big))
    n_held = len(np.unique(held))  # folds deal whole groups: fewer groups than folds leaves a fold empty
    at = " x ".join(f"{v:.3g} {u}" if v else f"? {u}" for v, u in zip(largest, ("params", "tokens")))
    if n_held < 2:
        raise FitError(f"The largest scale ({at}) has {len(big)} run(s) of 1 mixture; held-out-scale CV needs 2+ distinct "
                       "mixtures there. Add runs of other mixtures at that scale.")
    if n_held < k:
        raise FitError(f"The largest scale ({at}) has {len(big)} runs of {n_held} distinct mixtures, fewer than k={k} folds. "
                       "Lower k or add runs of other mixtures at that scale.")
    fold = group_folds(held, k, seed)
    pred, std, regrets = np.empty(len(big)), np.empty(len(big)), []
    for f in range(k):
        te = big[fold == f]
        tr = np.setdiff1d(np.arange(len(y)), te)
        model = clone(estimator).fit(X[tr], Y[tr])
        pred[fold == f], std[fold == f] = model.predict(X[te], return_std=True)
        regrets.append(y[te][np.argmin(pred[fold == f])] - y[te].min())
        if progress is not None:
            progress(f + 1, k)
    yt = y[big]
    z = np.abs(pred - yt) / std
    return {"spearman": float(spearmanr(pred, yt)[0]), "pearson": float(pearsonr(pred, yt)[0]),
            "mae": float(np.mean(np.abs(pred - yt))), "regret_at_1": float(np.mean(regrets)),
            "within_1sd": float(np.mean(z <= 1)), "within_2sd": float(np.mean(z <= 2)), "oof_pred": pred, "oof_std": std,
            "y_true": yt, "rows": big, "fold": fold, "k": k, "seed": seed, "largest_scale": largest}


def held_out_level(estimator, X, y) -> dict | None:
    """The level's extrapolation, backtested: every row at the largest scale held out at once.

    The model is fitted on the smaller scales alone and predicts the largest, the way a plan's prediction
    reaches past every trained scale (:func:`held_out_scale_cv` keeps part of the largest scale in training,
    so it tests the ranking there, not the step to it). A 2-D ``y`` is as in :func:`held_out_scale_cv`.
    Returns None when fewer than two smaller scales are left (no trend to extrapolate), else ``bias`` (mean of
    prediction minus measurement: > 0 is too high), ``mae``, ``within_2sd``, ``mean_sd``, ``spearman``, ``n``,
    ``largest_scale`` and ``from_scale`` (the largest scale fitted), each (model_params, tokens).
    """
    W, S = split_inputs(X)
    X, Y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    y = estimator.combine(Y) if Y.ndim == 2 else Y
    key = np.nan_to_num(S, nan=-np.inf)
    top = _largest(key)
    big = np.all(key == top, axis=1)
    rest = key[~big]
    if len(np.unique(rest, axis=0)) < 2:
        return None
    below = _largest(rest)
    try:
        model = clone(estimator).fit(X[~big], Y[~big])
    except FitError:  # e.g. too few runs at the scale below to fit a mixture model on
        return None
    pred, sd = model.predict(X[big], return_std=True)
    err = pred - y[big]
    raw = lambda v: tuple(float(10**x) if np.isfinite(x) else None for x in v)  # noqa: E731
    return {"bias": float(np.mean(err)), "mae": float(np.mean(np.abs(err))), "within_2sd": float(np.mean(np.abs(err) <= 2 * sd)),
            "mean_sd": float(np.sqrt(np.mean(sd**2))), "spearman": float(spearmanr(pred, y[big])[0]) if big.sum() > 2 else float("nan"),
            "n": int(big.sum()), "largest_scale": raw(top), "from_scale": raw(below)}


def __getattr__(name: str):
    """Models pickled before ``NestedMixingLaw`` moved to ``nested_law.py`` still load."""
    if name == "NestedMixingLaw":
        from .nested_law import NestedMixingLaw  # noqa: PLC0415  (loaded only when an old pickle asks for it)
        return NestedMixingLaw
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
