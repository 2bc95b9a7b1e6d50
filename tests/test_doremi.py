"""DoReMi's domain weights (``proxy/doremi.py``) and ``verify --against doremi``."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.data.types import DomainSet
from mixopt.errors import DataError
from mixopt.proxy.doremi import SMOOTHING, doremi_weights
from mixopt.proxy.loop import torch_threads
from tests.test_proxy import PKG, _domain, tiny_cfg


@pytest.fixture(scope="module")
def cipher_data() -> DomainSet:
    """Two domains of the same text: ``plain`` and ``cipher`` (a fixed byte substitution of it), so a model trained on
    one is good on it and poor on the other."""
    raw = b"\n".join(p.read_bytes() for p in sorted(PKG.glob("**/*.py")))[:400_000]
    a = np.frombuffer(raw, dtype=np.uint8).astype(np.uint16)
    perm = np.random.default_rng(0).permutation(256).astype(np.uint16)
    half = len(a) // 2
    domains = {"plain": _domain("plain", a[:half]), "cipher": _domain("cipher", perm[a[half:]])}
    return DomainSet(domains, vocab_size=257, eos_id=256, tokenizer="bytes")


def run(data, reference=None, seed=0, **kw):
    with torch_threads(1):
        return doremi_weights(tiny_cfg(tokens=8 * 32 * 30, **kw), data, reference, seed=seed)


def test_weights_move_to_the_domain_the_reference_knows_better(cipher_data):
    """Excess loss over the reference is positive where the reference is better: a reference trained on ``plain`` only
    pulls DoReMi's weight to ``plain``, one trained on ``cipher`` only pulls it to ``cipher``."""
    to_plain = run(cipher_data, {"plain": 1.0})
    to_cipher = run(cipher_data, {"cipher": 1.0})
    assert to_plain.weights["plain"] > 0.6 and to_cipher.weights["cipher"] > 0.6
    # by the end the proxy, trained almost only on ``plain``, lags the reference on ``cipher`` instead: DRO's balance
    assert to_plain.history[-1]["cipher"] > to_plain.history[len(to_plain.history) // 2]["cipher"]
    assert to_plain.reference == {"plain": 1.0}


def test_weights_are_a_smoothed_mixture_and_deterministic(cipher_data):
    a, b = run(cipher_data), run(cipher_data)
    assert a.weights == b.weights and a.history == b.history  # same seed, same thread count: bit for bit
    assert sum(a.weights.values()) == pytest.approx(1.0)
    assert min(a.weights.values()) >= SMOOTHING / 2 - 1e-12  # smoothing keeps every domain above c/k
    assert a.steps == 30 and a.history[0]["step"] == 1 and a.history[-1]["step"] == 30
    counts = cipher_data.token_counts  # the default reference: natural token shares
    assert a.reference["plain"] == pytest.approx(counts["plain"] / sum(counts.values()))
    assert set(a.to_dict()) >= {"weights", "last", "reference", "steps", "excess", "history", "step_size", "smoothing"}


def test_bad_inputs_say_what_to_fix(cipher_data):
    one = DomainSet({"plain": cipher_data.domains["plain"]}, vocab_size=257, eos_id=256, tokenizer="bytes")
    with pytest.raises(DataError, match="Add domains"):
        doremi_weights(tiny_cfg(), one)
    with pytest.raises(DataError, match="non-negative weights"):
        doremi_weights(tiny_cfg(), cipher_data, {"plain": -1.0, "cipher": 1.0})


def test_a_large_vocabulary_takes_the_chunked_head_with_the_same_weights(cipher_data, monkeypatch):
    """With the chunked loss (a large vocabulary) DoReMi never forms a batch's logits: per-token losses and the weighted
    objective go through the chunked head, and the weights match the plain path's to float rounding."""
    import dataclasses

    from mixopt.proxy import chunked_ce
    wide = dataclasses.replace(cipher_data, vocab_size=1100)  # byte ids use the first 257 rows
    plain = run(wide)
    monkeypatch.setattr(chunked_ce, "CHUNKED_CE_MIN_VOCAB", 1024)
    monkeypatch.setattr(chunked_ce, "CE_CHUNK_ELEMENTS", 100 * 1100)  # several chunks per batch
    calls = []
    real = chunked_ce.token_cross_entropy
    monkeypatch.setattr("mixopt.proxy.doremi.token_cross_entropy", lambda *a, **k: calls.append(1) or real(*a, **k))
    chunked = run(wide)
    assert calls  # the chunked head really ran
    for d in ("plain", "cipher"):
        assert chunked.weights[d] == pytest.approx(plain.weights[d], abs=2e-3)
        assert chunked.excess[d] == pytest.approx(plain.excess[d], abs=2e-3)


@pytest.mark.parametrize("threads", [1, 2])
def test_verify_trains_doremi_at_the_configs_thread_count(cipher_data, tmp_path, monkeypatch, threads):
    """proxy.threads holds for DoReMi's runs as for every other run (its cached mixture is keyed with it); before, it
    trained at torch's thread count of the moment (all cores) whatever proxy.threads said (review, stop 40)."""
    import torch

    from mixopt.config import SweepConfig
    from mixopt.proxy.step import ModelStack
    from mixopt.runs.store import RunStore
    from mixopt.verify import doremi_mixture

    seen, step = set(), ModelStack.step

    def spy(self, *args, **kw):
        seen.add(torch.get_num_threads())
        return step(self, *args, **kw)

    monkeypatch.setattr(ModelStack, "step", spy)
    cfg = SweepConfig(proxy=tiny_cfg(tokens=8 * 32 * 3, threads=threads).model_dump())
    with torch_threads(3):  # what torch would use otherwise
        doremi_mixture(RunStore(tmp_path / "store"), cfg, cipher_data)
        assert torch.get_num_threads() == 3  # restored after
    assert seen == {threads}


@pytest.mark.parametrize("machine", ["float32", "bfloat16"])
def test_verify_trains_doremi_in_the_stores_dtype_and_keys_it(cipher_data, tmp_path, monkeypatch, machine):
    """proxy.dtype auto: DoReMi trains in the store's proxy_dtype whatever this machine's auto (its probe) would pick,
    and its cached mixture's key holds that dtype, not "auto"; before, the probe of the moment decided, under a key
    of "auto" (recheck of stop 40, N1)."""
    import json

    import torch

    from mixopt.config import SweepConfig
    from mixopt.proxy import device, doremi
    from mixopt.runs.store import RunStore
    from mixopt.verify import doremi_mixture

    seen, pick = set(), doremi.pick_dtype

    def probe(cfg, dev, **kw):  # this machine's auto says `machine`
        got = torch.bfloat16 if cfg.dtype == "auto" and machine == "bfloat16" else \
            torch.float32 if cfg.dtype == "auto" else pick(cfg, dev, **kw)
        seen.add(got)
        return got

    monkeypatch.setattr(doremi, "pick_dtype", probe)
    monkeypatch.setattr(device, "pick_dtype", probe)
    store = RunStore(tmp_path / "store")
    store.update_meta(proxy_dtype="float32" if machine == "bfloat16" else "bfloat16")
    want = store.meta()["proxy_dtype"]
    cfg = SweepConfig(proxy=tiny_cfg(tokens=8 * 32 * 3, threads=1, dtype="auto").model_dump())
    doremi_mixture(store, cfg, cipher_data)
    assert seen == {getattr(torch, want)}
    (cached,) = (tmp_path / "store" / "doremi").glob("*.json")
    assert json.loads(cached.read_text())["key"]["proxy"]["dtype"] == want
