"""The tokenized form of domains that the rest of mixopt consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TokenizedDomain:
    """One domain after tokenization and the hash-based validation split.

    ``train`` and ``val`` are 1-D token-id arrays in which documents are joined
    by ``eos_id``. No training run ever reads ``val``.
    """

    name: str
    train: np.ndarray  # (n_train_tokens,) integer token ids
    val: np.ndarray  # (n_val_tokens,) integer token ids
    n_docs_train: int
    n_docs_val: int
    fingerprint: str  # content hash of the source documents + tokenizer + split settings
    legacy_fingerprint: str = ""  # the same, as mixopt before stop 23 made it (it also hashed the data's path)
    verbatim_fingerprint: str = ""  # the same, as mixopt before stop 29 made it (every spec field as written, quality_field too)

    @property
    def unique_tokens(self) -> int:
        """Training tokens available before any repetition."""
        return int(self.train.shape[0])

    @property
    def mean_tokens_per_doc(self) -> float:
        return self.unique_tokens / max(self.n_docs_train, 1)


@dataclass
class DomainSet:
    """All training domains plus evaluation-only targets, sharing one tokenizer."""

    domains: dict[str, TokenizedDomain]  # trained on (train split) and evaluated (val split)
    vocab_size: int
    eos_id: int
    tokenizer: str  # "bytes" or the tokenizer.json path
    targets: dict[str, TokenizedDomain] = field(default_factory=dict)  # evaluated only
    pinned_fingerprint: str | None = None  # an older store's fingerprint of this data, kept so that store resumes

    @property
    def names(self) -> list[str]:
        return sorted(self.domains)

    @property
    def token_counts(self) -> dict[str, int]:
        return {n: self.domains[n].unique_tokens for n in self.names}

    @property
    def fingerprint(self) -> str:
        """Hash of the tokenizer and every domain's and target's content fingerprint (part of every run id)."""
        return self.pinned_fingerprint or self._hash("fingerprint")

    @property
    def legacy_fingerprint(self) -> str:
        """The fingerprint as mixopt before stop 23 made it (it hashed the data's path)."""
        return self._hash("legacy_fingerprint")

    @property
    def verbatim_fingerprint(self) -> str:
        """The fingerprint as mixopt before stop 29 made it (it hashed fields that change no token: quality_field, and
        split, hub_config and an explicit format on local files); the same as ``fingerprint`` when those are defaults."""
        return self._hash("verbatim_fingerprint")

    def adopt(self, store_fingerprint: str | None) -> None:
        """Keep a run store's recorded data fingerprint when older mixopt made it of this data (``legacy_fingerprint``,
        ``verbatim_fingerprint``), so that store's run ids still match and it resumes; any other value changes nothing
        (the callers compare fingerprints and report a mismatch)."""
        older = (self.legacy_fingerprint, self.verbatim_fingerprint)
        if store_fingerprint and store_fingerprint != self.fingerprint and store_fingerprint in older:
            self.pinned_fingerprint = store_fingerprint

    def _hash(self, attr: str) -> str:
        import hashlib

        h = hashlib.sha256(self.tokenizer.encode())
        for group in (self.domains, self.targets):
            for name in sorted(group):
                h.update(f"{name}:{getattr(group[name], attr) or group[name].fingerprint};".encode())
        return h.hexdigest()[:16]
