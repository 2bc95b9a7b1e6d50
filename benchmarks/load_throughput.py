"""Sweep throughput under load: the share of its idle throughput a sweep keeps while another process takes a core.

For each executor setting (worker processes x torch threads per run, optionally
``OMP_WAIT_POLICY=PASSIVE``) a fresh Python process runs the same small sweep
through ``mixopt.runs.executors.run_local`` twice: once with the machine as it
is ("idle") and once beside a ``yes > /dev/null`` process ("loaded"). Idle and
loaded runs alternate (order flipped every repeat) so drift in the machine's
background load hits both alike. Throughput is training tokens over the
sweep's wall time, worker start-up included. The figure of merit is the
ratio loaded / idle of the setting mixopt uses by default (goal >= 0.70, issue 10).

    python benchmarks/load_throughput.py [--tokens 131072] [--runs 6] [--repeats 2] [--only default,3x1t] [--smoke]

The last line reads ``summary: default=<setting> ratio=<x> goal_ratio=0.7 met_ratio=yes|no ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402

from mixopt.config import config_from_dict  # noqa: E402
from mixopt.data.domains import load_domain_set  # noqa: E402
from mixopt.runs.executors import default_workers, run_local, threads_per_run  # noqa: E402
from mixopt.runs.store import RunStore  # noqa: E402
from mixopt.runs.sweep import plan_sweep  # noqa: E402


def settings(cores: int, smoke: bool) -> dict[str, dict]:
    """name -> {workers, threads, passive}. 'default' is what `mixopt sweep` uses on this machine."""
    cfg = config_from_dict({})
    default = {"workers": default_workers(cfg), "threads": threads_per_run(cfg), "passive": False}
    out = {f"{default['workers']}x{default['threads']}t (default)": default}
    if not smoke:
        out[f"seq-{cores}t"] = {"workers": 1, "threads": cores, "passive": False}  # the default until stop 22
        out[f"seq-{cores}t-passive"] = {"workers": 1, "threads": cores, "passive": True}
        for n in (cores, cores + 1):  # one worker per core, and one more (the default of stops 22-31)
            if (n, 1) != (default["workers"], default["threads"]):
                out[f"{n}x1t"] = {"workers": n, "threads": 1, "passive": False}
    return out


def child(spec: dict) -> None:
    """Run one sweep in this (fresh) process and print its throughput as JSON."""
    cfg = config_from_dict({
        "name": "load", "seed": spec["seed"], "runs": spec["runs"],
        "data": {"corpus": "embedded", "max_documents": spec["max_documents"]},
        "proxy": {"tokens": spec["tokens"], "threads": spec["threads"], "checkpoints": [1.0], "eval_tokens": 2048},
        "sampler": {"baselines": [], "noise_seeds": 1, "noise_mixtures": 0, "two_phase_runs": 0},
    })
    data = load_domain_set(cfg.data)
    specs = plan_sweep(cfg, data)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        t0 = time.perf_counter()
        summary = run_local(specs, cfg, store, data, workers=spec["workers"])
        seconds = time.perf_counter() - t0
        trained = sum(r.info["tokens_seen"] for r in store.records())
    print(json.dumps({"tokens_per_s": trained / seconds, "seconds": seconds, "trained": summary.trained}))


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the benchmark dies, so no `yes` outlives a killed run."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def measure(setting: dict, args, loaded: bool, seed: int) -> float:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if setting["passive"]:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    spec = {**setting, "seed": seed, "runs": args.runs, "tokens": args.tokens, "max_documents": args.max_documents}
    hog = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent) if loaded else None
    try:
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env, capture_output=True,
                             text=True, check=True, preexec_fn=_die_with_parent).stdout
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return json.loads(out.strip().splitlines()[-1])["tokens_per_s"]


def main(argv=None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=131072, help="training tokens per run")
    ap.add_argument("--runs", type=int, default=6, help="runs per sweep")
    ap.add_argument("--repeats", type=int, default=2, help="idle/loaded pairs per setting (median reported)")
    ap.add_argument("--max-documents", type=int, default=300)
    ap.add_argument("--smoke", action="store_true", help="the default setting only, tiny runs: well under a minute")
    ap.add_argument("--only", default=None, help="comma-separated settings to measure (e.g. default,3x1t; default: all)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return None
    if args.smoke:
        args.tokens, args.runs, args.repeats, args.max_documents = 8192, 2, 1, 60
    start = provenance()
    cores = os.cpu_count() or 1
    table = settings(cores, args.smoke)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {k.split()[0] for k in table} - {"default"}
        if unknown:
            raise SystemExit(f"--only: unknown setting(s) {sorted(unknown)}; choose from default, "
                             + ", ".join(k.split()[0] for k in table))
        table = {k: v for k, v in table.items() if k.split()[0] in wanted or ("default" in wanted and k.endswith("(default)"))}
    res: dict[str, dict[str, list[float]]] = {k: {"idle": [], "loaded": []} for k in table}
    for rep in range(args.repeats):
        for name, setting in table.items():
            order = (False, True) if rep % 2 == 0 else (True, False)
            for loaded in order:
                res[name]["loaded" if loaded else "idle"].append(measure(setting, args, loaded, seed=rep))
                print(f"repeat {rep} {name} {'loaded' if loaded else 'idle'}: {res[name]['loaded' if loaded else 'idle'][-1]:,.0f} tok/s",
                      flush=True)
    print(f"{args.runs} runs x {args.tokens:,} tokens per sweep, {args.repeats} idle/loaded pair(s) per setting, "
          f"one `yes` process as the load; default workers here: {default_workers(config_from_dict({}))}")
    print(f"{'setting':<22} {'idle tok/s':>11} {'loaded tok/s':>13} {'loaded/idle':>12}")
    summary_rows = {}
    for name in table:
        idle, loaded = statistics.median(res[name]["idle"]), statistics.median(res[name]["loaded"])
        summary_rows[name] = (idle, loaded, loaded / idle)
        print(f"{name:<22} {idle:>11,.0f} {loaded:>13,.0f} {loaded / idle:>12.2f}")
    print(machine_line(start, provenance()))
    default_name = next((k for k in table if k.endswith("(default)")), None)
    if default_name is None:
        return print_summary({"default": "not measured", "mode": "smoke" if args.smoke else "full"})
    old_name = f"seq-{cores}t"
    idle, loaded, ratio = summary_rows[default_name]
    previous = ({"idle_vs_previous": round(idle / summary_rows[old_name][0], 3), "previous_ratio": round(summary_rows[old_name][2], 3)}
                if old_name in summary_rows else {})  # the smoke run measures the default only
    others = {f"idle_vs_{k.split()[0].replace('-', '_')}": round(idle / v[0], 3) for k, v in summary_rows.items() if k != default_name}
    others |= {f"loaded_vs_{k.split()[0].replace('-', '_')}": round(loaded / v[1], 3) for k, v in summary_rows.items() if k != default_name}
    return print_summary({
        "default": default_name.split()[0], **goal("ratio", round(ratio, 3), 0.70), **previous, **others,
        "mode": "smoke" if args.smoke else "full",
    })


if __name__ == "__main__":
    main()
