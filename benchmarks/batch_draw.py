"""Drawing a stack's training batches: one ``MixtureBatches.next()`` per run against ``StackBatches``.

A stack of M proxies on a GPU draws M batches per step in Python, on the
critical path whenever the step is launch-bound. The loop (``proxy/loop.py``)
draws them with ``StackBatches.next_into`` (one slot allocation for all runs,
one gather per domain); this times it side by side with drawing run by run,
on the demo's 7 embedded domains with Dirichlet mixtures, for the default
proxy shape (B=16, T=128) and the wide one (B=32, T=256), and checks that both
give the same tokens at every step (an untimed lock-step pass over as many
steps as the timing draws, plus the timed streams' last step after each repeat).

    python benchmarks/batch_draw.py [--stacks 1,16,64] [--steps 50] [--smoke]

The last line reads ``summary: default_m64_ms=<x> default_m64_speedup=<x> ... min_speedup=<x> same_tokens=yes|no mode=full|smoke``
(``<shape>_m<M>_ms``: ms per step with ``StackBatches``; ``_speedup``: run by run over it; medians over repeats, the
two ways taking turns at going first in a repeat).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import machine_line, print_summary, provenance

from mixopt.config import load_config, packaged_config
from mixopt.data.domains import load_domain_set
from mixopt.proxy.batches import MixtureBatches, StackBatches

SHAPES = {"default": (16, 128), "wide": (32, 256)}  # (batch_size, block_size), as benchmarks/gpu_throughput.py


def make_runs(train: dict, m: int, b: int, t: int) -> list[MixtureBatches]:
    rng = np.random.default_rng(0)
    names = sorted(train)
    return [MixtureBatches(train, dict(zip(names, rng.dirichlet(np.full(len(names), 0.5)))), batch_size=b,
                           block_size=t, seed=i) for i in range(m)]


def same_every_step(train: dict, m: int, b: int, t: int, steps: int) -> bool:
    """Fresh runs drawn both ways in lock step (untimed): whether the tokens match at each of ``steps`` steps."""
    one, drawer = make_runs(train, m, b, t), StackBatches(make_runs(train, m, b, t))
    out_one = torch.zeros((2, m, b, t), dtype=torch.long)
    out_stack = torch.zeros_like(out_one)
    live = list(range(m))
    for _ in range(steps):
        for i, run in enumerate(one):
            out_one[0, i], out_one[1, i] = run.next()
        drawer.next_into(out_stack, live)
        if not torch.equal(out_one, out_stack):
            return False
    return True


def time_draws(train: dict, m: int, b: int, t: int, steps: int, repeats: int) -> tuple[float, float, bool]:
    """Median seconds per step (run by run, stacked) and whether the tokens matched at every step: checked on fresh
    runs in an untimed lock-step pass over ``steps * repeats`` steps (the steps timed), and on the timed streams at
    the end of each repeat. The two ways alternate at going first within a repeat."""
    same = same_every_step(train, m, b, t, steps * repeats)
    one, stacked = make_runs(train, m, b, t), make_runs(train, m, b, t)
    drawer = StackBatches(stacked)
    out_one = torch.zeros((2, m, b, t), dtype=torch.long)
    out_stack = torch.zeros_like(out_one)
    live = list(range(m))

    def by_run() -> None:
        for _ in range(steps):
            for i, run in enumerate(one):
                out_one[0, i], out_one[1, i] = run.next()

    def by_stack() -> None:
        for _ in range(steps):
            drawer.next_into(out_stack, live)

    times = {"one": [], "stack": []}
    for r in range(repeats):
        for key, fn in ([("one", by_run), ("stack", by_stack)] if r % 2 == 0 else [("stack", by_stack), ("one", by_run)]):
            t0 = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - t0) / steps)
        same = same and torch.equal(out_one, out_stack)  # both streams are at the same step after each repeat
    return statistics.median(times["one"]), statistics.median(times["stack"]), same


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stacks", default="1,16,64", help="stack sizes M")
    ap.add_argument("--steps", type=int, default=50, help="steps per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="M = 1, 4 and 5 steps (CI)")
    args = ap.parse_args(argv)
    stacks = [1, 4] if args.smoke else [int(s) for s in args.stacks.split(",")]
    steps, repeats = (5, 1) if args.smoke else (args.steps, args.repeats)
    start = provenance()
    data = load_domain_set(load_config(packaged_config("demo")).data)
    train = {d: data.domains[d].train for d in data.names}
    print(f"{len(train)} domains, {sum(a.shape[0] for a in train.values()):,} training tokens")
    print(f"{'shape':8} {'M':>4} {'run by run ms':>14} {'stacked ms':>11} {'speedup':>8}")
    fields, speedups, same_all = {}, [], True
    for shape, (b, t) in SHAPES.items():
        for m in stacks:
            one, stack, same = time_draws(train, m, b, t, steps, repeats)
            same_all &= same
            speedups.append(one / stack)
            print(f"{shape:8} {m:>4} {1e3 * one:>14.2f} {1e3 * stack:>11.2f} {one / stack:>8.2f}")
            fields[f"{shape}_m{m}_ms"] = round(1e3 * stack, 3)
            fields[f"{shape}_m{m}_speedup"] = round(one / stack, 2)
    print(machine_line(start, provenance()))
    return print_summary({**fields, "min_speedup": round(min(speedups), 2), "same_tokens": same_all,
                          "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
