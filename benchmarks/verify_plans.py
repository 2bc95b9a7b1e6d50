"""Train proposed plans against their simple alternatives at larger scales (`mixopt verify`, issue 12 item 5).

Steps, on the embedded 7-domain corpus (byte tokens, CPU):

1. sweep a small proxy (1 layer, n_embd 32, context 32; ``--proxy-steps`` batches of 8x32 tokens per run) with
   natural, uniform, sampled mixtures and two-phase runs; the baselines twice (seed noise);
2. for each target (``mean:all-domains``, ``val/code``, ``val/prose``): ``pipeline.fit`` (the default surrogate),
   ``pipeline.propose`` at the setting's budget (no OT projector: it would add minutes of featurising per target);
3. ``mixopt.verify.verify`` the plan against natural, uniform, best-run, regmix (and no-upsampling when the plan has
   an end phase) with paired seeds, at each scale setting:
   ``4x`` (4x the proxy's tokens), ``16x`` (16x), ``4x-model`` (n_embd 64: about 4x the proxy's non-embedding
   parameters, at 4x tokens). The plan is proposed at the budget it is verified at.

``--gate`` sets propose's keep-baseline gate (default: propose's own, natural/uniform; ``none``: the search's optimum;
``best-run``: the best sweep run's mixture counts as a baseline too).

Verdicts are verify's: ``plan better`` / ``plan worse`` only when the paired 95% interval excludes zero.
Without ``--budgets`` or ``--two-sizes``, ``predicted`` is the surrogate's value at the *proxy* scale, so
the error at a larger scale (VERIFY.json's ``prediction_error_across_scales``: its ``prediction_error`` is null there)
mixes the surrogate's error with the scale shift; the ``within 2 sd`` count says how often it still sits inside the
plan's stated ±2σ.

``--budgets`` sweeps under WSD (decay branches at 1/4 and 1/2 of each run) and fits every budget (``fit --budgets``):
the plan is then predicted at the budget it is verified at, and ``prediction_error`` is the model's own. It also
prints each fit's level backtest and, side by side, how every one-phase arm's prediction fares with and without the
backtest's correction (``arm_within_2sd`` / ``arm_mae``, ``..._no_backtest``).

Usage::

    python benchmarks/verify_plans.py --store /tmp/vp     # all settings (~20-25 min on a loaded 2-core CPU)
    python benchmarks/verify_plans.py --budgets --scales 4x,16x --store /tmp/vpb   # predictions at the verify budget
    python benchmarks/verify_plans.py --scales 4x,16x      # a subset
    python benchmarks/verify_plans.py --adopt --against natural,uniform,best-run,end-phase --store /tmp/vp160 \
        --proxy-steps 160 --scales 4x,16x    # verify --adopt, then the adoption checked on fresh seeds
    python benchmarks/verify_plans.py --smoke              # tiny, seconds (CI); numbers not meaningful

The last line is the ``summary:`` line.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, print_summary, paired_seeds, provenance

from mixopt import pipeline
from mixopt.config import SweepConfig
from mixopt.data.domains import load_domain_set
from mixopt.proxy.loop import torch_threads
from mixopt.runs.store import RunStore, StoreSnapshot
from mixopt.runs.sweep import sweep_scales
from mixopt.runs.table import VERIFY_LABEL  # noqa: E402
from mixopt.surrogates.scale import scale_inputs
from mixopt.surrogates.shift import ShiftGP
from mixopt.verify import adopted_plan, paired_interval, params_of, verify

TARGETS = ("mean:all-domains", "val/code", "val/prose")
SMOKE_MODEL = "linear"  # smoke only: the default GP's search takes ~30 s per target on a loaded 2-core box
AGAINST = ["natural", "uniform", "best-run", "regmix", "no-upsampling"]
SCALES = {"4x": (4, None), "16x": (16, None), "4x-model": (4, "n_embd=64")}


def build_cfg(smoke: bool, proxy_steps: int | None = None, runs: int | None = None, two_sizes: bool = False,
              budgets: bool = False, width: int = 32) -> SweepConfig:
    """The sweep config of these benchmarks: a 1-layer proxy of ``width`` (n_embd = head_size), context 32, batch 8."""
    steps = proxy_steps or ((16 if budgets else 4) if smoke else 40)  # decay branches need a few steps to fork
    proxy = {"n_layer": 1, "n_embd": width, "head_size": width, "block_size": 32, "batch_size": 8, "tokens": 8 * 32 * steps,
             "lr": 3e-3, "schedule": "cosine", "checkpoints": [1.0], "eval_tokens": 512 if smoke else 2048, "device": "cpu",
             "dtype": "float32"}
    if budgets:  # WSD decay branches at 1/4 and 1/2: `fit --budgets` then predicts at the verify budget
        proxy.update(schedule="wsd", checkpoints=[0.25, 0.5, 1.0])
    return SweepConfig(name="verify-plans", seed=0, runs=runs or (4 if smoke else 30),
                       data={"corpus": "embedded", "max_documents": 60 if smoke else 300}, proxy=proxy,
                       sampler={"two_phase_runs": 3 if smoke else 8, "noise_seeds": 2, "noise_mixtures": 0},
                       propose={"n_candidates": 2000 if smoke else 20000, "top_k": 50, "max_epochs": 4},
                       # a second proxy size (n_embd 64: ~4x the parameters; 2x tokens) makes `fit` scale-aware, so
                       # `propose` predicts at the verify scale instead of the proxy's; verify then trains that size
                       sizes=[{"name": "s"}, {"name": "m", "n_embd": 64, "tokens": 2 * proxy["tokens"], "runs": 12,
                               "two_phase_runs": 0}] if two_sizes else [])


def fresh_adoption(plan, body: dict, root: str, snap, cfg, data, *, seeds: int, tokens: int,
                   shape: str | None = None) -> tuple[str, dict | None]:
    """``verify --adopt`` on this verify body, then, when an arm is adopted, the plan against that arm again on ``seeds``
    fresh seeds (the config's seed + 1000, ...), so the choice is judged on seeds it was not made on: (adopt's note, the
    fresh comparison with ``arm``, ``diff`` = plan - arm, ``ci95`` and the arm's fresh ``arm_mean``; None when kept)."""
    new, note = adopted_plan(plan, body, max_epochs=cfg.propose.max_epochs)
    if not note.startswith("adopted by verify"):
        return note, None
    arm = new.provenance["adopted"]["arm"]
    fresh = verify(plan, RunStore(root, create=False), snap, cfg, data, against=[arm], seeds=seeds, shape=shape,
                   tokens=tokens, first_seed=cfg.seed + 1000)
    return note, {**fresh["comparisons"][0], "arm": arm, "seeds": fresh["seeds"], "arm_mean": fresh["results"][1]["mean"]}


def adopt_check(plan, body: dict, root: str, snap, cfg, data, args, shape, budget: int, setting: str,
                target: str) -> dict:
    """``fresh_adoption`` for one plan of this benchmark, printed; ``gain`` > 0: the adopted arm is better."""
    _, c = fresh_adoption(plan, body, root, snap, cfg, data, seeds=args.adopt_seeds or (2 if args.smoke else 6),
                          tokens=budget, shape=shape)
    if c is None:
        print("      adopt: kept", flush=True)
        return {"adopted": None}
    lo, hi = c["ci95"]
    first = next(x["diff"] for x in body["comparisons"] if x["against"] == c["arm"])
    print(f"      adopt: {c['arm']} (plan - arm {first:+.4f} on the verify seeds); on {len(c['seeds'])} fresh seeds "
          f"{c['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]", flush=True)
    return {"adopted": c["arm"], "setting": setting, "target": target, "gain": c["diff"], "lo": lo, "hi": hi}


def adopt_tally(adoptions: list[dict]) -> dict:
    """How often verify adopted an arm, and whether the adoption held on fresh seeds (confirmed: the arm still better
    beyond the interval; reversed: the plan better)."""
    took = [a for a in adoptions if a["adopted"]]
    out = {"adopt_plans": len(adoptions), "adopted": len(took),
           "adopt_confirmed": sum(a["lo"] > 0 for a in took), "adopt_reversed": sum(a["hi"] < 0 for a in took),
           "adopt_fresh_gain": float(np.mean([a["gain"] for a in took])) if took else float("nan")}
    arms = sorted({a["adopted"] for a in took})
    print(f"adopt: {len(took)} of {len(adoptions)} plans adopted an arm ({', '.join(arms) or 'none'}); on fresh seeds "
          f"confirmed {out['adopt_confirmed']}, reversed {out['adopt_reversed']}, mean gain {out['adopt_fresh_gain']:+.4f}",
          flush=True)
    return out


def prediction_error(body: dict) -> float:
    """The plan's measured mean minus its prediction: VERIFY.json's ``prediction_error``, or across scales (a proxy-scale
    prediction verified at a larger scale, which VERIFY.json calls not comparable) ``prediction_error_across_scales``,
    the surrogate's error mixed with the scale shift, which this benchmark counts on purpose."""
    err = body.get("prediction_error")
    return float(body["prediction_error_across_scales"] if err is None else err)


def claim_held(c: dict) -> bool | None:
    """Whether the measured interval holds the predicted difference, across scales too (``claim_held_across_scales``)."""
    return c["claim_held"] if c.get("claim_held") is not None else c.get("claim_held_across_scales")


def row_line(setting: str, target: str, body: dict) -> list[str]:
    """Printable lines for one verify body."""
    plan = body["results"][0]
    pred = body["predicted"]
    lines = [(f"  [{setting}] {target}: plan {plan['mean']:.4f} ({plan['phases']} phase(s)); predicted {pred['value']:.4f} "
              f"± {pred['std']:.4f} at {pred.get('scale', 'proxy')} scale; error {prediction_error(body):+.4f}")]
    for c in body["comparisons"]:
        lo, hi = c["ci95"]
        verdict = "plan better" if c["plan_better"] else "plan worse" if c["plan_worse"] else "within noise"
        claimed = f"  (predicted {c['predicted_diff']:+.4f})" if c.get("predicted_diff") is not None else ""
        lines.append(f"      vs {c['against']:14s} diff {c['diff']:+.4f}  95% [{lo:+.4f}, {hi:+.4f}]  {verdict}{claimed}")
    for s in body["skipped"]:
        lines.append(f"      {s['name']:17s} skipped: {s['why']}")
    by = {r["name"]: np.array(r["values"]) for r in body["results"]}
    if "doremi" in by:  # DoReMi against the baselines it should beat on average loss (paired: same seeds)
        for base in ("uniform", "natural"):
            if base in by:
                d = by["doremi"] - by[base]
                lo, hi = paired_interval(d)
                lines.append(f"      doremi - {base:8s} diff {d.mean():+.4f}  95% [{lo:+.4f}, {hi:+.4f}]")
    return lines


def tally(bodies: list[dict]) -> dict:
    """Counts over every (setting, target): wins and losses per alternative, prediction inside ±2σ."""
    out: dict = {}
    for alt in ("natural", "uniform", "best-run", "regmix", "no-upsampling", "doremi"):
        comps = [c for b in bodies for c in b["comparisons"] if c["against"] == alt]
        key = alt.replace("-", "_")
        out[f"n_vs_{key}"] = len(comps)
        out[f"better_vs_{key}"] = sum(c["plan_better"] for c in comps)
        out[f"worse_vs_{key}"] = sum(c["plan_worse"] for c in comps)
    within = [abs(prediction_error(b)) <= 2 * b["predicted"]["std"] for b in bodies]
    out["pred_within_2sd"] = sum(within)
    out["mean_abs_pred_error"] = float(np.mean([abs(prediction_error(b)) for b in bodies])) if bodies else float("nan")
    out["end_phases_proposed"] = sum(b["results"][0]["phases"] > 1 for b in bodies)
    # the plan's claims about differences (verify's predicted_diff against natural, uniform, best-run): the measured 95%
    # interval holds the claim; and where the measurement is decisive, the claim's sign is the measured one
    claims = [c for b in bodies for c in b["comparisons"] if c.get("predicted_diff") is not None]
    decisive = [c for c in claims if c["plan_better"] or c["plan_worse"]]
    out["n_claims"] = len(claims)
    out["claims_held"] = sum(bool(claim_held(c)) for c in claims)
    out["n_decisive"] = len(decisive)
    out["decisive_sign_right"] = sum((c["predicted_diff"] < 0) == bool(c["plan_better"]) for c in decisive)
    return out


def arm_errors(model, body: dict) -> dict[str, list]:
    """Each one-phase arm's prediction error (predicted minus measured mean) and std at the verify scale, by the model
    with its level backtest (``on``) and without it (``off``: the same fit with the backtest's correction removed,
    exactly what ``backtest=False`` fits, since the backtest changes nothing else)."""
    est, sc = model.estimator, body["scale"]
    off = copy.copy(est)
    off.level_bias_, off.level_excess_, off._shifts = 0.0, 0.0, {}
    out: dict[str, list] = {"on": [], "off": []}
    for arm in (a for a in body["results"] if a["phases"] == 1):
        w = np.array([arm["weights"].get(d, 0.0) for d in model.domains])
        X = scale_inputs((w / w.sum())[None], sc["model_params"], sc["tokens"])
        for key, m in (("on", est), ("off", off)):
            mean, sd = m.predict(X, return_std=True)
            out[key].append((float(mean[0]) - arm["mean"], float(sd[0])))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, val/code only, the 4x setting, 2 seeds, no regmix: seconds (CI)")
    ap.add_argument("--store", default=None, help="run store to keep (and resume) the runs in; default a temp dir")
    ap.add_argument("--seeds", type=paired_seeds, default=None, help="paired seeds per arm (default 3; smoke 2)")
    ap.add_argument("--scales", default=None, help=f"comma-separated subset of {','.join(SCALES)} (default all; smoke 4x)")
    ap.add_argument("--targets", default=None, help=f"comma-separated targets (default {','.join(TARGETS)})")
    ap.add_argument("--proxy-steps", type=int, default=None, help="proxy batches per sweep run (default 40; smoke 4)")
    ap.add_argument("--runs", type=int, default=None, help="sampled sweep mixtures (default 30, so regmix's 40-run minimum "
                    "is met with the baselines, seed repeats and two-phase runs; smoke 4)")
    ap.add_argument("--against", default=None, help=f"comma-separated alternatives (default {','.join(AGAINST)}; "
                    "`doremi` adds DoReMi's mixture, computed once per store)")
    ap.add_argument("--json", default=None, help="write every verify body here")
    ap.add_argument("--two-sizes", action="store_true", help="sweep a second proxy size (n_embd 64, 2x tokens, 12 runs) so "
                    "the fit is scale-aware; verify then trains that size, at multiples of its tokens (use --scales 4x)")
    ap.add_argument("--budgets", action="store_true", help="sweep under WSD (decay branches at 1/4 and 1/2) and fit every "
                    "budget (`fit --budgets`), so the plan is predicted at the verify budget; token settings only (4x, 16x)")
    ap.add_argument("--adopt", action="store_true", help="also take each plan through `verify --adopt` (the arm that "
                    "trained better beyond its interval) and train the plan against that arm on --adopt-seeds fresh seeds")
    ap.add_argument("--adopt-seeds", type=int, default=None, help="fresh seeds for --adopt (default 6; smoke 2)")
    ap.add_argument("--gate", choices=("none", "baselines", "best-run"), default="baselines",
                    help="propose's keep-baseline gate: none (the search's optimum), baselines (propose's default, "
                    "keep_baseline_within_noise: natural/uniform), best-run (also the best sweep run's mixture: keep_best_run)")
    args = ap.parse_args(argv)
    if args.budgets and "4x-model" in (args.scales or ("4x" if args.smoke else ",".join(SCALES))).split(","):
        ap.error("--budgets fits one proxy size, which cannot speak for a larger model: use --scales 4x,16x")
    # one torch thread: verify trains run by run with torch's default (2 here), which on a loaded 2-core box
    # spins ~50x slower (70 s against 1.4 s for one 40,960-token run, measured side by side)
    with tempfile.TemporaryDirectory(prefix="mixopt-verify-plans-") as tmp, torch_threads(1):
        return run(args, args.store or tmp)


def run(args, root: str) -> dict:
    start = provenance()
    t0 = time.perf_counter()
    smoke = args.smoke
    cfg = build_cfg(smoke, args.proxy_steps, args.runs, args.two_sizes, getattr(args, "budgets", False))
    gate = getattr(args, "gate", "baselines")  # the CLI default: propose's own gate
    cfg.propose.keep_baseline_within_noise, cfg.propose.keep_best_run = gate != "none", gate == "best-run"
    seeds = args.seeds or (2 if smoke else 3)
    scales = (args.scales or ("4x" if smoke else ",".join(SCALES))).split(",")
    targets = (args.targets or (TARGETS[1] if smoke else ",".join(TARGETS))).split(",")
    # regmix's LightGBM needs 40 sweep runs (its min_runs); the smoke sweep has 11, so smoke leaves it out
    against = [a for a in (args.against.split(",") if getattr(args, "against", None) else AGAINST)
               if not (smoke and a == "regmix")]
    summary = pipeline.sweep(cfg, root, show_progress=False)
    data = load_domain_set(cfg.data)
    full = pipeline.open_store(root)
    # fit on the sweep alone: a resumed store also holds the verify runs of an earlier call (other scales)
    snap = StoreSnapshot(full.meta, [r for r in full.records if not r.label.startswith(VERIFY_LABEL)], full.root)
    print(f"sweep: {summary.planned} runs ({summary.skipped} already stored) at {cfg.proxy.tokens:,} tokens, "
          f"{cfg.sampler.two_phase_runs} two-phase; {time.perf_counter() - t0:.0f} s", flush=True)
    budgets = getattr(args, "budgets", False)
    models = {t: pipeline.fit(snap, t, "default" if budgets else SMOKE_MODEL if smoke else "default", budgets=budgets) for t in targets}
    for t, m in models.items():
        n = m.meta["noise"]
        print(f"fit {t}: CV spearman {m.meta['cv'].get('spearman', float('nan')):.3f}; seed sd "
              f"{n['seed_sd'] if n['seed_sd'] is not None else float('nan'):.4f}, signal sd {n['signal_sd']:.4f}", flush=True)
        if line := pipeline.backtest_line(m.meta.get("level_backtest")):
            print(f"    {line}", flush=True)
    bodies, records, arms, adoptions = [], [], {"on": [], "off": []}, []
    for setting in scales:
        mult, shape = SCALES[setting]
        budget = mult * max(sc.proxy.tokens for sc in sweep_scales(cfg))
        model_params = None
        if shape:  # propose for the model verify will train (a scale-aware model predicts there; else the law's N only)
            over = dict(item.split("=") for item in shape.split(","))
            big = max(sweep_scales(cfg), key=lambda sc: params_of(sc.proxy, data.vocab_size)[0]).proxy
            model_params = params_of(big.model_copy(update={k: int(v) for k, v in over.items()}), data.vocab_size)[0]
        t1 = time.perf_counter()
        for target in targets:
            plan = pipeline.propose(models[target], config=cfg, snapshot=snap, budget_tokens=budget, use_projector=False,
                                    model_params=model_params)
            body = verify(plan, RunStore(root, create=False), snap, cfg, data, against=list(against), seeds=seeds,
                          shape=shape, tokens=budget)
            bodies.append(body)
            if isinstance(models[target].estimator, ShiftGP):
                for key, errs in arm_errors(models[target], body).items():
                    arms[key] += errs
            search = plan.predicted.by["surrogate"]["search"] if plan.predicted else ""  # "baseline:NAME" when the gate kept one
            records.append({"setting": setting, "target": target, "body": body,
                            "kept": search.removeprefix("baseline:") if search.startswith("baseline:") else None})
            print("\n".join(row_line(setting, target, body)), flush=True)
            if getattr(args, "adopt", False):
                adoptions.append(adopt_check(plan, body, root, snap, cfg, data, args, shape, budget, setting, target))
        sc = bodies[-1]["scale"]
        print(f"  [{setting}] {sc['model_params']:,} non-embedding params, {sc['tokens']:,} tokens: "
              f"{time.perf_counter() - t1:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1) + "\n")
    counts = tally(bodies)
    for key, errs in arms.items() if arms["on"] else ():  # every one-phase arm, side by side: the backtest's effect
        e, sd = np.array(errs).T
        suffix = "" if key == "on" else "_no_backtest"
        counts[f"arm_within_2sd{suffix}"] = float(np.mean(np.abs(e) <= 2 * sd))
        counts[f"arm_mae{suffix}"] = float(np.mean(np.abs(e)))
        print(f"arms ({len(e)} one-phase arms) predicted {'with' if key == 'on' else 'without'} the level backtest: "
              f"{counts[f'arm_within_2sd{suffix}']:.0%} within ±2σ, MAE {counts[f'arm_mae{suffix}']:.4f}, mean predicted - measured {e.mean():+.4f}")
    if getattr(args, "adopt", False):
        counts.update(adopt_tally(adoptions))
    print(f"fit: {'scale-aware' if models[targets[0]].meta.get('scale_aware') else 'one scale'}; "
          f"total {time.perf_counter() - t0:.0f} s; settings: {','.join(scales)}; targets: {','.join(targets)}; seeds {seeds}")
    print(machine_line(start, provenance()))
    return print_summary({**counts, "settings": len(bodies), "seeds": seeds, "proxy_tokens": cfg.proxy.tokens,
                          "met_never_worse_than_regmix": counts["worse_vs_regmix"] == 0 if counts["n_vs_regmix"] else None,
                          "mode": "smoke" if smoke else "full"})


if __name__ == "__main__":
    main()
