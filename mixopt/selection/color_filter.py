"""CoLoR-Filter (Brandfonbrener et al. 2024): conditional loss reduction.

A prior proxy is trained on the pool; a conditional proxy is that prior
fine-tuned on the target. A document scores

    score(x) = loss_prior(x) - loss_conditional(x)      (per token)

the drop in loss that learning the target brings; the higher, the more the
document looks like the target beyond what the pool already predicts.
Both proxies use mixopt's proxy model and training loop (GPU when present).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..data.tokenize import Tokenizer
from ..errors import ConfigError
from .lm import document_losses, train_lm
from .perplexity import _stage, encode_with_ends


def color_filter_scores(cfg, tok: Tokenizer, target_texts: Sequence[str], pool_texts: Sequence[str], *, seed: int = 0,
                        finetune_fraction: float = 0.25, finetune_lr_scale: float = 0.3,
                        progress: Callable[[str, int, int], None] | None = None) -> np.ndarray:
    """(n_pool,) CoLoR-Filter score of each pool document; ``cfg`` is a ``ProxyConfig``.

    The prior trains ``cfg.tokens`` tokens on the pool; the fine-tuning step
    ``finetune_fraction * cfg.tokens`` tokens on the target at
    ``finetune_lr_scale * cfg.lr``.
    """
    if not 0 < finetune_fraction <= 4:
        raise ConfigError(f"finetune_fraction must be in (0, 4]. Got {finetune_fraction}. Use about 0.25.")
    pool_tokens, pool_ends = encode_with_ends(tok, pool_texts)
    target_tokens = tok.encode_documents(list(target_texts))
    prior = train_lm(cfg, pool_tokens, tok.vocab_size, seed, where="pool", progress=_stage(progress, "train prior on pool"))
    cond = train_lm(cfg, target_tokens, tok.vocab_size, seed + 1, init=prior, where="target",
                    n_tokens=max(cfg.batch_size * cfg.block_size, int(finetune_fraction * cfg.tokens)),
                    lr_scale=finetune_lr_scale, progress=_stage(progress, "fine-tune on target"))
    loss_prior = document_losses(prior, pool_tokens, pool_ends, threads=cfg.threads, progress=_stage(progress, "score pool (prior)"))
    loss_cond = document_losses(cond, pool_tokens, pool_ends, threads=cfg.threads, progress=_stage(progress, "score pool (conditional)"))
    return loss_prior - loss_cond
