"""The chunked output head + cross-entropy (large vocabularies) against the plain lm_head + F.cross_entropy path."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from mixopt.config import ProxyConfig
from mixopt.mixtures import Mixture
from mixopt.proxy import chunked_ce
from mixopt.proxy.chunked_ce import (
    CHUNKED_CE_MIN_VOCAB,
    linear_cross_entropy,
    token_cross_entropy,
    use_chunked_ce,
)
from mixopt.proxy.step import ModelStack, evaluate
from mixopt.proxy.model import GPT, GPTConfig
from mixopt.proxy.stacked import StackedGPT
from mixopt.proxy.train import train_proxies_stacked, train_proxy
from tests.test_proxy import text_data  # noqa: F401  (shared fixture)

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
V = 4096  # large-ish, below the default threshold: the tests switch the chunked path on themselves
SHAPE = GPTConfig(vocab_size=V, n_layer=1, n_embd=32, head_size=16, block_size=16)


@pytest.fixture
def chunked_on(monkeypatch):
    """Every model built in the test takes the chunked loss, in several chunks."""
    monkeypatch.setattr(chunked_ce, "CHUNKED_CE_MIN_VOCAB", 1024)
    monkeypatch.setattr(chunked_ce, "CE_CHUNK_ELEMENTS", 3 * 7 * V)  # 7 tokens of a 3-stack per chunk: ragged


def _plain(x, w, t, reduction="mean"):
    logits = torch.bmm(x, w.transpose(1, 2))  # (M, N, V)
    ce = F.cross_entropy(logits.flatten(0, 1).float(), t.reshape(-1), reduction="none").view(t.shape)
    return ce.mean(1) if reduction == "mean" else ce.sum(1)


def _inputs(m: int, n: int = 50, c: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, n, c, generator=g, requires_grad=True)
    w = (0.3 * torch.randn(m, V, c, generator=g)).requires_grad_()
    t = torch.randint(0, V, (m, n), generator=g)
    return x, w, t


@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_linear_cross_entropy_matches_plain_loss_and_gradients(m, reduction):
    x, w, t = _inputs(m)
    gout = torch.rand(m) + 0.5  # each model's loss weighted differently, as a masked stack loss does
    ref = _plain(x, w, t, reduction)
    (ref * gout).sum().backward()
    ref_gx, ref_gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    for chunk in (None, 7 * m * V, 1):  # one chunk, ragged chunks, one token at a time
        got = linear_cross_entropy(x, w, t, reduction=reduction, chunk_elements=chunk)
        assert got.shape == (m,) and got.dtype == torch.float32
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
        (got * gout).sum().backward()
        torch.testing.assert_close(x.grad, ref_gx, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(w.grad, ref_gw, rtol=1e-4, atol=1e-6)
        x.grad = w.grad = None
    with torch.no_grad():  # the no-grad path (evaluation) gives the same losses
        torch.testing.assert_close(linear_cross_entropy(x, w, t, reduction=reduction, chunk_elements=7 * m * V), ref)


@pytest.mark.parametrize("m", [1, 3])
def test_token_losses_and_token_weights_match_plain(m):
    """``token_cross_entropy``: per-token losses (M, N) without all the logits; ``token_weights``: the loss
    sum_t w_t loss_t and its gradients (DoReMi's weighted objective), in any chunking."""
    x, w, t = _inputs(m, seed=3)
    logits = torch.bmm(x, w.transpose(1, 2))
    ref_tok = F.cross_entropy(logits.flatten(0, 1).float(), t.reshape(-1), reduction="none").view(t.shape)
    tw = torch.rand(t.shape, generator=torch.Generator().manual_seed(4))
    (ref_tok * tw).sum().backward()
    ref_gx, ref_gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    for chunk in (None, 7 * m * V, 1):
        torch.testing.assert_close(chunked_ce.token_cross_entropy(x, w, t, chunk_elements=chunk), ref_tok.detach(),
                                   rtol=1e-5, atol=1e-5)
        got = linear_cross_entropy(x, w, t, chunk_elements=chunk, token_weights=tw)
        torch.testing.assert_close(got, (ref_tok * tw).sum(1).detach(), rtol=1e-5, atol=1e-5)
        got.sum().backward()
        torch.testing.assert_close(x.grad, ref_gx, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(w.grad, ref_gw, rtol=1e-4, atol=1e-6)
        x.grad = w.grad = None
    with pytest.raises(ValueError, match="token_weights"):
        linear_cross_entropy(x, w, t, token_weights=tw[:, :3])


def test_linear_cross_entropy_under_cpu_bf16_autocast_is_close_to_plain():
    x, w, t = _inputs(2, seed=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = _plain(x, w, t)
    ref.sum().backward()
    ref_gx, ref_gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = linear_cross_entropy(x, w, t, chunk_elements=9 * 2 * V)
    assert got.dtype == torch.float32
    got.sum().backward()
    torch.testing.assert_close(got, ref, rtol=2e-3, atol=2e-3)  # same bf16 matmuls; grad_w summed per chunk in fp32
    torch.testing.assert_close(x.grad, ref_gx, rtol=2e-2, atol=2e-4)
    torch.testing.assert_close(w.grad, ref_gw, rtol=2e-2, atol=2e-4)


def test_linear_cross_entropy_never_saves_the_logits():
    x, w, t = _inputs(2, n=64)
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = linear_cross_entropy(x, w, t, chunk_elements=16 * 2 * V)
    loss.sum().backward()
    assert saved and max(saved) < 2 * 64 * V  # the logits of all tokens are never kept for backward
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        _plain(x, w, t).sum()
    assert max(saved) >= 2 * 64 * V  # while the plain path keeps them


def test_linear_cross_entropy_checks_shapes():
    x, w, t = _inputs(2)
    with pytest.raises(ValueError, match=r"targets \(M, N\)"):
        linear_cross_entropy(x, w, t[:, :-1])
    with pytest.raises(ValueError, match="N >= 1"):
        linear_cross_entropy(x[:, :0], w, t[:, :0])
    with pytest.raises(ValueError, match="reduction"):
        linear_cross_entropy(x, w, t, reduction="none")


def test_threshold_keeps_the_byte_vocabulary_on_the_plain_path():
    assert CHUNKED_CE_MIN_VOCAB == 8192
    assert not use_chunked_ce(257) and not use_chunked_ce(V) and use_chunked_ce(50_304)
    assert not GPT(GPTConfig()).chunked_ce and not StackedGPT(GPTConfig(), 2).chunked_ce
    with torch.device("meta"):
        assert GPT(GPTConfig(vocab_size=50_304)).chunked_ce
        assert StackedGPT(GPTConfig(vocab_size=50_304), 2).chunked_ce


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_gpt_chunked_loss_and_gradients_match_plain(chunked_on):
    torch.manual_seed(0)
    model = GPT(SHAPE)
    assert model.chunked_ce
    g = torch.Generator().manual_seed(2)
    idx, tgt = torch.randint(0, V, (3, 16), generator=g), torch.randint(0, V, (3, 16), generator=g)
    logits, loss = model(idx, tgt)
    assert logits is None and loss.shape == ()
    loss.backward()
    got = _grads(model)
    model.zero_grad(set_to_none=True)
    model.chunked_ce = False
    ref_logits, ref_loss = model(idx, tgt)
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    for name, ref in _grads(model).items():
        torch.testing.assert_close(got[name], ref, rtol=1e-4, atol=1e-6, msg=name)
    model.chunked_ce = True
    assert torch.equal(model(idx)[0], ref_logits)  # without targets: the logits, as before


def test_stacked_chunked_losses_and_gradients_match_plain(chunked_on):
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(GPT(SHAPE))
    stacked = StackedGPT.from_models(models)
    assert stacked.chunked_ce
    g = torch.Generator().manual_seed(3)
    idx, tgt = torch.randint(0, V, (3, 2, 16), generator=g), torch.randint(0, V, (3, 2, 16), generator=g)
    alive = torch.tensor([True, False, True])  # the loop's masked loss: a dead model gets no gradient
    logits, losses = stacked(idx, tgt)
    assert logits is None and losses.shape == (3,)
    torch.where(alive, losses, torch.zeros_like(losses)).sum().backward()
    got = _grads(stacked)
    stacked.zero_grad(set_to_none=True)
    stacked.chunked_ce = False
    _, ref = stacked(idx, tgt)
    torch.where(alive, ref, torch.zeros_like(ref)).sum().backward()
    torch.testing.assert_close(losses, ref, rtol=1e-5, atol=1e-6)
    for name, r in _grads(stacked).items():
        torch.testing.assert_close(got[name], r, rtol=1e-4, atol=1e-6, msg=name)
        assert not got[name][1].any(), name
    for i, m in enumerate(models):  # and each model of the stack is its own chunked GPT
        torch.testing.assert_close(losses[i], m(idx[i], tgt[i])[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("m", [1, 2])
def test_evaluation_with_chunked_loss_matches_plain(chunked_on, m):
    cfg = ProxyConfig(n_layer=1, n_embd=32, head_size=16, block_size=16, device="cpu", dtype="float32")
    stack = ModelStack.from_seeds(SHAPE, list(range(m)), cfg, torch.device("cpu"), torch.float32)
    g = torch.Generator().manual_seed(4)
    sets = {"a": (torch.randint(0, V, (70, 16), generator=g), torch.randint(0, V, (70, 16), generator=g))}
    got = evaluate(stack, sets)["a"]
    stack.model.chunked_ce = False
    ref = evaluate(stack, sets)["a"]
    assert len(got) == m
    assert got == pytest.approx(ref, rel=1e-6)


@pytest.fixture(scope="module")
def wide_data(text_data):
    """The byte-level domains, with a 4096-id table (the byte ids use the first 257)."""
    return dataclasses.replace(text_data, vocab_size=V)


def _cfg():
    return ProxyConfig(n_layer=1, n_embd=32, head_size=16, block_size=32, batch_size=8, tokens=8 * 32 * 12, lr=3e-3,
                       checkpoints=[0.5], eval_tokens=512, device="cpu", dtype="float32")


def _count_chunked_calls(monkeypatch) -> list:
    """Make the models count their chunked-loss calls (a list that grows by one per call): proof the path ran."""
    from mixopt.proxy import model as model_mod, stacked as stacked_mod

    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return chunked_ce.linear_cross_entropy(*args, **kwargs)

    monkeypatch.setattr(model_mod, "linear_cross_entropy", counting)
    monkeypatch.setattr(stacked_mod, "linear_cross_entropy", counting)
    return calls


def test_train_proxy_with_chunked_loss_matches_plain(wide_data, monkeypatch):
    mix = Mixture({"alpha": 0.6, "beta": 0.4})
    ref = train_proxy(_cfg(), mix, wide_data, 3, threads=1)
    monkeypatch.setattr(chunked_ce, "CHUNKED_CE_MIN_VOCAB", 1024)
    monkeypatch.setattr(chunked_ce, "CE_CHUNK_ELEMENTS", 100 * V)  # several chunks per batch
    calls = _count_chunked_calls(monkeypatch)
    got = train_proxy(_cfg(), mix, wide_data, 3, threads=1)
    assert calls  # the chunked path really ran (its metrics can equal the plain ones to the bit: they did in one CI run)
    assert got.status == ref.status == "ok"
    assert got.metrics.keys() == ref.metrics.keys()
    for k, v in ref.metrics.items():
        assert got.metrics[k] == pytest.approx(v, rel=2e-4), k


def test_train_proxies_stacked_with_chunked_loss_matches_plain(wide_data, monkeypatch):
    mixes = [Mixture({"alpha": 0.6, "beta": 0.4}), Mixture({"gamma": 1.0})]
    ref = train_proxies_stacked(_cfg(), mixes, wide_data, [3, 4], threads=1)
    monkeypatch.setattr(chunked_ce, "CHUNKED_CE_MIN_VOCAB", 1024)
    monkeypatch.setattr(chunked_ce, "CE_CHUNK_ELEMENTS", 2 * 100 * V)
    calls = _count_chunked_calls(monkeypatch)
    got = train_proxies_stacked(_cfg(), mixes, wide_data, [3, 4], threads=1)
    assert calls  # the chunked path really ran
    for r, g in zip(ref, got):
        assert g.status == r.status == "ok"
        for k, v in r.metrics.items():
            assert g.metrics[k] == pytest.approx(v, rel=2e-4), k


@cuda_only
def test_chunked_loss_on_cuda_matches_plain_and_holds_less_memory():
    """A stack of 4 RegMix-like proxies (50k vocabulary) in bf16: same losses and gradients, under half the peak memory."""
    dev = torch.device("cuda")
    shape = GPTConfig(vocab_size=50_304, n_layer=2, n_embd=144, head_size=48, block_size=512)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        stacked = StackedGPT(shape, 4).to(dev)
        idx, tgt = torch.randint(0, 50_304, (2, 4, 8, 512)).to(dev)  # (M, B, T) each

    def step(chunked: bool):
        stacked.chunked_ce = chunked
        stacked.zero_grad(set_to_none=True)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, losses = stacked(idx, tgt)
        losses.sum().backward()
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - before
        return logits, losses.detach(), _grads(stacked), peak

    logits, losses, grads, peak = step(True)
    ref_logits, ref, ref_grads, ref_peak = step(False)
    assert logits is None and ref_logits.shape == (4, 8, 512, 50_304)
    del ref_logits
    torch.testing.assert_close(losses, ref, rtol=2e-3, atol=2e-3)
    for name, r in ref_grads.items():
        torch.testing.assert_close(grads[name], r, rtol=5e-2, atol=1e-4, msg=name)
    assert peak < 0.5 * ref_peak, (peak, ref_peak)


def test_token_cross_entropy_of_no_tokens_is_empty():
    """An empty batch gives an empty (M, 0) result, not a division by zero in the chunk sizing (review, stop 28)."""
    out = token_cross_entropy(torch.zeros(2, 0, 8), torch.randn(2, 50, 8), torch.zeros(2, 0, dtype=torch.long))
    assert out.shape == (2, 0)
