"""The tokenized form of domains that the rest of mixopt consumes."""

from __future__ import annotations

import hashlib
import itertools
import math
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
    embedded_fingerprint: str = ""  # as mixopt before stop 38 keyed it were it the embedded corpus's file (the key for other data)

    def known_fingerprints(self) -> set[str]:
        """This domain's fingerprint and every older form of it: a store that recorded any of them saw this data."""
        return {f for f in (self.fingerprint, self.legacy_fingerprint, self.verbatim_fingerprint, self.embedded_fingerprint)
                if f}

    def stop37_forms(self) -> list[str]:
        """The fingerprints mixopt from stop 29 to 37 could have given this data: the key, and, for the embedded corpus's
        content, the key it gave the embedded files (a byte-for-byte copy elsewhere had the key)."""
        return sorted({self.fingerprint, self.embedded_fingerprint or self.fingerprint})

    @property
    def older_fingerprint(self) -> str:
        """The one older form a store records next to the fingerprint (``domain_fingerprints_verbatim``, which
        ``reuse.store`` compares): the pre-stop-29 one where it differs, else the embedded files' pre-stop-38 one (so a
        copy of an embedded file, or the file itself, matches stores swept on the embedded corpus); "" when none differs."""
        return next((f for f in (self.verbatim_fingerprint, self.embedded_fingerprint) if f and f != self.fingerprint), "")

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
        ``verbatim_fingerprint``, or the form of stops 29 to 37, which keyed the embedded corpus's files apart from copies
        of them: `stop37_fingerprints`), so that store's run ids still match and it resumes; any other value changes
        nothing (the callers compare fingerprints and report a mismatch)."""
        if not store_fingerprint or store_fingerprint == self.fingerprint:
            return
        if store_fingerprint in (self.legacy_fingerprint, self.verbatim_fingerprint, *self.stop37_fingerprints()):
            self.pinned_fingerprint = store_fingerprint

    def stop37_fingerprints(self) -> list[str]:
        """The data fingerprints mixopt from stop 29 to 37 could have made of this data: each domain (and target) with the
        embedded corpus's content keyed either as the embedded file or as a copy elsewhere (``stop37_forms``), every
        combination, at most ``MAX_FORMS`` of them."""
        entries = [(name, group[name]) for group in (self.domains, self.targets) for name in sorted(group)]
        options = [d.stop37_forms() for _, d in entries]
        if math.prod(len(o) for o in options) > MAX_FORMS:  # many embedded domains: all one way or all the other
            options = [sorted(o, key=lambda f, d=d: f == d.fingerprint) for (_, d), o in zip(entries, options)]
            combos = [[o[0] for o in options], [o[-1] for o in options]]
        else:
            combos = itertools.product(*options)
        return [_fingerprint_of(self.tokenizer, [(n, f) for (n, _), f in zip(entries, combo)]) for combo in combos]

    def _hash(self, attr: str) -> str:
        return _fingerprint_of(self.tokenizer, [(name, getattr(group[name], attr) or group[name].fingerprint)
                                                for group in (self.domains, self.targets) for name in sorted(group)])


#: Most combinations `DomainSet.stop37_fingerprints` tries (2 per domain of the embedded corpus's content).
MAX_FORMS = 4096


def _fingerprint_of(tokenizer: str, keyed: list[tuple[str, str]]) -> str:
    """The data fingerprint of ``(name, domain fingerprint)`` pairs, domains then targets, each sorted by name."""
    h = hashlib.sha256(tokenizer.encode())
    for name, fp in keyed:
        h.update(f"{name}:{fp};".encode())
    return h.hexdigest()[:16]
