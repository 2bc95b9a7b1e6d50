"""`mixopt runs list|show|export|import`: look at and move run records."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from ..errors import ConfigError, DataError, MixoptError, StoreError
from ..runs.reuse_chain import reuse_store_of, show, store_chain
from ..runs.reused import reused_records
from ..runs.store import RunStore, StoreSnapshot, check_store_target
from ..runs.table import not_sweep_counts, records_table, sweep_records, usable_records
from ..runs.tables_io import export_csv, export_regmix, import_runs, regmix_paths
from ..report.tables import runs_table
from .main import app
from .outputs import check_output

runs_app = typer.Typer(help="List, show, export and import run records.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


def _read(store: Path) -> RunStore:
    """An existing store whose store.json (if any) is readable: a corrupt one is a one-line StoreError, not skipped."""
    rs = RunStore(store, create=False)
    rs.meta()
    return rs


@runs_app.command("list")
def list_cmd(store: Path = typer.Option(..., "--store", help="Run-store directory.")) -> None:
    """A table of the runs in a store (its own; `fit` also adds those of a `reuse.store`, named below the table)."""
    rs = _read(store)
    records = rs.records()
    Console().print(runs_table(records, where=str(store)))
    if note := reused_note(rs, records, "not listed here"):
        Console().print(f"note: {note}", soft_wrap=True, markup=False, highlight=False)


@runs_app.command("show")
def show_cmd(run_id: str = typer.Argument(..., help="Run id (a prefix is enough) or a run label such as natural."),
             store: Path = typer.Option(..., "--store", help="Run-store directory.")) -> None:
    """One run record as JSON."""
    recs = _read(store).records()
    by_label = [r for r in recs if r.label == run_id]
    matches = by_label or [r for r in recs if r.run_id.startswith(run_id)]
    if not matches:
        near = sorted({r.label for r in recs if r.label and r.label.startswith(run_id)})  # e.g. natural@s for natural
        hint = f" Did you mean {', '.join(near[:8])}{', ...' if len(near) > 8 else ''}?" if near else ""
        raise StoreError(f"No run in {store} has the label or id prefix '{run_id}'.{hint} See `mixopt runs list --store {store}`.")
    if len(matches) != 1:
        listed = "; ".join(f"{r.run_id} ({', '.join(_describe(r))})" for r in matches[:8])
        more = f"; ... ({len(matches)} in all)" if len(matches) > 8 else ""
        what = f"label '{run_id}'" if by_label else f"id prefix '{run_id}'"
        raise StoreError(f"The {what} matches {len(matches)} runs in {store}: {listed}{more}. Pass one of those run ids.")
    typer.echo(json.dumps(matches[0].to_dict(), indent=1, sort_keys=True))


@runs_app.command("export")
def export_cmd(store: Path = typer.Option(..., "--store", help="Run-store directory."),
               out: Path = typer.Option(..., "--out", help="CSV to write: run_id, weights, metrics."),
               fmt: str = typer.Option("mixopt", "--format", help="mixopt: one CSV. regmix: OUT-stem.mixtures.csv + "
                                       ".metrics.csv, which `runs import` reads back."),
               checkpoints: bool = typer.Option(False, "--checkpoints", help="One row per checkpoint (tokens column) instead of per run."),
               all_runs: bool = typer.Option(False, "--all", help="Also export the verify: and pool: runs (trained at the plan's "
                                             "budget or on one quality pool); re-imported, they become ordinary sweep runs.")) -> None:
    """Write one CSV row per successful run of this store's own sweep.

    On a store swept with `reuse.store`, `fit` also learns from the earlier store's runs, which are not exported.
    The summary line says how many.

    A metric a run did not measure is an empty cell, which `runs import` reads back as "not measured".
    Two-phase runs are written by their whole-run token shares: the CSV cannot hold phases.

    """
    if fmt not in ("mixopt", "regmix"):
        raise DataError(f"--format must be 'mixopt' or 'regmix'. Got '{fmt}'. Use regmix for the two-CSV layout `runs import` reads.")
    targets = list(regmix_paths(out)) if fmt == "regmix" else [out]
    for path in targets:
        check_output(path, "--out", inputs={"--store folder": store})
        if store.exists() and path.resolve().is_relative_to(store.resolve()):
            writes = " is" if path == out else f" writes {path}, which is"
            raise ConfigError(f"--out {out}{writes} inside the run store {store}; write the CSV outside the store.")
    rs = _read(store)
    records = rs.records()
    chosen = records if all_runs else sweep_records(records)
    ok = usable_records(chosen)
    table = records_table(ok, checkpoints=checkpoints)
    if fmt == "regmix":
        mix, met = export_regmix(table, out)
        where = f"{mix} + {met} (re-import: mixopt runs import --mixtures {mix} --metrics {met} --store DIR)"
    else:
        where = str(export_csv(table, out))
    left = []
    for prefix, n in ({} if all_runs else not_sweep_counts(records)).items():
        if n:
            left.append(f"{n} {prefix} run{'' if n == 1 else 's'} left out (--all exports them)")
    if len(ok) < len(chosen):
        n = len(chosen) - len(ok)
        left.append(f"{n} failed or non-finite run{'' if n == 1 else 's'} left out")
    if note := reused_note(rs, records, "not exported"):
        left.append(note)
    Console().print(f"{len(ok)} runs, {len(table.domains)} domains, {len(table.metrics)} metrics -> {where}"
                    + (f"; {'; '.join(left)}" if left else ""), soft_wrap=True, markup=False, highlight=False)
    two_phase = sum(1 for r in ok if len(r.phases) > 1)
    if two_phase:
        Console(stderr=True).print(f"note: {two_phase} two-phase run{'' if two_phase == 1 else 's'} written by whole-run token "
                                   "shares: the CSV cannot hold phases, so re-imported they are single-phase runs",
                                   style="yellow", soft_wrap=True, markup=False)


@runs_app.command("import")
def import_cmd(mixtures: Path = typer.Option(..., "--mixtures", help="CSV of `index` + one weight column per domain."),
               metrics: Path = typer.Option(..., "--metrics", help="CSV of `index` + metric columns (an empty cell: not measured); "
                                            "optional `model_params` and `tokens` columns (rows sharing an index are checkpoints of one run)."),
               store: Path = typer.Option(..., "--store", help="Run-store directory."),
               model_params: float | None = typer.Option(None, "--model-params", help="Model size of runs whose metrics file has no model_params."),
               tokens: float | None = typer.Option(None, "--tokens", help="Training tokens of rows whose metrics file has no tokens."),
               schedule: str | None = typer.Option(None, "--schedule", help="Learning-rate schedule of the runs, e.g. constant, cosine, wsd."),
               strict: bool = typer.Option(False, "--strict", help="Fail, importing nothing, when any row is rejected.")) -> None:
    """Bring in runs produced elsewhere (RegMix's released layout).

    """
    console = Console(stderr=True)
    check_store_target(store)  # a folder of other files is not made a store
    created = _first_missing(store)  # the top folder this command creates, if any
    try:
        res = import_runs(RunStore(store), mixtures, metrics, model_params=model_params, tokens=tokens,
                          schedule=schedule, strict=strict)
        if res.accepted == 0 and created is not None:
            _remove_empty(store, created)
    except MixoptError:
        if created is not None:
            _remove_empty(store, created)  # a refused import leaves no empty store behind
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


def reused_note(rs: RunStore, records: list, what: str) -> str | None:
    """For a store swept with ``reuse.store``: "fit also adds N runs of <the chain of stores> (reuse.store), ``what``",
    counted as `fit` of its default target counts them (`reused_records`); a line saying why they cannot be counted when
    the earlier store cannot be read; None for a store without ``reuse.store`` or when none of those runs joins."""
    snapshot = StoreSnapshot(meta=rs.meta(), records=records, root=rs.root)
    path = ((snapshot.meta.get("config") or {}).get("reuse") or {}).get("store")
    if not path:
        return None
    try:
        full, partial, _ = reused_records(snapshot, "mean:all-domains")
        chain = ", ".join(show(p) for p in store_chain(reuse_store_of(snapshot.meta, rs.root) or path, rs.root)[0])
    except MixoptError as exc:
        return f"this store reuses the runs of {path} (reuse.store), which fit cannot read now: {exc}"
    n = len(full) + len(partial)
    return f"fit also adds {n} run{'' if n == 1 else 's'} of {chain} (reuse.store), {what}" if n else None


def _describe(rec) -> list[str]:
    """What tells runs of one label apart in a message: label, seed, tokens, status."""
    tokens = (rec.scale or {}).get("tokens")
    return [rec.label or "no label", *([f"seed {rec.seed}"] if rec.seed is not None else []),
            *([f"{float(tokens):.3g} tokens"] if tokens else []), rec.status]


def _first_missing(path: Path) -> Path | None:
    """The topmost folder of ``path`` (itself or a parent) that does not exist yet; None when ``path`` exists."""
    if path.exists():
        return None
    top = path
    for parent in path.parents:
        if parent.exists():
            break
        top = parent
    return top


def _remove_empty(store: Path, top: Path) -> None:
    """Remove what a refused import created: the store's empty ``runs/`` and ``locks/`` and the empty folders up to ``top``."""
    for sub in (store / "runs", store / "locks"):
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    for folder in (store, *store.parents):
        if not folder.is_dir() or any(folder.iterdir()):
            return
        folder.rmdir()
        if folder == top:
            return
