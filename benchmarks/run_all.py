"""Run every benchmark and print each figure next to its goal, flagging misses.

    python benchmarks/run_all.py             # the sizes quoted in RESULTS.md (long: tens of minutes on 2 cores)
    python benchmarks/run_all.py --smoke     # tiny sizes, as CI runs them (a few minutes)
    python benchmarks/run_all.py --only surrogate_regmix ot_speed

A benchmark is every ``benchmarks/*.py`` whose name does not start with ``_``
(this runner aside). Each runs in its own process and ends with one
``summary: key=value ...`` line (see ``_common.py``); a figure ``x`` may carry
``goal_x`` and ``met_x``. Exit status: 1 when a benchmark failed or printed no
summary line; with ``--strict`` also when a goal was missed.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_line, parse_summary, provenance

HERE = Path(__file__).resolve().parent
PY = sys.executable


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all")


def run_one(name: str, args: list[str]) -> tuple[float, int, str]:
    cmd = [PY, str(HERE / f"{name}.py"), *args]
    print(f"$ {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    sys.stdout.write(proc.stdout[-3000:])
    if proc.returncode:
        sys.stdout.write(proc.stderr[-2000:])
    return dt, proc.returncode, proc.stdout


def demo_wall_time(smoke: bool) -> tuple[float, int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        config = "tiny" if smoke else "demo"
        cmd = [PY, "-m", "mixopt.cli.main", "demo", "--out", tmp, "--config", config]
        print(f"$ {shlex.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    return dt, proc.returncode, f"summary: demo_seconds={dt:.1f} goal_demo_seconds=300 met_demo_seconds={'yes' if dt <= 300 else 'no'}"


def figure_rows(name: str, fields: dict) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, figure, value, goal, status) for every figure of one summary line."""
    rows = []
    for key, value in fields.items():
        if key.startswith(("goal_", "met_")) or key == "met":
            continue
        goal = fields.get(f"goal_{key}")
        met = fields.get(f"met_{key}")
        status = {"yes": "met", "no": "**MISSED**"}.get(met, "-")
        rows.append((name, key, _show(value), "-" if goal is None else _show(goal), status))
    if "met" in fields:
        rows.append((name, "(overall)", "", "", {"yes": "met", "no": "**MISSED**"}.get(fields["met"], str(fields["met"]))))
    return rows


def _show(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (what CI runs); goals refer to the full sizes")
    ap.add_argument("--only", nargs="*", help="run only these benchmarks (names without .py; 'demo' for the demo)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed, too")
    args = ap.parse_args(argv)
    start = provenance()
    names = [n for n in discover() if not args.only or n in args.only]
    results = []  # (name, seconds, rc, fields or error)
    for name in names:
        dt, rc, out = run_one(name, ["--smoke"] if args.smoke else [])
        try:
            fields = parse_summary(out)
        except ValueError as exc:
            fields, rc = str(exc), rc or 1
        results.append((name, dt, rc, fields))
    if not args.only or "demo" in args.only:
        dt, rc, line = demo_wall_time(args.smoke)
        results.append(("demo", dt, rc, parse_summary(line)))

    print(f"\n{machine_line(start, provenance())}; mode {'smoke (goals refer to full sizes)' if args.smoke else 'full'}")
    print("\n| benchmark | seconds | exit |\n|---|---:|---:|")
    for name, dt, rc, _ in results:
        print(f"| {name} | {dt:.0f} | {rc} |")
    print("\n| benchmark | figure | measured | goal | status |\n|---|---|---:|---:|---|")
    missed = failed = 0
    for name, _, rc, fields in results:
        if isinstance(fields, str):
            print(f"| {name} | (no summary) | {fields} | - | **FAILED** |")
            failed += 1
            continue
        failed += rc != 0
        for row in figure_rows(name, fields):
            missed += "MISSED" in row[4]
            print("| " + " | ".join(row) + " |")
    print(f"\n{len(results)} benchmark(s), {failed} failed, {missed} goal(s) missed")
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
