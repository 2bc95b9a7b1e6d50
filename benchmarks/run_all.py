"""Run every benchmark and print each figure next to its goal, flagging misses and failures.

    python benchmarks/run_all.py             # each script at its default size (long: tens of minutes on 2 cores)
    python benchmarks/run_all.py --smoke     # tiny sizes, as CI runs them (a few minutes)
    python benchmarks/run_all.py --only surrogate_regmix ot_speed
    python benchmarks/run_all.py --only verify_upsampling --args "verify_upsampling=--case cap --quick --seeds 8"

A benchmark is every ``benchmarks/*.py`` whose name does not start with ``_``
(this runner aside), plus ``demo`` (the wall time of ``mixopt demo``). Each
runs in its own process **with no arguments** (``--smoke`` only with
``--smoke``; more with ``--args NAME=ARGS``), so the full mode measures each
script's *default* size. That is not always the size of the command RESULTS.md
records for a figure (e.g. ``verify_upsampling.py --case cap --quick --seeds
8``, ``mixture_reuse.py --proxy-steps 160 --seeds 8 --repeats 4``,
``load_throughput.py`` at 32,768 tokens, ``end_phase_gain.py --pair-mults
1,2,4``, and every command that needs ``--store``): rerun those commands to
reproduce a recorded figure.

Each benchmark ends with one ``summary: key=value ...`` line (see
``_common.py``); a figure ``x`` may carry ``goal_x`` and ``met_x``, and a
verdict ``met_x`` without a figure ``x`` is reported on its own row. A
benchmark that exits non-zero is reported as **FAILED**, its verdicts are not
counted as met, and the tail of its stderr is printed under the tables. The
last line is run_all's own summary: ``summary: benchmarks=N failed=F missed=M
goals_met=K mode=full|smoke``. Exit status: 1 when a benchmark failed or
printed no summary line; with ``--strict`` also when a goal was missed.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from _common import machine_line, parse_summary, print_summary, provenance

HERE = Path(__file__).resolve().parent
PY = sys.executable
DEMO_GOAL_S = 300
TAIL_LINES = 20  # lines of a failed benchmark's stderr shown under the tables


class Result(NamedTuple):
    name: str
    seconds: float
    rc: int
    fields: dict | str  # the parsed summary, or why there is none
    stderr: str = ""


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all")


def run_one(name: str, args: list[str]) -> Result:
    cmd = [PY, str(HERE / f"{name}.py"), *args]
    print(f"$ {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    sys.stdout.write(proc.stdout[-3000:])
    if proc.returncode:
        sys.stdout.write(proc.stderr[-2000:])
    return _result(name, dt, proc.returncode, proc.stdout, proc.stderr)


def _result(name: str, dt: float, rc: int, stdout: str, stderr: str) -> Result:
    try:
        fields = parse_summary(stdout)
    except ValueError as exc:
        fields, rc = str(exc), rc or 1
    return Result(name, dt, rc, fields, stderr)


def demo_wall_time(smoke: bool) -> Result:
    """``mixopt demo``'s wall time; met only when the demo also exited 0."""
    with tempfile.TemporaryDirectory() as tmp:
        config = "tiny" if smoke else "demo"
        cmd = [PY, "-m", "mixopt.cli.main", "demo", "--out", tmp, "--config", config]
        print(f"$ {shlex.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    if proc.returncode:
        sys.stdout.write(proc.stdout[-2000:] + proc.stderr[-2000:])
    met = proc.returncode == 0 and dt <= DEMO_GOAL_S
    line = f"summary: demo_seconds={dt:.1f} goal_demo_seconds={DEMO_GOAL_S} met_demo_seconds={'yes' if met else 'no'}"
    return Result("demo", dt, proc.returncode, parse_summary(line), proc.stderr or proc.stdout)


STATUS = {"yes": "met", "no": "**MISSED**"}


def figure_rows(name: str, fields: dict) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, figure, value, goal, status) for every figure of one summary line, and one row for each verdict
    ``met_x`` or goal ``goal_x`` whose figure ``x`` the line does not carry (its figure shows as ``-``)."""
    rows = []
    for key, value in fields.items():
        if key.startswith(("goal_", "met_")) or key == "met":
            continue
        goal = fields.get(f"goal_{key}")
        met = fields.get(f"met_{key}")
        status = STATUS.get(met, "-")
        rows.append((name, key, _show(value), "-" if goal is None else _show(goal), status))
    orphans = dict.fromkeys(k.partition("_")[2] for k in fields if k.startswith(("goal_", "met_")))
    for fig in (f for f in orphans if f and f not in fields):
        goal, met = fields.get(f"goal_{fig}"), fields.get(f"met_{fig}")
        rows.append((name, fig, "-", "-" if goal is None else _show(goal), STATUS.get(met, "-" if met is None else str(met))))
    if "met" in fields:
        rows.append((name, "(overall)", "", "", STATUS.get(fields["met"], str(fields["met"]))))
    return rows


def report_rows(result: Result) -> list[tuple[str, str, str, str, str]]:
    """The table rows of one benchmark. A process that failed gets a **FAILED** row first, and none of its verdicts
    reads "met": each becomes "**FAILED** (exit N)"; without a summary line there is only the FAILED row."""
    name, _, rc, fields, _ = result
    if isinstance(fields, str):
        return [(name, "(no summary)", _cell(fields), "-", f"**FAILED** (exit {rc})")]
    rows = figure_rows(name, fields)
    if rc == 0:
        return rows
    failed = f"**FAILED** (exit {rc})"
    return [(name, "(process)", "", "", failed)] + [r[:4] + (failed if r[4] != "-" else "-",) for r in rows]


def report(results: list[Result], smoke: bool) -> dict:
    """Print the two tables, the failed benchmarks' stderr tails, and run_all's summary line (its last line)."""
    print("\n| benchmark | seconds | exit |\n|---|---:|---:|")
    for r in results:
        print(f"| {r.name} | {r.seconds:.0f} | {r.rc} |")
    print("\n| benchmark | figure | measured | goal | status |\n|---|---|---:|---:|---|")
    missed = met = 0
    for r in results:
        for row in report_rows(r):
            missed += row[4] == STATUS["no"]
            met += row[4] == STATUS["yes"]
            print("| " + " | ".join(row) + " |")
    failed = [r for r in results if r.rc != 0]
    for r in failed:
        tail = "\n".join(r.stderr.rstrip().splitlines()[-TAIL_LINES:]) or "(no stderr)"
        why = f"; {r.fields}" if isinstance(r.fields, str) else ""
        print(f"\n{r.name} FAILED (exit {r.rc}{why}); the last lines of its stderr:\n{tail}")
    print(f"\n{len(results)} benchmark(s), {len(failed)} failed, {missed} goal(s) missed, {met} met")
    return print_summary({"benchmarks": len(results), "failed": len(failed), "missed": missed, "goals_met": met,
                          "mode": "smoke" if smoke else "full"})


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _show(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def extra_args(specs: list[str] | None, names: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs or []:
        name, sep, rest = spec.partition("=")
        if not sep or name not in names:
            raise SystemExit(f"--args {spec!r}: expected NAME=ARGS with NAME one of the benchmarks run")
        out[name] = shlex.split(rest)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (what CI runs); goals refer to the full sizes")
    ap.add_argument("--only", nargs="*", help="run only these benchmarks (names without .py; 'demo' for the demo)")
    ap.add_argument("--args", action="append", metavar="NAME=ARGS",
                    help="extra arguments for one benchmark (repeatable), e.g. 'end_phase_gain=--pair-mults 1,2,4'")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed, too")
    args = ap.parse_args(argv)
    known = discover()
    unknown = sorted(set(args.only or []) - set(known) - {"demo"})
    if unknown:
        raise SystemExit(f"--only: no benchmark named {', '.join(unknown)} (known: {', '.join(known)}, demo)")
    names = [n for n in known if not args.only or n in args.only]
    extra = extra_args(args.args, names)
    start = provenance()
    results = [run_one(name, (["--smoke"] if args.smoke else []) + extra.get(name, [])) for name in names]
    if not args.only or "demo" in args.only:
        results.append(demo_wall_time(args.smoke))
    print(f"\n{machine_line(start, provenance())}; mode {'smoke (goals refer to full sizes)' if args.smoke else 'full'}")
    fields = report(results, args.smoke)
    return 1 if fields["failed"] or (args.strict and fields["missed"]) else 0


if __name__ == "__main__":
    sys.exit(main())
