"""Executors only schedule: local (in-process or N worker processes) and Ray.

Every executor calls `execute_run`, which claims the run's lock, trains it and
writes its record, so all of them share the same resume and no-duplicate rules.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..config import SweepConfig, config_from_dict
from ..data.types import DomainSet
from ..errors import ConfigError, MixoptError
from .record import RunSpec
from .store import RunStore
from .sweep import SweepSummary, execute_run

_DATA_CACHE: dict[str, DomainSet] = {}


def threads_per_run(cfg: SweepConfig, workers: int = 1) -> int:
    """CPU threads for one proxy run: the pinned value, else this machine's cores shared by the workers.

    Float reductions depend on the thread count, so runs are bit-identical across
    executors exactly when they use the same number of threads.
    """
    return cfg.proxy.threads or max(1, (os.cpu_count() or 1) // max(1, workers))


def _data_for(cfg: SweepConfig) -> DomainSet:
    """Per-process memo of the tokenized data (worker processes load it once, from the shard cache)."""
    from ..data.domains import load_domain_set

    key = cfg.data.model_dump_json()
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_domain_set(cfg.data)
    return _DATA_CACHE[key]


def _tally(summary: SweepSummary, run_id: str, outcome: str, reason: str, on_run) -> None:
    """Count one finished run in the summary and tell the progress display."""
    if outcome == "trained":
        summary.trained += 1
        if reason:
            summary.failed.append(f"{run_id}: {reason}")
    else:
        summary.skipped += 1
    if on_run:
        on_run(run_id, outcome, reason)


def _worker(spec: RunSpec, cfg_dict: dict, store_root: str, threads: int | None) -> tuple[str, str, str]:
    cfg = config_from_dict(cfg_dict)
    store = RunStore(store_root)
    outcome = execute_run(spec, cfg, store, _data_for(cfg), wait=True, threads=threads)
    rec = store.get(spec.run_id)
    reason = rec.reason if rec is not None and rec.status != "ok" else ""
    return spec.run_id, outcome, reason


def run_local(specs: list[RunSpec], cfg: SweepConfig, store: RunStore, data: DomainSet, *, workers: int = 1,
              on_run: Callable[[str, str, str], None] | None = None, on_step: Callable[[int, int], None] | None = None) -> SweepSummary:
    """Train the pending runs here, sequentially or in `workers` processes."""
    summary = SweepSummary(planned=len(specs))
    t0 = time.perf_counter()

    def done(run_id: str, outcome: str) -> None:
        rec = store.get(run_id)
        _tally(summary, run_id, outcome, rec.reason if rec is not None and rec.status != "ok" else "", on_run)

    stack = _stack_size(cfg, data) if workers <= 1 else 1
    if stack > 1:  # CUDA: train several small proxies at once in one stacked model
        specs = _run_stacked(specs, cfg, store, data, stack, done)
    if workers <= 1:
        deferred = []
        for spec in specs:
            outcome = execute_run(spec, cfg, store, data, wait=False, progress=on_step, threads=threads_per_run(cfg))
            if outcome == "busy":
                deferred.append(spec)  # another sweep is training it; come back after the rest
            else:
                done(spec.run_id, outcome)
        for spec in deferred:
            done(spec.run_id, execute_run(spec, cfg, store, data, wait=True, progress=on_step, threads=threads_per_run(cfg)))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = threads_per_run(cfg, workers)
        cfg_dict = cfg.model_dump(mode="json")
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_worker, s, cfg_dict, str(store.root), threads) for s in specs]
            for fut in as_completed(futures):
                run_id, outcome, _ = fut.result()
                done(run_id, outcome)
    summary.seconds = time.perf_counter() - t0
    return summary


def _stack_size(cfg: SweepConfig, data: DomainSet) -> int:
    """How many proxies to train together: 1 on CPU (stacking is slower there), more on a GPU."""
    from ..proxy.device import pick_device
    from ..proxy.stacked import choose_stack_size

    device = pick_device(cfg.proxy)
    return choose_stack_size(cfg.proxy, device, vocab_size=data.vocab_size) if device.type == "cuda" else 1


def _run_stacked(specs: list[RunSpec], cfg: SweepConfig, store: RunStore, data: DomainSet, stack: int, done) -> list[RunSpec]:
    """Train groups of `stack` runs together; returns the specs another process holds (for the caller to wait on)."""
    from contextlib import ExitStack

    from ..mixtures import Mixture
    from ..proxy.stacked import train_proxies_stacked
    from .sweep import record_from_result

    busy = []
    for i in range(0, len(specs), stack):
        with ExitStack() as claims:
            group = []
            for spec in specs[i:i + stack]:
                if not claims.enter_context(store.claim(spec.run_id, wait=False)):
                    busy.append(spec)
                elif store.has(spec.run_id):
                    done(spec.run_id, "skipped")
                else:
                    group.append(spec)
            if not group:
                continue
            results = train_proxies_stacked(cfg.proxy, [Mixture(s.mixture) for s in group], data, [s.seed for s in group],
                                            phases=[[(f, Mixture(w)) for f, w in s.phases] for s in group])
            for spec, result in zip(group, results):
                store.put(record_from_result(spec, result))
                done(spec.run_id, "trained")
    return busy


def run_ray(specs: list[RunSpec], cfg: SweepConfig, store: RunStore, *, address: str | None = None, max_retries: int = 3,
            on_run: Callable[[str, str, str], None] | None = None) -> SweepSummary:
    """Train pending runs as Ray tasks; a task whose worker dies is retried by Ray.

    The store must be on a filesystem every Ray node can reach.
    """
    from ..errors import require

    ray = require("ray", "ray")
    summary = SweepSummary(planned=len(specs))
    t0 = time.perf_counter()
    started_here = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        except ConnectionError as exc:
            raise ConfigError(f"Cannot reach the Ray cluster at {address!r} ({exc}). Start one with `ray start --head` or drop --ray-address.") from None
        started_here = True
    try:
        threads = threads_per_run(cfg)  # same as a local sequential sweep on this machine, for identical results
        task = ray.remote(max_retries=max_retries, retry_exceptions=False, num_cpus=1)(_worker)
        cfg_dict = cfg.model_dump(mode="json")
        pending = {task.remote(s, cfg_dict, str(store.root.resolve()), threads): s for s in specs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # surface a user error as itself, not a wrapped traceback
                    if isinstance(exc.cause, MixoptError):
                        raise exc.cause from None
                    raise
                _tally(summary, *outcome, on_run)
    finally:
        if started_here and address is None:
            ray.shutdown()
    summary.seconds = time.perf_counter() - t0
    return summary
