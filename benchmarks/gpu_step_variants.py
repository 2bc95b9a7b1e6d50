"""One training step of a proxy stack, implemented several ways, timed side by side (issue 14's utilization work).

The profile of stop 25 (``benchmarks/gpu_profile.py`` on an H200) found the
wide stack's step memory-bound on activation-sized elementwise work, not on its
matmuls, and the RegMix-like stack's step on the chunked loss's fp32 softmax.
This benchmark times, for each shape at fixed stack sizes, the same step with:

- ``base``: the step before that work: LayerNorm scales applied to the
  activations (``stacked.FOLD_NORMS`` off), the chunked loss's softmax in fp32
  (``chunked_ce.LOW_PRECISION_SOFTMAX`` off), eager steps;
- ``fold``: LayerNorm scales folded into the next layer's weight;
- ``lowsm``: plus the chunked loss's softmax kept in bf16 (large vocabularies only);
- ``graphs``: plus CUDA-graphed steps (``proxy.cuda_graphs``, the default since);
- ``compile``: the new defaults' eager step under ``torch.compile`` (``proxy.compile``;
  CUDA only, and only with ``--compile``: each compile takes tens of seconds);
- ``compgraph``: the compiled step captured into a CUDA graph as well (``step.GRAPHS_WITH_COMPILE``; with
  ``--compile``);
- ``resbf16``: ``graphs`` with the residual stream and LayerNorm in bf16 (``stacked.LOW_PRECISION_RESIDUAL``: the
  fp32 stream, its casts and fp32 norms were what remained of the wide step's elementwise time); ``compres``:
  ``compile`` with it too (with ``--compile``).

Every arm is ``stack_size.time_stack`` (the stack probe's own timer: random
tokens, fastest of ``--steps`` steps after a warm-up), repeats interleaved over
the arms, medians reported, with the MFU against the device's dense bf16 peak.
Without CUDA it runs the default shape small, in fp32, to exercise the code.

    python benchmarks/gpu_step_variants.py [--shapes wide,regmix,default] [--repeats 2] [--compile] [--arms base,fold]
        [--deadline SECONDS] [--smoke]

The last line reads ``summary: <shape>_m<M>_<arm>_tps=.. <shape>_m<M>_<arm>_mfu=..
<shape>_m<M>_<arm>_vs_base=.. <shape>_m<M>_<arm>_wall_s=.. ... cuda=yes|no mode=full|smoke``; ``wall_s`` is one
try's seconds with the model's build, the warm-up and (``compile``) the compilation: what a new stack costs before
its first timed step.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from mixopt.config import ProxyConfig
from mixopt.proxy import chunked_ce, stacked, step
from mixopt.proxy.device import pick_dtype
from mixopt.proxy.mfu import mfu, peak_flops
from mixopt.proxy.model import GPT, GPTConfig
from mixopt.proxy.stack_size import time_stack
from _common import machine_line, print_summary, provenance

SHAPES = {  # as benchmarks/gpu_throughput.py; stack sizes: the stack probe's choice on an H200 and one above it
    "wide": (dict(n_layer=4, n_embd=256, head_size=64, block_size=256, batch_size=32), 257, (32, 64)),
    "regmix": (dict(n_layer=4, n_embd=144, head_size=48, block_size=512, batch_size=16), 50_304, (4, 8)),
    "default": (dict(), 257, (64,)),
}
SMOKE = (dict(n_layer=1, n_embd=32, head_size=16, block_size=32, batch_size=4), 257, (1, 2))


@contextlib.contextmanager
def switches(fold: bool, low_softmax: bool, graphs_with_compile: bool = False, low_residual: bool = False):
    """The module switches, set for the arm and restored after."""
    before = (stacked.FOLD_NORMS, chunked_ce.LOW_PRECISION_SOFTMAX, step.GRAPHS_WITH_COMPILE,
              stacked.LOW_PRECISION_RESIDUAL)
    (stacked.FOLD_NORMS, chunked_ce.LOW_PRECISION_SOFTMAX, step.GRAPHS_WITH_COMPILE,
     stacked.LOW_PRECISION_RESIDUAL) = fold, low_softmax, graphs_with_compile, low_residual
    try:
        yield
    finally:
        (stacked.FOLD_NORMS, chunked_ce.LOW_PRECISION_SOFTMAX, step.GRAPHS_WITH_COMPILE,
         stacked.LOW_PRECISION_RESIDUAL) = before


def arms(vocab: int, cuda: bool, compile: bool) -> dict[str, dict]:
    """Arm name -> (fold, low_softmax, cuda_graphs, compile[, res]); graphs with compile means the compiled step
    captured; ``res``: the bf16 residual stream."""
    out = {"base": dict(fold=False, low=False, graphs=False, compile=False),
           "fold": dict(fold=True, low=False, graphs=False, compile=False)}
    if chunked_ce.use_chunked_ce(vocab):
        out["lowsm"] = dict(fold=True, low=True, graphs=False, compile=False)
    if cuda:
        out["graphs"] = dict(fold=True, low=True, graphs=True, compile=False)
        out["resbf16"] = dict(fold=True, low=True, graphs=True, compile=False, res=True)
        if compile:
            out["compile"] = dict(fold=True, low=True, graphs=False, compile=True)
            out["compgraph"] = dict(fold=True, low=True, graphs=True, compile=True)
            out["compres"] = dict(fold=True, low=True, graphs=False, compile=True, res=True)
    return out


def time_arm(shape: dict, vocab: int, m: int, arm: dict, device, steps: int) -> float:
    cfg = ProxyConfig(**shape, tokens=10**9, device=device.type, dtype="auto" if device.type == "cuda" else "float32",
                      cuda_graphs=arm["graphs"], compile=arm["compile"])
    dtype = pick_dtype(cfg, device, vocab_size=vocab)
    with switches(arm["fold"], arm["low"], arm["graphs"] and arm["compile"], arm.get("res", False)):
        return time_stack(cfg, device, dtype, m, vocab, steps=steps, warmup=3 if not arm["compile"] else 4)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=None, help="comma-separated of wide,regmix,default (default all on CUDA)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per arm and repeat (the fastest counts)")
    ap.add_argument("--compile", action="store_true", help="also time a torch.compile arm (CUDA; slow to compile)")
    ap.add_argument("--arms", default=None, help="comma-separated arms to time (default all that apply)")
    ap.add_argument("--deadline", type=float, default=None, help="seconds: skip arms that would start after this")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.smoke
    device = torch.device("cuda" if cuda else "cpu")
    start, t0 = provenance(), time.monotonic()
    if cuda:
        peak = peak_flops(device)
        print(f"device: {torch.cuda.get_device_name(device)}; dense bf16 peak "
              + (f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown"), flush=True)
    else:
        print("no CUDA device (or --smoke): a tiny shape on CPU in fp32 exercises the arms; GPU figures to be measured")
    todo = {"smoke": SMOKE} if not cuda else {k: SHAPES[k] for k in (args.shapes or "wide,regmix,default").split(",")}
    fields: dict = {}
    for label, (shape, vocab, sizes) in todo.items():
        fpt = GPT(GPTConfig.from_proxy(ProxyConfig(**shape, tokens=10**9), vocab)).flops_per_token()
        for m in sizes:
            plan = arms(vocab, cuda, args.compile)
            if args.arms:
                plan = {k: v for k, v in plan.items() if k in args.arms.split(",")}
            runs: dict[str, list[float]] = {name: [] for name in plan}
            walls: dict[str, list[float]] = {name: [] for name in plan}  # build + warm-up (+ compile) + timed steps
            for _ in range(args.repeats):  # interleaved over the arms
                for name, arm in plan.items():
                    if args.deadline and time.monotonic() - t0 > args.deadline:
                        continue
                    try:
                        t_arm = time.monotonic()
                        runs[name].append(time_arm(shape, vocab, m, arm, device, args.steps))
                        walls[name].append(time.monotonic() - t_arm)
                    except Exception as err:  # an arm that fails (e.g. compile) is reported, not fatal
                        print(f"{label} m={m} {name}: failed ({type(err).__name__}: {str(err)[:200]})", flush=True)
            base = statistics.median(runs["base"]) if runs.get("base") else None
            for name, vals in runs.items():
                key = f"{label}_m{m}_{name}"
                tps = statistics.median(vals) if vals else None
                util = mfu(fpt, tps, device) if tps else None
                ratio = tps / base if tps and base else None
                wall = statistics.median(walls[name]) if walls[name] else None
                fields.update({f"{key}_tps": tps, f"{key}_mfu": util, f"{key}_vs_base": ratio, f"{key}_wall_s": wall})
                print(f"{label} stack {m} {name:8s}: " + (f"{tps:,.0f} tok/s" if tps else "not measured")
                      + (f", MFU {util:.4f}" if util is not None else "") + (f", {ratio:.2f}x base" if ratio else "")
                      + (f"; {wall:.1f} s per try (build, warm-up, compile, timed steps)" if wall else "")
                      + f" ({len(vals)} repeats)", flush=True)
    print(machine_line(start, provenance()))
    return print_summary({**fields, "cuda": cuda, "mode": "smoke" if args.smoke or not cuda else "full"})


if __name__ == "__main__":
    main()
