"""The proxy model, its batches, device/dtype choice and the training loop."""

from __future__ import annotations

import dataclasses
import itertools
import re
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mixopt.config import ProxyConfig
from mixopt.data.types import DomainSet, TokenizedDomain
from mixopt.errors import DataError, MixtureError
from mixopt.mixtures import Mixture
from mixopt.proxy.batches import MixtureBatches
from mixopt.proxy.device import pick_device, pick_dtype, probe_cpu_bf16
from mixopt.proxy.loop import eval_windows
from mixopt.proxy.model import GPT, GPTConfig
from mixopt.proxy.schedule import decay_branches, decay_steps, lr_at, schedule_info, warmup_steps
from mixopt.proxy.train import train_proxies_stacked, train_proxy

PKG = Path(__file__).resolve().parents[1] / "mixopt"


def _domain(name: str, tokens: np.ndarray, val_share: float = 0.1) -> TokenizedDomain:
    k = int(len(tokens) * (1 - val_share))
    return TokenizedDomain(name, tokens[:k], tokens[k:], n_docs_train=1, n_docs_val=1, fingerprint=name)


@pytest.fixture(scope="module")
def text_data() -> DomainSet:
    """Three byte-level domains cut from mixopt's own source, plus one target."""
    raw = b"\n".join(p.read_bytes() for p in sorted(PKG.glob("**/*.py")))
    a = np.frombuffer(raw, dtype=np.uint8).astype(np.uint16)
    n = len(a) // 4
    domains = {name: _domain(name, a[i * n:(i + 1) * n]) for i, name in enumerate(["alpha", "beta", "gamma"])}
    return DomainSet(domains, vocab_size=257, eos_id=256, tokenizer="bytes", targets={"tgt": _domain("tgt", a[3 * n:])})


def tiny_cfg(**kw) -> ProxyConfig:
    base = dict(n_layer=1, n_embd=32, head_size=16, block_size=32, batch_size=8, tokens=8 * 32 * 40,
                lr=3e-3, checkpoints=[0.25, 0.5], eval_tokens=512, device="cpu", dtype="float32")
    return ProxyConfig(**{**base, **kw})


MIX = Mixture({"alpha": 0.6, "beta": 0.4})  # gamma gets weight 0


def train(cfg, mixture, data, seed, **kw):
    """One thread: tiny models gain nothing from more, and lose a lot on a busy machine."""
    return train_proxy(cfg, mixture, data, seed, threads=kw.pop("threads", 1), **kw)


# ---------------------------------------------------------------- model

def test_default_model_size_and_flops():
    model = GPT(GPTConfig())
    n = model.num_params()
    assert 100_000 <= n <= 150_000
    assert model.transformer.wte.weight is model.lm_head.weight  # tied, counted once
    assert model.config.n_head == 1
    assert model.flops_per_token() > 6 * model.num_params(non_embedding=True)
    c = model.config  # non-embedding: without the (tied) token table and the position table, Kaplan's N
    assert model.num_params(non_embedding=True) == n - (c.vocab_size + c.block_size) * c.n_embd


def test_forward_shapes():
    cfg = GPTConfig(n_embd=32, head_size=16, block_size=16)
    model = GPT(cfg)
    idx = torch.randint(0, 257, (2, 16))
    logits, loss = model(idx)
    assert logits.shape == (2, 16, 257) and loss is None
    logits, loss = model(idx[:, :10], idx[:, :10])
    assert logits.shape == (2, 10, 257) and loss.shape == () and math.isfinite(loss.item())
    assert model.forward_hidden(idx).shape == (2, 16, 32)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


# ---------------------------------------------------------------- batches

class _Unreadable(np.ndarray):
    def __getitem__(self, item):
        raise AssertionError("a zero-weight domain was read")


def test_batches_track_token_shares_and_skip_zero_weights():
    weights = {"a": 0.5, "b": 0.3, "c": 0.199, "d": 0.001, "e": 0.0}
    train = {name: np.full(1000, i, dtype=np.uint16) for i, name in enumerate(weights)}
    train["e"] = train["e"].view(_Unreadable)
    sampler = MixtureBatches(train, weights, batch_size=16, block_size=8, seed=0)
    names = list(weights)
    seen = np.zeros(len(names))
    for step in range(1, 201):
        x, y = sampler.next()
        assert x.shape == y.shape == (16, 8) and x.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        rows = x[:, 0].numpy()
        assert all((x[r] == rows[r]).all() for r in range(16))  # one domain per sequence
        seen += np.bincount(rows, minlength=len(names))
        n = 16 * step
        for i, name in enumerate(names):
            assert abs(seen[i] - weights[name] * n) <= 1.0, (name, seen[i], weights[name] * n)
    assert seen[names.index("e")] == 0 and seen[names.index("d")] >= 3
    assert "e" not in sampler.tokens_per_domain
    assert sum(sampler.tokens_per_domain.values()) == 200 * 16 * 8
    assert sampler.tokens_per_domain["a"] == seen[0] * 8


def test_batches_are_seeded_and_reject_short_domains():
    train = {"a": np.arange(500, dtype=np.int32) % 257, "b": np.arange(500, dtype=np.int32)[::-1] % 257}
    one = [t.clone() for t in MixtureBatches(train, {"a": .5, "b": .5}, batch_size=4, block_size=8, seed=3).next()]
    two = MixtureBatches(train, {"a": .5, "b": .5}, batch_size=4, block_size=8, seed=3).next()
    assert all(torch.equal(p, q) for p, q in zip(one, two))
    with pytest.raises(DataError, match="block_size"):
        MixtureBatches({"a": np.zeros(8)}, {"a": 1.0}, batch_size=2, block_size=8, seed=0)


def test_eval_windows_are_fixed_and_handle_short_splits():
    val = np.arange(1000) % 257
    x, y = eval_windows(val, 32, 256, "d")
    assert x.shape == (8, 32) and torch.equal(x[1], torch.arange(32, 64)) and torch.equal(y[0], torch.arange(1, 33))
    x, y = eval_windows(val[:10], 32, 256, "d")
    assert x.shape == (1, 9)
    with pytest.raises(DataError, match="validation tokens"):
        eval_windows(val[:1], 32, 256, "Domain 'd'")


def test_lr_schedule():
    cfg = ProxyConfig(lr=1e-2, warmup_fraction=0.1, min_lr_ratio=0.1, schedule="cosine")
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] < lrs[5] < lrs[9] <= 1e-2 and lrs[10] == pytest.approx(1e-2)
    assert lrs[-1] == pytest.approx(1e-3, rel=0.05) and min(lrs[10:]) >= 1e-3
    assert lr_at(80, 100, cfg.model_copy(update={"schedule": "constant"})) == 1e-2


def test_wsd_schedule_and_its_branches():
    cfg = ProxyConfig(lr=1e-2, warmup_fraction=0.1, min_lr_ratio=0.1, schedule="wsd", decay_fraction=0.2,
                      checkpoints=[0.25, 0.5, 0.9])
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] < lrs[9] < 1e-2 and all(x == 1e-2 for x in lrs[10:80])  # warm-up, then stable
    assert lrs[80] < 1e-2 and lrs[-1] == pytest.approx(1e-3) and all(a > b for a, b in zip(lrs[79:], lrs[80:]))
    # a branch to 50 steps keeps the run's warm-up and decays over its own last 10 steps
    assert [lr_at(s, 50, cfg, warmup=10) for s in (39, 40, 49)] == pytest.approx([1e-2, 1e-2 - 9e-3 / 10, 1e-3])
    # forks: each budget minus its own decay (25 - 5, 50 - 10, 90 - 18); the last budget is the run's own decay
    assert decay_branches(cfg, 100) == [(20, 25), (40, 50), (72, 90)]
    assert decay_branches(cfg.model_copy(update={"schedule": "cosine"}), 100) == []
    info = schedule_info(cfg, 100)
    assert info["name"] == "wsd" and info["decay_fraction"] == 0.2 and info["warmup_steps"] == 10
    assert info["branches"] == [[20, 25], [40, 50], [72, 90]]


def test_wsd_refuses_a_warm_up_that_reaches_into_a_decay(tmp_path, capsys):
    """warmup_fraction + decay_fraction > 1 overlapped the warm-up with the decay (the lr fell 34% in one step); a
    decay branch whose decay starts inside the warm-up did the same. A new sweep refuses both in one line naming the
    fix; reading such a config (a store swept so before stop 29) still works."""
    from mixopt.cli.main import run
    from mixopt.config import config_from_dict
    from tests.test_cli_sweep import write_cfg

    def problem(**proxy):
        return config_from_dict({"proxy": {"schedule": "wsd", **proxy}}).proxy.wsd_overlap() or ""

    assert re.search(r"schedule wsd needs warmup_fraction \+ decay_fraction <= 1.*got 0\.5 \+ 0\.8 = 1\.3\. Lower one of them",
                     problem(warmup_fraction=0.5, decay_fraction=0.8))
    assert "warmup_fraction + decay_fraction <= 1" in problem(decay_fraction=1.0)  # le=1 allowed it with any warm-up
    # 100 steps: a 30-step warm-up, and the branch to checkpoint 0.25 (25 steps) decays from step 20
    assert re.search("the decay branch to checkpoint 0.25 decays from step 20, inside the 30-step warm-up .* Lower "
                     "warmup_fraction or decay_fraction, or drop checkpoint 0.25",
                     problem(warmup_fraction=0.3, tokens=100 * 16 * 128, checkpoints=[0.25, 1.0]))
    for ok in ({"warmup_fraction": 0.5, "decay_fraction": 0.5}, {"warmup_fraction": 0.0, "decay_fraction": 1.0},
               {"warmup_fraction": 0.5, "decay_fraction": 0.8, "schedule": "cosine"}):
        cfg = ProxyConfig.model_validate({"schedule": "wsd", "checkpoints": [1.0], **ok})  # a store's (cosine + decay_fraction)
        assert cfg.wsd_overlap() is None
        lrs = [lr_at(s, 100, cfg) for s in range(100)]
        assert max(a - b for a, b in zip(lrs, lrs[1:])) < 0.1 * cfg.lr  # no jump
    # the check counts steps as schedule.py does: it flags exactly the configs whose warm-up reaches into a decay
    for wf, df, checkpoints, steps in itertools.product((0.0, 0.05, 0.1, 0.2, 0.3, 0.45), (0.1, 0.2, 0.5, 0.8),
                                                       ([0.1, 1.0], [0.25, 0.5, 1.0], [0.3, 0.9, 1.0]), (7, 10, 33, 100)):
        raw = dict(schedule="wsd", warmup_fraction=wf, decay_fraction=df, checkpoints=checkpoints, batch_size=1,
                   block_size=8, tokens=8 * steps)
        w = warmup_steps(steps, ProxyConfig.model_construct(**raw))
        cfg = ProxyConfig.model_construct(**{**raw, "checkpoints": sorted(set(checkpoints) | {1.0})})
        budgets = [steps] + [b for _, b in decay_branches(cfg, steps)]
        overlap = any(w > b - decay_steps(b, cfg) and decay_steps(b, cfg) > 0 for b in budgets)
        assert (ProxyConfig(**raw).wsd_overlap() is not None) == overlap, raw
    bad = write_cfg(tmp_path, proxy={"schedule": "wsd", "warmup_fraction": 0.5, "decay_fraction": 0.8})
    assert run(["sweep", str(bad), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "warmup_fraction + decay_fraction <= 1" in err and not (tmp_path / "s").exists()


def test_a_store_swept_with_an_overlapping_wsd_warm_up_still_resumes(tmp_path, monkeypatch, capsys):
    """Stores swept before the check keep working: sweep (resume) warns instead of refusing."""
    from mixopt.cli.main import run
    from mixopt.runs import driver
    from tests.test_cli_sweep import write_cfg

    bad = write_cfg(tmp_path, runs=1, proxy={"schedule": "wsd", "warmup_fraction": 0.5, "decay_fraction": 0.8,
                                             "tokens": 2048, "checkpoints": [1.0]})
    store = tmp_path / "s"
    with monkeypatch.context() as m:  # as mixopt before stop 29 swept it
        m.setattr(driver, "check_wsd", lambda *a: None)
        assert run(["sweep", str(bad), "--store", str(store), "--workers", "1"]) == 0
    capsys.readouterr()
    with pytest.warns(UserWarning, match="this store's runs were trained so"):
        assert run(["sweep", str(bad), "--store", str(store)]) == 0
    assert "0 trained now" in capsys.readouterr().out


# ---------------------------------------------------------------- device / dtype

def test_dtype_selection():
    cfg = tiny_cfg(dtype="auto")
    assert pick_device(cfg.model_copy(update={"device": "cpu"})) == torch.device("cpu")
    assert pick_dtype(cfg, torch.device("cuda")) is torch.bfloat16  # no GPU needed: only the string matters
    assert pick_dtype(cfg, "cuda") is torch.bfloat16
    assert pick_dtype(cfg.model_copy(update={"dtype": "float32"}), "cuda") is torch.float32
    assert pick_dtype(cfg.model_copy(update={"dtype": "bfloat16"}), "cpu") is torch.bfloat16
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = pick_dtype(cfg, "cpu")
        assert first in (torch.float32, torch.bfloat16)
        misses = probe_cpu_bf16.cache_info().misses
        assert pick_dtype(cfg, "cpu") is first  # the decision is remembered, not re-timed
        assert probe_cpu_bf16.cache_info().misses == misses
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.get_rng_state(), state)  # the probe leaves the global RNG alone


# ---------------------------------------------------------------- training

def test_training_reduces_loss_and_records_curves(text_data):
    res = train(tiny_cfg(checkpoints=[0.05, 0.5]), MIX, text_data, seed=0)
    assert res.status == "ok" and res.reason is None
    expected = {"val/alpha", "val/beta", "val/gamma", "target/tgt"}
    assert set(res.metrics) == set(res.curves) == expected
    steps = 40
    marks = [str(s * 8 * 32) for s in (2, 20, 40)]
    for curve in res.curves.values():
        assert list(curve) == marks
    assert res.metrics == {k: c[marks[-1]] for k, c in res.curves.items()}
    first, last = res.curves["val/alpha"][marks[0]], res.metrics["val/alpha"]
    assert last < first - 0.5 and last < math.log(257) - 1.5
    assert res.tokens_seen == steps * 8 * 32 == sum(res.tokens_per_domain.values())
    assert res.tokens_per_domain["gamma"] == 0 and res.epochs_per_domain["gamma"] == 0
    assert res.tokens_per_domain["alpha"] == pytest.approx(0.6 * res.tokens_seen, abs=32)
    assert res.epochs_per_domain["alpha"] == res.tokens_per_domain["alpha"] / text_data.domains["alpha"].unique_tokens
    assert res.n_params > 0 and res.device == "cpu" and res.dtype == "float32" and res.tokens_per_second > 0
    json.dumps(dataclasses.asdict(res), allow_nan=False)


def test_training_is_deterministic(text_data):
    cfg = tiny_cfg(tokens=8 * 32 * 12, checkpoints=[0.5])
    state = torch.get_rng_state()
    one = train(cfg, MIX, text_data, seed=7)
    two = train(cfg, MIX, text_data, seed=7)
    other = train(cfg, MIX, text_data, seed=8)
    assert one.curves == two.curves and one.tokens_per_domain == two.tokens_per_domain
    assert one.metrics != other.metrics
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone


def test_threads_argument_is_restored(text_data):
    before = torch.get_num_threads()
    res = train_proxy(tiny_cfg(tokens=8 * 32 * 2), MIX, text_data, seed=0, threads=1)
    assert res.threads == 1 and torch.get_num_threads() == before


def test_progress_callback(text_data):
    calls = []
    train(tiny_cfg(tokens=8 * 32 * 5), MIX, text_data, seed=0, progress=lambda s, n: calls.append((s, n)))
    assert calls == [(s, 5) for s in range(1, 6)]


def test_huge_learning_rate_fails_with_reason(text_data):
    res = train(tiny_cfg(lr=1e6, warmup_fraction=0.0), MIX, text_data, seed=0)
    assert res.status == "failed"
    assert res.reason.startswith("diverged") and "proxy.lr" in res.reason
    assert res.metrics == {} and res.steps < 40
    json.dumps(dataclasses.asdict(res), allow_nan=False)


def test_unknown_mixture_domain_raises(text_data):
    with pytest.raises(MixtureError, match="unknown domains"):
        train(tiny_cfg(), Mixture({"alpha": 0.5, "nope": 0.5}), text_data, seed=0)


def test_phases_schedule_and_the_mixture_shorthand_agree(text_data):
    cfg = tiny_cfg(tokens=8 * 32 * 8, checkpoints=[1.0])
    one = train(cfg, MIX, text_data, seed=2)
    two = train(cfg, [(0.0, MIX)], text_data, seed=2)
    assert one.curves == two.curves and one.tokens_per_domain == two.tokens_per_domain
    with pytest.raises(MixtureError, match="start at 0"):
        train(cfg, [(0.5, MIX)], text_data, seed=2)


def test_one_run_through_the_stacked_entry_is_bit_identical(text_data):
    """M = 1 is one loop with train_proxy: the same numbers exactly, whichever entry point."""
    cfg = tiny_cfg(tokens=8 * 32 * 10, checkpoints=[0.5])
    ref = train(cfg, MIX, text_data, seed=4)
    (got,) = train_proxies_stacked(cfg, [MIX], text_data, [4], threads=1)
    assert got.curves == ref.curves and got.metrics == ref.metrics and got.steps == ref.steps
    assert got.n_params == ref.n_params and got.n_params_non_embedding == ref.n_params_non_embedding > 0
    assert ref.n_params_non_embedding < ref.n_params and ref.flops_per_token > 6 * ref.n_params_non_embedding
    assert ref.schedule == {"name": "cosine", "lr": 3e-3, "steps": 10, "warmup_steps": 0, "min_lr_ratio": 0.1}


# ---------------------------------------------------------------- WSD decay branches

WSD = dict(schedule="wsd", decay_fraction=0.25, warmup_fraction=0.1, min_lr_ratio=0.1)


def test_wsd_decay_branch_matches_a_run_straight_to_its_budget(text_data):
    """One WSD run to 40 steps branches a decay at 20 steps; a WSD run of 20 steps (same warm-up steps) agrees."""
    long = tiny_cfg(tokens=8 * 32 * 40, checkpoints=[0.5, 1.0], **WSD)
    res = train(long, MIX, text_data, seed=5)
    budget = str(20 * 8 * 32)
    assert res.status == "ok" and list(res.curves["val/alpha"]) == [budget, str(40 * 8 * 32)]
    assert res.schedule["branches"] == [[15, 20]] and res.branch_tokens == 5 * 8 * 32
    assert res.tokens_seen == 40 * 8 * 32 == sum(res.tokens_per_domain.values())  # branches are not the run's tokens
    short = tiny_cfg(tokens=8 * 32 * 20, checkpoints=[1.0], **{**WSD, "warmup_fraction": 0.2})  # 4 warm-up steps
    ref = train(short, MIX, text_data, seed=5)
    for k, v in ref.metrics.items():
        assert res.curves[k][budget] == pytest.approx(v, rel=1e-6, abs=1e-7), k
    # the branch really decayed: the same 20 steps at a constant rate end elsewhere
    flat = train(short.model_copy(update={"schedule": "constant"}), MIX, text_data, seed=5)
    assert abs(flat.metrics["val/alpha"] - res.curves["val/alpha"][budget]) > 1e-3
    # and the run itself is untouched by its branch: its final loss is that of a WSD run with no branch
    alone = train(long.model_copy(update={"checkpoints": [1.0]}), MIX, text_data, seed=5)
    assert alone.metrics == res.metrics


def test_wsd_stacked_branches_match_single_runs(text_data):
    cfg = tiny_cfg(tokens=8 * 32 * 16, checkpoints=[0.5], **WSD)
    mixes = [MIX, Mixture({"gamma": 1.0})]
    got = train_proxies_stacked(cfg, mixes, text_data, [0, 1], threads=1)
    for res, mix, seed in zip(got, mixes, [0, 1]):
        ref = train(cfg, mix, text_data, seed=seed)
        assert res.curves.keys() == ref.curves.keys() and res.branch_tokens == ref.branch_tokens > 0
        for k, curve in ref.curves.items():
            assert res.curves[k] == pytest.approx(curve, rel=1e-5)
