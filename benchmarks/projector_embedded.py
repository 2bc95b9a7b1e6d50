"""OT projector (Kang et al. 2023, "projektor") vs. mixopt's surrogate, on real proxy runs over the embedded corpus.

Setup (the numbers in ``benchmarks/RESULTS.md`` come from this script):

* **Sweep.** 4 embedded domains (``code, docs, math, prose``), RegMix's Dirichlet
  sampler with a low strength range (0.1..2) so that some mixtures put >= 0.5 on
  ``code``; plus the natural and uniform baselines, plus 4 explicit mixtures with
  ``w_code`` in {0.5, 0.6, 0.75, 0.9} (rest: seeded flat Dirichlet), so that the
  held-out side is never tiny. Proxy: 1 layer, C=64, T=64,
  B=16, 262,144 tokens (T_run), cosine LR, fp32, 1 torch thread, checkpoints at
  0.25/0.5/1.0 of the tokens, 8,192 validation tokens per domain per checkpoint.
* **Features.** As ``mixopt propose`` builds them (``pipeline._store_projector``):
  ``domain_texts(max_docs=60)``; each domain's *train* documents are the
  source, the target metric's *validation* documents the target;
  ``HashingFeaturizer(dim=128)``; exact EMD.
* **1. Mixture interpolation** (projektor's protocol). Fit on the runs with
  ``w_code < 0.5``, predict the runs with ``w_code >= 0.5``, at the sweep's own
  size. Projector = ``fit_store_projector(...)`` evaluated at ``n_tokens = n1``
  (that is exactly its stage-1 fit on the final losses); surrogate = what
  ``mixopt fit`` ships for the target (:func:`shipped_surrogate`): for an
  averaged target such as ``mean:all-domains`` the weighted mean of one
  ``default`` GP per component metric (``MetricAverage``), else one ``default``
  GP. **Combined** = inverse-variance weighted mean
  of the two predictions, each model's own predictive std as its sigma:
  ``(m_p/s_p^2 + m_s/s_s^2) / (1/s_p^2 + 1/s_s^2)``. Also printed: the plain
  average, a "predict the training mean" line for scale, and, as a diagnostic,
  both models under a random 5-fold split of all runs (no extrapolation).
* **2. Size extrapolation.** The two-stage projector is fitted on *all* sweep
  runs at the checkpoints N0 = 0.5*T_run and N1 = T_run (what ``mixopt propose``
  does), and predicts at 4x and 8x T_run for K sweep mixtures (evenly spaced in
  the ranking of the target loss). Those K mixtures are then trained at 4x and 8x
  (full cosine schedule each, same seed) and compared. Baselines: the run's own
  loss at N1 unchanged, and a per-mixture log-linear extrapolation through its
  own (N0, N1) checkpoints. Variant "projector (separate runs)": the paper's
  setup, stage 1 fitted on runs *trained* to T_run/2 (full schedule) and to
  T_run, for which every sweep mixture is also trained at T_run/2.

Everything is stored under ``--store`` (content-addressed run ids), so a rerun
resumes and re-evaluates without training again. Deterministic for a seed.

    python benchmarks/projector_embedded.py            # ~6 min on a shared 2-core CPU
    python benchmarks/projector_embedded.py --quick    # < 2 min
    python benchmarks/projector_embedded.py --smoke    # 8 sampled runs of a tiny proxy, fresh temp store (CI)

The sweep trains one seed per mixture (``sampler.noise_seeds: 1``). The last
line is the ``summary:`` line (goals: the combination has the lowest
interpolation MAE; the projector beats keeping the N1 loss at 4x).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402

from mixopt.config import config_from_dict  # noqa: E402
from mixopt.data.domains import domain_texts, load_domain_set  # noqa: E402
from mixopt.projector.features import featurize  # noqa: E402
from mixopt.projector.from_runs import fit_store_projector, target_docs_for  # noqa: E402
from mixopt.projector.ot_distance import MixtureOT  # noqa: E402
from mixopt.projector.projector import OTProjector, TwoStageProjector  # noqa: E402
from mixopt.runs.driver import run_sweep  # noqa: E402
from mixopt.runs.record import RunSpec  # noqa: E402
from mixopt.runs.store import RunStore  # noqa: E402
from mixopt.runs.sweep import execute_run  # noqa: E402
from mixopt.pipeline import make_estimator
from mixopt.runs.table import records_table, target_curve  # noqa: E402

DOMAINS = ["code", "docs", "math", "prose"]
EXPLICIT_WX = (0.5, 0.6, 0.75, 0.9)


def make_cfg(args, tokens: int, runs: int):
    size = (dict(n_embd=32, head_size=32, block_size=32, batch_size=8, eval_tokens=1024) if args.smoke
            else dict(n_embd=64, head_size=64, block_size=64, batch_size=16, eval_tokens=8192))
    return config_from_dict({
        "name": "projector-bench", "seed": args.seed, "runs": runs,
        "data": {"include": DOMAINS, **({"max_documents": 200} if args.smoke else {})},
        "sampler": {"strength_min": 0.1, "strength_max": 2.0, "noise_seeds": 1, "noise_mixtures": 0, "two_phase_runs": 0},
        "proxy": {"n_layer": 1, **size, "tokens": tokens,
                  "checkpoints": [0.25, 0.5, 1.0], "threads": 1, "device": "cpu", "dtype": "float32"},
    })


def train_mixtures(cfg, mixtures: list[dict], store_dir: Path, data) -> list:
    """Train (or read back) one run per mixture under ``cfg``; records in the mixtures' order."""
    store = RunStore(store_dir)
    proxy = cfg.proxy.model_dump(mode="json")
    out = []
    for m in mixtures:
        spec = RunSpec(mixture={k: float(v) for k, v in sorted(m.items())}, proxy=proxy, data_fingerprint=data.fingerprint,
                       seed=cfg.seed, label=f"tokens-{cfg.proxy.tokens}")
        execute_run(spec, store, data, wait=True, threads=1)
        out.append(store.get(spec.run_id))
    return out


def explicit_mixtures(domains: list[str], x: str, seed: int) -> list[dict]:
    """A few mixtures with ``w_x`` in {0.5, 0.6, 0.75, 0.9}, the rest split by a seeded flat Dirichlet."""
    rng = np.random.default_rng(seed + 1)
    others = [d for d in domains if d != x]
    out = []
    for wx in EXPLICIT_WX:
        rest = rng.dirichlet(np.ones(len(others))) * (1.0 - wx)
        out.append({x: wx, **{d: float(v) for d, v in zip(others, rest)}})
    return out


def mae(pred, y) -> float:
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(y))))


def rho(pred, y) -> float:
    return float(spearmanr(pred, y).statistic)


def final_loss(rec, target: str) -> float:
    c = target_curve(rec, target)
    return c[max(c)]


def shipped_surrogate(records, target: str, seed: int = 0):
    """What `mixopt fit` ships for ``target`` (``pipeline.make_estimator``), unfitted, and its training matrix Y for ``records``."""
    return make_estimator(records_table(records), target, seed=seed, groups=None)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default=None, help="run store root (default /tmp/mixopt_projector_bench; smoke: a temp dir)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="20 runs of 131,072 tokens, 3 extrapolation mixtures (< 2 min)")
    mode.add_argument("--smoke", action="store_true", help="8 runs of 4,096 tokens of a tiny proxy, 2 extrapolation mixtures (CI)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--domain", default="code", help="held-out direction X: test runs have w_X >= 0.5")
    ap.add_argument("--target", default="mean:all-domains", help="headline target (the last line)")
    ap.add_argument("--extrap-mixtures", type=int, default=None, help="mixtures trained at 4x and 8x (default 6, quick 3)")
    ap.add_argument("--json", default=None, help="write all figures to this JSON file")
    args = ap.parse_args(argv)
    if args.smoke and args.store is None:
        with tempfile.TemporaryDirectory(prefix="mixopt-projector-") as tmp:
            return run(args, Path(tmp) / "smoke")
    return run(args, Path(args.store or "/tmp/mixopt_projector_bench") / ("smoke" if args.smoke else "quick" if args.quick else "full"))


def run(args, root: Path) -> dict:
    start = provenance()
    t_start = time.time()
    tokens, runs = (4096, 8) if args.smoke else (131_072, 20) if args.quick else (262_144, 50)
    k_extrap = args.extrap_mixtures or (2 if args.smoke else 3 if args.quick else 6)
    X = args.domain
    cfg = make_cfg(args, tokens, runs)
    data = load_domain_set(cfg.data)
    domains = sorted(data.names)

    # ---------------------------------------------------------------- sweep
    t0 = time.time()
    run_sweep(cfg, root / "sweep", show_progress=False)
    records = sorted([r for r in RunStore(root / "sweep").records() if r.status == "ok"], key=lambda r: (r.label, r.run_id))
    planned = set(RunStore(root / "sweep").meta().get("planned", []))
    records = [r for r in records if r.run_id in planned]
    records += train_mixtures(cfg, explicit_mixtures(domains, X, args.seed), root / "explicit", data)
    t_sweep = time.time() - t0
    W = np.array([[r.mixture.get(d, 0.0) for d in domains] for r in records])
    ix = domains.index(X)
    test = W[:, ix] >= 0.5
    print(f"sweep: {len(records)} runs ({int((~test).sum())} with w_{X} < 0.5 to fit, {int(test.sum())} with w_{X} >= 0.5 "
          f"to predict), {tokens:,} tokens each, {t_sweep:.0f} s")

    docs = domain_texts(data, cfg.data.tokenizer, max_docs=60)
    val_docs = {d: v for d, (_, v) in docs.items()}
    src = {d: featurize(docs[d][0], where=f"domain {d}") for d in domains}
    targets = [args.target] + [t for t in (args.target, f"val/{X}") if t != args.target]
    targets = list(dict.fromkeys(targets))
    results: dict = {"tokens": tokens, "runs": len(records), "n_fit": int((~test).sum()), "n_test": int(test.sum()),
                     "interp": {}, "extrap": {}}

    # ------------------------------------------------------- 1. interpolation
    for target in targets:
        tgt = featurize(target_docs_for(target, val_docs), where="target")
        y = np.array([final_loss(r, target) for r in records])
        fit_recs = [r for r, t in zip(records, test) if not t]
        proj = fit_store_projector(fit_recs, domains, target, src, tgt)
        mp, sp = proj.predict(W[test], n_tokens=proj.n1, return_std=True)
        est, Y = shipped_surrogate(records, target, args.seed)
        ms, ss = est.fit(W[~test], Y[~test]).predict(W[test], return_std=True)
        wp, ws = 1.0 / np.maximum(sp, 1e-12) ** 2, 1.0 / np.maximum(ss, 1e-12) ** 2
        mc = (wp * mp + ws * ms) / (wp + ws)
        ma = 0.5 * (mp + ms)
        yt = y[test]
        rows = {"projector": mp, "surrogate": ms, "combined": mc, "average": ma,
                "train mean": np.full(yt.shape, y[~test].mean())}
        res = {name: {"mae": mae(p, yt), "rho": rho(p, yt) if np.ptp(p) > 0 else float("nan"), "bias": float(np.mean(p - yt))}
               for name, p in rows.items()}
        res["std"] = {"projector_mean_std": float(sp.mean()), "surrogate_mean_std": float(ss.mean()),
                      "projector_weight_mean": float(np.mean(wp / (wp + ws)))}
        res["actual_range"] = [float(yt.min()), float(yt.max())]
        # Diagnostic: the same two models under a random 5-fold split of all runs (no extrapolation in w_X).
        o_all = MixtureOT(src, tgt).distances(W)
        folds = np.random.default_rng(args.seed).permutation(len(y)) % 5
        cv_p, cv_s = np.empty_like(y), np.empty_like(y)
        for k in range(5):
            tr, te = folds != k, folds == k
            cv_p[te] = OTProjector(MixtureOT(src, tgt)).fit(W[tr], y[tr], ot_values=o_all[tr]).predict(W[te], ot_values=o_all[te])
            cv_s[te] = shipped_surrogate(records, target, args.seed)[0].fit(W[tr], Y[tr]).predict(W[te])
        res["cv5"] = {"projector": {"mae": mae(cv_p, y), "rho": rho(cv_p, y)}, "surrogate": {"mae": mae(cv_s, y), "rho": rho(cv_s, y)}}
        results["interp"][target] = res
        print(f"\n[interpolation] target={target}: fit {int((~test).sum())} runs (w_{X} < 0.5) -> predict "
              f"{int(test.sum())} runs (w_{X} >= 0.5); actual {yt.min():.4f}..{yt.max():.4f}")
        print(f"  {'model':<12} {'MAE':>8} {'Spearman':>9} {'mean err':>9}")
        for name in rows:
            print(f"  {name:<12} {res[name]['mae']:8.4f} {res[name]['rho']:9.3f} {res[name]['bias']:+9.4f}")
        print(f"  mean predictive std: projector {sp.mean():.4f}, surrogate {ss.mean():.4f}; "
              f"mean weight on the projector in 'combined' {np.mean(wp / (wp + ws)):.2f}")
        print(f"  diagnostic, random 5-fold CV over all {len(y)} runs: projector MAE {res['cv5']['projector']['mae']:.4f} "
              f"rho {res['cv5']['projector']['rho']:.3f}; surrogate MAE {res['cv5']['surrogate']['mae']:.4f} "
              f"rho {res['cv5']['surrogate']['rho']:.3f}")

    # ------------------------------------------------------- 2. size extrapolation
    t0 = time.time()
    y_main = np.array([final_loss(r, args.target) for r in records])
    order = np.argsort(y_main, kind="stable")
    pick = [int(order[i]) for i in np.unique(np.round(np.linspace(0, len(order) - 1, k_extrap)).astype(int))]
    mixes = [records[i].mixture for i in pick]
    big = {f: train_mixtures(make_cfg(args, f * tokens, runs), mixes, root / "extrap", data) for f in (4, 8)}
    half = train_mixtures(make_cfg(args, tokens // 2, runs), [r.mixture for r in records], root / "half", data)
    t_extrap = time.time() - t0
    print(f"\nsize extrapolation: {len(pick)} mixtures trained at 4x and 8x ({4 * tokens:,} / {8 * tokens:,} tokens), "
          f"{len(records)} at T/2 ({tokens // 2:,}) for the separate-runs variant: {t_extrap:.0f} s")
    for target in targets:
        tgt = featurize(target_docs_for(target, val_docs), where="target")
        proj = fit_store_projector(records, domains, target, src, tgt)
        y0_sep = np.array([final_loss(r, target) for r in half])
        y1 = np.array([final_loss(r, target) for r in records])
        proj_sep = TwoStageProjector(MixtureOT(src, tgt), n0=tokens // 2, n1=tokens).fit(W, y0_sep, y1)
        n0, n1 = proj.n0, proj.n1
        res = {"n0": n0, "n1": n1}
        print(f"\n[extrapolation] target={target}: projector fitted on all {len(records)} runs at checkpoints "
              f"N0={n0:,.0f}, N1={n1:,.0f}")
        print(f"  {'size':<5} {'model':<28} {'MAE':>8} {'Spearman':>9} {'mean err':>9}")
        for f in (4, 8):
            n = f * tokens
            actual = np.array([final_loss(r, target) for r in big[f]])
            c0 = np.array([target_curve(records[i], target)[n0] for i in pick])
            c1 = np.array([target_curve(records[i], target)[n1] for i in pick])
            loglin = c1 + (c1 - c0) * np.log(n / n1) / np.log(n1 / n0)
            sep_loglin = y1[pick] + (y1[pick] - y0_sep[pick]) * np.log(n / tokens) / np.log(2.0)
            rows = {"projector (checkpoints)": proj.predict(W[pick], n_tokens=n),
                    "projector (separate runs)": proj_sep.predict(W[pick], n_tokens=n),
                    "loss at N1 unchanged": c1,
                    "log-linear, own checkpoints": loglin,
                    "log-linear, own sep. runs": sep_loglin}
            res[f"{f}x"] = {name: {"mae": mae(p, actual), "rho": rho(p, actual), "bias": float(np.mean(p - actual))}
                            for name, p in rows.items()}
            res[f"{f}x"]["actual"] = actual.tolist()
            for name, p in rows.items():
                r = res[f"{f}x"][name]
                print(f"  {f}x{'':<3} {name:<28} {r['mae']:8.4f} {r['rho']:9.3f} {r['bias']:+9.4f}")
        results["extrap"][target] = res
    results["extrap_mixtures"] = [{d: round(float(m.get(d, 0.0)), 4) for d in domains} for m in mixes]
    results["seconds"] = {"sweep": t_sweep, "extrap_training": t_extrap, "total": time.time() - t_start}
    print(f"\nextrapolation mixtures ({', '.join(domains)}): " + "; ".join(
        "(" + ", ".join(f"{m.get(d, 0.0):.2f}" for d in domains) + ")" for m in mixes))
    print(f"total {time.time() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))

    it, ex = results["interp"][args.target], results["extrap"][args.target]
    print(machine_line(start, provenance()))
    best_other = min(it[m]["mae"] for m in ("projector", "surrogate", "average"))
    return print_summary({
        "interp_mae_projector": it["projector"]["mae"], "interp_mae_surrogate": it["surrogate"]["mae"],
        **goal("interp_mae_combined", it["combined"]["mae"], best_other, higher_is_better=False),
        "interp_rho_projector": it["projector"]["rho"], "interp_rho_surrogate": it["surrogate"]["rho"],
        "interp_rho_combined": it["combined"]["rho"],
        **goal("extrap_mae_4x", ex["4x"]["projector (checkpoints)"]["mae"], ex["4x"]["loss at N1 unchanged"]["mae"],
               higher_is_better=False),
        "extrap_mae_8x": ex["8x"]["projector (checkpoints)"]["mae"],
        "extrap_mae_4x_loglinear": ex["4x"]["log-linear, own checkpoints"]["mae"],
        "runs": len(records), "mode": "smoke" if args.smoke else "quick" if args.quick else "full"})


if __name__ == "__main__":
    main()
