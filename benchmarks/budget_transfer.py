"""Predict at a larger token budget from one proxy size: fit on 500k-token runs, predict 1M and 2M.

Usage: python benchmarks/budget_transfer.py [--smoke] [--store DIR] [--folds K]

The demo plans at 4x its proxies' tokens. With one proxy size the store has one
scale, so ``mixopt fit`` could only rank mixtures at the proxies' budget; with
WSD decay branches every run also measures annealed losses at 1/4 and 1/2 of its
budget, and a scale-aware model on those rows can extrapolate in tokens. This
benchmark measures whether that helps, in one store swept from
``budget_transfer.yaml``: the demo's shape at 500k tokens (24 sampled mixtures)
and at 2M tokens (the first 20 of the same mixtures), natural and uniform at
both with 2 seeds. Training rows: every budget of the 500k runs (125k, 250k,
500k). Targets: the 2M runs' 1M branch and 2M end.

Candidates: ``shift-gp`` (the default of ``mixopt fit --budgets`` on one proxy size: the 500k runs' GP
ranks, ScaleGP's power-law level in tokens moves it, spread over mixtures by each domain's slope against its own
weight; ``shift-gp, one shift``: the same level for every mixture), ``scale-gp`` (the default across model sizes), the
LR-annealing law and the OT projector across scales (on the store's own text).

Two settings:

- **seen**: the target mixtures' own 500k runs train (the planner's candidates
  near trained mixtures). Baselines: the mixture's own 500k loss (rank only) and
  a per-mixture power law in tokens (``log L = a + c log D`` on its 3 budgets).
- **unseen**: K-fold over the target mixtures; a fold's runs leave training
  (the planner's candidates are new mixtures). Baseline: ``mixopt fit``'s model on
  the 500k runs' final losses (per-domain GPs averaged), what a one-size store gets
  without ``--budgets`` (rank only).

Reported per target budget: Spearman of per-mixture means, MAE, regret@1, and
±1σ/±2σ coverage of single runs; each candidate's Spearman minus the baseline's
with a 95% paired bootstrap over mixtures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402
from _scale_embedded import rho_gap, score  # noqa: E402
from _scale_rows import ScaleRows, scale_rows  # noqa: E402

from mixopt.config import config_from_dict, load_config  # noqa: E402
from mixopt.pipeline import sweep  # noqa: E402
from mixopt.surrogates import DEFAULT_BUDGET_ESTIMATOR, MetricAverage, get_estimator  # noqa: E402
from mixopt.surrogates.scale import ScaleGP, scale_inputs  # noqa: E402
from mixopt.surrogates.shift import ShiftGP  # noqa: E402

CONFIG = Path(__file__).resolve().parent / "budget_transfer.yaml"
SMOKE = {  # the same design at seconds' cost: a 1-layer proxy at 16k and 64k tokens
    "proxy": {"n_layer": 1, "n_embd": 32, "head_size": 32, "block_size": 64, "batch_size": 8, "tokens": 16384, "eval_tokens": 2048},
    "data": {"corpus": "embedded", "max_documents": 300},
    "sizes": [{"name": "d16k", "runs": 8}, {"name": "d64k", "tokens": 65536, "runs": 5}],
}


def config(smoke: bool):
    cfg = load_config(CONFIG)
    if not smoke:
        return cfg
    raw = cfg.model_dump(mode="json")
    raw["proxy"].update(SMOKE["proxy"])
    raw["data"].update(SMOKE["data"])
    raw["sizes"] = SMOKE["sizes"]
    return config_from_dict(raw, where="budget_transfer.yaml (smoke)")


def run_budget(rows: ScaleRows) -> np.ndarray:
    """(n,) the training budget of each row's run (its end), as opposed to the row's own tokens."""
    return np.array([float(r.scale["tokens"]) for r in rows.records])


def split(rows: ScaleRows) -> tuple[ScaleRows, ScaleRows]:
    """(train, test): every budget of the shorter runs; the longer runs' budgets above the shorter runs' end."""
    budget = run_budget(rows)
    short, long_ = min(budget), max(budget)
    return rows.rows(budget == short), rows.rows((budget == long_) & (rows.D > short * 1.01))


def _scale_gp(train: ScaleRows, test: ScaleRows):
    est = ScaleGP().fit(scale_inputs(train.W, train.N, train.D), train.y)
    return est.predict(scale_inputs(test.W, test.N, test.D), return_std=True)


def _mixture_model(rows: ScaleRows):
    """``mixopt fit``'s model at one scale: per-component GPs averaged for an averaged target, else the default GP."""
    if rows.Y is None:
        return get_estimator("default"), rows.y
    return MetricAverage(estimator=get_estimator("default"), weights=rows.weights), rows.Y


def _shift_gp(train: ScaleRows, test: ScaleRows, *, spread: bool = True):
    """shift-gp as `mixopt fit --budgets` builds it: the mixture model of one scale, ScaleGP's level, spread over
    mixtures by each domain's slope against its own weight (``spread=False``: one shift for every mixture)."""
    mixture, Y = _mixture_model(train)
    est = ShiftGP(mixture=mixture, component_domains=train.component_domains if spread else None)
    est.fit(scale_inputs(train.W, train.N, train.D), Y)
    return est.predict(scale_inputs(test.W, test.N, test.D), return_std=True)


def _shift_gp_one_shift(train: ScaleRows, test: ScaleRows):
    return _shift_gp(train, test, spread=False)


def _final_gp(train: ScaleRows, test: ScaleRows):
    """`mixopt fit`'s model on the runs' final losses (one scale): what a one-size store gave before. Ranks only."""
    end = train.rows(train.D == max(train.D))
    model, Y = _mixture_model(end)
    return model.fit(end.W, Y).predict(test.W)


def _annealing(train: ScaleRows, test: ScaleRows):
    from _scale_cand_annealing import predict_rows
    return predict_rows(train, test)


def _projector(train: ScaleRows, test: ScaleRows):
    """The OT projector across scales (``ScaleProjector``: per-budget stage 1, a line in log D), on the store's text."""
    from _scale_cand_projector import predict_rows
    return predict_rows(train, test, data_config=_DATA[0])


_DATA: list = [None]  # the sweep config's data section, for the projector's OT features


def _same_mixture(train: ScaleRows, test: ScaleRows):
    """Each test row gets its mixture's mean loss at the shorter runs' end (rank only)."""
    end = train.D == max(train.D)
    out = np.full(len(test.y), np.nan)
    for i, mid in enumerate(test.mixture):
        m = end & (train.mixture == mid)
        if m.any():
            out[i] = train.y[m].mean()
    return out


def _power_law(train: ScaleRows, test: ScaleRows):
    """Per mixture, ``log L = a + c log D`` by least squares on its budgets, at each test row."""
    out = np.full(len(test.y), np.nan)
    for mid in np.unique(test.mixture):
        tr = train.mixture == mid
        if len(np.unique(train.D[tr])) < 2:
            continue
        A = np.column_stack([np.ones(tr.sum()), np.log(train.D[tr])])
        coef = np.linalg.lstsq(A, np.log(train.y[tr]), rcond=None)[0]
        te = test.mixture == mid
        out[te] = np.exp(coef[0] + coef[1] * np.log(test.D[te]))
    return out


SEEN = [("scale-gp", _scale_gp, False), ("shift-gp", _shift_gp, False), ("shift-gp, one shift", _shift_gp_one_shift, False),
        ("annealing-law", _annealing, False),
        ("ot-projector", _projector, False),
        ("per-mixture power law", _power_law, False), ("same mixture at 500k", _same_mixture, True)]
UNSEEN = [("scale-gp", _scale_gp, False), ("shift-gp", _shift_gp, False), ("shift-gp, one shift", _shift_gp_one_shift, False),
        ("annealing-law", _annealing, False),
        ("ot-projector", _projector, False), ("fit at 500k", _final_gp, True)]


def unseen(train: ScaleRows, test: ScaleRows, fn, *, folds: int, seed: int = 0):
    """Out-of-fold predictions at ``test``: each fold's mixtures leave ``train`` (every budget, every seed)."""
    ids = np.unique(test.mixture)
    fold_of = dict(zip(ids[np.random.default_rng(seed).permutation(len(ids))], np.arange(len(ids)) % folds))
    fold = np.array([fold_of[m] for m in test.mixture])
    mean, std = np.full(len(test.y), np.nan), np.full(len(test.y), np.nan)
    for f in range(folds):
        held = set(ids[[fold_of[m] == f for m in ids]].tolist())
        out = fn(train.rows(~np.isin(train.mixture, list(held))), test.rows(fold == f))
        m, s = out if isinstance(out, tuple) else (out, None)
        mean[fold == f] = m
        if s is not None:
            std[fold == f] = s
    return (mean, std) if np.isfinite(std).any() else mean


CONCENTRATED = 0.9  # a mixture with one domain above this share: its mean loss over all domains barely improves with tokens


def concentrated(rows: ScaleRows) -> np.ndarray:
    """(n,) whether each row's run put more than ``CONCENTRATED`` of its tokens on one domain."""
    return rows.W.max(axis=1) > CONCENTRATED


def table(title: str, train: ScaleRows, test: ScaleRows, cands, *, folds: int | None) -> dict:
    print(f"\n## {title}")
    results = {}
    for label, fn, ranks_only in cands:
        t = time.perf_counter()
        out = fn(train, test) if folds is None else unseen(train, test, fn, folds=folds)
        mean, std = out if isinstance(out, tuple) else (out, None)
        err = np.abs(np.asarray(mean, float) - test.y)
        conc = concentrated(test)
        by_budget = score(test, np.asarray(mean, float), None if std is None else np.asarray(std, float))
        for d, f in by_budget.items():  # single runs' absolute error, balanced vs concentrated mixtures
            at = test.D == d
            f["mae_balanced"] = float(err[at & ~conc].mean()) if (at & ~conc).any() else np.nan
            f["mae_concentrated"] = float(err[at & conc].mean()) if (at & conc).any() else np.nan
        results[label] = {"by_budget": by_budget, "ranks_only": ranks_only, "s": time.perf_counter() - t}
    n_conc = len(np.unique(test.mixture[concentrated(test)]))
    print(f"{'model':24s} {'tokens':>8s} {'Spearman':>8s} {'MAE':>8s} {'regret@1':>8s} {'±1σ':>5s} {'±2σ':>5s}  "
          f"MAE balanced / concentrated ({n_conc} mixtures with a domain > {CONCENTRATED:g})")
    for label, r in results.items():
        for d, f in r["by_budget"].items():
            paren = (lambda v: f"({v:.4f})") if r["ranks_only"] else (lambda v: f"{v:.4f}")
            print(f"{label:24s} {int(d):8d} {f['spearman']:8.4f} {paren(f['mae']):>8s} {f['regret_at_1']:8.4f} "
                  f"{f['within_1sd']:5.2f} {f['within_2sd']:5.2f}  {paren(f['mae_balanced'])} / {paren(f['mae_concentrated'])}")
    base_label = cands[-1][0]
    base = results[base_label]["by_budget"]
    print(f"(MAE in parentheses: a rank-only baseline's level is the 500k one.) Spearman minus '{base_label}', "
          "95% paired bootstrap over mixtures:")
    for label, r in results.items():
        if label == base_label:
            continue
        r["gap"] = {d: rho_gap(f, base[d]) for d, f in r["by_budget"].items()}
        print(f"  {label:24s} " + "  ".join(f"{int(d)}: {g:+.4f} [{lo:+.4f}, {hi:+.4f}]" for d, (g, lo, hi) in r["gap"].items()))
    return results


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a tiny 1-layer sweep at 16k/64k tokens (seconds; CI)")
    ap.add_argument("--store", default=None, help="run store (default /tmp/mixopt-bench/budget_transfer, resumable; --smoke: a temporary one)")
    ap.add_argument("--folds", type=int, default=4, help="folds over the target mixtures in the unseen setting")
    args = ap.parse_args(argv)
    start = provenance()
    t0 = time.perf_counter()
    cfg = config(args.smoke)
    _DATA[0] = cfg.data
    with tempfile.TemporaryDirectory(prefix="mixopt-budget-") as tmp:
        store = args.store or (tmp if args.smoke else "/tmp/mixopt-bench/budget_transfer")
        summary = sweep(cfg, store)
        print(f"sweep: {summary.trained} trained, {summary.skipped} already in {store} ({time.perf_counter() - t0:.0f} s)")
        rows = scale_rows(store, cfg.propose.target)
    train, test = split(rows)
    print(f"train: {len(np.unique(train.mixture))} mixtures at budgets {[int(d) for d in train.budgets]}; "
          f"test: {len(np.unique(test.mixture))} mixtures at {[int(d) for d in test.budgets]}")
    folds = min(2 if args.smoke else args.folds, len(np.unique(test.mixture)))
    seen = table("seen: the target mixtures' shorter runs train", train, test, SEEN, folds=None)
    new = table(f"unseen: {folds}-fold over the target mixtures", train, test, UNSEEN, folds=folds)
    final = max(test.budgets)
    s_ = {k: v["by_budget"][final] for k, v in seen.items()}
    u_ = {k: v["by_budget"][final] for k, v in new.items()}
    main_ = DEFAULT_BUDGET_ESTIMATOR
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    print(machine_line(start, provenance()))
    return print_summary({
        "model": main_, "rho_seen": s_[main_]["spearman"], "rho_seen_same_mixture": s_["same mixture at 500k"]["spearman"],
        **goal("margin_seen", s_[main_]["spearman"] - s_["same mixture at 500k"]["spearman"], 0.0),
        "rho_unseen": u_[main_]["spearman"], "rho_unseen_fit_500k": u_["fit at 500k"]["spearman"],
        **goal("margin_unseen", u_[main_]["spearman"] - u_["fit at 500k"]["spearman"], 0.0),
        "mae_seen": s_[main_]["mae"], "mae_unseen": u_[main_]["mae"], "mae_500k_level": s_["same mixture at 500k"]["mae"],
        "mae_seen_balanced": s_[main_]["mae_balanced"], "mae_unseen_balanced": u_[main_]["mae_balanced"],
        "mae_unseen_concentrated": u_[main_]["mae_concentrated"],
        "cover_1sigma": u_[main_]["within_1sd"], "cover_2sigma": u_[main_]["within_2sd"],
        "rho_seen_scale_gp": s_["scale-gp"]["spearman"], "rho_unseen_scale_gp": u_["scale-gp"]["spearman"],
        "mae_unseen_scale_gp": u_["scale-gp"]["mae"],
        "rho_unseen_one_shift": u_["shift-gp, one shift"]["spearman"], "mae_unseen_one_shift": u_["shift-gp, one shift"]["mae"],
        "mae_unseen_balanced_one_shift": u_["shift-gp, one shift"]["mae_balanced"],
        "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
