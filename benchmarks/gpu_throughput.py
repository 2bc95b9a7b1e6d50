"""GPU proxy throughput: one proxy, the auto-chosen stack and the best stack found, for each proxy shape.

For each shape (``default``: the demo's 123k-parameter proxy; ``wide``: 3.3M
parameters; ``regmix``: about 1M non-embedding parameters with a 50k
vocabulary, where the embedding and the logits dominate) this prints the
tokens/s and MFU (against the GPU's dense bf16 peak, ``mixopt.proxy.mfu``) of

- one proxy (``train_proxy``, the M = 1 case of the one training loop),
- the stack ``choose_stack_size`` picks (its timed probe, cached per machine),
- the best stack of a scan over 1, 2, 4, ... up to the memory bound,

and how close the auto-chosen stack comes to the best. Throughput is the
stack's total training tokens over its training wall time (evaluation
excluded); repeats are interleaved and medians reported. From the auto
stack's throughput it reports proxies per device-hour at each shape's sweep
tokens (``SWEEP_TOKENS``: the demo config's 500k for ``default``, 20 tokens per
parameter for ``wide``, RegMix's 1B for ``regmix``; training time only), and
the device-hours of a RegMix-scale sweep (512 proxies of ~1M non-embedding
parameters, 1B tokens each: ``REGMIX_SWEEP``). The ``regmix`` shape's loss
is the chunked cross-entropy (``mixopt.proxy.chunked_ce``; vocab >= 8192); on
CUDA its training step is also timed, and its peak memory read, with the plain
loss at the auto stack (``regmix_ce_{chunked,plain}_{tps,peak_gib}``). Without
CUDA the same measurements run on CPU at small sizes (stack probe uncached, sizes 1, 2, 4),
so the output format and the probe are exercised; GPU figures are then "to be
measured".

With ``--cuda-graphs`` it also trains the auto stack with every step replayed
from a captured CUDA graph (``proxy.cuda_graphs``) side by side with eager
steps, interleaved repeats, and reports ``<shape>_graphs_tps`` and
``<shape>_graphs_speedup`` (graphed over eager tokens/s; training time with the
eager warm-up steps and the capture included); without CUDA these are ``na``.

    python benchmarks/gpu_throughput.py [--tokens N] [--repeats R] [--shapes default,wide,regmix] [--compile]
        [--cuda-graphs] [--smoke]

The last line reads ``summary: <shape>_one_tps=.. <shape>_auto=M <shape>_auto_tps=..
<shape>_best=M <shape>_best_tps=.. <shape>_auto_vs_best=.. <shape>_*_mfu=..
<shape>_sweep_tokens=.. <shape>_proxies_per_hour=.. ... regmix_sweep_hours=..|na
cuda=yes|no mode=full|smoke`` (per hour of the device: a GPU with CUDA, one CPU
thread without), with goals on CUDA (issue 14): the
auto-chosen stack within 10% of the best, the default shape's best stack at
15x one proxy, the wide shape's best stack at 30% MFU.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from mixopt.config import ProxyConfig, load_config, resolve_config
from mixopt.mixtures import Mixture
from mixopt.proxy.chunked_ce import use_chunked_ce
from mixopt.proxy.device import pick_dtype
from mixopt.proxy.step import ModelStack
from mixopt.proxy.mfu import mfu, peak_flops
from mixopt.proxy.model import GPT, GPTConfig
from mixopt.proxy.stack_size import candidate_sizes, choose_stack_size, probe_stack_size, stack_memory_limit
from mixopt.proxy.train import train_proxies_stacked
from _common import goal, machine_line, print_summary, provenance
from proxy_throughput import repo_text_domains  # same two repo-text domains as the CPU benchmark

SHAPES = {
    "default": dict(vocab=257),  # ProxyConfig's defaults: 2 x 64, T=128, B=16
    "wide": dict(n_layer=4, n_embd=256, head_size=64, block_size=256, batch_size=32, vocab=257),  # ~3.3M params
    "regmix": dict(n_layer=4, n_embd=144, head_size=48, block_size=512, batch_size=16, vocab=50_304),  # ~1M non-emb
}
# training tokens of one proxy of each shape in a sweep (None: the demo config's proxy.tokens, 500k)
SWEEP_TOKENS = {"default": None, "wide": "20/param", "regmix": 1_000_000_000}
REGMIX_SWEEP = dict(proxies=512, tokens=1_000_000_000)  # RegMix's sweep: 512 proxies of ~1M non-emb params, 1B tokens


def sweep_tokens(label: str, n_params: int) -> int:
    """Training tokens of one proxy of shape ``label`` in a sweep (``SWEEP_TOKENS``)."""
    want = SWEEP_TOKENS[label]
    if want is None:
        return int(load_config(resolve_config("demo")).proxy.tokens)
    if want == "20/param":  # Chinchilla's compute-optimal 20 tokens per parameter
        return 20 * n_params
    return int(want)


def mixtures(m: int) -> list[Mixture]:
    return [Mixture({"code": (i + 1) / (m + 1), "docs": 1 - (i + 1) / (m + 1)}) for i in range(m)]


def stack_tps(cfg, data, m: int, seed: int, device) -> float:
    """Total training tokens per second of ``m`` proxies trained together (m = 1: one proxy)."""
    res = train_proxies_stacked(cfg, mixtures(m), data, [seed + i for i in range(m)], device=device)
    return sum(r.tokens_seen for r in res) / res[0].train_seconds


def fmt(x: float | None) -> str:
    return "NA" if x is None else f"{x:.4f}"


def measure_shape(label: str, args, data, device: torch.device) -> dict:
    shape = dict(SHAPES[label])
    vocab = shape.pop("vocab")
    data = dataclasses.replace(data, vocab_size=vocab) if vocab != data.vocab_size else data  # byte ids, a wider table
    cuda = device.type == "cuda"
    cfg = ProxyConfig(**shape, tokens=args.tokens, device=device.type, dtype="auto" if cuda else "float32",
                      checkpoints=[1.0], eval_tokens=args.eval_tokens, compile=args.compile)
    cfg = cfg.model_copy(update={"tokens": max(cfg.tokens, cfg.batch_size * cfg.block_size)})
    model = GPT(GPTConfig.from_proxy(cfg, vocab))
    fpt, n_params, n_non_emb = model.flops_per_token(), model.num_params(), model.num_params(non_embedding=True)
    del model
    if cuda:
        sizes = candidate_sizes(stack_memory_limit(cfg, device, vocab_size=vocab))
        auto = choose_stack_size(cfg, device, vocab_size=vocab)
    else:  # CPU: the probe itself (uncached) over small sizes; choose_stack_size always says 1 here
        sizes = [1, 2] if args.smoke else [1, 2, 4]
        auto = probe_stack_size(cfg, device, pick_dtype(cfg, device, vocab_size=vocab), vocab_size=vocab,
                                candidates=sizes, cache=False)
    warm = cfg.model_copy(update={"tokens": max(cfg.tokens // 8, cfg.batch_size * cfg.block_size)})
    for m in sizes:
        stack_tps(warm, data, m, 0, device)
    runs: dict[int, list[float]] = {m: [] for m in sizes}
    for r in range(args.repeats):  # interleaved over sizes
        for m in sizes:
            runs[m].append(stack_tps(cfg, data, m, r, device))
    tps = {m: statistics.median(v) for m, v in runs.items()}
    best = max(tps, key=tps.get)
    if auto not in tps:
        tps[auto] = statistics.median(stack_tps(cfg, data, auto, r, device) for r in range(args.repeats))
    one, util = tps[1], {m: mfu(fpt, v, device) for m, v in tps.items()}
    print(f"{label}: {n_params:,} params ({n_non_emb:,} non-embedding), vocab {vocab:,}, "
          f"{'chunked' if use_chunked_ce(vocab) else 'plain'} cross-entropy", flush=True)
    print(f"{label}: {fpt / 1e6:.2f} MFLOP/token; tok/s by stack size " +
          ", ".join(f"{m}: {v:,.0f}" for m, v in sorted(tps.items())), flush=True)
    print(f"{label}: one proxy {one:,.0f} tok/s (MFU {fmt(util[1])}); auto stack {auto}: {tps[auto]:,.0f} tok/s "
          f"(MFU {fmt(util[auto])}); best stack {best}: {tps[best]:,.0f} tok/s (MFU {fmt(util[best])}); "
          f"auto/best {tps[auto] / tps[best]:.3f}; best/one {tps[best] / one:.2f}x", flush=True)
    tokens = sweep_tokens(label, n_params)
    per_hour = 3600.0 * tps[auto] / tokens
    print(f"{label}: {per_hour:.4g} proxies of {tokens:,} tokens per {unit(device)} at the auto stack "
          f"(training time only)", flush=True)
    return {f"{label}_one_tps": one, f"{label}_one_mfu": util[1], f"{label}_auto": auto,
            f"{label}_auto_tps": tps[auto], f"{label}_auto_mfu": util[auto], f"{label}_best": best,
            f"{label}_best_tps": tps[best], f"{label}_best_mfu": util[best],
            f"{label}_auto_vs_best": tps[auto] / tps[best], f"{label}_speedup": tps[best] / one,
            f"{label}_sweep_tokens": tokens, f"{label}_proxies_per_hour": per_hour,
            **(ce_comparison(label, cfg, vocab, device, auto) if cuda and use_chunked_ce(vocab) else {}),
            **(graphs_comparison(label, cfg, data, device, auto, args.repeats) if args.cuda_graphs else {})}


def graphs_comparison(label: str, cfg, data, device: torch.device, m: int, repeats: int) -> dict:
    """Tokens/s of a stack of ``m`` trained with CUDA-graphed steps, and over the same stack's eager steps.

    The two arms alternate within each repeat (medians reported), after one
    short warm-up run of each. None for both keys without CUDA.
    """
    if device.type != "cuda":
        print(f"{label}: CUDA graphs need a CUDA device; the graphed arm is skipped", flush=True)
        return {f"{label}_graphs_tps": None, f"{label}_graphs_speedup": None}
    arms = {name: cfg.model_copy(update={"cuda_graphs": name == "graphs"}) for name in ("eager", "graphs")}
    for arm in arms.values():
        warm = arm.model_copy(update={"tokens": max(arm.tokens // 8, arm.batch_size * arm.block_size)})
        stack_tps(warm, data, m, 0, device)
    runs: dict[str, list[float]] = {name: [] for name in arms}
    for r in range(repeats):  # interleaved
        for name, arm in arms.items():
            runs[name].append(stack_tps(arm, data, m, r, device))
    eager, graphs = (statistics.median(runs[name]) for name in arms)
    print(f"{label}: stack {m} with eager steps {eager:,.0f} tok/s, with CUDA-graphed steps {graphs:,.0f} tok/s "
          f"({graphs / eager:.2f}x)", flush=True)
    return {f"{label}_graphs_tps": graphs, f"{label}_graphs_speedup": graphs / eager}


def ce_step(cfg, vocab: int, device: torch.device, m: int, chunked: bool, *, steps: int = 4,
            warmup: int = 2) -> tuple[float, float]:
    """Tokens/s (fastest of ``steps``) and peak GiB allocated (None on CPU) of training steps of a stack of ``m``,
    with the chunked loss or the plain one."""
    B, T = cfg.batch_size, cfg.block_size
    dtype = pick_dtype(cfg, device, vocab_size=vocab)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with torch.random.fork_rng(devices=[]):
        stack = ModelStack.from_seeds(GPTConfig.from_proxy(cfg, vocab), list(range(m)), cfg, device, dtype)
        xy = torch.randint(0, vocab, (2, m, B, T)).to(device)  # (2, M, B, T)
    stack.model.chunked_ce = chunked
    alive = torch.ones(m, dtype=torch.bool, device=device)
    best = float("inf")
    for i in range(warmup + steps):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        stack.step(xy[0], xy[1], cfg.lr, alive)
        if cuda:
            torch.cuda.synchronize(device)
        if i >= warmup:
            best = min(best, time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if cuda else None
    del stack, xy
    if cuda:
        torch.cuda.empty_cache()
    return m * B * T / best, peak


def ce_comparison(label: str, cfg, vocab: int, device: torch.device, m: int) -> dict:
    """The chunked against the plain cross-entropy at the auto stack: tokens/s and peak memory of a training step."""
    out = {}
    for name in ("chunked", "plain"):
        try:
            tps, peak = ce_step(cfg, vocab, device, m, name == "chunked")
        except torch.cuda.OutOfMemoryError:
            tps = peak = None
            torch.cuda.empty_cache()
        peak_text = "" if peak is None else f", peak {peak:.2f} GiB allocated"
        out[f"{label}_ce_{name}_tps"], out[f"{label}_ce_{name}_peak_gib"] = tps, peak
        print(f"{label}: {name} cross-entropy, stack {m}: " +
              ("out of memory" if tps is None else f"{tps:,.0f} tok/s{peak_text}"), flush=True)
    return {f"{label}_ce_stack": m, **out}


def unit(device: torch.device, plural: bool = False) -> str:
    s = "s" if plural else ""
    return f"GPU-hour{s}" if device.type == "cuda" else f"CPU-hour{s} (1 thread)"


def regmix_sweep_hours(fields: dict, device: torch.device) -> float | None:
    """Device-hours of RegMix's sweep (``REGMIX_SWEEP``) at the regmix shape's auto-stack tokens/s; None unmeasured."""
    tps = fields.get("regmix_auto_tps")
    if not tps:
        return None
    hours = REGMIX_SWEEP["proxies"] * REGMIX_SWEEP["tokens"] / tps / 3600.0
    print(f"RegMix-scale sweep ({REGMIX_SWEEP['proxies']} proxies x {REGMIX_SWEEP['tokens']:,} tokens, ~1M "
          f"non-embedding params, 50k vocab): {hours:,.1f} {unit(device, True)} at {tps:,.0f} tok/s (training only)",
          flush=True)
    return hours


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=None, help="tokens per proxy (default 1M on CUDA, 32,768 on CPU)")
    ap.add_argument("--repeats", type=int, default=None, help="default 2 on CUDA, 1 on CPU")
    ap.add_argument("--shapes", default=None, help="comma-separated of default,wide,regmix (CPU: default only)")
    ap.add_argument("--eval-tokens", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile the models (CUDA)")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="also time the auto stack with CUDA-graphed training steps against eager ones (CUDA)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    args.tokens = args.tokens or (1_048_576 if cuda else 32_768)
    args.repeats = args.repeats or (2 if cuda else 1)
    if args.smoke:
        args.tokens, args.repeats, args.eval_tokens = min(args.tokens, 4 * 16 * 128), 1, 512
    shapes = (args.shapes or ("default,wide,regmix" if cuda and not args.smoke else "default")).split(",")
    unknown = sorted(set(shapes) - set(SHAPES))
    if unknown:
        ap.error(f"--shapes names {unknown}; known shapes: {','.join(SHAPES)}")
    start = provenance()
    before = torch.get_num_threads()
    if args.threads or not cuda:
        torch.set_num_threads(args.threads or 1)
    try:
        if cuda:
            dev = torch.device("cuda")
            peak = peak_flops(dev)
            print(f"device: {torch.cuda.get_device_name(dev)}; dense bf16 peak " +
                  (f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown"))
        else:
            print("no CUDA device: GPU figures still to be measured; this run exercises the stack probe and the "
                  "output format on CPU, fp32, 1 thread")
        fields: dict = {}
        for label in shapes:
            fields.update(measure_shape(label, args, repo_text_domains(), device))
        fields["regmix_sweep_hours"] = regmix_sweep_hours(fields, device)
    finally:
        torch.set_num_threads(before)
    if cuda:
        for label in shapes:
            fields.update(goal(f"{label}_auto_vs_best", fields.pop(f"{label}_auto_vs_best"), 0.9))
        if "default" in shapes:
            fields.update(goal("default_speedup", fields.pop("default_speedup"), 15.0))
        if "wide" in shapes:
            fields.update(goal("wide_best_mfu", fields.pop("wide_best_mfu") or 0.0, 0.30))
    print(machine_line(start, provenance()))
    return print_summary({**fields, "cuda": cuda, "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
