"""Multi-phase data schedules: an end-of-training upsampling phase and a temperature cooldown.

Blakeney et al. (2024, "Does your data spark joy?") found that upsampling
domain-specific data for the last 10-20% of training gives large gains on that
domain. Here a two-phase run trains on a base mixture ``p`` for the first
``1 - f`` of its tokens and on an end mixture ``q`` for the last ``f``.
``TwoPhaseSurrogate`` learns the metric over ``(p, q, f)`` from sweep runs
(single-phase runs enter as ``q = p, f = 0``), ``search_upsampling`` picks the
end phase for a given ``p`` and says whether it beats ``p`` alone beyond the
model's uncertainty, and ``plan_phases`` writes the plan's phases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import ConfigError, FitError, MixtureError, NotFittedError
from ..mixtures import Mixture, check_fraction_range, round_shares

SIMPLEX_TOL = 1e-2


# ---------------------------------------------------------------- features and the surrogate

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


def _split(X, where: str = "X") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``phase_features`` rows; returns r (n, k), q (n, k), f (n,)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] < 3 or X.shape[1] % 2 == 0:
        raise MixtureError(f"{where} must be phase_features(p, q, f) rows of shape (n, 2k+1). Got shape {X.shape}. "
                           "Build it with mixopt.planning.phases.phase_features.")
    if not np.all(np.isfinite(X)) or (X < 0).any():
        raise MixtureError(f"{where} must be finite and >= 0. Got a bad value in row {int(np.argwhere(~np.isfinite(X) | (X < 0))[0, 0])}.")
    k = (X.shape[1] - 1) // 2
    R, Q, F = X[:, :k], X[:, k:2 * k], X[:, -1]
    for name, M in (("r", R), ("q", Q)):
        off = np.flatnonzero(np.abs(M.sum(1) - 1.0) > SIMPLEX_TOL)
        if off.size:
            raise MixtureError(f"The {name} block of {where} must hold simplex rows (sum 1 ± {SIMPLEX_TOL:g}). "
                               f"Got {M[off[0]].sum():.4g} in row {off[0]}. Normalise p and q before phase_features.")
    if (F >= 1.0).any():
        raise MixtureError(f"The end-phase fraction f must be < 1. Got {F.max():.4g} in {where}.")
    return R, Q, F


class TwoPhaseSurrogate(RegressorMixin, BaseEstimator):
    """GP over (overall share r, end-phase tilt f * (q - r)), with predictive std.

    Features are ``log(r + eps)`` (what the run saw overall, as in the single-mixture
    surrogate) and ``f * (q - r)`` (how far the end phase leans away from it, weighted
    by how long it lasts). Both are invariant to relabelling a single-phase run as
    ``q = p`` with any ``f``, so single-phase runs teach the r-part and two-phase runs
    the tilt. The GP (ARD Matern-5/2 + linear kernel, MAP hyperparameters; see
    ``mixopt.surrogates.gp``) stays sensible with 20-50 runs.

    Parameters
    ----------
    eps : float
        Offset in ``log(r + eps)``.
    n_restarts, random_state : int
        Extra seeded optimiser restarts of the GP fit, and their seed.
    """

    min_runs = 4

    def __init__(self, eps: float = 1e-3, n_restarts: int = 2, random_state: int = 0):
        self.eps = eps
        self.n_restarts = n_restarts
        self.random_state = random_state

    def _raw(self, X) -> np.ndarray:
        R, Q, F = _split(X)
        return np.hstack([np.log(R + self.eps), F[:, None] * (Q - R)])

    def fit(self, X, y) -> "TwoPhaseSurrogate":
        """Fit on ``phase_features`` rows X (n, 2k+1) and the metric y (n,); returns self."""
        from ..surrogates.base import check_target
        from ..surrogates.gp import GPModel

        if not self.eps > 0:
            raise FitError(f"eps must be > 0 so that log(r + eps) is finite. Got {self.eps!r}.")
        Z = self._raw(X)
        if len(Z) < self.min_runs:
            raise FitError(f"TwoPhaseSurrogate needs at least {self.min_runs} runs. Got {len(Z)}. Add runs.")
        y = check_target(y, len(Z), estimator="TwoPhaseSurrogate")
        self.n_features_in_ = Z.shape[1] + 1
        self.n_domains_ = Z.shape[1] // 2
        self.z_mean_ = Z.mean(0)
        sd = Z.std(0)
        self.z_scale_ = np.where(sd > 1e-12, sd, 1.0)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std())
        self.n_two_phase_ = int((np.asarray(X)[:, -1] > 0).sum())
        self.gp_ = GPModel(self.n_restarts, self.random_state).fit((Z - self.z_mean_) / self.z_scale_, (y - self.y_mean_) / self.y_scale_)
        return self

    def predict(self, X, return_std: bool = False):
        """Mean (n,) and, with ``return_std``, the predictive std (n,) at ``phase_features`` rows X."""
        if not hasattr(self, "gp_"):
            raise NotFittedError("This TwoPhaseSurrogate is not fitted yet. Call fit(X, y) before predict.")
        if np.asarray(X).ndim == 2 and np.asarray(X).shape[1] != self.n_features_in_:
            raise MixtureError(f"X has {np.asarray(X).shape[1]} features, but TwoPhaseSurrogate is expecting {self.n_features_in_} "
                               f"(2k+1 for k={self.n_domains_} domains). Pass the same domains in the same order as at fit time.")
        mean, std = self.gp_.predict((self._raw(X) - self.z_mean_) / self.z_scale_, return_std)
        mean = mean * self.y_scale_ + self.y_mean_
        if not return_std:
            return mean
        return mean, np.maximum(std * self.y_scale_, 1e-12)


class BaseMixtureView:
    """A fitted TwoPhaseSurrogate seen as a single-mixture surrogate (q = p, f = 0), for the mixture search."""

    def __init__(self, model: TwoPhaseSurrogate):
        self.model = model

    def predict(self, W, return_std: bool = False):
        W = np.atleast_2d(np.asarray(W, dtype=float))
        return self.model.predict(phase_features(W, W, 0.0), return_std=return_std)


# ---------------------------------------------------------------- from the run store

def records_to_phase_data(records, domains: Sequence[str], target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Base mixtures P (n, k), end mixtures Q (n, k), end fractions F (n,) and the target y (n,).

    Uses finished (``ok``) runs whose target is finite. A single-phase run gives
    ``q = p, f = 0``; a run with one later phase ``[start, weights]`` gives
    ``q = weights, f = 1 - start``. Runs with more than one later phase are left
    out (the model is two-phase). ``target`` is any name ``RunTable.target``
    accepts: a metric (``val/code``), ``mean:all-domains``, ``mean:a,b``, ``wmean:a=..``.
    """
    from ..runs.table import records_table

    domains, records = list(domains), list(records)
    keep = [r for r in records if r.status == "ok" and r.metrics and len(r.phases or ()) <= 1
            and all(math.isfinite(v) for v in r.metrics.values())]
    if not keep:
        raise FitError(f"No finished runs to learn from: {len(records)} record(s), none ok with finite metrics and at most "
                       "one later phase. Run the sweep first.")
    y = np.asarray(records_table(keep).target(target), dtype=float)
    P, Q, F = [], [], []
    for r in keep:
        p = Mixture(r.mixture, where=f"run {r.run_id}").vector(domains)
        if r.phases:
            start, w = r.phases[0]
            q, f = Mixture(w, where=f"phase of run {r.run_id}").vector(domains), 1.0 - float(start)
        else:
            q, f = p, 0.0
        P.append(p), Q.append(q), F.append(f)
    ok = np.isfinite(y)
    if not ok.any():
        raise FitError(f"No finished run has a finite value of target '{target}'. Name a metric the runs recorded.")
    return np.array(P)[ok], np.array(Q)[ok], np.array(F)[ok], y[ok]


# ---------------------------------------------------------------- search

def _end_candidates(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, k) end mixtures: a third Dirichlet draws around p, a third p mixed toward one domain, a third toward 1-3."""
    k = p.size
    a, b = n // 3, n // 3
    c = n - a - b
    s = np.exp(rng.uniform(np.log(2.0), np.log(200.0), size=(a, 1)))
    g = rng.standard_gamma(np.maximum(p[None, :] * s, 1e-3))
    near = g / g.sum(1, keepdims=True)
    one = np.eye(k)[rng.integers(0, k, size=b)]
    few = np.zeros((c, k))
    m = rng.integers(1, min(3, k) + 1, size=c)
    for i in range(c):
        few[i, rng.choice(k, size=m[i], replace=False)] = rng.dirichlet(np.ones(m[i]))
    lam = rng.uniform(0.0, 1.0, size=(b + c, 1))
    toward = (1.0 - lam) * p[None, :] + lam * np.vstack([one, few])
    return np.vstack([near, toward])


def search_upsampling(model, p, *, constraints=None, f_range: tuple[float, float] = (0.05, 0.30), n_candidates: int = 20000,
                      seed: int = 0, uncertainty_weight: float = 0.0, domains: Sequence[str] | None = None,
                      n_fractions: int = 11, keep_overall: bool = False) -> dict:
    """Best end phase ``(q, f)`` for base mixture ``p`` under a fitted two-phase model; lower metric is better.

    ``f`` is searched on ``n_fractions`` evenly spaced values of ``f_range``; at each, ``q`` candidates
    (Dirichlet draws around ``p`` and ``p`` mixed toward 1-3 domains) are projected so that the *overall*
    share ``r = (1 - f) p + f q`` stays inside ``constraints`` (a ``Constraints``: its epoch caps bound
    total tokens, so a short end phase may exceed them on its own). Score = mean + uncertainty_weight * std.

    With ``keep_overall=True`` the run keeps ``p`` as its *overall* token share and only moves tokens in
    time: the first phase becomes ``p' = (p - f q) / (1 - f)`` (so ``q <= p / f``). Use it when ``p`` sits on
    a binding cap (e.g. a scarce domain's epoch cap), where an end phase on top of ``p`` has no room.

    ``p`` is a ``{domain: w}`` mapping or a (k,) vector in ``domains`` (or ``constraints.domains``) order.
    Returns ``{p, q, f, predicted, std, baseline_predicted, baseline_std, helps, overall, domains}``: ``p``
    (the first phase's mixture), ``q`` and ``overall`` (= r) as ``{domain: w}``; baseline = the input ``p``
    alone (q = p, f = 0); ``helps`` is true only when the two-phase mean beats the baseline mean by more
    than ``sqrt(std^2 + baseline_std^2)``.
    """
    from ..mixtures import project_to_bounded_simplex

    names = list(domains) if domains is not None else (list(constraints.domains) if constraints is not None else None)
    if isinstance(p, Mapping):
        names = names or sorted(p)
        pv = Mixture(p, where="base mixture p").vector(names)
    else:
        pv = np.asarray(p, dtype=float).reshape(-1)
        if names is None:
            raise MixtureError("A vector p needs domain names: pass domains=... or constraints=..., or give p as {domain: w}.")
        if pv.size != len(names) or not np.all(np.isfinite(pv)) or (pv < 0).any() or abs(pv.sum() - 1) > 1e-6:
            raise MixtureError(f"p must be a simplex vector with one weight per domain ({len(names)}). Got {np.round(pv, 4).tolist()}.")
    k = len(names)
    if getattr(model, "n_domains_", k) != k:
        raise MixtureError(f"p has {k} domains, but the model was fitted on {model.n_domains_}. Use the fit-time domain order.")
    lo = np.zeros(k) if constraints is None else np.asarray(constraints.min_weights, dtype=float)
    hi = np.ones(k) if constraints is None else np.asarray(constraints.max_weights, dtype=float)
    if np.any(pv < lo - 1e-6) or np.any(pv > hi + 1e-6):
        raise MixtureError("The base mixture p breaks the constraints it is searched under; project it first (constraints.project(p)).")
    f_lo, f_hi = check_fraction_range(f_range)
    fs = np.unique(np.linspace(f_lo, f_hi, max(1, int(n_fractions))))
    rng = np.random.default_rng(seed)
    per = max(3, int(n_candidates) // len(fs))
    Qs, Fs = [], []
    for f in fs:
        Q = _end_candidates(pv, per, rng)
        if keep_overall:  # p' = (p - f q) / (1 - f) >= 0
            lo_q, hi_q = np.zeros(k), np.minimum(1.0, pv / f)
        else:
            lo_q = np.clip((lo - (1 - f) * pv) / f, 0.0, 1.0)  # r_i >= lo_i
            hi_q = np.clip((hi - (1 - f) * pv) / f, 0.0, 1.0)  # r_i <= hi_i
            lo_q, hi_q = np.minimum(lo_q, pv), np.maximum(hi_q, pv)  # q = p always fits: the box is never empty
        Qs.append(project_to_bounded_simplex(Q, lo_q, hi_q))
        Fs.append(np.full(per, f))
    Q, F = np.vstack(Qs), np.concatenate(Fs)
    if keep_overall:
        P0 = np.maximum(pv[None, :] - F[:, None] * Q, 0.0)
        P0 /= P0.sum(1, keepdims=True)
    else:
        P0 = np.broadcast_to(pv, Q.shape)
    mean, std = model.predict(phase_features(P0, Q, F), return_std=True)
    score = mean + uncertainty_weight * std
    i = int(np.argmin(score))
    b_mean, b_std = model.predict(phase_features(pv, pv, 0.0), return_std=True)
    b_mean, b_std = float(b_mean[0]), float(b_std[0])
    p0, q, f = P0[i], Q[i], float(F[i])
    helps = bool(b_mean - mean[i] > math.hypot(std[i], b_std))
    r = (1 - f) * p0 + f * q
    return {
        "p": {d: float(x) for d, x in zip(names, p0)}, "q": {d: float(x) for d, x in zip(names, q)}, "f": f, "predicted": float(mean[i]), "std": float(std[i]),
        "baseline_predicted": b_mean, "baseline_std": b_std, "helps": helps,
        "overall": {d: float(x) for d, x in zip(names, r)}, "domains": names,
    }


# ---------------------------------------------------------------- schedules and plans

def cooldown_schedule(token_counts: Mapping[str, int], switch_fraction: float = 0.8, tau_start: float = 5.0,
                      tau_end: float = 1.0) -> list[tuple[float, dict[str, float]]]:
    """Temperature schedule ``[(0, p(tau_start)), (switch_fraction, p(tau_end))]`` with ``p(i; tau) ∝ |D_i|^(1/tau)``.

    A high temperature (flat, near uniform) early gives small domains room; tau = 1 (token-proportional)
    for the last ``1 - switch_fraction`` of tokens cools down onto the natural distribution.
    """
    if not (0.0 < float(switch_fraction) < 1.0):
        raise ConfigError(f"switch_fraction must be in (0, 1). Got {switch_fraction}.")
    if not (tau_start > 0 and tau_end > 0):
        raise ConfigError(f"Temperatures must be > 0. Got tau_start={tau_start}, tau_end={tau_end}.")
    domains = sorted(token_counts)
    D = np.array([float(token_counts[d]) for d in domains])
    if len(D) == 0 or (D < 0).any() or D.sum() <= 0:
        raise MixtureError(f"token_counts must be non-negative with a positive total. Got {dict(token_counts)}.")
    out = []
    for start, tau in ((0.0, tau_start), (float(switch_fraction), tau_end)):
        w = np.where(D > 0, D / D.max(), 0.0) ** (1.0 / tau)
        out.append((start, {d: float(x) for d, x in zip(domains, w / w.sum())}))
    return out


def plan_phases(p_weights: Mapping[str, float], upsample_result: Mapping | None) -> list[dict]:
    """Plan phases: ``[{start_fraction: 0, weights: p}, {start_fraction: 1 - f, weights: q}]``, or just p when it doesn't help.

    When the search moved the first phase (``keep_overall=True``), its ``p`` replaces ``p_weights`` there.
    """
    if upsample_result and upsample_result.get("helps"):
        start = round(1.0 - float(upsample_result["f"]), 6)
        if 0.0 < start < 1.0:
            first = upsample_result.get("p") or p_weights
            return [{"start_fraction": 0.0, "weights": round_shares(first)},
                    {"start_fraction": start, "weights": round_shares(upsample_result["q"])}]
    return [{"start_fraction": 0.0, "weights": round_shares(p_weights)}]
