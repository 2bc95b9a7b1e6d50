"""One plain nanoGPT-style decoder-only transformer, used as the mixture proxy.

Pre-LayerNorm blocks, causal self-attention through
``F.scaled_dot_product_attention``, a 4x GELU MLP and input/output embeddings
tied together. The model does no I/O; the training loop lives in ``train.py``.
With a large vocabulary (``chunked_ce.use_chunked_ce``) the loss is computed
by ``chunked_ce.linear_cross_entropy``, which never holds all the logits.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from .chunked_ce import linear_cross_entropy, use_chunked_ce


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 257  # 256 byte values + 1 end-of-document id
    block_size: int = 128  # longest context, in tokens
    n_layer: int = 2  # transformer blocks
    n_embd: int = 64  # model width C
    head_size: int = 64  # width of one attention head; n_head = n_embd // head_size
    dropout: float = 0.0  # off by default: proxies are short, single-epoch-ish runs
    bias: bool = False  # biases in Linear and LayerNorm (nanoGPT's choice: off is a bit faster and as good)

    @property
    def n_head(self) -> int:
        return self.n_embd // self.head_size

    @classmethod
    def from_proxy(cls, proxy, vocab_size: int = 257) -> "GPTConfig":
        """The model shape of a ``ProxyConfig`` (duck-typed, so this file imports nothing of mixopt)."""
        return cls(vocab_size=vocab_size, block_size=proxy.block_size, n_layer=proxy.n_layer,
                   n_embd=proxy.n_embd, head_size=proxy.head_size)


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (torch's has no ``bias=False`` before 2.1)."""

    def __init__(self, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        B, T, C = x.size()  # batch, time, channels
        qkv = self.c_attn(x)  # (B, T, 3C)
        # torch's bf16 attention kernel on CPU is 2-3x slower than its fp32 one at proxy sizes: attend in fp32 there
        cpu_bf16 = x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        if cpu_bf16:
            qkv = qkv.float()
        q, k, v = qkv.split(self.n_embd, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        p = self.dropout if self.training else 0.0
        with torch.autocast("cpu", enabled=False) if cpu_bf16 else contextlib.nullcontext():
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        x = F.gelu(self.c_fc(x))  # (B, T, 4C); exact GELU is faster than the tanh form on CPU
        return self.dropout(self.c_proj(x))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.n_embd % config.head_size:
            raise ValueError(f"n_embd ({config.n_embd}) must be a multiple of head_size ({config.head_size}).")
        self.config = config
        self.chunked_ce = use_chunked_ce(config.vocab_size)  # loss without materialising the logits (large vocab)
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied embeddings
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied weights once).

        ``non_embedding`` drops the token and position tables (the tied token
        table is the output head too): Kaplan et al.'s N, the count scale laws use.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self) -> float:
        """Approximate training FLOPs (forward + backward) per token.

        ``6 * N`` for the matmuls, with N the parameters except the position
        table (the tied token table counts once, as the output head), plus
        ``12 * n_layer * n_embd * block_size`` for attention scores and the
        weighted sum (the PaLM / nanoGPT estimate, ignoring the causal halving).
        """
        c = self.config
        matmul = self.num_params() - self.transformer.wpe.weight.numel()
        return 6.0 * matmul + 12.0 * c.n_layer * c.n_embd * c.block_size

    def forward_hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Final (post-LayerNorm) hidden states, (B, T, C), for token ids (B, T)."""
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"Sequence length {T} exceeds block_size {self.config.block_size}; crop the input.")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)  # (B, T, C)
        return self.transformer.ln_f(x)  # (B, T, C)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits (B, T, vocab) and, when ``targets`` (B, T) are given, the mean cross-entropy.

        With ``self.chunked_ce`` (a large vocabulary) and ``targets`` given, the
        loss is computed chunk by chunk and the logits are not formed: None.
        """
        x = self.forward_hidden(idx)  # (B, T, C)
        if targets is not None and self.chunked_ce:
            B, T, C = x.shape
            loss = linear_cross_entropy(x.reshape(1, B * T, C), self.lm_head.weight.unsqueeze(0), targets.reshape(1, -1))
            return None, loss[0]  # mean over B*T
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.reshape(-1))  # mean over B*T
        return logits, loss
