"""The one training loop of the proxy trainer: M runs of one shape trained in lock step (M >= 1).

``train_runs`` builds the models, draws each run's batches by its token shares
(switching phases on the way), trains with AdamW under the learning-rate
schedule of ``schedule.py``, evaluates every domain's and target's validation
split at each checkpoint, runs the decay branches of a WSD schedule and
assembles one ``ProxyResult`` per run. ``train_proxy`` is the M = 1 case and
``train_proxies_stacked`` the M > 1 case of this one function (``train.py``).

What differs with M lives in ``step.ModelStack`` only: M = 1 trains the plain
``GPT`` (so one run's numbers are the nanoGPT loop's, bit for bit on CPU at a
fixed thread count), M > 1 a ``StackedGPT`` with per-model clipping and a
masked loss, so a run that diverges stops counting while the others go on.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError
from ..mixtures import Phases
from .batches import MixtureBatches, StackBatches
from .device import dtype_name, pick_dtype
from .model import GPTConfig
from .schedule import checkpoint_steps, decay_branches, lr_at, schedule_info, warmup_steps
from .step import ModelStack, evaluate

@dataclass
class ProxyResult:
    """One run's outcome. ``curves[metric][str(tokens)]`` holds a loss per measured budget.

    Under ``schedule["name"] == "wsd"`` each entry below the run's own tokens
    is the end of a decay branch to that budget (a loss trained with WSD
    straight to it), and the last entry is the run's own decayed end; under
    "cosine" / "constant" every entry is the run's loss at that point.
    ``metrics`` is the entry at the run's tokens.
    """

    status: str  # "ok" or "failed"
    reason: str | None  # why it failed, None when ok
    metrics: dict[str, float]  # final-checkpoint losses: "val/<domain>", "target/<name>"
    curves: dict[str, dict[str, float]]  # {metric: {str(tokens): loss}}; under wsd each value is a decay branch's end
    tokens_seen: int  # training tokens of the run itself (decay branches excluded)
    tokens_per_domain: dict[str, int]  # training tokens drawn from each domain
    epochs_per_domain: dict[str, float]  # tokens_per_domain / the domain's unique train tokens
    n_params: int  # all parameters (tied token table once)
    device: str
    dtype: str
    train_seconds: float  # wall time of the run's training steps (evaluation and branches excluded)
    tokens_per_second: float
    steps: int = 0  # optimizer steps taken
    eval_seconds: float = 0.0  # wall time spent evaluating
    threads: int = 0  # CPU threads torch used
    n_params_non_embedding: int = 0  # without the token and position tables: the N of scale laws
    flops_per_token: float = 0.0  # training FLOPs per token (GPT.flops_per_token), for MFU
    schedule: dict = field(default_factory=dict)  # the learning-rate schedule (schedule.schedule_info)
    branch_tokens: int = 0  # extra training tokens spent in WSD decay branches
    branch_seconds: float = 0.0  # wall time of the decay branches' training steps


def eval_token_count(n_tok: int, block_size: int, max_tokens: int) -> int:
    """Tokens :func:`eval_windows` evaluates of a split of ``n_tok`` (>= 2) tokens: whole windows of ``block_size``
    (shorter when the split is), at least one, at most ``max_tokens`` and what the split holds."""
    T = min(block_size, n_tok - 1)
    return max(1, min(max_tokens // T, (n_tok - 1) // T)) * T


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
    n = eval_token_count(n_tok, block_size, max_tokens) // T
    idx = np.arange(n)[:, None] * T + np.arange(T + 1)  # (n, T+1)
    w = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64))  # (n, T+1)
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()


@contextlib.contextmanager
def torch_threads(n: int | None):
    """``torch.set_num_threads(n)`` inside the block, restored after; None leaves it alone."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_runs(cfg, schedules: list[Phases], data, seeds: list[int], device: torch.device, progress=None) -> list[ProxyResult]:
    """Train run i on ``schedules[i]`` (validated ``Phases``) with ``seeds[i]``; one ``ProxyResult`` per run."""
    M, names = len(schedules), data.names
    B, T = cfg.batch_size, cfg.block_size
    steps = cfg.tokens // (B * T)
    branches = decay_branches(cfg, steps)
    ckpts = [s for s in checkpoint_steps(cfg, steps) if s not in {b for _, b in branches}]  # measured on the run
    batches, switches = [], []
    for phases, seed in zip(schedules, seeds):
        ws = [dict(zip(names, map(float, m.vector(names)))) for _, m in phases]
        batches.append(MixtureBatches({d: data.domains[d].train for d in names}, ws[0], batch_size=B, block_size=T,
                                      seed=seed, phase_weights=ws[1:]))
        switches.append([(min(steps, max(0, round(s * steps))), w) for (s, _), w in zip(phases[1:], ws[1:])])
    drawer = StackBatches(batches)  # all runs' batches at once, each as its own MixtureBatches would draw it
    sets = {f"val/{d}": eval_windows(data.domains[d].val, T, cfg.eval_tokens, f"Domain '{d}'") for d in names}
    sets.update({f"target/{t}": eval_windows(data.targets[t].val, T, cfg.eval_tokens, f"Target '{t}'")
                 for t in sorted(data.targets)})
    if device.type == "cuda":  # the evaluation windows go to the GPU once, not at every checkpoint (a no-op on CPU)
        sets = {k: (x.to(device), y.to(device)) for k, (x, y) in sets.items()}
    dtype = pick_dtype(cfg, device, vocab_size=data.vocab_size)
    stack = ModelStack.from_seeds(GPTConfig.from_proxy(cfg, data.vocab_size), seeds, cfg, device, dtype)
    blowup = 3.0 * math.log(data.vocab_size)  # 3x worse than guessing uniformly counts as diverged
    check_every = 1 if device.type == "cpu" else 25  # .item() is free on CPU, a sync on GPU
    warmup = warmup_steps(steps, cfg)

    cuda = device.type == "cuda"  # two pinned host buffers, so filling one overlaps the copy of the other
    stage = [torch.zeros((2, M, B, T), dtype=torch.long, pin_memory=cuda) for _ in range(2 if cuda else 1)]
    copied: list = [None, None]  # CUDA event per buffer: its last copy to the device is done
    curves = [{k: {} for k in sets} for _ in range(M)]
    status, reason = ["ok"] * M, [None] * M
    done = [0] * M
    alive = torch.ones(M, dtype=torch.bool, device=device)  # (M,)
    secs = {"train": 0.0, "eval": 0.0, "branch": 0.0}
    branch_steps = 0
    pending: list[tuple[int, int, ModelStack, list]] = []  # open decay branches: (fork, budget, copy, batches since fork)

    def record(losses_at: dict[str, list[float]], at_step: int, where: str = "") -> None:
        for i in range(M):
            if status[i] != "ok":
                continue
            bad = [k for k, v in losses_at.items() if not math.isfinite(v[i])]
            if bad:
                status[i] = "failed"
                reason[i] = _diverged(float("nan"), at_step, lr, where=f"validation loss of {bad[0]}{where}")
                alive[i] = False
                continue
            for k, v in losses_at.items():
                curves[i][k][str(at_step * B * T)] = v[i]

    next_ckpt = 0
    clock = time.perf_counter()  # start of the current stretch of training steps
    for step in range(steps):
        live = [i for i in range(M) if status[i] == "ok"]
        if not live:
            break
        if any(fork == step for fork, _ in branches):  # copy the models where a decay branch leaves the run
            t1 = time.perf_counter()
            secs["train"] += t1 - clock
            pending += [(fork, budget, stack.branch(), []) for fork, budget in branches if fork == step]
            clock = time.perf_counter()
            secs["branch"] += clock - t1
        slot = step % len(stage)
        if copied[slot] is not None:
            copied[slot].synchronize()
        buf = stage[slot]
        for i in live:
            while switches[i] and switches[i][0][0] == step:  # equal rounded starts: the later phase wins
                batches[i].start_phase(switches[i].pop(0)[1])
        drawer.next_into(buf, live)  # each live run's (B, T) inputs and targets, straight into the staging buffer
        xy = buf.to(device, non_blocking=True)  # (2, M, B, T)
        if cuda:
            copied[slot] = torch.cuda.Event()
            copied[slot].record()
        for p in pending:
            p[3].append(xy if cuda else xy.clone())  # on CPU xy is the reused buffer itself
        lr = lr_at(step, steps, cfg)
        losses = stack.step(xy[0], xy[1], lr, alive)
        for i in live:
            done[i] = step + 1
        at_ckpt = step + 1 == ckpts[next_ckpt]
        ends = [p for p in pending if p[1] == step + 1]
        if (step + 1) % check_every == 0 or at_ckpt or ends or step + 1 == steps:
            values = losses.detach().float().cpu().tolist()
            for i in live:
                if not (math.isfinite(values[i]) and values[i] < blowup):
                    status[i], reason[i] = "failed", _diverged(values[i], step, lr)
                    alive[i] = False
        if progress is not None:
            progress(step + 1, steps)
        if at_ckpt or ends:
            secs["train"] += time.perf_counter() - clock
        if at_ckpt:
            t1 = time.perf_counter()
            record(evaluate(stack, sets), step + 1)
            secs["eval"] += time.perf_counter() - t1
            next_ckpt += 1
        for p in ends:  # train the copy taken at the fork with this budget's decay, on the run's own batches
            fork, budget, branch, seen = p
            t1 = time.perf_counter()
            for j, bxy in enumerate(seen):
                branch.step(bxy[0], bxy[1], lr_at(fork + j, budget, cfg, warmup=warmup), alive)
            branch_steps += len(seen)
            t2 = time.perf_counter()
            record(evaluate(branch, sets), budget, where=f" in the decay branch to {budget * B * T} tokens")
            secs["branch"] += t2 - t1
            secs["eval"] += time.perf_counter() - t2
        if ends:
            pending = [p for p in pending if p[1] != step + 1]
        if at_ckpt or ends:
            clock = time.perf_counter()
    secs["train"] += time.perf_counter() - clock

    final = str(steps * B * T)
    model = stack.model
    shared = dict(n_params=model.num_params(), n_params_non_embedding=model.num_params(non_embedding=True),
                  flops_per_token=model.flops_per_token(), device=device.type, dtype=dtype_name(dtype),
                  train_seconds=secs["train"], eval_seconds=secs["eval"], branch_seconds=secs["branch"],
                  threads=torch.get_num_threads(), schedule=schedule_info(cfg, steps))
    out = []
    for i in range(M):
        seen = done[i] * B * T
        tpd = {d: batches[i].tokens_per_domain.get(d, 0) for d in names}
        c = curves[i]
        out.append(ProxyResult(
            status=status[i], reason=reason[i],
            metrics={k: v[final] for k, v in c.items() if final in v} if status[i] == "ok" else {},
            curves={k: v for k, v in c.items() if v}, tokens_seen=seen, tokens_per_domain=tpd,
            epochs_per_domain={d: tpd[d] / max(data.domains[d].unique_tokens, 1) for d in names},
            tokens_per_second=seen / secs["train"] if secs["train"] > 0 else 0.0, steps=done[i],
            branch_tokens=branch_steps * B * T if status[i] == "ok" else 0, **shared))
    return out


def _diverged(loss: float, step: int, lr: float, where: str = "training loss") -> str:
    return (f"diverged: {where}={loss:.4g} at step {step} (lr={lr:.3g}). "
            "Lower proxy.lr, raise proxy.warmup_fraction, or keep proxy.grad_clip on.")
