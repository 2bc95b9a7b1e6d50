"""`mixopt report`: a static HTML page with PNG figures of a store, a plan, a frontier and a verification."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from ..errors import ConfigError
from ..report import build_report
from .outputs import check_output
from .main import app


@app.command("report")
def report_cmd(
    out: Path = typer.Option(..., "--out", help="Output directory for index.html and its PNGs; refused when it holds "
                      "files of those names that no report wrote."),
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
    page = build_report(out, store=store, plan=plan, model=model, target=target, frontier=rows, title=title, verification=body,
                        note=lambda line: typer.echo(line, err=True))
    typer.echo(str(page))


def check_verification(body, path: Path) -> None:
    """VERIFY.json has what the report draws: a target, the scale, the seeds, the arms' results and the comparisons."""
    problem = verification_problem(body)
    if problem:
        raise ConfigError(f"Verification file {path} is not a VERIFY.json of `mixopt verify`: {problem}. Pass the file verify "
                          "wrote (`mixopt verify PLAN.yaml --store DIR --out VERIFY.json`).")


def _num(x) -> bool:
    """A finite JSON number (Python's json reads NaN and Infinity too; a report drawn from them would mean nothing)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def verification_problem(body) -> str:
    """What VERIFY.json lacks that the report reads (empty when nothing)."""
    if not isinstance(body, dict):
        return f"it holds a JSON {type(body).__name__}, not an object"
    if not isinstance(body.get("target"), str):
        return "it has no target name"
    sc = body.get("scale")
    if not isinstance(sc, dict) or not all(_num(sc.get(k)) for k in ("model_params", "tokens")):
        return "its scale needs finite numeric model_params and tokens"
    if not isinstance(body.get("seeds"), list) or not body["seeds"]:
        return "it needs a non-empty seeds list"
    results = body.get("results")
    if not isinstance(results, list) or not results:
        return "it needs a non-empty results list"
    for k, r in enumerate(results):
        if not (isinstance(r, dict) and isinstance(r.get("name"), str) and _num(r.get("mean"))
                and isinstance(r.get("values"), list) and all(_num(v) for v in r["values"])):
            return f"results entry {k} needs a name, a finite numeric mean and a list of finite numeric values"
    comparisons = body.get("comparisons")
    if not isinstance(comparisons, list):
        return "it needs a comparisons list"
    for k, c in enumerate(comparisons):
        if not (isinstance(c, dict) and isinstance(c.get("against"), str) and _num(c.get("diff"))
                and (c.get("ci95") is None  # one seed: no interval
                     or isinstance(c.get("ci95"), list) and len(c["ci95"]) == 2 and all(_num(v) for v in c["ci95"]))
                and isinstance(c.get("plan_worse"), bool) and isinstance(c.get("plan_better"), bool)):
            return f"comparisons entry {k} needs against, a finite numeric diff, a two-number finite ci95 (null with one seed), plan_better and plan_worse"
    pred = body.get("predicted")
    if pred is not None and not (isinstance(pred, dict) and (pred.get("value") is None or _num(pred["value"]))
                                 and (pred.get("std") is None or (_num(pred["std"]) and pred["std"] >= 0))):
        return "its predicted needs a finite numeric value (and a finite std >= 0)"
    return ""


def _read_json(path: Path, what: str, how: str):
    if path.is_dir():
        raise ConfigError(f"{what} file {path} is a folder, not a file. Pass the JSON file (`{how}` writes one).")
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist. Write one with `{how}`.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {path} is not valid JSON ({' '.join(str(exc).split())}). Regenerate it with `{how}`.") from None
