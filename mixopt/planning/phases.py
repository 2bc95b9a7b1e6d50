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

from ..errors import ConfigError, FitError, MixtureError
from ..mixtures import Mixture, project_to_bounded_simplex, round_shares
from ..samplers import UPSAMPLE_RANGE, check_fraction_range
from ..runs.table import records_table, usable_records
from ..surrogates.two_phase import phase_features


#: The least share an end phase must add to the target's domains to count as upsampling them (``search_upsampling``'s
#: ``toward``): one point of the mixture.
MIN_UPSAMPLE = 0.01


# ---------------------------------------------------------------- from the run store

def records_to_phase_data(records, domains: Sequence[str], target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Base mixtures P (n, k), end mixtures Q (n, k), end fractions F (n,) and the target y (n,).

    Uses the usable runs (``ok``, finite metrics) with one or two phases: a single-phase run gives
    ``q = p, f = 0``; a run with phases ``[(0, p), (start, q)]`` gives ``f = 1 - start``. Runs with more phases
    are left out (the model is two-phase). ``target`` is any name ``RunTable.target`` accepts.
    """
    domains, records = list(domains), list(records)
    keep = usable_records(records, max_phases=1)
    if not keep:
        raise FitError(f"No finished runs to learn from: {len(records)} record(s), none ok with finite metrics and at most "
                       "two phases. Run the sweep first.")
    y = np.asarray(records_table(keep).target(target), dtype=float)
    P, Q, F = [], [], []
    for r in keep:
        (_, p), *later = r.phases
        p = p.vector(domains)
        q, f = (later[0][1].vector(domains), 1.0 - float(later[0][0])) if later else (p, 0.0)
        P.append(p), Q.append(q), F.append(f)
    ok = np.isfinite(y)
    if not ok.any():
        raise FitError(f"No finished run has a finite value of target '{target}'. Name a metric the runs recorded.")
    return np.array(P)[ok], np.array(Q)[ok], np.array(F)[ok], y[ok]


END_FRACTION = 0.2  # ``moved_to_end``: the end phase is the last 20% of the tokens (WSD's default decay share)
END_BOOST = 3.0  # and gives the moved domain this many times its overall share (at most 1)


def moved_to_end(p_map: Mapping[str, float], domain: str, f: float = END_FRACTION, boost: float = END_BOOST) -> list:
    """``[(0, p'), (1 - f, q)]``: ``p_map``'s overall shares, with part of ``domain``'s tokens moved into the last ``f``.

    ``q_d = min(1, boost p_d, p_d / f)``, the other domains keep their ratios in both phases, and the first phase is
    ``(p - f q) / (1 - f)``, so the run spends exactly ``p_map``'s tokens on every domain.
    """
    domains = sorted(p_map)
    p = np.array([float(p_map[d]) for d in domains])
    i = domains.index(domain)
    if not 0 < p[i] < 1:
        raise MixtureError(f"moved_to_end needs {domain} with a share in (0, 1); got {p[i]:g}.")
    q_d = min(1.0, boost * p[i], p[i] / f)
    q = p * (1.0 - q_d) / (1.0 - p[i])
    q[i] = q_d
    first = np.maximum(p - f * q, 0.0) / (1.0 - f)
    return [(0.0, Mixture.from_vector(first / first.sum(), domains, drop_zeros=True)),
            (round(1.0 - f, 6), Mixture.from_vector(q / q.sum(), domains, drop_zeros=True))]


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


def search_upsampling(model, p, *, constraints=None, f_range: tuple[float, float] = UPSAMPLE_RANGE, n_candidates: int = 20000,
                      seed: int = 0, uncertainty_weight: float = 0.0, domains: Sequence[str] | None = None,
                      n_fractions: int = 11, keep_overall: bool = False, tilt_box: tuple | None = None,
                      toward: Sequence[int] | None = None) -> dict:
    """Best end phase ``(q, f)`` for base mixture ``p`` under a fitted two-phase model; lower metric is better.

    ``f`` is searched on ``n_fractions`` evenly spaced values of ``f_range``; at each, ``q`` candidates
    (Dirichlet draws around ``p`` and ``p`` mixed toward 1-3 domains) are projected so that the *overall*
    share ``r = (1 - f) p + f q`` stays inside ``constraints`` (a ``Constraints``: its epoch caps bound
    total tokens, so a short end phase may exceed them on its own). Score = mean + uncertainty_weight * std.

    With ``keep_overall=True`` the run keeps ``p`` as its *overall* token share and only moves tokens in
    time: the first phase becomes ``p' = (p - f q) / (1 - f)`` (so ``q <= p / f``). Use it when ``p`` sits on
    a binding cap (e.g. a scarce domain's epoch cap), where an end phase on top of ``p`` has no room.

    ``toward`` (column indices: the domains the target measures) keeps only end phases that *upsample* them: the end
    phase gives them at least ``MIN_UPSAMPLE`` more than the first phase's total share. An end phase that only keeps
    their share and reshuffles the rest is not upsampling: with code at its 20% cap, the one such phase proposed trained
    0.037 [0.003, 0.072] worse on val/code than the plan without it (verify_upsampling.py --case cap --quick).
    Unconstrained, the two-phase model proposed end phases that moved away from a `val/prose` target (prose
    0.91 -> 0.47 at the end, and 0.69 -> 0.32); trained at 16x the proxies' tokens both lost to the same plan without
    them (+0.025 and +0.132 nats; benchmarks/verify_plans.py, RESULTS.md).

    ``p`` is a ``{domain: w}`` mapping or a (k,) vector in ``domains`` (or ``constraints.domains``) order.
    Returns ``{p, q, f, predicted, std, baseline_predicted, baseline_std, helps, overall, domains}``: ``p``
    (the first phase's mixture), ``q`` and ``overall`` (= r) as ``{domain: w}``; baseline = the input ``p``
    alone (q = p, f = 0); ``helps`` is true only when the two-phase mean beats the baseline mean by more
    than ``sqrt(std^2 + baseline_std^2)``.
    """
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
    b_mean, b_std = model.predict(phase_features(pv, pv, 0.0), return_std=True)
    b_mean, b_std = float(b_mean[0]), float(b_std[0])
    inside = np.ones(len(F), dtype=bool)
    if tilt_box is not None:  # interpolate only: end phases that lean no further than the sweep's two-phase runs did
        inside &= in_tilt_box(P0, Q, F, tilt_box)
    if toward is not None and len(toward):  # upsample the target's domains, never move away from them
        cols = np.asarray(toward, dtype=int)
        inside &= Q[:, cols].sum(1) >= P0[:, cols].sum(1) + MIN_UPSAMPLE
    if tilt_box is not None or toward is not None:
        if not inside.any():
            return {"p": {d: float(x) for d, x in zip(names, pv)}, "q": {d: float(x) for d, x in zip(names, pv)}, "f": 0.0,
                    "predicted": b_mean, "std": b_std, "baseline_predicted": b_mean, "baseline_std": b_std, "helps": False,
                    "overall": {d: float(x) for d, x in zip(names, pv)}, "domains": names, "trusted": 0}
        P0, Q, F = P0[inside], Q[inside], F[inside]
    mean, std = model.predict(phase_features(P0, Q, F), return_std=True)
    score = mean + uncertainty_weight * std
    i = int(np.argmin(score))
    p0, q, f = P0[i], Q[i], float(F[i])
    helps = bool(b_mean - mean[i] > math.hypot(std[i], b_std))
    r = (1 - f) * p0 + f * q
    return {
        "p": {d: float(x) for d, x in zip(names, p0)}, "q": {d: float(x) for d, x in zip(names, q)}, "f": f, "predicted": float(mean[i]), "std": float(std[i]),
        "baseline_predicted": b_mean, "baseline_std": b_std, "helps": helps,
        "overall": {d: float(x) for d, x in zip(names, r)}, "domains": names, "trusted": int(len(F)),
    }


def tilt_box(P: np.ndarray, Q: np.ndarray, F: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-domain range of the end-phase tilt ``f * (q - r)`` over the two-phase runs, widened by ``margin`` of its width.

    The two-phase model is trusted only inside this box: outside it, its linear kernel extrapolates without bound
    (a 'gain' of tens of nats on losses near 3). None when there are no two-phase runs.
    """
    two = F > 0
    if not two.any():
        return None
    T = _tilts(P[two], Q[two], F[two])
    lo, hi = T.min(0), T.max(0)
    pad = margin * np.maximum(hi - lo, 1e-9)
    return lo - pad, hi + pad


def in_tilt_box(P: np.ndarray, Q: np.ndarray, F: np.ndarray, box: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(n,) rows whose tilt lies inside ``box`` (see :func:`tilt_box`)."""
    T = _tilts(P, Q, F)
    return np.all((T >= box[0]) & (T <= box[1]), axis=1)


def _tilts(P, Q, F) -> np.ndarray:
    F = np.asarray(F, dtype=float)[:, None]
    R = (1.0 - F) * P + F * Q
    return F * (Q - R)


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
