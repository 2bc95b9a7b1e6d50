"""Fit the two-stage OT projector on a run store's checkpoint curves.

The trainer records validation losses at several token counts; the two largest
shared checkpoints become the projector's sizes N0 < N1, and the projector then
carries any mixture's predicted loss to the target budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import DataError, FitError
from ..mixtures import mixture_rows, overall_shares
from ..runs.record import RunRecord
from ..runs.table import target_curve
from .ot_distance import MixtureOT
from .projector import TwoStageProjector

MIN_RUNS = 6



def checkpoint_losses(records: Sequence[RunRecord], metric: str, n_tokens: float) -> np.ndarray:
    """Losses of ``metric`` at checkpoint ``n_tokens`` from run records' curves, shape ``(n_runs,)``."""
    out = []
    for r, rec in enumerate(records):
        curve = target_curve(rec, metric)
        value = next((v for k, v in curve.items() if k == float(n_tokens)), None)
        if value is None:
            raise DataError(f"Run {r} has no '{metric}' loss at {n_tokens:g} tokens (it has checkpoints "
                            f"{sorted(curve)[:8]}). Pick a checkpoint every run recorded, or drop that run.")
        out.append(float(value))
    return np.asarray(out, dtype=float)


def shared_checkpoints(records: Sequence[RunRecord], target: str) -> list[float]:
    sets = [set(target_curve(r, target)) for r in records]
    return sorted(set.intersection(*sets)) if sets else []


def target_docs_for(target: str, val_docs: dict[str, list[str]], target_sets: dict[str, list[str]] | None = None) -> list[str]:
    """The documents a target metric measures: one domain's val docs, a target set, or all domains' val docs."""
    if target.startswith("val/") and target[4:] in val_docs:
        return val_docs[target[4:]]
    if target.startswith("target/") and target_sets and target[7:] in target_sets:
        return target_sets[target[7:]]
    per = max(1, min(len(v) for v in val_docs.values()))
    return [d for name in sorted(val_docs) for d in val_docs[name][:per]]


def fit_store_projector(records: Sequence[RunRecord], domains: list[str], target: str, source_features: dict[str, np.ndarray],
                        target_features: np.ndarray, *, method: str = "emd", alpha: float = 1e-3) -> TwoStageProjector:
    """TwoStageProjector on the runs' two largest shared checkpoints."""
    ok = [r for r in records if r.status == "ok" and target_curve(r, target)]
    if len(ok) < MIN_RUNS:
        raise FitError(f"The OT projector needs at least {MIN_RUNS} runs with checkpoint curves for '{target}'; got {len(ok)}. Run a larger sweep.")
    ckpts = shared_checkpoints(ok, target)
    if len(ckpts) < 2:
        ends = sorted({max(target_curve(r, target)) for r in ok})
        if len(ends) > 1 and all(len(target_curve(r, target)) >= 2 for r in ok):  # sizes trained other token budgets
            raise FitError(f"The OT projector needs two checkpoints (in tokens) every run shares, but the runs' sizes "
                           f"trained different budgets ({ends[0]:.3g}-{ends[-1]:.3g} tokens), so their checkpoints "
                           f"share {len(ckpts)}. It reads stores whose runs train one token budget; the surrogate "
                           "predicts across the sizes.")
        raise FitError(f"The OT projector needs two checkpoints every run shares; got {ckpts}. Set proxy.checkpoints to at least two fractions.")
    n0, n1 = ckpts[-2], ckpts[-1]
    # Each checkpoint's loss belongs to the token shares the run had trained on by then (a WSD decay branch trains on
    # the run's own batches): at the end (n1, in practice) the whole-run shares the surrogates use, at an earlier n0
    # of a two-phase run the phases cut there (phase 0 alone before the switch). Phase 0 for both (as before)
    # misplaced the end loss; whole-run shares for both would misplace the n0 loss the same way.
    W0 = mixture_rows([seen_shares(r, n0, target) for r in ok], domains)
    W1 = mixture_rows([seen_shares(r, n1, target) for r in ok], domains)
    y0, y1 = checkpoint_losses(ok, target, n0), checkpoint_losses(ok, target, n1)
    ot = MixtureOT({d: source_features[d] for d in domains}, target_features, method=method)
    changed = not np.allclose(W0, W1)  # some run changed phase before n1: stage 0 learns from the shares it saw at n0
    return TwoStageProjector(ot, n0=n0, n1=n1, alpha=alpha).fit(W1, y0, y1, W_n0=W0 if changed else None)


def seen_shares(rec: RunRecord, tokens: float, target: str) -> dict[str, float]:
    """Token shares a run had trained on by ``tokens``: its phases cut there. The whole-run shares
    (``overall_mixture``) at its end, phase 0 alone before its first switch. The run's length is its recorded
    ``scale.tokens``, else its last ``target`` checkpoint."""
    end = (rec.scale or {}).get("tokens")
    if not (isinstance(end, (int, float)) and math.isfinite(end) and end > 0):
        end = max(target_curve(rec, target))
    f = min(float(tokens) / float(end), 1.0)
    return overall_shares([(s / f, w) for s, w in rec.phases if s < f])


def projector_summary(proj: TwoStageProjector, w: np.ndarray, budget_tokens: float) -> dict:
    """Prediction at the budget and at the proxy's own size (to compare with the surrogate)."""
    at_budget, std_budget = proj.predict(w[None, :], n_tokens=budget_tokens, return_std=True)
    at_proxy, std_proxy = proj.predict(w[None, :], n_tokens=proj.n1, return_std=True)
    return {"value": float(at_budget[0]), "std": float(std_budget[0]), "tokens": float(budget_tokens),
            "value_at_proxy": float(at_proxy[0]), "std_at_proxy": float(std_proxy[0]), "proxy_tokens": float(proj.n1)}
