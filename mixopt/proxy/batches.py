"""Training batches drawn from domains in proportion to a mixture, by tokens.

Every sequence holds ``block_size + 1`` tokens of one domain, so a domain's
share of sequences is its share of tokens. Which domain fills each sequence is
decided deterministically ("largest deficit first", a stride scheduler): slot n
goes to the domain whose realised count lags its target ``w_d * (n + 1)`` most,
so each domain's count stays within one sequence of ``w_d * n`` at all times,
even for tiny weights. Where a sequence starts inside the domain's ``train``
array is random (a seeded numpy Generator). Domains with weight 0 are never read.

Multi-phase schedules (e.g. an end-of-training upsampling phase) call
:meth:`MixtureBatches.start_phase`: the deficits restart from zero, so each
phase realises its own shares within one sequence, while the per-domain counts
(tokens, epochs) keep accumulating over the whole run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..errors import DataError


class MixtureBatches:
    """Endless (x, y) batches of shape (batch_size, block_size), int64.

    Parameters
    ----------
    train : mapping of domain name -> 1-D token array
        Each domain's training tokens.
    weights : mapping of domain name -> token share
        Missing domains count as weight 0. Shares must sum to 1.
    batch_size, block_size : int
        Sequences per batch and tokens per sequence (each sequence reads
        ``block_size + 1`` tokens: inputs plus the shifted targets).
    seed : int
        Seeds the random start offsets.
    phase_weights : sequence of mappings, optional
        Target shares of later phases (see :meth:`start_phase`); their domains
        are validated up front so a switch never fails half way through a run.

    The returned tensors are views of buffers reused on every call: use (or
    copy) a batch before asking for the next one.
    """

    def __init__(self, train: Mapping[str, np.ndarray], weights: Mapping[str, float], *,
                 batch_size: int, block_size: int, seed: int, phase_weights: Sequence[Mapping[str, float]] = ()):
        every = [weights, *phase_weights]
        self.names = sorted({d for ws in every for d, w in ws.items() if w > 0})
        unknown = sorted(set().union(*every) - set(train))
        if unknown:
            raise DataError(f"Mixture names domains {unknown} that have no training data; known: {sorted(train)}. "
                            "Fix the mixture or add the domains.")
        if not self.names or any(not any(w > 0 for w in ws.values()) for ws in every):
            raise DataError("The mixture gives every domain weight 0; at least one domain needs a positive weight.")
        for d in self.names:
            n = int(train[d].shape[0])
            if n < block_size + 1:
                raise DataError(f"Domain '{d}' has {n} training tokens, fewer than one sequence of block_size+1="
                                f"{block_size + 1}. Add data to it, give it weight 0, or lower proxy.block_size.")
        self.arrays = [train[d] for d in self.names]
        self.weights = self._vector(weights)
        self.batch_size, self.block_size = batch_size, block_size
        self.rng = np.random.default_rng(seed)
        self.counts = np.zeros(len(self.names), dtype=np.int64)  # sequences drawn per domain, whole run
        self.n_seqs = 0
        self.phase_counts = self.counts  # this phase's counts; the same array until the first switch
        self.phase_seqs = 0
        self._ar = np.arange(block_size + 1)  # (T+1,)
        self._buf = np.empty((batch_size, block_size + 1), dtype=np.int64)  # (B, T+1)
        self._x = np.empty((batch_size, block_size), dtype=np.int64)  # (B, T)
        self._y = np.empty((batch_size, block_size), dtype=np.int64)  # (B, T)
        self.x, self.y = torch.from_numpy(self._x), torch.from_numpy(self._y)

    def _vector(self, weights: Mapping[str, float]) -> np.ndarray:
        w = np.array([float(weights.get(d, 0.0)) for d in self.names])
        return w / w.sum()

    def start_phase(self, weights: Mapping[str, float]) -> None:
        """Switch the target shares from the next sequence on; the new phase's deficits start at zero.

        Its domains must have been named in ``phase_weights`` (or the first mixture).
        """
        missing = sorted(d for d, w in weights.items() if w > 0 and d not in self.names)
        if missing:
            raise DataError(f"Phase weights name domains {missing} that were not declared when the batches were built; "
                            "pass every phase's weights as phase_weights.")
        if not any(float(weights.get(d, 0.0)) > 0 for d in self.names):
            raise DataError("A phase gives every domain weight 0; at least one domain needs a positive weight.")
        self.weights = self._vector(weights)
        if self.phase_counts is self.counts:
            self.phase_counts = np.zeros_like(self.counts)
        else:
            self.phase_counts[:] = 0
        self.phase_seqs = 0

    def allocate(self) -> np.ndarray:
        """Domain index of each of the next ``batch_size`` sequences, (B,)."""
        slots = np.empty(self.batch_size, dtype=np.int64)
        w, counts, n = self.weights, self.phase_counts, self.phase_seqs
        for i in range(self.batch_size):
            d = int(np.argmax(w * (n + 1) - counts))  # largest deficit; ties go to the first name
            counts[d] += 1
            n += 1
            slots[i] = d
        self.phase_seqs = n
        if counts is not self.counts:  # after a switch the run totals are kept separately
            self.counts += np.bincount(slots, minlength=len(self.names))
        self.n_seqs += self.batch_size
        return slots

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch: inputs x and targets y, both (B, T) int64 CPU tensors."""
        slots = self.allocate()
        for d in np.unique(slots):
            rows = np.flatnonzero(slots == d)
            arr = self.arrays[d]
            starts = self.rng.integers(0, arr.shape[0] - self.block_size, size=rows.size)  # (k,)
            self._buf[rows] = arr[starts[:, None] + self._ar]  # (k, T+1)
        np.copyto(self._x, self._buf[:, :-1])
        np.copyto(self._y, self._buf[:, 1:])
        return self.x, self.y

    @property
    def tokens_per_domain(self) -> dict[str, int]:
        """Training tokens (predicted positions, block_size per sequence) drawn so far, per domain."""
        return {d: int(c) * self.block_size for d, c in zip(self.names, self.counts)}

    def realised_shares(self) -> dict[str, float]:
        total = max(int(self.counts.sum()), 1)
        return {d: int(c) / total for d, c in zip(self.names, self.counts)}
