"""`mixopt runs list|show|export|import`: look at and move run records."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from ..errors import DataError, MixoptError, StoreError
from ..runs.store import RunStore
from ..runs.table import store_table
from ..runs.tables_io import export_csv, export_regmix, import_runs
from ..report.tables import runs_table
from .main import app

runs_app = typer.Typer(help="List, show, export and import run records.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


def _read(store: Path) -> RunStore:
    """An existing store whose store.json (if any) is readable: a corrupt one is a one-line StoreError, not skipped."""
    rs = RunStore(store, create=False)
    rs.meta()
    return rs


@runs_app.command("list")
def list_cmd(store: Path = typer.Option(..., "--store", help="Run-store directory.")) -> None:
    """A table of the runs in a store."""
    Console().print(runs_table(_read(store).records(), where=str(store)))


@runs_app.command("show")
def show_cmd(run_id: str = typer.Argument(..., help="Run id (a prefix is enough) or a run label such as natural."),
             store: Path = typer.Option(..., "--store", help="Run-store directory.")) -> None:
    """One run record as JSON."""
    recs = _read(store).records()
    matches = [r for r in recs if r.label == run_id] or [r for r in recs if r.run_id.startswith(run_id)]
    if not matches:
        raise StoreError(f"No run in {store} has the label or id prefix '{run_id}'. See `mixopt runs list --store {store}`.")
    if len(matches) != 1:
        raise StoreError(f"Run id prefix '{run_id}' matches {len(matches)} runs in {store}. Give more characters (see `mixopt runs list`).")
    typer.echo(json.dumps(matches[0].to_dict(), indent=1, sort_keys=True))


@runs_app.command("export")
def export_cmd(store: Path = typer.Option(..., "--store", help="Run-store directory."),
               out: Path = typer.Option(..., "--out", help="CSV to write: run_id, weights, metrics."),
               fmt: str = typer.Option("mixopt", "--format", help="mixopt: one CSV. regmix: OUT-stem.mixtures.csv + "
                                       ".metrics.csv, which `runs import` reads back."),
               checkpoints: bool = typer.Option(False, "--checkpoints", help="One row per checkpoint (tokens column) instead of per run.")) -> None:
    """Write one CSV row per successful run.

    """
    if fmt not in ("mixopt", "regmix"):
        raise DataError(f"--format must be 'mixopt' or 'regmix'. Got '{fmt}'. Use regmix for the two-CSV layout `runs import` reads.")
    table = store_table(_read(store), checkpoints=checkpoints)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "regmix":
        mix, met = export_regmix(table, out)
        where = f"{mix} + {met} (re-import: mixopt runs import --mixtures {mix} --metrics {met} --store DIR)"
    else:
        where = str(export_csv(table, out))
    Console().print(f"{len(set(table.run_ids))} runs, {len(table.domains)} domains, {len(table.metrics)} metrics -> {where}")


@runs_app.command("import")
def import_cmd(mixtures: Path = typer.Option(..., "--mixtures", help="CSV of `index` + one weight column per domain."),
               metrics: Path = typer.Option(..., "--metrics", help="CSV of `index` + metric columns; optional `model_params` and `tokens` "
                                            "columns (rows sharing an index are checkpoints of one run)."),
               store: Path = typer.Option(..., "--store", help="Run-store directory."),
               model_params: float | None = typer.Option(None, "--model-params", help="Model size of runs whose metrics file has no model_params."),
               tokens: float | None = typer.Option(None, "--tokens", help="Training tokens of rows whose metrics file has no tokens."),
               schedule: str | None = typer.Option(None, "--schedule", help="Learning-rate schedule of the runs, e.g. constant, cosine, wsd."),
               strict: bool = typer.Option(False, "--strict", help="Fail, importing nothing, when any row is rejected.")) -> None:
    """Bring in runs produced elsewhere (RegMix's released layout).

    """
    console = Console(stderr=True)
    new_store = not store.exists()
    try:
        res = import_runs(RunStore(store), mixtures, metrics, model_params=model_params, tokens=tokens,
                          schedule=schedule, strict=strict)
    except MixoptError:
        if new_store and store.is_dir() and not any(store.iterdir()):
            store.rmdir()  # a refused import leaves no empty store behind
        raise
    rejected = res.rejected
    for msg in rejected[:20]:
        console.print(f"rejected {msg}", style="yellow", soft_wrap=True, markup=False)
    if len(rejected) > 20:
        console.print(f"... and {len(rejected) - 20} more rejected rows", style="yellow", markup=False)
    for note in res.notes:
        console.print(f"note: {note}", style="yellow", soft_wrap=True, markup=False)
    if res.accepted == 0:
        raise DataError(f"No runs were imported from {mixtures.name}: all {len(rejected)} row(s) were rejected, first: "
                        f"{rejected[0] if rejected else 'none'}. Fix the rows listed above.")
    already = f" ({res.existing} already there: nothing to add)" if res.added == 0 else (
        f"; {res.existing} were already there" if res.existing else "")
    Console().print(f"imported {res.added} new run{'' if res.added == 1 else 's'} into {store}{already}; rejected "
                    f"{len(rejected)} rows", soft_wrap=True, markup=False)
