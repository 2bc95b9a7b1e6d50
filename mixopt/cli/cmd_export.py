"""`mixopt export`: write a plan in a trainer's format, whole or not at all."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ..errors import ConfigError, ExportError
from .main import app

_FORMATS_HELP = (
    "megatron (dir), olmo-core (dir), nanotron (file), litdata (file), "
    "mosaic-streaming (dir), hf-datasets (dir), json (file)"
)


@app.command("export")
def export_cmd(
    plan_path: Path = typer.Argument(..., help="plan.yaml written by `mixopt propose`."),
    fmt: str = typer.Option(..., "--format", "-f", help=f"Output format: {_FORMATS_HELP}."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (single-file formats) or directory (multi-file formats)."),
    paths: list[str] = typer.Option([], "--paths", "-p", help="DOMAIN=PATH data location for a domain; repeat for each domain."),
    tokens_per_doc: list[str] = typer.Option(
        [], "--tokens-per-doc", help="DOMAIN=N mean tokens per document; overrides the plan (document-weighted formats)."
    ),
    total_iterations: int | None = typer.Option(
        None, help="Training steps in all; default ceil(budget_tokens / (global_batch_size * seq_length))."
    ),
    global_batch_size: int | None = typer.Option(None, help="Sequences per step for megatron/nanotron step numbers (default 512)."),
    seq_length: int | None = typer.Option(None, help="Tokens per sequence for megatron/nanotron step numbers (default 4096)."),
    seed: int = typer.Option(42, help="Sampling seed written into formats that take one."),
    stopping_strategy: str = typer.Option("all_exhausted", help="hf-datasets: all_exhausted or first_exhausted."),
) -> None:
    """Export PLAN to a trainer's mixture format, converting token shares to what its weights mean."""
    from ..export import ExportOptions, export_plan, get_exporter
    from ..plan import load_plan

    exporter = get_exporter(fmt)
    try:
        plan = load_plan(plan_path)
    except ConfigError as exc:
        raise ExportError(f"Cannot export: {exc}") from None
    options = ExportOptions(
        global_batch_size=global_batch_size,
        seq_length=seq_length,
        total_iterations=total_iterations,
        seed=seed,
        stopping_strategy=stopping_strategy,
    )
    files = export_plan(plan, fmt, parse_pairs(paths, "--paths", "PATH"), _parse_counts(tokens_per_doc), options)
    targets = _targets(files, out, exporter.multi_file)
    write_all(targets)
    where = out if exporter.multi_file else targets[0][0]
    typer.echo(f"Wrote {fmt} export of {plan_path} to {where} ({len(targets)} file{'s' if len(targets) != 1 else ''}).")
    if exporter.multi_file:  # a plan with fewer phases than an earlier export leaves that export's later phases behind
        written = {p.resolve() for p, _ in targets}
        stale = sorted(f.name for f in out.glob("phase_*") if f.resolve() not in written)
        if stale:
            typer.echo(f"warning: {out} also holds {', '.join(stale)} from an earlier export; delete them so no trainer reads them.",
                       err=True)


def parse_pairs(items: list[str], option: str, what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}`` with one-line errors."""
    out: dict[str, str] = {}
    for item in items:
        domain, sep, value = item.partition("=")
        domain, value = domain.strip(), value.strip()
        if not sep or not domain or not value:
            raise ExportError(f"{option} takes DOMAIN={what}. Got {item!r}. Write it as e.g. {option} code={_example(what)}.")
        if domain in out:
            raise ExportError(f"{option} may name each domain once. Got '{domain}' twice ({out[domain]!r} and {value!r}). Keep one.")
        out[domain] = value
    return out


def _parse_counts(items: list[str]) -> dict[str, float]:
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


def _example(what: str) -> str:
    return "512" if what == "N" else "/data/code"


def _targets(files: dict[str, str], out: Path, multi_file: bool) -> list[tuple[Path, str]]:
    if multi_file:
        if out.exists() and not out.is_dir():
            raise ExportError(f"--out must be a directory for this format. Got the existing file {out}. Pass a directory path.")
        return [(out / name, text) for name, text in files.items()]
    if out.is_dir():
        raise ExportError(f"--out must be a file path for this format. Got the directory {out}. Pass e.g. {out / next(iter(files))}.")
    (text,) = files.values()
    return [(out, text)]


def write_all(targets: list[tuple[Path, str]]) -> None:
    """Write each file atomically; if one write fails, remove the ones this call wrote."""
    from ..io import atomic_write_text

    done: list[Path] = []
    try:
        for path, text in targets:
            atomic_write_text(path, text)
            done.append(path)
    except BaseException:
        for path in done:
            path.unlink(missing_ok=True)
        raise
