"""How often `verify`'s seeds advice comes true, on real paired runs.

A comparison `mixopt verify` leaves within noise carries ``seeds_to_resolve``: how many paired seeds would decide it
with 80% power, planned on the observed difference moved toward zero by its own noise
(``mixopt.verify.seeds_to_resolve``; ``--shrink 0.5`` plans on the observed difference itself). This script checks
that figure against runs that trained more seeds than the advice was given on:

1. read the verify runs of one or more stores (``--store``; default: train them here with
   ``verify_upsampling.py --case cap --quick --seeds 8``), and pair every plan (a distinct ``verify:plan`` schedule) with
   every other verify arm at the same scale, by seed, on ``--metric``;
2. for each pair with n >= ``--first`` + 2 common seeds, take every ``--first``-seed subset (at most ``--subsets``,
   drawn at random) as what a user would have seen; where its paired t-interval includes zero, ask for the advice;
3. advice n within the store's seeds: draw ``--draws`` random n-seed sets that contain the subset and count how many
   decide (interval excludes zero) -- **the hit rate, 80% if the advice is calibrated**; advice beyond the store's
   seeds: counted; no advice: whether all n seeds decide anyway (a miss of that verdict).

Usage::

    python benchmarks/seeds_advice.py                              # trains the cap case (~2 min on 2 cores)
    python benchmarks/seeds_advice.py --store S/cap --store S2/cap  # stores verify_upsampling.py left
    python benchmarks/seeds_advice.py --smoke                       # CI: tiny, seconds; numbers not meaningful

The last line is the ``summary:`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance

from mixopt.runs.store import RunStore
from mixopt.runs.table import VERIFY_LABEL, records_table
from mixopt.verify import decides, paired_interval, seeds_to_resolve


def verify_pairs(root: str, metric: str) -> list[tuple[str, np.ndarray]]:
    """(name, plan - arm per common seed) for every plan schedule and every other verify arm at the same scale."""
    by_arm: dict[tuple, dict[int, float]] = defaultdict(dict)
    recs = [r for r in RunStore(root, create=False).records()
            if r.status == "ok" and (r.label or "").startswith(VERIFY_LABEL)]
    if not recs:
        print(f"{root}: no verify runs (labels {VERIFY_LABEL}*), skipped")
        return []
    values = records_table(recs).target(metric)
    for r, v in zip(recs, values):
        scale = json.dumps([r.proxy, r.scale.get("tokens")], sort_keys=True)
        schedule = json.dumps(r.phases, sort_keys=True)
        by_arm[(scale, r.label[len(VERIFY_LABEL):], schedule)][r.seed] = float(v)
    pairs = []
    plans = [k for k in by_arm if k[1] == "plan"]
    for p, (scale, _, schedule) in enumerate(plans):
        for key, vals in by_arm.items():
            if key[0] != scale or key[2] == schedule:  # another scale, or the plan's own schedule (differences 0)
                continue
            seeds = sorted(set(by_arm[plans[p]]) & set(vals))
            d = np.array([by_arm[plans[p]][s] - vals[s] for s in seeds])
            pairs.append((f"plan{p}-{key[1]}", d))
    return pairs


def check_advice(d: np.ndarray, first: int, subsets: int, draws: int, rng: np.random.Generator, shrink: float) -> dict:
    """The advice on each ``first``-seed subset of ``d`` left within noise, against more of ``d``'s own seeds."""
    n_all = d.size
    combos = list(itertools.combinations(range(n_all), first))
    if len(combos) > subsets:
        combos = [combos[i] for i in rng.choice(len(combos), subsets, replace=False)]
    out = {"subsets": len(combos), "undecided": 0, "advised": 0, "hits": [], "beyond": 0, "none": 0,
           "none_decided_at_all": 0, "advice": [], "checked": []}
    full = decides(d)
    for sub in combos:
        if decides(d[list(sub)]):
            continue
        out["undecided"] += 1
        n = seeds_to_resolve(d[list(sub)], shrink=shrink)
        if n is None:
            out["none"] += 1
            out["none_decided_at_all"] += int(full)
            continue
        out["advice"].append(n)
        if n > n_all:
            out["beyond"] += 1
            continue
        rest = [i for i in range(n_all) if i not in sub]
        hit = [decides(d[list(sub) + list(rng.choice(rest, n - first, replace=False))]) for _ in range(draws)]
        out["advised"] += 1
        out["hits"].append(float(np.mean(hit)))
        out["checked"].append((n, float(np.mean(hit))))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", action="append", default=None,
                    help="a run store with one sweep's verify runs (repeatable); default: train the cap case here")
    ap.add_argument("--metric", default="val/code", help="metric the differences are taken on (default val/code)")
    ap.add_argument("--first", type=int, default=3, help="seeds the advice is given on (default 3, verify's default)")
    ap.add_argument("--subsets", type=int, default=200, help="most subsets per pair (drawn at random beyond)")
    ap.add_argument("--draws", type=int, default=50, help="random larger seed sets per advised subset")
    ap.add_argument("--seeds", type=int, default=8, help="seeds to train when no --store is given (default 8)")
    ap.add_argument("--shrink", type=float, default=0.75, help="the advice's shrink quantile (0.5: none; default 0.75, verify's)")
    ap.add_argument("--all", action="store_true", help="the per-pair table even for more than 30 pairs")
    ap.add_argument("--smoke", action="store_true", help="tiny stores, seconds (CI); numbers not meaningful")
    args = ap.parse_args(argv)
    start, t0 = provenance(), time.time()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="mixopt-seeds-advice-") as tmp:
        stores = args.store
        if not stores:
            import verify_upsampling
            seeds = 5 if args.smoke else args.seeds
            text = io.StringIO()
            with contextlib.redirect_stdout(text):  # its summary line is not this script's
                verify_upsampling.main(["--case", "cap", "--smoke" if args.smoke else "--quick", "--seeds", str(seeds),
                                        "--store", tmp])
            print(text.getvalue().replace("summary:", "verify_upsampling.py's summary -"))
            stores = [str(Path(tmp) / "cap")]
        first = 2 if args.smoke else args.first
        rows = []
        for root in stores:
            for name, d in verify_pairs(root, args.metric):
                if d.size < first + 2:
                    continue
                r = check_advice(d, first, 20 if args.smoke else args.subsets, 5 if args.smoke else args.draws, rng,
                                 args.shrink)
                lo, hi = paired_interval(d)
                r.update(name=f"{Path(root).name}:{name}", n=d.size, diff=float(d.mean()), lo=lo, hi=hi)
                rows.append(r)
    if not rows:
        raise SystemExit(f"No verify arm with {first + 2}+ paired seeds in {', '.join(stores)}. Pass stores `mixopt "
                         "verify` trained with more seeds (--seeds 5 or more).")
    print(f"advice on {first} of each pair's seeds, checked on more of the same pair's seeds ({args.metric}; "
          f"hit = the share of larger seed sets with the advised count that decided)")
    if len(rows) > 30 and not args.all:
        print(f"{len(rows)} pairs over {len(stores)} store(s): the per-pair table with --all")
    else:
        print(f"{'pair':44s} {'seeds':>5s} {'diff, all seeds [95%]':>30s} {'undecided':>9s} {'advice (median)':>15s} "
              f"{'checked':>7s} {'hit':>5s} {'beyond':>6s} {'none':>4s}")
        for r in rows:
            med = f"{np.median(r['advice']):.0f}" if r["advice"] else "-"
            hit = f"{np.mean(r['hits']):.2f}" if r["hits"] else "-"
            print(f"{r['name'][:44]:44s} {r['n']:5d} {r['diff']:+.4f} [{r['lo']:+.4f}, {r['hi']:+.4f}]  "
                  f"{r['undecided']:4d}/{r['subsets']:<4d} {med:>15s} {r['advised']:7d} {hit:>5s} {r['beyond']:6d} "
                  f"{r['none']:4d}")
    by_n = defaultdict(list)
    for r in rows:
        for n, h in r["checked"]:
            by_n[n].append(h)
    print("by the advice: seeds advised, subsets checked, hit rate")
    for n in sorted(by_n):
        print(f"  {n:3d} {len(by_n[n]):7d} {np.mean(by_n[n]):.3f}")
    hits = [h for r in rows for h in r["hits"]]
    undecided = sum(r["undecided"] for r in rows)
    none = sum(r["none"] for r in rows)
    none_decided = sum(r["none_decided_at_all"] for r in rows)
    beyond = sum(r["beyond"] for r in rows)
    hit_rate = float(np.mean(hits)) if hits else float("nan")
    print(f"undecided on {first} seeds: {undecided} subsets; advice within the pairs' seeds, checked: {len(hits)}, "
          f"hit rate {hit_rate:.3f} (80% if calibrated); advice beyond the pairs' seeds: {beyond}; no advice on {none}, "
          f"of which {none_decided} were decided by all the pair's seeds")
    print(f"total {time.time() - t0:.0f} s")
    print(machine_line(start))
    return print_summary({**goal("advice_hit_rate", hit_rate, 0.8), "advised_checked": len(hits),
                          "undecided": undecided, "beyond": beyond, "no_advice": none, "no_advice_decided": none_decided,
                          "pairs": len(rows), "first": first, "shrink": args.shrink, "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
