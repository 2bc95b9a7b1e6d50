"""Search for the best mixture under a fitted surrogate.

Two searches share one objective, lower is better:

.. math::

    s(w) = \\mu(w) + \\lambda_u \\sigma(w) + \\lambda_{KL} \\mathrm{KL}(w \\| p)

where ``mu, sigma = estimator.predict(W, return_std=True)`` and ``p`` is the
prior. ``w`` lives on the bounded simplex ``{lo <= w <= hi, sum(w) = 1}`` given
by :class:`Constraints` (explicit bounds combined with per-domain epoch caps).

* :func:`simulate_search` is RegMix's simulation (Liu et al., 2024, "RegMix:
  Data Mixture as Regression for Language Model Pre-training"): score a million
  Dirichlet draws around the prior and average the top-k.
* :func:`optimize_mixture` refines a start point with a derivative-free
  (1+lambda) evolution strategy on the bounded simplex, which works for
  piecewise-constant surrogates such as LightGBM.

Rows are always in the fixed domain order of ``Constraints.domains``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, MixtureError
from ..samplers import STRENGTH_RANGE, dirichlet_candidates
from .constraints import Constraints


# ---------------------------------------------------------------- projection and KL

def kl_to_prior(W: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """``KL(w || prior) = sum_i w_i log(w_i / p_i)`` per row, with ``0 log 0 = 0``.

    ``W`` (n, k) gives an ndarray (n,); a single row (k,) gives a float.
    The value is ``inf`` where ``w_i > 0`` but ``p_i = 0``.
    """
    W = np.asarray(W, dtype=float)
    single = W.ndim == 1
    W2 = np.atleast_2d(W)
    p = np.asarray(prior, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(W2 > 0, W2 * (np.log(np.where(W2 > 0, W2, 1.0)) - np.log(p)), 0.0)
    kl = terms.sum(axis=1)
    return float(kl[0]) if single else kl


# ---------------------------------------------------------------- search

@dataclass
class SearchResult:
    """Outcome of a mixture search.

    ``weights`` (k,) is the chosen mixture (inside the constraints) in the
    order of ``domains``; ``predicted``/``std`` are the surrogate's mean and std
    there (std 0 when it gives none) and ``score`` the objective.
    ``top_k_weights`` (m, k) holds the best rows, best first (simulate: the
    averaged top-k; optimize: each start's end point). ``n_evaluated`` counts
    surrogate evaluations; ``method`` is ``"simulate"`` or ``"es"``.
    """

    weights: np.ndarray
    domains: list[str]
    predicted: float
    std: float
    score: float
    top_k_weights: np.ndarray
    n_evaluated: int
    seconds: float
    method: str

    def as_dict(self) -> dict[str, float]:
        return {d: float(w) for d, w in zip(self.domains, self.weights)}


def predict_mean_std(estimator, W: np.ndarray, *, need_std: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of an estimator on rows ``W`` (n, k); std is 0 if it gives none."""
    if need_std:
        out = estimator.predict(W, return_std=True)
        if isinstance(out, tuple) and len(out) == 2:
            return np.asarray(out[0], dtype=float).reshape(-1), np.asarray(out[1], dtype=float).reshape(-1)
    else:
        out = estimator.predict(W)
    mean = np.asarray(out, dtype=float).reshape(-1)
    return mean, np.zeros_like(mean)


def _scores(estimator, W, prior, uncertainty_weight, kl_weight) -> np.ndarray:
    mean, std = predict_mean_std(estimator, W, need_std=uncertainty_weight != 0)
    s = mean + uncertainty_weight * std
    if kl_weight:
        s = s + kl_weight * kl_to_prior(W, prior)
    return np.where(np.isnan(s), np.inf, s)


def _summarise(estimator, w, prior, uw, kw) -> tuple[float, float, float]:
    mean, std = predict_mean_std(estimator, w[None, :])
    score = mean[0] + uw * std[0] + (kw * kl_to_prior(w, prior) if kw else 0.0)
    return float(mean[0]), float(std[0]), float(score)


def simulate_search(
    estimator,
    prior: np.ndarray,
    *,
    constraints: Constraints | None = None,
    n_candidates: int = 1_000_000,
    top_k: int = 100,
    seed: int = 0,
    uncertainty_weight: float = 0.0,
    kl_weight: float = 0.0,
    batch_size: int = 200_000,
    domains: Sequence[str] | None = None,
    strength_range: tuple[float, float] = STRENGTH_RANGE,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """RegMix's simulation: score Dirichlet draws, average the best ``top_k``.

    Candidates are drawn as ``Dirichlet(prior * s)`` with strength ``s``
    log-uniform in ``strength_range`` (the sweep sampler's), ``batch_size`` rows at a time. Candidates outside
    the constraints are **repaired** by Euclidean projection onto them (not
    dropped), so every one of the ``n_candidates`` evaluations counts and
    optima on a cap are reachable. The answer is the mean of the top-k rows
    (convex, so still feasible), projected once more to clean rounding.

    Parameters
    ----------
    estimator : object with ``predict(W, return_std=True) -> (mean (n,), std (n,))``
        Lower is better. A plain ``predict(W) -> (n,)`` works when
        ``uncertainty_weight == 0`` (std is then reported as 0).
    prior : ndarray of shape (k,)
        Dirichlet centre and the reference of the KL term.
    constraints : Constraints, optional
        None means the whole simplex (``domains`` then names the result).
    seed : int
        Deterministic for a given ``(seed, batch_size)``.
    uncertainty_weight, kl_weight : float
        Weights of ``std`` and ``KL(w || prior)`` in the score.
    progress : callable, optional
        ``progress(done, total)`` after each batch: candidates scored so far, of ``n_candidates`` (a progress bar's;
        it does not change the result).
    """
    t0 = time.perf_counter()
    prior = _check_prior(prior)
    k = prior.size
    cons = constraints if constraints is not None else Constraints.unbounded(domains or [f"d{i}" for i in range(k)])
    if len(cons.domains) != k:
        raise ConfigError(f"The prior has {k} weights, but the constraints cover {len(cons.domains)} domains. Use one domain order for both.")
    if n_candidates < 1 or top_k < 1 or batch_size < 1:
        raise ConfigError(f"n_candidates, top_k and batch_size must be >= 1. Got {n_candidates}, {top_k}, {batch_size}.")
    top_k = min(top_k, n_candidates)
    best_s = np.empty(0)
    best_w = np.empty((0, k))
    seeds = np.random.SeedSequence(seed).generate_state(math.ceil(n_candidates / batch_size))
    for b, start in enumerate(range(0, n_candidates, batch_size)):
        n = min(batch_size, n_candidates - start)
        W = dirichlet_candidates(prior, n, seed=int(seeds[b]), strength_range=strength_range)  # (n, k)
        bad = ~cons.feasible(W)
        if bad.any():
            W[bad] = cons.project(W[bad])
        s = _scores(estimator, W, prior, uncertainty_weight, kl_weight)  # (n,)
        if n > top_k:
            keep = np.argpartition(s, top_k - 1)[:top_k]
            s, W = s[keep], W[keep]
        best_s = np.concatenate([best_s, s])
        best_w = np.concatenate([best_w, W])
        if best_s.size > top_k:
            keep = np.argpartition(best_s, top_k - 1)[:top_k]
            best_s, best_w = best_s[keep], best_w[keep]
        if progress is not None:
            progress(start + n, n_candidates)
    order = np.argsort(best_s, kind="stable")
    best_w = best_w[order]
    w = cons.project(best_w.mean(axis=0))
    mean, std, score = _summarise(estimator, w, prior, uncertainty_weight, kl_weight)
    return SearchResult(w, list(cons.domains), mean, std, score, best_w, n_candidates + 1, time.perf_counter() - t0, "simulate")


def optimize_mixture(
    estimator,
    x0,
    *,
    constraints: Constraints,
    prior: np.ndarray | None = None,
    kl_weight: float = 0.0,
    uncertainty_weight: float = 0.0,
    seed: int = 0,
    n_restarts: int = 4,
    maxiter: int = 200,
    popsize: int = 16,
    step: float = 0.05,
    tol: float = 1e-5,
) -> SearchResult:
    """Refine a mixture with a (1+lambda) evolution strategy on the bounded simplex.

    Each generation proposes ``popsize`` points ``project(x + sigma * d)`` with
    ``d`` a Gaussian direction in the sum-zero plane, scores them in one
    ``predict`` call and moves to the best if it improves strictly; ``sigma``
    grows by 1.5 on success and shrinks by 0.6 otherwise, stopping below ``tol``.
    Why this and not SLSQP: tree surrogates (LightGBM) are piecewise constant,
    so finite-difference gradients are zero or noise; the ES needs only
    rankings, projection keeps every iterate feasible exactly, and batching the
    population keeps the per-call overhead of ``predict`` small.

    Parameters
    ----------
    x0 : ndarray of shape (k,) or SearchResult
        Start point. A SearchResult also supplies restart points: ``n_restarts``
        rows drawn (seeded) from its ``top_k_weights``; otherwise restarts are
        seeded Dirichlet draws centred on ``x0``.
    prior : ndarray of shape (k,), optional
        Needed when ``kl_weight > 0``. Other scoring arguments are as in
        :func:`simulate_search`; ``step``/``tol`` are the first and last step
        lengths (Euclidean, weight units), ``maxiter`` generations per start.

    Returns
    -------
    SearchResult
        The best point over all starts (never worse than the projected ``x0``),
        with the end point of each start, best first, as ``top_k_weights``.
    """
    t0 = time.perf_counter()
    cons = constraints
    k = len(cons.domains)
    pool = None
    if isinstance(x0, SearchResult):
        pool = x0.top_k_weights
        x0 = x0.weights
    x0 = np.asarray(x0, dtype=float).reshape(-1)
    if x0.shape != (k,):
        raise ConfigError(f"x0 has {x0.size} weights, but the constraints cover {k} domains. Use one domain order for both.")
    if kl_weight and prior is None:
        raise ConfigError("kl_weight > 0 needs the prior. Pass prior= or set kl_weight=0.")
    prior = _check_prior(prior) if prior is not None else np.full(k, 1.0 / k)
    rng = np.random.default_rng(seed)
    starts = [cons.project(x0)]
    if n_restarts > 0:
        if pool is not None and len(pool) > 0:
            idx = rng.choice(len(pool), size=min(n_restarts, len(pool)), replace=False)
            starts += list(cons.project(pool[idx]))
        else:
            starts += list(cons.project(rng.dirichlet(np.maximum(starts[0], 1e-3) * 20.0, size=n_restarts)))

    def f(W):
        return _scores(estimator, W, prior, uncertainty_weight, kl_weight)

    ends, end_scores, n_eval = [], [], 0
    for x in starts:
        fx = f(x[None, :])[0]
        n_eval += 1
        sigma = step
        for _ in range(maxiter):
            Z = rng.standard_normal((popsize, k))
            Z -= Z.mean(axis=1, keepdims=True)
            Z /= np.linalg.norm(Z, axis=1, keepdims=True) + 1e-300
            radii = sigma * np.exp(rng.uniform(np.log(0.25), 0.0, size=(popsize, 1)))
            C = cons.project(x[None, :] + radii * Z)  # (popsize, k)
            fc = f(C)
            n_eval += popsize
            j = int(np.argmin(fc))
            if fc[j] < fx:
                x, fx, sigma = C[j], fc[j], min(sigma * 1.5, 1.0)
            else:
                sigma *= 0.6
                if sigma < tol:
                    break
        ends.append(x)
        end_scores.append(fx)
    order = np.argsort(end_scores, kind="stable")
    best = ends[order[0]]  # already a projection output: feasible, and not re-projected so its score is unchanged
    mean, std, score = _summarise(estimator, best, prior, uncertainty_weight, kl_weight)
    return SearchResult(best, list(cons.domains), mean, std, score, np.array([ends[i] for i in order]), n_eval + 1, time.perf_counter() - t0, "es")


def _check_prior(prior) -> np.ndarray:
    p = np.asarray(prior, dtype=float).reshape(-1)
    if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise MixtureError(f"The prior must be finite non-negative weights with a positive sum. Got {p}. Use temperature_prior(...) or a Mixture vector.")
    return p / p.sum()
