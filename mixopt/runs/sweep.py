"""Plan a sweep (which runs) and the one step that carries a run out: claim → train → put.

The planned set is a pure function of the config, the seed and the data, so a
sweep killed half way and started again plans the same runs, skips the finished
ones and trains only the rest. Each run is claimed with a lock before training,
so two sweeps sharing a store never train the same run twice. Executors
(``executors.py``) only decide where and when :func:`execute_runs` is called.

A sweep plans, at each proxy scale (``sizes``, or ``proxy`` alone):

- the baselines and the first ``sampler.noise_mixtures`` sampled mixtures (the
  *anchors*), each also under seeds ``seed + 1 ... seed + noise_seeds - 1``
  (labels ``natural~seed1``), so seed noise can be measured;
- the first ``runs`` mixtures of one Dirichlet draw (nested across scales: a
  larger scale with fewer runs trains a subset of a smaller one's mixtures);
- ``two_phase_runs`` runs that switch to an upsampled mixture for the last
  share of tokens.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch

from .. import __version__
from ..config import ProxyConfig, SweepConfig
from ..data.types import DomainSet
from ..mixtures import Mixture, Phases, check_budget, max_weights_for_epochs, natural_mixture, uniform_mixture
from ..reuse import ReusedMixture, reused_mixture
from ..samplers import TWO_PHASE_SEED_OFFSET, sample_dirichlet_mixtures, sample_uniform_mixtures, sample_upsampling
from ..proxy import train as proxy_train  # called as proxy_train.train_proxy, so tests can stand in for the trainer
from ..proxy.mfu import mfu
from .record import RunRecord, RunSpec
from .store import RunStore


# ---------------------------------------------------------------- planning

@dataclass(frozen=True)
class Scale:
    """One proxy scale of a sweep: its name ("" when the sweep has one), proxy config and run counts."""

    name: str
    proxy: ProxyConfig
    runs: int
    two_phase_runs: int


def sweep_scales(cfg: SweepConfig, *, n_runs: int | None = None) -> list[Scale]:
    """The scales a sweep trains: ``cfg.sizes`` applied to ``cfg.proxy``, or ``cfg.proxy`` alone.

    ``n_runs`` (the CLI's ``--runs``) replaces ``cfg.runs``, which is also the run
    count of any size that does not give its own.
    """
    runs = cfg.runs if n_runs is None else n_runs
    if not cfg.sizes:
        return [Scale("", cfg.proxy, runs, cfg.sampler.two_phase_runs)]
    base = cfg.proxy.model_dump()
    return [Scale(size.name or f"s{i}", ProxyConfig.model_validate({**base, **size.overrides()}),
                  runs if size.runs is None else size.runs,
                  cfg.sampler.two_phase_runs if size.two_phase_runs is None else size.two_phase_runs)
            for i, size in enumerate(cfg.sizes)]


# The proxy fields that change what a run learns and measures; the budget (``tokens``), the checkpoints and how it
# executes (device, dtype, compile, graphs, threads) are left out: verify trains a plan at its own budget.
SHAPE_FIELDS = ("n_layer", "n_embd", "head_size", "block_size", "batch_size")
TRAINING_FIELDS = SHAPE_FIELDS + ("lr", "min_lr_ratio", "schedule", "decay_fraction", "warmup_fraction", "weight_decay",
                                  "grad_clip", "eval_tokens")


def proxy_training(cfg: SweepConfig) -> dict:
    """The config's proxy as it trains (:data:`TRAINING_FIELDS`). A sweep of several ``sizes`` leaves the shape out:
    its plans predict across shapes, and verify may train another size or a ``--shape`` of its own."""
    keep = [k for k in TRAINING_FIELDS if not (cfg.sizes and k in SHAPE_FIELDS)]
    return {k: getattr(cfg.proxy, k) for k in keep}


def proxy_fingerprint(cfg: SweepConfig) -> str:
    """A hash of :func:`proxy_training`: a plan records it, and ``verify`` refuses to train the plan with other proxies
    than those its prediction came from (another store's learning rate, or a single-size sweep's other width)."""
    return hashlib.sha256(repr(sorted(proxy_training(cfg).items())).encode()).hexdigest()[:16]


def proxy_differences(old: SweepConfig, new: SweepConfig) -> list[str]:
    """``field old -> new`` for each field of :func:`proxy_training` that differs between the two configs."""
    a, b = proxy_training(old), proxy_training(new)
    if bool(old.sizes) != bool(new.sizes):
        return [f"{'sizes' if old.sizes else 'one proxy size'} -> {'sizes' if new.sizes else 'one proxy size'}"]
    return [f"{k} {a[k]} -> {b[k]}" for k in a if a[k] != b[k]]  # one set of keys: sizes or not, both the same


def _draw(cfg: SweepConfig, counts: dict[str, int], n: int, seed: int, budget: int,
          reuse: ReusedMixture | None = None) -> list[Mixture]:
    """``n`` sampled mixtures; with ``reuse`` (``cfg.reuse.plan``) drawn on the reduced simplex (the kept group and the
    free domains) and expanded to every domain (:mod:`mixopt.reuse`)."""
    s = cfg.sampler
    if n <= 0:
        return []
    space = reuse.token_counts(counts) if reuse else counts
    if s.method == "dirichlet":
        drawn = sample_dirichlet_mixtures(space, n, seed=seed, budget_tokens=budget, max_epochs=s.max_epochs,
                                          temperature=s.temperature, strength_range=(s.strength_min, s.strength_max),
                                          min_weight=s.min_weight)
    else:
        check_budget(space, budget, s.max_epochs)
        drawn = sample_uniform_mixtures(list(space), n, seed=seed, min_weight=s.min_weight,
                                        caps=max_weights_for_epochs(space, budget, s.max_epochs))
    if reuse is None:
        return drawn
    return [Mixture.from_vector(reuse.expand(m.vector(reuse.coords)), reuse.domains) for m in drawn]


def _two_phase_schedules(cfg: SweepConfig, counts: dict[str, int], n: int, budget: int,
                         reuse: ReusedMixture | None = None) -> list[Phases]:
    """Two-phase schedules ``[(0, p), (1 - f, q)]``: base p from the sampler under a shifted seed (so
    single-phase ids never move), then an upsampled end phase q (see samplers.sample_upsampling)."""
    if n <= 0:
        return []
    s = cfg.sampler
    seed2 = cfg.seed + TWO_PHASE_SEED_OFFSET
    bases = _draw(cfg, counts, n, seed2, budget, reuse)
    caps = max_weights_for_epochs(counts, budget, s.max_epochs)
    return sample_upsampling(bases, seed=seed2 + 1, f_range=(s.upsample_fraction_min, s.upsample_fraction_max), caps=caps)


def plan_sweep(cfg: SweepConfig, data: DomainSet, *, n_runs: int | None = None,
               reuse: ReusedMixture | None = None) -> list[RunSpec]:
    """Every run of the sweep, scale by scale: anchors and samples under the sweep seed, two-phase runs,
    then the anchors' extra seeds. Runs with equal ids (e.g. natural = uniform) appear once. ``reuse``: the config's
    ``reuse.plan`` over ``data.names``, when the caller read it already (else it is read here)."""
    counts = data.token_counts
    s = cfg.sampler
    scales = sweep_scales(cfg, n_runs=n_runs)
    budget = max(sc.proxy.tokens for sc in scales)  # epoch caps at the largest budget hold at every scale
    if reuse is None:
        reuse = reused_mixture(cfg.reuse, list(counts))  # reads reuse.plan's file
    sampled = _draw(cfg, counts, max(max(sc.runs for sc in scales), s.noise_mixtures), cfg.seed, budget, reuse)
    two_phase = _two_phase_schedules(cfg, counts, max(sc.two_phase_runs for sc in scales), budget, reuse)
    baselines = [(name, [(0.0, natural_mixture(counts) if name == "natural" else uniform_mixture(list(counts)))])
                 for name in s.baselines]
    samples = [(f"sample-{i:04d}", [(0.0, m)]) for i, m in enumerate(sampled)]
    anchors = baselines + samples[:s.noise_mixtures]
    specs, seen = [], set()
    for sc in scales:
        suffix = f"@{sc.name}" if sc.name else ""
        proxy = sc.proxy.model_dump(mode="json")
        runs: list[tuple[str, Phases, int]] = [(label, ph, cfg.seed) for label, ph in baselines]
        runs += [(label, ph, cfg.seed) for label, ph in samples[:max(sc.runs, s.noise_mixtures)]]
        runs += [(f"twophase-{i:04d}", ph, cfg.seed) for i, ph in enumerate(two_phase[:sc.two_phase_runs])]
        runs += [(f"{label}~seed{k}", ph, cfg.seed + k) for k in range(1, s.noise_seeds) for label, ph in anchors]
        for label, phases, seed in runs:
            spec = RunSpec(mixture=phases[0][1], proxy=proxy, data_fingerprint=data.fingerprint, seed=seed,
                           label=label + suffix, phases=tuple(phases))
            if spec.run_id not in seen:
                seen.add(spec.run_id)
                specs.append(spec)
    return specs


# ---------------------------------------------------------------- records

def record_from_result(spec: RunSpec, result, *, started: float | None = None, stack: list | None = None) -> RunRecord:
    """Turn a ProxyResult into the record the store keeps, with its scale. ``started``: ``time.time()`` when training began;
    ``stack``: the ProxyResults of the runs trained together with this one in one stacked model (itself included), so
    ``info["mfu"]`` is the device's utilisation over the stack (``tokens_per_second`` stays the run's own)."""
    proxy = ProxyConfig.model_validate(spec.proxy)
    info = {
        "tokens_seen": result.tokens_seen, "tokens_per_domain": result.tokens_per_domain,
        "epochs_per_domain": result.epochs_per_domain, "n_params": result.n_params,
        "device": result.device, "dtype": result.dtype, "train_seconds": result.train_seconds,
        "tokens_per_second": result.tokens_per_second, "threads": result.threads,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "finished_at_s": time.time(), "started_at_s": started,
        "versions": {"mixopt": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "host": platform.node(), "pid": os.getpid(), "lr_schedule": result.schedule, "branch_tokens": result.branch_tokens,
        "eval_seconds": result.eval_seconds, "branch_seconds": result.branch_seconds,
    }
    if result.device == "cuda":  # model FLOPs utilisation against the GPU's dense bf16 peak, over the whole stack
        tokens_per_second = sum(r.tokens_per_second for r in stack) if stack else result.tokens_per_second
        info["mfu"] = mfu(result.flops_per_token or 6.0 * result.n_params, tokens_per_second, "cuda")
    step_tokens = proxy.batch_size * proxy.block_size
    scale = {
        "model_params": int(result.n_params_non_embedding),
        "total_params": int(result.n_params),
        "tokens": int(proxy.tokens // step_tokens * step_tokens),  # the run's training budget (its last checkpoint)
        "schedule": proxy.schedule,
    }
    return RunRecord(
        run_id=spec.run_id, mixture=spec.mixture, status=result.status, reason=result.reason or "",
        metrics=result.metrics if result.status == "ok" else {}, curves=result.curves, seed=spec.seed,
        proxy=spec.proxy, data_fingerprint=spec.data_fingerprint, label=spec.label,
        phases=list(spec.phases), info=info, scale=scale,
    )


# ---------------------------------------------------------------- claim → train → put

@dataclass
class SweepSummary:
    planned: int
    trained: int = 0
    skipped: int = 0  # already finished before this sweep, or finished by another process
    failed: list[str] = field(default_factory=list)  # "run_id: reason"
    seconds: float = 0.0
    config_changes: list[str] = field(default_factory=list)  # how this config differs from the one the store recorded
    reuse_line: str = ""  # with reuse.store: how many of the earlier runs will join `mixopt fit` (runs.reused.sweep_reuse)
    reuse_plan_line: str = ""  # with reuse.plan: which ratios it keeps (ReusedMixture.describe)


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`execute_runs` did with one run."""

    run_id: str
    outcome: str  # "trained", "skipped" (a record exists) or "busy" (another process holds the claim)
    reason: str = ""  # why a run trained now failed; "" when it is ok


def _train(specs: list[RunSpec], data: DomainSet, *, stacked: bool, progress, threads, device) -> list:
    """ProxyResults of runs that share one proxy config: one by one, or together in one stacked model."""
    proxy = ProxyConfig.model_validate(specs[0].proxy)
    if proxy.dtype == "auto" and specs[0].dtype:  # the store's recorded dtype; the record keeps "auto" (its run id)
        proxy = proxy.model_copy(update={"dtype": specs[0].dtype})
    if any(s.proxy != specs[0].proxy for s in specs):
        raise ValueError("Runs trained together must share one proxy config; group them by spec.proxy.")
    if stacked:
        return proxy_train.train_proxies_stacked(proxy, [list(s.phases) for s in specs], data, [s.seed for s in specs],
                                                 device=device, progress=progress)
    return [proxy_train.train_proxy(proxy, list(s.phases), data, s.seed, progress=progress, threads=threads) for s in specs]


def execute_runs(specs: list[RunSpec], store: RunStore, data: DomainSet, *, wait: bool, stacked: bool = False,
                 progress=None, threads: int | None = None, device=None) -> list[RunOutcome]:
    """Claim, train and record runs: the one step every executor calls. One outcome per spec, in order.

    Each run is claimed (waiting for another holder when ``wait``), skipped when the
    store holds it (:meth:`RunStore.held`; a corrupt record is quarantined then), else
    trained; ``stacked`` trains the claimed runs together in one stacked model (they
    must share a proxy config). Records are written before the claims are released,
    so a run is never trained twice.
    """
    if not stacked and len(specs) > 1:  # one at a time: each claim is held only while its run trains
        return [execute_runs([spec], store, data, wait=wait, progress=progress, threads=threads)[0] for spec in specs]
    out: dict[str, RunOutcome] = {}
    with ExitStack() as claims:
        todo = []
        for spec in specs:
            if not claims.enter_context(store.claim(spec.run_id, wait=wait)):
                out[spec.run_id] = RunOutcome(spec.run_id, "busy")
            elif store.held(spec.run_id):  # under the claim: a corrupt record is quarantined here and trained again
                out[spec.run_id] = RunOutcome(spec.run_id, "skipped")
            else:
                todo.append(spec)
        if todo:
            started = time.time()
            results = _train(todo, data, stacked=stacked, progress=progress, threads=threads, device=device)
            for spec, result in zip(todo, results):
                store.put(record_from_result(spec, result, started=started, stack=results))
                out[spec.run_id] = RunOutcome(spec.run_id, "trained", "" if result.status == "ok" else (result.reason or result.status))
    return [out[s.run_id] for s in specs]


def execute_run(spec: RunSpec, store: RunStore, data: DomainSet, *, wait: bool, progress=None, threads=None) -> str:
    """Claim, train and record one run. Returns 'trained', 'skipped' or 'busy'."""
    return execute_runs([spec], store, data, wait=wait, progress=progress, threads=threads)[0].outcome
