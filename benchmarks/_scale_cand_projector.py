"""Scale-transfer candidate: the OT projector across model size (``mixopt.projector.scale.ScaleProjector``).

``predict_rows(train, test) -> (mean, std)`` over the test rows, for ``_scale_embedded.py``'s
candidate list. The OT features come from the store's own data: the embedded corpus is loaded
with the data config whose fingerprint matches the runs' (``scale_embedded.yaml``, full or
smoke, unless ``data_config`` is given), its documents are decoded from the token cache and
featurized with the hashing featurizer, exactly as ``mixopt propose`` builds its projector's;
the :class:`MixtureOT` is cached in memory per (data fingerprint, target).

RegMix's public tables have no text, so the projector cannot run on part (i).

Standalone evaluation (also the combinations with the GP)::

    python benchmarks/_scale_cand_projector.py --store /work/stores/scale3 [--loo]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, print_summary, provenance  # noqa: E402
from _scale_embedded import embedded_config, score  # noqa: E402
from _scale_rows import ScaleRows, scale_rows  # noqa: E402

from mixopt.data.domains import domain_texts, load_domain_set  # noqa: E402
from mixopt.errors import DataError  # noqa: E402
from mixopt.projector.features import featurize  # noqa: E402
from mixopt.projector.from_runs import target_docs_for  # noqa: E402
from mixopt.projector.ot_distance import MixtureOT  # noqa: E402
from mixopt.projector.scale import ScaleProjector, stage1_fit  # noqa: E402
from mixopt.surrogates import get_estimator  # noqa: E402
from mixopt.surrogates.scale import ScaleGP, scale_inputs  # noqa: E402

LABEL = "ot-projector"
TARGET = "mean:all-domains"
_OT: dict[tuple[str, str], MixtureOT] = {}


def store_ot(rows: ScaleRows, target: str = TARGET, data_config=None) -> MixtureOT:
    """The MixtureOT of the rows' data (domains in ``rows.domains`` order) to ``target``'s documents; cached."""
    fps = {r.data_fingerprint for r in rows.records}
    if len(fps) != 1:
        raise DataError(f"The runs must share one data fingerprint to build OT features. Got {sorted(fps)}. Use one store's runs.")
    fp = fps.pop()
    if (fp, target) in _OT:
        return _OT[(fp, target)]
    configs = [data_config] if data_config is not None else [embedded_config(s).data for s in (False, True)]
    for cfg in configs:
        data = load_domain_set(cfg)
        if data.fingerprint == fp:
            break
    else:
        raise DataError(f"No candidate data config reproduces the runs' data fingerprint {fp} (tried {len(configs)}). "
                        "Pass data_config= the store's config.data.")
    texts = domain_texts(data, cfg.tokenizer, max_docs=60)
    val_docs = {d: texts[d][1] for d in rows.domains}
    src = {d: featurize(texts[d][0], where=f"domain {d}") for d in rows.domains}
    tgt = featurize(target_docs_for(target, val_docs, {n: texts[n][1] for n in data.targets}), where="target")
    _OT[(fp, target)] = MixtureOT(src, tgt)
    return _OT[(fp, target)]


def _x(rows: ScaleRows) -> np.ndarray:
    return scale_inputs(rows.W, rows.N, rows.D)


def predict_rows(train: ScaleRows, test: ScaleRows, *, target: str = TARGET, data_config=None, **params):
    """ScaleProjector fitted on ``train``'s rows, (mean, std) at each of ``test``'s rows.

    ``min_scale_runs`` defaults to 4 here so that the smoke store (4-9 runs per scale) fits too.
    """
    ot = store_ot(train, target, data_config)
    params.setdefault("min_scale_runs", 4)
    proj = ScaleProjector(ot, **params).fit(_x(train), train.y)
    return proj.predict(_x(test), return_std=True)


def projector_residual_gp(train: ScaleRows, test: ScaleRows, *, folds: int = 5, target: str = TARGET):
    """The projector as the GP's mean function: ScaleGP on out-of-fold projector residuals (folds by mixture)."""
    ot = store_ot(train, target)
    X, Xt = _x(train), _x(test)
    ids = np.unique(train.mixture)
    fold_of = dict(zip(ids, np.random.default_rng(0).permutation(len(ids)) % folds))
    fold = np.array([fold_of[m] for m in train.mixture])
    oof = np.empty(len(train.y))
    for f in range(folds):
        te = fold == f
        oof[te] = ScaleProjector(ot).fit(X[~te], train.y[~te]).predict(X[te])
    base = ScaleProjector(ot).fit(X, train.y).predict(Xt)
    gm, gs = ScaleGP().fit(X, train.y - oof).predict(Xt, return_std=True)
    return base + gm, gs


def _boot_rho(test: ScaleRows, mean: np.ndarray, d: float, reps: int = 1000) -> tuple[float, float]:
    """90% bootstrap interval (over the test mixtures) of the per-mixture Spearman at budget ``d``."""
    sub = test.rows(test.D == d)
    _, truth = sub.per_mixture()
    _, pred = sub.per_mixture(mean[test.D == d])
    rng, out = np.random.default_rng(0), []
    for _ in range(reps):
        i = rng.integers(0, len(truth), len(truth))
        if len(set(i.tolist())) > 3:
            out.append(spearmanr(pred[i], truth[i])[0])
    lo, hi = np.nanpercentile(out, [5, 95])
    return float(lo), float(hi)


def stage1_loo(rows: ScaleRows, ot: MixtureOT) -> dict:
    """Leave-one-run-out within each (size, budget): stage 1 with OT, stage 1 with OT(p) := 0, the default GP."""
    out = {}
    for n in rows.sizes:
        for d in rows.budgets:
            at = (rows.N == n) & (rows.D == d)
            W, y = rows.W[at], rows.y[at]
            preds = {"stage 1": np.empty(len(y)), "stage 1 without OT": np.empty(len(y)), "default GP": np.empty(len(y))}
            o = ot.distances(W)
            for i in range(len(y)):
                m = np.arange(len(y)) != i
                preds["stage 1"][i] = stage1_fit(None, W[m], y[m], o[m], "auto").predict(W[i:i + 1], ot_values=o[i:i + 1])[0]
                preds["stage 1 without OT"][i] = stage1_fit(None, W[m], y[m], 0 * o[m], "auto").predict(W[i:i + 1], ot_values=o[:1] * 0)[0]
                preds["default GP"][i] = get_estimator("default", random_state=0).fit(W[m], y[m]).predict(W[i:i + 1])[0]
            out[(n, d)] = {k: (float(spearmanr(p, y)[0]), float(np.mean(np.abs(p - y))), len(y)) for k, p in preds.items()}
            print(f"  N={int(n):7d} D={int(d):7d} runs={len(y):3d}: " + "; ".join(
                f"{k} rho {v[0]:.3f} MAE {v[1]:.4f}" for k, v in out[(n, d)].items()), flush=True)
    return out


def evaluate(store: str, target: str = TARGET, loo: bool = False) -> dict:
    rows = scale_rows(store, target)
    train, test = rows.split()
    print(f"store {store}: {len({r.run_id for r in rows.records})} runs; {len(train.y)} training rows at sizes "
          f"{[int(n) for n in train.sizes]}, {len(test.y)} test rows at {int(test.N.max())} "
          f"({len(np.unique(test.mixture))} mixtures); budgets {[int(d) for d in rows.budgets]}")
    t = time.perf_counter()
    ot = store_ot(train, target)
    print(f"OT features: {time.perf_counter() - t:.1f} s ({ot.cost.shape[0]} source docs, {ot.n_target} target docs)")
    X, Xt = _x(train), _x(test)
    preds = {}
    t = time.perf_counter()
    proj = ScaleProjector(ot).fit(X, train.y)
    preds["ot-projector"] = (*proj.predict(Xt, return_std=True), time.perf_counter() - t)
    print(f"ot-projector: stage-1 alpha per scale {[s.alpha for s in proj.stages_]}, effect_alpha {proj.effect_alpha_:.3g}, "
          f"line misfit sd {np.sqrt(proj.line_var_):.4f}")
    for label, params in (("ot-projector interaction", {"interaction": True}), ("ot-projector effect=0", {"effect_alpha": 0.0}),
                          ("ot-projector effect=inf", {"effect_alpha": np.inf}),
                          ("ot-projector alpha=1e-3 effect=0", {"alpha": 1e-3, "effect_alpha": 0.0})):
        t = time.perf_counter()
        preds[label] = (*ScaleProjector(ot, **params).fit(X, train.y).predict(Xt, return_std=True), time.perf_counter() - t)
    t = time.perf_counter()
    zero = ScaleProjector().fit(X, train.y, ot_values=np.zeros(len(X)))
    preds["projector without OT"] = (*zero.predict(Xt, return_std=True, ot_values=np.zeros(len(Xt))), time.perf_counter() - t)
    t = time.perf_counter()
    gm, gs = ScaleGP().fit(X, train.y).predict(Xt, return_std=True)
    preds["scale-gp"] = (gm, gs, time.perf_counter() - t)
    pm, ps = preds["ot-projector"][:2]
    wp, wg = 1 / ps**2, 1 / gs**2
    preds["precision-weighted"] = ((wp * pm + wg * gm) / (wp + wg), 1 / np.sqrt(wp + wg), 0.0)
    preds["average"] = (0.5 * (pm + gm), np.sqrt(0.25 * ps**2 + 0.25 * gs**2), 0.0)
    t = time.perf_counter()
    preds["gp on projector residuals"] = (*projector_residual_gp(train, test, target=target), time.perf_counter() - t)
    out = {}
    print(f"{'model':34s} {'budget':>7s} {'Spearman':>8s} {'90% boot':>12s} {'MAE':>7s} {'regret@1':>8s} {'±1σ':>5s} "
          f"{'±2σ':>5s} {'mean σ':>7s} {'s':>5s}")
    for label, (m, s, sec) in preds.items():
        out[label] = {"by_budget": score(test, np.asarray(m, float), np.asarray(s, float)), "s": sec}
        for d, f in out[label]["by_budget"].items():
            lo, hi = _boot_rho(test, np.asarray(m, float), d)
            f["boot90"] = (lo, hi)
            print(f"{label:34s} {int(d):7d} {f['spearman']:8.3f} [{lo:5.2f},{hi:5.2f}] {f['mae']:7.4f} {f['regret_at_1']:8.4f} "
                  f"{f['within_1sd']:5.2f} {f['within_2sd']:5.2f} {np.mean(s[test.D == d]):7.4f} {sec:5.1f}")
    big = train.N == max(train.N)
    rank = {}
    for d in test.budgets:  # same-mixture rank baseline: own loss at the largest trained size
        tr, te = train.rows(big & (train.D == d)), test.rows(test.D == d)
        ids_tr, m_tr = tr.per_mixture()
        ids_te, y_te = te.per_mixture()
        rank[d] = float(spearmanr(m_tr[np.isin(ids_tr, ids_te)], y_te[np.isin(ids_te, ids_tr)])[0])
    print("same mixture at the largest trained size, Spearman: " + ", ".join(f"{int(d)}: {v:.3f}" for d, v in rank.items()))
    out["same mixture"] = rank
    if loo:
        print("within-scale leave-one-run-out (every size, incl. the largest):")
        out["stage1_loo"] = stage1_loo(rows, ot)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a store swept with scale_embedded.yaml (read only)")
    ap.add_argument("--target", default=TARGET)
    ap.add_argument("--loo", action="store_true", help="also leave-one-run-out within each scale (about a minute)")
    args = ap.parse_args(argv)
    start = provenance()
    res = evaluate(args.store, args.target, loo=args.loo)
    print(machine_line(start, provenance()))
    top = max(res["ot-projector"]["by_budget"])
    p, g = res["ot-projector"]["by_budget"][top], res["scale-gp"]["by_budget"][top]
    return print_summary({"rho_projector": p["spearman"], "rho_scale_gp": g["spearman"], "mae_projector": p["mae"],
                          "mae_scale_gp": g["mae"], "cover2_projector": p["within_2sd"], "cover2_scale_gp": g["within_2sd"]})


if __name__ == "__main__":
    main()
