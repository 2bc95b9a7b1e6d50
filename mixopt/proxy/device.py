"""Where the proxy trains (CPU or CUDA) and in which precision.

bf16 autocast on CUDA. On CPU, bf16 autocast pays off only on CPUs with fast
bf16 matmuls (e.g. Intel AMX); elsewhere it is slower than fp32. So on CPU a
short probe times a few forward/backward steps of the actual model shape in
both precisions and keeps the faster one; the answer is cached per process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import platform
import time

import torch
from filelock import FileLock

from ..io import default_cache_dir
from ..io import atomic_write_json
from .model import GPT, GPTConfig

log = logging.getLogger("mixopt.proxy")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def pick_device(cfg) -> torch.device:
    """CUDA when present, unless ``cfg.device`` asks for CPU; "cuda" without a GPU falls back to CPU with a warning."""
    want = getattr(cfg, "device", "auto")
    if want == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if want == "cuda":
        log.warning("proxy.device is 'cuda' but torch sees no CUDA device; training on CPU instead.")
    return torch.device("cpu")


def pick_dtype(cfg, device: torch.device | str, *, vocab_size: int = 257) -> torch.dtype:
    """The autocast dtype for training: float32 or bfloat16.

    ``cfg.dtype`` other than "auto" is used as given. "auto" means bf16 on
    CUDA and, on CPU, whichever precision ``probe_cpu_bf16`` finds faster for
    this model shape.
    """
    device = torch.device(device)
    want = getattr(cfg, "dtype", "auto")
    if want != "auto":
        return _DTYPES[want]
    if device.type == "cuda":
        log.info("proxy dtype: bfloat16 (CUDA)")
        return torch.bfloat16
    if device.type != "cpu":
        return torch.float32
    shape = GPTConfig.from_proxy(cfg, vocab_size)
    dtype = torch.bfloat16 if cpu_prefers_bf16(shape, cfg.batch_size, torch.get_num_threads()) else torch.float32
    log.info("proxy dtype: %s on CPU", dtype_name(dtype))
    return dtype


def resolved_dtype(cfg, *, vocab_size: int = 257, threads: int | None = None) -> str:
    """The dtype name ("float32" or "bfloat16") ``cfg`` trains in on this machine: :func:`pick_dtype` on
    :func:`pick_device`, with ``threads`` torch threads (the CPU probe's answer is per thread count, so pass the
    count a run trains with). A sweep records it in store.json so every later run of the store trains alike."""
    device = pick_device(cfg)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return dtype_name(pick_dtype(cfg, device, vocab_size=vocab_size))
    finally:
        torch.set_num_threads(before)


BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})  # CPU instructions for bf16 math; without them it is emulated


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (:data:`BF16_CPU_FLAGS`); else ``auto`` never picks bf16 on it."""
    return bool(BF16_CPU_FLAGS & _cpu_flags())


def auto_dtype_reason(cfg, dtype: str) -> str:
    """Why ``proxy.dtype: auto`` picks ``dtype`` on this machine, for a line to people."""
    if pick_device(cfg).type == "cuda":
        return "bf16 on CUDA"
    if not cpu_has_bf16():
        return "this CPU has no bf16 instructions, so bf16 is emulated on it, likely much slower"
    faster = "bf16 at least 10% faster" if dtype == "bfloat16" else "bf16 not 10% faster than float32"
    return f"this CPU's timing probe, cached in {default_cache_dir() / 'dtype_probe.json'}, found {faster}"


def cpu_prefers_bf16(shape: GPTConfig, batch_size: int, threads: int) -> bool:
    """Whether bf16 autocast beats fp32 on this CPU, decided once per machine and remembered on disk.

    A timing probe alone would flip between processes on a busy machine and
    break bit-identical results, so the first answer is stored (keyed by CPU,
    torch version, model shape and threads) and every later process reuses it.
    bf16 must win by 10%; CPUs without bf16 instructions never probe.
    """
    if not cpu_has_bf16():
        return False
    key = f"{_cpu_model()}|torch-{torch.__version__}|{shape}|b{batch_size}|t{threads}"
    path = default_cache_dir() / "dtype_probe.json"
    known = _read_json(path)
    if key not in known:
        with _exclusive(path):  # the first process to probe decides for all the others
            known = _read_json(path)
            if key not in known:
                fp32_s, bf16_s = probe_cpu_bf16(shape, batch_size, threads)
                known[key] = {"bf16": bool(bf16_s < 0.9 * fp32_s), "fp32_ms": 1e3 * fp32_s, "bf16_ms": 1e3 * bf16_s}
                log.info("CPU dtype probe: fp32 %.1f ms/step, bf16 %.1f ms/step", 1e3 * fp32_s, 1e3 * bf16_s)
                try:
                    atomic_write_json(path, known)
                except Exception:  # a read-only cache only costs a probe per process
                    pass
    return bool(known[key]["bf16"])


@contextlib.contextmanager
def _exclusive(path):
    """Hold a lock file next to `path`; on a read-only cache go on without it."""
    lock = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock")
        lock.acquire()
    except OSError:
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _read_json(path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _cpu_flags() -> set[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def autocast(device: torch.device, dtype: torch.dtype):
    """The autocast context for a training or evaluation step (disabled for fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype is torch.bfloat16)


@functools.lru_cache(maxsize=None)
def probe_cpu_bf16(shape: GPTConfig, batch_size: int, threads: int, steps: int = 5) -> tuple[float, float]:
    """Fastest seconds per fwd/bwd step on CPU in (fp32, bf16 autocast) for this model shape.

    Takes well under a second for the default proxy; runs once per process per
    (shape, batch size, thread count). Leaves the global RNG state untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT(shape)
        x = torch.randint(0, shape.vocab_size, (batch_size, shape.block_size))  # (B, T)
        y = torch.randint(0, shape.vocab_size, (batch_size, shape.block_size))  # (B, T)
    times: dict[torch.dtype, list[float]] = {torch.float32: [], torch.bfloat16: []}
    cpu = torch.device("cpu")
    for i in range(steps + 1):  # interleaved, the first round is warm-up
        for dtype in times:
            t0 = time.perf_counter()
            with autocast(cpu, dtype):
                _, loss = model(x, y)
            loss.backward()
            model.zero_grad(set_to_none=True)
            if i:
                times[dtype].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}  # the fastest step is the one least disturbed by other processes
    return best[torch.float32], best[torch.bfloat16]


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "float32", torch.bfloat16: "bfloat16"}.get(dtype, str(dtype))
