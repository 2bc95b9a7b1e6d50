"""`mixopt score`: rank candidate data pools against a target with optimal transport."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .. import pipeline
from ..data.tokenize import Tokenizer
from ..errors import ConfigError
from ..projector.scoring import score_pools
from ..selection.overlap import all_text_keys
from ..selection.read import read_sample, source_spec
from .render import parse_pairs
from .main import app


@app.command("score")
def score_cmd(
    pool: list[str] = typer.Option(..., "--pool", help="NAME=PATH of a candidate pool (any format the data layer reads); repeat."),
    target: str = typer.Option(..., "--target", help="PATH of documents that represent the target."),
    base_mixture: Path | None = typer.Option(None, "--base-mixture", help="PLAN.yaml whose mixture the pool would join."),
    paths: list[str] = typer.Option([], "--paths", help="DOMAIN=PATH for base-mixture domains not in the embedded corpus "
                                    "(read with --text-field)."),
    config: str | None = typer.Option(None, "--config", help="The sweep config (a YAML path or a packaged name) the "
                                      "base mixture's plan was made with: its domains are read as the sweep read them "
                                      "(path, format, text_field); --paths overrides a domain."),
    budget_tokens: float | None = typer.Option(None, "--budget-tokens", help="Training tokens of the target run: adds each pool's epochs at its best weight."),
    pool_docs: list[str] = typer.Option([], "--pool-docs", help="NAME=N: documents in the full pool, to scale the unique-token "
                                        "estimate (default: the records the file holds; give N where the file is itself a sample)."),
    max_docs: int = typer.Option(400, "--max-docs", min=2, help="Documents sampled per pool / target / base domain: a "
                                 "uniform sample of the whole file (seeded by --seed), so a file sorted by topic counts whole."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the --max-docs samples."),
    text_field: str = typer.Option("text", "--text-field", help="Field that holds the text in the pools, the target and --paths data."),
    method: str = typer.Option("emd", "--method", help="emd (exact) or sinkhorn (entropic)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list of {pool, ot_distance, ...} instead of a table."),
) -> None:
    """OT distance of each pool to the target, its best weight in the base mixture, and its unique tokens."""
    if method not in ("emd", "sinkhorn"):
        raise ConfigError(f"--method must be emd or sinkhorn. Got '{method}'.")
    if budget_tokens is not None and not budget_tokens > 0:
        raise ConfigError(f"--budget-tokens must be > 0. Got {budget_tokens:g}. Pass e.g. --budget-tokens 1e9.")
    pool_paths = parse_pairs(pool, "--pool", "PATH")
    samples = {name: read_sample(source_spec(name, p, option="--pool", text_field=text_field), option="--pool",
                                 max_documents=max_docs, seed=seed)
               for name, p in pool_paths.items()}
    docs = {name: s.texts for name, s in samples.items()}
    target_sample = read_sample(source_spec("target", target, option="--target", text_field=text_field), option="--target",
                                max_documents=max_docs, seed=seed)
    target_docs = target_sample.texts
    # the target's documents in a pool, and pools that share documents, are looked for in the whole pools (as select)
    keys = {name: all_text_keys(source_spec(name, pool_paths[name], option="--pool", text_field=text_field),
                                option="--pool") for name, s in samples.items() if s.sampled}
    # the unique-token estimate stands for the whole pool: a sample's tokens are scaled by the records the file holds
    counts: dict[str, float] = {name: s.documents_estimate for name, s in samples.items() if s.sampled}
    declared = set()
    for name, raw in parse_pairs(pool_docs, "--pool-docs", "N").items():
        if name not in pool_paths:
            raise ConfigError(f"--pool-docs names '{name}', which is not a --pool. Use one of {sorted(pool_paths)}.")
        try:
            counts[name] = int(float(raw))
        except (ValueError, OverflowError):
            raise ConfigError(f"--pool-docs needs NAME=N with a whole number N. Got {name}={raw}.") from None
        if counts[name] < 1:
            raise ConfigError(f"--pool-docs {name}={raw}: the full pool holds at least one document. Pass its document count.")
        declared.add(name)
    extra = parse_pairs(paths, "--paths", "PATH")
    base_w, base_docs = pipeline.base_mixture_docs(base_mixture, extra, config, text_field=text_field, max_docs=max_docs,
                                                   seed=seed, note=lambda line: typer.echo(line, err=True))
    tok = Tokenizer("bytes")
    rows = score_pools(docs, target_docs, base_docs=base_docs, base_mixture=base_w, budget_tokens=budget_tokens,
                       tokens_of=tok.count, pool_doc_counts=counts or None, method=method, pool_keys=keys,
                       target_read=" read" if target_sample.sampled else "")
    for r in rows:
        r["unique_tokens_basis"] = _basis(samples[r["pool"]], r["pool"] in declared, r["n_docs_pool"])
    if json_out:
        typer.echo(json.dumps(rows, indent=1))
        return
    Console().print(score_table(rows, target, budget_tokens))


def score_table(rows: list[dict], target: str, budget_tokens: float | None) -> Table:
    """The ranking as a table that fits 80 columns; the caption explains the short headers."""
    at_w = "OT at w" if rows and rows[0]["projected_by"] == "ot" else "pred. at w"
    cols = ["pool", "OT dist", "best w", at_w, "tokens", "docs"] + (["epochs"] if budget_tokens is not None else [])
    table = Table(title=f"pools ranked against {target} (lower is better)",
                  caption=(f"OT dist: OT distance of the pool alone to the target. best w: the pool's weight in the base "
                           f"mixture that minimises {'the OT distance of the blend' if at_w == 'OT at w' else 'the predicted loss'}"
                           f" ({at_w}). tokens: the pool's unique tokens, counted over the documents read and, where "
                           "those are a sample (docs: sampled/in the pool), scaled to the pool's documents."
                           + (f" epochs: repetitions of the pool at w x {budget_tokens:g} tokens." if budget_tokens else "")))
    for col in cols:
        table.add_column(col, justify="left" if col == "pool" else "right", no_wrap=col != "pool", overflow="fold")
    for r in rows:
        cells = [r["pool"], f"{r['ot_distance']:.4f}", f"{r['best_weight']:.3f}", f"{r['projected_metric']:.4f}",
                 _short(r["unique_tokens_estimate"]), _docs(r)]
        if budget_tokens is not None:
            cells.append(f"{r['epochs_at_budget']:.3g}" if r["epochs_at_budget"] is not None else "-")
        table.add_row(*cells)
    return table


def _basis(sample, declared: bool, n_pool: float) -> str:
    """How a pool's unique-token estimate was made (JSON: ``unique_tokens_basis``)."""
    n = len(sample.texts)
    if declared:
        return f"estimate: the tokens of {n} sampled documents scaled to --pool-docs {n_pool:g}"
    if sample.sampled:
        return (f"estimate: the tokens of {n} sampled documents ({sample.n_read} of the file's {sample.n_records} records) "
                f"scaled to {n_pool:.6g} documents")
    return f"counted over all {n} documents"


def _docs(row: dict) -> str:
    """The docs cell: documents read, and the pool's documents when they were a sample of it."""
    n, pool = row["n_docs_sampled"], row["n_docs_pool"]
    return str(n) if round(pool) == n else f"{n}/{_short(pool)}"


def _short(n: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}"
