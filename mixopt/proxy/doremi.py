"""DoReMi's domain weights (Xie et al., NeurIPS 2023), computed with this trainer: a baseline for the plans.

DoReMi trains two small models of the proxy's shape and reads the mixture off the second one's training:

1. a *reference* model, trained plainly on the reference mixture (the data's natural token shares by default, as the
   paper's reference used The Pile's own weights);
2. a *proxy* trained with Group DRO over the domains (the paper's Algorithm 1). Every step draws a batch with the
   domains in equal shares, measures each domain's excess loss over the reference model,
   ``lambda_i = mean over domain i's tokens of max(loss_proxy - loss_reference, 0)``, moves the domain weights by
   exponentiated gradient, ``alpha <- normalise(alpha * exp(step_size * lambda))``, smooths them towards uniform,
   ``alpha <- (1 - smoothing) * alpha + smoothing / k``, and trains the proxy on the alpha-weighted sum of the
   per-domain mean losses.

The result is the domain weights averaged over the proxy's steps (DoReMi's output). The paper's defaults are kept:
step size 1, smoothing 1e-3, reference and proxy of one size, the proxy's learning-rate schedule. DoReMi needs no
sweep and no target: it makes the worst domain's excess loss small, so it is the baseline for a plan's *average*
loss, and a target-blind one for a plan aimed at one domain. ``mixopt verify --against doremi`` trains its mixture
beside the plan (``verify.py``).

Steps are plain (nanoGPT style): one ``GPT``, AdamW with decay on matrices (``step.make_optimizer``), gradient
clipping, the loop's learning-rate schedule. A domain missing from a batch (a batch smaller than the domain count)
gets no update from that step (its excess counts as 0). With a large vocabulary (``chunked_ce.use_chunked_ce``) the
per-token losses and the weighted objective go through the chunked head (``token_cross_entropy``,
``linear_cross_entropy(..., token_weights=...)``), so a batch's logits (B x T x V floats) are never formed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import DataError
from ..mixtures import Mixture, natural_mixture
from .batches import MixtureBatches
from .chunked_ce import linear_cross_entropy, token_cross_entropy
from .device import autocast, pick_device, pick_dtype
from .model import GPT, GPTConfig
from .schedule import lr_at
from .step import ModelStack, make_optimizer

STEP_SIZE = 1.0  # eta: the exponentiated-gradient step on the domain weights (the paper's)
SMOOTHING = 1e-3  # c: the share of uniform mixed into the weights each step (the paper's)


@dataclass
class DoremiResult:
    weights: Mixture  # the domain weights averaged over the proxy's steps: DoReMi's mixture
    last: Mixture  # the weights at the last step
    reference: Mixture  # what the reference model trained on
    steps: int  # optimizer steps of each of the two models
    excess: dict[str, float] = field(default_factory=dict)  # mean clipped excess loss per domain over the last 10% of steps
    history: list[dict[str, float]] = field(default_factory=list)  # the weights every ``steps // 20`` steps

    def to_dict(self) -> dict:
        return {"weights": dict(self.weights), "last": dict(self.last), "reference": dict(self.reference),
                "steps": self.steps, "excess": self.excess, "history": self.history,
                "step_size": STEP_SIZE, "smoothing": SMOOTHING}


def doremi_weights(cfg, data, reference: Mapping[str, float] | None = None, *, seed: int = 0,
                   step_size: float = STEP_SIZE, smoothing: float = SMOOTHING,
                   progress: Callable[[int, int], None] | None = None) -> DoremiResult:
    """DoReMi's mixture over ``data``'s domains for proxies of ``cfg`` (a ``ProxyConfig``): see the module docstring.

    ``reference``: the reference model's token shares (default: the natural shares, by training tokens).
    ``progress(step, total)`` is called after every step of either model (total = twice the proxy's steps).
    Deterministic under ``seed`` on CPU at a fixed thread count.
    """
    names = list(data.names)
    if len(names) < 2:
        raise DataError(f"DoReMi weighs domains against each other; the data has {len(names)} domain(s). Add domains.")
    if not 0.0 <= smoothing <= 1.0 or step_size <= 0:
        raise ValueError(f"smoothing must be in [0, 1] and step_size positive; got {smoothing}, {step_size}.")
    counts = data.token_counts
    if reference is None:
        ref = natural_mixture({d: counts[d] for d in names})
    else:
        raw = np.array([float(reference.get(d, 0.0)) for d in names])
        if (raw < 0).any() or not raw.sum() > 0:
            raise DataError(f"DoReMi's reference mixture needs non-negative weights with a positive sum; got {dict(reference)}.")
        ref = Mixture.from_vector(raw / raw.sum(), names, drop_zeros=True)
    B, T = cfg.batch_size, cfg.block_size
    steps = cfg.tokens // (B * T)
    device = pick_device(cfg)
    dtype = pick_dtype(cfg, device, vocab_size=data.vocab_size)
    shape = GPTConfig.from_proxy(cfg, data.vocab_size)
    train = {d: data.domains[d].train for d in names}
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, 2 * steps)

    # 1. the reference model, trained plainly on the reference mixture (the loop's own step)
    stack = ModelStack.from_seeds(shape, [seed], cfg.model_copy(update={"cuda_graphs": False}), device, dtype)
    batches = MixtureBatches(train, dict(ref), batch_size=B, block_size=T, seed=seed)
    alive = torch.ones(1, dtype=torch.bool, device=device)
    for step in range(steps):
        x, y = batches.next()
        stack.step(x.to(device)[None], y.to(device)[None], lr_at(step, steps, cfg), alive)
        tick()
    reference_model = stack.model.eval()

    # 2. the proxy, trained with Group DRO over the domains on batches drawn in equal shares
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT(shape).to(device)
    optimizer = make_optimizer(model, cfg, device)
    batches = MixtureBatches(train, {d: 1.0 for d in names}, batch_size=B, block_size=T, seed=seed + 1)
    k = len(names)
    alpha = torch.full((k,), 1.0 / k, dtype=torch.float64)
    total = torch.zeros(k, dtype=torch.float64)
    tail, tail_excess = 0, torch.zeros(k, dtype=torch.float64)
    every = max(1, steps // 20)
    history = []
    for step in range(steps):
        x, y = batches.next()
        slots = torch.from_numpy(batches.slots).to(device)  # (B,) domain of each sequence (column of ``names``)
        x, y = x.to(device), y.to(device)
        with torch.no_grad(), autocast(device, dtype):
            ref_loss = token_losses(reference_model, x, y)  # (B, T)
        with autocast(device, dtype):
            hidden = model.forward_hidden(x) if model.chunked_ce else None  # (B, T, C): the head is chunked below
            loss = token_losses(model, x, y, hidden=hidden)  # (B, T); no graph when chunked
        onehot = F.one_hot(slots, k).to(loss.dtype)  # (B, k)
        present = onehot.sum(0) > 0  # (k,)
        n_tok = onehot.sum(0).clamp(min=1) * T  # (k,) tokens of each domain in the batch
        excess = (loss.detach() - ref_loss).clamp(min=0).sum(1) @ onehot / n_tok  # (k,)
        lam = excess.double().cpu() * present.cpu()
        alpha = alpha * torch.exp(step_size * lam)
        alpha = (1 - smoothing) * alpha / alpha.sum() + smoothing / k
        total += alpha
        if step >= steps - max(1, steps // 10):
            tail, tail_excess = tail + 1, tail_excess + lam
        if step % every == 0 or step == steps - 1:
            history.append({"step": step + 1, **{d: float(a) for d, a in zip(names, alpha)}})
        a = alpha.to(device=device, dtype=loss.dtype)
        if hidden is None:
            domain_loss = loss.sum(1) @ onehot / n_tok  # (k,) each domain's mean token loss in the batch
            objective = (a * domain_loss).sum()
        else:  # the same objective, sum_t alpha_d(t) / n_d(t) * loss_t, through the chunked head
            per_token = (onehot @ (a / n_tok)).unsqueeze(1).expand(B, T)  # (B, T)
            with autocast(device, dtype):
                objective = linear_cross_entropy(hidden.reshape(1, B * T, -1), model.lm_head.weight.unsqueeze(0),
                                                 y.reshape(1, -1), token_weights=per_token.reshape(1, -1))[0]
        for g in optimizer.param_groups:
            g["lr"] = lr_at(step, steps, cfg)
        objective.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(float(objective.detach())):
            raise DataError(f"DoReMi's proxy diverged at step {step} (objective {float(objective.detach()):.4g}). "
                            "Lower proxy.lr or keep proxy.grad_clip on.")
        tick()
    mean = (total / steps).numpy()
    return DoremiResult(weights=Mixture.from_vector(mean / mean.sum(), names),
                        last=Mixture.from_vector(alpha.numpy() / float(alpha.sum()), names), reference=ref, steps=steps,
                        excess={d: float(e) for d, e in zip(names, (tail_excess / max(tail, 1)).tolist())},
                        history=history)


def token_losses(model: GPT, x: torch.Tensor, y: torch.Tensor, *, hidden: torch.Tensor | None = None) -> torch.Tensor:
    """Each position's cross-entropy (B, T), float32, for ids x and targets y (B, T).

    A model with the chunked loss (a large vocabulary) never forms a batch's logits: its final hidden states
    (``hidden``, else computed here) go through the head chunk by chunk, without a gradient."""
    if model.chunked_ce:
        h = model.forward_hidden(x) if hidden is None else hidden  # (B, T, C)
        B, T, C = h.shape
        return token_cross_entropy(h.detach().reshape(1, B * T, C), model.lm_head.weight.detach().unsqueeze(0),
                                   y.reshape(1, -1)).view(y.shape)
    logits, _ = model(x)  # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none").view(y.shape)


def doremi_key(cfg, data_fingerprint: str, reference: Mapping[str, float] | None, seed: int) -> dict:
    """What a DoReMi mixture depends on (``verify`` keeps one per key in the store)."""
    return {"proxy": cfg.model_dump(mode="json"), "data": data_fingerprint, "seed": seed,
            "reference": None if reference is None else {d: float(w) for d, w in sorted(reference.items())},
            "step_size": STEP_SIZE, "smoothing": SMOOTHING, "version": 1}


