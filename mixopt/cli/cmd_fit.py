"""`mixopt fit` and `mixopt predict`: a surrogate from a run store, and its predictions."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .. import pipeline
from ..errors import ConfigError
from ..io import atomic_write_text
from ..pipeline import PLOT_SUFFIXES
from ..runs.tables_io import read_mixtures_for_model
from .main import app
from .outputs import check_output
from .render import progress_bars


@app.command("fit")
def fit_cmd(
    store: Path = typer.Option(..., "--store", help="Run-store directory."),
    target: str = typer.Option("mean:all-domains", "--target", help="Metric column, or mean:all-domains / mean:a,b / wmean:a=0.7,b=0.3."),
    model: str = typer.Option("default", "--model", help="Estimator: default, regmix-lightgbm, linear, mixing-law, ...; on a store with several scales: default (scale-gp; shift-gp with --budgets on one size), scale-gp, shift-gp, nested-law, annealing-law."),
    out: Path = typer.Option(..., "--out", help="Where to save the fitted model (folders are created)."),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds for the report."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed for folds and the estimator (default: the store's "
                                    "sweep seed, as `propose` without --model fits; 0 for a store without a config, "
                                    "e.g. imported runs, where `propose CONFIG` fits with CONFIG's seed: pass it here "
                                    "to plan alike)."),
    plot: Path | None = typer.Option(None, "--plot", help="Predicted-vs-actual PNG (default: MODEL with .png)."),
    budgets: bool = typer.Option(False, "--budgets", help="Fit every token budget the runs measured (WSD decay branches), not only their ends: "
                                 "one proxy size then predicts the level at a larger budget (the plan's), but ranks mixtures worse."),
) -> None:
    """Cross-validate a surrogate on the store's runs, fit it on all of them, and save it."""
    check_output(out, "--out", inputs={"run store": store})
    if plot is not None:
        check_output(plot, "--plot", inputs={"run store": store, "--out model": out})
        if plot.suffix and plot.suffix.lower() not in PLOT_SUFFIXES:
            raise ConfigError(f"--plot {plot}: a figure is written as {', '.join(PLOT_SUFFIXES)}, not {plot.suffix}. "
                              "Change the suffix (none gives .png).")
    plot_path = pipeline.plot_path_for(out, plot)  # the default too: MODEL with .png, which for --out m.png is the model
    if plot is None and plot_path.resolve() == out.resolve():
        raise ConfigError(f"--out {out}: the predicted-vs-actual plot goes to MODEL with .png, the same file, so the plot "
                          f"would overwrite the model. Save the model as {out.with_suffix('.pkl')}, or pass --plot PATH.")
    check_output(plot_path, "--plot" if plot is not None else "The plot (MODEL with .png)",
                 inputs={"run store": store, "--out model": out})
    snapshot = pipeline.open_store(store)
    if seed is None:  # the sweep's seed, so `fit` then `propose --model` plans as one-step `propose` does
        seed = int((snapshot.meta.get("config") or {}).get("seed") or 0)
    with progress_bars(Console(stderr=True)) as progress:  # bars on a terminal only (a log or a pipe gets none)
        fitted = pipeline.fit(snapshot, target, model, folds=folds, seed=seed, budgets=budgets, progress=progress)
    model_path, plot_path = pipeline.save_fitted(fitted, out, plot=plot)
    cv = fitted.meta["cv"]
    if fitted.meta["scale_aware"]:
        n, d = cv["largest_scale"]
        title = (f"{fitted.estimator.__class__.__name__} over {len(fitted.meta['scales'])} scales: {cv['k']}-fold CV with the largest "
                 f"scale ({n:.3g} params, {d:.3g} tokens) held out, {len(cv['y_true'])} of {fitted.meta['n_rows']} rows ({fitted.meta['n_runs']} runs), target {target}, seed {seed}")
    else:
        title = f"{model}: {cv['k']}-fold cross-validation on {fitted.meta['n_runs']} runs, target {target}, seed {seed}"
    table = Table(title=title)
    for col in ("spearman", "pearson", "mae", "regret@1", "within ±1σ", "within ±2σ"):
        table.add_column(col, justify="right")
    table.add_row(*(f"{cv[k]:.4f}" if isinstance(cv.get(k), (int, float)) else "-"
                    for k in ("spearman", "pearson", "mae", "regret_at_1", "within_1sd", "within_2sd")))
    console = Console()
    console.print(table)
    for line in pipeline.model_lines(fitted.meta):
        console.print(f"[yellow]{line}[/]" if line.startswith("warning:") else line)
    console.print(f"model -> {model_path}; predicted-vs-actual plot -> {plot_path}")


@app.command("predict")
def predict_cmd(
    model: Path = typer.Option(..., "--model", help="A model saved by `mixopt fit`."),
    mixtures: Path = typer.Option(..., "--mixtures", help="CSV: `index` + one weight column per domain of the model."),
    model_params: float | None = typer.Option(None, "--model-params", help="Target model size N (non-embedding params; "
                                              "default: the largest trained); scale-aware models only."),
    tokens: float | None = typer.Option(None, "--tokens", help="Target training tokens D (default: the largest trained "
                                        "scale's); scale-aware models only."),
    out: Path = typer.Option(..., "--out", help="CSV to write: index, prediction, std."),
) -> None:
    """Predict the target metric of each mixture in a CSV (at a target scale for a model fitted on several)."""
    check_output(out, "--out", inputs={"--mixtures CSV": mixtures, "--model file": model})
    fitted = pipeline.open_model(model)
    at = ""
    if fitted.meta.get("scale_aware"):  # never the smallest proxy by default: propose's default scale, said
        asked = (model_params, tokens)
        model_params, tokens = pipeline.default_scale(fitted, model_params, tokens)
        at = (f" at {model_params:.3g} parameters x {tokens:.3g} tokens"
              + (" (the largest trained scale: pass --model-params/--tokens for yours)" if asked == (None, None) else
                 " (the largest trained scale's for what --model-params/--tokens left out)" if None in asked else ""))
    predictor = pipeline.at_scale(fitted, model_params, tokens)
    indices, W = read_mixtures_for_model(mixtures, fitted.domains)
    mean, std = predictor.predict(W, return_std=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["index", "prediction", "std"])
    for i, m, s in zip(indices, mean, std):
        w.writerow([i, repr(float(m)), repr(float(s))])
    atomic_write_text(out, buf.getvalue())
    Console().print(f"{len(indices)} predictions of {fitted.target}{at} -> {out}", soft_wrap=True, markup=False)
    notes = list(fitted.meta.get("notes") or [])
    if fitted.meta.get("scale_aware") and (far := pipeline.extrapolation_note(fitted.meta.get("scales") or [], model_params, tokens)):
        notes.append(far)
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
