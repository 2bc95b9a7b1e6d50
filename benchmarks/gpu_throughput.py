"""GPU proxy throughput: one proxy via ``train_proxy`` against M stacked proxies via ``train_proxies_stacked``.

On CUDA, for the default proxy and a wider one, prints tokens/s and MFU
(against the GPU's dense bf16 peak, ``mixopt.proxy.mfu``) of (a) one proxy and
(b) a stack of M proxies (M from ``choose_stack_size`` unless ``--stack``), and
the ratio of the stack's total tokens/s to one proxy's. Without CUDA it says
so and measures only the CPU ratio of M stacked proxies to the same M trained
one after another (default shape, small token count). Repeats are interleaved;
medians are reported. Evaluation time is excluded (``train_seconds``).

    python benchmarks/gpu_throughput.py [--tokens N] [--stack M] [--repeats R] [--threads N] [--compile]

The last line reads ``stacked_ratio=<r> mfu=<m or NA>`` (default proxy; on CUDA
the stack's MFU).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from mixopt.config import ProxyConfig
from mixopt.mixtures import Mixture
from mixopt.proxy.mfu import mfu, peak_flops
from mixopt.proxy.model import GPT, GPTConfig
from mixopt.proxy.stacked import choose_stack_size, train_proxies_stacked
from mixopt.proxy.train import train_proxy
from proxy_throughput import repo_text_domains  # same two repo-text domains as the CPU benchmark

ROOT = Path(__file__).resolve().parents[1]
WIDE = dict(n_layer=4, n_embd=256, head_size=64, block_size=256, batch_size=32)  # ~3.3M params


def mixtures(m: int) -> list[Mixture]:
    return [Mixture({"code": (i + 1) / (m + 1), "docs": 1 - (i + 1) / (m + 1)}) for i in range(m)]


def stacked_tps(cfg, data, m: int, seed: int) -> float:
    """The stack's total training tokens per second."""
    res = train_proxies_stacked(cfg, mixtures(m), data, [seed + i for i in range(m)])
    return sum(r.tokens_seen for r in res) / res[0].train_seconds


def sequential_tps(cfg, data, m: int, seed: int) -> float:
    """Total tokens per second of the same M proxies trained one after another with ``train_proxy``."""
    res = [train_proxy(cfg, mix, data, seed + i) for i, mix in enumerate(mixtures(m))]
    return sum(r.tokens_seen for r in res) / sum(r.train_seconds for r in res)


def fmt(x: float | None) -> str:
    return "NA" if x is None else f"{x:.4f}"


def run_cuda(args, data) -> tuple[float, float | None]:
    dev = torch.device("cuda")
    name, peak = torch.cuda.get_device_name(dev), peak_flops(dev)
    print(f"device: {name}; dense bf16 peak {peak / 1e12:.0f} TFLOP/s" if peak else f"device: {name}; peak unknown")
    first = None
    for label, shape in (("default", {}), ("wide", WIDE)):
        cfg = ProxyConfig(**shape, tokens=args.tokens, device="cuda", dtype="auto", checkpoints=[1.0],
                          eval_tokens=4096, compile=args.compile)
        m = args.stack or choose_stack_size(cfg, dev)
        fpt = GPT(GPTConfig.from_proxy(cfg, data.vocab_size)).flops_per_token()
        warm = cfg.model_copy(update={"tokens": max(cfg.tokens // 8, cfg.batch_size * cfg.block_size)})
        train_proxy(warm, mixtures(1)[0], data, 0)
        train_proxies_stacked(warm, mixtures(m), data, list(range(m)))
        one, many = [], []
        for r in range(args.repeats):
            one.append(train_proxy(cfg, mixtures(1)[0], data, r).tokens_per_second)
            many.append(stacked_tps(cfg, data, m, r))
        t1, tm = statistics.median(one), statistics.median(many)
        u1, um = mfu(fpt, t1, dev), mfu(fpt, tm, dev)
        print(f"{label}: {fpt / 1e6:.2f} MFLOP per token; one proxy {t1:,.0f} tok/s (MFU {fmt(u1)}); "
              f"{m} stacked {tm:,.0f} tok/s total (MFU {fmt(um)}); ratio {tm / t1:.2f}x", flush=True)
        first = first or (tm / t1, um)
    return first


def run_cpu(args, data) -> tuple[float, None]:
    print("no CUDA device: GPU figures still to be measured (this run measures only the CPU stacked-vs-sequential ratio)")
    cfg = ProxyConfig(tokens=args.tokens, device="cpu", dtype="float32", checkpoints=[1.0], eval_tokens=1024)
    m = args.stack or 4
    warm = cfg.model_copy(update={"tokens": max(cfg.tokens // 8, cfg.batch_size * cfg.block_size)})
    sequential_tps(warm, data, m, 0)
    stacked_tps(warm, data, m, 0)
    seq, stk = [], []
    for r in range(args.repeats):  # interleaved
        seq.append(sequential_tps(cfg, data, m, r))
        stk.append(stacked_tps(cfg, data, m, r))
        print(f"repeat {r}: sequential {seq[-1]:,.0f} tok/s, {m} stacked {stk[-1]:,.0f} tok/s", flush=True)
    s, k = statistics.median(seq), statistics.median(stk)
    print(f"CPU, fp32, threads={torch.get_num_threads()}, {m} proxies x {cfg.tokens:,} tokens: "
          f"sequential {s:,.0f} tok/s, stacked {k:,.0f} tok/s, ratio {k / s:.3f}")
    return k / s, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=None, help="tokens per proxy (default 1M on CUDA, 65,536 on CPU)")
    ap.add_argument("--stack", type=int, default=None, help="proxies per stack (default: choose_stack_size; 4 on CPU)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile the models (CUDA)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    args.tokens = args.tokens or (1_048_576 if cuda else 65_536)
    data = repo_text_domains()
    ratio, util = run_cuda(args, data) if cuda else run_cpu(args, data)
    print(f"stacked_ratio={ratio:.3f} mfu={fmt(util)}")


if __name__ == "__main__":
    main()
