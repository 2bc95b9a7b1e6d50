"""Surrogate accuracy on RegMix's public proxy runs (Pile, target pile_cc loss).

Usage: python benchmarks/surrogate_regmix.py [--quick | --smoke] [--data DIR] [--plots DIR]

Sections: (0) CV inside the 512 training runs (the evidence that chose
``default``), (1) train on all 512 -> 1M/60M test, (2) sample efficiency on
random subsets, (4) calibration. The test sets are only ever used for
reporting. (The search speed that was section (3) is in ``search_speed.py``,
timed the way ``mixopt propose`` searches.) ``--smoke`` trains on one 128-run
subset only (seconds; CI). The last line is the ``summary:`` line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402
from _regmix_data import available, data_dir, load_regmix  # noqa: E402

from mixopt.surrogates import cross_validate, get_estimator, plot_pred_vs_actual  # noqa: E402

MAIN = ["default", "regmix-lightgbm", "linear", "mixing-law"]
# CV candidates: (label, registry name, params)
CANDIDATES = [
    ("linear", "linear", {}),
    ("mixing-law", "mixing-law", {}),
    ("regmix-lightgbm", "regmix-lightgbm", {"n_bootstrap": 0}),
    ("gp log(w+1e-2)", "gp", {"eps": 1e-2, "features": "log"}),
    ("gp log(w+1e-3)", "gp", {"eps": 1e-3, "features": "log"}),
    ("gp log(w+1e-4)", "gp", {"eps": 1e-4, "features": "log"}),
    ("gp clr(w+1e-3)", "gp", {"eps": 1e-3, "features": "clr"}),
    ("gp log(w+1e-3)+w = default", "default", {}),
]


def rho(a, b) -> float:
    """Spearman rho; nan when the prediction is constant (e.g. LightGBM with too few rows to split)."""
    a = np.asarray(a)
    return float("nan") if np.ptp(a) == 0 else float(spearmanr(a, b)[0])


def section_cv(d, quick):
    print("\n## (0) Cross-validation inside the 512 training runs (chooses the default)")
    print(f"{'candidate':30s} {'5-fold rho':>10s} {'MAE':>7s} {'regret@1':>9s} {'128-subset rho':>15s}")
    seeds = range(2 if quick else 5)
    for label, name, params in (CANDIDATES[:3] + CANDIDATES[-1:] if quick else CANDIDATES):
        cv = cross_validate(get_estimator(name, **params), d.W_train, d.y_train, k=5, seed=0)
        subs = []  # train on 128 training runs, score on the other 384 training runs
        for s in seeds:
            p = np.random.default_rng(100 + s).permutation(len(d.y_train))
            m = get_estimator(name, **params).fit(d.W_train[p[:128]], d.y_train[p[:128]])
            subs.append(rho(m.predict(d.W_train[p[128:]]), d.y_train[p[128:]]))
        print(f"{label:30s} {cv['spearman']:10.4f} {cv['mae']:7.4f} {cv['regret_at_1']:9.4f} {np.mean(subs):15.4f}", flush=True)


def section_full(d, plots, names=MAIN, train=None) -> dict:
    """Fit on the training runs (all 512, or the rows ``train``), score on the 256 test mixtures; per-estimator figures."""
    W, y = (d.W_train, d.y_train) if train is None else (d.W_train[train], d.y_train[train])
    print(f"\n## (1) Train on {len(y)} runs, test on 256 unseen mixtures  +  (4) calibration")
    print(f"{'estimator':16s} {'rho 1M':>7s} {'MAE 1M':>7s} {'rho 60M':>8s} {'MAE 60M':>8s} {'±1σ 1M':>7s} {'±2σ 1M':>7s} "
          f"{'±1σ 60M*':>8s} {'±2σ 60M*':>8s} {'fit s':>6s}")
    out = {}
    for name in names:
        t = time.perf_counter()
        m = get_estimator(name).fit(W, y)
        fit_s = time.perf_counter() - t
        mu, sd = m.predict(d.W_test, return_std=True)
        z1 = np.abs(mu - d.y_test_1m) / sd
        # *60M: shift by the mean 1M->60M offset first (absolute levels differ by ~1 nat)
        shift = np.mean(d.y_test_60m - mu)
        z60 = np.abs(mu + shift - d.y_test_60m) / sd
        out[name] = {"rho_1m": rho(mu, d.y_test_1m), "rho_60m": rho(mu, d.y_test_60m),
                     "cover_1sigma": float(np.mean(z1 <= 1)), "cover_2sigma": float(np.mean(z1 <= 2))}
        print(f"{name:16s} {out[name]['rho_1m']:7.4f} {np.mean(np.abs(mu - d.y_test_1m)):7.4f} "
              f"{out[name]['rho_60m']:8.4f} {np.mean(np.abs(mu - d.y_test_60m)):8.4f} "
              f"{np.mean(z1 <= 1):7.2f} {np.mean(z1 <= 2):7.2f} {np.mean(z60 <= 1):8.2f} {np.mean(z60 <= 2):8.2f} {fit_s:6.1f}",
              flush=True)
        if plots:
            Path(plots).mkdir(parents=True, exist_ok=True)
            plot_pred_vs_actual(d.y_test_1m, mu, Path(plots) / f"{name}_1m.png", f"{name}: 1M test", y_std=sd)
    return out


def section_efficiency(d, sizes, seeds) -> dict:
    """Mean Spearman on the 1M test of models trained on random subsets: {size: {name: mean rho}}."""
    names = ["default", "regmix-lightgbm", "linear"]
    print(f"\n## (2) Sample efficiency: mean Spearman on 1M test over {len(seeds)} random subsets")
    print(f"{'runs':>5s} " + " ".join(f"{n:>16s}" for n in names))
    out = {}
    for n in sizes:
        row, out[n] = [], {}
        for name in names:
            rs = []
            for s in seeds:
                idx = subset(len(d.y_train), n, s)
                kw = {"n_bootstrap": 0} if name == "regmix-lightgbm" else {}
                m = get_estimator(name, **kw)
                if n < m.min_rows(d.W_train.shape[1]):
                    rs.append(float("nan"))
                    continue
                m.fit(d.W_train[idx], d.y_train[idx])
                rs.append(rho(m.predict(d.W_test), d.y_test_1m))
            out[n][name] = float("nan") if np.isnan(rs).all() else float(np.nanmean(rs))
            row.append("n/a" if np.isnan(rs).all() else f"{np.nanmean(rs):.4f}±{np.nanstd(rs):.4f}")
        print(f"{n:5d} " + " ".join(f"{r:>16s}" for r in row), flush=True)
    print("   (n/a: regmix-lightgbm has min_runs=40; RegMix's min_child_samples=20 allows no split below 40 runs)")
    return out


def subset(n_total: int, n: int, seed: int) -> np.ndarray:
    """The random training subset of size ``n`` used for sample-efficiency seed ``seed`` (also by tests/test_claims.py)."""
    return np.random.default_rng(seed).choice(n_total, n, replace=False)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer seeds/sizes; < ~2 minutes")
    mode.add_argument("--smoke", action="store_true", help="one 128-run subset, no CV: seconds (CI)")
    ap.add_argument("--data", default=None, help="RegMix data dir (default $MIXOPT_REGMIX_DIR or ../shared/anchors/regmix)")
    ap.add_argument("--plots", default=None, help="write predicted-vs-actual PNGs here")
    args = ap.parse_args(argv)
    start = provenance()
    directory = data_dir(args.data)
    if not available(directory):
        raise SystemExit(f"RegMix data not found in {directory} (need train_mixture_1m.csv etc.). "
                         "Pass --data DIR or set MIXOPT_REGMIX_DIR.")
    d = load_regmix(directory)
    print(f"RegMix data: {directory}  train {d.W_train.shape}, test {d.W_test.shape}; target pile_cc val loss")
    t = time.perf_counter()
    if args.smoke:
        full = section_full(d, args.plots, names=["default", "regmix-lightgbm"], train=subset(len(d.y_train), 128, 0))
        eff = {128: {"default": full["default"]["rho_1m"], "regmix-lightgbm": full["regmix-lightgbm"]["rho_1m"]}}
    else:
        section_cv(d, args.quick)
        full = section_full(d, args.plots)
        eff = section_efficiency(d, [32, 128] if args.quick else [32, 64, 128, 256], range(2 if args.quick else 5))
    print(f"\ntotal {time.perf_counter() - t:.0f} s")
    print(machine_line(start, provenance()))
    dflt, lgbm = full["default"], full["regmix-lightgbm"]
    return print_summary({
        **goal("rho_1m", dflt["rho_1m"], 0.993), **goal("rho_60m", dflt["rho_60m"], 0.990),
        **goal("rho_128", eff[128]["default"], 0.985),
        **goal("margin_128_vs_lgbm", eff[128]["default"] - eff[128]["regmix-lightgbm"], 0.0),
        "lgbm_rho_1m": lgbm["rho_1m"], "lgbm_rho_128": eff[128]["regmix-lightgbm"],
        "cover_1sigma": dflt["cover_1sigma"], "cover_2sigma": dflt["cover_2sigma"],
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
    })


if __name__ == "__main__":
    main()
