"""How many proxies to train in one stack: measured by a short timed probe, remembered per machine.

A FLOP-count rule picked about 5x too few wide proxies on an H200 (issue 14):
throughput against stack size depends on kernel shapes, memory bandwidth and
launch overheads, which only a measurement sees. So ``probe_stack_size``
times a few real training steps (``step.ModelStack.step``: forward, backward,
per-model clipping, AdamW) at candidate sizes 1, 2, 4, ... up to a memory
bound, and keeps the smallest size within ``TOLERANCE`` of the best measured
throughput. The answer is cached in memory and on disk
(``$MIXOPT_CACHE/stack_probe.json``, keyed by device name, torch version,
shape, batch size and dtype, as the CPU dtype probe does), so every process
of a sweep agrees and the probe runs once per machine.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence

import torch

from ..io import default_cache_dir
from ..io import atomic_write_json
from .device import _cpu_model, _exclusive, _read_json, dtype_name, pick_dtype
from .chunked_ce import CE_CHUNK_ELEMENTS, use_chunked_ce
from .model import GPT, GPTConfig
from .step import GRAPH_EAGER_STEPS, ModelStack, uses_graphs

log = logging.getLogger("mixopt.proxy")

MAX_STACK = 64  # most proxies choose_stack_size puts in one stack
TOLERANCE = 0.03  # keep the smallest size whose throughput is within 3% of the best measured
MEMORY_SHARE = 0.5  # share of the free GPU memory a stack may plan to use

STEP_VERSION = "step2"  # part of the cache key: changed when the step's kernels change (2: folded norms, bf16 softmax)
_KNOWN: dict[str, int] = {}  # this process's answers, by cache key


def choose_stack_size(cfg, device, free_memory_bytes: int | None = None, *, vocab_size: int = 257,
                      max_stack: int = MAX_STACK) -> int:
    """How many proxies of ``cfg``'s shape to train in one stack on ``device``.

    1 on CPU: the CPU path is ``train_proxy``, bit-identical across executors,
    and stacking gains little there. On CUDA: the probed size
    (``probe_stack_size``), at most ``max_stack`` and what the memory estimate
    allows (``stack_memory_limit``).
    """
    device = torch.device(device)
    if device.type != "cuda":
        return 1
    limit = stack_memory_limit(cfg, device, free_memory_bytes, vocab_size=vocab_size, max_stack=max_stack)
    return probe_stack_size(cfg, device, pick_dtype(cfg, device, vocab_size=vocab_size), vocab_size=vocab_size,
                            limit=limit)


def stack_memory_limit(cfg, device, free_memory_bytes: int | None = None, *, vocab_size: int = 257,
                       max_stack: int = MAX_STACK) -> int:
    """Most models a stack may hold: ``MEMORY_SHARE`` of the free memory over a per-model estimate, in [1, max_stack].

    The estimate counts fp32 weights, grads and AdamW state plus bf16 copies,
    the activations a block saves, and the embeddings, logits and fp32 loss.
    With the chunked loss (large vocabularies) no model holds its full logits:
    the stack shares one chunk instead. With CUDA graphs and a WSD schedule the
    activations count twice (a decay branch's graph beside the run's).
    ``free_memory_bytes`` defaults to what CUDA reports free on ``device``.
    """
    shape = GPTConfig.from_proxy(cfg, vocab_size)
    tokens = cfg.batch_size * cfg.block_size
    with torch.device("meta"):
        n_params = GPT(shape).num_params()
    chunked = use_chunked_ce(shape.vocab_size)
    logits = 6 * shape.vocab_size * shape.n_embd if chunked else tokens * shape.vocab_size * 12  # chunked: head grad/bf16 copies
    # a WSD decay branch trained from a CUDA graph captures its own graph, whose memory pool holds a second set of
    # activations while the run's graph keeps its own (one branch trains at a time)
    copies = 2 if uses_graphs(cfg, device) and getattr(cfg, "schedule", "") == "wsd" else 1
    per_model = (18 * n_params  # fp32 params, grads, exp_avg, exp_avg_sq + bf16 weight copies
                 + copies * (shape.n_layer * tokens * shape.n_embd * 48  # saved activations per block, mixed bf16/fp32
                             + tokens * shape.n_embd * 16 + logits))  # embeddings, final norm; logits + fp32 loss
    shared = 10 * CE_CHUNK_ELEMENTS if chunked else 0  # one chunk for the whole stack: bf16 logits, fp32 log-probs, bf16 grad
    if free_memory_bytes is None:
        free_memory_bytes = torch.cuda.mem_get_info(torch.device(device))[0]
    by_memory = int((MEMORY_SHARE * free_memory_bytes - shared) // (1.5 * per_model))
    return max(1, min(max_stack, by_memory))


def candidate_sizes(limit: int) -> list[int]:
    """1, 2, 4, ... below ``limit``, and ``limit`` itself."""
    return sorted({2 ** k for k in range(int(math.log2(max(limit, 1))) + 1)} | {limit})


def pick_best(throughput: dict[int, float], tolerance: float = TOLERANCE) -> int:
    """The smallest stack size whose tokens/s is within ``tolerance`` of the best measured."""
    best = max(throughput.values())
    return min(m for m, tps in throughput.items() if tps >= (1.0 - tolerance) * best)


def probe_stack_size(cfg, device, dtype: torch.dtype, *, vocab_size: int = 257, limit: int = MAX_STACK,
                     candidates: Sequence[int] | None = None, timer: Callable[..., float] | None = None,
                     cache: bool = True) -> int:
    """The stack size with the best measured training throughput (see the module docstring).

    ``timer(cfg, device, dtype, m, vocab_size)`` returns tokens/s of a stack
    of ``m`` (default ``time_stack``); sizes are tried in increasing order and
    the scan stops at an out-of-memory error or once throughput has fallen
    below 80% of the best. With ``cache`` the answer is read from and written
    to ``$MIXOPT_CACHE/stack_probe.json``.
    """
    device = torch.device(device)
    sizes = sorted(candidates) if candidates is not None else candidate_sizes(limit)
    shape = GPTConfig.from_proxy(cfg, vocab_size)
    graphs = ("|compile" if getattr(cfg, "compile", False) else "") + ("|graphs" if uses_graphs(cfg, device) else "")
    key = (f"{_device_name(device)}|torch-{torch.__version__}|{shape}|b{cfg.batch_size}|{dtype_name(dtype)}|{sizes}"
           f"{graphs}|{STEP_VERSION}")
    if cache and key in _KNOWN:
        return _KNOWN[key]
    path = default_cache_dir() / "stack_probe.json"
    known = _read_json(path) if cache else {}
    if key not in known:
        with _exclusive(path) if cache else contextlib.nullcontext():  # the first process to probe decides for the others
            known = _read_json(path) if cache else {}
            if key not in known:
                tps = _scan(cfg, device, dtype, vocab_size, sizes, timer or time_stack)
                known[key] = {"stack": pick_best(tps), "tokens_per_s": {str(m): round(v, 1) for m, v in tps.items()}}
                log.info("stack probe on %s: %s tokens/s by stack size; chose %d", key, tps, known[key]["stack"])
                if cache:
                    try:
                        atomic_write_json(path, known)
                    except Exception:  # a read-only cache only costs a probe per process
                        pass
    _KNOWN[key] = int(known[key]["stack"])
    return _KNOWN[key]


def _scan(cfg, device, dtype, vocab_size, sizes, timer) -> dict[int, float]:
    out: dict[int, float] = {}
    for m in sizes:
        try:
            out[m] = float(timer(cfg, device, dtype, m, vocab_size))
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        if out[m] < 0.8 * max(out.values()):
            break
    if not out:
        return {1: 0.0}
    return out


def time_stack(cfg, device, dtype, m: int, vocab_size: int = 257, *, steps: int = 4, warmup: int = 2) -> float:
    """Training tokens/s of a stack of ``m`` proxies: the fastest of ``steps`` timed steps after ``warmup`` ones.

    Random tokens, the loop's own step; leaves the global RNG state untouched.
    With ``cfg.cuda_graphs`` on CUDA the warm-up also covers the eager steps
    and the capture, so the timed steps are graph replays.
    """
    device = torch.device(device)
    B, T = cfg.batch_size, cfg.block_size
    with torch.random.fork_rng(devices=[]):
        stack = ModelStack.from_seeds(GPTConfig.from_proxy(cfg, vocab_size), list(range(m)), cfg, device, dtype)
        xy = torch.randint(0, vocab_size, (2, m, B, T)).to(device)  # (2, M, B, T)
    if stack.graphs:
        warmup = max(warmup, GRAPH_EAGER_STEPS + 1)
    alive = torch.ones(m, dtype=torch.bool, device=device)
    best = math.inf
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        stack.step(xy[0], xy[1], cfg.lr, alive)
        _sync(device)
        if i >= warmup:
            best = min(best, time.perf_counter() - t0)
    del stack
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return m * B * T / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu:{_cpu_model()}|t{torch.get_num_threads()}"

