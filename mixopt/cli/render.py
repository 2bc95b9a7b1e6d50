"""Shared by several commands: rich tables, and ``NAME=VALUE`` option parsing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..errors import ExportError
from ..runs.store import RunStore


def parse_pairs(items: list[str], option: str, what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}`` with one-line errors naming ``option``."""
    out: dict[str, str] = {}
    for item in items:
        domain, sep, value = item.partition("=")
        domain, value = domain.strip(), value.strip()
        if not sep or not domain or not value:
            example = "512" if what == "N" else "/data/code"
            raise ExportError(f"{option} takes DOMAIN={what}. Got {item!r}. Write it as e.g. {option} code={example}.")
        if domain in out:
            raise ExportError(f"{option} may name each domain once. Got '{domain}' twice ({out[domain]!r} and {value!r}). Keep one.")
        out[domain] = value
    return out


def print_runs_table(store_dir: Path, console: Console | None = None, limit: int = 40) -> None:
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
