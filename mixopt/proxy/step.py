"""One training step of M proxies of one shape, and their evaluation.

``ModelStack`` holds one ``GPT`` (M = 1) or a ``StackedGPT`` (M > 1) with its
AdamW: ``step`` is forward, backward, gradient clipping (per model for a
stack) and the optimizer update; ``loss_sums`` and ``evaluate`` measure every
model on the same windows at once; ``branch`` copies weights and optimizer
state for a WSD decay branch. The loop (``loop.py``) and the stack-size probe
(``stack_size.py``) both train through ``ModelStack.step``.
"""

from __future__ import annotations

import copy

import torch
from torch.nn import functional as F

from .device import autocast
from .model import GPT, GPTConfig
from .stacked import StackedGPT, clip_grad_norm_per_model_

EVAL_BATCH = 64  # evaluation windows per forward pass (per model)


def make_optimizer(model: torch.nn.Module, cfg, device: torch.device, *, matrix_dim: int = 2) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (matmuls and embeddings), none on norms/biases.

    ``matrix_dim`` is 2 for one model and 3 for a stack of models (a leading model dim).
    """
    decay = [p for p in model.parameters() if p.dim() >= matrix_dim]
    no_decay = [p for p in model.parameters() if p.dim() < matrix_dim]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8, **fused)


class ModelStack:
    """M models of one shape with their AdamW: one ``GPT`` when M = 1, a ``StackedGPT`` otherwise."""

    def __init__(self, model: GPT | StackedGPT, cfg, device: torch.device, dtype: torch.dtype, *, compile: bool = False):
        self.model, self.cfg, self.device, self.dtype = model, cfg, device, dtype
        self.single = isinstance(model, GPT)
        self.n_models = 1 if self.single else model.n_models
        self.optimizer = make_optimizer(model, cfg, device, matrix_dim=2 if self.single else 3)
        self.fwd = torch.compile(model) if compile else model
        self.params = list(model.parameters())

    @classmethod
    def from_seeds(cls, shape: GPTConfig, seeds, cfg, device, dtype) -> "ModelStack":
        """Model i initialised under ``torch.manual_seed(seeds[i])``; the caller's RNG state is left alone."""
        if len(seeds) == 1:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seeds[0])
                model = GPT(shape)
        else:
            model = StackedGPT.from_seeds(shape, seeds)
        return cls(model.to(device), cfg, device, dtype, compile=cfg.compile)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, alive: torch.Tensor) -> torch.Tensor:
        """One AdamW step of every model on its batch x, y (M, B, T); returns the training losses (M,)."""
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        with autocast(self.device, self.dtype):
            if self.single:
                _, loss = self.fwd(x[0], y[0])  # ()
            else:
                _, losses = self.fwd(x, y)  # (M,)
        if self.single:
            loss.backward()
            losses = loss.view(1)
        else:
            torch.where(alive, losses, torch.zeros_like(losses)).sum().backward()  # models are independent
        if self.cfg.grad_clip > 0:
            if self.single:
                torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip, foreach=True)
            else:
                clip_grad_norm_per_model_(self.params, self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return losses

    @torch.no_grad()
    def loss_sums(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each model's summed cross-entropy on the same windows x, y (b, T), float64 (M,)."""
        M = self.n_models
        if self.model.chunked_ce:  # large vocabulary: mean losses without the logits, times the token count
            with autocast(self.device, self.dtype):
                _, loss = self.model(*((x, y) if self.single else (x.expand(M, *x.shape), y.expand(M, *y.shape))))
            return loss.double().view(-1) * y.numel()  # (M,)
        with autocast(self.device, self.dtype):
            logits, _ = self.model(x if self.single else x.expand(M, *x.shape))  # (b, T, V) or (M, b, T, V)
        if self.single:
            return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").double().view(1)
        ce = F.cross_entropy(logits.float().flatten(0, 2), y.expand(M, *y.shape).flatten(), reduction="none")
        return ce.view(M, -1).sum(1).double()  # (M,)

    def branch(self) -> "ModelStack":
        """An independent copy (weights and AdamW state) to train a decay branch on."""
        other = ModelStack(copy.deepcopy(self.model), self.cfg, self.device, self.dtype)
        other.optimizer.load_state_dict(copy.deepcopy(self.optimizer.state_dict()))  # load_state_dict alone aliases
        return other


@torch.no_grad()
def evaluate(stack: ModelStack, sets: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, list[float]]:
    """Each model's mean per-token cross-entropy on each evaluation set (eval mode, no grad): M values per set."""
    stack.model.eval()
    out = {}
    for name, (x, y) in sets.items():
        total = torch.zeros(stack.n_models, dtype=torch.float64, device=stack.device)
        for i in range(0, x.shape[0], EVAL_BATCH):
            xb, yb = x[i:i + EVAL_BATCH].to(stack.device), y[i:i + EVAL_BATCH].to(stack.device)  # (b, T)
            total += stack.loss_sums(xb, yb)
        out[name] = (total / y.numel()).tolist()
    stack.model.train()
    return out
