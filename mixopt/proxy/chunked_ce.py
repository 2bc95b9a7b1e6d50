"""The output head and cross-entropy in one pass over chunks of tokens, for large vocabularies.

With the GPT-NeoX tokenizer (V = 50,304) a proxy of ~1M non-embedding
parameters spends most of its memory and much of its time on the logits: M
models x B*T tokens x V values in bf16, their fp32 copy for the loss, and the
fp32 gradient of both. ``linear_cross_entropy`` computes the same losses
without ever holding the logits of all tokens: it walks over chunks of tokens,
and for each chunk forms the logits, their log-sum-exp and the target's
logit, and (when a gradient is wanted) the gradient of the chunk's loss with
respect to its hidden states and to the head's weight, straight away
(``softmax - onehot``, as Liger-Kernel's fused linear cross-entropy does).
Backward then only scales these stored gradients by the incoming gradient of
each model's loss, so the head costs the same three matmuls as the plain
path, and the extra memory is one chunk of logits plus the gradients, which
are the size of the hidden states and of the weight.

Training under bf16 autocast keeps the softmax in bf16 (it accumulates in fp32
inside the kernel): the chunk loop is memory-bound, and fp32 logits, their exp
and their bf16 copy for the backward matmuls were ~22 bytes of traffic per
logit against ~10 (the plain path also hands the backward matmuls bf16). The
training loss is then -log of the bf16 target probability, exact to ~2^-9 per
token; evaluation (no gradient) stays in fp32.

The models use it when ``use_chunked_ce(vocab_size)``: at and above
``CHUNKED_CE_MIN_VOCAB``. Below it (the default byte-level vocabulary of 257)
they keep the plain ``lm_head`` + ``F.cross_entropy`` path, bit for bit.
"""

from __future__ import annotations

import math

import torch

CHUNKED_CE_MIN_VOCAB = 8192  # vocabularies at least this large take the chunked loss (the one place this is set)
CE_CHUNK_ELEMENTS = 1 << 27  # logits formed at once, summed over the models of a stack (512 MiB in fp32)
LOW_PRECISION_SOFTMAX = True  # training under bf16/fp16 autocast: softmax stored in that dtype (read at call time)


def use_chunked_ce(vocab_size: int) -> bool:
    """Whether a model of this vocabulary computes its loss chunk by chunk (read at call time, so tests can lower it)."""
    return vocab_size >= CHUNKED_CE_MIN_VOCAB


def compute_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype autocast would run the head's matmul in on ``device``; None when autocast is off there."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return None


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                         reduction: str = "mean", chunk_elements: int | None = None,
                         token_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Each model's cross-entropy of ``x @ weight^T`` against ``targets``, chunk by chunk.

    Parameters
    ----------
    x : (M, N, C) tensor
        Final hidden states of M models, N tokens each.
    weight : (M, V, C) tensor
        Each model's output head (tied to its token embedding).
    targets : (M, N) int64 tensor
        Target ids in [0, V).
    reduction : "mean" or "sum"
        Over each model's N tokens.
    chunk_elements : int, optional
        Logits formed at once (M * tokens * V); default ``CE_CHUNK_ELEMENTS``.
    token_weights : (M, N) tensor, optional
        Each token's weight: the loss is then ``sum_t w_t * loss_t`` per model (``reduction`` is not applied), e.g.
        DoReMi's domain weights over each domain's token count. Not differentiated.

    Returns
    -------
    (M,) float32 tensor: each model's mean (or summed) loss. Under autocast the
    matmuls run in the autocast dtype and the softmax in fp32, as the plain
    ``F.cross_entropy(logits.float(), ...)`` path does.
    """
    if (x.dim() != 3 or weight.dim() != 3 or targets.shape != x.shape[:2] or weight.shape[0] != x.shape[0]
            or x.shape[1] == 0):
        raise ValueError(f"linear_cross_entropy takes x (M, N, C), weight (M, V, C) and targets (M, N), N >= 1; got "
                         f"{tuple(x.shape)}, {tuple(weight.shape)} and {tuple(targets.shape)}.")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
    if token_weights is not None and token_weights.shape != targets.shape:
        raise ValueError(f"token_weights must be shaped like targets {tuple(targets.shape)}; got {tuple(token_weights.shape)}.")
    M, N, _ = x.shape
    chunk = _chunk_tokens(M, N, weight.shape[1], chunk_elements)
    scale = 1.0 / N if reduction == "mean" and token_weights is None else 1.0
    dtype = compute_dtype(x.device) or torch.promote_types(x.dtype, weight.dtype)
    tw = None if token_weights is None else token_weights.detach().float()
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(x, weight, targets, scale, chunk, dtype, tw)
    with torch.autocast(x.device.type, enabled=False):
        return _chunks(x, weight, targets, scale, chunk, dtype, grad=False, token_weights=tw)[0]


@torch.no_grad()
def token_cross_entropy(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                        chunk_elements: int | None = None) -> torch.Tensor:
    """Each token's cross-entropy of ``x @ weight^T`` against ``targets``, (M, N) float32, chunk by chunk (no gradient;
    the softmax in fp32, as evaluation): ``F.cross_entropy(..., reduction="none")`` without all the logits at once."""
    M, N, _ = x.shape
    chunk = _chunk_tokens(M, N, weight.shape[1], chunk_elements)
    dtype = compute_dtype(x.device) or torch.promote_types(x.dtype, weight.dtype)
    out = torch.empty(M, N, dtype=torch.float32, device=x.device)
    with torch.autocast(x.device.type, enabled=False):
        wt = weight.to(dtype).transpose(1, 2)  # (M, C, V)
        for s in range(0, N, chunk):
            logp = torch.log_softmax(torch.bmm(x[:, s:s + chunk].to(dtype), wt), dim=-1, dtype=torch.float32)  # (M, K, V)
            out[:, s:s + chunk] = -logp.gather(-1, targets[:, s:s + chunk].unsqueeze(-1)).squeeze(-1)
    return out


def _chunk_tokens(m: int, n: int, v: int, chunk_elements: int | None) -> int:
    """Tokens per chunk so that a chunk's logits (m x tokens x v) stay within ``chunk_elements``, in equal chunks."""
    chunk = max(1, (chunk_elements or CE_CHUNK_ELEMENTS) // max(1, m * v))
    return math.ceil(n / math.ceil(n / chunk)) if n > 0 else 1  # no tokens: one empty chunk


class _LinearCrossEntropy(torch.autograd.Function):
    """Losses (M,) in forward, with their gradients; backward scales those by each model's incoming gradient."""

    @staticmethod
    def forward(ctx, x, weight, targets, scale: float, chunk: int, dtype: torch.dtype, token_weights=None):
        with torch.autocast(x.device.type, enabled=False):
            loss, gx, gw = _chunks(x, weight, targets, scale, chunk, dtype, grad=True, token_weights=token_weights)
        ctx.save_for_backward(gx, gw)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):  # grad_loss: (M,)
        gx, gw = ctx.saved_tensors
        g = grad_loss.view(-1, 1, 1)
        return (gx * g.to(gx.dtype)), (gw * g.to(gw.dtype)), None, None, None, None, None


def _chunks(x, weight, targets, scale: float, chunk: int, dtype: torch.dtype, *, grad: bool,
            token_weights: torch.Tensor | None = None):
    """The loop over token chunks: losses (M,) fp32, and d loss / d x (M, N, C), d loss / d weight (M, V, C) when ``grad``;
    with ``token_weights`` (M, N) each token's loss (and gradient) is weighted."""
    M, N, _ = x.shape
    w = weight.to(dtype)  # (M, V, C)
    wt = w.transpose(1, 2)  # (M, C, V)
    loss = torch.zeros(M, dtype=torch.float32, device=x.device)  # (M,)
    gx = torch.empty(x.shape, dtype=x.dtype, device=x.device) if grad else None  # (M, N, C)
    gw = torch.zeros(weight.shape, dtype=torch.float32, device=x.device) if grad else None  # (M, V, C)
    low = grad and LOW_PRECISION_SOFTMAX and dtype in (torch.bfloat16, torch.float16)
    for s in range(0, N, chunk):
        xc = x[:, s:s + chunk].to(dtype)  # (M, K, C)
        tc = targets[:, s:s + chunk].unsqueeze(-1)  # (M, K, 1)
        wc = None if token_weights is None else token_weights[:, s:s + chunk].unsqueeze(-1)  # (M, K, 1)
        if low:  # training under autocast: the softmax accumulates in fp32 but is stored in the matmul's dtype
            p = torch.softmax(torch.bmm(xc, wt), dim=-1)  # (M, K, V)
            lt = p.gather(-1, tc).float().clamp_min_(1e-38).log_()  # log p_target, 2^-9 relative
        else:
            logp = torch.log_softmax(torch.bmm(xc, wt), dim=-1, dtype=torch.float32)  # (M, K, V), softmax in fp32
            lt = logp.gather(-1, tc)  # (M, K, 1)
        loss -= (lt if wc is None else lt * wc).sum(dim=(1, 2))
        if grad:
            p = p if low else logp.exp_()  # softmax, in place
            p.scatter_add_(-1, tc, torch.full(tc.shape, -1.0, dtype=p.dtype, device=p.device))  # softmax - onehot
            if wc is not None:
                p.mul_(wc.to(p.dtype))
            g = p.to(dtype)  # (M, K, V) d loss / d logits, before the reduction's scale
            gx[:, s:s + chunk] = torch.bmm(g, w)  # (M, K, C)
            gw += torch.bmm(g.transpose(1, 2), xc).float()  # (M, V, C)
    if not grad:
        return loss.mul_(scale), None, None
    return loss.mul_(scale), gx.mul_(scale), gw.mul_(scale).to(weight.dtype)
