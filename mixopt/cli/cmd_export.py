"""`mixopt export`: write a plan in a trainer's format, whole or not at all (see `mixopt.export.write`)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import typer

from ..errors import ConfigError, ExportError
from ..export import ExportOptions, inapplicable_options, rounding_note, write_export
from ..export.reading import POOL_PATHS
from ..plan import check_pool_files, load_plan, repeated_more
from .main import app
from .outputs import check_output
from .render import parse_pairs

_FORMATS_HELP = (
    "megatron (dir), olmo-core (dir), nanotron (file), litdata (file), "
    "mosaic-streaming (dir), hf-datasets (dir), json (file)"
)


class _FolderPath(type(Path())):
    """An ``--out`` typed with a trailing ``/`` (which a Path drops): the user names a folder."""


def _keep_trailing_slash(value: str) -> Path:
    return _FolderPath(value) if str(value).endswith(("/", os.sep)) else Path(value)


@app.command("export")
def export_cmd(
    plan_path: Path = typer.Argument(..., help="plan.yaml written by `mixopt propose`."),
    fmt: str = typer.Option(..., "--format", "-f", help=f"Output format: {_FORMATS_HELP}."),
    out: Path = typer.Option(..., "--out", "-o", parser=_keep_trailing_slash,
                             help="Output file (single-file formats) or directory (multi-file formats)."),
    paths: list[str] = typer.Option([], "--paths", "-p", help="DOMAIN=PATH data location for a domain; repeat for each domain. "
                             "megatron: the PREFIX of PREFIX.bin/.idx (tools/preprocess_data.py's output), not a .jsonl file."),
    tokens_per_doc: list[str] = typer.Option(
        [], "--tokens-per-doc", help="DOMAIN=N mean tokens per document; overrides the plan (document-weighted formats)."
    ),
    total_iterations: int | None = typer.Option(
        None, help="Training steps in all, within one step or 1% of budget_tokens / (global_batch_size * seq_length); "
        "default its ceiling."
    ),
    global_batch_size: int | None = typer.Option(None, help="Sequences per step for megatron/nanotron step numbers (default 512)."),
    seq_length: int | None = typer.Option(None, help="Tokens per sequence for megatron/nanotron step numbers (default 4096)."),
    seed: int | None = typer.Option(None, min=0, help="Sampling seed written into the formats that take one: olmo-core, "
                                    "nanotron, litdata, hf-datasets (default 42)."),
    stopping_strategy: str | None = typer.Option(None, help="hf-datasets: all_exhausted (default) or first_exhausted."),
    local_cache: str | None = typer.Option(None, help="mosaic-streaming: folder on the training machine where remote "
                                           "streams cache their shards, one subfolder per domain (default /tmp/mixopt-streaming)."),
    drop: list[str] = typer.Option([], "--drop", help="DOMAIN removed from the data: export the plan without it, the "
                                   "other shares renormalised (as good as a re-sweep on the embedded corpus); repeatable."),
) -> None:
    """Export PLAN to a trainer's mixture format, converting token shares to what its weights mean."""
    stray = inapplicable_options(fmt, {"tokens_per_doc": bool(tokens_per_doc), "total_iterations": total_iterations is not None,
                                       "global_batch_size": global_batch_size is not None, "seq_length": seq_length is not None,
                                       "seed": seed is not None, "stopping_strategy": stopping_strategy is not None,
                                       "local_cache": local_cache is not None})
    if stray:
        raise ExportError(stray)
    check_output(out, "--out", inputs={"plan": plan_path}, folder=None)
    try:
        original = plan = load_plan(plan_path)
        if drop:
            plan = plan.without(drop)
    except ConfigError as exc:
        raise ExportError(f"Cannot export: {exc}") from None
    options = ExportOptions(
        global_batch_size=global_batch_size,
        seq_length=seq_length,
        total_iterations=total_iterations,
        **({"seed": seed} if seed is not None else {}),
        **({"stopping_strategy": stopping_strategy} if stopping_strategy is not None else {}),
        local_cache=local_cache,
    )
    data_paths, counts = parse_pairs(paths, "--paths", "PATH"), parse_counts(tokens_per_doc)
    # the old command's values for a dropped domain (re-run with --drop added): ignored, with a note
    ignored = [f"{option} {d}" for option, given in (("--paths", data_paths), ("--tokens-per-doc", counts))
               for d in sorted(given) if d in drop]
    data_paths = {d: p for d, p in data_paths.items() if d not in drop}
    counts = {d: n for d, n in counts.items() if d not in drop}
    # refuses pool files that changed since the plan was made; one gone from its path is looked for among --paths and
    # beside the plan, else exported unchecked with the plan's counts (a trainer's paths may be tokenized data only)
    pool_files = check_pool_files(plan, str(plan_path), plan_path=plan_path, given=data_paths, gone_ok=True)
    plan = pool_files.plan
    target = f"{out}/" if isinstance(out, _FolderPath) else out  # write_export refuses a folder for a one-file format
    result = write_export(plan, fmt, target, data_paths, counts, options)
    n = len(result.files)
    typer.echo(f"Wrote {fmt} export of {plan_path}" + (f" without {', '.join(sorted(set(drop)))}" if drop else "")
               + f" to {result.out} ({n} file{'s' if n != 1 else ''}).")
    for line in pool_files.notes:
        typer.echo(f"note: {line}", err=True)
    for line in pool_files.unchecked:
        typer.echo(f"warning: {line}", err=True)
    if ignored:
        typer.echo(f"note: ignored {', '.join(ignored)}: --drop removes {'that domain' if len(set(drop)) == 1 else 'those domains'} "
                   "from the export", err=True)
    for line in result.warnings:  # stale phase files; megatron paths that are document files
        typer.echo(f"warning: {line}", err=True)
    if steps := rounding_note(fmt, plan.budget_tokens, options, [p.start_fraction for p in plan.phases]):
        typer.echo(f"warning: {steps}", err=True)
    if plan.pools:  # the formats name one source per domain: the paths must hold the kept pools only
        kept = "; ".join(f"{d}: {', '.join(p)}" for d, p in sorted(plan.pools.items()))
        holder = POOL_PATHS.get(fmt, "a path that holds exactly its kept pools' documents")
        typer.echo(f"note: the plan keeps only these quality pools ({kept}); --paths gives each domain one path, so make "
                   f"each such domain's path {holder}, not the whole domain (the export's notes name the pools' data)",
                   err=True)
    repeated = repeated_more(original.epochs, plan.epochs) if drop else []
    if repeated:  # the kept domains repeat more than before
        typer.echo(f"note: epochs now {', '.join(repeated)} (shares grew without the dropped domain)", err=True)


def parse_counts(items: list[str]) -> dict[str, float]:
    """``--tokens-per-doc DOMAIN=N`` values as numbers > 0."""
    out: dict[str, float] = {}
    for domain, raw in parse_pairs(items, "--tokens-per-doc", "N").items():
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value <= 0:
            raise ExportError(f"--tokens-per-doc needs a number > 0. Got {raw!r} for domain '{domain}'. Pass e.g. --tokens-per-doc {domain}=512.")
        out[domain] = value
    return out
