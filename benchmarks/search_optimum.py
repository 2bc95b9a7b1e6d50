"""Does the search's own optimum beat uniform where it was fitted? And how many sweep runs does it take?

``propose.keep_baseline_within_noise`` (on in the demo) keeps natural or uniform unless the search's mixture is
predicted better beyond the noise band. This benchmark takes the gate away and trains what the search finds.

Steps, on the demo config (``configs/demo.yaml``: 2 layers, n_embd 64, 500k tokens per run, 7 domains):

1. sweep the config with ``runs`` sampled mixtures (the first size of ``--runs``); the baselines and two-phase runs
   as configured;
2. fit the default surrogate on the runs' ends (``pipeline.fit``), search without the gate at the proxies' own budget
   (``pipeline.propose``, ``budget_tokens`` = the proxy's tokens, no projector);
3. train the optimum with ``--seeds`` paired seeds at the proxies' budget (``mixopt.verify.verify``) against natural
   and uniform: the surrogate's claim tested where it has data, with no budget transfer in between;
4. add runs up to the next size of ``--runs`` and repeat: ``--pick random`` draws the sweep's next sampled mixtures
   (the sampler's sequence, so the sizes nest); ``--pick lcb`` trains the mixtures the surrogate thinks could be
   best (lowest mean - ``--kappa`` x std among 50,000 draws around the search prior, at least ``--tv`` apart in total
   variation): a round of sequential design.

Usage::

    python benchmarks/search_optimum.py --store /tmp/so --runs 16,24,32        # ~10 min on 2 cores
    python benchmarks/search_optimum.py --store /tmp/so-lcb --runs 16,24 --pick lcb
    python benchmarks/search_optimum.py --smoke                                # the tiny config, seconds (CI)

The last line is the ``summary:`` line: per size, the optimum minus uniform (``opt_minus_uniform_<n>``) and whether
its 95% interval is above zero (``opt_worse_<n>``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, print_summary, paired_seeds, provenance  # noqa: E402

from mixopt import pipeline  # noqa: E402
from mixopt.config import SweepConfig, config_from_dict, load_config, resolve_config  # noqa: E402
from mixopt.data.domains import load_domain_set  # noqa: E402
from mixopt.planning.propose import ProposeContext, search_prior  # noqa: E402
from mixopt.proxy.loop import torch_threads  # noqa: E402
from mixopt.runs.executors import choose_workers, run_local  # noqa: E402
from mixopt.runs.record import RunSpec  # noqa: E402
from mixopt.runs.store import RunStore, StoreSnapshot  # noqa: E402
from mixopt.runs.table import VERIFY_LABEL  # noqa: E402
from mixopt.samplers import dirichlet_candidates  # noqa: E402
from mixopt.verify import verify  # noqa: E402


def build_cfg(smoke: bool) -> SweepConfig:
    raw = load_config(resolve_config("tiny" if smoke else "demo")).model_dump(mode="json")
    raw["propose"].update(keep_baseline_within_noise=False, fit_budgets=False, upsample=False)
    if smoke:
        raw["sampler"]["two_phase_runs"] = 0
    return config_from_dict(raw, where="search_optimum")


def sweep_only(root: str) -> StoreSnapshot:
    """The store without the runs verify trained (the optimum's arms): they must not train the surrogate."""
    full = pipeline.open_store(root)
    return StoreSnapshot(full.meta, [r for r in full.records if not r.label.startswith(VERIFY_LABEL)], full.root)


def lcb_mixtures(model, cfg: SweepConfig, n: int, *, kappa: float, tv: float, seed: int) -> list[dict[str, float]]:
    """``n`` mixtures with the lowest mean - kappa * std, at least ``tv`` apart in total variation."""
    ctx = ProposeContext(domains=model.domains, target=model.target, token_counts=model.meta["token_counts"], sampler=cfg.sampler)
    s = cfg.sampler
    C = dirichlet_candidates(search_prior(ctx), 50_000, seed=seed, strength_range=(s.strength_min, s.strength_max),
                             min_weight=s.min_weight)
    mean, sd = model.estimator.predict(C, return_std=True)
    picks: list[int] = []
    for i in np.argsort(mean - kappa * sd):
        if all(0.5 * np.abs(C[i] - C[j]).sum() >= tv for j in picks):
            picks.append(int(i))
        if len(picks) == n:
            break
    return [{d: float(x) for d, x in zip(model.domains, C[i]) if x > 0} for i in picks]


def top(weights: dict[str, float], k: int = 3) -> str:
    return ", ".join(f"{d} {w:.2f}" for d, w in sorted(weights.items(), key=lambda t: -t[1])[:k])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="the tiny config, sizes 4,6, 2 seeds: seconds (CI); numbers not meaningful")
    ap.add_argument("--store", default=None, help="run store (resumable); default a temporary one")
    ap.add_argument("--runs", default=None, help="comma-separated sweep sizes, increasing (default 16,24,32; smoke 4,6)")
    ap.add_argument("--seeds", type=paired_seeds, default=None, help="paired seeds per arm (default 4; smoke 2)")
    ap.add_argument("--pick", choices=("random", "lcb"), default="random", help="how the runs beyond the first size are chosen")
    ap.add_argument("--kappa", type=float, default=1.0, help="--pick lcb: mean - kappa * std")
    ap.add_argument("--tv", type=float, default=0.1, help="--pick lcb: least total-variation distance between picks")
    args = ap.parse_args(argv)
    sizes = [int(v) for v in (args.runs or ("4,6" if args.smoke else "16,24,32")).split(",")]
    if sizes != sorted(sizes) or len(set(sizes)) != len(sizes):
        ap.error(f"--runs must increase: got {sizes}")
    seeds = args.seeds or (2 if args.smoke else 4)
    with tempfile.TemporaryDirectory(prefix="mixopt-search-optimum-") as tmp, torch_threads(1):
        return run(args, sizes, seeds, args.store or tmp)


def run(args, sizes: list[int], seeds: int, root: str) -> dict:
    start, t0 = provenance(), time.perf_counter()
    cfg = build_cfg(args.smoke)
    tokens = float(cfg.proxy.tokens)
    pipeline.sweep(cfg, root, n_runs=sizes[0], show_progress=False)
    data = load_domain_set(cfg.data, store_fingerprint=RunStore(root).meta().get("data_fingerprint"))  # an older store resumes
    fields: dict = {}
    rows = []
    for n in sizes:
        if n > sizes[0]:
            if args.pick == "random":
                pipeline.sweep(cfg, root, n_runs=n, show_progress=False)
            else:
                model = pipeline.fit(sweep_only(root), cfg.propose.target, seed=cfg.seed)
                have = sum(r.label.startswith("lcb-") for r in sweep_only(root).records)
                new = lcb_mixtures(model, cfg, n - sizes[0] - have, kappa=args.kappa, tv=args.tv, seed=cfg.seed + n)
                specs = [RunSpec(mixture=w, proxy=cfg.proxy.model_dump(mode="json"), data_fingerprint=data.fingerprint,
                                 seed=cfg.seed, label=f"lcb-{have + k:04d}") for k, w in enumerate(new)]
                pending = [sp for sp in specs if not RunStore(root).has(sp.run_id)]
                if pending:
                    run_local(pending, cfg, RunStore(root), data, workers=choose_workers(cfg, None, pending))
                print(f"  lcb picks for {n}: " + "; ".join(top(w, 2) for w in new), flush=True)
        snap = sweep_only(root)
        model = pipeline.fit(snap, cfg.propose.target, seed=cfg.seed)
        plan = pipeline.propose(model, config=cfg, snapshot=snap, budget_tokens=tokens, use_projector=False)
        body = verify(plan, RunStore(root, create=False), snap, cfg, data, against=["natural", "uniform"], seeds=seeds, tokens=tokens)
        opt = body["results"][0]
        comp = {c["against"]: c for c in body["comparisons"]}
        u, nat = comp["uniform"], comp["natural"]
        rows.append((n, model.meta["n_runs"], top(opt["weights"]), plan.predicted.value, plan.predicted.std, opt["mean"], u, nat,
                     model.meta["cv"]["spearman"]))
        print(f"{n} sampled ({model.meta['n_runs']} runs, CV Spearman {model.meta['cv']['spearman']:.3f}): optimum {top(opt['weights'])}; "
              f"predicted {plan.predicted.value:.4f} ± {plan.predicted.std:.4f}, measured {opt['mean']:.4f}; "
              f"vs uniform {u['diff']:+.4f} [{u['ci95'][0]:+.4f}, {u['ci95'][1]:+.4f}], "
              f"vs natural {nat['diff']:+.4f} [{nat['ci95'][0]:+.4f}, {nat['ci95'][1]:+.4f}]", flush=True)
        fields[f"opt_minus_uniform_{n}"] = u["diff"]
        fields[f"opt_worse_{n}"] = bool(u["plan_worse"])
        fields[f"opt_error_{n}"] = opt["mean"] - plan.predicted.value
    print("\n| sampled runs | runs fitted | optimum (largest shares) | predicted ± sd | measured | optimum - uniform [95%] | optimum - natural [95%] |")
    print("|---|---|---|---|---|---|---|")
    for n, runs, w, p, s, m, u, nat, _ in rows:
        print(f"| {n} | {runs} | {w} | {p:.4f} ± {s:.4f} | {m:.4f} | {u['diff']:+.4f} [{u['ci95'][0]:+.4f}, {u['ci95'][1]:+.4f}] | "
              f"{nat['diff']:+.4f} [{nat['ci95'][0]:+.4f}, {nat['ci95'][1]:+.4f}] |")
    print(f"\npick {args.pick}; seeds {seeds}; total {time.perf_counter() - t0:.0f} s")
    print(machine_line(start, provenance()))
    return print_summary({**fields, "seeds": seeds, "mode": ("smoke" if args.smoke else "full") + f"-{args.pick}"})


if __name__ == "__main__":
    main()
