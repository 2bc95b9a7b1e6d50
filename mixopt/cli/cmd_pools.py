"""`mixopt plan-pools`: how many quality pools to keep at each budget (laws given, or measured by proxy runs)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .. import pipeline
from ..config import load_config, resolve_config
from ..errors import ConfigError
from ..planning.pools import plan_pools, parse_budgets, read_pools_file, sized_pools
from ..planning.quality import declared_laws
from ..repetition import POOL_NORMALIZER
from ..report.plots import plot_frontier
from ..runs.pool_runs import check_repetitions
from .main import app
from .outputs import check_output
from .render import only_with, progress_bars


@app.command("plan-pools")
def plan_pools_cmd(
    pools_yaml: Path = typer.Argument(..., help="POOLS.yaml: objective, a, d, pool_size, pools [{name, b, tau}]; or "
                                      "`mixopt select`'s pools.yaml. A pool without b/tau takes the T-MARS prior of its "
                                      "rank (as propose does); without pool_size the pools are sized from their files "
                                      "(paths relative to the pools file)."),
    budgets: str = typer.Option(..., "--budgets", help="Budgets in samples (the pools file's unit; with --measure a "
                                "sample is the printed tokens per sample), comma-separated, e.g. 32e6,64e6."),
    json_out: bool = typer.Option(False, "--json", help="Print only a JSON list [{budget, best, errors, laws, law_range}] (budget in samples; law_range: a * samples / normalizer >= 1)."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write error-vs-budget PNG here."),
    measure: bool = typer.Option(False, "--measure", help="Measure b and tau of pools without them by short proxy runs "
                                 "(one per pool and repetition count) into --store; T-MARS priors where a fit is unusable."),
    store: Path | None = typer.Option(None, "--store", help="Run store for the --measure runs (a rerun trains only what is missing)."),
    target: str | None = typer.Option(None, "--target", help="--measure: what the pools should be good for: a domain or target set "
                                      "of --config, or a PATH of documents (default: the --target of the `mixopt select` run)."),
    domain: str | None = typer.Option(None, "--domain", help="The domain whose pools to plan, when the file holds several."),
    repetitions: str | None = typer.Option(None, "--repetitions", help="--measure: repetition counts k, at least 4 (a pool's law is fitted on >= 4 "
                                      "runs, >= 2 past one epoch); each pool is trained for k*U tokens (default 1,2,4,8)."),
    unique_tokens: int | None = typer.Option(None, "--unique-tokens", help="--measure: unique tokens U of each pool "
                                             "(default: the smallest pool, at most the proxy's tokens / max k)."),
    config: Path | None = typer.Option(None, "--config", help="--measure: sweep config (a YAML path or a packaged name: demo, tiny) for the proxy, tokenizer, seed and data."),
    text_field: str | None = typer.Option(None, "--text-field", help="--measure: the pool files' text column, for every pool "
                                          "file (default: each pool's text_field in POOLS_YAML, else the `mixopt select` run's "
                                          "--text-field, else text)."),
    target_text_field: str | None = typer.Option(None, "--target-text-field", help="--measure: the --target file's text column "
                                                 "(default: the `mixopt select` run's, else text)."),
) -> None:
    """Predict the error of the top-1, top-2, ... quality pools at each budget and pick the best set."""
    only_with("--measure", measure, store=store is not None, target=target is not None, repetitions=repetitions is not None,
              unique_tokens=unique_tokens is not None, config=config is not None, text_field=text_field is not None,
              target_text_field=target_text_field is not None)
    if plot is not None:
        check_output(plot, "--plot", inputs={"POOLS.yaml": pools_yaml})
        if plot.suffix and plot.suffix.lower() != ".png":
            raise ConfigError(f"--plot {plot}: the frontier is written as a PNG, not {plot.suffix}. Name it .png.")
    budget_list = parse_budgets(budgets)
    name, pools = read_pools_file(pools_yaml, domain)
    resolved = None
    console = Console(stderr=json_out)
    priors = ""
    if not measure:  # laws from the file, else T-MARS priors; sizes from pool_size, else the pool files (as propose)
        resolved = sized_pools(name, pools)
        unmeasured = [n for n, v in declared_laws(name, pools).items() if v["law_source"] == "prior"]
        sized = (f"; the pools are sized from their files, a sample is {resolved[0].tokens_per_sample:.4g} tokens"
                 if resolved else "")
        priors = (f"note: b/tau of {', '.join(unmeasured)} are T-MARS priors, not measured (Goyal et al.'s image-text "
                  f"buckets, by rank: what `propose --pools` plans with){sized}; --measure --store DIR fits them on "
                  "proxy runs of your text") if unmeasured else ""
    if measure:
        if store is None:
            raise ConfigError("--measure trains proxy runs and needs a run store for them. Pass --store DIR.")
        reps = check_repetitions(repetitions or "1,2,4,8", fit_option="--repetitions")
        target, target_text, pool_text = pipeline.measure_targets(pools_yaml, target, text_field, target_text_field)
        cfg = load_config(resolve_config(config)) if config is not None else None
        if text_field is not None:  # the option names the column of every pool file, over the file's own text_field
            pools = pools.model_copy(update={"pools": [p.model_copy(update={"text_field": text_field}) if p.path is not None
                                                       else p for p in pools.pools]})
        with progress_bars(console) as progress:
            m = pipeline.measure_pool_file(
                name, pools, store, target=target, config=cfg, repetitions=reps, unique_tokens=unique_tokens, progress=progress,
                text_field=target_text, pool_text_field=pool_text)
        pools, resolved = m.pools, m.resolved
        if m.runs is not None:
            console.print(f"pool runs: {m.runs.trained} trained, {m.runs.skipped} already in {store}, {len(m.runs.failed)} failed; "
                          f"U={m.runs.unique_tokens} tokens, k={list(m.runs.repetitions)}, target '{m.runs.target}'; "
                          f"shared law a={pools.a:.4g}, d={pools.d:.4g} ({m.law_fit}); a sample is "
                          f"{pools.tokens_per_sample:.4g} tokens", soft_wrap=True, markup=False)
            dropped = {k: v for k, v in m.runs.excluded.items() if v}
            if dropped:
                console.print(f"not trained on (the target holds them): {dropped} documents", soft_wrap=True, markup=False)
    results = plan_pools(pools, budget_list, resolved=resolved)
    written = plot_frontier(results, plot) if plot is not None else None
    norm = pools.normalizer or POOL_NORMALIZER
    inverted = [b for b in budget_list if pools.a * b / norm < 1]
    note = (f"note: at {', '.join(f'{b:.4g}' for b in inverted)} samples a * samples / {norm:g} < 1 (a = {pools.a:g}), "
            "below the range the law holds in: there it favours weaker pools, so its best set means little (`propose` "
            "keeps the fewest best pools that hold the budget without repetition there); measure the laws (--measure) "
            "or set normalizer with laws fitted at that scale") if inverted else ""

    if json_out:
        for line in (priors, note):
            if line:
                console.print(line, soft_wrap=True, markup=False)  # stderr: stdout holds only the JSON
        typer.echo(json.dumps(results))
        return

    laws = results[0]["laws"]
    law = Table(title=f"pool laws ({name})")
    for col in ("pool", "b", "tau", "source", "why"):
        law.add_column(col, justify="right" if col in ("b", "tau") else "left")
    reasons = {p.name: p.law_reason for p in resolved or []}
    for pool, v in laws.items():
        why = reasons.get(pool) or ("T-MARS prior: not measured" if v["law_source"] == "prior" else "")
        law.add_row(pool, f"{v['b']:.4g}", f"{v['tau']:.4g}", v["law_source"], why)
    console.print(law)
    ranked = list(laws)
    for r in results:
        best_k = len(r["best"])
        table = Table(title=f"budget {r['budget']:.4g} samples ({pools.objective})")
        table.add_column("set")
        table.add_column("pool added")
        rate = all(0.0 <= y <= 1.0 for y in r["errors"])  # an error rate (T-MARS's laws); a measured loss is in nats
        table.add_column("error y" if rate else "loss y", justify="right")
        if rate:
            table.add_column("1 - y", justify="right")
        table.add_column("best", justify="center")
        for m, y in enumerate(r["errors"], start=1):
            mark = "*" if m == best_k else ""
            table.add_row(f"top-{m}", ranked[m - 1], f"{y:.4f}", *([f"{100 * (1 - y):.2f}%"] if rate else []), mark)
        console.print(table)
        console.print(f"best: {', '.join(r['best'])}")
    for line in (priors, note):
        if line:
            console.print(line, soft_wrap=True, markup=False)
    if written is not None:
        console.print(f"plot written to {written}")
