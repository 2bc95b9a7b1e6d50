"""The demo pipeline: sweep -> fit -> propose -> export -> report, in one call."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from .config import load_config, packaged_config


def resolve_config(config: str) -> Path:
    p = Path(config)
    return p if p.suffix in (".yaml", ".yml") or p.exists() else packaged_config(config)


def run_demo(out: str | Path, *, config: str = "demo", runs: int | None = None, console: Console | None = None) -> dict[str, Path]:
    """Run every stage on the embedded corpus; returns the paths written."""
    from .cli.render import print_runs_table
    from .runs.driver import run_sweep

    console = console or Console()
    out = Path(out)
    cfg = load_config(resolve_config(config))
    store = out / "store"
    console.rule("1/1 sweep: proxy models over sampled mixtures")
    summary = run_sweep(cfg, store, n_runs=runs)
    print_runs_table(store, console=console)
    console.print(f"{summary.trained} trained, {summary.skipped} already done, {len(summary.failed)} failed")
    return {"store": store}
