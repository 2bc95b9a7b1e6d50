"""Reusing an earlier sweep after a domain is added: the old plan's ratios (Olmix), the old runs, or both.

The setting of Olmix (Chen et al. 2026): a mixture was planned over the old domain set; then a domain is added
(``--new``, default ``legal``) and the mixture must be redone. On the embedded corpus with ``verify_plans.py``'s tiny
proxies, per replication (``--repeats``: sweep seeds 0, 1, ...) and target:

1. **old**: sweep the old domains (every embedded domain but the new one, ``--runs`` mixtures) and propose a plan;
2. **full**: sweep every domain (``--runs`` mixtures) and propose from scratch: the recompute reuse should match;
3. **full-small**: the same with ``--reuse-runs`` mixtures (the first of the same draw): reuse's compute, spent plainly;
4. **reuse** (``reuse: {plan: old plan}``, Olmix's mixture reuse): ``--reuse-runs`` mixtures keep the old plan's ratios
   among the old domains and draw only their joint share against the new one; the search does the same;
5. **reuse-runs** (``reuse: {store: old store}``): full-small's runs, and ``fit`` adds the old sweep's runs as rows
   with the new domain at 0 (for ``mean:all-domains``, whose new domain's loss they lack, to the other domains' models);
6. **reuse-both** (``reuse: {plan, store}``): reuse's draws plus the old runs; the search is free where the old runs
   joined the fit and keeps the old ratios where none did;

With ``--remove`` the update goes the other way: the old sweep covers every domain, ``--new`` names the domain that
is **removed**, and the arms are **recompute** (sweep the remaining domains, ``--runs`` mixtures), **recompute-small**
(``--reuse-runs`` mixtures), **renorm** (the old plan without the removed domain, its other ratios kept: what
``reuse: {plan}`` does on a removal, and what Olmix does; no new runs) and **reuse-runs** (recompute-small's runs plus
the old runs that did not train the removed domain, through ``reuse: {store}``). The stores are the add mode's with the
roles swapped (the add mode's ``full`` is the old sweep, its ``old`` the recompute), so one ``--store`` serves both.

With ``--chain`` two updates come in a row (Olmix's setting has five): the old sweep covers the domains but ``--new``
and ``math`` (``--runs`` mixtures), the first update adds ``--new`` (``--reuse-runs`` mixtures, ``reuse: {store: old}``),
the second adds ``math`` (``--reuse-runs`` mixtures, ``reuse: {store: first update}``, which brings the old sweep's runs
too); **chain** is the second update's plan, against **full** and **full-small** over all domains (the add mode's).

With ``--revise`` the update changes ``--new``'s data: every other document of it is kept (a filtered version, under
the same name). The old sweep is the add mode's ``full``; **recompute** and **recompute-small** sweep the revised data
(``--runs`` and ``--reuse-runs`` mixtures); **reuse-runs** adds, through ``reuse: {store}``, the old runs that gave the
revised domain weight 0 (without its old metric); **reuse-plan** is Olmix's answer, ``reuse: {plan: old plan,
recompute: [revised domain]}``: the other domains keep the old ratios, the revised one is drawn and searched freely.

then trains every plan, natural and uniform at the proxies' budget with ``--seeds`` paired seeds and prints each
plan's loss and the paired differences of each reuse arm against full and full-small; the summary averages them over
replications and targets, with a 95% interval over the replications' means (the targets of one replication share its
sweeps, so they are not independent) and whether it lies inside ``--margin`` (an equivalence test, TOST-style). Plans are the search's own mixtures (no keep-baseline gate, no end
phase), as in ``search_curse.py``: the comparison is between searches. Sweep costs count the baselines' runs.

Usage::

    python benchmarks/mixture_reuse.py --store DIR --proxy-steps 160 --seeds 8 --repeats 4 [--new math]
    python benchmarks/mixture_reuse.py --store DIR --proxy-steps 160 --seeds 8 --repeats 4 --remove   # a removal
    python benchmarks/mixture_reuse.py --smoke                # tiny, seconds (CI); numbers not meaningful

The last line is the ``summary:`` line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, print_summary, paired_seeds, provenance
from verify_plans import TARGETS, build_cfg

from mixopt import pipeline
from mixopt.config import SweepConfig
from mixopt.data.domains import load_domain_set
from mixopt.data.embedded import EMBEDDED_DIR, embedded_domains, embedded_manifest
from mixopt.proxy.loop import torch_threads
from mixopt.reuse import ReusedMixture
from mixopt.runs.store import RunStore, StoreSnapshot
from mixopt.runs.table import VERIFY_LABEL
from mixopt.verify import paired_interval, verify


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one target, 2 seeds: seconds (CI)")
    ap.add_argument("--store", default=None, help="folder for the run stores (resumed); default a temp dir")
    ap.add_argument("--new", default="legal", help="the domain added to the data (default legal); removed with --remove")
    ap.add_argument("--remove", action="store_true", help="the update removes --new instead of adding it")
    ap.add_argument("--chain", action="store_true", help="two additions in a row: --new, then math")
    ap.add_argument("--revise", action="store_true", help="the update revises --new's data (every other document)")
    ap.add_argument("--runs", type=int, default=None, help="sampled mixtures of the old and the full sweep (default 30; smoke 6)")
    ap.add_argument("--reuse-runs", type=int, default=None, help="sampled mixtures of the reuse and full-small sweeps (default 8; smoke 3)")
    ap.add_argument("--proxy-steps", type=int, default=None, help="proxy batches per run (default 40; smoke 4)")
    ap.add_argument("--seeds", type=paired_seeds, default=None, help="paired seeds per plan (default 4; smoke 2)")
    ap.add_argument("--repeats", type=int, default=1, help="replications with other sweep seeds (0, 1, ...): the four sweeps "
                    "drawn anew each time, since one sweep's luck moves a plan as much as reuse does (default 1)")
    ap.add_argument("--margin", type=float, default=0.02,
                    help="equivalence margin: an arm matches when its 95%% interval over replications lies inside "
                         "±margin (default 0.02: a fifth of the sd of the loss across mixtures on the demo proxy, 0.094, "
                         "benchmarks/noise.py)")
    ap.add_argument("--targets", default=None, help=f"comma-separated targets (default {','.join(TARGETS)})")
    ap.add_argument("--width", type=int, default=32, help="the proxy's n_embd (= head size; default 32, ~12k "
                    "non-embedding params; 64 has ~4x the parameters)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mixopt-reuse-") as tmp, torch_threads(1):
        return run(args, Path(args.store or tmp))


def sweep_cfg(args, seed: int, *, runs: int, include: list[str] | None = None, reuse: str | None = None,
              reuse_store: str | None = None) -> SweepConfig:
    cfg = build_cfg(args.smoke, args.proxy_steps, runs=runs, width=args.width)
    body = cfg.model_dump()
    body["seed"] = seed
    body["data"]["include"] = include
    body["sampler"]["two_phase_runs"] = 0
    body["propose"].update(keep_baseline_within_noise=False, upsample=False)
    if reuse or reuse_store:
        body["reuse"] = {"plan": reuse, "store": reuse_store}
    return SweepConfig.model_validate(body)


def swept(cfg: SweepConfig, root: Path) -> tuple[StoreSnapshot, int, float]:
    """The store's sweep records (verify runs left out), their count and their training seconds."""
    pipeline.sweep(cfg, root, show_progress=False)
    full = pipeline.open_store(root)
    recs = [r for r in full.records if not r.label.startswith(VERIFY_LABEL)]
    return StoreSnapshot(full.meta, recs, full.root), len(recs), float(sum(r.info.get("train_seconds") or 0.0 for r in recs))


def propose(snap: StoreSnapshot, cfg: SweepConfig, target: str):
    model = pipeline.fit(snap, target, "default")  # the smoke's 3-run reuse store is too small for SMOKE_MODEL
    return pipeline.propose(model, config=cfg, snapshot=snap, budget_tokens=cfg.proxy.tokens, use_projector=False)


def run(args, root: Path) -> dict:
    start, t0 = provenance(), time.perf_counter()
    seeds = args.seeds or (2 if args.smoke else 4)
    targets = (args.targets or ("val/code" if args.smoke else ",".join(TARGETS))).split(",")  # smoke: a target the old runs measured
    if args.new not in embedded_domains():
        raise SystemExit(f"--new {args.new} is not an embedded domain ({embedded_domains()}).")
    rows, counts = [], []  # rows: (repeat, target, {comparison: mean paired difference over seeds})
    for rep in range(args.repeats):
        print(f"repeat {rep} (sweep seed {rep}):", flush=True)
        step = one_removal if args.remove else one_chain if args.chain else one_revision if args.revise else one_repeat
        got, n = step(args, root if rep == 0 else root / f"seed{rep}", rep, targets, seeds)
        rows += [(rep, t, d) for t, d in got.items()]
        counts.append(n)
    out = {}
    for mine, other in REMOVAL if args.remove else CHAIN if args.chain else REVISION if args.revise else COMPARISONS:
        comp = f"{mine} - {other}"
        vals = np.array([d[comp] for _, _, d in rows])
        key = f"{mine}_vs_{other}".replace("-", "_")
        # the targets of one replication share its sweeps and plans' training seeds, so they are not independent:
        # the interval is over the replications' means (t with repeats - 1 degrees of freedom), not over every cell
        per_rep = np.array([np.mean([d[comp] for r, _, d in rows if r == rep]) for rep in range(args.repeats)])
        lo, hi = paired_interval(per_rep) if len(per_rep) > 1 else (float("nan"), float("nan"))
        out[key], out[f"{key}_lo"], out[f"{key}_hi"] = float(vals.mean()), lo, hi
        out[f"{key}_equivalent"] = bool(len(per_rep) > 1 and -args.margin <= lo and hi <= args.margin)
        for t in targets:
            out[f"{key}_{slug(t)}"] = float(np.mean([d[comp] for _, tt, d in rows if tt == t]))
        verdict = ("within the margin" if out[f"{key}_equivalent"] else
                   "not shown within the margin" if len(per_rep) > 1 else "one replication: no interval")
        print(f"{comp}, mean over {args.repeats} repeat(s) x {len(targets)} target(s): {vals.mean():+.4f} [{lo:+.4f}, "
              f"{hi:+.4f}] (95%, over replications; {verdict} ±{args.margin}); per target "
              + ", ".join(f"{t} {out[f'{key}_{slug(t)}']:+.4f}" for t in targets), flush=True)
    n_full, n_reuse = np.mean([c[0] for c in counts]), np.mean([c[1] for c in counts])
    out["runs_full"], out["runs_reuse"], out["compute_reuse_over_full"] = float(n_full), float(n_reuse), float(n_reuse / n_full)
    print(f"sweep runs: reuse {n_reuse:.0f} vs {'recompute' if args.remove else 'full'} {n_full:.0f} ({n_reuse / n_full:.0%}; "
          f"the old sweep's runs were spent "
          f"before the update); total {time.perf_counter() - t0:.0f} s")
    print(machine_line(start, provenance()))
    return print_summary({**out, "repeats": args.repeats, "seeds": seeds, "removal": args.remove, "chain": args.chain, "revision": args.revise,
                          "mode": "smoke" if args.smoke else "full"})


COMPARISONS = [(arm, other) for arm in ("reuse", "reuse-runs", "reuse-both") for other in ("full", "full-small")]
REMOVAL = [(arm, other) for arm in ("renorm", "reuse-runs") for other in ("recompute", "recompute-small")]
CHAIN = [("chain", "full"), ("chain", "full-small")]
REVISION = [(arm, other) for arm in ("reuse-runs", "reuse-plan") for other in ("recompute", "recompute-small")]


def slug(target: str) -> str:
    return target.replace(":", "_").replace("/", "_").replace("-", "_")


def one_repeat(args, root: Path, seed: int, targets: list[str], seeds: int) -> tuple[dict, tuple[int, int]]:
    """One replication under sweep seed ``seed``: the four sweeps, the plans and their training, per target."""
    runs = args.runs or (6 if args.smoke else 30)
    few = args.reuse_runs or (3 if args.smoke else 8)
    old_domains = [d for d in embedded_domains() if d != args.new]
    root.mkdir(parents=True, exist_ok=True)
    old_cfg, full_cfg, small_cfg = (sweep_cfg(args, seed, runs=runs, include=old_domains), sweep_cfg(args, seed, runs=runs),
                                    sweep_cfg(args, seed, runs=few))
    old, n_old, _ = swept(old_cfg, root / "old")
    full, n_full, s_full = swept(full_cfg, root / "full")
    small, n_small, s_small = swept(small_cfg, root / "full-small")
    runs_cfg = sweep_cfg(args, seed, runs=few, reuse_store=str(root / "old"))  # full-small's draws, plus the old runs in fit
    with_old, _, _ = swept(runs_cfg, root / "reuse-runs")
    data = load_domain_set(full_cfg.data)
    print(f"  sweeps: old {n_old} runs over {len(old_domains)} domains; full {n_full} runs ({s_full:.0f} s of training); "
          f"full-small {n_small} ({s_small:.0f} s)", flush=True)
    got, n_reuse_all = {}, []
    for target in targets:
        old_plan = propose(old, old_cfg, target)
        plan_path = root / f"old_plan_{slug(target)}.yaml"
        pipeline.save(old_plan, plan_path)
        reuse_cfg = sweep_cfg(args, seed, runs=few, reuse=str(plan_path))
        reused, n_reuse, _ = swept(reuse_cfg, root / f"reuse_{slug(target)}")
        both_cfg = sweep_cfg(args, seed, runs=few, reuse=str(plan_path), reuse_store=str(root / "old"))  # reuse's draws
        both, _, _ = swept(both_cfg, root / f"reuse-both_{slug(target)}")
        n_reuse_all.append(n_reuse)
        r = ReusedMixture.from_config(reuse_cfg.reuse, data.domains)
        plans = {"reuse": propose(reused, reuse_cfg, target), "reuse-runs": propose(with_old, runs_cfg, target),
                 "reuse-both": propose(both, both_cfg, target),
                 "full": propose(full, full_cfg, target), "full-small": propose(small, small_cfg, target)}
        assert r.keeps_ratios(np.array([plans["reuse"].phases[0].weights.get(d, 0.0) for d in r.domains]), atol=1e-5).all()
        took = plans["reuse-runs"].provenance.get("reused_runs", 0)
        print(f"  {target}: reuse-runs fitted {took} old run(s) beside its {n_small} new ones", flush=True)
        got[target] = trained_and_compared(plans, RunStore(root / "full", create=False), full, full_cfg, data, seeds,
                                           COMPARISONS, args.new)
    return got, (n_full, int(np.mean(n_reuse_all)))


def trained_and_compared(plans: dict, store: RunStore, snap: StoreSnapshot, cfg: SweepConfig, data, seeds: int,
                         pairs: list[tuple[str, str]], domain: str) -> dict[str, float]:
    """Train every plan (and natural, uniform) at the proxies' budget with paired seeds in ``store``; print each plan's
    loss and the paired differences of ``pairs``; return {"mine - other": mean difference}."""
    bodies = {name: verify(p, store, snap, cfg, data, against=["natural", "uniform"], seeds=seeds,
                           tokens=cfg.proxy.tokens) for name, p in plans.items()}
    values = {name: np.array(b["results"][0]["values"]) for name, b in bodies.items()}
    for name, b in bodies.items():
        share = f"{domain} {plans[name].phases[0].weights.get(domain, 0.0):.3f}"
        vs = "  ".join(f"vs {c['against']} {c['diff']:+.4f} [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]" for c in b["comparisons"])
        print(f"      {name:15s} measured {values[name].mean():.4f} ({share}); {vs}", flush=True)
    out = {}
    for mine, other in pairs:
        d = values[mine] - values[other]
        lo, hi = paired_interval(d)
        out[f"{mine} - {other}"] = float(d.mean())
        print(f"      {mine} - {other}: {d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]", flush=True)
    return out


def one_chain(args, root: Path, seed: int, targets: list[str], seeds: int) -> tuple[dict, tuple[int, int]]:
    """Two additions in a row under sweep seed ``seed`` (see the module docstring)."""
    runs = args.runs or (6 if args.smoke else 30)
    few = args.reuse_runs or (3 if args.smoke else 8)
    second = "math" if args.new != "math" else "legal"
    base = [d for d in embedded_domains() if d not in (args.new, second)]
    root.mkdir(parents=True, exist_ok=True)
    base_cfg = sweep_cfg(args, seed, runs=runs, include=base)
    step1_cfg = sweep_cfg(args, seed, runs=few, include=base + [args.new], reuse_store=str(root / "chain-base"))
    step2_cfg = sweep_cfg(args, seed, runs=few, reuse_store=str(root / "chain-step1"))
    full_cfg, small_cfg = sweep_cfg(args, seed, runs=runs), sweep_cfg(args, seed, runs=few)
    _, n_base, _ = swept(base_cfg, root / "chain-base")
    _, n1, _ = swept(step1_cfg, root / "chain-step1")
    step2, n2, _ = swept(step2_cfg, root / "chain-step2")
    full, n_full, _ = swept(full_cfg, root / "full")
    small, _, _ = swept(small_cfg, root / "full-small")
    data = load_domain_set(full_cfg.data)
    print(f"  sweeps: old {n_base} runs over {len(base)} domains; +{args.new}: {n1}; +{second}: {n2}; full {n_full}",
          flush=True)
    got = {}
    for target in targets:
        plans = {"chain": propose(step2, step2_cfg, target), "full": propose(full, full_cfg, target),
                 "full-small": propose(small, small_cfg, target)}
        print(f"  {target}: chain fitted {plans['chain'].provenance.get('reused_runs', 0)} old run(s) beside its {n2} "
              f"new ones", flush=True)
        got[target] = trained_and_compared(plans, RunStore(root / "full", create=False), full, full_cfg, data, seeds,
                                           CHAIN, args.new)
    return got, (n_full, n1 + n2)


def revised_file(domain: str, root: Path) -> Path:
    """Every other document of an embedded domain, as a JSONL file: the domain's data revised (filtered)."""
    path = root / f"revised_{domain}.jsonl"
    if not path.is_file():
        with gzip.open(EMBEDDED_DIR / embedded_manifest()[domain]["file"], "rt", encoding="utf-8") as f:
            docs = [json.loads(line) for line in f if line.strip()]
        path.write_text("".join(json.dumps({"text": d["text"]}) + "\n" for d in docs[::2]), encoding="utf-8")
    return path


def revised_cfg(args, seed: int, revised: Path, *, runs: int, **reuse) -> SweepConfig:
    cfg = sweep_cfg(args, seed, runs=runs, include=[d for d in embedded_domains() if d != args.new], **reuse)
    body = cfg.model_dump()
    body["data"]["domains"] = [{"name": args.new, "path": str(revised), "format": "jsonl"}]
    return SweepConfig.model_validate(body)


def one_revision(args, root: Path, seed: int, targets: list[str], seeds: int) -> tuple[dict, tuple[int, int]]:
    """One replication of a revision under sweep seed ``seed`` (see the module docstring)."""
    runs = args.runs or (6 if args.smoke else 30)
    few = args.reuse_runs or (3 if args.smoke else 8)
    root.mkdir(parents=True, exist_ok=True)
    revised = revised_file(args.new, root)
    before_cfg = sweep_cfg(args, seed, runs=runs)
    after_cfg, small_cfg = revised_cfg(args, seed, revised, runs=runs), revised_cfg(args, seed, revised, runs=few)
    runs_cfg = revised_cfg(args, seed, revised, runs=few, reuse_store=str(root / "full"))
    before, n_before, _ = swept(before_cfg, root / "full")
    after, n_after, s_after = swept(after_cfg, root / "revised")
    small, n_small, _ = swept(small_cfg, root / "revised-small")
    with_old, _, _ = swept(runs_cfg, root / "revised-reuse-runs")
    data = load_domain_set(after_cfg.data)
    print(f"  sweeps: old {n_before} runs; recompute {n_after} runs on the revised {args.new} ({s_after:.0f} s of "
          f"training); recompute-small {n_small}", flush=True)
    got, n_plan = {}, []
    for target in targets:
        old_plan = propose(before, before_cfg, target)
        plan_path = root / f"revise_old_plan_{slug(target)}.yaml"  # the 7-domain sweep's plan (add mode: 6)
        pipeline.save(old_plan, plan_path)
        plan_cfg = revised_cfg(args, seed, revised, runs=few, reuse=str(plan_path))
        body = plan_cfg.model_dump()
        body["reuse"]["recompute"] = [args.new]
        plan_cfg = SweepConfig.model_validate(body)
        reused, n_reused, _ = swept(plan_cfg, root / f"revised-plan_{slug(target)}")
        n_plan.append(n_reused)
        plans = {"reuse-runs": propose(with_old, runs_cfg, target), "reuse-plan": propose(reused, plan_cfg, target),
                 "recompute": propose(after, after_cfg, target), "recompute-small": propose(small, small_cfg, target)}
        print(f"  {target}: the old plan gave {args.new} {old_plan.phases[0].weights.get(args.new, 0.0):.3f}; reuse-runs "
              f"fitted {plans['reuse-runs'].provenance.get('reused_runs', 0)} old run(s) (of {n_before})", flush=True)
        got[target] = trained_and_compared(plans, RunStore(root / "revised", create=False), after, after_cfg, data, seeds,
                                           REVISION, args.new)
    return got, (n_after, int(np.mean(n_plan)))


def renormalised(plan, removed: str):
    """The plan without ``removed``, its other ratios kept: ``mixopt export --drop`` (``Plan.without``); the old
    prediction stays, since ``verify`` wants one (its comparisons against natural and uniform do not use it)."""
    if removed not in plan.domains:
        return plan
    return plan.without([removed]).model_copy(update={"predicted": plan.predicted})


def one_removal(args, root: Path, seed: int, targets: list[str], seeds: int) -> tuple[dict, tuple[int, int]]:
    """One replication of a removal under sweep seed ``seed`` (see the module docstring)."""
    runs = args.runs or (6 if args.smoke else 30)
    few = args.reuse_runs or (3 if args.smoke else 8)
    kept = [d for d in embedded_domains() if d != args.new]
    root.mkdir(parents=True, exist_ok=True)
    before_cfg, after_cfg = sweep_cfg(args, seed, runs=runs), sweep_cfg(args, seed, runs=runs, include=kept)
    small_cfg = sweep_cfg(args, seed, runs=few, include=kept)
    runs_cfg = sweep_cfg(args, seed, runs=few, include=kept, reuse_store=str(root / "full"))
    before, n_before, _ = swept(before_cfg, root / "full")  # every domain: the add mode's full sweep
    after, n_after, s_after = swept(after_cfg, root / "old")  # the remaining domains: the add mode's old sweep
    small, n_small, s_small = swept(small_cfg, root / "removed-small")
    with_old, _, _ = swept(runs_cfg, root / "removed-reuse-runs")
    data = load_domain_set(after_cfg.data)
    print(f"  sweeps: old {n_before} runs over {len(kept) + 1} domains; recompute {n_after} runs over {len(kept)} "
          f"({s_after:.0f} s of training); recompute-small {n_small} ({s_small:.0f} s)", flush=True)
    got = {}
    for target in targets:
        old_plan = propose(before, before_cfg, target)
        plans = {"renorm": renormalised(old_plan, args.new), "reuse-runs": propose(with_old, runs_cfg, target),
                 "recompute": propose(after, after_cfg, target), "recompute-small": propose(small, small_cfg, target)}
        took = plans["reuse-runs"].provenance.get("reused_runs", 0)
        print(f"  {target}: the old plan gave {args.new} {old_plan.phases[0].weights.get(args.new, 0.0):.3f}; "
              f"reuse-runs fitted {took} old run(s) (of {n_before}) beside its {n_small} new ones", flush=True)
        got[target] = trained_and_compared(plans, RunStore(root / "old", create=False), after, after_cfg, data, seeds,
                                           REMOVAL, args.new)
    return got, (n_after, n_small)


if __name__ == "__main__":
    main()
