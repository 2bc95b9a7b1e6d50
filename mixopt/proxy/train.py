"""Train one proxy on one mixture and record its validation losses.

``train_proxy(cfg, mixture, data, seed)`` is a plain function: it builds the
model, draws batches by token share, trains with AdamW (linear warm-up, then
constant or cosine), evaluates every domain's and target's validation split at
each checkpoint and returns a ``ProxyResult``. A diverging run returns
``status="failed"`` with a reason instead of raising.

Optional ``phases`` switch the batch allocator's target shares part way
through (an end-of-training upsampling phase, a temperature cooldown); with
none the loop is exactly the single-mixture one.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import DataError, MixtureError
from ..mixtures import Mixture
from .batches import MixtureBatches
from .device import autocast, dtype_name, pick_device, pick_dtype
from .model import GPT, GPTConfig

EVAL_BATCH = 64  # evaluation windows per forward pass


@dataclass
class ProxyResult:
    status: str  # "ok" or "failed"
    reason: str | None  # why it failed, None when ok
    metrics: dict[str, float]  # final-checkpoint losses: "val/<domain>", "target/<name>"
    curves: dict[str, dict[str, float]]  # {metric: {str(tokens_seen): loss}}
    tokens_seen: int  # training tokens consumed
    tokens_per_domain: dict[str, int]  # training tokens drawn from each domain
    epochs_per_domain: dict[str, float]  # tokens_per_domain / the domain's unique train tokens
    n_params: int
    device: str
    dtype: str
    train_seconds: float  # wall time of the training steps (evaluation excluded)
    tokens_per_second: float
    steps: int = 0  # optimizer steps taken
    eval_seconds: float = 0.0  # wall time spent evaluating
    threads: int = 0  # CPU threads torch used


def lr_at(step: int, steps: int, cfg) -> float:
    """Learning rate of (0-based) ``step``: linear warm-up, then constant or cosine to ``min_lr_ratio * lr``."""
    warmup = int(cfg.warmup_fraction * steps)
    if step < warmup:
        return cfg.lr * (step + 1) / (warmup + 1)
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - warmup) / max(steps - warmup, 1)
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - floor)


def eval_windows(tokens: np.ndarray, block_size: int, max_tokens: int, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed evaluation windows: contiguous, non-overlapping, from the start of ``tokens``.

    Returns (x, y), each (n_windows, T) int64 with T = block_size, or one
    shorter window when the split holds fewer than block_size + 1 tokens.
    """
    n_tok = int(tokens.shape[0])
    if n_tok < 2:
        raise DataError(f"{where} has {n_tok} validation tokens; at least 2 are needed to measure a loss. "
                        "Add documents to it or raise data.val_fraction.")
    T = min(block_size, n_tok - 1)
    n = max(1, min(max_tokens // T, (n_tok - 1) // T))
    idx = np.arange(n)[:, None] * T + np.arange(T + 1)  # (n, T+1)
    w = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64))  # (n, T+1)
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()


@torch.no_grad()
def evaluate(model: GPT, sets: dict[str, tuple[torch.Tensor, torch.Tensor]], device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    """Mean per-token cross-entropy of each evaluation set (eval mode, no grad)."""
    model.eval()
    out = {}
    for name, (x, y) in sets.items():
        total = torch.zeros((), dtype=torch.float64, device=device)
        for i in range(0, x.shape[0], EVAL_BATCH):
            xb, yb = x[i:i + EVAL_BATCH].to(device), y[i:i + EVAL_BATCH].to(device)  # (b, T)
            with autocast(device, dtype):
                logits, _ = model(xb)  # (b, T, V)
            total += F.cross_entropy(logits.float().flatten(0, 1), yb.flatten(), reduction="sum").double()
        out[name] = float(total.item() / y.numel())
    model.train()
    return out


def make_optimizer(model: torch.nn.Module, cfg, device: torch.device, *, matrix_dim: int = 2) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (matmuls and embeddings), none on norms/biases.

    ``matrix_dim`` is 2 for one model and 3 for a stack of models (a leading model dim).
    """
    decay = [p for p in model.parameters() if p.dim() >= matrix_dim]
    no_decay = [p for p in model.parameters() if p.dim() < matrix_dim]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8, **fused)


@contextlib.contextmanager
def _threads(n: int | None):
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_proxy(cfg, mixture, data, seed: int, *, progress: Callable[[int, int], None] | None = None,
                threads: int | None = None, phases: Sequence[tuple[float, object]] = ()) -> ProxyResult:
    """Train the proxy described by ``cfg`` (a ``ProxyConfig``) on ``mixture`` over ``data`` (a ``DomainSet``).

    Parameters
    ----------
    mixture : Mixture
        Token shares per domain; domains of ``data`` it leaves out get weight 0.
    seed : int
        Seeds the initial weights and the batch offsets; equal inputs give
        bit-identical metrics on CPU (for the same thread count).
    progress : callable(step, steps), optional
        Called after every optimizer step.
    threads : int, optional
        ``torch.set_num_threads`` for the duration of the call (restored after).
    phases : sequence of (start_fraction, Mixture), optional
        Later phases: ``mixture`` trains tokens [0, s_1 * tokens), phase i from
        ``s_i`` on. Starts must be strictly increasing in (0, 1); a phase begins
        at optimizer step ``round(s_i * steps)``. ``tokens_per_domain`` and
        ``epochs_per_domain`` count the whole run.
    """
    with _threads(threads):
        return _train(cfg, mixture, data, seed, progress, phases)


def phase_steps(phases: Sequence[tuple[float, object]], steps: int) -> list[int]:
    """Optimizer step at which each phase starts; validates the start fractions."""
    starts = [float(s) for s, _ in phases]
    if any(not (0.0 < s < 1.0) for s in starts) or any(b <= a for a, b in zip(starts, starts[1:])):
        raise MixtureError(f"Phase start fractions must be strictly increasing values in (0, 1). Got {starts}. "
                           "The first mixture covers tokens from 0; list only the later phases.")
    return [min(steps, max(0, round(s * steps))) for s in starts]


def _train(cfg, mixture, data, seed, progress, phases=()) -> ProxyResult:
    weights = {d: float(w) for d, w in zip(data.names, mixture.vector(data.names))}
    device = pick_device(cfg)
    B, T = cfg.batch_size, cfg.block_size
    steps = cfg.tokens // (B * T)
    ckpt_steps = sorted({min(steps, max(1, round(f * steps))) for f in cfg.checkpoints})
    later = [{d: float(w) for d, w in zip(data.names, Mixture(m, where=f"phase starting at {s}").vector(data.names))}
             for s, m in phases]
    switches = list(zip(phase_steps(phases, steps), later))  # [(step, weights)], in order
    batches = MixtureBatches({d: data.domains[d].train for d in data.names}, weights,
                             batch_size=B, block_size=T, seed=seed, phase_weights=later)
    sets = {f"val/{d}": eval_windows(data.domains[d].val, T, cfg.eval_tokens, f"Domain '{d}'") for d in data.names}
    sets.update({f"target/{t}": eval_windows(data.targets[t].val, T, cfg.eval_tokens, f"Target '{t}'")
                 for t in sorted(data.targets)})
    dtype = pick_dtype(cfg, device, vocab_size=data.vocab_size)

    fork = [torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):  # a local seed, the caller's RNG state is left alone
        torch.manual_seed(seed)
        model = GPT(GPTConfig.from_proxy(cfg, data.vocab_size)).to(device)
    n_params = model.num_params()
    optimizer = make_optimizer(model, cfg, device)
    fwd = torch.compile(model) if cfg.compile else model
    params = list(model.parameters())
    blowup = 3.0 * math.log(data.vocab_size)  # 3x worse than guessing uniformly counts as diverged
    check_every = 1 if device.type == "cpu" else 25  # .item() is free on CPU, a sync on GPU

    curves: dict[str, dict[str, float]] = {k: {} for k in sets}
    status, reason = "ok", None
    train_s = eval_s = 0.0
    done = 0
    next_ckpt = 0
    next_switch = switches.pop(0) if switches else (-1, None)
    clock: float | None = time.perf_counter()  # start of the current stretch of training steps
    for step in range(steps):
        while step == next_switch[0]:  # equal rounded starts: the later phase wins
            batches.start_phase(next_switch[1])
            next_switch = switches.pop(0) if switches else (-1, None)
        lr = lr_at(step, steps, cfg)
        for g in optimizer.param_groups:
            g["lr"] = lr
        x, y = batches.next()
        if device.type != "cpu":
            x, y = x.to(device), y.to(device)
        with autocast(device, dtype):
            _, loss = fwd(x, y)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        at_ckpt = done == ckpt_steps[next_ckpt]
        if done % check_every == 0 or at_ckpt or done == steps:
            value = loss.detach()
            if not bool(torch.isfinite(value) & (value < blowup)):
                status, reason = "failed", _diverged(float(value), step, lr)
                break
        if progress is not None:
            progress(done, steps)
        if at_ckpt:
            train_s += time.perf_counter() - clock
            clock = None
            t1 = time.perf_counter()
            losses = evaluate(model, sets, device, dtype)
            eval_s += time.perf_counter() - t1
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                status, reason = "failed", _diverged(float("nan"), step, lr, where=f"validation loss of {bad[0]}")
                break
            for k, v in losses.items():
                curves[k][str(done * B * T)] = v
            next_ckpt += 1
            clock = time.perf_counter()
    if clock is not None:
        train_s += time.perf_counter() - clock

    tokens_seen = done * B * T
    tpd = {d: batches.tokens_per_domain.get(d, 0) for d in data.names}
    final = str(ckpt_steps[-1] * B * T)
    metrics = {k: c[final] for k, c in curves.items() if final in c} if status == "ok" else {}
    return ProxyResult(
        status=status, reason=reason, metrics=metrics,
        curves={k: c for k, c in curves.items() if c},
        tokens_seen=tokens_seen, tokens_per_domain=tpd,
        epochs_per_domain={d: tpd[d] / max(data.domains[d].unique_tokens, 1) for d in data.names},
        n_params=n_params, device=device.type, dtype=dtype_name(dtype),
        train_seconds=train_s, tokens_per_second=tokens_seen / train_s if train_s > 0 else 0.0,
        steps=done, eval_seconds=eval_s, threads=torch.get_num_threads(),
    )


def _diverged(loss: float, step: int, lr: float, where: str = "training loss") -> str:
    return (f"diverged: {where}={loss:.4g} at step {step} (lr={lr:.3g}). "
            "Lower proxy.lr, raise proxy.warmup_fraction, or keep proxy.grad_clip on.")
