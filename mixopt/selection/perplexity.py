"""Perplexity scoring: a document's per-token loss under a proxy language model.

- ``variant="target"``: the proxy is trained on the target documents and a
  document scores ``-loss`` (the more target-like, the higher).
- ``variant="medium"``: Ankner et al. (2024), "Perplexed by Perplexity": the
  reference proxy is trained on the pool itself and documents of medium
  perplexity are best: ``score = -|loss - median(loss)|``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..data.tokenize import Tokenizer
from ..errors import ConfigError
from .lm import document_losses, train_lm

VARIANTS = ("target", "medium")


def encode_with_ends(tok: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All documents' tokens, each ended by ``eos_id``, and the index of each document's end, (n_docs,)."""
    if tok.spec == "bytes":
        ends = np.cumsum([len(t.encode("utf-8", errors="replace")) + 1 for t in texts]) - 1
        return tok.encode_documents(list(texts)), np.asarray(ends, dtype=np.int64)
    parts = [tok.encode_documents([t]) for t in texts]
    ends = np.cumsum([p.shape[0] for p in parts]) - 1
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=tok.dtype)), np.asarray(ends, dtype=np.int64)


def perplexity_scores(cfg, tok: Tokenizer, target_texts: Sequence[str], pool_texts: Sequence[str], *, seed: int = 0,
                      variant: str = "target", progress: Callable[[str, int, int], None] | None = None) -> np.ndarray:
    """(n_pool,) score of each pool document; ``cfg`` is a ``ProxyConfig``. See the module docstring."""
    if variant not in VARIANTS:
        raise ConfigError(f"Perplexity variant must be one of {VARIANTS}. Got '{variant}'.")
    pool_tokens, pool_ends = encode_with_ends(tok, pool_texts)
    if variant == "target":
        train_tokens, where = tok.encode_documents(list(target_texts)), "target"
    else:
        train_tokens, where = pool_tokens, "pool"
    model = train_lm(cfg, train_tokens, tok.vocab_size, seed, where=where,
                     progress=_stage(progress, f"train proxy on {where}"))
    loss = document_losses(model, pool_tokens, pool_ends, threads=cfg.threads, progress=_stage(progress, "score pool"))
    if variant == "target":
        return -loss
    return -np.abs(loss - np.nanmedian(loss))


def _stage(progress, label):
    if progress is None:
        return None
    return lambda done, total: progress(label, done, total)
