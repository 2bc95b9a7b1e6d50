"""Measured vs predicted: what the page says when a run in the store already beats the plan's prediction.

That happens often and is not a contradiction, for three reasons the page spells
out with the store's own numbers:

- **seed noise**: one run's loss scatters by the seed noise ``s`` (measured on
  mixtures trained with several seeds), and the lowest of ``n`` runs is picked
  partly for luck, by up to about ``-s * Phi^{-1}((1 - 0.375) / (n + 0.25))``
  (Blom's approximation of the expected smallest of ``n`` normal draws);
- **the model averages**: it predicts the best run's own mixture higher than
  that run measured, because it fits the mean over seeds;
- **scale**: the runs and a proxy-scale prediction are at the proxies' token
  count; the plan is for its budget, where only the projector predicts.

The gap is judged against ``2 * sqrt(s^2 + std_plan^2)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from ..errors import FitError
from ..plan import Plan
from ..runs.groups import repeat_groups
from ..surrogates.noise import seed_noise
from . import fmt
from .inputs import ModelView, StoreView, predict_at_runs


@dataclass
class BestRun:
    label: str
    value: float
    n_runs: int
    tokens: float | None  # training tokens of the run, when recorded
    model_value: float | None = None  # the model's prediction for the run's own mixture
    model_std: float | None = None
    tokens_range: tuple[float, float] | None = None  # the fewest and most tokens a store's run trained, when recorded


def expected_luck(sd: float, n: int) -> float:
    """How far below its mean the lowest of ``n`` runs lands, in expectation, from seed noise alone (≥ 0)."""
    if n < 2 or not sd:
        return 0.0
    return float(-sd * norm.ppf((1 - 0.375) / (n + 0.25)))


def store_seed_sd(store: StoreView, y: np.ndarray) -> tuple[float | None, int]:
    """Pooled seed-noise sd of ``y`` over the store's repeated mixtures, and its degrees of freedom (None, 0 without repeats)."""
    try:
        var, dof = seed_noise(y, repeat_groups(store.ok))
    except FitError:
        return None, 0
    return math.sqrt(var), int(dof)


def best_run(plan: Plan, store: StoreView | None, model: ModelView | None) -> BestRun | None:
    """The lowest measured value of the plan's metric: from the store, else from the plan's ``baselines['best-run']``."""
    metric = plan.predicted.metric
    known = (plan.predicted.baselines or {}).get("best-run") or {}
    if store is not None and store.table is not None:
        try:
            y = store.table.target(metric)
        except FitError:
            return None
        if not np.isfinite(y).any():
            return None
        i = int(np.nanargmin(y))
        rec = store.ok[i]
        tokens = (rec.scale or {}).get("tokens") or (rec.proxy or {}).get("tokens")
        best = BestRun(rec.label or rec.run_id[:10], float(y[i]), len(y), float(tokens) if tokens else None)
        trained = [float(t) for r in store.ok if (t := (r.scale or {}).get("tokens") or (r.proxy or {}).get("tokens"))]
        if trained:
            best.tokens_range = (min(trained), max(trained))
        if model is not None and sorted(model.meta.get("domains", [])) == sorted(store.table.domains):
            w = np.array([[store.table.W[i, store.table.domains.index(d)] for d in model.meta["domains"]]])
            out = predict_at_runs(model, w, store.table.model_params[i], store.table.tokens[i])
            best.model_value, best.model_std = (float(out[0][0]), float(out[1][0])) if isinstance(out, tuple) else (float(out[0]), None)
        elif known.get("value") is not None and known.get("label") == best.label:
            best.model_value, best.model_std = float(known["value"]), known.get("std")
        return best
    if known.get("measured") is None:
        return None
    return BestRun(str(known.get("label", "best run")), float(known["measured"]), 0, None,
                   None if known.get("value") is None else float(known["value"]), known.get("std"))


def measured_vs_predicted(plan: Plan | None, store: StoreView | None, model: ModelView | None
                          ) -> tuple[list[str], str | None, bool]:
    """Sentences for the page; a line for the top when a measured run beats the prediction (else None); and whether
    that line is a warning (the gap is beyond the noise band) rather than a notice (inside it: expected)."""
    if plan is None or plan.predicted is None:
        return [], None, False
    p = plan.predicted
    best = best_run(plan, store, model)
    if best is None:
        return [], None, False
    if best.value >= p.value:
        # the store's sweep runs only (StoreView.ok): verify's runs of the plan, on the same page, may well be lower
        below = f"The plan's prediction, {p.metric} = {p.value:.4f}, is below every sweep run (best: {best.label}, {best.value:.4f})."
        if best.tokens and not math.isclose(plan.budget_tokens, best.tokens):  # e.g. a prediction at the plan's larger budget
            below += " " + _scale_sentence(plan, best)
        return [below], None, False
    std = p.std or 0.0
    sd, dof = (p.seed_sd, None) if p.seed_sd else (None, 0)
    if sd is None and store is not None and store.table is not None:
        sd, dof = store_seed_sd(store, store.table.target(p.metric))
    gap = p.value - best.value
    opening = (f"The best sweep run, {best.label}, reached {p.metric} = {best.value:.4f}, {gap:.4f} below the plan's "
               f"prediction {p.value:.4f}{f' ± {std:.4f}' if std else ''}. That is expected, for these reasons.")
    lines = [opening]
    if sd:
        luck = expected_luck(sd, best.n_runs)
        source = f" ({dof} degrees of freedom from mixtures trained with several seeds)" if dof else ""
        lines.append(f"Seed noise: one run's {p.metric} scatters by sd {sd:.4f}{source}"
                     + (f"; the lowest of {best.n_runs} runs is picked partly for luck, by about {luck:.4f} on its own."
                        if luck else "."))
    else:
        lines.append("Seed noise: unknown, since no mixture was trained with several seeds; set sampler.noise_seeds >= 2 "
                     "and sweep again to measure it. A single run's loss is not its mixture's expected loss.")
    if best.model_value is not None:
        lines.append(f"The model predicts {best.label}'s own mixture at {best.model_value:.4f}"
                     + (f" ± {best.model_std:.4f}" if best.model_std else "")
                     + ": it fits the mean over seeds, not one lucky run; compare the plan's prediction with this, not with the measurement.")
    lines.append(_scale_sentence(plan, best))
    band = 2.0 * math.sqrt((sd or 0.0) ** 2 + std ** 2)
    inside = bool(band) and gap <= band
    if inside:
        lines.append(f"Verdict: the gap {gap:.4f} is inside the noise band ±{band:.4f}; the measurement does not contradict the plan.")
    else:
        lines.append(f"Verdict: the gap {gap:.4f} is beyond the noise band ±{band:.4f}. Train the plan's mixture and "
                     f"{best.label}'s with a few seeds each before trusting the prediction.")
    flag = (f"A sweep run ({best.label}, {best.value:.4f}) beats the plan's prediction ({p.value:.4f})"
            + (f" by {gap:.4f}, inside the noise band ±{band:.4f}: expected, not a contradiction" if inside else
               f" by {gap:.4f}, beyond the noise band ±{band:.4f}") + "; see \"Measured vs predicted\" below.")
    return lines, flag, not inside


def _scale_sentence(plan: Plan, best: BestRun) -> str:
    by = plan.predicted.by or {}
    sur = by.get("surrogate") if isinstance(by.get("surrogate"), Mapping) else {}
    proj = by.get("projector") if isinstance(by.get("projector"), Mapping) else {}
    tokens = best.tokens or proj.get("proxy_tokens")
    lo, hi = best.tokens_range or (tokens, tokens)
    runs = (f"the runs trained {fmt.tokens(lo)}-{fmt.tokens(hi)} tokens" if lo and hi and not math.isclose(lo, hi) else
            f"the runs trained {fmt.tokens(tokens)} tokens each" if tokens else "the runs trained at the proxies' size")
    if sur.get("scale") == "proxy" or (tokens and math.isclose(plan.budget_tokens, tokens)):
        s = f"Scale: {runs} and the prediction is at that proxy scale, not at the plan's budget of {fmt.tokens(plan.budget_tokens)} tokens"
        if proj.get("value") is not None and proj.get("tokens"):
            s += f"; at {fmt.tokens(float(proj['tokens']))} tokens the projector predicts {float(proj['value']):.4f}" + (
                " for the plan without its end phase" if plan.predicted.end_phase else "")
        return s + "."
    return (f"Scale: the prediction is for the plan's budget of {fmt.tokens(plan.budget_tokens)} tokens while {runs}; "
            "losses at different budgets are not directly comparable.")
