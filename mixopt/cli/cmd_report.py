"""`mixopt report`: a static HTML page with PNG figures of a store, a plan, a frontier and a verification."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import ConfigError
from ..report import build_report
from .main import app


@app.command("report")
def report_cmd(
    out: Path = typer.Option(..., "--out", help="Output directory for index.html and its PNGs."),
    store: Path | None = typer.Option(None, "--store", help="Run-store directory (sweep results)."),
    plan: Path | None = typer.Option(None, "--plan", help="PLAN.yaml from `mixopt propose`."),
    model: Path | None = typer.Option(None, "--model", help="Fitted surrogate to compare against the store's runs; its checks (seed noise, level backtest, warnings) get a section."),
    frontier: Path | None = typer.Option(None, "--frontier", help="FRONTIER.json from `mixopt plan-pools --json`."),
    verification: Path | None = typer.Option(None, "--verify", help="VERIFY.json from `mixopt verify`: bars with intervals next to the prediction."),
    target: str | None = typer.Option(None, "--target", help="Metric to rank runs by, e.g. val/code or mean:all-domains "
                                      "(default: the model's target, else the plan's metric, else mean:all-domains)."),
    title: str = typer.Option("mixopt report", "--title", help="Page title."),
) -> None:
    """Write a self-contained HTML report, figures embedded (needs --store and/or --plan), and print its path."""
    if store is None and plan is None:
        raise ConfigError("mixopt report needs at least one of --store or --plan; got neither. "
                          "Pass a run-store directory (--store DIR) and/or a plan file (--plan PLAN.yaml).")
    rows = (_read_json(frontier, "Frontier", f"mixopt plan-pools POOLS.yaml --budgets ... --json > {frontier}")
            if frontier is not None else None)
    body = (_read_json(verification, "Verification", f"mixopt verify PLAN.yaml --store DIR --out {verification}")
            if verification is not None else None)
    page = build_report(out, store=store, plan=plan, model=model, target=target, frontier=rows, title=title, verification=body)
    typer.echo(str(page))


def _read_json(path: Path, what: str, how: str):
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist. Write one with `{how}`.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {path} is not valid JSON ({' '.join(str(exc).split())}). Regenerate it with `{how}`.") from None
