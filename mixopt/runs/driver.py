"""`run_sweep`: load data, plan the runs, hand the pending ones to an executor."""

from __future__ import annotations

from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import SweepConfig
from ..data.domains import load_domain_set
from ..errors import ConfigError, ConsistencyError
from .executors import check_ray_address, choose_workers, run_local, run_ray
from .reused import check_reuse_store
from .store import RunStore
from .sweep import SweepSummary, plan_sweep


def run_sweep(cfg: SweepConfig, store_dir: str | Path, *, n_runs: int | None = None, executor: str = "local",
              workers: int | None = None, ray_address: str | None = None, show_progress: bool = True) -> SweepSummary:
    """Train every planned run of `cfg` that `store_dir` does not hold yet."""
    if executor not in ("local", "ray"):
        raise ConfigError(f"--executor must be 'local' or 'ray'. Got '{executor}'.")
    if executor == "ray":
        check_ray_address(ray_address)  # before tokenizing: an unreachable cluster fails at once
    if cfg.reuse is not None and cfg.reuse.store:
        check_reuse_store(cfg.reuse.store)  # before training: a wrong path fails now, not at `fit`
    store = RunStore(store_dir)
    store.check_writable()  # before any training: a read-only or full disk fails here
    store.clean_stale_temporaries()  # left by a process killed inside a record write
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        t_data = progress.add_task("tokenizing domains", total=None)
        recorded = store.meta().get("data_fingerprint")
        data = load_domain_set(cfg.data, progress=lambda i, n: progress.update(t_data, completed=i, total=n),
                               store_fingerprint=recorded)
        check_same_data(store, recorded, data.fingerprint)
        specs = plan_sweep(cfg, data, n_runs=n_runs)
        store.update_meta(domains=data.names, token_counts=data.token_counts, data_fingerprint=data.fingerprint,
                          config=cfg.model_dump(mode="json"), planned=[s.run_id for s in specs],
                          tokens_per_doc={n: d.mean_tokens_per_doc for n, d in data.domains.items()},
                          domain_fingerprints={n: d.fingerprint for n, d in data.domains.items()},
                          target_fingerprints={n: t.fingerprint for n, t in data.targets.items()})
        pending = [s for s in specs if not store.has(s.run_id)]
        n_workers = choose_workers(cfg, workers, pending) if executor == "local" else 1
        t_runs = progress.add_task("proxy runs", total=len(specs), completed=len(specs) - len(pending))
        t_step = progress.add_task("  current run (steps)", total=1, visible=executor == "local" and n_workers <= 1)

        def on_run(run_id: str, outcome: str, reason: str) -> None:
            progress.advance(t_runs)
            if reason:
                progress.console.print(f"[yellow]run {run_id} failed: {reason}[/]")

        def on_step(step: int, total: int) -> None:
            progress.update(t_step, completed=step, total=total)

        if executor == "ray":
            summary = run_ray(pending, cfg, store, data, address=ray_address, on_run=on_run)
        else:
            summary = run_local(pending, cfg, store, data, workers=n_workers, on_run=on_run, on_step=on_step,
                                on_info=progress.console.print)
    summary.planned = len(specs)
    summary.skipped += len(specs) - len(pending)
    return summary


def check_same_data(store: RunStore, recorded: str | None, fingerprint: str) -> None:
    """A store holds runs on one data set: sweeping other data into it would mix their losses in every fit. A one-line
    ConsistencyError names both fingerprints (``recorded``: the store's); a store without runs takes the new data."""
    if recorded and recorded != fingerprint and store.run_ids():
        raise ConsistencyError(
            f"The store {store.root} holds runs on other data (fingerprint {recorded}) than this config reads ({fingerprint}): "
            "a data file, the tokenizer, val_fraction or max_documents changed. Sweep into a new --store, or restore the "
            "data the store was swept with (a store an older mixopt wrote from another folder also reads as other data).")
