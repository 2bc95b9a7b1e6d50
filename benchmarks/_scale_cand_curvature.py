"""Scale-transfer candidate: ``ScaleGP`` without its level-curvature term (the kernel before 2026-11-30).

``predict_rows(train, test) -> (mean, std)`` for ``_scale_embedded.py``'s candidate
list, so the old kernel stands next to the default ``scale-gp`` (``curvature=0.35``)
in one run. Run as a script it puts both side by side on all three benchmarks and
reports the calibration of single runs at the held-out scale (±1σ/±2σ coverage,
mean negative log predictive density ``nlpd``, CRPS) for a sweep of ``curvature``
values (the prior decides the term when only two sizes are trained)::

    python benchmarks/_scale_cand_curvature.py --part regmix --seeds 3
    python benchmarks/_scale_cand_curvature.py --part embedded --embedded-store /work/stores/scale3
    python benchmarks/_scale_cand_curvature.py --part embedded --embedded-store /work/stores/scale_large \\
        --corpus-dir /work/stores/large_corpus
    python benchmarks/_scale_cand_curvature.py --smoke

The embedded parts first run ``scale_transfer.py``'s own part (ii) with this module
added as a candidate (the full table, both kernels), then the sensitivity table
from the store's rows (read only).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, print_summary, provenance
from _scale_rows import ScaleRows, scale_rows

from mixopt.surrogates.scale import ScaleGP, held_out_scale_cv, scale_inputs

LABEL = "scale-gp no curvature"
CURVATURES = (None, 0.2, 0.35, 0.5, 0.7)


def predict_rows(train: ScaleRows, test: ScaleRows, curvature: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``ScaleGP(curvature=curvature)`` on ``train``'s rows; (mean, std) at ``test``'s rows."""
    model = ScaleGP(curvature=curvature).fit(scale_inputs(train.W, train.N, train.D), train.y)
    return model.predict(scale_inputs(test.W, test.N, test.D), return_std=True)


def calibration(y, mean, std) -> dict:
    """Coverage of ±1σ/±2σ, mean negative log predictive density and CRPS of Gaussian predictions, per row."""
    z = (y - mean) / std
    crps = std * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    return {"within_1sd": float(np.mean(np.abs(z) <= 1)), "within_2sd": float(np.mean(np.abs(z) <= 2)),
            "nlpd": float(-norm.logpdf(y, mean, std).mean()), "crps": float(crps.mean()), "std": float(std.mean()),
            "bias": float(np.mean(mean - y))}


def sensitivity(train: ScaleRows, test: ScaleRows, curvatures=CURVATURES) -> dict:
    """Per curvature and budget (and all budgets): Spearman, MAE of per-mixture means, and ``calibration``."""
    out = {}
    print(f"{'curvature':>9s} {'budget':>8s} {'Spearman':>8s} {'MAE':>7s} {'bias':>7s} {'mean σ':>7s} {'±1σ':>5s} {'±2σ':>5s} {'nlpd':>7s} {'crps':>7s}")
    for c in curvatures:
        mean, std = predict_rows(train, test, c)
        rows = {}
        for d in [*test.budgets, None]:
            at = np.ones(len(test.y), bool) if d is None else test.D == d
            sub = test.rows(at)
            _, truth = sub.per_mixture()
            _, pred = sub.per_mixture(mean[at])
            rows["all" if d is None else int(d)] = r = {"spearman": float(spearmanr(pred, truth)[0]),
                                                         "mae": float(np.mean(np.abs(pred - truth))), **calibration(sub.y, mean[at], std[at])}
            print(f"{c!s:>9s} {'all' if d is None else int(d):>8} {r['spearman']:8.4f} {r['mae']:7.4f} {r['bias']:+7.4f} {r['std']:7.4f} "
                  f"{r['within_1sd']:5.2f} {r['within_2sd']:5.2f} {r['nlpd']:+7.3f} {r['crps']:7.4f}")
        out[c] = rows
    return out


def search_at(model: ScaleGP, W_runs: np.ndarray, n: float, tokens: float, smoke: bool) -> dict:
    """RegMix's search (``propose``'s, uncertainty weight 0.5) at a scale far beyond the data: the mixture it picks,
    its marginal std, and the std of its difference to the prior (the runs' mean mixture), where a shared level cancels."""
    from mixopt.planning.search import simulate_search
    from mixopt.surrogates.scale import AtScale
    at, prior = AtScale(model, n, tokens), W_runs.mean(0)
    r = simulate_search(at, prior, n_candidates=2000 if smoke else 20000, top_k=100, seed=0, uncertainty_weight=0.5)
    (m, mp), C = at.predict(np.vstack([r.weights, prior]), return_cov=True)
    return {"weights": r.weights, "std": float(np.sqrt(C[0, 0])), "diff_std": float(np.sqrt(C[0, 0] + C[1, 1] - 2 * C[0, 1])),
            "gain": float(mp - m)}


def part_regmix(seeds: int, folds: int, smoke: bool, data=None) -> dict:
    """RegMix part (i), scale_transfer.py's protocol: old and new kernel on the same folds; std far beyond 60M."""
    from _regmix_data import available, data_dir, load_regmix
    from scale_transfer import N_LARGE, N_SMALL, TOKENS
    directory = data_dir(data)
    if not available(directory):
        raise SystemExit(f"RegMix data not found in {directory}. Pass --data DIR or set MIXOPT_REGMIX_DIR.")
    d = load_regmix(directory)
    rng = np.random.default_rng(0)
    tr = rng.choice(len(d.y_train), 96, replace=False) if smoke else np.arange(len(d.y_train))
    te = rng.choice(len(d.y_test_60m), 64, replace=False) if smoke else np.arange(len(d.y_test_60m))
    W1, y1 = np.vstack([d.W_train[tr], d.W_test[te]]), np.r_[d.y_train[tr], d.y_test_1m[te]]
    X = np.vstack([scale_inputs(W1, N_SMALL, TOKENS), scale_inputs(d.W_test[te], N_LARGE, TOKENS)])
    y = np.r_[y1, d.y_test_60m[te]]
    print(f"\n## RegMix part (i): {len(y1)} runs at 1M, {len(te)} at 60M, {folds}-fold over the 60M runs, {seeds} split(s)")
    out = {}
    for c in (None, 0.35):
        runs = []
        for seed in range(seeds):
            t = time.perf_counter()
            cv = held_out_scale_cv(ScaleGP(curvature=c), X, y, k=folds, seed=seed)
            runs.append({"spearman": cv["spearman"], "mae": cv["mae"], "regret_at_1": cv["regret_at_1"],
                         **calibration(cv["y_true"], cv["oof_pred"], cv["oof_std"]), "s": time.perf_counter() - t})
        full = ScaleGP(curvature=c).fit(X, y)
        far = {n: float(full.predict(scale_inputs(d.W_test[te], n, TOKENS), return_std=True)[1].mean()) for n in (6e7, 1e8, 1e9, 1e10)}
        out[c] = {**{k: float(np.mean([r[k] for r in runs])) for k in runs[0]}, "std_at": far, "search": search_at(full, W1, 1e9, TOKENS, smoke)}
    print(f"{'curvature':>9s} {'Spearman':>8s} {'MAE':>7s} {'regret@1':>8s} {'±1σ':>5s} {'±2σ':>5s} {'nlpd':>7s} {'σ 60M':>7s} {'σ 1B':>7s} {'σ 10B':>7s} {'s':>5s}")
    for c, r in out.items():
        print(f"{c!s:>9s} {r['spearman']:8.4f} {r['mae']:7.4f} {r['regret_at_1']:8.4f} {r['within_1sd']:5.2f} {r['within_2sd']:5.2f} "
              f"{r['nlpd']:+7.3f} {r['std_at'][6e7]:7.4f} {r['std_at'][1e9]:7.4f} {r['std_at'][1e10]:7.4f} {r['s']:5.0f}")
    print("search at 1e9 params (fitted on every run): ")
    for c, r in out.items():
        sr = r["search"]
        print(f"  curvature {c!s:>5s}: predicted gain over the prior {sr['gain']:.4f}, its std {sr['std']:.4f}, "
              f"std of the difference {sr['diff_std']:.4f}")
    print(f"  L1 distance between the two picked mixtures: {np.abs(out[None]['search']['weights'] - out[0.35]['search']['weights']).sum():.4f}")
    return out


def part_embedded(store: str, corpus_dir: str | None, smoke: bool) -> dict:
    """scale_transfer.py's part (ii) with this candidate added, then the curvature sensitivity on the same rows."""
    import _scale_embedded
    if "_scale_cand_curvature" not in _scale_embedded.PLUGINS:
        _scale_embedded.PLUGINS = (*_scale_embedded.PLUGINS, "_scale_cand_curvature")
    _scale_embedded.part_embedded(store, smoke=smoke, corpus_dir=corpus_dir)
    train, test = scale_rows(store).split()
    print(f"\n## curvature sensitivity: fit on the two smaller sizes, predict the largest ({len(test.y)} runs, single-run calibration)")
    return sensitivity(train, test, CURVATURES[:3] if smoke else CURVATURES)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="RegMix subset (2 folds) and a tiny 3-size sweep in a temporary store")
    ap.add_argument("--part", choices=("all", "regmix", "embedded"), default="all")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--data", default=None, help="RegMix data dir (default: scale_transfer.py's)")
    ap.add_argument("--embedded-store", default=None, help="multi-size store (read only when complete; --smoke: a temporary one)")
    ap.add_argument("--corpus-dir", default=None)
    args = ap.parse_args(argv)
    start = provenance()
    fields: dict = {}
    if args.part in ("all", "regmix"):
        rm = part_regmix(1 if args.smoke else args.seeds, 2 if args.smoke else args.folds, args.smoke, args.data)
        fields.update({"rm_rho_new": rm[0.35]["spearman"], "rm_rho_old": rm[None]["spearman"], "rm_cover_1sigma_new": rm[0.35]["within_1sd"],
                       "rm_cover_1sigma_old": rm[None]["within_1sd"], "rm_std_10b_new": rm[0.35]["std_at"][1e10], "rm_std_10b_old": rm[None]["std_at"][1e10]})
    if args.part in ("all", "embedded"):
        with tempfile.TemporaryDirectory(prefix="mixopt-curv-") as tmp:
            store = tmp if args.smoke else (args.embedded_store or "/tmp/mixopt-bench/scale_embedded")
            emb = part_embedded(store, args.corpus_dir, args.smoke)
        final = max(k for k in emb[None] if k != "all")
        fields.update({"emb_cover_1sigma_new": emb[0.35][final]["within_1sd"], "emb_cover_1sigma_old": emb[None][final]["within_1sd"],
                       "emb_cover_2sigma_new": emb[0.35][final]["within_2sd"], "emb_cover_2sigma_old": emb[None][final]["within_2sd"],
                       "emb_nlpd_new": emb[0.35]["all"]["nlpd"], "emb_nlpd_old": emb[None]["all"]["nlpd"],
                       "emb_rho_new": emb[0.35][final]["spearman"], "emb_rho_old": emb[None][final]["spearman"]})
    print(machine_line(start, provenance()))
    return print_summary({**fields, "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
