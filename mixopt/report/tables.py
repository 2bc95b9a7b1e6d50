"""Tables for the terminal (rich): the runs of a store."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from ..runs.record import RunRecord


def runs_table(records: Sequence[RunRecord], *, where: str = "", limit: int = 40) -> Table:
    """Label, status, mean validation loss and the largest weights of each run (the first ``limit``)."""
    shown = f" (first {limit}; see `mixopt runs export` for all)" if len(records) > limit else ""
    table = Table(title=f"{len(records)} runs{f' in {where}' if where else ''}{shown}")
    for col, just in (("run_id", "left"), ("label", "left"), ("status", "left"), ("mean val loss", "right"), ("largest weights", "left")):
        table.add_column(col, justify=just)
    for r in records[:limit]:
        vals = [v for k, v in r.metrics.items() if k.startswith(("val/", "metric/"))]
        mean = f"{sum(vals) / len(vals):.4f}" if vals else "-"
        top = sorted(r.mixture.items(), key=lambda kv: -kv[1])[:3]
        table.add_row(r.run_id[:10], r.label, r.status, mean, ", ".join(f"{d} {w:.2f}" for d, w in top))
    return table
