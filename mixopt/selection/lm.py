"""A proxy language model for scoring documents: train it on one token stream, read per-document losses.

`train_lm` is the proxy trainer's loop (same model, AdamW, warm-up + cosine,
gradient clipping, device and dtype choice) for one stream of tokens, and it
returns the model itself, which `mixopt.proxy.train.train_proxy` does not; it can
start from another model's weights (CoLoR-Filter's fine-tuning step).
`document_losses` gives every document's mean per-token cross-entropy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import DataError
from ..proxy.batches import MixtureBatches
from ..proxy.device import autocast, pick_device, pick_dtype
from ..proxy.loop import torch_threads
from ..proxy.step import make_optimizer
from ..proxy.model import GPT, GPTConfig
from ..proxy.schedule import lr_at

EVAL_ROWS = 64  # windows per forward pass when scoring


def train_lm(cfg, tokens: np.ndarray, vocab_size: int, seed: int, *, init: GPT | None = None, n_tokens: int | None = None,
             lr_scale: float = 1.0, progress: Callable[[int, int], None] | None = None, where: str = "training data") -> GPT:
    """Train a proxy (shape and schedule from ``cfg``, a ``ProxyConfig``) on ``tokens`` and return it in eval mode.

    ``cfg.threads`` pins torch's CPU threads during the call (one thread is far
    faster than two on a busy machine).

    Parameters
    ----------
    tokens : ndarray (n,)
        Token ids; at least ``cfg.block_size + 1`` of them.
    init : GPT, optional
        Start from a copy of this model (fine-tuning); the original is left untouched.
    n_tokens : int, optional
        Training tokens (default ``cfg.tokens``).
    lr_scale : float
        Multiplies ``cfg.lr`` (fine-tuning uses a smaller rate).
    """
    with torch_threads(cfg.threads):
        return _train(cfg, tokens, vocab_size, seed, init, n_tokens, lr_scale, progress, where)


def _train(cfg, tokens, vocab_size, seed, init, n_tokens, lr_scale, progress, where) -> GPT:
    B, T = cfg.batch_size, cfg.block_size
    if tokens.shape[0] < T + 1:
        raise DataError(f"The {where} has {tokens.shape[0]} tokens; training a scoring proxy needs at least "
                        f"block_size+1={T + 1}. Add documents, or lower proxy.block_size in the --config file.")
    steps = max(1, int(n_tokens or cfg.tokens) // (B * T))
    device = pick_device(cfg)
    dtype = pick_dtype(cfg, device, vocab_size=vocab_size)
    batches = MixtureBatches({"d": tokens}, {"d": 1.0}, batch_size=B, block_size=T, seed=seed)
    fork = [torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        torch.manual_seed(seed)
        model = copy.deepcopy(init).to(device) if init is not None else GPT(GPTConfig.from_proxy(cfg, vocab_size)).to(device)
    model.train()
    optimizer = make_optimizer(model, cfg, device)
    params = list(model.parameters())
    for step in range(steps):
        for g in optimizer.param_groups:
            g["lr"] = lr_scale * lr_at(step, steps, cfg)
        x, y = batches.next()
        x, y = x.to(device), y.to(device)
        with autocast(device, dtype):
            _, loss = model(x, y)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if progress is not None:
            progress(step + 1, steps)
    if not math.isfinite(float(loss.detach())):
        raise DataError(f"The scoring proxy diverged on the {where} (loss {float(loss):.3g}). Lower --lr or check the data.")
    model.eval()
    model.dtype_ = dtype
    return model


def document_losses(model: GPT, tokens: np.ndarray, doc_ends: np.ndarray, *, threads: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Mean next-token cross-entropy of each document, (n_docs,).

    ``tokens`` holds the documents one after another, each ending with its
    end-of-document id at ``doc_ends[i]``. The stream is cut into windows of
    ``block_size`` predicted tokens; a token's loss counts for the document it
    belongs to, with whatever context the window gives it (so the first
    tokens of a document may see the end of the previous one, as in training).
    """
    with torch_threads(threads), torch.no_grad():
        return _losses(model, tokens, doc_ends, progress)


def _losses(model, tokens, doc_ends, progress) -> np.ndarray:
    device = next(model.parameters()).device
    dtype = getattr(model, "dtype_", torch.float32)
    T = model.config.block_size
    n = int(tokens.shape[0])
    n_docs = int(doc_ends.shape[0])
    if n < 2:
        return np.full(n_docs, np.nan)
    losses = np.zeros(n, dtype=np.float64)  # losses[j]: loss of predicting tokens[j]; j = 0 has none
    starts = np.arange(0, n - 1, T)
    for i in range(0, starts.shape[0], EVAL_ROWS):
        s = starts[i:i + EVAL_ROWS]
        width = min(T, n - 1 - int(s[-1]))
        full = s[:-1] if width < T else s  # the last window may be shorter: do it alone
        for group, w in ((full, T), (s[-1:] if width < T else s[:0], width)):
            if group.size == 0:
                continue
            idx = group[:, None] + np.arange(w + 1)  # (b, w+1)
            win = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64)).to(device)
            with autocast(device, dtype):
                logits, _ = model(win[:, :-1])  # (b, w, V)
            ce = F.cross_entropy(logits.float().flatten(0, 1), win[:, 1:].flatten(), reduction="none")
            losses[(idx[:, 1:]).ravel()] = ce.double().cpu().numpy()
        if progress is not None:
            progress(min(i + EVAL_ROWS, starts.shape[0]), starts.shape[0])
    doc_of = np.searchsorted(doc_ends, np.arange(n), side="left")  # token j belongs to the first doc ending at or after j
    counted = np.arange(n) > 0
    total = np.bincount(doc_of[counted], weights=losses[counted], minlength=n_docs)
    count = np.bincount(doc_of[counted], minlength=n_docs)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count
