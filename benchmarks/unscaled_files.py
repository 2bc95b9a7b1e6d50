"""Two model sizes imported with no scale and no mixtures in common: does `fit`'s residual check tell them from one size?

    python benchmarks/unscaled_files.py            # 4 targets, the figures in RESULTS.md
    python benchmarks/unscaled_files.py --smoke    # one target (CI)

RegMix's 1M train table (512 runs) is imported with no --model-params or --tokens, once beside its 1M test table (256
other mixtures, the same size: must not be named) and once beside its 60M test table (the same 256 mixtures at 60M:
must be named). For each pair and target it prints the share of cross-file pairs where one file's residual (after one
ridge fit of the target on the weights) is above the other's, the gap in within-file residual sds, and whether `fit`'s
note (`mixopt.runs.groups.residual_gap_note`: share >= 0.95 and gap >= 2 sds) names the pair. The last line is the
``summary:`` line: the worst margins on each side.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, print_summary, provenance  # noqa: E402
from _regmix_data import data_dir  # noqa: E402

from mixopt.runs.groups import RESIDUAL_AUC, RESIDUAL_SDS, _source_files, residual_gap_note, residual_gaps  # noqa: E402
from mixopt.runs.store import RunStore  # noqa: E402
from mixopt.runs.table import records_table  # noqa: E402
from mixopt.runs.tables_io import import_runs  # noqa: E402

TARGETS = ("mean:all-domains", "metric/the_pile_pile_cc_val_loss", "metric/the_pile_github_val_loss",
           "metric/the_pile_arxiv_val_loss")
PAIRS = {"1m+1m": "1m", "1m+60m": "60m"}  # the train table's partner: the test table at that size


def measure(directory: Path, test: str, targets, work: Path) -> list[dict]:
    """Import the 1M train table and one test table (no scale) into a fresh store; the residual check per target."""
    store = RunStore(work / f"store-{test}")
    for mix, met in (("train_mixture_1m.csv", "train_pile_loss_1m.csv"), (f"test_mixture_{test}.csv", f"test_pile_loss_{test}.csv")):
        import_runs(store, directory / mix, directory / met)
    runs = [r for r in store.records() if r.is_usable()]
    table = records_table(runs)
    files = _source_files(runs)
    out = []
    for target in targets:
        y = table.target(target)
        ((a, b, share, gap, sd),) = residual_gaps(files, table.W, y)
        out.append({"target": target, "share": max(share, 1 - share), "sds": abs(gap) / sd,
                    "named": bool(residual_gap_note(files, table.W, y))})
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="folder of RegMix's tables (default: ../shared/anchors/regmix, else the repo's copy)")
    ap.add_argument("--smoke", action="store_true", help="one target")
    args = ap.parse_args(argv)
    start = provenance()
    directory = data_dir(args.data)
    targets = TARGETS[:1] if args.smoke else TARGETS
    work = Path(tempfile.mkdtemp(prefix="unscaled-"))
    try:
        rows = {name: measure(directory, test, targets, work) for name, test in PAIRS.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"RegMix 1M train table + a test table, both imported with no scale; thresholds: share >= {RESIDUAL_AUC}, "
          f"gap >= {RESIDUAL_SDS} within-file sds")
    print(f"{'pair':<8} {'target':<34} {'share':>6} {'sds':>5}  named by fit")
    for name, per in rows.items():
        for r in per:
            print(f"{name:<8} {r['target']:<34} {r['share']:>6.3f} {r['sds']:>5.2f}  {'yes' if r['named'] else 'no'}")
    print(machine_line(start, provenance()))
    same, two = rows["1m+1m"], rows["1m+60m"]
    return print_summary({
        "same_size_max_share": round(max(r["share"] for r in same), 3), "same_size_max_sds": round(max(r["sds"] for r in same), 2),
        "two_sizes_min_share": round(min(r["share"] for r in two), 3), "two_sizes_min_sds": round(min(r["sds"] for r in two), 2),
        "same_size_named": sum(r["named"] for r in same), "two_sizes_named": sum(r["named"] for r in two),
        "targets": len(targets), "met": all(r["named"] for r in two) and not any(r["named"] for r in same),
    })


if __name__ == "__main__":
    main()
