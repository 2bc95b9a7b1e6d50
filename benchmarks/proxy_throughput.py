"""Proxy training throughput: mixopt's ``train_proxy`` against a bare torch loop.

Both train the same model (same shapes, init, optimizer, dtype, grad clipping)
on the same tokens; the bare loop gets its batches pre-built, so the ratio
shows what mixopt's loop costs (batch sampling, LR schedule, divergence
checks). Repeats are interleaved and the median is reported. Also prints the
achieved GFLOP/s (6 x params x tokens/s) against torch's own GEMM GFLOP/s at
the model's shapes on this machine.

    python benchmarks/proxy_throughput.py [--tokens 524288] [--repeats 5] [--dtype auto] [--threads N] [--smoke]

The last line reads ``summary: ratio=<x> goal_ratio=0.95 met_ratio=yes|no
ratio_min=<x> ratio_max=<x> cpu_ratio=<x> cpu_ratio_min=<x> cpu_ratio_max=<x> tokens_per_s=<n> bare_tokens_per_s=<n> gflops=<n>
gemm_gflops=<n> gemm_ratio=<x> mode=full|smoke``. ``ratio`` is the median of
the per-repeat ratios (each repeat runs both loops back to back, so a busy
machine slows both alike); ``ratio_min``/``ratio_max`` are their extremes, a
measure of how noisy the machine was. ``cpu_ratio`` compares CPU seconds
(``time.process_time``) instead of wall time: the bare loop's (model build
included) over the whole ``train_proxy`` call's (setup and its one evaluation
included, so it slightly favours the bare loop). Time a process spends
waiting for a core does not count there, so on a busy machine, with one
thread, it is the steadier figure.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mixopt.config import ProxyConfig
from mixopt.data.types import DomainSet, TokenizedDomain
from mixopt.mixtures import Mixture
from mixopt.proxy.batches import MixtureBatches
from mixopt.proxy.device import autocast, dtype_name, pick_dtype
from mixopt.proxy.model import GPT, GPTConfig
from mixopt.proxy.step import make_optimizer
from mixopt.proxy.train import train_proxy
from _common import goal, machine_line, print_summary, provenance

ROOT = Path(__file__).resolve().parents[1]


def repo_text_domains() -> DomainSet:
    """Two byte-level domains made of this repository's own files (code vs. docs/config)."""
    code = b"\n".join(p.read_bytes() for p in sorted(ROOT.glob("**/*.py")) if ".venv" not in p.parts)
    docs = b"\n".join(p.read_bytes() for ext in ("md", "yaml", "toml", "txt") for p in sorted(ROOT.glob(f"**/*.{ext}")))
    if len(docs) < 50_000:  # a young repo has little prose: pad with a reversed copy of the code
        docs = docs + code[::-1]
    out = {}
    for name, raw in (("code", code), ("docs", docs)):
        a = np.frombuffer(raw, dtype=np.uint8).astype(np.uint16)
        k = int(0.95 * len(a))
        out[name] = TokenizedDomain(name, a[:k], a[k:], 1, 1, name)
    return DomainSet(out, vocab_size=257, eos_id=256, tokenizer="bytes")


def bare_loop(cfg: ProxyConfig, batches: list[tuple[torch.Tensor, torch.Tensor]], dtype: torch.dtype, seed: int) -> float:
    """Seconds for a minimal nanoGPT-style loop over pre-built batches."""
    device = torch.device("cpu")
    torch.manual_seed(seed)
    model = GPT(GPTConfig.from_proxy(cfg, 257))
    opt = make_optimizer(model, cfg, device)
    params = list(model.parameters())
    t0 = time.perf_counter()
    for x, y in batches:
        with autocast(device, dtype):
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss.item()
    return time.perf_counter() - t0


def gemm_gflops(cfg: ProxyConfig, dtype: torch.dtype, reps: int = 200) -> float:
    """torch's forward GEMM GFLOP/s for the MLP up-projection, (B*T, C) @ (C, 4C), in ``dtype``."""
    m, c = cfg.batch_size * cfg.block_size, cfg.n_embd
    a, w = torch.randn(m, c, dtype=dtype), torch.randn(c, 4 * c, dtype=dtype)
    for _ in range(20):
        a @ w
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ w
        times.append((time.perf_counter() - t0) / reps)
    return 2 * m * c * 4 * c / statistics.median(times) / 1e9


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=524_288)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI): 8 steps, 2 repeats, 1 thread")
    args = ap.parse_args(argv)
    if args.smoke:
        args.tokens, args.repeats, args.threads = min(args.tokens, 8 * 16 * 128), min(args.repeats, 2), args.threads or 1
    start = provenance()
    before = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        fields = measure(args)
    finally:
        torch.set_num_threads(before)
    print(machine_line(start, provenance()))
    return print_summary({**fields, "mode": "smoke" if args.smoke else "full"})


def measure(args) -> dict:
    data = repo_text_domains()
    mixture = Mixture({"code": 0.7, "docs": 0.3})
    cfg = ProxyConfig(tokens=args.tokens, dtype=args.dtype, device="cpu", checkpoints=[1.0], eval_tokens=1024)
    dtype = pick_dtype(cfg, torch.device("cpu"))
    cfg = cfg.model_copy(update={"dtype": dtype_name(dtype)})
    steps = cfg.tokens // (cfg.batch_size * cfg.block_size)
    sampler = MixtureBatches({d: data.domains[d].train for d in data.names}, mixture,
                             batch_size=cfg.batch_size, block_size=cfg.block_size, seed=0)
    batches = [tuple(t.clone() for t in sampler.next()) for _ in range(steps)]
    tokens = steps * cfg.batch_size * cfg.block_size

    warm = cfg.model_copy(update={"tokens": max(cfg.tokens // 8, cfg.batch_size * cfg.block_size)})
    train_proxy(warm, mixture, data, seed=0)
    bare_loop(warm, batches[: max(steps // 8, 1)], dtype, seed=0)
    ours, bare, cpu_ratios = [], [], []
    for r in range(args.repeats):  # interleaved, side by side, so machine load hits both alike
        def run_ours():
            c = time.process_time()
            out = train_proxy(cfg, mixture, data, seed=r)
            return out, time.process_time() - c

        def run_bare():
            c = time.process_time()
            rate = tokens / bare_loop(cfg, batches, dtype, seed=r)
            return rate, time.process_time() - c

        if r % 2 == 0:  # alternate which arm goes first, so an order effect (cache, clocks) does not favour one arm
            (res, cpu_ours), (rate, cpu_bare) = run_ours(), run_bare()
        else:
            (rate, cpu_bare), (res, cpu_ours) = run_bare(), run_ours()
        bare.append(rate)
        ours.append(res.tokens_per_second)
        cpu_ratios.append(cpu_bare / cpu_ours)  # CPU seconds: bare loop over the whole train_proxy call
        print(f"repeat {r}: train_proxy {ours[-1]:,.0f} tok/s, bare loop {bare[-1]:,.0f} tok/s; "
              f"CPU-time ratio {cpu_ratios[-1]:.3f}", flush=True)
    tps, btps = statistics.median(ours), statistics.median(bare)
    ratios = [a / b for a, b in zip(ours, bare)]  # paired: each repeat's two runs ran back to back
    ratio, cpu_ratio = statistics.median(ratios), statistics.median(cpu_ratios)
    n_params = res.n_params
    gflops = 6 * n_params * tps / 1e9
    gemm = gemm_gflops(cfg, dtype)
    print(f"model: {n_params:,} params, {cfg.n_layer} layers, C={cfg.n_embd}, T={cfg.block_size}, B={cfg.batch_size}; "
          f"dtype={dtype_name(dtype)}, threads={torch.get_num_threads()}, {tokens:,} tokens per repeat")
    print(f"train_proxy: {tps:,.0f} tok/s   bare loop: {btps:,.0f} tok/s   median paired ratio {ratio:.3f} "
          f"(goal >= 0.95); per-repeat ratios {min(ratios):.3f}..{max(ratios):.3f}; "
          f"CPU-time ratio {cpu_ratio:.3f} ({min(cpu_ratios):.3f}..{max(cpu_ratios):.3f})")
    print(f"achieved {gflops:.1f} GFLOP/s (6 x params x tok/s); torch GEMM (B*T,C)@(C,4C) {gemm:.1f} GFLOP/s")
    return {**goal("ratio", ratio, 0.95), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "cpu_ratio": cpu_ratio, "cpu_ratio_min": min(cpu_ratios), "cpu_ratio_max": max(cpu_ratios),
            "tokens_per_s": tps, "bare_tokens_per_s": btps, "gflops": gflops, "gemm_gflops": gemm,
            "gemm_ratio": gflops / gemm}


if __name__ == "__main__":
    main()
