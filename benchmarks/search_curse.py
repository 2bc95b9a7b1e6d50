"""The optimizer's curse: the search's claimed gains with and without `propose.curse_correction`, against training.

Steps, on the embedded 7-domain corpus (byte tokens, CPU), with ``verify_plans.py``'s sweep (the same store can be
shared with it):

1. sweep (or resume) the store; ``pipeline.fit`` each target (``mean:all-domains``, ``val/code``, ``val/prose``);
2. ``pipeline.propose`` the search's own mixture (no keep-baseline gate) **at the proxies' own budget**, where a
   one-scale surrogate speaks (``--at``: another multiple of the proxies' tokens; the value stays at the proxies'
   scale), twice: with the correction and without. The mixture is the same; only the predicted value moves;
3. ``mixopt.verify.verify`` trains the plan against natural, uniform and the best sweep run with paired seeds there.

For each claim (the plan's predicted value minus an arm's, against the measured paired difference) it prints both
versions side by side, then the mean absolute error, the mean signed error (negative: the claim was too optimistic)
and how many claims lie inside the measured 95% interval.

``--regmix 64,128,256`` runs the external check instead, on RegMix's public runs (17 domains; their 256 test
mixtures, each trained at 1M parameters, are the candidates): draw that many training runs, fit the default surrogate,
let it pick the test mixture with the lowest mean + 0.5 std, and compare its predicted loss with the loss RegMix
measured for it, with and without the correction (``--draws`` draws per size).

Usage::

    python benchmarks/search_curse.py --store /tmp/vpc                     # 40-step proxies, ~1 min on a resumed store
    python benchmarks/search_curse.py --store /tmp/vpc160 --proxy-steps 160
    python benchmarks/search_curse.py --regmix 64,128,256 --draws 12         # RegMix's runs, ~2 min
    python benchmarks/search_curse.py --smoke                              # tiny, seconds (CI); numbers not meaningful

The last line is the ``summary:`` line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, print_summary, paired_seeds, provenance
from _regmix_data import data_dir, load_regmix
from verify_plans import SMOKE_MODEL, TARGETS, build_cfg

from mixopt import pipeline
from mixopt.data.domains import load_domain_set
from mixopt.planning.curse import MIN_HALF_RUNS_PER_DOMAIN, FitRows, search_optimism
from mixopt.proxy.loop import torch_threads
from mixopt.runs.store import RunStore, StoreSnapshot
from mixopt.runs.table import VERIFY_LABEL
from mixopt.surrogates import get_estimator
from mixopt.verify import paired_interval, verify

AGAINST = ["natural", "uniform", "best-run"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, val/code only, 2 seeds: seconds (CI)")
    ap.add_argument("--store", default=None, help="run store to keep (and resume) the runs in; default a temp dir")
    ap.add_argument("--proxy-steps", type=int, default=None, help="proxy batches per sweep run (default 40; smoke 4)")
    ap.add_argument("--at", type=float, default=1.0, help="propose and verify at this multiple of the proxies' tokens (default 1)")
    ap.add_argument("--seeds", type=paired_seeds, default=None, help="paired seeds per arm (default 4; smoke 2)")
    ap.add_argument("--targets", default=None, help=f"comma-separated targets (default {','.join(TARGETS)})")
    ap.add_argument("--regmix", default=None, help="comma-separated training-run counts: the external check on RegMix's runs")
    ap.add_argument("--draws", type=int, default=12, help="with --regmix: random training sets per count (default 12)")
    ap.add_argument("--first-draw", type=int, default=0,
                    help="with --regmix: seed of the first draw (default 0). Draws 0-11 shaped the correction's rules; "
                         "100 and up are out of sample")
    args = ap.parse_args(argv)
    if args.regmix:
        start = provenance()
        out = regmix_check([int(n) for n in args.regmix.split(",")], args.draws)
        print(machine_line(start, provenance()))
        return print_summary({**out, "draws": args.draws, "mode": "regmix"})
    with tempfile.TemporaryDirectory(prefix="mixopt-search-curse-") as tmp, torch_threads(1):
        return run(args, args.store or tmp)


def run(args, root: str) -> dict:
    start, t0 = provenance(), time.perf_counter()
    cfg = build_cfg(args.smoke, args.proxy_steps)
    cfg.propose.keep_baseline_within_noise = False  # the search's own mixture: the claim the correction is about
    seeds = args.seeds or (2 if args.smoke else 4)
    targets = (args.targets or (TARGETS[1] if args.smoke else ",".join(TARGETS))).split(",")
    pipeline.sweep(cfg, root, show_progress=False)
    data = load_domain_set(cfg.data)
    full = pipeline.open_store(root)
    snap = StoreSnapshot(full.meta, [r for r in full.records if not r.label.startswith(VERIFY_LABEL)], full.root)
    budget = args.at * cfg.proxy.tokens
    rows, cost, level = [], {"on": 0.0, "off": 0.0}, []
    for target in targets:
        model = pipeline.fit(snap, target, SMOKE_MODEL if args.smoke else "default")
        plans = {}
        for mode in ("on", "off"):
            cfg.propose.curse_correction = mode == "on"
            t1 = time.perf_counter()
            plans[mode] = pipeline.propose(model, config=cfg, snapshot=snap, budget_tokens=budget, use_projector=False)
            cost[mode] += time.perf_counter() - t1
        assert plans["on"].phases == plans["off"].phases, "the correction must not move the mixture"
        body = verify(plans["on"], RunStore(root, create=False), snap, cfg, data, against=AGAINST, seeds=seeds, tokens=budget)
        by = plans["on"].predicted.by["surrogate"]
        measured = body["results"][0]["mean"]
        level.append([measured - p.predicted.value for p in (plans["off"], plans["on"])] + [plans["on"].predicted.std])
        said = (f"optimism {by['curse']:+.4f} (sd {by['curse_sd']:.4f})" if "curse" in by
                else "optimism not measured (too few runs to fit on half of them)")
        print(f"{target}: {said}; plan measured {measured:.4f}", flush=True)
        for c in body["comparisons"]:
            lo, hi = c["ci95"]
            claim = {m: p.predicted.value - p.predicted.baselines[c["against"]]["value"] for m, p in plans.items()}
            rows.append((claim["off"], claim["on"], c["diff"], lo, hi))
            print(f"    vs {c['against']:8s} measured {c['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]   claimed {claim['off']:+.4f} "
                  f"-> corrected {claim['on']:+.4f}", flush=True)
    r = np.array(rows)
    out = {}
    for i, mode in ((0, "off"), (1, "on")):
        err = r[:, i] - r[:, 2]
        out[f"mae_{mode}"] = float(np.mean(np.abs(err)))
        out[f"bias_{mode}"] = float(np.mean(err))
        out[f"inside_ci_{mode}"] = int(np.sum((r[:, 3] <= r[:, i]) & (r[:, i] <= r[:, 4])))
    e = np.array(level)  # the plan's own value: measured minus predicted, raw and corrected, and the plan's std
    out["plan_mae_off"], out["plan_mae_on"] = float(np.mean(np.abs(e[:, 0]))), float(np.mean(np.abs(e[:, 1])))
    out["plan_within_2sd_off"], out["plan_within_2sd_on"] = (int(np.sum(np.abs(e[:, i]) <= 2 * e[:, 2])) for i in (0, 1))
    print(f"the plans' own values ({len(e)}): mean abs error {out['plan_mae_off']:.4f} -> {out['plan_mae_on']:.4f}, within "
          f"their ±2σ {out['plan_within_2sd_off']} -> {out['plan_within_2sd_on']}")
    print(f"{len(r)} claims at {budget:,.0f} tokens, {seeds} seeds: MAE {out['mae_off']:.4f} -> {out['mae_on']:.4f}, "
          f"mean error {out['bias_off']:+.4f} -> {out['bias_on']:+.4f}, inside the 95% interval {out['inside_ci_off']} -> "
          f"{out['inside_ci_on']}; propose {cost['off']:.1f} s -> {cost['on']:.1f} s; total {time.perf_counter() - t0:.0f} s")
    print(machine_line(start, provenance()))
    if args.smoke:  # the external check's code path too, at one size and one draw
        out.update(regmix_check([128], 1))
    return print_summary({**out, "n_claims": len(r), "seeds": seeds, "propose_s_off": cost["off"], "propose_s_on": cost["on"],
                          "mode": "smoke" if args.smoke else "full"})


def regmix_check(sizes: list[int], draws: int, first: int = 0) -> dict:
    """The chosen candidate's predicted minus measured loss on RegMix's runs, raw and corrected, per training-set size
    (draws ``first`` .. ``first + draws - 1``), with a paired 95% interval on |raw error| - |corrected error|."""
    out = {}
    d = load_regmix(data_dir())
    C, measured = d.W_test, d.y_test_1m

    def pick(model) -> np.ndarray:
        mean, std = model.predict(C, return_std=True)
        return C[int(np.argmin(mean + 0.5 * std))]

    for n in sizes:
        raw, cor, opt, skipped = [], [], [], 0
        for r in range(first, first + draws):
            idx = np.random.default_rng(r).choice(len(d.W_train), n, replace=False)
            W, y = d.W_train[idx], d.y_train[idx]
            est = get_estimator("default").fit(W, y)
            w = pick(est)
            err = float(est.predict(w[None, :])[0]) - float(measured[int(np.flatnonzero((C == w).all(axis=1))[0])])
            curse = search_optimism(FitRows(est, W, y), pick, chosen=w, seed=r)
            skipped += curse is None
            o = max(curse[0], 0.0) if curse else 0.0
            raw.append(err), cor.append(err + o), opt.append(o)
        raw, cor = np.array(raw), np.array(cor)
        out[f"mae_raw_{n}"], out[f"mae_corrected_{n}"] = float(np.mean(np.abs(raw))), float(np.mean(np.abs(cor)))
        gain = np.abs(raw) - np.abs(cor)  # > 0: the correction helped that draw
        lo, hi = paired_interval(gain) if len(gain) >= 2 else (float("nan"), float("nan"))
        out[f"mae_gain_{n}"] = float(gain.mean())
        print(f"{n} runs: |raw| - |corrected| {gain.mean():+.4f} [{lo:+.4f}, {hi:+.4f}] (95%, paired over draws; > 0 helps), "
              f"helped in {int((gain > 0).sum())} of {len(gain)}")
        print(f"{n} runs ({draws} draws): predicted - measured at the chosen mixture {raw.mean():+.4f} (MAE {out[f'mae_raw_{n}']:.4f}) "
              f"-> corrected {cor.mean():+.4f} (MAE {out[f'mae_corrected_{n}']:.4f}); optimism added {np.mean(opt):.4f}; "
              f"not measured in {skipped} (halves below {MIN_HALF_RUNS_PER_DOMAIN:g} mixtures per domain)", flush=True)
    return out


if __name__ == "__main__":
    main()
