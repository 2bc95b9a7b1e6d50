"""Train M small proxies at once, with their weights stacked along a leading model dim.

One default proxy (~123k params) cannot fill a GPU: each step is a few hundred
tiny kernels. ``StackedGPT`` holds M independent copies of ``GPT`` whose
parameters are shaped (M, ...) and runs them through batched matmuls
(``torch.bmm``), so M proxies cost one kernel stream. Each model reads its own
batches (input (M, B, T)) and has its own loss; AdamW is elementwise, so one
AdamW over the stacked parameters is M separate AdamWs, and gradient clipping
is done per model (``clip_grad_norm_per_model_``).

``train_proxies_stacked`` mirrors ``train_proxy`` run by run (same init per
seed, same batches per mixture, same schedule, evaluation and divergence
checks); results agree to float rounding, not bit for bit, since batched and
single matmuls sum in different orders. On CPU stacking gains little, so
``choose_stack_size`` returns 1 there and callers keep using ``train_proxy``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..mixtures import Mixture
from .batches import MixtureBatches
from .device import autocast, dtype_name, pick_device, pick_dtype
from .model import GPT, GPTConfig
from .train import ProxyResult, _diverged, _threads, eval_windows, lr_at, phase_steps

EVAL_BATCH = 64  # evaluation windows per forward pass (per model)
MAX_STACK = 64  # most proxies choose_stack_size puts in one stack
FILL_FLOPS = 5e11  # training FLOPs per step that keep a big GPU busy past launch overheads (~0.5 ms on an H100)


class StackedLinear(nn.Module):
    """M independent ``nn.Linear`` layers: weight (M, out, in), bias (M, out)."""

    def __init__(self, m: int, n_in: int, n_out: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(m, n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(m, n_out)) if bias else None

    def forward(self, x):  # (M, N, in) -> (M, N, out)
        if self.bias is None:
            return torch.bmm(x, self.weight.transpose(1, 2))
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedLayerNorm(nn.Module):
    """M independent LayerNorms: weight (M, C), optional bias (M, C)."""

    def __init__(self, m: int, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(m, ndim))
        self.bias = nn.Parameter(torch.zeros(m, ndim)) if bias else None

    def forward(self, x):  # (M, N, C) -> (M, N, C)
        y = F.layer_norm(x, x.shape[-1:], eps=1e-5) * self.weight.unsqueeze(1)
        return y if self.bias is None else y + self.bias.unsqueeze(1)


class StackedEmbedding(nn.Module):
    """M independent embedding tables: weight (M, num, C)."""

    def __init__(self, m: int, num: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(m, num, dim))

    def forward(self, idx):  # (M, ...) ids -> (M, ..., C)
        m, num, dim = self.weight.shape
        offset = (torch.arange(m, device=idx.device) * num).view(m, *[1] * (idx.dim() - 1))
        return F.embedding(idx + offset, self.weight.reshape(m * num, dim))


class StackedAttention(nn.Module):
    def __init__(self, m: int, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.c_attn = StackedLinear(m, config.n_embd, 3 * config.n_embd, config.bias)
        self.c_proj = StackedLinear(m, config.n_embd, config.n_embd, config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, B: int, T: int):
        M, _, C = x.shape  # (M, B*T, C)
        qkv = self.c_attn(x)  # (M, B*T, 3C)
        cpu_bf16 = x.device.type == "cpu" and torch.is_autocast_enabled("cpu")  # as in GPT: attend in fp32 there
        if cpu_bf16:
            qkv = qkv.float()
        nh, hs = self.n_head, C // self.n_head
        q, k, v = (t.reshape(M * B, T, nh, hs).transpose(1, 2) for t in qkv.split(C, dim=2))  # 3 x (M*B, nh, T, hs)
        p = self.dropout if self.training else 0.0
        with torch.autocast("cpu", enabled=False) if cpu_bf16 else contextlib.nullcontext():
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (M*B, nh, T, hs)
        y = y.transpose(1, 2).reshape(M, B * T, C)  # (M, B*T, C)
        return self.resid_dropout(self.c_proj(y))  # (M, B*T, C)


class StackedMLP(nn.Module):
    def __init__(self, m: int, config: GPTConfig):
        super().__init__()
        self.c_fc = StackedLinear(m, config.n_embd, 4 * config.n_embd, config.bias)
        self.c_proj = StackedLinear(m, 4 * config.n_embd, config.n_embd, config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))  # (M, B*T, C)


class StackedBlock(nn.Module):
    def __init__(self, m: int, config: GPTConfig):
        super().__init__()
        self.ln_1 = StackedLayerNorm(m, config.n_embd, config.bias)
        self.attn = StackedAttention(m, config)
        self.ln_2 = StackedLayerNorm(m, config.n_embd, config.bias)
        self.mlp = StackedMLP(m, config)

    def forward(self, x, B: int, T: int):
        x = x + self.attn(self.ln_1(x), B, T)  # (M, B*T, C)
        return x + self.mlp(self.ln_2(x))  # (M, B*T, C)


class StackedGPT(nn.Module):
    """M independent ``GPT``s of one shape; parameter names match ``GPT``'s, with a leading (M,) dim."""

    def __init__(self, config: GPTConfig, n_models: int):
        super().__init__()
        if n_models < 1:
            raise ValueError(f"n_models must be at least 1, got {n_models}.")
        if config.n_embd % config.head_size:
            raise ValueError(f"n_embd ({config.n_embd}) must be a multiple of head_size ({config.head_size}).")
        self.config, self.n_models = config, n_models
        m = n_models
        self.transformer = nn.ModuleDict(dict(
            wte=StackedEmbedding(m, config.vocab_size, config.n_embd),
            wpe=StackedEmbedding(m, config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([StackedBlock(m, config) for _ in range(config.n_layer)]),
            ln_f=StackedLayerNorm(m, config.n_embd, config.bias),
        ))
        self.lm_head = StackedLinear(m, config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, as in GPT
        for name, p in self.named_parameters():  # GPT's init, drawn independently per model
            if p.dim() == 3:
                std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    @classmethod
    def from_models(cls, models: Sequence[GPT]) -> "StackedGPT":
        """Stack the weights of ``models`` (one shape); model i becomes slice i."""
        if not models:
            raise ValueError("from_models needs at least one GPT.")
        config = models[0].config
        if any(m.config != config for m in models):
            raise ValueError(f"All models must share one GPTConfig; got {sorted({str(m.config) for m in models})}.")
        dev = next(models[0].parameters()).device
        stacked = cls(config, len(models)).to(dev)
        states = [m.state_dict() for m in models]
        with torch.no_grad():
            for name, p in stacked.named_parameters():
                p.copy_(torch.stack([s[name] for s in states]))
        return stacked

    @classmethod
    def from_seeds(cls, config: GPTConfig, seeds: Sequence[int]) -> "StackedGPT":
        """The stack of ``GPT(config)`` built under ``torch.manual_seed(seed)`` each, as ``train_proxy`` does."""
        models = []
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):  # the caller's RNG state is left alone
                torch.manual_seed(seed)
                models.append(GPT(config))
        return cls.from_models(models)

    def unstack(self) -> list[GPT]:
        """M separate ``GPT``s (on this stack's device) holding copies of each slice."""
        dev = self.lm_head.weight.device
        state = self.state_dict()
        out = []
        for i in range(self.n_models):
            model = GPT(self.config).to(dev)
            model.load_state_dict({k: v[i].clone() for k, v in state.items()})
            out.append(model)
        return out

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters of one model (as ``GPT.num_params``)."""
        n = sum(p[0].numel() for p in self.parameters())
        return n - self.transformer.wpe.weight[0].numel() if non_embedding else n

    def flops_per_token(self) -> float:
        """Training FLOPs per token of one model (as ``GPT.flops_per_token``)."""
        c = self.config
        return 6.0 * self.num_params(non_embedding=True) + 12.0 * c.n_layer * c.n_embd * c.block_size

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits (M, B, T, V) for ids (M, B, T) and, with ``targets`` (M, B, T), each model's mean loss (M,)."""
        M, B, T = idx.shape
        if M != self.n_models:
            raise ValueError(f"idx holds {M} models' batches, but the stack has {self.n_models}; pass (M, B, T) ids.")
        if T > self.config.block_size:
            raise ValueError(f"Sequence length {T} exceeds block_size {self.config.block_size}; crop the input.")
        pos = self.transformer.wpe.weight[:, :T].unsqueeze(1)  # (M, 1, T, C)
        x = self.transformer.drop(self.transformer.wte(idx) + pos).reshape(M, B * T, -1)  # (M, B*T, C)
        for block in self.transformer.h:
            x = block(x, B, T)  # (M, B*T, C)
        logits = self.lm_head(self.transformer.ln_f(x))  # (M, B*T, V)
        losses = None
        if targets is not None:
            ce = F.cross_entropy(logits.flatten(0, 1).float(), targets.reshape(-1), reduction="none")  # (M*B*T,)
            losses = ce.view(M, B * T).mean(1)  # (M,)
        return logits.view(M, B, T, -1), losses


def clip_grad_norm_per_model_(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``clip_grad_norm_`` for each model of a stack separately; returns the norms before clipping, (M,).

    Every parameter's gradient is (M, ...); model m's norm is taken over slice m
    of all of them, and only slice m is scaled.
    """
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # (P, M)
    total = torch.linalg.vector_norm(norms, dim=0)  # (M,)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)  # (M,), as torch.nn.utils.clip_grad_norm_
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)).to(g.dtype))
    return total


def stacked_optimizer(model: StackedGPT, cfg, device: torch.device) -> torch.optim.AdamW:
    """``train_proxy``'s AdamW for a stack: decay on (M, ...) matrices and tables, none on norms/biases."""
    from .train import make_optimizer

    return make_optimizer(model, cfg, device, matrix_dim=3)


@torch.no_grad()
def evaluate_stacked(model: StackedGPT, sets: dict[str, tuple[torch.Tensor, torch.Tensor]],
                     device: torch.device, dtype: torch.dtype) -> dict[str, list[float]]:
    """Each model's mean per-token cross-entropy on each set (as ``train.evaluate``, M values per set)."""
    model.eval()
    M = model.n_models
    out = {}
    for name, (x, y) in sets.items():
        total = torch.zeros(M, dtype=torch.float64, device=device)
        for i in range(0, x.shape[0], EVAL_BATCH):
            xb, yb = x[i:i + EVAL_BATCH].to(device), y[i:i + EVAL_BATCH].to(device)  # (b, T)
            with autocast(device, dtype):
                logits, _ = model(xb.expand(M, *xb.shape))  # (M, b, T, V)
            ce = F.cross_entropy(logits.float().flatten(0, 2), yb.expand(M, *yb.shape).flatten(), reduction="none")
            total += ce.view(M, -1).sum(1).double()  # (M,)
        out[name] = (total / y.numel()).tolist()
    model.train()
    return out


def choose_stack_size(cfg, device, free_memory_bytes: int | None = None, *, vocab_size: int = 257,
                      max_stack: int = MAX_STACK) -> int:
    """How many proxies of ``cfg``'s shape to train in one stack on ``device``.

    1 on CPU (stacking gains little there and ``train_proxy`` stays the CPU
    path). On CUDA: enough models that a step does ``FILL_FLOPS`` of work,
    capped by ``max_stack`` and by half the free GPU memory over a per-model
    estimate (fp32 weights, grads and AdamW state, bf16 activations, logits).
    """
    device = torch.device(device)
    if device.type != "cuda":
        return 1
    shape = GPTConfig.from_proxy(cfg, vocab_size)
    tokens = cfg.batch_size * cfg.block_size
    with torch.device("meta"):
        per_token = GPT(shape).flops_per_token()
        n_params = GPT(shape).num_params()
    fill = math.ceil(FILL_FLOPS / (per_token * tokens))
    per_model = (18 * n_params  # fp32 params, grads, exp_avg, exp_avg_sq + bf16 weight copies
                 + shape.n_layer * tokens * shape.n_embd * 48  # saved activations per block, mixed bf16/fp32
                 + tokens * (shape.n_embd * 16 + shape.vocab_size * 12))  # embeddings, final norm, logits + fp32 loss
    if free_memory_bytes is None:
        free_memory_bytes = torch.cuda.mem_get_info(device)[0]
    by_memory = int(0.5 * free_memory_bytes // (1.5 * per_model))
    return max(1, min(max_stack, fill, by_memory))


def train_proxies_stacked(cfg, mixtures: Sequence[Mixture], data, seeds: Sequence[int], *, device=None,
                          phases: Sequence[Sequence[tuple[float, object]]] | None = None,
                          progress: Callable[[int, int], None] | None = None,
                          threads: int | None = None) -> list[ProxyResult]:
    """Train one proxy per (mixture, seed) pair together in one ``StackedGPT``; one ``ProxyResult`` each.

    Run i matches ``train_proxy(cfg, mixtures[i], data, seeds[i], phases=phases[i])``
    to float rounding. A run that diverges stops counting (status "failed",
    its tokens and steps up to the failure) while the others go on.
    ``train_seconds`` / ``eval_seconds`` are the stack's shared wall times, so
    each run's ``tokens_per_second`` is its own tokens over that time; sum
    them for the stack's throughput. ``device`` defaults to ``pick_device(cfg)``.
    """
    if len(mixtures) != len(seeds) or not mixtures:
        raise ValueError(f"Need one seed per mixture and at least one run; got {len(mixtures)} mixtures and "
                         f"{len(seeds)} seeds.")
    phases = [()] * len(mixtures) if phases is None else [tuple(p) for p in phases]
    if len(phases) != len(mixtures):
        raise ValueError(f"phases must hold one entry per mixture ({len(mixtures)}), got {len(phases)}.")
    with _threads(threads):
        return _train(cfg, list(mixtures), data, list(seeds), phases, device, progress)


def _train(cfg, mixtures, data, seeds, phases, device, progress) -> list[ProxyResult]:
    M, names = len(mixtures), data.names
    device = pick_device(cfg) if device is None else torch.device(device)
    B, T = cfg.batch_size, cfg.block_size
    steps = cfg.tokens // (B * T)
    ckpt_steps = sorted({min(steps, max(1, round(f * steps))) for f in cfg.checkpoints})
    def vec(m, where="mixture") -> dict[str, float]:
        return dict(zip(names, map(float, Mixture(m, where=where).vector(names))))

    batches, switches = [], []
    for mix, seed, ph in zip(mixtures, seeds, phases):
        later = [vec(m, f"phase starting at {s}") for s, m in ph]
        batches.append(MixtureBatches({d: data.domains[d].train for d in names}, vec(mix),
                                      batch_size=B, block_size=T, seed=seed, phase_weights=later))
        switches.append(list(zip(phase_steps(ph, steps), later)))  # [(step, weights)], in order
    sets = {f"val/{d}": eval_windows(data.domains[d].val, T, cfg.eval_tokens, f"Domain '{d}'") for d in names}
    sets.update({f"target/{t}": eval_windows(data.targets[t].val, T, cfg.eval_tokens, f"Target '{t}'")
                 for t in sorted(data.targets)})
    dtype = pick_dtype(cfg, device, vocab_size=data.vocab_size)

    model = StackedGPT.from_seeds(GPTConfig.from_proxy(cfg, data.vocab_size), seeds).to(device)
    optimizer = stacked_optimizer(model, cfg, device)
    fwd = torch.compile(model) if cfg.compile else model
    params = list(model.parameters())
    blowup = 3.0 * math.log(data.vocab_size)
    check_every = 1 if device.type == "cpu" else 25  # .item() is free on CPU, a sync on GPU

    cuda = device.type == "cuda"  # two pinned host buffers, so filling one overlaps the copy of the other
    stage = [torch.zeros((2, M, B, T), dtype=torch.long, pin_memory=cuda) for _ in range(2)]  # (x|y, M, B, T)
    copied: list = [None, None]  # CUDA event per buffer: its last copy to the device is done
    curves = [{k: {} for k in sets} for _ in range(M)]
    status, reason = ["ok"] * M, [None] * M
    done = [0] * M
    alive = torch.ones(M, dtype=torch.bool, device=device)  # (M,)
    train_s = eval_s = 0.0
    next_ckpt = 0
    clock: float | None = time.perf_counter()
    for step in range(steps):
        live = [i for i in range(M) if status[i] == "ok"]
        if not live:
            break
        buf = stage[step % 2]
        if copied[step % 2] is not None:
            copied[step % 2].synchronize()
        for i in live:
            while switches[i] and switches[i][0][0] == step:  # equal rounded starts: the later phase wins
                batches[i].start_phase(switches[i].pop(0)[1])
            buf[:, i] = torch.stack(batches[i].next())  # (2, B, T)
        xy = buf.to(device, non_blocking=True)  # (2, M, B, T)
        if cuda:
            copied[step % 2] = torch.cuda.Event()
            copied[step % 2].record()
        lr = lr_at(step, steps, cfg)
        for g in optimizer.param_groups:
            g["lr"] = lr
        with autocast(device, dtype):
            _, losses = fwd(xy[0], xy[1])  # (M,)
        torch.where(alive, losses, torch.zeros_like(losses)).sum().backward()  # models are independent
        if cfg.grad_clip > 0:
            clip_grad_norm_per_model_(params, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for i in live:
            done[i] = step + 1
        at_ckpt = step + 1 == ckpt_steps[next_ckpt]
        if (step + 1) % check_every == 0 or at_ckpt or step + 1 == steps:
            values = losses.detach().float().cpu().tolist()
            for i in live:
                if not (math.isfinite(values[i]) and values[i] < blowup):
                    status[i], reason[i] = "failed", _diverged(values[i], step, lr)
                    alive[i] = False
        if progress is not None:
            progress(step + 1, steps)
        if at_ckpt:
            train_s += time.perf_counter() - clock
            t1 = time.perf_counter()
            losses_at = evaluate_stacked(model, sets, device, dtype)
            eval_s += time.perf_counter() - t1
            for i in range(M):
                if status[i] != "ok":
                    continue
                bad = [k for k, v in losses_at.items() if not math.isfinite(v[i])]
                if bad:
                    status[i] = "failed"
                    reason[i] = _diverged(float("nan"), step, lr, where=f"validation loss of {bad[0]}")
                    alive[i] = False
                    continue
                for k, v in losses_at.items():
                    curves[i][k][str((step + 1) * B * T)] = v[i]
            next_ckpt += 1
            clock = time.perf_counter()
    train_s += time.perf_counter() - clock

    final = str(ckpt_steps[-1] * B * T)
    n_params, threads = model.num_params(), torch.get_num_threads()
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
            n_params=n_params, device=device.type, dtype=dtype_name(dtype), train_seconds=train_s,
            tokens_per_second=seen / train_s if train_s > 0 else 0.0, steps=done[i], eval_seconds=eval_s,
            threads=threads))
    return out
