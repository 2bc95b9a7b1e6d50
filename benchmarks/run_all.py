"""Run every benchmark and print one summary table of figures against their goals.

    python benchmarks/run_all.py          # quick: reduced sizes, ~10 minutes on 2 cores
    python benchmarks/run_all.py --full   # the sizes quoted in RESULTS.md

Each benchmark is its own script whose last line is ``key=value ...``; this
runner only schedules them and collects those lines.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable

# name: (quick args, full args, goal text)
BENCHMARKS = {
    "proxy_throughput": (["--tokens", "131072", "--repeats", "3"], [], "ratio >= 0.95 vs a bare torch loop"),
    "surrogate_regmix": (["--quick"], [], "rho >= 0.993 (1M), >= 0.990 (60M), >= 0.985 at 128 runs"),
    "search_speed": (["--n", "200000"], [], "1M-candidate search in seconds, ratio vs LGBM predict"),
    "ot_speed": (["--n", "1000", "--repeats", "2"], [], "emd2 ~0.65 s, sinkhorn2 0.06-0.28 s at 2000x2000; ratio ~1"),
    "projector_embedded": (["--quick"], [], "projector vs surrogate vs combined on held-out w>=0.5 runs; 4x/8x extrapolation"),
    "pools_frontier": (["--quick"], [], "plan keeps more pools as the budget grows"),
    "upsampling_verify": (["--quick"], [], "plan best beyond seed noise at 4x tokens"),
    "gpu_throughput": ([], [], "MFU on CUDA; stacked proxies vs one"),
    "average_target": (["--store", "/tmp/mixopt-demo/store"], ["--store", "/tmp/mixopt-demo/store"],
                       "per-domain average beats one model of the mean (needs a demo store; SKIP otherwise)"),
}


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if "=" in ln]
    return lines[-1] if lines else "(no key=value line)"


def run_one(name: str, args: list[str]) -> tuple[float, int, str]:
    cmd = [PY, str(HERE / f"{name}.py"), *args]
    print(f"$ {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    sys.stdout.write(proc.stdout[-3000:])
    if proc.returncode:
        sys.stdout.write(proc.stderr[-2000:])
    return dt, proc.returncode, last_line(proc.stdout)


def demo_wall_time(full: bool) -> tuple[float, int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [PY, "-m", "mixopt.cli.main", "demo", "--out", tmp, "--config", "demo" if full else "tiny"]
        print(f"$ {shlex.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    return dt, proc.returncode, f"demo_seconds={dt:.1f} config={'demo' if full else 'tiny'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="full sizes (as in RESULTS.md)")
    ap.add_argument("--only", nargs="*", help="run only these benchmarks")
    args = ap.parse_args()
    rows = []
    for name, (quick, full, goal) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        dt, rc, line = run_one(name, full if args.full else quick)
        rows.append((name, dt, rc, line, goal))
    if not args.only or "demo" in args.only:
        dt, rc, line = demo_wall_time(args.full)
        rows.append(("demo", dt, rc, line, "a few minutes on 2 cores"))
    print("\n| benchmark | seconds | exit | result | goal |\n|---|---:|---:|---|---|")
    for name, dt, rc, line, goal in rows:
        print(f"| {name} | {dt:.0f} | {rc} | `{line}` | {goal} |")
    return max((r[2] for r in rows), default=0)


if __name__ == "__main__":
    sys.exit(main())
