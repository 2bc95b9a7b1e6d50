"""Which quality pools a plan keeps of each pooled domain, and the frontier around the plan's budget.

At the plan's budget a pooled domain gets ``share * budget_tokens`` tokens (its
whole-run share); `choose_pools` turns them into samples and keeps the top-k
pools (ranked by ``b``) whose union the Goyal et al. (2024) law predicts to give
the lowest error: the best pool alone (aggressive filtering) while the budget is
small, more pools once the best one would be repeated too often. A set the
domain's tokens would repeat more than ``propose.max_epochs`` is not chosen (the
plan's search caps a pooled domain's share by all its pools' tokens, so one set
always fits), and the plan's epochs, effective tokens and tokens per document of
the domain count the kept pools, all it trains of the domain.

**Unequal pool sizes.** The law assumes ``m`` pools of equal size. For the top-k
set we pass ``pool_size`` = the mean sample count of those k pools, so the epoch
length (their total size) and the repetition count are exact; the utility stays
the law's unweighted mean over pools, so a small pool weighs as much as a big one.

**Small budgets.** Where ``n = a * samples / normalizer < 1`` the law inverts
(``n^b`` grows with ``|b|``, so it prefers weaker pools). There it does not
decide: the fewest best pools (by ``b``) that hold the domain's tokens without
repetition are kept (all of them when even those repeat), and the reason says
so. With `mixopt select`'s pools (a sample is the domain's mean document; every pool and budget is counted in that
one unit, `quality.resolve_domain_pools`) and the prior's
``a = 0.025`` and 1e5 the law holds from 4M documents drawn, which a domain of
under 1M documents never reaches within ``max_epochs`` 4; measured laws
(`pool_value`) are fitted with ``n >= 1.2`` at their smallest run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import DomainPools, DomainSpec
from ..errors import BudgetError, ConfigError
from ..repetition import Pool, best_pool_count, pool_error
from .quality import PooledDomain, ResolvedPool, _as_domain_pools, normalizer_of, resolve_domain_pools

FRONTIER_FACTORS = tuple(2.0**k for k in range(-6, 7))  # budgets around the plan's, for the frontier plot
FRONTIER_MAX_REPETITIONS = 1e5  # frontier points repeating the smallest pool more often are left out (cost ~ m * epochs)


@dataclass(frozen=True)
class PoolChoice:
    """The planner's decision for one domain at one budget."""

    domain: str
    kept: list[str]  # names of the kept pools, best first
    errors: list[float]  # predicted error of the top-1, top-2, ... sets (ranked by b)
    ranked: list[str]  # pool names in the order `errors` adds them
    samples_budget: float  # the domain's tokens at this budget / tokens_per_sample
    repetitions_of_kept: dict[str, float]  # epochs over each kept pool (uniform sampling of the union)
    reason: str
    tokens: float = 0.0  # unique tokens of the kept pools together: what the plan's epochs of the domain count
    documents: float | None = None  # documents of the kept pools (None when a kept pool's count is unknown)
    rule: str = "law"  # "law": the lowest predicted error (within max_epochs); "coverage": the law's inverted regime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def set_errors(ranked: Sequence[ResolvedPool], samples: float, dpools: DomainPools) -> list[float]:
    """Predicted error of the top-1..top-m sets of ``ranked`` pools at ``samples`` (pool_size = each set's mean size)."""
    return [pool_error([Pool(p.name, p.b, p.tau) for p in ranked[:k]], samples, a=dpools.a, d=dpools.d,
                       pool_size=float(np.mean([p.samples for p in ranked[:k]])), objective=dpools.objective,
                       normalizer=normalizer_of(dpools))
            for k in range(1, len(ranked) + 1)]


def choose_pools(domain: str, resolved: Sequence[ResolvedPool], dpools: DomainPools | Mapping,
                 domain_tokens_at_budget: float, *, max_epochs: float | None = None) -> PoolChoice:
    """Keep the top-k pools (ranked by ``b``) with the lowest predicted error at this domain's token budget.

    ``max_epochs`` (the plan's repetition cap, ``propose.max_epochs``) leaves out every set that the domain's tokens
    would repeat more often: the best set within the cap is kept, and the reason says when the cap binds. Where
    ``a * samples / normalizer < 1`` the law is outside the range it was fitted on and prefers weaker pools (``n^b``
    grows with ``|b|`` below 1), so it does not decide: the fewest best pools that hold the domain's tokens without
    repetition are kept (all of them when even those repeat), ``rule = "coverage"``.
    """
    dp = _as_domain_pools(domain, dpools)
    if not resolved:
        raise ConfigError(f"Domain '{domain}' has no resolved quality pools. Call resolve_pools first.")
    tokens = float(domain_tokens_at_budget)
    if not (math.isfinite(tokens) and tokens >= 0):
        raise BudgetError(f"Tokens of domain '{domain}' at the budget must be finite and >= 0. Got {tokens!r}. "
                          "Pass weight * budget_tokens.")
    if max_epochs is not None and not (math.isfinite(max_epochs) and max_epochs > 0):
        raise ConfigError(f"max_epochs must be finite and > 0. Got {max_epochs!r}. Set propose.max_epochs.")
    ranked = sorted(resolved, key=lambda p: p.b)
    names = [p.name for p in ranked]
    if tokens == 0:
        return PoolChoice(domain, [], [], names, 0.0, {}, f"{domain}: no tokens at this budget, so no quality pool is used")
    m = len(ranked)
    S = tokens / ranked[0].tokens_per_sample
    errors = set_errors(ranked, S, dp)
    reps = [S / s for s in np.cumsum([p.samples for p in ranked])]  # reps[k - 1]: passes over the top-k set
    cap = math.inf if max_epochs is None else max_epochs * (1 + 1e-9)
    allowed = [k for k in range(1, m + 1) if reps[k - 1] <= cap]
    norm = normalizer_of(dp)
    n0 = dp.a * S / norm
    law_k = best_pool_count(errors)  # the law's choice without the cap
    why: list[str] = []
    if n0 < 1:
        rule = "coverage"
        k = next((k for k in range(1, m + 1) if reps[k - 1] <= min(1.0, cap)), m)
    else:
        rule = "law"
        k = min(allowed, key=lambda j: errors[j - 1]) if allowed else m
    head = (f"{domain}: keep {k} of {m} quality pools ({', '.join(names[:k])}) at {S:.3g} samples ({tokens:.3g} tokens), "
            f"repeating them {reps[k - 1]:.2f}x")
    if rule == "law":
        why.append(f"{head} (predicted error {errors[k - 1]:.4g})")
        if k > law_k:
            why.append(f"the law's best set, the top {law_k} (error {errors[law_k - 1]:.4g}), would be repeated "
                       f"{reps[law_k - 1]:.2f}x, over propose.max_epochs {max_epochs:g}: the cap binds")
        elif k > 1:
            why.append(f"the top {k - 1} alone would be repeated {reps[k - 2]:.2f}x (error {errors[k - 2]:.4g})")
        if k < m:
            why.append(f"adding {names[k]} (b={ranked[k].b:.3g}) would dilute the better pools (error {errors[k]:.4g})")
    else:
        covered = reps[k - 1] <= 1.0 + 1e-9
        why.append(f"{head}: the fewest best pools (by b) that hold its tokens "
                   + ("without repetition" if covered else "(even all of them repeat)"))
        why.append(f"a * samples / {norm:g} = {n0:.3g} < 1, below the range the law was fitted on (there it favours "
                   f"weaker pools: its lowest error would be the top {law_k}), so the law does not decide; measure the "
                   f"pools' laws (propose --measure-pools) or set propose.pools.{domain}.normalizer with laws fitted "
                   "at that scale to let it choose")
    if not allowed:
        why.append(f"even all {m} pools are repeated {reps[m - 1]:.2f}x, over propose.max_epochs {max_epochs:g}: "
                   f"lower {domain}'s share or add pools")
    fits = [p for p in ranked if p.law_source == "fit"]
    if fits:
        why.append("b/tau measured by proxy runs: " + ", ".join(f"{p.name} b={p.b:.3g} tau={p.tau:.3g}" for p in fits))
    unmeasured = [p.name for p in ranked if p.law_source == "prior" and p.law_reason in ("", "T-MARS prior: not measured")]
    if unmeasured:
        why.append(f"b/tau of {', '.join(unmeasured)} are T-MARS priors, not measured")
    why += [f"{p.name} uses its T-MARS prior: {p.law_reason.removeprefix('T-MARS prior: ')}" for p in ranked
            if p.law_source == "prior" and p.name not in unmeasured]
    if fits and len(fits) < len(ranked) and any(p.law_source == "prior" for p in ranked):
        why.append("measured and prior b come from different data, so their order against each other is a guess")
    kept = ranked[:k]
    docs = [p.documents for p in kept]
    return PoolChoice(domain, names[:k], errors, names, S, {n: reps[k - 1] for n in names[:k]}, "; ".join(why),
                      tokens=float(sum(p.tokens for p in kept)),
                      documents=None if any(d is None for d in docs) else float(sum(docs)), rule=rule)


def _spec_map(specs: Any) -> dict[str, DomainSpec]:
    if specs is None:
        return {}
    if isinstance(specs, Mapping):
        return dict(specs)
    return {s.name: s for s in specs}


def resolve_plan_pools(
    pools_cfg: Mapping[str, DomainPools | Mapping],
    *,
    used: Sequence[str],
    known: Sequence[str] = (),
    token_counts: Mapping[str, int] | None = None,
    tokens_per_doc: Mapping[str, float] | None = None,
    specs: Mapping[str, DomainSpec] | Sequence[DomainSpec] | None = None,
    observations: Mapping[str, Mapping[str, Any]] | None = None,
    tokenizer: str = "bytes",
    val_fraction: float | None = None,
) -> dict[str, PooledDomain]:
    """Every pooled domain among ``used`` (the domains the plan may train), sized and with its laws, by name.
    ``val_fraction``: the config's ``data.val_fraction`` (score buckets count the domain's training documents only).

    A domain of ``pools_cfg`` that is neither used, in ``known``, in ``token_counts`` nor in ``specs`` is a
    ConfigError (a typo); one that is known but not used is left out."""
    counts, per_doc, spec_map = dict(token_counts or {}), dict(tokens_per_doc or {}), _spec_map(specs)
    everything = set(used) | set(known) | set(counts) | set(spec_map)
    out: dict[str, PooledDomain] = {}
    for domain in sorted(pools_cfg):
        if domain not in everything:
            raise ConfigError(f"propose.pools names domain '{domain}', which is not a training domain "
                              f"(known: {sorted(everything)}). Fix the name or add the domain under data.")
        if domain not in used:
            continue
        out[domain] = resolve_domain_pools(domain, pools_cfg[domain], unique_tokens=counts.get(domain),
                                           mean_tokens_per_doc=per_doc.get(domain), spec=spec_map.get(domain),
                                           observations=(observations or {}).get(domain), tokenizer=tokenizer,
                                           val_fraction=val_fraction)
    return out


def choose_plan_pools(
    shares: Mapping[str, float],
    budget_tokens: float,
    pooled: Mapping[str, PooledDomain],
    *,
    names: Sequence[str] | None = None,
    max_epochs: float | None = None,
    frontier_factors: Sequence[float] = FRONTIER_FACTORS,
) -> tuple[dict[str, PoolChoice], list[str], list[dict[str, Any]]]:
    """Which pools each pooled domain keeps at its whole-run token share of the budget, under ``max_epochs``.

    Returns ``(choices, reasons, frontier)``: a `PoolChoice` per pooled domain in the mixture; one reason per domain
    of ``names`` (default: ``pooled``'s), with its pools' note (tokens in no bucket) where there is one; and the
    frontier rows (see `plan_quality_pools`), chosen by the same rule and cap at each budget."""
    budget = float(budget_tokens)
    if not (math.isfinite(budget) and budget > 0):
        raise BudgetError(f"budget_tokens must be finite and > 0. Got {budget_tokens!r}. Set propose.budget_tokens.")
    choices: dict[str, PoolChoice] = {}
    reasons: list[str] = []
    frontier: list[dict[str, Any]] = []
    for domain in sorted(names if names is not None else pooled):
        w = float(shares.get(domain, 0.0))
        if w <= 0 or domain not in pooled:
            reasons.append(f"{domain}: not in the mixture, so none of its quality pools is used")
            continue
        pd = pooled[domain]
        choice = choose_pools(domain, pd.resolved, pd.pools, w * budget, max_epochs=max_epochs)
        choices[domain] = choice
        reasons.append(choice.reason)
        if pd.note:
            reasons.append(pd.note)
        smallest = min(p.tokens for p in pd.resolved)
        for f in sorted(set(frontier_factors) | {1.0}):
            if f != 1.0 and w * budget * f / smallest > FRONTIER_MAX_REPETITIONS:
                continue  # absurd repetition far from the plan: leave that point out
            c = choice if f == 1.0 else choose_pools(domain, pd.resolved, pd.pools, w * budget * f, max_epochs=max_epochs)
            frontier.append({"domain": domain, "budget": c.samples_budget, "budget_tokens": budget * f,
                             "best": c.kept, "errors": c.errors, "at_plan": f == 1.0, "rule": c.rule})
    return choices, reasons, frontier


def plan_quality_pools(
    weights: Mapping[str, float],
    budget_tokens: float,
    pools_cfg: Mapping[str, DomainPools | Mapping],
    *,
    token_counts: Mapping[str, int] | None = None,
    tokens_per_doc: Mapping[str, float] | None = None,
    specs: Mapping[str, DomainSpec] | Sequence[DomainSpec] | None = None,
    observations: Mapping[str, Mapping[str, Any]] | None = None,
    tokenizer: str = "bytes",
    max_epochs: float | None = None,
    frontier_factors: Sequence[float] = FRONTIER_FACTORS,
    val_fraction: float | None = None,
) -> tuple[dict[str, list[str]], list[str], list[dict[str, Any]]]:
    """Which pools each domain keeps at the plan's budget, why, and the frontier around it.

    Returns ``(pools_kept, reasons, frontier)``: ``pools_kept`` maps each pooled
    domain in the mixture to its kept pool names; ``frontier`` has one
    `plan_pools`-style row ``{domain, budget (samples), budget_tokens (plan),
    best, errors, at_plan}`` per domain and budget ``budget_tokens * factor``;
    plot one domain with ``mixopt.report.plots.plot_frontier([r for r in frontier if r["domain"] == d], path)``.
    ``observations`` is ``{domain: {pool: (samples, errors[, pool_size])}}``; ``max_epochs`` caps the repetition of
    the kept pools (`choose_pools`); ``val_fraction`` is the config's ``data.val_fraction`` (`resolve_plan_pools`). A row's ``rule`` says how ``best`` was chosen: ``"law"`` (its lowest error
    within the cap) or ``"coverage"`` (the law's inverted regime, see the module docstring).
    """
    budget = float(budget_tokens)
    if not (math.isfinite(budget) and budget > 0):
        raise BudgetError(f"budget_tokens must be finite and > 0. Got {budget_tokens!r}. Set propose.budget_tokens.")
    pooled = resolve_plan_pools(pools_cfg, used=[d for d, w in weights.items() if w > 0], known=list(weights),
                                token_counts=token_counts, tokens_per_doc=tokens_per_doc, specs=specs,
                                observations=observations, tokenizer=tokenizer, val_fraction=val_fraction)
    choices, reasons, frontier = choose_plan_pools(weights, budget, pooled, names=list(pools_cfg), max_epochs=max_epochs,
                                                   frontier_factors=frontier_factors)
    return {d: c.kept for d, c in choices.items()}, reasons, frontier
