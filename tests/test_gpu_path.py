"""The GPU path of proxy training: stacked proxies, stack-size probe, dtype choice, MFU. All logic runs on CPU.

Stacked training is compared with separate ``train_proxy`` runs to a small
tolerance, not bit for bit: a batched matmul (``bmm``) may sum in a different
order from a single one, and AdamW turns those rounding differences into
slightly different trajectories.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mixopt.config import ProxyConfig, load_config, resolve_config
from mixopt.data.types import DomainSet
from mixopt.errors import MixtureError
from mixopt.mixtures import Mixture
from mixopt.proxy import mfu as mfu_mod
from mixopt.proxy.device import autocast, pick_dtype
from mixopt.proxy.model import GPT, GPTConfig
from mixopt.proxy import stack_size
from mixopt.proxy import step as step_mod
from mixopt.proxy.loop import eval_windows
from mixopt.proxy.step import ModelStack, evaluate, make_optimizer
from mixopt.proxy.stack_size import choose_stack_size, probe_stack_size, stack_memory_limit
from mixopt.proxy.stacked import StackedGPT, clip_grad_norm_per_model_
from mixopt.proxy.train import train_proxies_stacked, train_proxy
from tests.bench_loader import load_benchmark

PKG = Path(__file__).resolve().parents[1] / "mixopt"
SHAPE = GPTConfig(n_layer=2, n_embd=32, head_size=16, block_size=16)
from tests.test_proxy import text_data  # noqa: E402,F401  (shared fixture)

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def data(text_data) -> DomainSet:
    """The same three byte-level domains (and target) as the proxy tests."""
    return text_data


def tiny_cfg(**kw) -> ProxyConfig:
    base = dict(n_layer=1, n_embd=32, head_size=16, block_size=32, batch_size=8, tokens=8 * 32 * 24,
                lr=3e-3, checkpoints=[0.5], eval_tokens=512, device="cpu", dtype="float32")
    return ProxyConfig(**{**base, **kw})


def _models(n: int, config: GPTConfig = SHAPE) -> list[GPT]:
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(GPT(config))
    return out


# ---------------------------------------------------------------- the stacked model

@pytest.mark.parametrize("bias", [False, True])
def test_stacked_forward_matches_separate_models(bias):
    config = GPTConfig(n_layer=2, n_embd=32, head_size=16, block_size=16, bias=bias)
    models = _models(3, config)
    if bias:  # non-zero biases, so they are really exercised
        with torch.no_grad():
            for m in models:
                for name, p in m.named_parameters():
                    if name.endswith("bias"):
                        p.normal_()
    stacked = StackedGPT.from_models(models)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 257, (3, 4, 16), generator=g)  # (M, B, T)
    tgt = torch.randint(0, 257, (3, 4, 16), generator=g)  # (M, B, T)
    logits, losses = stacked(idx, tgt)
    assert logits.shape == (3, 4, 16, 257) and losses.shape == (3,)
    for i, m in enumerate(models):
        ref_logits, ref_loss = m(idx[i], tgt[i])
        torch.testing.assert_close(logits[i], ref_logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(losses[i], ref_loss, rtol=1e-5, atol=1e-6)
    short, none = stacked(idx[:, :, :7])
    assert short.shape == (3, 4, 7, 257) and none is None
    with pytest.raises(ValueError, match="block_size"):
        stacked(torch.zeros(3, 1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="stack has 3"):
        stacked(idx[:2])


def test_stacked_gradients_match_separate_models():
    models = _models(2)
    stacked = StackedGPT.from_models(models)
    idx = torch.randint(0, 257, (2, 3, 16), generator=torch.Generator().manual_seed(2))
    _, losses = stacked(idx, idx.roll(1, dims=2))
    losses.sum().backward()
    grads = dict(stacked.named_parameters())
    for i, m in enumerate(models):
        m(idx[i], idx[i].roll(1, dims=1))[1].backward()
        for name, p in m.named_parameters():
            torch.testing.assert_close(grads[name].grad[i], p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("chunked", [False, True])
def test_folded_norm_scales_match_separate_models(fold, chunked, monkeypatch):
    """LayerNorm scales folded into the next layer's weight (``stacked.FOLD_NORMS``) give each model's own losses
    and gradients, the norms' scales' included; the scales are drawn away from 1 so the fold is really exercised."""
    from mixopt.proxy import chunked_ce, stacked as stacked_mod
    monkeypatch.setattr(stacked_mod, "FOLD_NORMS", fold)
    vocab = 1100 if chunked else 257
    if chunked:
        monkeypatch.setattr(chunked_ce, "CHUNKED_CE_MIN_VOCAB", 1024)
    config = GPTConfig(vocab_size=vocab, n_layer=2, n_embd=32, head_size=16, block_size=16)
    models = _models(2, config)
    with torch.no_grad():
        for m in models:
            for name, p in m.named_parameters():
                if "ln_" in name:
                    p.uniform_(0.5, 1.5)
    stacked = StackedGPT.from_models(models)
    assert stacked.chunked_ce == chunked
    g = torch.Generator().manual_seed(4)
    idx, tgt = torch.randint(0, vocab, (2, 3, 16), generator=g), torch.randint(0, vocab, (2, 3, 16), generator=g)
    _, losses = stacked(idx, tgt)
    losses.sum().backward()
    grads = dict(stacked.named_parameters())
    for i, m in enumerate(models):
        loss = m(idx[i], tgt[i])[1]
        torch.testing.assert_close(losses[i], loss, rtol=1e-5, atol=1e-6)
        loss.backward()
        for name, p in m.named_parameters():
            torch.testing.assert_close(grads[name].grad[i], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    with torch.no_grad():  # and the logits (no targets) through the folded head
        logits, _ = stacked(idx)
        torch.testing.assert_close(logits[1], models[1](idx[1])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunked", [False, True])
def test_low_precision_residual_stream(chunked, monkeypatch):
    """``stacked.LOW_PRECISION_RESIDUAL`` keeps the residual stream and LayerNorm in bf16 under bf16 autocast: the
    blocks see bf16, losses and gradients stay close to the fp32-residual bf16 step's (bf16 rounding of the stream
    only), and without autocast (fp32) the switch changes nothing, bit for bit."""
    from mixopt.proxy import chunked_ce, stacked as stacked_mod
    vocab = 1100 if chunked else 257
    if chunked:
        monkeypatch.setattr(chunked_ce, "CHUNKED_CE_MIN_VOCAB", 1024)
    config = GPTConfig(vocab_size=vocab, n_layer=2, n_embd=32, head_size=16, block_size=16)
    g = torch.Generator().manual_seed(5)
    idx, tgt = torch.randint(0, vocab, (2, 3, 16), generator=g), torch.randint(0, vocab, (2, 3, 16), generator=g)

    def run(low: bool, bf16: bool):
        monkeypatch.setattr(stacked_mod, "LOW_PRECISION_RESIDUAL", low)
        stacked = StackedGPT.from_models(_models(2, config))
        seen = []
        hook = stacked.transformer.h[1].register_forward_pre_hook(lambda mod, args: seen.append(args[0].dtype))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, losses = stacked(idx, tgt)
        losses.sum().backward()
        hook.remove()
        return losses.detach(), {n: p.grad for n, p in stacked.named_parameters()}, seen[0]

    ref_loss, ref_grads, ref_dtype = run(False, True)
    loss, grads, dtype = run(True, True)
    assert ref_dtype == torch.float32 and dtype == torch.bfloat16
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=3e-2)
    for name, g_ref in ref_grads.items():  # bf16 rounding of the stream: gradients agree in direction and size
        cos = torch.nn.functional.cosine_similarity(grads[name].flatten(), g_ref.flatten(), dim=0)
        assert cos > 0.98, name
        assert grads[name].dtype == torch.float32, name  # fp32 parameters and gradients, as before
    off_loss, off_grads, _ = run(False, False)
    on_loss, on_grads, on_dtype = run(True, False)
    assert on_dtype == torch.float32 and torch.equal(off_loss, on_loss)
    assert all(torch.equal(off_grads[n], on_grads[n]) for n in off_grads)


def test_unstack_round_trip_and_sizes():
    models = _models(3)
    stacked = StackedGPT.from_models(models)
    back = stacked.unstack()
    assert len(back) == 3
    for a, b in zip(models, back):
        assert a.state_dict().keys() == b.state_dict().keys()
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
        assert b.lm_head.weight is b.transformer.wte.weight  # still tied
    assert stacked.num_params() == models[0].num_params()
    assert stacked.flops_per_token() == models[0].flops_per_token()
    assert stacked.lm_head.weight is stacked.transformer.wte.weight
    assert all(p.shape[0] == 3 for p in stacked.parameters())
    fresh = StackedGPT(SHAPE, 2)  # its own init gives two different models
    assert not torch.equal(fresh.lm_head.weight[0], fresh.lm_head.weight[1])
    with pytest.raises(ValueError, match="one GPTConfig"):
        StackedGPT.from_models([GPT(SHAPE), GPT(GPTConfig(n_embd=64, head_size=32, block_size=16))])


def test_from_seeds_matches_train_proxy_init():
    stacked = StackedGPT.from_seeds(SHAPE, [5, 9])
    for seed, m in zip([5, 9], stacked.unstack()):
        torch.manual_seed(seed)
        ref = GPT(SHAPE)
        assert all(torch.equal(x, y) for x, y in zip(ref.state_dict().values(), m.state_dict().values()))


def test_per_model_grad_clipping_is_independent():
    models = _models(2)
    stacked = StackedGPT.from_models(models)
    params = list(stacked.parameters())
    g = torch.Generator().manual_seed(3)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 0.001
        p.grad[0] *= 1000.0  # model 0 far above the threshold, model 1 below it
    for i, m in enumerate(models):  # the same gradients on the separate models
        named = dict(stacked.named_parameters())
        for name, p in m.named_parameters():
            p.grad = named[name].grad[i].clone()
    untouched = [p.grad[1].clone() for p in params]
    norms = clip_grad_norm_per_model_(params, 1.0)
    assert norms.shape == (2,) and norms[0] > 1.0 > norms[1]
    after = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad[0]) for p in params]))
    assert after.item() == pytest.approx(1.0, rel=1e-4)
    assert all(torch.equal(p.grad[1], u) for p, u in zip(params, untouched))
    named = dict(stacked.named_parameters())
    for i, m in enumerate(models):
        ref = torch.nn.utils.clip_grad_norm_(list(m.parameters()), 1.0)
        assert ref.item() == pytest.approx(norms[i].item(), rel=1e-5)
        for name, p in m.named_parameters():
            torch.testing.assert_close(named[name].grad[i], p.grad, rtol=1e-5, atol=1e-9)


def test_stacked_adamw_equals_separate_adamws():
    cfg = tiny_cfg(n_layer=2)
    models = _models(2)
    stacked = StackedGPT.from_models(models)
    opt = make_optimizer(stacked, cfg, torch.device("cpu"), matrix_dim=3)
    assert [len(grp["params"]) for grp in opt.param_groups] == [len(make_optimizer(models[0], cfg, torch.device("cpu")).param_groups[k]["params"]) for k in (0, 1)]
    refs = [make_optimizer(m, cfg, torch.device("cpu")) for m in models]
    g = torch.Generator().manual_seed(4)
    for _ in range(3):
        idx = torch.randint(0, 257, (2, 2, 16), generator=g)
        opt.zero_grad()
        stacked(idx, idx)[1].sum().backward()
        opt.step()
        for i, (m, o) in enumerate(zip(models, refs)):
            o.zero_grad()
            m(idx[i], idx[i])[1].backward()
            o.step()
    named = dict(stacked.named_parameters())
    for i, m in enumerate(models):
        for name, p in m.named_parameters():
            torch.testing.assert_close(named[name][i], p, rtol=1e-4, atol=1e-5)


def test_evaluate_stacked_matches_evaluate(data):
    models = _models(2, GPTConfig(n_layer=1, n_embd=32, head_size=16, block_size=32))
    sets = {"val/alpha": eval_windows(data.domains["alpha"].val, 32, 512, "alpha")}
    cpu = torch.device("cpu")
    cfg = tiny_cfg()
    got = evaluate(ModelStack(StackedGPT.from_models(models), cfg, cpu, torch.float32), sets)
    for i, m in enumerate(models):
        (one,) = evaluate(ModelStack(m, cfg, cpu, torch.float32), sets)["val/alpha"]
        assert got["val/alpha"][i] == pytest.approx(one, rel=1e-5)


# ---------------------------------------------------------------- stacked training

def test_train_proxies_stacked_matches_train_proxy(data):
    cfg = tiny_cfg()
    mixtures = [Mixture({"alpha": 0.6, "beta": 0.4}), Mixture({"gamma": 1.0}), Mixture({"alpha": 0.2, "beta": 0.3, "gamma": 0.5})]
    seeds = [0, 1, 7]
    calls = []
    got = train_proxies_stacked(cfg, mixtures, data, seeds, threads=1, progress=lambda s, n: calls.append((s, n)))
    assert calls[-1] == (24, 24) and len(calls) == 24
    for res, mix, seed in zip(got, mixtures, seeds):
        ref = train_proxy(cfg, mix, data, seed, threads=1)
        assert res.status == ref.status == "ok"
        assert res.tokens_seen == ref.tokens_seen and res.steps == ref.steps
        assert res.tokens_per_domain == ref.tokens_per_domain  # the very same batches
        assert res.epochs_per_domain == ref.epochs_per_domain
        assert res.n_params == ref.n_params and res.dtype == ref.dtype == "float32"
        assert res.curves.keys() == ref.curves.keys()
        for k, curve in ref.curves.items():
            assert curve.keys() == res.curves[k].keys()
            for t, v in curve.items():
                assert res.curves[k][t] == pytest.approx(v, rel=1e-5), (k, t)
        assert res.metrics == pytest.approx(ref.metrics, rel=1e-5)
    # different mixtures really differ: by more than the 1e-5 the stack matches the single runs to (the domains are
    # cut from mixopt's own source, so how much more moves with every change to it: 0.08% on one commit)
    assert got[0].metrics != pytest.approx(got[1].metrics, rel=1e-4)


def test_train_proxies_stacked_phases_match(data):
    cfg = tiny_cfg(tokens=8 * 32 * 12, checkpoints=[1.0])
    first, later = Mixture({"alpha": 1.0}), Mixture({"beta": 0.5, "gamma": 0.5})
    phases = [[(0.5, later)], []]
    got = train_proxies_stacked(cfg, [[(0.0, first), *phases[0]], first], data, [3, 3], threads=1)
    ref = train_proxy(cfg, [(0.0, first), *phases[0]], data, 3, threads=1)
    assert got[0].tokens_per_domain == ref.tokens_per_domain
    assert got[1].tokens_per_domain["beta"] == 0
    assert got[0].metrics == pytest.approx(ref.metrics, rel=1e-5)


def test_diverging_runs_fail_with_a_reason(data):
    cfg = tiny_cfg(lr=1e4, grad_clip=0.0, warmup_fraction=0.0, tokens=8 * 32 * 12)
    ok_cfg = cfg.model_copy(update={"lr": 3e-3})
    got = train_proxies_stacked(cfg, [Mixture({"alpha": 1.0}), Mixture({"beta": 1.0})], data, [0, 1], threads=1)
    assert all(r.status == "failed" and "diverged" in r.reason for r in got)
    assert all(r.metrics == {} and 0 < r.steps <= 12 for r in got)
    fine = train_proxies_stacked(ok_cfg, [Mixture({"alpha": 1.0})], data, [0], threads=1)[0]
    assert fine.status == "ok" and fine.steps == 12


def test_failed_model_is_frozen_out_while_others_continue(data, monkeypatch):
    """Poison model 0's weights after the first step: it fails, model 1 trains on and matches train_proxy."""
    cfg = tiny_cfg(tokens=8 * 32 * 8, checkpoints=[1.0])
    real = step_mod.make_optimizer

    def poisoned(model, cfg, device, *, matrix_dim=2):
        opt = real(model, cfg, device, matrix_dim=matrix_dim)
        step = opt.step

        def step_and_poison():
            step()
            if matrix_dim == 3:  # the stack only; the single reference run below stays clean
                with torch.no_grad():
                    model.lm_head.weight[0].fill_(float("nan"))
        opt.step = step_and_poison
        return opt

    monkeypatch.setattr(step_mod, "make_optimizer", poisoned)
    mixes = [Mixture({"alpha": 1.0}), Mixture({"beta": 1.0})]
    bad, good = train_proxies_stacked(cfg, mixes, data, [0, 1], threads=1)
    assert bad.status == "failed" and bad.steps == 2 and bad.tokens_seen == 2 * 8 * 32
    assert sum(bad.tokens_per_domain.values()) == bad.tokens_seen
    ref = train_proxy(cfg, mixes[1], data, 1, threads=1)
    assert good.status == "ok" and good.steps == 8
    assert good.metrics == pytest.approx(ref.metrics, rel=1e-5)


def test_train_proxies_stacked_checks_its_arguments(data):
    with pytest.raises(ValueError, match="one seed per schedule"):
        train_proxies_stacked(tiny_cfg(), [Mixture({"alpha": 1.0})], data, [0, 1])
    with pytest.raises(MixtureError, match="schedule 1"):
        train_proxies_stacked(tiny_cfg(), [Mixture({"alpha": 1.0}), [(0.5, Mixture({"alpha": 1.0}))]], data, [0, 1])


# ---------------------------------------------------------------- device, dtype, stack size

def test_dtype_selection(monkeypatch):
    import mixopt.proxy.device as dev

    auto = tiny_cfg(dtype="auto")
    assert pick_dtype(auto, "cuda") is torch.bfloat16  # no GPU needed: the choice is by device type
    assert pick_dtype(auto, torch.device("cuda", 0)) is torch.bfloat16
    assert pick_dtype(tiny_cfg(dtype="float32"), "cuda") is torch.float32
    assert pick_dtype(tiny_cfg(dtype="bfloat16"), "cpu") is torch.bfloat16
    for faster in (True, False):  # on CPU the probe decides
        monkeypatch.setattr(dev, "cpu_prefers_bf16", lambda shape, b, t, f=faster: f)
        assert pick_dtype(auto, "cpu") is (torch.bfloat16 if faster else torch.float32)


def test_cpu_bf16_stacked_forward_close_to_fp32():
    stacked = StackedGPT.from_models(_models(2))
    idx = torch.randint(0, 257, (2, 2, 16), generator=torch.Generator().manual_seed(5))
    _, ref = stacked(idx, idx)
    with autocast(torch.device("cpu"), torch.bfloat16):
        _, low = stacked(idx, idx)
    torch.testing.assert_close(low, ref, rtol=2e-2, atol=2e-2)


def test_choose_stack_size_memory_bound_and_cpu():
    cfg = ProxyConfig()
    assert choose_stack_size(cfg, "cpu") == 1
    assert choose_stack_size(cfg, torch.device("cpu"), free_memory_bytes=10**12) == 1
    big = stack_memory_limit(cfg, "cuda", 80 * 2**30)
    assert big == 64  # the default proxy is small: the cap binds, not memory
    assert stack_memory_limit(cfg, "cuda", 80 * 2**30, max_stack=8) == 8
    assert stack_memory_limit(cfg, "cuda", 2**20) == 1  # never below one
    assert stack_memory_limit(cfg, "cuda", 2**30) < big  # memory binds
    wide = ProxyConfig(n_layer=4, n_embd=256, head_size=64, block_size=256, batch_size=32)
    assert 1 <= stack_memory_limit(wide, "cuda", 2**33) < stack_memory_limit(cfg, "cuda", 2**33)
    assert stack_size.candidate_sizes(64) == [1, 2, 4, 8, 16, 32, 64] and stack_size.candidate_sizes(12)[-1] == 12
    graphed_wsd = wide.model_copy(update={"cuda_graphs": True, "schedule": "wsd"})
    plain = stack_memory_limit(wide, "cuda", 2**34)
    assert stack_memory_limit(graphed_wsd, "cuda", 2**34) < plain  # a branch's graph holds its own activations
    assert stack_memory_limit(wide.model_copy(update={"cuda_graphs": True}), "cuda", 2**34) == plain


def test_stack_probe_picks_the_measured_best_and_stops_past_it():
    """The choice follows measured throughput, not a FLOP rule (fake timings; nothing is trained)."""
    cfg = tiny_cfg()
    curve = {1: 100.0, 2: 190.0, 4: 350.0, 8: 600.0, 16: 610.0, 32: 400.0, 64: 1e9}
    tried = []

    def timer(c, device, dtype, m, vocab_size):
        tried.append(m)
        return curve[m]

    got = probe_stack_size(cfg, "cpu", torch.float32, limit=64, timer=timer, cache=False)
    assert got == 8  # 600 is within 3% of the best (610): the smaller stack wins
    assert tried == [1, 2, 4, 8, 16, 32]  # 32 fell below 80% of the best: the scan stopped before 64
    assert stack_size.pick_best({1: 1.0, 4: 2.0, 2: 1.99}) == 2

    def oom_at_16(c, device, dtype, m, vocab_size):
        if m >= 16:
            raise torch.cuda.OutOfMemoryError("fake")
        return float(m)

    assert probe_stack_size(cfg, "cpu", torch.float32, limit=64, timer=oom_at_16, cache=False) == 8


def test_stack_probe_times_real_steps_and_is_cached(tmp_path, monkeypatch):
    """A real (tiny, CPU) probe: its answer is stored once per key and reused without timing again."""
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path))
    monkeypatch.setattr(stack_size, "_KNOWN", {})
    cfg = tiny_cfg()
    calls = []

    def timed(*args):
        calls.append(args[3])
        return stack_size.time_stack(*args, steps=2, warmup=1)

    state = torch.get_rng_state()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        got = probe_stack_size(cfg, "cpu", torch.float32, candidates=[1, 2], timer=timed)
    finally:
        torch.set_num_threads(before)
    assert got in (1, 2) and calls == [1, 2]
    assert torch.equal(torch.get_rng_state(), state)  # the probe leaves the global RNG alone
    stored = json.loads((tmp_path / "stack_probe.json").read_text())
    (entry,) = stored.values()
    assert entry["stack"] == got and set(entry["tokens_per_s"]) == {"1", "2"}
    assert all(v > 0 for v in entry["tokens_per_s"].values())
    monkeypatch.setattr(stack_size, "_KNOWN", {})  # a new process: the disk cache answers
    fail = lambda *a: pytest.fail("probed again")  # noqa: E731
    torch.set_num_threads(1)
    try:
        assert probe_stack_size(cfg, "cpu", torch.float32, candidates=[1, 2], timer=fail) == got
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- MFU

def test_peak_flops_table(monkeypatch):
    assert mfu_mod.peak_flops("cpu") is None
    assert mfu_mod.peak_flops(torch.device("cpu")) is None
    cases = {"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H100 PCIe": 756e12, "NVIDIA H200": 989e12,
             "NVIDIA A100-SXM4-80GB": 312e12, "NVIDIA L4": 121e12, "Tesla T4": None}
    for name, want in cases.items():
        monkeypatch.setattr(mfu_mod, "_device_name", lambda device, n=name: n)
        got = mfu_mod.peak_flops("cuda")
        assert got == (None if want is None else pytest.approx(want, rel=0.01)), name


def test_mfu_math(monkeypatch):
    assert mfu_mod.mfu(1e6, 1e5, "cpu") is None
    monkeypatch.setattr(mfu_mod, "_device_name", lambda device: "NVIDIA H100 80GB HBM3")
    peak = mfu_mod.peak_flops("cuda")
    assert mfu_mod.mfu(1e6, 1e5, "cuda") == pytest.approx(1e11 / peak)
    assert mfu_mod.mfu(GPT(GPTConfig()).flops_per_token(), 0.0, "cuda") == 0.0
    with pytest.raises(ValueError):
        mfu_mod.mfu(-1.0, 1.0, "cuda")


# ---------------------------------------------------------------- real GPU (skipped without one)

@cuda_only
def test_stacked_forward_on_cuda_matches_cpu():
    models = _models(2)
    stacked = StackedGPT.from_models(models)
    idx = torch.randint(0, 257, (2, 4, 16), generator=torch.Generator().manual_seed(6))
    _, ref = stacked(idx, idx)
    _, got = stacked.to("cuda")(idx.cuda(), idx.cuda())
    torch.testing.assert_close(got.cpu(), ref, rtol=1e-3, atol=1e-3)


@cuda_only
def test_train_proxies_stacked_on_cuda(data):
    """On CUDA the stack matches single runs far closer than two mixtures differ, and its MFU is real."""
    cfg = tiny_cfg(device="cuda", dtype="auto")
    mixes = [Mixture({"alpha": 1.0}), Mixture({"beta": 1.0})]
    res = train_proxies_stacked(cfg, mixes, data, [0, 1])
    assert all(r.status == "ok" and r.device == "cuda" and r.dtype == "bfloat16" for r in res)
    refs = [train_proxy(cfg, m, data, s) for m, s in zip(mixes, [0, 1])]
    spread = abs(refs[0].metrics["val/alpha"] - refs[1].metrics["val/alpha"])  # what a mixture changes (~0.036 on CPU)
    assert spread > 0.01
    for r, ref in zip(res, refs):  # stack vs single in bf16: ~1e-4 apart on CPU; a tenth of the spread at most
        assert abs(r.metrics["val/alpha"] - ref.metrics["val/alpha"]) < 0.1 * spread
    fp32 = tiny_cfg(device="cuda", dtype="float32")  # without bf16 rounding the two paths agree to float error
    one = train_proxies_stacked(fp32, mixes, data, [0, 1])[0]
    ref = train_proxy(fp32, mixes[0], data, 0)
    assert one.metrics == pytest.approx(ref.metrics, rel=1e-3)
    peak = mfu_mod.peak_flops("cuda")
    if peak is None:
        pytest.skip(f"no dense bf16 peak known for {torch.cuda.get_device_name()}: MFU cannot be checked")
    tps = sum(r.tokens_seen for r in res) / res[0].train_seconds
    got = mfu_mod.mfu(res[0].flops_per_token, tps, "cuda")
    assert got == pytest.approx(res[0].flops_per_token * tps / peak) and 0 < got < 1


@cuda_only
def test_stack_probe_on_cuda_is_cached_and_within_the_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path))
    monkeypatch.setattr(stack_size, "_KNOWN", {})
    cfg = ProxyConfig(device="cuda")
    m = choose_stack_size(cfg, "cuda", max_stack=16)
    assert 1 <= m <= 16 and (tmp_path / "stack_probe.json").is_file()


def test_executor_stacked_path_writes_every_run(tmp_path, monkeypatch):
    """The GPU executor path (groups of stacked proxies), forced on CPU: same planned set, valid records."""
    import json

    from mixopt.cli.main import run
    from mixopt.runs import executors
    from tests.test_cli_sweep import records, write_cfg

    monkeypatch.setattr(executors, "_stack_size", lambda cfg, data: 3)
    cfg = write_cfg(tmp_path, runs=4)
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "s")]) == 0
    recs = records(tmp_path / "s")
    assert len(recs) == 6 and all(r["status"] == "ok" for r in recs.values())
    planned = json.loads((tmp_path / "s" / "store.json").read_text())["planned"]
    assert sorted(planned) == sorted(recs)


def test_gpu_throughput_sweep_figures(monkeypatch, capsys):
    """Proxies per hour and the RegMix-scale sweep estimate: the tokens each shape's sweep trains, and the arithmetic."""
    module = load_benchmark("gpu_throughput", monkeypatch)
    assert module.sweep_tokens("default", 123_264) == load_config(resolve_config("demo")).proxy.tokens
    assert module.sweep_tokens("wide", 3_279_360) == 20 * 3_279_360
    assert module.sweep_tokens("regmix", 8_314_128) == 1_000_000_000
    cpu = torch.device("cpu")
    assert module.regmix_sweep_hours({"regmix_auto_tps": 2e6}, cpu) == pytest.approx(512 * 1e9 / 2e6 / 3600)
    assert "RegMix-scale sweep (512 proxies" in capsys.readouterr().out
    assert module.regmix_sweep_hours({"default_auto_tps": 2e6}, cpu) is None
    with torch.device("meta"):  # the regmix shape: ~1M non-embedding parameters, a 50k vocabulary, the chunked loss
        shape = dict(module.SHAPES["regmix"])
        model = GPT(GPTConfig(vocab_size=shape["vocab"], n_layer=shape["n_layer"], n_embd=shape["n_embd"],
                              head_size=shape["head_size"], block_size=shape["block_size"]))
    assert 0.9e6 < model.num_params(non_embedding=True) < 1.1e6 and model.chunked_ce
    with pytest.raises(SystemExit):
        module.main(["--smoke", "--shapes", "default,tiny"])
    tiny = tiny_cfg(batch_size=2, block_size=16)
    ce = module.ce_comparison("x", tiny, 4096, cpu, 2)  # the chunked-vs-plain step timing, on CPU without memory
    assert ce["x_ce_stack"] == 2 and ce["x_ce_chunked_tps"] > 0 and ce["x_ce_plain_tps"] > 0
    assert ce["x_ce_chunked_peak_gib"] is None and "x: plain cross-entropy, stack 2:" in capsys.readouterr().out


@pytest.mark.slow
def test_gpu_throughput_benchmark_output_format(monkeypatch, capsys):
    """The benchmark's per-shape figures and its summary line, at smoke size on whatever device there is."""
    module = load_benchmark("gpu_throughput", monkeypatch)
    fields = module.main(["--smoke"])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("summary: ") and "default: one proxy" in "\n".join(out)
    for key in ("one_tps", "auto", "auto_tps", "best", "best_tps", "auto_vs_best", "one_mfu", "best_mfu",
                "sweep_tokens", "proxies_per_hour"):
        assert f"default_{key}" in fields, key
    assert fields["default_proxies_per_hour"] == pytest.approx(
        3600 * fields["default_auto_tps"] / fields["default_sweep_tokens"])
    assert "regmix_sweep_hours" in fields and " regmix_sweep_hours=" in out[-1]
    assert fields["default_best_tps"] >= fields["default_auto_tps"] > 0 and fields["default_one_tps"] > 0
    assert fields["cuda"] == torch.cuda.is_available() and fields["mode"] == "smoke"


def test_gpu_step_variants_benchmark_runs_every_arm(monkeypatch, capsys):
    """benchmarks/gpu_step_variants.py at smoke size (CPU, fp32): every arm timed, its switches restored after."""
    from mixopt.proxy import chunked_ce, stacked as stacked_mod, step as step_mod
    module = load_benchmark("gpu_step_variants", monkeypatch)
    fields = module.main(["--smoke", "--repeats", "1", "--steps", "2"])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("summary: ") and fields["mode"] == "smoke" and fields["cuda"] is False
    for m in (1, 2):
        assert fields[f"smoke_m{m}_base_vs_base"] == 1 and fields[f"smoke_m{m}_fold_tps"] > 0
    assert stacked_mod.FOLD_NORMS is True and chunked_ce.LOW_PRECISION_SOFTMAX is True
    assert step_mod.GRAPHS_WITH_COMPILE is False and stacked_mod.LOW_PRECISION_RESIDUAL is False
    arms = module.arms(50_304, cuda=True, compile=True)
    assert list(arms) == ["base", "fold", "lowsm", "graphs", "resbf16", "compile", "compgraph", "compres"]
    assert not arms["base"]["fold"] and arms["resbf16"]["res"] and arms["compres"]["res"] and arms["compres"]["compile"]
    assert arms["compgraph"]["graphs"] and arms["compgraph"]["compile"] and not arms["compile"]["graphs"]
    shape, vocab, _ = module.SMOKE  # the residual arm's switch is set for the arm and restored after (CPU: eager)
    assert module.time_arm(shape, vocab, 2, {**arms["resbf16"], "graphs": False}, torch.device("cpu"), 2) > 0
    assert stacked_mod.LOW_PRECISION_RESIDUAL is False
    assert list(module.arms(257, cuda=False, compile=True)) == ["base", "fold"]


def test_gpu_session_script_parses_and_carries_what_the_image_lacks():
    """benchmarks/gpu_session.sh is bash that parses, and carries every core dependency the GPU image does not have."""
    import re
    import shutil
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_session.sh"
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    wheels = set(re.search(r"^WHEELS=\(([^)]*)\)", script.read_text(), re.M).group(1).split())
    assert {"lightgbm", "pot", "pydantic", "pydantic-core", "datasets", "dill", "multiprocess", "typer"} <= wheels
