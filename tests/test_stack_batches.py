"""StackBatches: the batches of M runs drawn at once are bit for bit each run's own MixtureBatches draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixopt.proxy.batches import MixtureBatches, StackBatches

B, T = 8, 16


@pytest.fixture(scope="module")
def train():
    rng = np.random.default_rng(0)
    return {name: rng.integers(0, 256, size=n).astype(np.uint16)
            for name, n in (("a", 5_000), ("b", 900), ("c", 3_000), ("d", 40))}


def runs(train, seeds=(0, 1, 2, 3)):
    """Runs over different domain sets, tiny and zero weights, and a later phase naming another domain."""
    specs = [({"a": 0.5, "b": 0.3, "c": 0.2}, [{"c": 1.0}]),
             ({"b": 1.0}, []),
             ({"a": 0.001, "c": 0.999, "d": 0.0}, [{"a": 0.5, "d": 0.5}]),
             ({"d": 0.2, "a": 0.8}, [{"b": 0.7, "a": 0.3}])]
    return [MixtureBatches(train, w, batch_size=B, block_size=T, seed=s, phase_weights=ph)
            for (w, ph), s in zip(specs, seeds)]


def test_same_tokens_counts_and_phases_as_each_run_alone(train):
    alone, stacked = runs(train), runs(train)
    drawer = StackBatches(stacked)
    out = torch.full((2, len(stacked), B, T), -1, dtype=torch.long)
    switches = {25: [(0, {"c": 1.0}), (2, {"a": 0.5, "d": 0.5})], 31: [(3, {"b": 0.7, "a": 0.3})]}
    for step in range(40):
        live = [i for i in range(len(alone)) if not (i == 1 and 10 <= step < 20)]  # run 1 sits out ten steps
        for i, weights in switches.get(step, []):  # runs switch phase at different points
            alone[i].start_phase(weights)
            stacked[i].start_phase(weights)
        before = out.clone()
        drawer.next_into(out, live)
        for i in range(len(alone)):
            if i in live:
                x, y = alone[i].next()
                assert torch.equal(out[0, i], x) and torch.equal(out[1, i], y), (step, i)
            else:
                assert torch.equal(out[:, i], before[:, i])  # a run that sits out is left alone
    for a, s in zip(alone, stacked):
        assert np.array_equal(a.counts, s.counts) and np.array_equal(a.phase_counts, s.phase_counts)
        assert (a.n_seqs, a.phase_seqs) == (s.n_seqs, s.phase_seqs)
        assert a.tokens_per_domain == s.tokens_per_domain
        assert a.rng.integers(0, 2**62) == s.rng.integers(0, 2**62)  # the random streams stayed in step


def test_runs_reading_different_arrays_under_one_name_are_drawn_alone(train):
    other = dict(train, a=train["a"][::-1].copy())
    specs = [MixtureBatches(train, {"a": 0.6, "b": 0.4}, batch_size=B, block_size=T, seed=0),
             MixtureBatches(other, {"a": 1.0}, batch_size=B, block_size=T, seed=1)]
    alone = [MixtureBatches(train, {"a": 0.6, "b": 0.4}, batch_size=B, block_size=T, seed=0),
             MixtureBatches(other, {"a": 1.0}, batch_size=B, block_size=T, seed=1)]
    drawer = StackBatches(specs)
    assert not drawer.shared
    out = torch.zeros((2, 2, B, T), dtype=torch.long)
    for _ in range(5):
        drawer.next_into(out, [0, 1])
        for i in range(2):
            x, y = alone[i].next()
            assert torch.equal(out[0, i], x) and torch.equal(out[1, i], y)


def test_one_shape_required(train):
    with pytest.raises(ValueError, match="one batch shape"):
        StackBatches([MixtureBatches(train, {"a": 1.0}, batch_size=B, block_size=T, seed=0),
                      MixtureBatches(train, {"a": 1.0}, batch_size=B + 1, block_size=T, seed=0)])
    with pytest.raises(ValueError, match="at least one"):
        StackBatches([])
