"""Surrogate accuracy on RegMix's public proxy runs (Pile, target pile_cc loss).

Usage: python benchmarks/surrogate_regmix.py [--quick] [--data DIR] [--plots DIR]

Sections: (0) CV inside the 512 training runs (the evidence that chose
``default``), (1) train on all 512 -> 1M/60M test, (2) sample efficiency on
random subsets, (3) speed of scoring 1M candidates, (4) calibration.
The test sets are only ever used for reporting.
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

from _regmix_data import available, data_dir, load_regmix  # noqa: E402

from mixopt.mixtures import dirichlet_candidates  # noqa: E402
from mixopt.surrogates import cross_validate, get_estimator, plot_pred_vs_actual  # noqa: E402
from mixopt.surrogates.lgbm import REGMIX_PARAMS  # noqa: E402

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


def section_full(d, plots):
    print("\n## (1) Train on all 512, test on 256 unseen mixtures  +  (4) calibration")
    print(f"{'estimator':16s} {'rho 1M':>7s} {'MAE 1M':>7s} {'rho 60M':>8s} {'MAE 60M':>8s} {'±1σ 1M':>7s} {'±2σ 1M':>7s} "
          f"{'±1σ 60M*':>8s} {'±2σ 60M*':>8s} {'fit s':>6s}")
    for name in MAIN:
        t = time.perf_counter()
        m = get_estimator(name).fit(d.W_train, d.y_train)
        fit_s = time.perf_counter() - t
        mu, sd = m.predict(d.W_test, return_std=True)
        z1 = np.abs(mu - d.y_test_1m) / sd
        # *60M: shift by the mean 1M->60M offset first (absolute levels differ by ~1 nat)
        shift = np.mean(d.y_test_60m - mu)
        z60 = np.abs(mu + shift - d.y_test_60m) / sd
        print(f"{name:16s} {rho(mu, d.y_test_1m):7.4f} {np.mean(np.abs(mu - d.y_test_1m)):7.4f} "
              f"{rho(mu, d.y_test_60m):8.4f} {np.mean(np.abs(mu - d.y_test_60m)):8.4f} "
              f"{np.mean(z1 <= 1):7.2f} {np.mean(z1 <= 2):7.2f} {np.mean(z60 <= 1):8.2f} {np.mean(z60 <= 2):8.2f} {fit_s:6.1f}",
              flush=True)
        if plots:
            Path(plots).mkdir(parents=True, exist_ok=True)
            plot_pred_vs_actual(d.y_test_1m, mu, Path(plots) / f"{name}_1m.png", f"{name}: 1M test", y_std=sd)


def section_efficiency(d, quick):
    sizes, seeds = ([32, 128], range(2)) if quick else ([32, 64, 128, 256], range(5))
    names = ["default", "regmix-lightgbm", "linear"]
    print(f"\n## (2) Sample efficiency: mean Spearman on 1M test over {len(seeds)} random subsets")
    print(f"{'runs':>5s} " + " ".join(f"{n:>16s}" for n in names))
    for n in sizes:
        row = []
        for name in names:
            rs = []
            for s in seeds:
                idx = np.random.default_rng(s).choice(len(d.y_train), n, replace=False)
                kw = {"n_bootstrap": 0} if name == "regmix-lightgbm" else {}
                m = get_estimator(name, **kw)
                if n < m.min_rows(d.W_train.shape[1]):
                    rs.append(float("nan"))
                    continue
                m.fit(d.W_train[idx], d.y_train[idx])
                rs.append(rho(m.predict(d.W_test), d.y_test_1m))
            row.append("n/a" if np.isnan(rs).all() else f"{np.nanmean(rs):.4f}±{np.nanstd(rs):.4f}")
        print(f"{n:5d} " + " ".join(f"{r:>16s}" for r in row), flush=True)
    print("   (n/a: regmix-lightgbm has min_runs=40; RegMix's min_child_samples=20 allows no split below 40 runs)")


def section_speed(d, quick):
    from lightgbm import LGBMRegressor

    n = 100_000 if quick else 1_000_000
    prior = d.W_train.mean(axis=0)  # training mixtures' mean ~ the RegMix prior (token share^0.5)
    C = dirichlet_candidates(prior / prior.sum(), n, seed=0)
    m = get_estimator("default").fit(d.W_train, d.y_train)
    t = time.perf_counter()
    pred = m.predict(C)
    top = np.argpartition(pred, 100)[:100]
    w_best = C[top].mean(axis=0)
    t_default = time.perf_counter() - t
    lgbm = LGBMRegressor(**REGMIX_PARAMS, random_state=42).fit(d.W_train, d.y_train)
    t = time.perf_counter()
    lgbm.predict(C)
    t_lgbm = time.perf_counter() - t
    print(f"\n## (3) Speed: {n:,} candidates, default predict + top-100 average: {t_default:.2f} s; "
          f"plain LGBMRegressor.predict: {t_lgbm:.2f} s; ratio {t_default / t_lgbm:.2f}x")
    print(f"   predicted loss of the top-100 average mixture: {m.predict(w_best[None])[0]:.4f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds/sizes; < ~2 minutes")
    ap.add_argument("--data", default=None, help="RegMix data dir (default $MIXOPT_REGMIX_DIR or ../shared/anchors/regmix)")
    ap.add_argument("--plots", default=None, help="write predicted-vs-actual PNGs here")
    args = ap.parse_args(argv)
    directory = data_dir(args.data)
    if not available(directory):
        print(f"SKIP: RegMix data not found in {directory} (need train_mixture_1m.csv etc.). "
              "Pass --data DIR or set MIXOPT_REGMIX_DIR.")
        return 0
    d = load_regmix(directory)
    print(f"RegMix data: {directory}  train {d.W_train.shape}, test {d.W_test.shape}; target pile_cc val loss")
    t = time.perf_counter()
    section_cv(d, args.quick)
    section_full(d, args.plots)
    section_efficiency(d, args.quick)
    section_speed(d, args.quick)
    print(f"\ntotal {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
