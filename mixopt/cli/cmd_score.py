"""`mixopt score`: rank candidate data pools against a target with optimal transport."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .main import app


@app.command("score")
def score_cmd(
    pool: list[str] = typer.Option(..., "--pool", help="NAME=PATH of a candidate pool (any format the data layer reads); repeat."),
    target: str = typer.Option(..., "--target", help="PATH of documents that represent the target."),
    base_mixture: Path | None = typer.Option(None, "--base-mixture", help="PLAN.yaml whose mixture the pool would join."),
    paths: list[str] = typer.Option([], "--paths", help="DOMAIN=PATH for base-mixture domains not in the embedded corpus."),
    budget_tokens: float | None = typer.Option(None, "--budget-tokens", help="Target budget, for the projected metric."),
    pool_docs: list[str] = typer.Option([], "--pool-docs", help="NAME=N: documents in the full pool, to scale the unique-token estimate."),
    max_docs: int = typer.Option(400, "--max-docs", min=2, help="Documents sampled per pool / target / base domain."),
    method: str = typer.Option("emd", "--method", help="emd (exact) or sinkhorn (entropic)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list of {pool, ot_distance, ...} instead of a table."),
) -> None:
    """OT distance of each pool to the target, its best weight in the base mixture, and its unique tokens."""
    from ..config import DomainSpec
    from ..data.embedded import embedded_domains, embedded_path
    from ..data.sources import load_documents
    from ..data.tokenize import Tokenizer
    from ..errors import ConfigError
    from ..plan import load_plan
    from ..projector.scoring import score_pools
    from .cmd_export import parse_pairs

    if method not in ("emd", "sinkhorn"):
        raise ConfigError(f"--method must be emd or sinkhorn. Got '{method}'.")
    pool_paths = parse_pairs(pool, "--pool", "PATH")
    docs = {name: load_documents(DomainSpec(name=name, path=p), max_docs) for name, p in pool_paths.items()}
    target_docs = load_documents(DomainSpec(name="target", path=target), max_docs)
    counts = {}
    for name, raw in parse_pairs(pool_docs, "--pool-docs", "N").items():
        if name not in pool_paths:
            raise ConfigError(f"--pool-docs names '{name}', which is not a --pool. Use one of {sorted(pool_paths)}.")
        try:
            counts[name] = int(float(raw))
        except ValueError:
            raise ConfigError(f"--pool-docs needs NAME=N with a whole number N. Got {name}={raw}.") from None
    base_docs = base_w = None
    if base_mixture is not None:
        base_w = load_plan(base_mixture).overall_weights()
        extra = parse_pairs(paths, "--paths", "PATH")
        known = set(embedded_domains())
        missing = sorted(d for d in base_w if d not in extra and d not in known)
        if missing:
            raise ConfigError(f"Base-mixture domains {missing} are not in the embedded corpus. Give their data with --paths DOMAIN=PATH.")
        base_docs = {d: load_documents(DomainSpec(name=d, path=extra.get(d) or str(embedded_path(d))), max_docs) for d in base_w}
    tok = Tokenizer("bytes")
    rows = score_pools(docs, target_docs, base_docs=base_docs, base_mixture=base_w, budget_tokens=budget_tokens,
                       tokens_of=tok.count, pool_doc_counts=counts or None, method=method)
    if json_out:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"pools ranked against {target} (lower is better)")
    for col in ("pool", "ot_distance", "best_weight", "projected_metric", "by", "unique_tokens_estimate", "docs sampled"):
        table.add_column(col, justify="left" if col in ("pool", "by") else "right")
    for r in rows:
        table.add_row(r["pool"], f"{r['ot_distance']:.4f}", f"{r['best_weight']:.3f}", f"{r['projected_metric']:.4f}",
                      r["projected_by"], f"{r['unique_tokens_estimate']:,.0f}", str(r["n_docs_sampled"]))
    Console().print(table)
