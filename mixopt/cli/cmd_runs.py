"""`mixopt runs list|show|export|import`: look at and move run records."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from .main import app

runs_app = typer.Typer(help="List, show, export and import run records.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def list_cmd(store: Path = typer.Option(..., "--store", help="Run-store directory.")) -> None:
    """A table of the runs in a store."""
    from .render import print_runs_table

    print_runs_table(store)


@runs_app.command("show")
def show_cmd(run_id: str = typer.Argument(..., help="Run id (a prefix is enough)."),
             store: Path = typer.Option(..., "--store", help="Run-store directory.")) -> None:
    """One run record as JSON."""
    from dataclasses import asdict

    from ..errors import StoreError
    from ..runs.store import RunStore

    matches = [r for r in RunStore(store, create=False).records() if r.run_id.startswith(run_id)]
    if len(matches) != 1:
        raise StoreError(f"Run id prefix '{run_id}' matches {len(matches)} runs in {store}. Give more characters (see `mixopt runs list`).")
    typer.echo(json.dumps(asdict(matches[0]), indent=1, sort_keys=True))


@runs_app.command("export")
def export_cmd(store: Path = typer.Option(..., "--store", help="Run-store directory."),
               out: Path = typer.Option(..., "--out", help="CSV to write: run_id, weights, metrics.")) -> None:
    """Write one CSV row per successful run."""
    from ..runs.store import RunStore
    from ..runs.table import export_csv, store_table

    table = store_table(RunStore(store, create=False))
    export_csv(table, out)
    Console().print(f"{len(table.run_ids)} runs, {len(table.domains)} domains, {len(table.metrics)} metrics -> {out}")


@runs_app.command("import")
def import_cmd(mixtures: Path = typer.Option(..., "--mixtures", help="CSV of `index` + one weight column per domain."),
               metrics: Path = typer.Option(..., "--metrics", help="CSV of `index` + metric columns."),
               store: Path = typer.Option(..., "--store", help="Run-store directory.")) -> None:
    """Bring in runs produced elsewhere (RegMix's released layout)."""
    from ..runs.store import RunStore
    from ..runs.table import import_regmix

    console = Console(stderr=True)
    n, rejected = import_regmix(RunStore(store), mixtures, metrics)
    for msg in rejected[:20]:
        console.print(f"[yellow]rejected {msg}[/]")
    if len(rejected) > 20:
        console.print(f"[yellow]... and {len(rejected) - 20} more rejected rows[/]")
    Console().print(f"imported {n} runs into {store}; rejected {len(rejected)} rows")
