"""Rich tables shared by several commands."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def print_runs_table(store_dir: Path, console: Console | None = None, limit: int = 40) -> None:
    from ..runs.store import RunStore

    console = console or Console()
    records = RunStore(store_dir, create=False).records()
    table = Table(title=f"{len(records)} runs in {store_dir}")
    for col, just in (("run_id", "left"), ("label", "left"), ("status", "left"), ("mean val loss", "right"), ("largest weights", "left")):
        table.add_column(col, justify=just)
    for r in records[:limit]:
        vals = [v for k, v in r.metrics.items() if k.startswith(("val/", "metric/"))]
        mean = f"{sum(vals) / len(vals):.4f}" if vals else "-"
        top = sorted(r.mixture.items(), key=lambda kv: -kv[1])[:3]
        table.add_row(r.run_id[:10], r.label, r.status, mean, ", ".join(f"{d} {w:.2f}" for d, w in top))
    console.print(table)
    if len(records) > limit:
        console.print(f"... {len(records) - limit} more; see `mixopt runs export`.")
