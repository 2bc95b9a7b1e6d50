"""Verify the end-of-training upsampling phase by training, not by trusting the surrogate.

Why: ``search_upsampling`` only says a two-phase schedule *should* help; this script
trains it. Steps, all on the embedded 7-domain corpus (byte tokens, 2-core CPU):

1. sweep: ``plan_sweep`` with natural + uniform + sampled single-phase runs and
   ``sampler.two_phase_runs`` two-phase runs (base p, upsampled q for the last f);
2. fit ``TwoPhaseSurrogate`` on all of them, target ``val/code`` (the Python stdlib
   domain: a domain-specific target of the kind Blakeney et al. upsample for);
3. search p (RegMix simulation + ES on the q = p, f = 0 view of the same model) and
   then the end phase (q, f) with ``search_upsampling``, under the scenario of a
   general-purpose run that may spend at most ``--code-cap`` (20%) of *all* its tokens
   on code. The cap binds the overall share r = (1 - f) p + f q, so the question is
   where in training the code tokens go -- the setting where upsampling can help.
   Both search modes run ("on top": q added to p's run; "reorder": overall shares kept
   at p, tokens moved to the end, ``keep_overall=True``); the better predicted one wins.
   Without the cap (``--code-cap 1``) the best p for val/code is ~all code and an end
   phase has nothing left to add;
4. train at 4x the sweep's per-run tokens, 3 seeds each: the plan (p then q), the plan
   without its upsampling phase (p only), the natural and the uniform mixture.

Runs go through ``execute_run`` into a run store (``--store``), so a rerun resumes.

Usage::

    python benchmarks/upsampling_verify.py            # ~10 min on 2 cores
    python benchmarks/upsampling_verify.py --quick    # < 2 min smoke run
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from mixopt.config import DataConfig, ProxyConfig, SweepConfig
from mixopt.data.domains import load_domain_set
from mixopt.mixtures import natural_mixture, temperature_prior, uniform_mixture
from mixopt.planning.phases import (BaseMixtureView, TwoPhaseSurrogate, phase_features, plan_phases, records_to_phase_data,
                                    search_upsampling)
from mixopt.planning.search import Constraints, optimize_mixture, simulate_search
from mixopt.runs.record import RunSpec
from mixopt.runs.store import RunStore
from mixopt.runs.sweep import execute_run, plan_sweep

TARGET = "val/code"
_DATA = None  # per worker process


def build_cfg(quick: bool) -> SweepConfig:
    if quick:
        proxy = dict(n_layer=1, n_embd=64, head_size=64, block_size=64, batch_size=8, tokens=8 * 64 * 80)
        runs, two = 6, 6
    else:
        proxy = dict(n_layer=2, n_embd=64, head_size=64, block_size=64, batch_size=16, tokens=16 * 64 * 300)
        runs, two = 22, 16  # + natural + uniform = 24 single-phase runs
    proxy.update(lr=3e-3, schedule="cosine", checkpoints=[1.0], eval_tokens=4096, device="cpu", dtype="float32")
    return SweepConfig(name="upsampling-verify", seed=0, runs=runs, data={"corpus": "embedded", "max_documents": 300},
                       proxy=proxy, sampler={"two_phase_runs": two, "max_epochs": 50},
                       propose={"upsample_fraction_min": 0.05, "upsample_fraction_max": 0.30, "max_epochs": 4})


def _init(data_cfg: dict) -> None:
    global _DATA
    _DATA = load_domain_set(DataConfig(**data_cfg))


def _execute(job) -> str:
    """Train one run into the store (skipped when it is already there, so reruns resume)."""
    spec, cfg_json, root = job
    return execute_run(spec, SweepConfig(**cfg_json), RunStore(root), _DATA, wait=True, threads=1)


def _run_all(pool, specs, cfg: SweepConfig, root: str) -> list:
    cfg_json = cfg.model_dump(mode="json")
    list(pool.map(_execute, [(s, cfg_json, root) for s in specs]))
    store = RunStore(root)
    return [store.get(s.run_id) for s in specs]


def _target(metrics: dict) -> float:
    return metrics[TARGET]


def _mean_all(metrics: dict) -> float:
    return statistics.fmean(v for k, v in metrics.items() if k.startswith("val/"))


def _cv_spearman(X, y, folds=5, seed=0) -> float:
    """Out-of-fold rank correlation of the two-phase surrogate (a sanity figure, not a gate)."""
    from scipy.stats import spearmanr

    idx = np.random.default_rng(seed).permutation(len(y))
    pred = np.empty(len(y))
    for part in np.array_split(idx, folds):
        train = np.setdiff1d(idx, part)
        pred[part] = TwoPhaseSurrogate(random_state=0).fit(X[train], y[train]).predict(X[part])
    return float(spearmanr(pred, y).statistic)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny proxy, few runs: a < 2 min smoke run")
    ap.add_argument("--workers", type=int, default=2, help="training processes (1 torch thread each)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per arm at 4x tokens (default 3, quick 2)")
    ap.add_argument("--code-cap", type=float, default=0.2,
                    help="max overall token share of code in the plan (1 = unconstrained; then p is ~all code)")
    ap.add_argument("--store", default=None, help="run store to keep (and resume) the runs in; default a temp dir")
    args = ap.parse_args(argv)
    root = args.store or tempfile.mkdtemp(prefix="mixopt-upsampling-")
    seeds = list(range(args.seeds or (2 if args.quick else 3)))
    t0 = time.perf_counter()
    cfg = build_cfg(args.quick)
    data = load_domain_set(cfg.data)
    names = data.names
    specs = plan_sweep(cfg, data)
    n_two = sum(bool(s.phases) for s in specs)
    print(f"sweep: {len(specs) - n_two} single-phase + {n_two} two-phase runs at {cfg.proxy.tokens:,} tokens "
          f"({cfg.proxy.n_layer} layer(s), n_embd {cfg.proxy.n_embd}); target {TARGET}", flush=True)
    proxy = cfg.proxy.model_dump(mode="json")
    with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(cfg.data.model_dump(mode="json"),)) as pool:
        records = _run_all(pool, specs, cfg, root)
        failed = [r.run_id for r in records if r.status != "ok"]
        print(f"  done in {time.perf_counter() - t0:.0f} s; failed: {failed or 'none'}", flush=True)

        P, Q, F, y = records_to_phase_data(records, names, TARGET)
        X = phase_features(P, Q, F)
        model = TwoPhaseSurrogate(random_state=0).fit(X, y)
        print(f"fit: {len(y)} runs ({int((F > 0).sum())} two-phase); 5-fold CV Spearman {_cv_spearman(X, y):.3f}", flush=True)

        budget = 4 * cfg.proxy.tokens
        pc = cfg.propose
        caps = {"code": args.code_cap} if args.code_cap < 1 else None
        cons = Constraints.build(names, max_weights=caps, token_counts=data.token_counts, budget_tokens=budget, max_epochs=pc.max_epochs)
        print(f"constraints at {budget:,} tokens: max_epochs {pc.max_epochs:g}" + (f", code <= {args.code_cap:g} of all tokens" if caps else ""))
        view = BaseMixtureView(model)
        prior = temperature_prior(data.token_counts, 0.5).vector(names)
        n_cand = 5000 if args.quick else 20000
        coarse = simulate_search(view, prior, constraints=cons, n_candidates=n_cand, top_k=50, seed=0,
                                 uncertainty_weight=pc.uncertainty_weight, domains=names)
        fine = optimize_mixture(view, coarse, constraints=cons, uncertainty_weight=pc.uncertainty_weight, seed=0)
        best = fine if fine.score < coarse.score else coarse
        p = {d: float(w) for d, w in zip(names, best.weights)}
        kw = dict(constraints=cons, f_range=(pc.upsample_fraction_min, pc.upsample_fraction_max), n_candidates=n_cand,
                  seed=0, uncertainty_weight=pc.uncertainty_weight, domains=names)
        ups = {mode: search_upsampling(model, best.weights, keep_overall=mode == "reorder", **kw) for mode in ("on top", "reorder")}
        for mode, u in ups.items():
            print(f"upsampling ({mode} of p): predicted {u['predicted']:.4f} ± {u['std']:.4f}, f = {u['f']:.3f}, helps = {u['helps']}")
        mode = min(ups, key=lambda m: ups[m]["predicted"] + pc.uncertainty_weight * ups[m]["std"])
        up = ups[mode]
        two = plan_phases(p, {**up, "helps": True})  # the upsampling candidate, trained even when not proposed
        fmt = lambda w: ", ".join(f"{d} {x:.3f}" for d, x in w.items() if x >= 0.0005)  # noqa: E731
        print(f"search: p = {{{fmt(plan_phases(p, None)[0]['weights'])}}}; upsampling mode: {mode}")
        print(f"        first phase p' = {{{fmt(two[0]['weights'])}}}")
        print(f"        end phase from {two[1]['start_fraction']:.3f} (f = {up['f']:.3f}): q = {{{fmt(two[1]['weights'])}}}")
        print(f"        predicted {TARGET} at proxy scale: two-phase {up['predicted']:.4f} ± {up['std']:.4f}, "
              f"p alone {up['baseline_predicted']:.4f} ± {up['baseline_std']:.4f}; helps = {up['helps']}", flush=True)

        def sched(phases):
            return phases[0]["weights"], [(ph["start_fraction"], ph["weights"]) for ph in phases[1:]]

        arms = {
            "plan: p then upsampled q" if up["helps"] else "p then upsampled q (not proposed)": sched(two),
            "plan without upsampling (p only)" if up["helps"] else "plan (p only; upsampling did not help)": sched(plan_phases(p, None)),
            "natural": (dict(natural_mixture(data.token_counts)), []),
            "uniform": (dict(uniform_mixture(names)), []),
        }
        final = cfg.model_copy(update={"proxy": ProxyConfig(**{**proxy, "tokens": budget})})
        fproxy = final.proxy.model_dump(mode="json")
        fspecs = [RunSpec(mixture=w, proxy=fproxy, data_fingerprint=data.fingerprint, seed=s, label=name,
                          phases=tuple((st, q) for st, q in ph)) for name, (w, ph) in arms.items() for s in seeds]
        t1 = time.perf_counter()
        out = _run_all(pool, fspecs, final, root)
    print(f"verify: {len(arms)} arms x {len(seeds)} seeds at {budget:,} tokens in {time.perf_counter() - t1:.0f} s")
    stats = {}
    for i, name in enumerate(arms):
        res = out[i * len(seeds):(i + 1) * len(seeds)]
        if any(r.status != "ok" for r in res):
            print(f"  {name}: a run failed: {[r.reason for r in res if r.status != 'ok']}")
            continue
        t = [_target(r.metrics) for r in res]
        g = [_mean_all(r.metrics) for r in res]
        stats[name] = (statistics.fmean(t), statistics.stdev(t) if len(t) > 1 else 0.0)
        print(f"  {name:42s} {TARGET} {stats[name][0]:.4f} ± {stats[name][1]:.4f}   "
              f"mean val/* {statistics.fmean(g):.4f} ± {(statistics.stdev(g) if len(g) > 1 else 0.0):.4f}")
    proposed = next(iter(arms)) if up["helps"] else list(arms)[1]
    if proposed in stats:
        m, s = stats[proposed]
        others = {k: v for k, v in stats.items() if k != proposed}
        margins = {k: (v[0] - m, math.hypot(v[1], s)) for k, v in others.items()}
        beyond = all(d > sd for d, sd in margins.values())
        best_other = min(others, key=lambda k: others[k][0])
        print(f"proposed plan: '{proposed}'. Best of the others: '{best_other}' (margin {margins[best_other][0]:+.4f}, "
              f"combined seed std {margins[best_other][1]:.4f}).")
        print(f"plan best beyond seed noise (margin > combined 1σ over every other arm): {'YES' if beyond else 'NO'}")
    print(f"total {time.perf_counter() - t0:.0f} s; runs kept in {root}")


if __name__ == "__main__":
    main()
