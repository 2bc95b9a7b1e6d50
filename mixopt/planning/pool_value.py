"""A quality pool's value under repetition, measured by proxy runs (Goyal et al. 2024's ``b`` and ``tau``).

`measure_pool_values` trains, for every pool of a domain that has documents of its own and no ``b``/``tau``
in the config, a proxy on ``U`` unique tokens of the pool for ``k * U`` tokens (``k`` in the repetition counts;
`mixopt.runs.pool_runs`, into the run store, resumable), then fits the law to the target losses:

* **Units.** A sample is ``tokens_per_sample`` tokens (the pools' setting, else the domain's mean document
  length, else the pools' mean document length: the unit `resolve_pools` plans in); it is pinned in the result.
* **Shared a, d** (`fit_shared_law`). The law's sample scale ``a`` and irreducible error ``d`` are shared by a
  domain's pools, so they are chosen on a grid (``d`` a fraction of the lowest loss, ``a`` so that
  ``n = a * S / normalizer`` at the smallest run spans 1.2 .. 1e4; the pools' ``normalizer``, else 1e5) with every
  pool's ``(b, tau)`` fitted by `fit_pool_decay` at each point; the lowest total squared log error wins. Errors
  are weighted toward the repeated points (``weighting="repetition"``, `repetition_fit.point_weights`): a small
  proxy's one-epoch run is undertrained and, weighed like the others, pulled b and tau away from the regime that
  decides the plan (benchmarks/RESULTS.md, filtering schedule). An ``a`` or ``d`` written in the pools config is kept and only
  the other is searched.
* **Per pool.** `resolve_pools` with the observations fits ``(b, tau)`` at the chosen ``a, d``; a pool whose fit
  is unusable (too few runs, ``b`` at a bound) keeps its T-MARS prior and says so in ``law_reason``.

The result's ``pools`` is a :class:`~mixopt.planning.quality.MeasuredPools`: put it where the config's pools
were and `propose` plans with the measured laws (``law_source`` "fit", "prior" or "config" per pool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..config import DomainPools, DomainSpec, ProxyConfig
from ..errors import FitError
from ..repetition import POOL_NORMALIZER
from ..repetition_fit import DEFAULT_WEIGHTING, PoolDecayFit, fit_pool_decay
from ..runs.pool_runs import DEFAULT_REPETITIONS, PoolRuns, PoolTarget, Progress, run_pool_runs
from ..runs.store import RunStore
from .quality import MeasuredPools, ResolvedPool, _as_domain_pools, law_table, normalizer_of, prior_params, resolve_pools

# The grid of the shared (a, d): d = fraction * the lowest observed loss; a such that n = a * S_min / normalizer at the
# smallest run is one of N0. Each point costs one `fit_pool_decay` per pool (~0.1 s), so the default grid is the
# coarse one (24 points); benchmarks/pools_frontier.py passes the fine one (70 points).
D_FRACTIONS = (0.0, 0.5, 0.8, 0.9)
N0 = tuple(float(v) for v in np.geomspace(1.2, 1e4, 6))
D_FRACTIONS_FINE = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
N0_FINE = tuple(float(v) for v in np.geomspace(1.2, 1e4, 10))


@dataclass
class PoolMeasurement:
    """One domain's measured pools: the pools to plan with, their resolved laws and the runs behind them."""

    domain: str
    pools: MeasuredPools
    resolved: list[ResolvedPool]
    runs: PoolRuns | None  # None when no pool needed measuring
    law_fit: str  # how a and d were set: "grid" (fitted), "config", or "none" (nothing measured)

    def laws(self) -> dict[str, dict]:
        return law_table(self.resolved)


def fit_shared_law(observations: Mapping[str, tuple], priors: Mapping[str, tuple[float, float]], *, objective: str = "effective_utility",
                   a: float | None = None, d: float | None = None, d_fractions: Sequence[float] = D_FRACTIONS,
                   n0: Sequence[float] = N0, weighting: str = DEFAULT_WEIGHTING,
                   normalizer: float = POOL_NORMALIZER) -> tuple[float, float, dict[str, PoolDecayFit]]:
    """``(a, d, fits)``: the shared ``a``, ``d`` on the grid with the lowest total squared log error over every
    pool's `fit_pool_decay`; a given ``a`` or ``d`` is held. ``observations[pool] = (samples, errors, pool_size)``,
    ``priors[pool] = (b, tau)``; ``fits`` are the per-pool fits at the chosen point. ``weighting`` weights each
    point's squared log error in the per-pool fits and in the grid's cost (`repetition_fit.point_weights`:
    "repetition", the default, favours the repeated points over the undertrained one-epoch point; "uniform").
    ``normalizer`` is the law's samples scale (the pools' ``normalizer``), for the ``a`` grid and the fits."""
    obs = {p: (np.asarray(s, float), np.asarray(y, float), float(size)) for p, (s, y, size) in observations.items() if len(s)}
    if not obs:
        raise FitError("No pool has a finished run to fit its law on. Check the failed runs in the store and train again.")
    y_min = min(float(y.min()) for _, y, _ in obs.values())
    s_min = min(float(s.min()) for s, _, _ in obs.values())
    d_grid = [d] if d is not None else [float(f * y_min) for f in d_fractions]
    a_grid = [a] if a is not None else [float(n * normalizer / s_min) for n in n0]
    best = None
    for dv in d_grid:
        for av in a_grid:
            fits = {p: fit_pool_decay(s, y, a=av, d=dv, pool_size=size, prior_b=priors[p][0], prior_tau=priors[p][1],
                                      objective=objective, weighting=weighting, normalizer=normalizer)
                    for p, (s, y, size) in obs.items()}
            cost = sum(f.n_points * f.weighted_rmse_log ** 2 for f in fits.values())
            if best is None or cost < best[0]:
                best = (cost, av, dv, fits)
    return best[1], best[2], best[3]


def measure_pool_values(domain: str, dpools: DomainPools | Mapping, *, target: PoolTarget, proxy: ProxyConfig,
                        store: RunStore, repetitions: Sequence[int] = DEFAULT_REPETITIONS, unique_tokens: int | None = None,
                        spec: DomainSpec | None = None, domain_tokens: int | None = None, mean_tokens_per_doc: float | None = None,
                        tokenizer: str = "bytes", seed: int = 0, max_documents: int | None = None, threads: int | None = None,
                        fine_grid: bool = False, progress: Progress | None = None,
                        val_fraction: float | None = None) -> PoolMeasurement:
    """Measure ``b``/``tau`` of the pools of ``domain`` by proxy runs on ``target`` (see the module docstring).

    ``domain_tokens`` and ``mean_tokens_per_doc`` are the domain's unique tokens and mean tokens per document
    (as `resolve_pools` takes them); ``spec`` its data spec (needed for score-bucket pools); ``val_fraction`` the
    config's ``data.val_fraction`` (score buckets are sized over the domain's training documents). Pools with ``b`` and
    ``tau`` in the config, or without documents of their own (share pools), are not trained on. ``fine_grid``
    searches the shared ``a``, ``d`` on the fine grid (70 points instead of 24).
    """
    dp = _as_domain_pools(domain, dpools)
    sized = resolve_pools(domain, dp, unique_tokens=domain_tokens, mean_tokens_per_doc=mean_tokens_per_doc, spec=spec,
                          tokenizer=tokenizer, max_documents=max_documents, val_fraction=val_fraction)
    tps = sized[0].tokens_per_sample
    base = {**dp.model_dump(include=set(DomainPools.model_fields)), "tokens_per_sample": tps}
    todo = [p.name for p in dp.pools if (p.b is None or p.tau is None) and (p.path is not None or p.is_bucket)]
    if not todo:
        pools = MeasuredPools.model_validate(base)
        return PoolMeasurement(domain, pools, resolve_pools(domain, pools, unique_tokens=domain_tokens,
                                                            mean_tokens_per_doc=mean_tokens_per_doc, spec=spec,
                                                            tokenizer=tokenizer, max_documents=max_documents, val_fraction=val_fraction), None, "none")
    runs = run_pool_runs(domain, dp, todo, target, proxy, store, repetitions=repetitions, unique_tokens=unique_tokens,
                         spec=spec, tokenizer=tokenizer, seed=seed, max_documents=max_documents, threads=threads,
                         progress=progress)
    obs = {p: (t / tps, y, size / tps) for p, (t, y, size) in runs.observations.items() if len(t)}
    set_fields = dp.model_fields_set
    held_a, held_d = ("a" in set_fields), ("d" in set_fields)
    law_fit = "config" if held_a and held_d else "grid"
    a, d = dp.a, dp.d
    if obs and law_fit == "grid":
        ranks = {p.name: r for r, p in enumerate(dp.pools)}
        grid = dict(d_fractions=D_FRACTIONS_FINE, n0=N0_FINE) if fine_grid else {}
        a, d, _ = fit_shared_law(obs, {p: prior_params(ranks[p]) for p in obs}, objective=dp.objective,
                                 a=dp.a if held_a else None, d=dp.d if held_d else None, normalizer=normalizer_of(dp), **grid)
    fitted = {**base, "a": a, "d": d}
    resolved = resolve_pools(domain, DomainPools.model_validate(fitted), unique_tokens=domain_tokens,
                             mean_tokens_per_doc=mean_tokens_per_doc, spec=spec, observations=obs, tokenizer=tokenizer,
                             max_documents=max_documents, val_fraction=val_fraction)
    for i, r in enumerate(resolved):
        if r.name in todo and r.name not in obs:
            resolved[i] = replace(r, law_reason="T-MARS prior: every run of this pool failed")
        elif r.law_source == "prior" and r.name not in todo:
            resolved[i] = replace(r, law_reason="T-MARS prior: the pool has no documents of its own to measure")
    measured = {"target": runs.target, "unique_tokens": runs.unique_tokens, "repetitions": list(runs.repetitions),
                "runs": runs.planned, "trained": runs.trained, "failed": len(runs.failed), "a_d": law_fit}
    laws = {n: v for n, v in law_table(resolved).items() if v["law_source"] != "config"}
    pools = MeasuredPools.model_validate({**fitted, "laws": laws,
                                          "observations": {p: [s.tolist(), y.tolist(), size] for p, (s, y, size) in obs.items()},
                                          "measured": measured})
    return PoolMeasurement(domain, pools, resolved, runs, law_fit)
