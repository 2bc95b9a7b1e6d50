"""The LR-annealing law as a candidate of the scale benchmark (``_scale_embedded.py`` picks up ``predict_rows``).

Each row's learning-rate areas come from its run record (``record_areas``): a
WSD branch follows the run to the fork, then its own decay; a cosine or
constant checkpoint follows the run's curve. Run as a script it prints the
held-out-largest-size figures of this candidate next to ``ScaleGP`` and, with
``--schedules``, the WSD -> cosine comparability check (stores swept from
configs like ``configs/demo.yaml`` with ``schedule: wsd`` / ``cosine``)::

    python benchmarks/_scale_cand_annealing.py --store /work/stores/scale3
    python benchmarks/_scale_cand_annealing.py --schedules WSD_STORE[,WSD_STORE2] COSINE_STORE
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale_rows import ScaleRows, scale_rows

from mixopt.surrogates.annealing import (
    DEFAULT_HALF_LIFE,
    DEFAULT_HALF_LIFE_UNIT,
    AnnealingLaw,
    record_inputs,
)
from mixopt.surrogates.scale import ScaleGP, scale_inputs

LABEL = "annealing-law"


def row_inputs(rows: ScaleRows, half_life: float = DEFAULT_HALF_LIFE, half_life_unit: str = DEFAULT_HALF_LIFE_UNIT) -> np.ndarray:
    """``[W | N | D | S1 | S2]`` (n, d + 4), the areas from each row's record and tokens."""
    return record_inputs(rows.records, rows.W, rows.N, rows.D, half_life=half_life, half_life_unit=half_life_unit)


def predict_rows(train: ScaleRows, test: ScaleRows, **params) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``AnnealingLaw(**params)`` on ``train``'s rows, return (mean, std) at ``test``'s rows."""
    hl = {k: params[k] for k in ("half_life", "half_life_unit") if k in params}
    model = AnnealingLaw(**params).fit(row_inputs(train, **hl), train.y)
    return model.predict(row_inputs(test, **hl), return_std=True)


def _figures(test: ScaleRows, mean, std) -> dict:
    """``_scale_embedded.score``'s figures per budget, plus the mean predictive std."""
    from _scale_embedded import score  # imported here: _scale_embedded loads this module as a candidate
    return {int(d): {**f, "std": float(np.mean(std[test.D == d]))} for d, f in score(test, mean, std).items()}


def _print(label: str, figs: dict) -> None:
    for d, f in figs.items():
        print(f"{label:34s} D={d:>7d} n={f['n']:3d} spearman={f['spearman']:.3f} mae={f['mae']:.4f} "
              f"within_1sd={f['within_1sd']:.2f} within_2sd={f['within_2sd']:.2f} mean_std={f['std']:.4f}")


def held_out_size(store: str, variants: dict) -> None:
    """Fit on the smaller sizes, predict the largest: each variant of the law and ScaleGP."""
    rows = scale_rows(store)
    train, test = rows.split()
    print(f"store={store} rows={len(rows.y)} sizes={rows.sizes} budgets={rows.budgets} train={len(train.y)} test={len(test.y)}")
    for label, params in variants.items():
        _print(label, _figures(test, *predict_rows(train, test, **params)))
    gp = ScaleGP().fit(scale_inputs(train.W, train.N, train.D), train.y)
    _print("scale-gp", _figures(test, *gp.predict(scale_inputs(test.W, test.N, test.D), return_std=True)))


def schedules(fit_stores: list[str], test_store: str, variants: dict) -> None:
    """Fit on the WSD stores' measurements, predict the cosine store's checkpoints (same mixtures, one size)."""
    parts = [scale_rows(s) for s in fit_stores]
    train = ScaleRows(parts[0].domains, np.vstack([p.W for p in parts]), np.concatenate([p.N for p in parts]),
                      np.concatenate([p.D for p in parts]), np.concatenate([p.y for p in parts]),
                      [r for p in parts for r in p.records], np.concatenate([p.mixture for p in parts]))
    test = scale_rows(test_store)
    print(f"fit on {fit_stores} ({len(train.y)} rows), predict {test_store} ({len(test.y)} rows)")
    for label, params in variants.items():
        mean, std = predict_rows(train, test, **params)
        err = mean - test.y
        print(f"{label:34s} all checkpoints: mae={np.mean(np.abs(err)):.4f} bias={np.mean(err):+.4f} "
              f"within_2sd={np.mean(np.abs(err) <= 2 * std):.2f}")
        _print("  " + label, _figures(test, mean, std))
    gp = ScaleGP().fit(scale_inputs(train.W, train.N, train.D), train.y)  # tokens only: blind to the schedule
    mean, std = gp.predict(scale_inputs(test.W, test.N, test.D), return_std=True)
    print(f"{'scale-gp (tokens, no areas)':34s} all checkpoints: mae={np.mean(np.abs(mean - test.y)):.4f} "
          f"bias={np.mean(mean - test.y):+.4f} within_2sd={np.mean(np.abs(mean - test.y) <= 2 * std):.2f}")
    # the naive reading of a checkpoint: the WSD loss at the same tokens (no LR areas)
    base = np.array([train.y[(train.D == d) & (train.mixture == m)].mean() if ((train.D == d) & (train.mixture == m)).any() else np.nan
                     for d, m in zip(test.D, test.mixture)])
    ok = np.isfinite(base)
    print(f"{'same mixture, WSD at same tokens':34s} all checkpoints: mae={np.mean(np.abs(base[ok] - test.y[ok])):.4f} "
          f"bias={np.mean(base[ok] - test.y[ok]):+.4f} (n={ok.sum()})")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", help="multi-size store (e.g. one swept from benchmarks/scale_embedded.yaml)")
    ap.add_argument("--schedules", nargs=2, metavar=("WSD_STORES", "COSINE_STORE"), help="comma-separated WSD stores, then a cosine store")
    ap.add_argument("--half-lives", default=f"{DEFAULT_HALF_LIFE}", help="comma-separated half-lives (fractions of the run) to compare")
    args = ap.parse_args(argv)
    variants = {f"annealing-law hl={h}": {"half_life": float(h)} for h in args.half_lives.split(",")}
    variants[f"annealing-law hl={DEFAULT_HALF_LIFE} mixture_gain"] = {"mixture_gain": True}
    variants[f"annealing-law hl={DEFAULT_HALF_LIFE} + scale-gp"] = {"mixture_model": "scale-gp"}
    if args.store:
        held_out_size(args.store, variants)
    if args.schedules:
        schedules(args.schedules[0].split(","), args.schedules[1], variants)


if __name__ == "__main__":
    main()
