"""`mixopt demo`: the main job end to end on a config's data (the packaged demo config: the embedded corpus)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from ..demo import run_demo
from ..errors import Interrupted
from .main import app


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("mixopt-demo"), "--out", help="Directory for the store, model, plan, exports, verification and report. "
                             "A folder an earlier demo wrote resumes; one holding files of those names that no demo wrote "
                             "is refused."),
    config: str = typer.Option("demo", "--config", help="A packaged config name (demo, tiny) or a YAML path."),
    runs: int | None = typer.Option(None, "--runs", min=1, help="Sampled mixtures (overrides the config)."),
) -> None:
    """Sweep proxies over the config's data (the demo's: the embedded corpus), then fit, propose, export, verify and report."""
    console = Console()
    t0 = time.perf_counter()
    try:
        result = run_demo(out, config=config, runs=runs, console=console)
    except KeyboardInterrupt:  # Ctrl-C after the sweep (fit, propose, ...): the sweep says it itself
        raise Interrupted(f"the finished runs are kept in {out / 'store'}") from None
    console.print(f"[bold green]demo finished in {time.perf_counter() - t0:.0f}s[/]; outputs in {out}")
    for name, path in result.items():
        console.print(f"  {name}: {path}")
