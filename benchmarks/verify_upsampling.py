"""The upsampling case of `mixopt verify` (issue 12 item 4; issue 15 finding 3): a small, repetition-capped domain.

The setting of Blakeney et al. 2024 ("Does your data spark joy?"): the target domain is scarce, so its share of the
run is capped by repetition, and the question is *when* its tokens should come. Here the embedded corpus's ``code``
domain is truncated to ``--code-docs`` documents (``data.domains[code].max_documents``) and the plan may not repeat
any domain more than ``propose.max_epochs`` (default 1) times at the verify budget (4x the proxy's tokens), so the
code share of any plan is capped near ``max_epochs * code_tokens / budget``.

Steps:

1. sweep the small proxy of ``verify_plans.py`` with ``--two-phase`` two-phase runs (end phases drawn by the sweep's
   sampler, not biased toward code; there is no sweep option for that yet);
2. for ``val/code`` and for ``mean:all-domains``: ``pipeline.fit`` + ``pipeline.propose`` at 4x; print whether the
   planner proposed an end phase and its reason;
3. ``mixopt.verify.verify`` against no-upsampling, natural and uniform, with paired seeds;
4. extra arms, trained with the same scale and seeds (``execute_runs`` into the same store), compared by the same
   paired interval:
   * ``natural, code at the plan's share`` -- natural with code raised to the plan's overall code share (the other
     domains scaled down): the matched control of issue 15 finding 3 (same code tokens as the plan);
   * ``end phase, on top`` -- the best end phase the planner's own search (``search_upsampling``) finds for the plan's
     first phase, trained even where the planner declined it: "does declining lose anything?";
   * ``end phase, reorder`` -- the same search with ``keep_overall=True`` (overall shares kept, code tokens moved to
     the end): the Blakeney move when the cap binds and there is no room to add code on top.

Usage::

    python benchmarks/verify_upsampling.py --store /tmp/vu   # ~8 min on a loaded 2-core CPU
    python benchmarks/verify_upsampling.py --smoke           # tiny, seconds (CI); numbers not meaningful

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

from _common import machine_line, print_summary, provenance

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
from mixopt.runs.table import records_table
from mixopt.surrogates.two_phase import TwoPhaseSurrogate, phase_features
from mixopt.runs.table import VERIFY_LABEL  # noqa: E402
from mixopt.verify import paired_interval, target_scale, verify

DOMAIN = "code"
TARGETS = ("val/code", "mean:all-domains")


def build_cfg(smoke: bool, code_docs: int, two_phase: int, max_epochs: float, steps: int) -> SweepConfig:
    steps = 4 if smoke else steps
    proxy = {"n_layer": 1, "n_embd": 32, "head_size": 32, "block_size": 32, "batch_size": 8, "tokens": 8 * 32 * steps,
             "lr": 3e-3, "schedule": "cosine", "checkpoints": [1.0], "eval_tokens": 512 if smoke else 2048, "device": "cpu",
             "dtype": "float32"}
    code = {"name": DOMAIN, "path": str(embedded_path(DOMAIN)), "format": "jsonl", "max_documents": code_docs}
    return SweepConfig(name="verify-upsampling", seed=0, runs=4 if smoke else 20,
                       data={"corpus": "embedded", "max_documents": 60 if smoke else 300, "domains": [code]}, proxy=proxy,
                       sampler={"two_phase_runs": 3 if smoke else two_phase, "noise_seeds": 2, "noise_mixtures": 0},
                       propose={"n_candidates": 2000 if smoke else 20000, "top_k": 50, "max_epochs": max_epochs})


def with_share(base: dict[str, float], domain: str, share: float) -> dict[str, float]:
    """``base`` with ``domain`` at ``share`` and the other domains scaled to fill the rest, their ratios kept."""
    rest = 1.0 - base[domain]
    return {d: (share if d == domain else w * (1.0 - share) / rest) for d, w in base.items()}


def end_phase_candidates(plan, snap, cfg, counts: dict[str, int], budget: float) -> dict[str, list]:
    """The planner's end-phase search for the plan's first phase, on top and reordered, as schedules."""
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
        out[name] = [(ph["start_fraction"], dict(ph["weights"])) for ph in plan_phases(p, {**up, "helps": True})]
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


def compare(plan_values: list[float], values: list[float]) -> tuple[float, float, float, str]:
    d = np.array(plan_values) - np.array(values)
    lo, hi = paired_interval(d)
    return float(d.mean()), lo, hi, "plan better" if hi < 0 else "plan worse" if lo > 0 else "within noise"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 2 seeds: seconds (CI)")
    ap.add_argument("--store", default=None, help="run store to keep (and resume) the runs in; default a temp dir")
    ap.add_argument("--seeds", type=int, default=None, help="paired seeds per arm (default 4; smoke 2)")
    ap.add_argument("--code-docs", type=int, default=2, help="documents of code to read (the scarce domain; 2 = one for "
                    "training, about 61k tokens, and one held out for val/code)")
    ap.add_argument("--proxy-steps", type=int, default=160, help="proxy batches of 8x32 tokens per sweep run (smoke 4)")
    ap.add_argument("--max-epochs", type=float, default=1.0, help="propose.max_epochs: repetitions allowed at the verify budget")
    ap.add_argument("--two-phase", type=int, default=12, help="two-phase sweep runs (smoke 3)")
    args = ap.parse_args(argv)
    # one torch thread: verify trains run by run with torch's default (2 here), which on a loaded 2-core box
    # spins ~50x slower (70 s against 1.4 s for one 40,960-token run, measured side by side)
    with tempfile.TemporaryDirectory(prefix="mixopt-verify-upsampling-") as tmp, torch_threads(1):
        return run(args, args.store or tmp)


def run(args, root: str) -> dict:
    start = provenance()
    t0 = time.perf_counter()
    cfg = build_cfg(args.smoke, args.code_docs, args.two_phase, args.max_epochs, args.proxy_steps)
    seeds = args.seeds or (2 if args.smoke else 4)
    summary = pipeline.sweep(cfg, root, show_progress=False)
    data = load_domain_set(cfg.data)
    counts = data.token_counts
    full = pipeline.open_store(root)
    # fit on the sweep alone: a resumed store also holds the verify runs of an earlier call (other scales)
    snap = StoreSnapshot(full.meta, [r for r in full.records if not r.label.startswith(VERIFY_LABEL)], full.root)
    budget = 4 * cfg.proxy.tokens
    cap = args.max_epochs * counts[DOMAIN] / budget
    natural = dict(natural_mixture(counts))
    print(f"sweep: {summary.planned} runs at {cfg.proxy.tokens:,} tokens ({cfg.sampler.two_phase_runs} two-phase); "
          f"{DOMAIN} has {counts[DOMAIN]:,} training tokens ({natural[DOMAIN]:.3f} of all): at {budget:,} tokens and "
          f"{args.max_epochs:g} epoch(s) its share is capped at {cap:.3f}; {time.perf_counter() - t0:.0f} s", flush=True)
    # the plan's shares are rounded, so a plan on the cap can sit a hair above it (0.375 against 0.37500x): verify's
    # repetition check has no tolerance for that, so it is given a cap 0.1% looser (reported to the lead)
    vcfg = cfg.model_copy(update={"propose": cfg.propose.model_copy(update={"max_epochs": cfg.propose.max_epochs * 1.001})})
    out: dict = {}
    for target in TARGETS:
        t1 = time.perf_counter()
        model = pipeline.fit(snap, target, "linear" if args.smoke else "default")  # smoke: the GP's search is ~30 s
        plan = pipeline.propose(model, config=cfg, snapshot=snap, budget_tokens=budget, use_projector=False)
        share = overall_shares([(p.start_fraction, p.weights) for p in plan.phases]).get(DOMAIN, 0.0)
        note = next((r for r in plan.reasons if "upsampling phase" in r), "no note")
        print(f"{target}: plan has {len(plan.phases)} phase(s), overall {DOMAIN} share {share:.3f} (cap {cap:.3f}); {note}")
        for ph in plan.phases:
            print(f"    from {ph.start_fraction:.2f}: {DOMAIN} {ph.weights.get(DOMAIN, 0.0):.3f}")
        body = verify(plan, RunStore(root, create=False), snap, vcfg, data, against=["no-upsampling", "natural", "uniform"],
                      seeds=seeds, tokens=budget)
        arms = {f"natural, {DOMAIN} at the plan's share": [(0.0, with_share(natural, DOMAIN, min(share, 0.999)))]}
        plan_sched = [(p.start_fraction, dict(p.weights)) for p in plan.phases]
        for name, sched in end_phase_candidates(plan, snap, cfg, counts, budget).items():
            if sched != plan_sched and len(sched) > 1:
                arms[name] = sched
        extra = train_arms(arms, body, root, data, plan, cfg)
        plan_values = body["results"][0]["values"]
        print(f"    plan: {np.mean(plan_values):.4f} over seeds {body['seeds']}")
        rows = [(c["against"], c["diff"], *c["ci95"], "plan better" if c["plan_better"] else "plan worse" if c["plan_worse"]
                 else "within noise") for c in body["comparisons"]]
        rows += [(name, *compare(plan_values, v)) for name, v in extra.items()]
        shares = {r["name"]: r["weights"].get(DOMAIN, 0.0) for r in body["results"]}
        for name, diff, lo, hi, verdict in rows:
            sh = overall_shares(arms[name]).get(DOMAIN, 0.0) if name in arms else shares.get(name, float("nan"))
            print(f"    vs {name:34s} ({DOMAIN} {sh:.3f}) diff {diff:+.4f}  95% [{lo:+.4f}, {hi:+.4f}]  {verdict}")
        for s in body["skipped"]:
            print(f"    {s['name']}: skipped ({s['why']})")
        out[target] = {"phases": len(plan.phases), "rows": {r[0]: r[1:] for r in rows}, "share": share}
        print(f"    {time.perf_counter() - t1:.0f} s", flush=True)
    code, mean = out["val/code"], out["mean:all-domains"]

    def diff(res, name, i=0):
        row = res["rows"].get(name)
        return row[i] if row else float("nan")

    matched = f"natural, {DOMAIN} at the plan's share"
    print(f"total {time.perf_counter() - t0:.0f} s; {seeds} paired seeds; store {root if args.store else '(temp, removed)'}")
    print(machine_line(start, provenance()))
    return print_summary({
        "code_cap": cap, "code_plan_share": code["share"], "code_end_phase_proposed": code["phases"] > 1,
        "code_diff_vs_no_upsampling": diff(code, "no-upsampling"),
        "code_better_vs_no_upsampling": (diff(code, "no-upsampling", 2) < 0) if code["phases"] > 1 else None,
        "code_diff_vs_matched_natural": diff(code, matched), "code_diff_vs_matched_natural_hi": diff(code, matched, 2),
        "code_diff_vs_reorder": diff(code, "end phase, reorder"), "code_diff_vs_on_top": diff(code, "end phase, on top"),
        "code_diff_vs_natural": diff(code, "natural"),
        "mean_end_phase_proposed": mean["phases"] > 1, "mean_diff_vs_on_top": diff(mean, "end phase, on top"),
        "mean_no_loss_from_declining": (diff(mean, "end phase, on top", 1) <= 0) if mean["phases"] == 1 else None,
        "seeds": seeds, "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
