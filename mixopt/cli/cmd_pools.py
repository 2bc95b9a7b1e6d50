"""`mixopt plan-pools`: how many quality pools to keep at each budget."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..planning.pools import law_pools, load_pools, parse_budgets, plan_pools
from ..report.plots import plot_frontier
from .main import app


@app.command("plan-pools")
def plan_pools_cmd(
    pools_yaml: Path = typer.Argument(..., help="POOLS.yaml: objective, a, d, pool_size, pools [{name, b, tau}]."),
    budgets: str = typer.Option(..., "--budgets", help="comma-separated, e.g. 32e6,64e6"),
    json_out: bool = typer.Option(False, "--json", help="Print only a JSON list [{budget, best, errors}]."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write error-vs-budget PNG here."),
) -> None:
    """Predict the error of the top-1, top-2, ... quality pools at each budget and pick the best set."""
    budget_list = parse_budgets(budgets)
    config = load_pools(pools_yaml)
    results = plan_pools(config, budget_list)
    written = plot_frontier(results, plot) if plot is not None else None

    if json_out:
        typer.echo(json.dumps(results))
        return

    console = Console()
    ranked = [p.name for p in law_pools(config)]
    for r in results:
        best_k = len(r["best"])
        table = Table(title=f"budget {r['budget']:.4g} samples ({config.objective})")
        table.add_column("set")
        table.add_column("pool added")
        table.add_column("error y", justify="right")
        table.add_column("1 - y", justify="right")
        table.add_column("best", justify="center")
        for m, y in enumerate(r["errors"], start=1):
            mark = "*" if m == best_k else ""
            table.add_row(f"top-{m}", ranked[m - 1], f"{y:.4f}", f"{100 * (1 - y):.2f}%", mark)
        console.print(table)
        console.print(f"best: {', '.join(r['best'])}")
    if written is not None:
        console.print(f"plot written to {written}")
