"""Verify the end-of-training upsampling phase by training, not by trusting the surrogate.

Why: ``search_upsampling`` only says a two-phase schedule *should* help; this script
trains it. Steps, all on the embedded 7-domain corpus (byte tokens, 2-core CPU):

1. sweep: ``plan_sweep`` with natural + uniform + sampled single-phase runs and
   ``sampler.two_phase_runs`` two-phase runs (base p, upsampled q for the last f);
   one seed per mixture (``sampler.noise_seeds: 1``);
2. fit ``TwoPhaseSurrogate`` on all of them, target ``val/code`` (the Python stdlib
   domain: a domain-specific target of the kind Blakeney et al. upsample for);
3. search p (RegMix simulation + ES on the q = p, f = 0 view of the same model) and
   then the end phase (q, f) with ``search_upsampling``, as ``mixopt propose`` does,
   under the scenario of a general-purpose run that may spend at most ``--code-cap``
   (20%) of *all* its tokens on code. The cap binds the overall share
   r = (1 - f) p + f q, so the question is where in training the code tokens go --
   the setting where upsampling can help. Both search modes run ("on top": q added to
   p's run; "reorder": overall shares kept at p, tokens moved to the end,
   ``keep_overall=True``); the better predicted one is the candidate;
4. train at 4x the sweep's per-run tokens, ``--seeds`` seeds each: the plan, the
   other schedule (p alone, or p then the end phase), **natural with code at the
   plan's code share** (natural's other domains scaled down to make room: the
   matched control, same code tokens as the plan), and, for reference only, the
   natural and uniform mixtures (about 14% code: *not* matched).

The verdict compares the proposed plan only with the arms that spend the same share
of tokens on code (within 0.005); natural and uniform are printed for scale.

Runs go through ``execute_run`` into a run store (``--store``), so a rerun resumes.

Usage::

    python benchmarks/upsampling_verify.py            # ~10 min on an idle 2-core CPU
    python benchmarks/upsampling_verify.py --quick    # 1-layer proxy, 26 runs of 40,960 tokens: ~5 min
    python benchmarks/upsampling_verify.py --smoke    # tiny proxy, in-process: seconds (CI); numbers not meaningful

The last line is the ``summary:`` line.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402

from mixopt.config import DataConfig, ProxyConfig, SweepConfig  # noqa: E402
from mixopt.data.domains import load_domain_set  # noqa: E402
from mixopt.mixtures import (  # noqa: E402
    Mixture,
    natural_mixture,
    overall_shares,
    temperature_prior,
    uniform_mixture,
)
from mixopt.planning.phases import (  # noqa: E402
    plan_phases,
    records_to_phase_data,
    search_upsampling,
    tilt_box,
)
from mixopt.planning.constraints import Constraints  # noqa: E402
from mixopt.planning.search import optimize_mixture, simulate_search  # noqa: E402
from mixopt.runs.record import RunSpec  # noqa: E402
from mixopt.runs.store import RunStore  # noqa: E402
from mixopt.runs.sweep import execute_run, plan_sweep  # noqa: E402
from mixopt.surrogates.two_phase import (  # noqa: E402
    BaseMixtureView,
    TwoPhaseSurrogate,
    phase_features,
)

TARGET = "val/code"
DOMAIN = "code"
MATCH_TOL = 0.005  # arms whose overall code share is within this of the plan's are matched controls
_DATA = None  # per worker process


def build_cfg(size: str) -> SweepConfig:
    if size == "smoke":
        proxy = dict(n_layer=1, n_embd=32, head_size=32, block_size=32, batch_size=8, tokens=8 * 32 * 16)
        runs, two = 6, 5
    elif size == "quick":
        proxy = dict(n_layer=1, n_embd=64, head_size=64, block_size=64, batch_size=8, tokens=8 * 64 * 80)
        runs, two = 14, 10
    else:
        proxy = dict(n_layer=2, n_embd=64, head_size=64, block_size=64, batch_size=16, tokens=16 * 64 * 300)
        runs, two = 22, 16  # + natural + uniform = 24 single-phase runs
    proxy.update(lr=3e-3, schedule="cosine", checkpoints=[1.0], eval_tokens=1024 if size == "smoke" else 4096,
                 device="cpu", dtype="float32")
    data = {"corpus": "embedded", "max_documents": 200 if size == "smoke" else 300}
    return SweepConfig(name="upsampling-verify", seed=0, runs=runs, data=data, proxy=proxy,
                       sampler={"two_phase_runs": two, "max_epochs": 50, "noise_seeds": 1, "noise_mixtures": 0},
                       propose={"upsample_fraction_min": 0.05, "upsample_fraction_max": 0.30, "max_epochs": 4})


def _init(data_cfg: dict) -> None:
    global _DATA
    _DATA = load_domain_set(DataConfig(**data_cfg))


def _execute(job) -> str:
    """Train one run into the store (skipped when it is already there, so reruns resume)."""
    spec, root = job
    return execute_run(spec, RunStore(root), _DATA, wait=True, threads=1)


def _run_all(pool, specs, root: str) -> list:
    jobs = [(s, root) for s in specs]
    list(pool.map(_execute, jobs) if pool is not None else map(_execute, jobs))
    store = RunStore(root)
    return [store.get(s.run_id) for s in specs]


def _mean_all(metrics: dict) -> float:
    return statistics.fmean(v for k, v in metrics.items() if k.startswith("val/"))


def _cv_spearman(X, y, folds=5, seed=0) -> float:
    """Out-of-fold rank correlation of the two-phase surrogate (a sanity figure, not a gate)."""
    idx = np.random.default_rng(seed).permutation(len(y))
    pred = np.empty(len(y))
    for part in np.array_split(idx, folds):
        train = np.setdiff1d(idx, part)
        pred[part] = TwoPhaseSurrogate(random_state=0).fit(X[train], y[train]).predict(X[part])
    return float(spearmanr(pred, y).statistic)


def with_share(base: dict[str, float], domain: str, share: float) -> dict[str, float]:
    """``base`` with ``domain`` set to ``share`` and the other domains scaled to fill the rest, ratios kept."""
    rest = 1.0 - base[domain]
    return {d: (share if d == domain else w * (1.0 - share) / rest) for d, w in base.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1-layer proxy, 26 sweep runs of 40,960 tokens: ~5 min")
    mode.add_argument("--smoke", action="store_true", help="tiny proxy, in-process, 2 seeds: seconds (CI)")
    ap.add_argument("--workers", type=int, default=None, help="training processes, 1 torch thread each (default 2; smoke 1 = in-process)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per arm at 4x tokens (default 3, quick/smoke 2)")
    ap.add_argument("--code-cap", type=float, default=0.2,
                    help="max overall token share of code in the plan (1 = unconstrained; then p is ~all code)")
    ap.add_argument("--store", default=None, help="run store to keep (and resume) the runs in; default a temp dir")
    args = ap.parse_args(argv)
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    workers = args.workers or (1 if args.smoke else 2)
    with tempfile.TemporaryDirectory(prefix="mixopt-upsampling-") as tmp:
        return run(args, size, workers, args.store or tmp)


def run(args, size: str, workers: int, root: str) -> dict:
    start = provenance()
    seeds = list(range(args.seeds or (3 if size == "full" else 2)))
    t0 = time.perf_counter()
    cfg = build_cfg(size)
    data = load_domain_set(cfg.data)
    names = data.names
    specs = plan_sweep(cfg, data)
    n_two = sum(len(s.phases) > 1 for s in specs)
    print(f"sweep: {len(specs) - n_two} single-phase + {n_two} two-phase runs at {cfg.proxy.tokens:,} tokens "
          f"({cfg.proxy.n_layer} layer(s), n_embd {cfg.proxy.n_embd}); target {TARGET}", flush=True)
    proxy = cfg.proxy.model_dump(mode="json")
    if workers > 1:
        pool = ProcessPoolExecutor(workers, initializer=_init, initargs=(cfg.data.model_dump(mode="json"),))
    else:
        global _DATA
        pool, _DATA = None, data
    try:
        records = _run_all(pool, specs, root)
        failed = [r.run_id for r in records if r.status != "ok"]
        print(f"  done in {time.perf_counter() - t0:.0f} s; failed: {failed or 'none'}", flush=True)

        P, Q, F, y = records_to_phase_data(records, names, TARGET)
        X = phase_features(P, Q, F)
        model = TwoPhaseSurrogate(random_state=0).fit(X, y)
        cv_rho = _cv_spearman(X, y)
        print(f"fit: {len(y)} runs ({int((F > 0).sum())} two-phase); 5-fold CV Spearman {cv_rho:.3f}", flush=True)

        budget = 4 * cfg.proxy.tokens
        pc = cfg.propose
        caps = {DOMAIN: args.code_cap} if args.code_cap < 1 else None
        cons = Constraints.build(names, max_weights=caps, token_counts=data.token_counts, budget_tokens=budget, max_epochs=pc.max_epochs)
        print(f"constraints at {budget:,} tokens: max_epochs {pc.max_epochs:g}" + (f", {DOMAIN} <= {args.code_cap:g} of all tokens" if caps else ""))
        view = BaseMixtureView(model)
        prior = temperature_prior(data.token_counts, 0.5).vector(names)
        n_cand = 5000 if size != "full" else 20000
        coarse = simulate_search(view, prior, constraints=cons, n_candidates=n_cand, top_k=50, seed=0,
                                 uncertainty_weight=pc.uncertainty_weight, domains=names)
        fine = optimize_mixture(view, coarse.weights, constraints=cons, uncertainty_weight=pc.uncertainty_weight, seed=0)
        best = fine if fine.score < coarse.score else coarse
        p = {d: float(w) for d, w in zip(names, best.weights)}
        kw = dict(constraints=cons, f_range=(pc.upsample_fraction_min, pc.upsample_fraction_max), n_candidates=n_cand,
                  seed=0, uncertainty_weight=pc.uncertainty_weight, domains=names, tilt_box=tilt_box(P, Q, F))
        ups = {mode: search_upsampling(model, best.weights, keep_overall=mode == "reorder", **kw) for mode in ("on top", "reorder")}
        for mode, u in ups.items():
            print(f"upsampling ({mode} of p): predicted {u['predicted']:.4f} ± {u['std']:.4f}, f = {u['f']:.3f}, "
                  f"helps = {u['helps']}, inside the two-phase runs' box = {bool(u.get('trusted', True))}")
        mode = min(ups, key=lambda m: ups[m]["predicted"] + pc.uncertainty_weight * ups[m]["std"])
        up = ups[mode]
        helps = bool(up["helps"]) and bool(up.get("trusted", True))
        two = plan_phases(p, {**up, "helps": True})  # the upsampling candidate, trained even when not proposed
        fmt = lambda w: ", ".join(f"{d} {x:.3f}" for d, x in w.items() if x >= 0.0005)  # noqa: E731
        print(f"search: p = {{{fmt(plan_phases(p, None)[0]['weights'])}}}; upsampling mode: {mode}")
        if len(two) > 1:
            print(f"        first phase p' = {{{fmt(two[0]['weights'])}}}")
            print(f"        end phase from {two[1]['start_fraction']:.3f} (f = {up['f']:.3f}): q = {{{fmt(two[1]['weights'])}}}")
        print(f"        predicted {TARGET} at proxy scale: two-phase {up['predicted']:.4f} ± {up['std']:.4f}, "
              f"p alone {up['baseline_predicted']:.4f} ± {up['baseline_std']:.4f}; proposed: {'two-phase' if helps else 'p alone'}",
              flush=True)

        def sched(phases):
            return [(ph["start_fraction"], dict(ph["weights"])) for ph in phases]

        plan_two, plan_one = sched(two), sched(plan_phases(p, None))
        proposed, other = (plan_two, plan_one) if helps else (plan_one, plan_two)
        code_share = overall_shares(proposed)[DOMAIN]
        natural = dict(natural_mixture(data.token_counts))
        arms = {
            "plan (" + ("p then upsampled q" if helps else "p only; upsampling not proposed") + ")": proposed,
            ("p only (upsampling removed)" if helps else "p then the best end phase (not proposed)"): other,
            f"natural, {DOMAIN} at the plan's share": [(0.0, with_share(natural, DOMAIN, code_share))],
            "natural": [(0.0, natural)],
            "uniform": [(0.0, dict(uniform_mixture(names)))],
        }
        shares = {name: overall_shares(ph)[DOMAIN] for name, ph in arms.items()}
        final_proxy = {**proxy, "tokens": budget}
        ProxyConfig(**final_proxy)  # validate
        fspecs = [RunSpec(mixture=Mixture(ph[0][1]), proxy=final_proxy, data_fingerprint=data.fingerprint, seed=s, label=name,
                          phases=tuple((st, Mixture(q)) for st, q in ph)) for name, ph in arms.items() for s in seeds]
        t1 = time.perf_counter()
        out = _run_all(pool, fspecs, root)
    finally:
        if pool is not None:
            pool.shutdown()
    print(f"verify: {len(arms)} arms x {len(seeds)} seeds at {budget:,} tokens in {time.perf_counter() - t1:.0f} s")
    stats = {}
    print(f"  {'arm':48s} {DOMAIN + ' share':>10s}  {TARGET:>17s}  {'mean val/*':>17s}")
    for i, name in enumerate(arms):
        res = out[i * len(seeds):(i + 1) * len(seeds)]
        if any(r.status != "ok" for r in res):
            print(f"  {name}: a run failed: {[r.reason for r in res if r.status != 'ok']}")
            continue
        t = [r.metrics[TARGET] for r in res]
        g = [_mean_all(r.metrics) for r in res]
        stats[name] = (statistics.fmean(t), statistics.stdev(t) if len(t) > 1 else 0.0)
        matched = "" if abs(shares[name] - code_share) <= MATCH_TOL else "  (not matched)"
        print(f"  {name:48s} {shares[name]:10.3f}  {stats[name][0]:.4f} ± {stats[name][1]:.4f}  "
              f"{statistics.fmean(g):.4f} ± {(statistics.stdev(g) if len(g) > 1 else 0.0):.4f}{matched}")
    plan_name, other_name, matched_name = list(arms)[:3]
    m, s = stats.get(plan_name, (float("nan"), float("nan")))

    def margin(name):  # positive: the plan has the lower loss
        v = stats.get(name, (float("nan"), float("nan")))
        return v[0] - m, math.hypot(v[1], s)

    controls = [k for k in arms if k != plan_name and abs(shares[k] - code_share) <= MATCH_TOL]
    beyond = all(margin(k)[0] > margin(k)[1] for k in controls)
    for k in controls:
        print(f"  plan vs '{k}' (matched): margin {margin(k)[0]:+.4f}, combined seed std {margin(k)[1]:.4f}")
    print(f"plan beats every matched arm ({len(controls)}) by more than the combined 1σ seed spread: {'YES' if beyond else 'NO'}")
    print(f"total {time.perf_counter() - t0:.0f} s; runs kept in {root if args.store else '(a temp dir, removed)'}")
    print(machine_line(start, provenance()))
    d_matched, sd_matched = margin(matched_name)
    return print_summary({
        "plan_val_code": m, "plan_std": s, "plan_code_share": code_share, "upsampling_proposed": helps,
        **goal("margin_vs_matched_natural", d_matched, sd_matched), "margin_vs_other_schedule": margin(other_name)[0],
        "margin_vs_natural_unmatched": margin("natural")[0], "margin_vs_uniform_unmatched": margin("uniform")[0],
        "natural_code_share": shares["natural"], "surrogate_cv_spearman": cv_rho, "met": beyond, "seeds": len(seeds), "mode": size})


if __name__ == "__main__":
    main()
