"""Part (ii) of the scale benchmark: the embedded corpus at 3 proxy sizes, predicting the largest from the two smaller.

The store is swept from ``benchmarks/scale_embedded.yaml`` (resumable; ``--smoke``
uses a tiny version of it). Every candidate fits on the runs of the two smaller
sizes (both budgets) and predicts each measurement of the largest size; the
figures compare, per budget, the per-mixture means (seed repeats averaged) with
the truth: Spearman, MAE, regret@1 and ±1σ/±2σ coverage of single runs. Baselines:

- ``same mixture at m``: the mixture's own loss at the largest trained size (rank only);
- ``per-mixture power law``: ``log L = a + b log N + c log D`` fitted per mixture on its
  4 smaller-size measurements, evaluated at the largest size.

Candidates from helpers' modules (``_scale_cand_*.py``, ``predict_rows(train, test)``)
are added when present.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

from _scale_rows import ScaleRows, scale_rows

from mixopt.config import config_from_dict, load_config
from mixopt.errors import MixoptError
from mixopt.pipeline import sweep
from mixopt.surrogates.nested_law import NestedMixingLaw
from mixopt.surrogates.scale import ScaleGP, scale_inputs
from mixopt.surrogates.shift import ShiftGP

CONFIG = Path(__file__).resolve().parent / "scale_embedded.yaml"
SMOKE = {  # the same design at seconds' cost: 3 sizes of a 1-layer proxy, 16k tokens
    "proxy": {"n_layer": 1, "block_size": 64, "batch_size": 8, "tokens": 16384, "eval_tokens": 2048},
    "data": {"corpus": "embedded", "max_documents": 300},
    "sizes": [{"name": "s", "n_embd": 16, "head_size": 16, "runs": 5}, {"name": "m", "n_embd": 32, "head_size": 32, "runs": 4},
              {"name": "l", "n_embd": 64, "runs": 3}],
}
PLUGINS = ("_scale_cand_annealing", "_scale_cand_projector", "_scale_cand_curvature")


LARGE_RUNS = {"s": 30, "m": 20, "l": 16}  # on the large corpus (`mixopt corpus build --size large`): fewer runs per size


def embedded_config(smoke: bool, corpus_dir: str | Path | None = None):
    """The benchmark's sweep config; ``corpus_dir``: the 7 domains of a corpus built by `mixopt corpus build` instead."""
    cfg = load_config(CONFIG)
    raw = cfg.model_dump(mode="json")
    if corpus_dir is not None:
        files = sorted(Path(corpus_dir).glob("*.jsonl.gz"))
        if not files:
            raise SystemExit(f"No <domain>.jsonl.gz in {corpus_dir}. Build it with `mixopt corpus build --size large --out DIR`.")
        raw["data"].update(corpus="none", domains=[{"name": f.name.removesuffix(".jsonl.gz"), "path": str(f), "format": "jsonl"}
                                                  for f in files])
        raw["sizes"] = [{**sz, "runs": LARGE_RUNS.get(sz["name"], sz["runs"])} for sz in raw["sizes"]]
        raw["name"] = "scale-large-corpus"
    if not smoke:
        return config_from_dict(raw, where=f"scale_embedded.yaml{' on ' + str(corpus_dir) if corpus_dir else ''}")
    raw["proxy"].update(SMOKE["proxy"])
    raw["data"].update(SMOKE["data"] if corpus_dir is None else {"max_documents": SMOKE["data"]["max_documents"]})
    raw["sizes"] = SMOKE["sizes"]
    return config_from_dict(raw, where="scale_embedded.yaml (smoke)")


def power_law_baseline(train: ScaleRows, test: ScaleRows) -> np.ndarray:
    """Per mixture: least squares ``log L = a + b log N + c log D`` on its smaller-size rows, at each test row."""
    out = np.full(len(test.y), np.nan)
    for mid in np.unique(test.mixture):
        tr = train.mixture == mid
        A = np.column_stack([np.ones(tr.sum()), np.log(train.N[tr]), np.log(train.D[tr])])
        if tr.sum() < 3 or np.linalg.matrix_rank(A) < 3:
            continue
        coef = np.linalg.lstsq(A, np.log(train.y[tr]), rcond=None)[0]
        te = test.mixture == mid
        out[te] = np.exp(coef[0] + coef[1] * np.log(test.N[te]) + coef[2] * np.log(test.D[te]))
    return out


def same_mixture_baseline(train: ScaleRows, test: ScaleRows) -> np.ndarray:
    """Each test row gets its mixture's mean loss at the largest trained size and the same budget."""
    big = train.N == max(train.N)
    out = np.full(len(test.y), np.nan)
    for i, (mid, d) in enumerate(zip(test.mixture, test.D)):
        m = big & (train.mixture == mid) & (train.D == d)
        if m.any():
            out[i] = train.y[m].mean()
    return out


def _gp(est):
    def run(train: ScaleRows, test: ScaleRows):
        est.fit(scale_inputs(train.W, train.N, train.D), train.y)
        return est.predict(scale_inputs(test.W, test.N, test.D), return_std=True)
    return run


def candidates() -> list[tuple[str, object, bool]]:
    """(label, predict(train, test) -> mean or (mean, std), ranks_only)."""
    out = [("scale-gp", _gp(ScaleGP()), False), ("shift-gp", _gp(ShiftGP()), False),
           ("scale-gp offsets", _gp(ScaleGP(length_scale=np.inf)), False),
           ("nested-law", _gp(NestedMixingLaw()), False)]
    for name in PLUGINS:
        if (Path(__file__).resolve().parent / f"{name}.py").exists():
            mod = importlib.import_module(name)
            out.append((getattr(mod, "LABEL", name.removeprefix("_scale_cand_")), mod.predict_rows, False))
    out += [("same mixture at m", same_mixture_baseline, True), ("per-mixture power law", power_law_baseline, True)]
    return out


def score(test: ScaleRows, mean: np.ndarray, std: np.ndarray | None) -> dict:
    """Figures per budget on per-mixture means, plus coverage of single runs."""
    out = {}
    for d in test.budgets:
        at = test.D == d
        sub = test.rows(at)
        ids, truth = sub.per_mixture()
        _, pred = sub.per_mixture(mean[at])
        ok = np.isfinite(pred)
        r = {"spearman": float(spearmanr(pred[ok], truth[ok])[0]) if ok.sum() > 2 else np.nan,
             "mae": float(np.mean(np.abs(pred[ok] - truth[ok]))),
             "regret_at_1": float(truth[ok][np.argmin(pred[ok])] - truth.min()),
             "n": int(len(ids)), "truth": truth, "pred": pred}
        if std is not None:
            z = np.abs(mean[at] - sub.y) / np.maximum(std[at], 1e-12)
            r["within_1sd"], r["within_2sd"] = float(np.mean(z <= 1)), float(np.mean(z <= 2))
        else:
            r["within_1sd"] = r["within_2sd"] = np.nan
        out[d] = r
    return out


def rho_gap(a: dict, b: dict, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Spearman of ``a`` minus that of ``b`` on the same mixtures, with a 95% paired bootstrap interval over mixtures."""
    t, pa, pb = a["truth"], a["pred"], b["pred"]
    ok = np.isfinite(pa) & np.isfinite(pb)
    t, pa, pb = t[ok], pa[ok], pb[ok]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), (n_boot, len(t)))
    rt, ra, rb = (rankdata(v[idx], axis=1) for v in (t, pa, pb))  # ranks within each resample (ties averaged)

    def rho(x, y):
        x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1))
    gaps = rho(ra, rt) - rho(rb, rt)
    gaps = gaps[np.isfinite(gaps)]
    lo, hi = np.percentile(gaps, [2.5, 97.5]) if gaps.size else (np.nan, np.nan)
    return float(spearmanr(pa, t)[0] - spearmanr(pb, t)[0]), float(lo), float(hi)


def seed_noise(test: ScaleRows) -> tuple[float, float]:
    """(seed sd of the repeated mixtures at the largest size and final budget, sd of the mixture means there)."""
    at = test.D == max(test.D)
    sub = test.rows(at)
    ids, means = sub.per_mixture()
    dev = [sub.y[sub.mixture == i] - sub.y[sub.mixture == i].mean() for i in ids if (sub.mixture == i).sum() > 1]
    n = sum(len(v) for v in dev)
    sd = float(np.sqrt(sum((v**2).sum() for v in dev) / max(n - len(dev), 1))) if dev else np.nan
    return sd, float(np.std(means, ddof=1))


def part_embedded(store: str | Path, *, smoke: bool, corpus_dir: str | Path | None = None) -> dict:
    print(f"\n## (ii) {'Corpus ' + str(corpus_dir) if corpus_dir else 'Embedded corpus'}: predict the largest proxy size from the two smaller ones")
    cfg = embedded_config(smoke, corpus_dir)
    t = time.perf_counter()
    summary = sweep(cfg, store)
    print(f"sweep: {summary.trained} trained, {summary.skipped} already in {store} ({time.perf_counter() - t:.0f} s)")
    rows = scale_rows(store, cfg.propose.target)
    train, test = rows.split()
    print(f"sizes (non-embedding params): {[int(n) for n in rows.sizes]}; budgets (tokens): {[int(d) for d in rows.budgets]}; "
          f"{len(np.unique(train.mixture))} mixtures below the largest size, {len(np.unique(test.mixture))} at it")
    sd, spread = seed_noise(test)
    print(f"largest size, final budget: seed sd {sd:.4f}, sd of the mixture means {spread:.4f} (signal/noise {spread / sd:.1f})")
    results = {}
    for label, fn, ranks_only in candidates():
        t = time.perf_counter()
        try:
            out = fn(train, test)
        except MixoptError as exc:  # e.g. too few runs per scale for the nested law in --smoke
            print(f"{label}: not fitted ({exc})")
            continue
        mean, std = out if isinstance(out, tuple) else (out, None)
        results[label] = {"by_budget": score(test, np.asarray(mean, float), None if std is None else np.asarray(std, float)),
                          "ranks_only": ranks_only, "s": time.perf_counter() - t}
    print(f"{'model':24s} {'budget':>8s} {'Spearman':>8s} {'MAE':>7s} {'regret@1':>8s} {'±1σ':>5s} {'±2σ':>5s}")
    for label, r in results.items():
        for d, f in r["by_budget"].items():
            mae = f"({f['mae']:.4f})" if r["ranks_only"] and label.startswith("same") else f"{f['mae']:.4f}"
            print(f"{label:24s} {int(d):8d} {f['spearman']:8.4f} {mae:>7s} {f['regret_at_1']:8.4f} "
                  f"{f['within_1sd']:5.2f} {f['within_2sd']:5.2f}")
    print("(MAE of 'same mixture at m' is the level gap between sizes: it ranks only.)")
    base = results["same mixture at m"]["by_budget"]
    print("Spearman minus the same-mixture baseline's, 95% paired bootstrap over mixtures:")
    for label, r in results.items():
        if label == "same mixture at m":
            continue
        r["gap_vs_same"] = {d: rho_gap(f, base[d]) for d, f in r["by_budget"].items()}
        print(f"  {label:24s} " + "  ".join(f"{int(d)}: {g:+.4f} [{lo:+.4f}, {hi:+.4f}]" for d, (g, lo, hi) in r["gap_vs_same"].items()))
    return {"results": results, "seed_sd": sd, "signal_sd": spread, "budgets": rows.budgets}
