"""`mixopt sweep`: train proxy models over sampled mixtures into a run store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .. import pipeline
from ..config import load_config, resolve_config
from ..errors import ConfigError
from ..report.tables import runs_table
from ..runs.store import mixed_dtype_note
from ..runs.table import sweep_records
from .main import app
from .render import only_with


@app.command("sweep")
def sweep_cmd(
    config: Path = typer.Argument(..., help="Sweep config: a YAML path or a packaged name (demo, tiny)."),
    store: Path = typer.Option(..., "--store", help="Run-store directory (created if absent; resumes if present)."),
    runs: int | None = typer.Option(None, "--runs", min=1, help="Sampled mixtures (overrides the config's `runs`)."),
    executor: str = typer.Option("local", "--executor", help="local or ray."),
    workers: int | None = typer.Option(None, "--workers", min=1, help=(
        "Local worker processes (overrides the config). Default: the config's `workers` if set, else one per core "
        "(one torch thread each) when the pending runs hold at least 1M tokens, else 1.")),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address; default starts a local Ray."),
) -> None:
    """Train the planned proxy runs that the store does not hold yet."""
    only_with("--executor ray", executor == "ray", ray_address=ray_address is not None)
    if executor == "ray" and workers is not None:
        raise ConfigError("--workers sets local worker processes; with --executor ray the cluster schedules the runs. "
                          "Drop --workers (or use --executor local).")
    cfg = load_config(resolve_config(config), store=store)
    summary = pipeline.sweep(cfg, store, n_runs=runs, executor=executor, workers=workers, ray_address=ray_address)
    console = Console()
    snapshot = pipeline.open_store(store)
    console.print(runs_table(snapshot.records, where=str(store)))
    if summary.reuse_plan_line:  # reuse.plan: the ratios it keeps
        console.print(summary.reuse_plan_line, soft_wrap=True, markup=False)
    if summary.reuse_line:  # reuse.store: how many of the earlier runs `mixopt fit` will add, and why the others not
        console.print(summary.reuse_line, soft_wrap=True, markup=False)
    if summary.config_changes:
        shown = "; ".join(summary.config_changes[:6]) + (f"; ... ({len(summary.config_changes)} in all)"
                                                          if len(summary.config_changes) > 6 else "")
        console.print(f"store config updated ({shown}); the previous config is kept in {store / 'store.json'} under "
                      "config_history", soft_wrap=True, markup=False)
    if note := mixed_dtype_note(sweep_records(snapshot.ok), store, snapshot.meta.get("proxy_dtype")):
        typer.echo(f"warning: {note}", err=True)
    console.print(
        f"{summary.planned} planned, {summary.trained} trained now, {summary.skipped} already done, "
        f"{len(summary.failed)} failed, {summary.seconds:.1f}s. Store: {store}"
    )
