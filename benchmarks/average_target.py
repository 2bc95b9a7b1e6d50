"""Averaged targets: one GP on the mean vs the mean of per-domain GPs (MetricAverage).

    mixopt demo --out /tmp/mixopt-demo          # or any store with val/* metrics
    python benchmarks/average_target.py --store /tmp/mixopt-demo/store

Prints 5-fold CV Spearman / MAE of both on `mean:all-domains`, for several fold seeds.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="/tmp/mixopt-demo/store")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    from pathlib import Path

    from mixopt.runs.store import RunStore
    from mixopt.runs.table import store_table
    from mixopt.surrogates import MetricAverage, cross_validate, get_estimator

    if not (Path(args.store) / "runs").exists():
        print(f"SKIP: no run store at {args.store}; run `mixopt demo --out {Path(args.store).parent}` first")
        return 0
    warnings.simplefilter("ignore")
    table = store_table(RunStore(args.store, create=False))
    cols, weights = table.target_components("mean:all-domains")
    y = table.target("mean:all-domains")
    Y = np.column_stack([table.metrics[c] for c in cols])
    rows = {"direct": [], "average": []}
    for seed in range(args.seeds):
        rows["direct"].append(cross_validate(get_estimator("default"), table.W, y, k=5, seed=seed))
        rows["average"].append(cross_validate(MetricAverage("default", weights=weights), table.W, Y, k=5, seed=seed))
    print(f"{len(y)} runs, {len(cols)} domains, target mean:all-domains, 5-fold CV over {args.seeds} fold seeds")
    out = {}
    for name, cvs in rows.items():
        rho = np.mean([c["spearman"] for c in cvs])
        mae = np.mean([c["mae"] for c in cvs])
        out[name] = (rho, mae)
        per_seed = ", ".join(f"{c['spearman']:.3f}" for c in cvs)
        print(f"{name:8s} spearman {rho:.3f} (per seed {per_seed})  MAE {mae:.4f}")
    print(f"rho_direct={out['direct'][0]:.3f} rho_average={out['average'][0]:.3f} "
          f"mae_direct={out['direct'][1]:.4f} mae_average={out['average'][1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
