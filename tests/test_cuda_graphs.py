"""CUDA graphs for the training step (``proxy.cuda_graphs``): eager on CPU, graphed on CUDA with the same numbers.

On CPU the flag changes nothing, bit for bit. On CUDA a graphed stack must
train as the eager one does (forward, backward, per-model clipping, fused
AdamW under a changing learning rate), its WSD decay branches must be real
copies, a diverged model must stay masked, and a failed capture must fall back
to eager steps without touching the weights.
"""

from __future__ import annotations

import logging
import math

import pytest
import torch

from mixopt.config import ProxyConfig
from mixopt.data.types import DomainSet
from mixopt.mixtures import Mixture
from mixopt.proxy.model import GPT, GPTConfig
from mixopt.proxy.step import GRAPH_EAGER_STEPS, ModelStack, evaluate
from mixopt.proxy.train import train_proxies_stacked, train_proxy
from tests.bench_loader import load_benchmark
from tests.test_gpu_path import cuda_only, tiny_cfg
from tests.test_proxy import text_data  # noqa: F401  (shared fixture)

SHAPE = GPTConfig(n_layer=2, n_embd=32, head_size=16, block_size=32)
B, T = 4, 32
WSD = dict(schedule="wsd", decay_fraction=0.25, warmup_fraction=0.1, min_lr_ratio=0.1)
MIXES = [Mixture({"alpha": 1.0}), Mixture({"beta": 1.0}), Mixture({"alpha": 0.5, "gamma": 0.5}),
         Mixture({"gamma": 1.0})]


@pytest.fixture(scope="module")
def data(text_data) -> DomainSet:  # noqa: F811
    """The three byte-level domains (and target) of the proxy tests."""
    return text_data


def _stack(m: int, device: str, dtype: torch.dtype, graphs: bool, **kw) -> ModelStack:
    cfg = tiny_cfg(device=device, cuda_graphs=graphs, **kw)
    return ModelStack.from_seeds(SHAPE, list(range(m)), cfg, torch.device(device), dtype)


def _batches(m: int, steps: int, device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fresh (x, y) pair of (M, B, T) ids per step, as the loop passes them."""
    g = torch.Generator().manual_seed(7)
    xy = torch.randint(0, SHAPE.vocab_size, (steps, 2, m, B, T), generator=g)
    return [(s[0].to(device), s[1].to(device)) for s in xy]


def _lr(step: int, steps: int, peak: float = 3e-3) -> float:
    """A learning rate that changes every step (linear warm-up, then cosine)."""
    return peak * min(1.0, (step + 1) / 4) * (0.55 + 0.45 * math.cos(math.pi * step / steps))


def _train(stack: ModelStack, batches, alive: torch.Tensor, start: int = 0, stop: int | None = None) -> list:
    """Steps ``start`` to ``stop`` on ``batches``; the losses (M,) of each, on the CPU."""
    out = []
    for i, (x, y) in enumerate(batches[start:stop], start):
        out.append(stack.step(x, y, _lr(i, len(batches)), alive).detach().float().cpu())
    return out


def _weights(stack: ModelStack) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu().clone() for k, v in stack.model.state_dict().items()}


# ---------------------------------------------------------------- CPU: the flag changes nothing

def test_config_field():
    assert ProxyConfig().cuda_graphs is True  # on by default (it only acts on CUDA): 1.62x on the default shape, H200
    assert ProxyConfig.model_validate({"cuda_graphs": False}).cuda_graphs is False


def test_graphs_only_on_cuda_and_never_with_compile(monkeypatch):
    """Which configs replay graphs (no CUDA needed: nothing is allocated)."""
    from mixopt.proxy.step import uses_graphs
    cuda = torch.device("cuda")
    assert uses_graphs(ProxyConfig(), cuda) and uses_graphs(ProxyConfig(), "cuda")
    assert not uses_graphs(ProxyConfig(), "cpu")
    assert not uses_graphs(ProxyConfig(cuda_graphs=False), cuda)
    assert not uses_graphs(ProxyConfig(compile=True), cuda)  # a compiled step is not captured by hand
    monkeypatch.setattr("mixopt.proxy.step.GRAPHS_WITH_COMPILE", True)  # the benchmark's compgraph arm
    assert uses_graphs(ProxyConfig(compile=True), cuda) and not uses_graphs(ProxyConfig(compile=True), "cpu")
    monkeypatch.undo()
    assert ModelStack(GPT(GPTConfig(n_layer=1, n_embd=16, head_size=16, block_size=8)), ProxyConfig(),
                      torch.device("cpu"), torch.float32).graphs is False


def test_cpu_training_is_bit_identical_with_the_flag(data):
    """train_proxy and train_proxies_stacked (with WSD decay branches) give the very same numbers on CPU."""
    cfg = tiny_cfg(tokens=8 * 32 * 12, checkpoints=[0.5])
    on = cfg.model_copy(update={"cuda_graphs": True})
    one, ref = (train_proxy(c, MIXES[0], data, 3, threads=1) for c in (on, cfg))
    assert one.status == ref.status == "ok" and one.metrics == ref.metrics and one.curves == ref.curves
    wsd = cfg.model_copy(update=WSD)
    got, want = (train_proxies_stacked(c, MIXES[:2], data, [0, 1], threads=1)
                 for c in (wsd.model_copy(update={"cuda_graphs": True}), wsd))
    for a, b in zip(got, want, strict=True):
        assert a.branch_tokens == b.branch_tokens > 0
        assert a.metrics == b.metrics and a.curves == b.curves


def test_cpu_stack_ignores_the_flag_and_branches_are_copies():
    on, off = _stack(2, "cpu", torch.float32, True), _stack(2, "cpu", torch.float32, False)
    assert not on.graphs and not on.graphed
    assert all(g["foreach"] and not g["capturable"] and not g["fused"] for g in on.optimizer.param_groups)
    batches, alive = _batches(2, 6, "cpu"), torch.ones(2, dtype=torch.bool)
    a, b = _train(on, batches, alive, 0, 3), _train(off, batches, alive, 0, 3)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    fork = on.branch()
    before = _weights(on)
    tail = _train(fork, batches, alive, 3)  # the branch trains; the stack it came from does not move
    assert all(torch.equal(before[k], v) for k, v in _weights(on).items())
    states = [t for s in on.optimizer.state.values() for t in s.values()]
    copied = [t for s in fork.optimizer.state.values() for t in s.values()]
    assert len(states) == len(copied) and not {t.data_ptr() for t in states} & {t.data_ptr() for t in copied}
    again = _train(on, batches, alive, 3)  # the same state and the same steps: the same losses
    assert all(torch.equal(u, v) for u, v in zip(again, tail, strict=True))


# ---------------------------------------------------------------- CUDA: graphed steps train as eager ones do

TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.bfloat16: dict(rtol=2e-2, atol=2e-3)}


@cuda_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("m", [1, 4])
def test_graphed_steps_match_eager_steps(m, dtype):
    """30 steps, a new learning rate each step, clipping active: same losses, weights and evaluation."""
    graphed, eager = (_stack(m, "cuda", dtype, g, grad_clip=0.05) for g in (True, False))
    batches, alive = _batches(m, 30, "cuda"), torch.ones(m, dtype=torch.bool, device="cuda")
    got, want = _train(graphed, batches, alive), _train(eager, batches, alive)
    assert graphed.graphed and not eager.graphed
    for i, (u, v) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(u, v, **TOL[dtype], msg=f"losses at step {i}")
    assert not torch.equal(got[-1], got[GRAPH_EAGER_STEPS + 1])  # replays really train
    ref = _weights(eager)
    for k, v in _weights(graphed).items():
        torch.testing.assert_close(v, ref[k], **TOL[dtype], msg=k)
    x = batches[0][0][0]  # (B, T) windows; evaluation is eager and sees the replayed weights
    sets = {"val": (x, x.roll(1, dims=1))}
    torch.testing.assert_close(torch.tensor(evaluate(graphed, sets)["val"]), torch.tensor(evaluate(eager, sets)["val"]),
                               **TOL[dtype])


@cuda_only
def test_branch_of_a_graphed_stack_is_an_independent_copy():
    """A branch taken after the capture trains on its own (graphed too) and leaves the stack it came from alone."""
    graphed, eager = (_stack(4, "cuda", torch.float32, g) for g in (True, False))
    batches, alive = _batches(4, 20, "cuda"), torch.ones(4, dtype=torch.bool, device="cuda")
    for stack in (graphed, eager):
        _train(stack, batches, alive, 0, 8)
    forks = graphed.branch(), eager.branch()
    assert forks[0].graphs and not forks[0].graphed  # the branch warms up and captures its own graph
    before = _weights(graphed)
    branch_losses = [_train(f, batches, alive, 8) for f in forks]
    assert forks[0].graphed
    assert all(torch.equal(before[k], v) for k, v in _weights(graphed).items())
    for u, v in zip(*branch_losses, strict=True):
        torch.testing.assert_close(u, v, **TOL[torch.float32])
    ref = _weights(forks[1])
    for k, v in _weights(forks[0]).items():
        torch.testing.assert_close(v, ref[k], **TOL[torch.float32], msg=k)
    main = [_train(s, batches, alive, 8) for s in (graphed, eager)]  # the stacks go on from their own state
    for u, v in zip(*main, strict=True):
        torch.testing.assert_close(u, v, **TOL[torch.float32])


@cuda_only
def test_diverged_model_is_masked_as_in_eager_steps():
    """Model 1 turns NaN after the capture and is masked out (alive False): the others train on, as eagerly."""
    stacks = [_stack(4, "cuda", torch.bfloat16, g) for g in (True, False)]
    batches = _batches(4, 16, "cuda")
    alives = [torch.ones(4, dtype=torch.bool, device="cuda") for _ in stacks]
    losses = []
    for stack, alive in zip(stacks, alives, strict=True):
        out = _train(stack, batches, alive, 0, 8)
        with torch.no_grad():
            stack.model.lm_head.weight[1].fill_(float("nan"))
        alive[1] = False  # as the loop does once it sees the model's loss blow up
        losses.append(out + _train(stack, batches, alive, 8))
    assert stacks[0].graphed
    for u, v in zip(*losses, strict=True):
        assert math.isnan(u[1]) == math.isnan(v[1])
        torch.testing.assert_close(u[[0, 2, 3]], v[[0, 2, 3]], **TOL[torch.bfloat16])
    assert all(torch.isfinite(u[[0, 2, 3]]).all() for u in losses[0])
    ref = _weights(stacks[1])
    for k, v in _weights(stacks[0]).items():
        torch.testing.assert_close(v[[0, 2, 3]], ref[k][[0, 2, 3]], **TOL[torch.bfloat16], msg=k)


@cuda_only
@pytest.mark.parametrize("how", ["python error", "sync in capture"])
def test_failed_capture_falls_back_to_eager_steps(how, monkeypatch, caplog):
    """A capture that fails warns once, and training goes on eagerly from untouched weights and AdamW state."""
    real = ModelStack._train_step

    def failing(self, x, y, alive):
        losses = real(self, x, y, alive)
        if torch.cuda.is_current_stream_capturing():  # after the AdamW step was recorded
            if how == "python error":
                raise RuntimeError("injected capture failure")
            float(losses.sum())  # a host sync: not allowed in a capture
        return losses

    monkeypatch.setattr(ModelStack, "_train_step", failing)
    graphed, eager = (_stack(2, "cuda", torch.float32, g) for g in (True, False))
    batches, alive = _batches(2, 10, "cuda"), torch.ones(2, dtype=torch.bool, device="cuda")
    with caplog.at_level(logging.WARNING, logger="mixopt.proxy"):
        got = _train(graphed, batches, alive)
    want = _train(eager, batches, alive)
    warned = [r for r in caplog.records if "CUDA graph capture" in r.getMessage()]
    assert len(warned) == 1 and not graphed.graphs and not graphed.graphed
    for u, v in zip(got, want, strict=True):
        torch.testing.assert_close(u, v, **TOL[torch.float32])
    ref = _weights(eager)
    for k, v in _weights(graphed).items():
        torch.testing.assert_close(v, ref[k], **TOL[torch.float32], msg=k)


@cuda_only
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_wsd_stacked_run_with_graphs_matches_eager(data, dtype, monkeypatch):
    """The loop end to end: 4 runs, WSD with a decay branch, checkpoints; the base stack and the branch both capture."""
    captures = []
    real = ModelStack._capture

    def counted(self, *args):
        captures.append(self.n_models)
        return real(self, *args)

    monkeypatch.setattr(ModelStack, "_capture", counted)
    cfg = tiny_cfg(device="cuda", dtype=dtype, tokens=8 * 32 * 48, checkpoints=[0.5], **WSD)
    got = train_proxies_stacked(cfg.model_copy(update={"cuda_graphs": True}), MIXES, data, [0, 1, 2, 3])
    assert len(captures) == 2  # the run and its decay branch
    want = train_proxies_stacked(cfg, MIXES, data, [0, 1, 2, 3])
    rel = 1e-4 if dtype == "float32" else 1e-2
    for a, b in zip(got, want, strict=True):
        assert a.status == b.status == "ok" and a.branch_tokens == b.branch_tokens > 0
        assert a.curves.keys() == b.curves.keys()
        for k, curve in b.curves.items():
            assert a.curves[k] == pytest.approx(curve, rel=rel), k


# ---------------------------------------------------------------- the benchmark's graphs arm

def test_benchmark_graphs_arm_needs_cuda(monkeypatch, capsys, data):
    module = load_benchmark("gpu_throughput", monkeypatch)
    out = module.graphs_comparison("x", tiny_cfg(), data, torch.device("cpu"), 2, repeats=1)
    assert out == {"x_graphs_tps": None, "x_graphs_speedup": None}
    assert "CUDA graphs need a CUDA device" in capsys.readouterr().out


@pytest.mark.slow
def test_benchmark_reports_the_graphs_arm(monkeypatch, capsys):
    """``--cuda-graphs --smoke``: the graphs keys sit in the summary line (na without CUDA)."""
    module = load_benchmark("gpu_throughput", monkeypatch)
    fields = module.main(["--smoke", "--cuda-graphs"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("summary: ") and " default_graphs_tps=" in last and " default_graphs_speedup=" in last
    if torch.cuda.is_available():
        assert fields["default_graphs_tps"] > 0 and fields["default_graphs_speedup"] > 0
    else:
        assert fields["default_graphs_tps"] is None and "default_graphs_speedup=na" in last
