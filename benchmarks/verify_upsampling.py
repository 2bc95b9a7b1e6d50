"""End-of-training upsampling, verified by training through `mixopt verify`: two cases, each with a matched arm.

``search_upsampling`` only says a two-phase schedule *should* help; this script trains it. Two cases (``--case``):

* ``scarce`` (default; issue 12 item 4, issue 15 finding 3): the setting of Blakeney et al. 2024 ("Does your data
  spark joy?"). The embedded corpus's ``code`` domain is truncated to ``--code-docs`` documents and the plan may not
  repeat any domain more than ``--max-epochs`` (default 1) times at the verify budget (4x the proxy's tokens), so the
  code share of any plan is capped near ``max_epochs * code_tokens / budget``. Targets ``val/code`` and
  ``mean:all-domains``.
* ``cap`` (formerly ``benchmarks/upsampling_verify.py``): the full 7-domain corpus, a general-purpose run that may
  spend at most ``--code-cap`` (20%) of *all* its tokens on code (``propose.max_weights``, which binds the overall
  share r = (1 - f) p + f q), ``max_epochs`` 4, so the question is where in training the code tokens go. Its proxy is
  the old script's: 2 layers (``--quick``: 1 layer, 40,960 tokens per run). Target ``val/code``.

Steps, per case:

1. ``pipeline.sweep``: sampled single-phase runs plus ``sampler.two_phase_runs`` two-phase runs (end phases drawn by
   the sweep's sampler);
2. per target, ``pipeline.fit`` + ``pipeline.propose`` at 4x the proxy's tokens; print whether the planner proposed
   an end phase and its reason;
3. ``mixopt.verify.verify`` against no-upsampling, natural and uniform, with paired seeds;
4. extra arms, trained at verify's scale and seeds into the same store, compared by the same paired interval (below);
5. for a one-phase plan on a ``val/<domain>`` target, the workflow the planner leaves to verify: ``verify --against
   end-phase --adopt``, then the adopted plan against the plan it came from on ``--adopt-seeds`` fresh seeds.

The extra arms of step 4:
   * ``natural, code at the plan's share`` -- **the matched arm**: natural with code raised to the plan's overall
     code share (the other domains scaled down, their ratios kept), so it spends the same code tokens as the plan;
   * ``end phase, on top`` -- the best end phase the planner's own search (``search_upsampling``) finds for the plan's
     first phase, trained even where the planner declined it: "does declining lose anything?";
   * ``end phase, reorder`` -- the same search with ``keep_overall=True`` (overall shares kept, code tokens moved to
     the end): the Blakeney move when the cap binds and there is no room to add code on top.

Each arm is printed with its overall code share, the target's mean ± sd over seeds, the mean over ``val/*``, and the
paired plan-minus-arm difference with its 95% interval; arms whose code share is within 0.005 of the plan's are
"matched". The cap case's verdict (``met``) is the old script's: the plan beats every matched arm by more than the
combined 1-sigma seed spread.

Usage::

    python benchmarks/verify_upsampling.py --store /tmp/vu                       # scarce case, ~8 min on a loaded 2-core CPU
    python benchmarks/verify_upsampling.py --case cap --quick --seeds 3          # cap case, 1-layer proxy: ~10 min
    python benchmarks/verify_upsampling.py --case cap                            # cap case, 2-layer proxy
    python benchmarks/verify_upsampling.py --smoke   # both cases, tiny, seconds (CI); numbers not meaningful

The last line is the ``summary:`` line.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, paired_seeds, provenance

from mixopt import pipeline
from mixopt.config import SweepConfig
from mixopt.data.domains import load_domain_set
from mixopt.data.embedded import embedded_path
from mixopt.mixtures import Mixture, natural_mixture, overall_shares
from mixopt.planning.constraints import Constraints
from mixopt.planning.phases import (
    plan_phases,
    records_to_phase_data,
    search_upsampling,
    tilt_box,
)
from mixopt.proxy.loop import torch_threads
from mixopt.runs.record import RunSpec
from mixopt.runs.store import RunStore, StoreSnapshot
from mixopt.runs.sweep import execute_runs
from mixopt.runs.table import VERIFY_LABEL, records_table
from mixopt.surrogates.two_phase import TwoPhaseSurrogate, phase_features
from mixopt.verify import paired_interval, target_scale, verify
from verify_plans import fresh_adoption

DOMAIN = "code"
CASES = ("scarce", "cap")
TARGETS = {"scarce": ("val/code", "mean:all-domains"), "cap": ("val/code",)}
MATCHED = f"natural, {DOMAIN} at the plan's share"
MATCH_TOL = 0.005  # arms whose overall code share is within this of the plan's are matched controls


def build_cfg(case: str, size: str, args) -> SweepConfig:
    """The sweep of one case at ``size`` (smoke, quick or full)."""
    smoke = size == "smoke"
    if case == "scarce":
        steps = 4 if smoke else args.proxy_steps
        proxy = {"n_layer": 1, "n_embd": 32, "head_size": 32, "block_size": 32, "batch_size": 8, "tokens": 8 * 32 * steps,
                 "eval_tokens": 512 if smoke else 2048}
        code = {"name": DOMAIN, "path": str(embedded_path(DOMAIN)), "format": "jsonl", "max_documents": args.code_docs}
        data = {"corpus": "embedded", "max_documents": 60 if smoke else 300, "domains": [code]}
        runs, two, noise_seeds = (4, 3, 2) if smoke else (20, args.two_phase, 2)
        propose = {"max_epochs": args.max_epochs}
    else:  # the old upsampling_verify.py sizes: layers, width (= head, block), batch, steps, eval tokens, runs, two-phase runs
        layers, width, batch, steps, evals, runs, two = {  # + natural + uniform single-phase runs
            "smoke": (1, 32, 8, 16, 1024, 6, 5), "quick": (1, 64, 8, 80, 4096, 14, 10), "full": (2, 64, 16, 300, 4096, 22, 16)}[size]
        proxy = {"n_layer": layers, "n_embd": width, "head_size": width, "block_size": width, "batch_size": batch,
                 "tokens": batch * width * steps, "eval_tokens": evals}
        data = {"corpus": "embedded", "max_documents": 200 if smoke else 300}
        noise_seeds = 1
        propose = {"max_epochs": 4, "max_weights": {DOMAIN: args.code_cap} if args.code_cap < 1 else {}}
    proxy.update(lr=3e-3, schedule="cosine", checkpoints=[1.0], device="cpu", dtype="float32")
    propose.update(n_candidates=2000 if smoke else 5000 if size == "quick" else 20000, top_k=50,
                   upsample_fraction_min=0.05, upsample_fraction_max=0.30)
    return SweepConfig(name=f"verify-upsampling-{case}", seed=0, runs=runs, data=data, proxy=proxy, workers=args.workers,
                       sampler={"two_phase_runs": two, "noise_seeds": noise_seeds, "noise_mixtures": 0}, propose=propose)


def with_share(base: dict[str, float], domain: str, share: float) -> dict[str, float]:
    """``base`` with ``domain`` at ``share`` and the other domains scaled to fill the rest, their ratios kept."""
    rest = 1.0 - base[domain]
    return {d: (share if d == domain else w * (1.0 - share) / rest) for d, w in base.items()}


def end_phase_candidates(plan, snap, cfg, counts: dict[str, int], budget: float) -> dict[str, tuple[list, float]]:
    """The planner's end-phase search for the plan's first phase, on top and reordered: (schedule, search score)."""
    domains = sorted(counts)
    pc = cfg.propose
    p = {d: float(plan.phases[0].weights.get(d, 0.0)) for d in domains}
    w = np.array([p[d] for d in domains])
    P, Q, F, y = records_to_phase_data([r for r in snap.ok if not r.label.startswith(VERIFY_LABEL)], domains, plan.predicted.metric)
    model = TwoPhaseSurrogate(random_state=cfg.seed).fit(phase_features(P, Q, F), y)
    cons = Constraints.build(domains, min_weights=pc.min_weights or None, max_weights=pc.max_weights or None,
                             token_counts=counts, budget_tokens=budget, max_epochs=pc.max_epochs)
    out = {}
    for name, keep in (("end phase, on top", False), ("end phase, reorder", True)):
        up = search_upsampling(model, w, constraints=cons, domains=domains, seed=cfg.seed, keep_overall=keep,
                               f_range=(pc.upsample_fraction_min, pc.upsample_fraction_max),
                               n_candidates=min(pc.n_candidates, 20000), uncertainty_weight=pc.uncertainty_weight,
                               tilt_box=tilt_box(P, Q, F))
        gain = up["baseline_predicted"] - up["predicted"]
        print(f"    search ({name}): f = {up['f']:.2f}, predicted gain {gain:+.4f}, helps = {bool(up['helps'])}, "
              f"trusted = {bool(up.get('trusted', True))}")
        sched = [(ph["start_fraction"], dict(ph["weights"])) for ph in plan_phases(p, {**up, "helps": True})]
        out[name] = (sched, up["predicted"] + pc.uncertainty_weight * up["std"])
    return out


def train_arms(arms: dict[str, list], body: dict, store_root: str, data, plan, cfg) -> dict[str, list[float]]:
    """Train extra arms at verify's scale and seeds; their target values per seed."""
    scale = target_scale(cfg, data, plan, tokens=body["scale"]["tokens"])
    proxy = scale.proxy.model_dump(mode="json")
    specs = {(name, s): RunSpec(mixture=Mixture(ph[0][1]), proxy=proxy, data_fingerprint=data.fingerprint, seed=s,
                                label=f"{VERIFY_LABEL}{name}", phases=tuple((st, Mixture(q)) for st, q in ph))
             for name, ph in arms.items() for s in body["seeds"]}
    execute_runs(list({sp.run_id: sp for sp in specs.values()}.values()), RunStore(store_root), data, wait=True)
    store = RunStore(store_root, create=False)
    values = {}
    for name in arms:
        recs = [store.get(specs[(name, s)].run_id) for s in body["seeds"]]
        values[name] = [float(v) for v in records_table(recs).target(body["target"])]
    return values


def mean_all_values(root: str, name: str, seeds: list[int], tokens: int) -> list[float]:
    """``mean:all-domains`` per seed of one verify arm (its runs are labelled ``VERIFY_LABEL + name``)."""
    recs = {r.seed: r for r in pipeline.open_store(root).ok
            if r.label == f"{VERIFY_LABEL}{name}" and (r.proxy or {}).get("tokens") == tokens and r.seed in seeds}
    if len(recs) < len(seeds):
        return []
    return [float(v) for v in records_table([recs[s] for s in seeds]).target("mean:all-domains")]


def compare(plan_values: list[float], values: list[float]) -> tuple[float, float, float, str]:
    d = np.array(plan_values) - np.array(values)
    lo, hi = paired_interval(d)
    return float(d.mean()), lo, hi, "plan better" if hi < 0 else "plan worse" if lo > 0 else "within noise"


def mean_sd(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=(*CASES, "both"), default=None,
                    help="scarce: Blakeney's scarce, repetition-capped code (default); cap: code <= --code-cap of all "
                         "tokens on the full corpus (the old upsampling_verify.py); both (the --smoke default)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, 2 seeds, both cases: seconds (CI)")
    mode.add_argument("--quick", action="store_true", help="cap case at the 1-layer size (26 sweep runs of 40,960 tokens)")
    ap.add_argument("--store", default=None, help="folder for the run stores (one per case, <store>/<case>), kept and "
                    "resumed; default a temp dir")
    ap.add_argument("--seeds", type=paired_seeds, default=None, help="paired seeds per arm (default 4; smoke 2)")
    ap.add_argument("--workers", type=int, default=1, help="local training processes (the sweep's `workers`)")
    ap.add_argument("--code-docs", type=int, default=2, help="scarce case: documents of code to read (2 = one for "
                    "training, about 61k tokens, and one held out for val/code)")
    ap.add_argument("--proxy-steps", type=int, default=160, help="scarce case: proxy batches of 8x32 tokens per sweep run (smoke 4)")
    ap.add_argument("--max-epochs", type=float, default=1.0,
                    help="scarce case: propose.max_epochs, repetitions allowed at the verify budget")
    ap.add_argument("--two-phase", type=int, default=12, help="scarce case: two-phase sweep runs (smoke 3)")
    ap.add_argument("--adopt-seeds", type=paired_seeds, default=None, help="fresh seeds for the adopted end-phase plan against "
                    "the plan it came from (default 6; smoke 2)")
    ap.add_argument("--code-cap", type=float, default=0.2,
                    help="cap case: max overall token share of code in the plan (1 = unconstrained)")
    args = ap.parse_args(argv)
    case = args.case or ("both" if args.smoke else "scarce")
    if args.quick and case == "scarce":
        ap.error("--quick sizes the cap case; pass --case cap (or both), or size the scarce case with --proxy-steps")
    # one torch thread: verify trains run by run with torch's default (2 here), which on a loaded 2-core box
    # spins ~50x slower (70 s against 1.4 s for one 40,960-token run, measured side by side)
    with tempfile.TemporaryDirectory(prefix="mixopt-verify-upsampling-") as tmp, torch_threads(1):
        return run(args, CASES if case == "both" else (case,), args.store or tmp)


def run_case(case: str, args, size: str, root: str, seeds: int) -> dict:
    """Sweep, propose, verify and train the extra arms of one case; per target: the plan's phases, share and arms."""
    t0 = time.perf_counter()
    cfg = build_cfg(case, size, args)
    summary = pipeline.sweep(cfg, root, show_progress=False)
    data = load_domain_set(cfg.data, store_fingerprint=RunStore(root).meta().get("data_fingerprint"))  # an older store resumes
    counts = data.token_counts
    full = pipeline.open_store(root)
    # fit on the sweep alone: a resumed store also holds the verify runs of an earlier call (other scales)
    snap = StoreSnapshot(full.meta, [r for r in full.records if not r.label.startswith(VERIFY_LABEL)], full.root)
    budget = 4 * cfg.proxy.tokens
    cap = cfg.propose.max_epochs * counts[DOMAIN] / budget
    if case == "cap" and args.code_cap < 1:
        cap = min(cap, args.code_cap)
    natural = dict(natural_mixture(counts))
    print(f"[{case}] sweep: {summary.planned} runs at {cfg.proxy.tokens:,} tokens ({cfg.proxy.n_layer} layer(s), n_embd "
          f"{cfg.proxy.n_embd}; {cfg.sampler.two_phase_runs} two-phase); {DOMAIN} has {counts[DOMAIN]:,} training tokens "
          f"({natural[DOMAIN]:.3f} of all): at {budget:,} tokens its share is capped at {cap:.3f}; "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    # the plan's shares are rounded, so a plan on the cap can sit a hair above it (0.375 against 0.37500x): verify's
    # repetition check has no tolerance for that, so it is given a cap 0.1% looser (reported to the lead)
    vcfg = cfg.model_copy(update={"propose": cfg.propose.model_copy(update={"max_epochs": cfg.propose.max_epochs * 1.001})})
    out: dict = {"cap": cap, "natural_share": natural[DOMAIN]}
    for target in TARGETS[case]:
        t1 = time.perf_counter()
        model = pipeline.fit(snap, target, "linear" if size == "smoke" else "default")  # smoke: the GP's search is ~30 s
        plan = pipeline.propose(model, config=cfg, snapshot=snap, budget_tokens=budget, use_projector=False)
        share = overall_shares([(p.start_fraction, p.weights) for p in plan.phases]).get(DOMAIN, 0.0)
        note = next((r for r in plan.reasons if "upsampling phase" in r), "no note")
        cv = model.meta.get("cv", {}).get("spearman")
        print(f"  {target}: plan has {len(plan.phases)} phase(s), overall {DOMAIN} share {share:.3f} (cap {cap:.3f}); "
              f"surrogate CV Spearman {cv if cv is None else round(cv, 3)}; {note}")
        for ph in plan.phases:
            print(f"    from {ph.start_fraction:.2f}: {DOMAIN} {ph.weights.get(DOMAIN, 0.0):.3f}")
        body = verify(plan, RunStore(root, create=False), snap, vcfg, data, against=["no-upsampling", "natural", "uniform"],
                      seeds=seeds, tokens=budget)
        arms = {MATCHED: [(0.0, with_share(natural, DOMAIN, min(share, 0.999)))]}
        plan_sched = [(p.start_fraction, dict(p.weights)) for p in plan.phases]
        scores = {}
        for name, (sched, score) in end_phase_candidates(plan, snap, cfg, counts, budget).items():
            if sched != plan_sched and len(sched) > 1:
                arms[name], scores[name] = sched, score
        extra = train_arms(arms, body, root, data, plan, cfg)
        values = {r["name"]: r["values"] for r in body["results"]} | extra
        shares = {r["name"]: r["weights"].get(DOMAIN, 0.0) for r in body["results"] if r["phases"] == 1}
        shares |= {name: overall_shares(sched).get(DOMAIN, 0.0) for name, sched in arms.items()} | {"plan": share}
        rows = {c["against"]: (c["diff"], *c["ci95"], "plan better" if c["plan_better"] else "plan worse" if c["plan_worse"]
                               else "within noise") for c in body["comparisons"]}
        rows |= {name: compare(values["plan"], v) for name, v in extra.items()}
        stats = {name: mean_sd(v) for name, v in values.items()}
        print(f"    {'arm':38s} {DOMAIN + ' share':>10s}  {target + ' (seeds)':>20s}  {'mean val/*':>17s}  "
              f"plan - arm, 95% paired interval")
        for name in values:
            g = mean_sd(mean_all_values(root, name, body["seeds"], body["scale"]["tokens"]))
            matched = "" if abs(shares[name] - share) <= MATCH_TOL else " (not matched)"
            row = rows.get(name)
            cmp = f"{row[0]:+.4f} [{row[1]:+.4f}, {row[2]:+.4f}] {row[3]}" if row else ""
            print(f"    {name:38s} {shares[name]:10.3f}  {stats[name][0]:.4f} ± {stats[name][1]:.4f}  "
                  f"{g[0]:.4f} ± {g[1]:.4f}  {cmp}{matched if name != 'plan' else ''}")
        for s in body["skipped"]:
            print(f"    {s['name']}: skipped ({s['why']})")
        # the schedule the plan did not take: p alone when it has an end phase, else the better-scored end phase
        other = "no-upsampling" if len(plan.phases) > 1 else min(scores, key=scores.get) if scores else None
        controls = [k for k in values if k != "plan" and abs(shares[k] - share) <= MATCH_TOL]
        m, s = stats["plan"]
        margins = {k: (stats[k][0] - m, math.hypot(stats[k][1], s)) for k in values if k != "plan"}  # > 0: plan lower
        beyond = bool(controls) and all(margins[k][0] > margins[k][1] for k in controls)
        print(f"    plan beats every matched arm ({len(controls)}) by more than the combined 1σ seed spread: "
              f"{'YES' if beyond else 'NO'}; {time.perf_counter() - t1:.0f} s", flush=True)
        out[target] = {"phases": len(plan.phases), "rows": rows, "share": share, "stats": stats, "margins": margins,
                       "other": other, "beyond": beyond, "cv": cv, "adopt": adopt_end_phase(plan, root, snap, vcfg, data,
                                                                                             seeds, budget, args)}
    return out


def adopt_end_phase(plan, root: str, snap, vcfg, data, seeds: int, budget: int, args) -> dict | None:
    """The workflow the planner leaves to verify: ``verify --against end-phase --adopt`` on the verify seeds, then the
    plan it came from against the adopted end phase on ``--adopt-seeds`` fresh seeds (``verify_plans.fresh_adoption``),
    so the choice is not judged on the seeds it was made on. None for a plan with an end phase or a target of several
    domains."""
    if len(plan.phases) > 1 or not plan.predicted.metric.startswith("val/"):
        return None
    body = verify(plan, RunStore(root, create=False), snap, vcfg, data, against=["end-phase"], seeds=seeds, tokens=budget)
    note, c = fresh_adoption(plan, body, root, snap, vcfg, data, seeds=args.adopt_seeds or (2 if args.smoke else 6),
                             tokens=budget)
    print(f"    verify --against end-phase --adopt: {note}")
    if c is None:
        return {"adopted": False}
    lo, hi = -c["ci95"][1], -c["ci95"][0]  # adopted - original
    measured = next(r["mean"] for r in body["results"] if r["name"] == "end-phase")
    print(f"    the adopted plan on {len(c['seeds'])} fresh seeds: adopted - original {-c['diff']:+.4f} [{lo:+.4f}, "
          f"{hi:+.4f}]; its measured value {measured:.4f} against {c['arm_mean']:.4f} on the fresh seeds", flush=True)
    return {"adopted": True, "diff": -c["diff"], "lo": lo, "hi": hi}


def adopt_fields(prefix: str, r: dict) -> dict:
    """``<prefix>_adopted`` (None: not tried) and, when adopted, the fresh seeds' adopted - original and interval."""
    a = r.get("adopt")
    if not a:
        return {f"{prefix}_adopted": None}
    nan = float("nan")
    return {f"{prefix}_adopted": a["adopted"], f"{prefix}_adopt_fresh_diff": a.get("diff", nan),
            f"{prefix}_adopt_fresh_lo": a.get("lo", nan), f"{prefix}_adopt_fresh_hi": a.get("hi", nan)}


def run(args, cases: tuple[str, ...], root: str) -> dict:
    start = provenance()
    t0 = time.perf_counter()
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    seeds = args.seeds or (2 if args.smoke else 4)
    res = {case: run_case(case, args, size, str(Path(root) / case), seeds) for case in cases}
    nan = float("nan")

    def diff(r, name, i=0):
        row = r["rows"].get(name) if r else None
        return row[i] if row else nan

    fields: dict = {}
    if "scarce" in res:
        code, mean = res["scarce"]["val/code"], res["scarce"]["mean:all-domains"]
        fields |= {
            "code_cap": res["scarce"]["cap"], "code_plan_share": code["share"], "code_end_phase_proposed": code["phases"] > 1,
            "code_diff_vs_no_upsampling": diff(code, "no-upsampling"),
            "code_better_vs_no_upsampling": (diff(code, "no-upsampling", 2) < 0) if code["phases"] > 1 else None,
            "code_diff_vs_matched_natural": diff(code, MATCHED), "code_diff_vs_matched_natural_hi": diff(code, MATCHED, 2),
            "code_diff_vs_reorder": diff(code, "end phase, reorder"), "code_diff_vs_on_top": diff(code, "end phase, on top"),
            "code_diff_vs_natural": diff(code, "natural"),
            **adopt_fields("code", code),
            "mean_end_phase_proposed": mean["phases"] > 1, "mean_diff_vs_on_top": diff(mean, "end phase, on top"),
            "mean_no_loss_from_declining": (diff(mean, "end phase, on top", 1) <= 0) if mean["phases"] == 1 else None}
    if "cap" in res:  # the old upsampling_verify.py keys (margins: arm - plan, > 0 when the plan has the lower loss)
        c = res["cap"]["val/code"]
        mg = c["margins"]
        fields |= {
            "plan_val_code": c["stats"]["plan"][0], "plan_std": c["stats"]["plan"][1], "plan_code_share": c["share"],
            "upsampling_proposed": c["phases"] > 1,
            **goal("margin_vs_matched_natural", *mg.get(MATCHED, (nan, nan))),
            "margin_vs_other_schedule": mg[c["other"]][0] if c["other"] else nan,
            "margin_vs_natural_unmatched": mg.get("natural", (nan,))[0], "margin_vs_uniform_unmatched": mg.get("uniform", (nan,))[0],
            "natural_code_share": res["cap"]["natural_share"], "surrogate_cv_spearman": c["cv"] if c["cv"] is not None else nan,
            "cap_diff_vs_matched_natural": diff(c, MATCHED), "cap_diff_vs_matched_natural_hi": diff(c, MATCHED, 2),
            **adopt_fields("cap", c), "met": c["beyond"]}
    print(f"total {time.perf_counter() - t0:.0f} s; {seeds} paired seeds; cases {','.join(cases)}; "
          f"stores {root if args.store else '(temp, removed)'}")
    print(machine_line(start, provenance()))
    return print_summary({**fields, "seeds": seeds, "case": "both" if len(cases) > 1 else cases[0], "mode": size})


if __name__ == "__main__":
    main()
