"""`propose`: turn a fitted surrogate (and optionally the OT projector) into a Plan.

The surrogate ranks mixtures at proxy scale; search picks the best mixture that
respects per-domain bounds and the repetition cap at the target budget; the
repetition model reports what each domain's repetition is worth; the plan says
which constraints bind and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import ProposeConfig
from ..mixtures import overall_shares, round_shares, temperature_prior
from ..plan import Phase, Plan, Prediction
from ..repetition import effective_tokens
from .search import Constraints, SearchResult, optimize_mixture, simulate_search


@dataclass
class ProposeContext:
    """What propose knows about the data and where the model came from."""

    domains: list[str]  # the surrogate's column order
    target: str
    token_counts: dict[str, int] = field(default_factory=dict)  # unique tokens per domain (empty for imported runs)
    tokens_per_doc: dict[str, float] = field(default_factory=dict)
    train_mixtures: np.ndarray | None = None  # (n, k) mixtures the surrogate was fitted on
    proxy_tokens: float | None = None  # tokens per proxy run
    specs: list | None = None  # the config's DomainSpecs, for quality pools cut by a score column
    records: list | None = None  # the store's RunRecords, for the two-phase (upsampling) model
    provenance: dict[str, Any] = field(default_factory=dict)


def search_prior(ctx: ProposeContext) -> np.ndarray:
    """RegMix's prior (token share ** 0.5) when token counts are known, else the mean fitted mixture."""
    if ctx.token_counts and set(ctx.domains) <= set(ctx.token_counts):
        return temperature_prior({d: ctx.token_counts[d] for d in ctx.domains}, 0.5).vector(ctx.domains)
    if ctx.train_mixtures is not None and len(ctx.train_mixtures):
        p = ctx.train_mixtures.mean(axis=0)
        return p / p.sum()
    return np.full(len(ctx.domains), 1.0 / len(ctx.domains))


def search_mixture(estimator, ctx: ProposeContext, cfg: ProposeConfig, budget_tokens: float | None, *, seed: int = 0) -> tuple[SearchResult, Constraints]:
    """Simulation search (RegMix) refined by the constrained optimizer; the better score wins."""
    counts = ctx.token_counts if ctx.token_counts and budget_tokens else None
    constraints = Constraints.build(
        ctx.domains, min_weights=cfg.min_weights or None, max_weights=cfg.max_weights or None,
        token_counts=counts, budget_tokens=budget_tokens if counts else None, max_epochs=cfg.max_epochs if counts else None,
    )
    prior = search_prior(ctx)
    coarse = simulate_search(estimator, prior, constraints=constraints, n_candidates=cfg.n_candidates, top_k=cfg.top_k, seed=seed,
                             uncertainty_weight=cfg.uncertainty_weight, kl_weight=cfg.kl_weight, domains=ctx.domains)
    fine = optimize_mixture(estimator, coarse.weights, constraints=constraints, prior=prior, kl_weight=cfg.kl_weight,
                            uncertainty_weight=cfg.uncertainty_weight, seed=seed)
    return (fine if fine.score < coarse.score else coarse), constraints


def binding_reasons(w: np.ndarray, constraints: Constraints, ctx: ProposeContext, budget_tokens: float | None, cfg: ProposeConfig) -> list[str]:
    """Plain-language notes on which constraints hold the answer back."""
    reasons = []
    for i, d in enumerate(ctx.domains):
        if constraints.max_weights[i] < 1 and w[i] >= constraints.max_weights[i] - 1e-6:
            if ctx.token_counts and budget_tokens:
                ep = w[i] * budget_tokens / ctx.token_counts[d]
                explicit = cfg.max_weights.get(d)
                if explicit is not None and explicit <= constraints.max_weights[i] + 1e-9:
                    reasons.append(f"{d}: held at its max_weight {explicit:g}")
                else:
                    reasons.append(f"{d}: capped at {ep:.2f} epochs ({cfg.max_epochs:g} allowed) at {budget_tokens:.3g} tokens; more unique {d} data would let it grow")
            else:
                reasons.append(f"{d}: held at its max_weight {constraints.max_weights[i]:g}")
        if constraints.min_weights[i] > 0 and w[i] <= constraints.min_weights[i] + 1e-6:
            reasons.append(f"{d}: held at its min_weight {constraints.min_weights[i]:g}")
    if not reasons:
        reasons.append("no bound binds: the mixture is the surrogate's unconstrained optimum within the search")
    return reasons


def build_plan(estimator, ctx: ProposeContext, cfg: ProposeConfig, *, budget_tokens: float | None, seed: int = 0,
               projector=None, model_params: float | None = None) -> Plan:
    """Search, then assemble the plan file with epochs, effective tokens, predictions and reasons."""
    budget = budget_tokens or cfg.budget_tokens or (4 * ctx.proxy_tokens if ctx.proxy_tokens else None)
    result, constraints = search_mixture(estimator, ctx, cfg, budget, seed=seed)
    w = result.weights
    weights = {d: float(x) for d, x in zip(ctx.domains, w) if x > 0}
    if cfg.cooldown_switch is not None:
        phases, upsample_note = cooldown_phases(ctx, cfg)
        overall = overall_shares([(p.start_fraction, p.weights) for p in phases])
        w = np.array([overall.get(d, 0.0) for d in ctx.domains])
        weights = {d: x for d, x in overall.items() if x > 0}
        mean, std = estimator.predict(w[None, :], return_std=True)
        result.predicted, result.std = float(mean[0]), float(std[0])
    else:
        phases, upsample_note = upsampling_phases(w, weights, ctx, cfg, constraints, seed)
        overall = overall_shares([(p.start_fraction, p.weights) for p in phases])
    epochs, eff = {}, {}
    if ctx.token_counts and budget:
        for d, x in overall.items():
            used = x * budget
            epochs[d] = round(used / ctx.token_counts[d], 6)
            eff[d] = float(effective_tokens(used, ctx.token_counts[d]))
    by: dict[str, Any] = {"surrogate": {"value": result.predicted, "std": result.std, "scale": "proxy", "search": result.method}}
    disagreement = None
    if projector is not None:
        proj = projector(w, budget)
        by["projector"] = proj
        if "value_at_proxy" in proj:
            gap = abs(proj["value_at_proxy"] - result.predicted)
            disagreement = bool(gap > math.hypot(result.std, proj.get("std_at_proxy", 0.0)) + 1e-12)
    reasons = binding_reasons(w, constraints, ctx, budget, cfg)
    pools_kept: dict[str, list[str]] = {}
    extra: dict[str, Any] = {}
    if cfg.pools and budget:
        from .quality import plan_quality_pools

        pools_kept, pool_reasons, pool_frontier = plan_quality_pools(
            weights, budget, cfg.pools, token_counts=ctx.token_counts, tokens_per_doc=ctx.tokens_per_doc, specs=ctx.specs)
        reasons += pool_reasons
        first = sorted(cfg.pools)[0]  # the report plots one domain's frontier; the rest stay in reasons
        extra["frontier"] = [r for r in pool_frontier if r.get("domain") == first]
    if upsample_note:
        reasons.append(upsample_note)
    if eff:
        lossy = [d for d in overall if epochs[d] > 1 and eff[d] < 0.95 * overall[d] * budget]
        for d in lossy:
            reasons.append(f"{d}: repeated {epochs[d]:.1f}x, worth {eff[d] / (overall[d] * budget):.0%} of fresh tokens (Muennighoff et al.)")
    if model_params and eff and budget:
        reasons.append(repetition_cost_note(model_params, budget, weights, ctx.token_counts))
    if disagreement:
        reasons.append("surrogate and projector disagree beyond their uncertainty: train a few more proxies near this mixture")
    provenance = dict(ctx.provenance)
    if model_params:
        provenance["model_params"] = model_params
    from .. import __version__

    provenance.setdefault("mixopt_version", __version__)
    return Plan(
        budget_tokens=float(budget) if budget else float(ctx.proxy_tokens or 1.0),
        phases=phases,
        epochs=epochs, effective_tokens=eff, pools=pools_kept,
        predicted=Prediction(metric=ctx.target, value=result.predicted, std=result.std, by=by, disagreement=disagreement),
        reasons=reasons, tokens_per_doc={d: float(v) for d, v in ctx.tokens_per_doc.items() if d in weights},
        provenance=provenance, **extra,
    )


def upsampling_phases(w: np.ndarray, weights: dict[str, float], ctx: ProposeContext, cfg: ProposeConfig,
                      constraints: Constraints, seed: int) -> tuple[list[Phase], str]:
    """An end-of-training upsampling phase when the two-phase model says it helps beyond its uncertainty.

    Needs at least 3 two-phase runs in the store (``sampler.two_phase_runs``); otherwise one phase.
    """
    single = [Phase(start_fraction=0.0, weights=round_shares(weights))]
    if not cfg.upsample or not ctx.records:
        return single, ""
    from .phases import TwoPhaseSurrogate, phase_features, plan_phases, records_to_phase_data, search_upsampling

    P, Q, F, y = records_to_phase_data(ctx.records, ctx.domains, ctx.target)
    if int((F > 0).sum()) < 3:
        return single, ""
    model = TwoPhaseSurrogate(random_state=seed).fit(phase_features(P, Q, F), y)
    up = search_upsampling(model, w, constraints=constraints, domains=ctx.domains, seed=seed,
                           f_range=(cfg.upsample_fraction_min, cfg.upsample_fraction_max),
                           n_candidates=min(cfg.n_candidates, 20000), uncertainty_weight=cfg.uncertainty_weight)
    gain = up["baseline_predicted"] - up["predicted"]
    if not up["helps"]:
        return single, (f"no upsampling phase: the best end phase (last {up['f']:.0%}) gains {gain:.4f}, "
                        f"within the two-phase model's uncertainty")
    phases = [Phase(**ph) for ph in plan_phases(weights, up)]
    return phases, f"upsampling phase for the last {up['f']:.0%} of tokens: predicted gain {gain:.4f} (two-phase model)"


def cooldown_phases(ctx: ProposeContext, cfg: ProposeConfig) -> tuple[list[Phase], str]:
    """The Cooldown temperature schedule: p(i; tau) ∝ |D_i|^(1/tau), tau = 5 then tau = 1 at the switch point."""
    from ..errors import ConfigError
    from .phases import cooldown_schedule

    if not ctx.token_counts:
        raise ConfigError("The Cooldown schedule needs per-domain token counts, which this store lacks (imported runs). "
                          "Drop propose.cooldown_switch or fit on a store made by `mixopt sweep`.")
    sched = cooldown_schedule({d: ctx.token_counts[d] for d in ctx.domains}, switch_fraction=cfg.cooldown_switch)
    phases = [Phase(start_fraction=s, weights=round_shares(w)) for s, w in sched]
    return phases, (f"Cooldown schedule: temperature 5 until {cfg.cooldown_switch:.0%} of tokens, then 1 (token-proportional); "
                    "predicted by the surrogate at its whole-run token shares")


def repetition_cost_note(model_params: float, budget: float, weights: Mapping[str, float], token_counts: Mapping[str, int]) -> str:
    """What repetition costs at this model size, by Muennighoff et al.'s data-constrained law.

    The unique data the plan can draw on is the sum over domains of min(weight x D, U_i)
    (a domain cannot contribute more fresh tokens than it holds).
    """
    from ..repetition import data_constrained_loss

    unique = sum(min(w * budget, token_counts[d]) for d, w in weights.items())
    constrained = float(data_constrained_loss(model_params, budget, unique))
    fresh = float(data_constrained_loss(model_params, budget, budget))
    return (f"data-constrained law at N={model_params:.3g} params, D={budget:.3g} tokens, U={unique:.3g} unique: "
            f"loss {constrained:.4f} vs {fresh:.4f} with all-fresh data (+{constrained - fresh:.4f} from repetition)")
