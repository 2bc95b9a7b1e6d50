"""Averaged targets: one GP on the mean vs the mean of per-domain GPs (MetricAverage, what `mixopt fit` ships).

    mixopt demo --out /tmp/mixopt-demo
    python benchmarks/average_target.py --store /tmp/mixopt-demo/store   # the figures in RESULTS.md
    python benchmarks/average_target.py                                  # sweeps the demo config first (minutes)
    python benchmarks/average_target.py --smoke                          # sweeps 16 tiny runs first (seconds; CI)

Prints 5-fold CV Spearman / MAE on `mean:all-domains` of both models, for
several fold seeds; the last line is the ``summary:`` line (goal: the per-domain
average ranks better than one model of the mean).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402

from mixopt.config import config_from_dict, load_config, packaged_config  # noqa: E402
from mixopt.runs.driver import run_sweep  # noqa: E402
from mixopt.runs.store import RunStore  # noqa: E402
from mixopt.runs.table import store_table  # noqa: E402
from mixopt.surrogates import MetricAverage, cross_validate, get_estimator  # noqa: E402

TARGET = "mean:all-domains"
SMOKE = {  # 16 sampled runs of a tiny proxy on the embedded corpus: a few seconds of training
    "name": "average-target-smoke", "seed": 0, "runs": 16, "data": {"corpus": "embedded", "max_documents": 200},
    "proxy": {"n_layer": 1, "n_embd": 32, "head_size": 32, "block_size": 32, "batch_size": 8, "tokens": 8192,
              "checkpoints": [1.0], "eval_tokens": 1024, "device": "cpu", "dtype": "float32"},
    "sampler": {"two_phase_runs": 0, "noise_seeds": 1},
}


def build_store(smoke: bool, where: Path) -> Path:
    cfg = config_from_dict(SMOKE, where="average_target.SMOKE") if smoke else load_config(packaged_config("demo"))
    store = where / "store"
    run_sweep(cfg, store, show_progress=False)
    return store


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=None, help="a run store with val/* metrics (default: sweep one first)")
    ap.add_argument("--seeds", type=int, default=None, help="fold seeds (default 5; smoke 2)")
    ap.add_argument("--smoke", action="store_true", help="sweep 16 tiny runs, 2 fold seeds (CI)")
    args = ap.parse_args(argv)
    start = provenance()
    seeds = args.seeds or (2 if args.smoke else 5)
    with tempfile.TemporaryDirectory(prefix="mixopt-average-") as tmp:
        store = Path(args.store) if args.store else build_store(args.smoke, Path(tmp))
        if not (store / "runs").exists():
            raise SystemExit(f"no run store at {store}; run `mixopt demo --out {store.parent}` first, or omit --store")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = store_table(RunStore(store, create=False))
            Y, weights = table.component_matrix(TARGET)
            y = table.target(TARGET)
            rows = {"direct": [], "average": []}
            for seed in range(seeds):
                rows["direct"].append(cross_validate(get_estimator("default"), table.W, y, k=5, seed=seed))
                rows["average"].append(cross_validate(MetricAverage(estimator="default", weights=weights), table.W, Y, k=5, seed=seed))
    print(f"{len(y)} runs, {Y.shape[1]} domains, target {TARGET}, 5-fold CV over {seeds} fold seeds")
    out = {}
    for name, cvs in rows.items():
        rho = float(np.mean([c["spearman"] for c in cvs]))
        mae = float(np.mean([c["mae"] for c in cvs]))
        out[name] = (rho, mae)
        per_seed = ", ".join(f"{c['spearman']:.3f}" for c in cvs)
        print(f"{name:8s} spearman {rho:.3f} (per seed {per_seed})  MAE {mae:.4f}")
    print(machine_line(start, provenance()))
    return print_summary({"rho_direct": out["direct"][0],
                          **goal("rho_average", out["average"][0], out["direct"][0]),
                          "mae_direct": out["direct"][1], "mae_average": out["average"][1], "runs": len(y),
                          "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
