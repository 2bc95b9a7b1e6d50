"""The filtering schedule end to end: does the planner keep as many score buckets as training says it should?

Issue 13 item 4. Setup:

* **Pools from selection.** The embedded corpus is cut into ~2 KB chunks (as in
  ``selection.py``); the target is a hash-held-out sample of one domain (``docs``
  by default), and the mixed pool holds every other domain plus the rest of the
  target's domain. DSIR scores the pool against the target sample and
  ``selection.output.bucket_of`` cuts it into P score buckets of equal tokens,
  best first: the buckets ``mixopt select --buckets P`` writes.
* **Limited unique data.** Each bucket is cut to U unique tokens (documents in a
  seeded order), so repetition matters at affordable budgets.
* **Measured b and tau.** A proxy (2 layers, C=64, T=128, B=8, lr 1e-3) is trained on
  each bucket alone for k*U tokens, k in {1, 2, 4, 8}; the error is the target's
  validation loss. ``fit_shared_law`` fits the shared (a, d) and each bucket's
  (b, tau) with ``fit_pool_decay`` (T-MARS prior, on the fitted pools' scale, where
  a fit is unusable), once per ``--fits`` weighting ("repetition", the library's
  default, and "uniform", the fit before it), so the planner's picks under each
  fit are compared on the same trained runs.
* **Planner vs training.** At several budgets the planner (``choose_pools``) picks
  how many buckets to keep (top-1 .. top-P); every option is trained with
  ``--seeds`` seeds on the union of its buckets for the budget's tokens. A choice
  *agrees* when it is the measured best, or within noise of it (the paired
  difference over seeds is under twice its standard error).

* **Cache.** ``--cache FILE`` keeps every trained loss (single-bucket runs and
  top-j sets by name, budget and seed) in a JSON file: a rerun refits and replans
  from it in seconds and trains only what it lacks (a set that another fit's order
  needs, a new k). The file is tied to the corpus setting (target, buckets, U, seed).

    python benchmarks/pools_schedule.py            # ~10 min on 2 quiet cores
    python benchmarks/pools_schedule.py --smoke    # seconds (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402
from selection import corpus, split_target  # noqa: E402

from mixopt.config import ProxyConfig  # noqa: E402
from mixopt.data.tokenize import Tokenizer  # noqa: E402
from mixopt.data.types import DomainSet, TokenizedDomain  # noqa: E402
from mixopt.mixtures import Mixture  # noqa: E402
from mixopt.planning.pool_value import fit_shared_law  # noqa: E402
from mixopt.repetition_fit import usable_fit  # noqa: E402
from mixopt.planning.pool_choice import choose_pools  # noqa: E402
from mixopt.planning.quality import prior_params, priors_on_fitted_scale, resolve_pools  # noqa: E402
from mixopt.proxy.train import train_proxy  # noqa: E402
from mixopt.repetition_fit import WEIGHTINGS  # noqa: E402
from mixopt.selection.dsir import DSIR  # noqa: E402
from mixopt.selection.output import bucket_of  # noqa: E402

KS = (1, 2, 4, 8)


def make_buckets(target: str, n_buckets: int, unique: int, bytes_per_domain: int, seed: int):
    """(bucket domains, target validation domain, in-target share per bucket)."""
    tok = Tokenizer("bytes")
    docs = corpus(bytes_per_domain)
    sample, val, rest = split_target(docs[target])
    pool = [t for d in sorted(docs) if d != target for t in docs[d]] + rest
    in_target = np.array([False] * (len(pool) - len(rest)) + [True] * len(rest))
    sizes = np.array([tok.count(t) for t in pool], dtype=np.float64)
    bucket = bucket_of(DSIR().fit_score(sample, pool), sizes, n_buckets)
    rng = np.random.default_rng(seed)
    domains, shares = {}, []
    for j in range(n_buckets):
        idx = np.flatnonzero(bucket == j)
        idx = idx[rng.permutation(len(idx))]
        ids = tok.encode_documents([pool[i] for i in idx])
        if ids.shape[0] < unique + 256:
            raise SystemExit(f"bucket {j} has {ids.shape[0]} tokens, fewer than U={unique} + 256; lower --unique")
        domains[f"b{j}"] = TokenizedDomain(f"b{j}", ids[:unique], ids[unique:unique + 256], len(idx), 1, f"b{j}")
        shares.append(float(in_target[idx].mean()))
    val_ids = tok.encode_documents(val)
    tgt = TokenizedDomain(target, np.zeros(0, dtype=val_ids.dtype), val_ids, 0, len(val), target)
    return domains, tgt, shares


def _train(job):
    domains, names, target, tokens, seed, smoke = job
    size = (dict(n_layer=1, n_embd=32, head_size=32, block_size=32, eval_tokens=2048) if smoke
            else dict(n_layer=2, n_embd=64, head_size=64, block_size=128, eval_tokens=16_384))
    cfg = ProxyConfig(**size, batch_size=8, tokens=tokens, lr=1e-3, checkpoints=[1.0], device="cpu", dtype="float32")
    data = DomainSet({n: domains[n] for n in names}, vocab_size=257, eos_id=256, tokenizer="bytes-v1",
                     targets={target.name: target})
    res = train_proxy(cfg, Mixture({n: 1 / len(names) for n in names}), data, seed, threads=1)
    if res.status != "ok":
        raise RuntimeError(f"proxy on {names} failed: {res.reason}")
    return res.metrics[f"target/{target.name}"]


def train_all(jobs: list, workers: int) -> list[float]:
    if workers <= 1:
        return [_train(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_train, jobs))


class LossCache:
    """Trained target losses by run key, kept in a JSON file (``--cache``) so that a rerun refits and replans from
    them in seconds and trains only the runs it lacks. ``setting`` (corpus, U, target, buckets, seed) must match."""

    def __init__(self, path: str | None, setting: dict):
        self.path, self.setting, self.losses = (Path(path) if path else None), setting, {}
        if self.path and self.path.is_file():
            data = json.loads(self.path.read_text())
            if data.get("setting") != setting:
                raise SystemExit(f"--cache {self.path} was written for {data.get('setting')}, not {setting}; "
                                 "use another file for this setting")
            self.losses = {k: float(v) for k, v in data["losses"].items()}

    def get(self, jobs: dict[str, tuple], workers: int) -> dict[str, float]:
        """Loss of every job key, training (and saving) only the missing ones."""
        todo = [k for k in jobs if k not in self.losses]
        if todo:
            self.losses.update(zip(todo, train_all([jobs[k] for k in todo], workers)))
            if self.path:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"setting": self.setting, "losses": self.losses}, indent=1, sort_keys=True))
                os.replace(tmp, self.path)
        return {k: self.losses[k] for k in jobs}


def planner_pools(obs: dict, pool_samples: float, tps: float, weighting: str):
    """(a, d, rmse, {pool: (b, tau, source)}, resolved, cfg): the library's fit with ``weighting`` (shared a, d on the
    coarse grid, per-pool b, tau; a fit that is unusable keeps its T-MARS prior, put on the fitted pools' scale)."""
    names = list(obs)
    a, d, fits = fit_shared_law({p: (s, y, pool_samples) for p, (s, y) in obs.items()},
                                {p: prior_params(j) for j, p in enumerate(names)}, weighting=weighting)
    cfg = {"a": a, "d": d, "tokens_per_sample": tps, "pools": [{"name": p, "share": 1 / len(names)} for p in names]}
    resolved = [replace(p, b=fits[p.name].b, tau=fits[p.name].tau, law_source="fit")
                if usable_fit(fits[p.name]) is None else p for p in
                resolve_pools("pool", cfg, unique_tokens=int(round(len(names) * pool_samples * tps)),
                              mean_tokens_per_doc=None, spec=None)]
    resolved = priors_on_fitted_scale(resolved)
    cost = sum(f.n_points * f.rmse_log ** 2 for f in fits.values())
    rmse = float(np.sqrt(cost / sum(len(s) for s, _ in obs.values())))
    return a, d, rmse, {r.name: (r.b, r.tau, r.law_source) for r in resolved}, resolved, cfg


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="2 buckets, U=4k tokens, tiny proxy, 1 check budget (CI)")
    ap.add_argument("--target", default="docs")
    ap.add_argument("--buckets", type=int, default=4)
    ap.add_argument("--unique", type=int, default=None, help="unique tokens per bucket U (default 65536)")
    ap.add_argument("--checks", default="2,8,32", help="budgets to train every option at, in multiples of U")
    ap.add_argument("--ks", default="1,2,4,8", help="repetition counts of the single-bucket runs that measure b and tau")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--fits", default=",".join(WEIGHTINGS),
                    help=f"pool-law fits to plan with, side by side on the same runs (of {', '.join(WEIGHTINGS)}); "
                         "the first one is the summary's")
    ap.add_argument("--cache", default=None, help="JSON file of trained losses: read, extended with missing runs, written")
    args = ap.parse_args(argv)
    start = provenance()
    t0 = time.perf_counter()
    P = 2 if args.smoke else args.buckets
    U = args.unique or (4096 if args.smoke else 65_536)
    ks = KS[:3] if args.smoke else tuple(int(k) for k in args.ks.split(","))
    checks = [4.0] if args.smoke else [float(c) for c in args.checks.split(",")]
    fit_names = [f.strip() for f in args.fits.split(",") if f.strip()]
    if not fit_names or set(fit_names) - set(WEIGHTINGS):
        raise SystemExit(f"--fits takes names of {WEIGHTINGS}; got {args.fits!r}")
    bytes_per_domain = 60_000 if args.smoke else 400_000
    domains, target, shares = make_buckets(args.target, P, U, bytes_per_domain, args.seed)
    names = list(domains)
    cache = LossCache(args.cache, {"target": args.target, "buckets": P, "unique": U, "seed": args.seed,
                                   "bytes_per_domain": bytes_per_domain, "smoke": args.smoke})
    print(f"target {args.target}; {P} DSIR buckets of U={U} unique tokens; share of target-domain documents per bucket: "
          + ", ".join(f"{n} {s:.2f}" for n, s in zip(names, shares)))

    single = cache.get({f"{p}@{k}x": (domains, [p], target, k * U, args.seed, args.smoke) for p in names for k in ks},
                       args.workers)
    tps = 32.0 if args.smoke else 128.0  # one training sequence per sample
    obs = {p: (np.array([k * U / tps for k in ks]), np.array([single[f"{p}@{k}x"] for k in ks])) for p in names}
    for p, (_, y) in obs.items():
        print(f"{p}: target loss at k=" + ", ".join(f"{k}: {v:.4f}" for k, v in zip(ks, y)), flush=True)
    plans = {}
    for w in fit_names:
        a, d, rmse, laws, resolved, cfg = planner_pools(obs, U / tps, tps, w)
        frontier = [len(choose_pools("pool", resolved, cfg, U * 2.0**k).kept) for k in range(0, 10)]
        order = choose_pools("pool", resolved, cfg, U).ranked  # the law's order (by b): options are its top-1 .. top-P
        plans[w] = dict(rmse=rmse, resolved=resolved, cfg=cfg, frontier=frontier, order=order)
        print(f"[{w}] shared law a={a:.4g} d={d:.4f} (rmse log {rmse:.4f}); "
              + "; ".join(f"{p}: b={b:.4f} tau={tau:.3g} ({src})" for p, (b, tau, src) in laws.items()))
        print(f"[{w}] planner's bucket count at 1U, 2U, ... 512U: {frontier}; order {order}")

    rows = {w: [] for w in fit_names}
    for m in checks:
        B = int(m * U)
        sets = {"+".join(sorted(pl["order"][:j + 1])) for pl in plans.values() for j in range(P)}
        jobs = {f"{s}@{m:g}U#{args.seed + i}": (domains, s.split("+"), target, B, args.seed + i, args.smoke)
                for s in sorted(sets) for i in range(args.seeds)}
        got = cache.get(jobs, args.workers)
        for w, pl in plans.items():
            y = np.array([[got[f"{'+'.join(sorted(pl['order'][:j + 1]))}@{m:g}U#{args.seed + i}"]
                           for i in range(args.seeds)] for j in range(P)])
            chosen_names = choose_pools("pool", pl["resolved"], pl["cfg"], B).kept
            chosen = len(chosen_names)
            best = int(np.argmin(y.mean(axis=1))) + 1
            diff = y[chosen - 1] - y[best - 1]
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.inf
            within = chosen == best or bool(diff.mean() < 2 * se)
            rows[w].append({"budget_U": m, "measured": y.mean(axis=1).tolist(), "best": best, "chosen": chosen,
                            "chosen_pools": chosen_names, "agree": within, "gap": float(diff.mean())})
            print(f"[{w}] {m:g}U: measured top-1..top-{P} ({', '.join(pl['order'])}) "
                  + " ".join(f"{v:.4f}" for v in y.mean(axis=1))
                  + f" -> best top-{best}; planner keeps {chosen} ({', '.join(chosen_names)}); gap {diff.mean():+.4f}"
                  + (" (within noise)" if within and chosen != best else ""), flush=True)
    for w, pl in plans.items():
        if pl["order"] != names:
            print(f"note [{w}]: fitted b ranks the buckets {pl['order']}, not in score order {names}; its options follow that order")
    print(f"total {time.perf_counter() - t0:.0f} s")
    print(machine_line(start, provenance()))
    per_fit = {w: sum(r["agree"] for r in rows[w]) for w in fit_names}
    main_fit = fit_names[0]
    n = len(checks)
    return print_summary({"budgets": n, "exact": sum(r["best"] == r["chosen"] for r in rows[main_fit]),
                          **goal("agree", per_fit[main_fit] / n, 0.5), "fit": main_fit,
                          **{f"agree_{w}": per_fit[w] / n for w in fit_names[1:]},
                          "kept_first": plans[main_fit]["frontier"][0], "kept_last": plans[main_fit]["frontier"][-1],
                          "fit_rmse_log": plans[main_fit]["rmse"], "buckets": P, "unique_tokens": U, "seeds": args.seeds,
                          "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
