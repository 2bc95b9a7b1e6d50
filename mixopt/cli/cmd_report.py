"""`mixopt report`: a static HTML page with PNG figures of a store, a plan, a frontier and a verification."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import ConfigError
from ..report import build_report
from .outputs import check_output
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
    check_output(out, "--out", folder=True, inputs={"--store folder": store, "--plan file": plan, "--model file": model})
    rows = (_read_json(frontier, "Frontier", "mixopt plan-pools POOLS.yaml --budgets ... --json > FRONTIER.json")
            if frontier is not None else None)
    body = (_read_json(verification, "Verification", "mixopt verify PLAN.yaml --store DIR --out VERIFY.json")
            if verification is not None else None)
    if body is not None:
        check_verification(body, verification)
    page = build_report(out, store=store, plan=plan, model=model, target=target, frontier=rows, title=title, verification=body)
    typer.echo(str(page))


def check_verification(body, path: Path) -> None:
    """VERIFY.json has what the report draws: a target, the arms' results and the comparisons."""
    ok = (isinstance(body, dict) and isinstance(body.get("target"), str) and isinstance(body.get("scale"), dict)
          and isinstance(body.get("results"), list) and body["results"]
          and all(isinstance(r, dict) and {"name", "mean", "values"} <= set(r) for r in body["results"])
          and isinstance(body.get("comparisons"), list)
          and all(isinstance(c, dict) and {"against", "diff", "ci95", "plan_worse"} <= set(c) for c in body["comparisons"]))
    if not ok:
        raise ConfigError(f"Verification file {path} is not a VERIFY.json of `mixopt verify` (it needs target, scale, results "
                          "and comparisons). Pass the file verify wrote (`mixopt verify PLAN.yaml --store DIR --out VERIFY.json`).")


def _read_json(path: Path, what: str, how: str):
    if path.is_dir():
        raise ConfigError(f"{what} file {path} is a folder, not a file. Pass the JSON file (`{how}` writes one).")
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist. Write one with `{how}`.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {path} is not valid JSON ({' '.join(str(exc).split())}). Regenerate it with `{how}`.") from None
