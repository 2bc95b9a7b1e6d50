"""Plan a sweep (which runs) and carry it out (train what is not done yet).

The planned set is a pure function of the config, the seed and the data, so a
sweep killed half way and started again plans the same runs, skips the finished
ones and trains only the rest. Each run is claimed with a lock before training,
so two sweeps sharing a store never train the same run twice.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field

from ..config import SweepConfig
from ..data.types import DomainSet
from ..mixtures import (TWO_PHASE_SEED_OFFSET, Mixture, max_weights_for_epochs, natural_mixture, sample_dirichlet_mixtures,
                        sample_uniform_mixtures, sample_upsampling, uniform_mixture)
from .record import RunRecord, RunSpec
from .store import RunStore


def plan_sweep(cfg: SweepConfig, data: DomainSet, *, n_runs: int | None = None) -> list[RunSpec]:
    """Baselines first, then ``n_runs`` sampled mixtures, then ``sampler.two_phase_runs`` two-phase runs; all with the sweep seed."""
    counts = data.token_counts
    s = cfg.sampler
    n = cfg.runs if n_runs is None else n_runs
    labelled: list[tuple[str, Mixture]] = []
    for name in s.baselines:
        labelled.append((name, natural_mixture(counts) if name == "natural" else uniform_mixture(list(counts))))
    if s.method == "dirichlet":
        sampled = sample_dirichlet_mixtures(
            counts, n, seed=cfg.seed, budget_tokens=cfg.proxy.tokens, max_epochs=s.max_epochs,
            temperature=s.temperature, strength_range=(s.strength_min, s.strength_max), min_weight=s.min_weight,
        )
    else:
        sampled = sample_uniform_mixtures(list(counts), n, seed=cfg.seed, min_weight=s.min_weight)
    labelled += [(f"sample-{i:04d}", m) for i, m in enumerate(sampled)]
    later: dict[str, tuple] = {}
    if s.two_phase_runs:
        # Two-phase runs: base p from the same sampler under a shifted seed (so single-phase ids never
        # move), then an upsampled end phase q for the last f of tokens (see mixtures.sample_upsampling).
        seed2 = cfg.seed + TWO_PHASE_SEED_OFFSET
        if s.method == "dirichlet":
            bases = sample_dirichlet_mixtures(
                counts, s.two_phase_runs, seed=seed2, budget_tokens=cfg.proxy.tokens, max_epochs=s.max_epochs,
                temperature=s.temperature, strength_range=(s.strength_min, s.strength_max), min_weight=s.min_weight,
            )
            caps = max_weights_for_epochs(counts, cfg.proxy.tokens, s.max_epochs)
        else:
            bases, caps = sample_uniform_mixtures(list(counts), s.two_phase_runs, seed=seed2, min_weight=s.min_weight), None
        ups = sample_upsampling(bases, seed=seed2 + 1, f_range=(s.upsample_fraction_min, s.upsample_fraction_max), caps=caps)
        for i, (p, schedule) in enumerate(zip(bases, ups)):
            labelled.append((f"twophase-{i:04d}", p))
            later[f"twophase-{i:04d}"] = tuple((s, dict(q)) for s, q in schedule[1:])
    proxy = cfg.proxy.model_dump(mode="json")
    specs, seen = [], set()
    for label, m in labelled:
        spec = RunSpec(mixture=dict(m), proxy=proxy, data_fingerprint=data.fingerprint, seed=cfg.seed, label=label,
                       phases=later.get(label, ()))
        if spec.run_id not in seen:
            seen.add(spec.run_id)
            specs.append(spec)
    return specs


def record_from_result(spec: RunSpec, result) -> RunRecord:
    """Turn a ProxyResult into the record the store keeps."""
    import torch

    from .. import __version__

    info = {
        "tokens_seen": result.tokens_seen, "tokens_per_domain": result.tokens_per_domain,
        "epochs_per_domain": result.epochs_per_domain, "n_params": result.n_params,
        "device": result.device, "dtype": result.dtype, "train_seconds": result.train_seconds,
        "tokens_per_second": result.tokens_per_second, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "versions": {"mixopt": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "host": platform.node(), "pid": os.getpid(),
    }
    if result.device == "cuda":  # model FLOPs utilisation against the GPU's dense bf16 peak (6 x params per token)
        from ..proxy.mfu import mfu

        info["mfu"] = mfu(6.0 * result.n_params, result.tokens_per_second, "cuda")
    return RunRecord(
        run_id=spec.run_id, mixture=spec.mixture, status=result.status, reason=result.reason,
        metrics=result.metrics if result.status == "ok" else {}, curves=result.curves, seed=spec.seed,
        proxy=spec.proxy, data_fingerprint=spec.data_fingerprint, label=spec.label,
        phases=[list(p) for p in spec.phases], info=info,
    )


@dataclass
class SweepSummary:
    planned: int
    trained: int = 0
    skipped: int = 0  # already finished before this sweep, or finished by another process
    failed: list[str] = field(default_factory=list)  # "run_id: reason"
    seconds: float = 0.0


def execute_run(spec: RunSpec, cfg: SweepConfig, store: RunStore, data: DomainSet, *, wait: bool, progress=None, threads=None) -> str:
    """Claim, train and record one run. Returns 'trained', 'skipped' or 'busy'."""
    from ..proxy.train import train_proxy

    with store.claim(spec.run_id, wait=wait) as got:
        if not got:
            return "busy"
        if store.has(spec.run_id):
            return "skipped"
        mixture = Mixture(spec.mixture)
        phases = [(float(s), Mixture(w, where=f"phase of run {spec.run_id}")) for s, w in spec.phases]
        result = train_proxy(cfg.proxy, mixture, data, spec.seed, progress=progress, threads=threads, phases=phases)
        store.put(record_from_result(spec, result))
        return "trained"
