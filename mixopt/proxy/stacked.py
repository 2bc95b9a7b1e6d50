"""M small proxies of one shape, with their weights stacked along a leading model dim.

One default proxy (~123k params) cannot fill a GPU: each step is a few hundred
tiny kernels. ``StackedGPT`` holds M independent copies of ``GPT`` whose
parameters are shaped (M, ...) and runs them through batched matmuls
(``torch.bmm``), so M proxies cost one kernel stream; attention runs as one
SDPA call over the M*B sequences. Each model reads its own batches (input
(M, B, T)) and has its own loss; AdamW is elementwise, so one AdamW over the
stacked parameters is M separate AdamWs, and gradient clipping is done per
model (``clip_grad_norm_per_model_``).

Each LayerNorm's per-model scale is folded into the weight of the linear layer
it feeds (``(norm(x) * g) @ W^T == norm(x) @ (W * g)^T``): the product is
weight-sized work, where scaling the normalised activations (and the two
backward passes of that product) is activation-sized, memory-bound work that
took ~13% of a wide stack's step on an H200 (``FOLD_NORMS``; models with biases
keep the plain order).

The model does no I/O and has no training loop: ``loop.py`` trains one ``GPT``
(M = 1) or a ``StackedGPT`` (M > 1) with the same code. Stacked results agree
with separate runs to float rounding, not bit for bit, since batched and single
matmuls sum in different orders.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.nn import functional as F

from .chunked_ce import linear_cross_entropy, use_chunked_ce
from .model import GPT, GPTConfig

FOLD_NORMS = True  # fold LayerNorm scales into the next layer's weight (read at call time; benchmarks compare both)
LOW_PRECISION_RESIDUAL = False  # under bf16 autocast, keep the residual stream and LayerNorm in bf16 (read at call
# time; unmeasured on a GPU, so off: benchmarks/gpu_step_variants.py's ``resbf16`` arms time it)


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm without affine over the last dim, in x's dtype.

    Autocast runs ``layer_norm`` in fp32 and returns fp32; a bf16 residual stream (``LOW_PRECISION_RESIDUAL``) is
    normalised in bf16 instead (the kernel accumulates its statistics in fp32), so it stays bf16.
    """
    if x.dtype in (torch.bfloat16, torch.float16) and torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            return F.layer_norm(x, x.shape[-1:], eps=1e-5)
    return F.layer_norm(x, x.shape[-1:], eps=1e-5)


class StackedLinear(nn.Module):
    """M independent ``nn.Linear`` layers: weight (M, out, in), bias (M, out)."""

    def __init__(self, m: int, n_in: int, n_out: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(m, n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(m, n_out)) if bias else None

    def forward(self, x, scale: torch.Tensor | None = None):  # (M, N, in) -> (M, N, out)
        """``scale`` (M, in): a folded LayerNorm scale, applied to the inputs through the weight."""
        w = self.weight if scale is None else self.weight * scale.unsqueeze(1)  # (M, out, in)
        if self.bias is None:
            return torch.bmm(x, w.transpose(1, 2))
        return torch.baddbmm(self.bias.unsqueeze(1), x, w.transpose(1, 2))


class StackedLayerNorm(nn.Module):
    """M independent LayerNorms: weight (M, C), optional bias (M, C)."""

    def __init__(self, m: int, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(m, ndim))
        self.bias = nn.Parameter(torch.zeros(m, ndim)) if bias else None

    def forward(self, x):  # (M, N, C) -> (M, N, C)
        y = layer_norm(x) * self.weight.unsqueeze(1).to(x.dtype)
        return y if self.bias is None else y + self.bias.unsqueeze(1).to(x.dtype)

    def fold(self, x) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x normalised without the scale, the scale (M, C)) when the next layer can take it, else (forward(x), None)."""
        if FOLD_NORMS and self.bias is None:
            return layer_norm(x), self.weight
        return self(x), None


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

    def forward(self, x, B: int, T: int, scale: torch.Tensor | None = None):
        M, _, C = x.shape  # (M, B*T, C)
        qkv = self.c_attn(x, scale)  # (M, B*T, 3C)
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

    def forward(self, x, scale: torch.Tensor | None = None):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x, scale))))  # (M, B*T, C)


class StackedBlock(nn.Module):
    def __init__(self, m: int, config: GPTConfig):
        super().__init__()
        self.ln_1 = StackedLayerNorm(m, config.n_embd, config.bias)
        self.attn = StackedAttention(m, config)
        self.ln_2 = StackedLayerNorm(m, config.n_embd, config.bias)
        self.mlp = StackedMLP(m, config)

    def forward(self, x, B: int, T: int):
        h, scale = self.ln_1.fold(x)  # (M, B*T, C), (M, C) or None
        x = x + self.attn(h, B, T, scale)  # (M, B*T, C)
        h, scale = self.ln_2.fold(x)
        return x + self.mlp(h, scale)  # (M, B*T, C)


class StackedGPT(nn.Module):
    """M independent ``GPT``s of one shape; parameter names match ``GPT``'s, with a leading (M,) dim."""

    def __init__(self, config: GPTConfig, n_models: int):
        super().__init__()
        if n_models < 1:
            raise ValueError(f"n_models must be at least 1, got {n_models}.")
        if config.n_embd % config.head_size:
            raise ValueError(f"n_embd ({config.n_embd}) must be a multiple of head_size ({config.head_size}).")
        self.config, self.n_models = config, n_models
        self.chunked_ce = use_chunked_ce(config.vocab_size)  # as in GPT
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
        if non_embedding:
            n -= self.transformer.wte.weight[0].numel() + self.transformer.wpe.weight[0].numel()
        return n

    def flops_per_token(self) -> float:
        """Training FLOPs per token of one model (as ``GPT.flops_per_token``)."""
        c = self.config
        matmul = self.num_params() - self.transformer.wpe.weight[0].numel()
        return 6.0 * matmul + 12.0 * c.n_layer * c.n_embd * c.block_size

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits (M, B, T, V) for ids (M, B, T) and, with ``targets`` (M, B, T), each model's mean loss (M,).

        With ``self.chunked_ce`` and ``targets`` given the logits are not formed: None (as in ``GPT``).
        """
        M, B, T = idx.shape
        if M != self.n_models:
            raise ValueError(f"idx holds {M} models' batches, but the stack has {self.n_models}; pass (M, B, T) ids.")
        if T > self.config.block_size:
            raise ValueError(f"Sequence length {T} exceeds block_size {self.config.block_size}; crop the input.")
        pos = self.transformer.wpe.weight[:, :T].unsqueeze(1)  # (M, 1, T, C)
        x = self.transformer.drop(self.transformer.wte(idx) + pos).reshape(M, B * T, -1)  # (M, B*T, C)
        if LOW_PRECISION_RESIDUAL and torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.get_autocast_dtype(x.device.type))  # the residual stream in bf16 (fp32 weights, as before)
        for block in self.transformer.h:
            x = block(x, B, T)  # (M, B*T, C)
        x, scale = self.transformer.ln_f.fold(x)  # (M, B*T, C), (M, C) or None
        if targets is not None and self.chunked_ce:
            w = self.lm_head.weight if scale is None else self.lm_head.weight * scale.unsqueeze(1)  # (M, V, C)
            return None, linear_cross_entropy(x, w, targets.reshape(M, -1))  # (M,)
        logits = self.lm_head(x, scale)  # (M, B*T, V)
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
