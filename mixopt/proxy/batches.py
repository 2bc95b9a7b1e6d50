"""Training batches drawn from domains in proportion to a mixture, by tokens.

Every sequence holds ``block_size + 1`` tokens of one domain, so a domain's
share of sequences is its share of tokens. Which domain fills each sequence is
decided deterministically ("largest deficit first", a stride scheduler): slot n
goes to the domain whose realised count lags its target ``w_d * (n + 1)`` most,
so each domain's count stays within one sequence of ``w_d * n`` at all times,
even for tiny weights. Where a sequence starts inside the domain's ``train``
array is random (a seeded numpy Generator). Domains with weight 0 are never read.

``StackBatches`` draws the batches of M runs at once (a stack of proxies on a
GPU), each bit for bit what its own ``MixtureBatches`` would draw.

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
        self.highs = np.array([a.shape[0] - block_size for a in self.arrays], dtype=np.int64)  # start offsets < high
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
        self.slots = np.empty(0, dtype=np.int64)  # the last batch's domain of each sequence (index into ``names``)

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
        slots = self.slots = self.allocate()
        starts = self.rng.integers(0, self.highs[slots])  # (B,): one draw per batch, each below its domain's bound
        for d in np.unique(slots):
            rows = np.flatnonzero(slots == d)
            self._buf[rows] = self.arrays[d][starts[rows, None] + self._ar]  # (k, T+1)
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


class StackBatches:
    """The next batches of M runs at once, each exactly what its own ``MixtureBatches.next()`` would return.

    A stack of proxies on a GPU draws M batches per step, and drawing them one
    run at a time costs ~0.15 ms of Python per run (the slot allocation's loop
    over B sequences, a fancy index per domain), ~8-10 ms per step at M = 64:
    on the critical path of a launch-bound GPU step. Here the allocation runs
    once for all runs (a loop over the B slots on (M, D) arrays) and each
    domain's sequences are gathered for all runs with one fancy index. Each
    run keeps its own random stream (one ``integers`` call per batch) and
    counts, so the tokens are bit for bit those of ``next()``. Runs that read different token arrays under one domain name
    are drawn one by one with ``next()``.
    """

    def __init__(self, runs: Sequence[MixtureBatches]):
        if not runs:
            raise ValueError("StackBatches needs at least one MixtureBatches.")
        shapes = {(r.batch_size, r.block_size) for r in runs}
        if len(shapes) != 1:
            raise ValueError(f"All runs must share one batch shape (batch_size, block_size); got {sorted(shapes)}.")
        self.runs = list(runs)
        self.batch_size, self.block_size = shapes.pop()
        self.names = sorted({d for r in runs for d in r.names})
        where = {d: j for j, d in enumerate(self.names)}
        self.cols = [np.array([where[d] for d in r.names], dtype=np.int64) for r in runs]  # run's domain -> column
        arrays = {d: {id(a): a for r in runs for n, a in zip(r.names, r.arrays) if n == d} for d in self.names}
        self.shared = all(len(a) == 1 for a in arrays.values())  # one token array per name across the runs
        self.arrays = [next(iter(arrays[d].values())) for d in self.names]
        self.highs = np.array([a.shape[0] - self.block_size for a in self.arrays], dtype=np.int64)
        self._ar = np.arange(self.block_size + 1)  # (T+1,)
        self._buf = np.empty((len(runs) * self.batch_size, self.block_size + 1), dtype=np.int64)  # (M*B, T+1)

    def allocate(self, live: Sequence[int]) -> np.ndarray:
        """Each live run's next ``batch_size`` domain columns, (len(live), B); updates the runs' counts."""
        k, D, B = len(live), len(self.names), self.batch_size
        w = np.zeros((k, D))
        c = np.zeros((k, D), dtype=np.int64)
        n = np.empty(k, dtype=np.int64)
        for r, i in enumerate(live):
            run = self.runs[i]
            w[r, self.cols[i]] = run.weights
            c[r, self.cols[i]] = run.phase_counts
            n[r] = run.phase_seqs
        slots = np.empty((k, B), dtype=np.int64)
        rows = np.arange(k)
        for b in range(B):  # as MixtureBatches.allocate; a column outside a run has weight 0, deficit 0, and never wins
            d = np.argmax(w * (n + 1)[:, None] - c, axis=1)  # (k,)
            c[rows, d] += 1
            n += 1
            slots[:, b] = d
        for r, i in enumerate(live):
            run = self.runs[i]
            drawn = c[r, self.cols[i]]
            if run.phase_counts is not run.counts:  # after a switch the run totals are kept separately
                run.counts += drawn - run.phase_counts
            run.phase_counts[:] = drawn
            run.phase_seqs = int(n[r])
            run.n_seqs += B
        return slots

    def next_into(self, out: torch.Tensor, live: Sequence[int]) -> None:
        """Write run i's next batch into ``out[0, i]`` (inputs) and ``out[1, i]`` (targets) for each i in ``live``.

        ``out`` is an int64 CPU tensor of shape (2, M, B, T); the rows of runs
        not in ``live`` are left as they are.
        """
        live = list(live)
        if not live:
            return
        if not self.shared or len(live) == 1:  # one run: its own next() is quicker than the (M, D) bookkeeping
            for i in live:
                out[0, i], out[1, i] = self.runs[i].next()
            return
        k, B, T = len(live), self.batch_size, self.block_size
        slots = self.allocate(live)  # (k, B) columns
        starts = np.empty((k, B), dtype=np.int64)
        for r, i in enumerate(live):  # each run's own rng, one call per batch, as MixtureBatches.next
            starts[r] = self.runs[i].rng.integers(0, self.highs[slots[r]])
        slots, starts = slots.ravel(), starts.ravel()  # (k*B,): row r*B + b of _buf
        for d in np.unique(slots):  # one gather per domain for all runs
            rows = np.flatnonzero(slots == d)
            self._buf[rows] = self.arrays[d][starts[rows, None] + self._ar]  # (n, T+1)
        seqs = torch.from_numpy(self._buf[: k * B]).view(k, B, T + 1)  # (k, B, T+1)
        if live == list(range(out.shape[1])):
            out[0].copy_(seqs[..., :-1])
            out[1].copy_(seqs[..., 1:])
        else:
            idx = torch.as_tensor(live)
            out[0, idx] = seqs[..., :-1]
            out[1, idx] = seqs[..., 1:]
