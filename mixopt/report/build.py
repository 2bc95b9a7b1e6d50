"""Gather a store, a plan, a model and a frontier into one static report folder.

Each figure appears only when its inputs exist; the page lists what was absent
and why, so a thin report explains itself. Images are written first and the
page last, so a crash never leaves an ``index.html`` without its figures.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..io import atomic_write_text, not_written_by, record_written, refuse_foreign
from ..plan import Plan
from ..runs.record import RunRecord
from ..runs.targets import mean_columns, short_names
from ..surrogates.checks import model_lines
from .. import __version__
from . import fmt, plots
from .answer import answer
from .html import FigureEntry, render_page
from .tables import across_scales
from .inputs import (
    ModelView,
    StoreView,
    agreement_input,
    as_plan,
    cv_input,
    frontier_input,
    model_predictions,
    predictors,
    predictors_by_scale,
    read_model,
    read_store,
    resolve_target,
)
from .reconcile import measured_vs_predicted

MAX_CURVES = 6
PAGE = "index.html"
#: Every file a report may write into its folder (the page and each figure `build_report` can draw): a file of these
#: names there that no earlier report wrote (per the folder's `.mixopt-report.json`) is refused, not replaced.
REPORT_FILES = (PAGE, "mixture.png", "pred_vs_actual_cv.png", "pred_vs_actual_model.png", "loss_matrix.png", "curves.png",
                "frontier.png", "agreement.png", "agreement_scatter.png", "verification.png")


def foreign_report_files(out_dir: str | Path) -> list[str]:
    """Files in ``out_dir`` that a report there would replace but no earlier report wrote (a user's own index.html)."""
    return not_written_by(out_dir, "report", REPORT_FILES)


def build_report(out_dir: str | Path, *, store: Any = None, plan: str | Path | Plan | None = None,
                 model: Any = None, target: str | None = None,
                 frontier: list[dict] | None = None, cv_predictions: Any = None, title: str = "mixopt report",
                 verification: dict | None = None) -> Path:
    """Write ``out_dir/index.html`` (figures embedded) and its PNGs; returns the page's path.

    ``store`` is a run-store path or a snapshot already read; ``model`` a path saved by
    ``mixopt fit``, a fitted-model object (``estimator``, ``meta``) or ``(estimator, meta)``.
    ``target`` defaults to the model's, else the plan's metric, else ``mean:all-domains``.
    ``cv_predictions`` is ``(y_true, y_pred[, y_std])`` or a dict with those keys.
    ``frontier`` is the JSON output of ``mixopt plan-pools --json``; ``verification`` the body of VERIFY.json.
    """
    if store is None and plan is None:
        raise ConfigError("mixopt report needs at least one of --store or --plan; got neither. "
                          "Pass a run-store directory (--store DIR) and/or a plan file (--plan PLAN.yaml).")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"Report output {out} is a file, not a directory. Pass a directory path to --out.")
    refuse_foreign("--out", out, "report", foreign_report_files(out))
    plan_obj = as_plan(plan)
    sv = read_store(store)
    mv = read_model(model)
    target = resolve_target(target, sv, mv, plan_obj)
    table = sv.table if sv is not None else None
    y = table.target(target) if table is not None else None
    out.mkdir(parents=True, exist_ok=True)

    figures: list[FigureEntry] = []
    absent: list[str] = []

    def add(name: str, heading: str, caption: str, draw) -> None:
        record_written(out, "report", [name])  # before drawing: a report stopped part way leaves a folder of its own
        path = draw(out / name)
        figures.append(FigureEntry(name, heading, caption, Path(path).read_bytes()))

    # 1. the mixture per phase
    if plan_obj is not None:
        starts = ", ".join(f"{p.start_fraction:.0%}" for p in plan_obj.phases)
        add("mixture.png", "Planned mixture",
            f"Token share of each domain (bars) in each phase; phases start at {starts} of the budget. "
            "Compare bar heights within a group to see what a phase up- or down-weights.",
            lambda p: plots.plot_mixture([(ph.start_fraction, ph.weights) for ph in plan_obj.phases], p))
    else:
        absent.append("Planned mixture: no plan given (--plan).")

    # 2. predicted vs actual: out-of-fold predictions, then the model on the store's runs
    cv, cv_source = cv_input(cv_predictions, plan_obj, absent)
    if cv is not None:
        add("pred_vs_actual_cv.png", "Predicted vs actual (cross-validated)",
            f"Each point is one run's {cv_source} prediction against its measured value; points on the dashed "
            "line are exact. Spearman ρ (title) near 1 means the predictor ranks mixtures correctly.",
            lambda p: plots.plot_pred_vs_actual(*cv, p, source="out-of-fold"))
    if mv is not None:
        if table is None:
            absent.append(f"Model predictions: --model {mv.name} needs a store with finished runs (--store) to compare against.")
        else:
            _add_model_figure(add, mv, sv, target)
    elif cv is None:
        absent.append("Predicted vs actual: no --model (with --store), no cv_predictions and no provenance.cv in the plan.")

    # 3. the per-domain loss matrix
    val_cols = mean_columns(table.metrics) if table is not None else []  # val/*, else metric/* (imported tables)
    if val_cols:
        labels = [_run_label(r) for r in sv.ok]
        M = np.column_stack([table.metrics[c] for c in val_cols])
        short = short_names(val_cols)
        add("loss_matrix.png", "Per-domain loss of the sweep",
            "Rows are runs, best mean loss on top; columns are validation domains. Colour is each loss minus its "
            "column's median (blue: better than the typical run on that domain, red: worse), on a scale that clips "
            "outliers (arrows on the colour bar); the numbers, shown when rows are few, are the losses themselves.",
            lambda p: plots.plot_loss_matrix(labels, [short[c] for c in val_cols], M, p))
    else:
        absent.append("Per-domain loss matrix: " + ("no store given (--store)." if sv is None else
                      "the store has no finished runs with val/* or metric/* metrics."))

    # 4. checkpoint curves
    curves, curve_metric = _pick_curves(sv.ok if sv else [], y, target)
    if curves:
        add("curves.png", "Checkpoint curves",
            f"{curve_metric} against tokens seen (log scale). The legend names each line's role (best, median and worst "
            "run by the target, baselines), its run label and its final value. Lines that cross mean the ranking of "
            "mixtures changes with scale; parallel lines mean a small proxy ranks well.",
            lambda p: plots.plot_curves(curves, p, metric=curve_metric))
    else:
        absent.append("Checkpoint curves: " + ("no store given (--store)." if sv is None else "no run records checkpoint curves."))

    # 5. the budget frontier of quality pools
    front = frontier_input(frontier, plan_obj, absent)
    if front is not None:
        add("frontier.png", "Quality-pool frontier",
            "Predicted error of keeping the top-1, top-2, ... quality pools at each budget (log scale). "
            "Budgets are in samples of the domain (the law's unit). Stars mark the best set: the law keeps few pools at "
            "small budgets, more once the best pools would repeat too often."
            + (" Where a * samples / normalizer < 1 the law is outside its fitted range (its curves favour weaker pools), "
               "so the plan's stars there are the fewest best pools that hold the budget without repetition instead."
               if any(r.get("rule") == "coverage" for r in front) else
               " Up to " + fmt.tokens(max(float(r["budget"]) for r in front if r.get("law_range") is False))
               + " samples a * samples / normalizer < 1: the law is outside its fitted range and its stars there favour "
               "weaker pools; `mixopt propose` keeps the fewest best pools that hold the budget without repetition "
               "instead." if any(r.get("law_range") is False for r in front) else ""),
            lambda p: plots.plot_frontier(front, p))

    # 6. surrogate vs projector
    store_tokens = _store_tokens(sv)
    by = predictors(plan_obj, absent)
    flags: list[str] = []
    notices: list[str] = []
    if by:
        metric = plan_obj.predicted.metric
        disagree = plan_obj.predicted.disagreement
        labelled, compared = predictors_by_scale(plan_obj, by, store_tokens)
        like = {k: v for k, v in labelled.items() if k in compared}  # the predictions at one budget
        other = " Hollow grey points are at another token budget and are not compared: a larger budget lowers the loss." \
            if set(labelled) - compared else ""
        add("agreement.png", "Surrogate vs projector for this plan",
            f"Each predictor's {metric} for the planned mixture with ±1σ bars, labelled with the token budget it applies "
            "to. Overlapping bars at the same budget agree; a gap wider than the bars means at least one predictor is "
            f"extrapolating.{other}" + (
                " Both value a mixture trained flat: here the plan without its end phase; the plan's predicted value "
                "subtracts the end phase's predicted gain." if plan_obj.predicted.end_phase else ""),
            lambda p: plots.plot_prediction_agreement(labelled, p, disagree=disagree, metric=metric, compared=compared))
        if disagree is None:
            disagree = plots.predictions_disagree(like)
        if disagree and len(compared) > 1:
            measured = " " + sided_with(verification, plan_obj.budget_tokens, like) if verification is not None else ""
            flags.append(f"Predictors disagree beyond 1σ on this plan: treat the predicted value with caution.{measured}")
    scatter = agreement_input(plan_obj, absent)
    if scatter is not None:
        add("agreement_scatter.png", "Surrogate vs projector across mixtures",
            "Each point is one mixture: x the surrogate's prediction, y the projector's, colour the measured value. "
            "Points near the dashed line agree; the colour gradient should follow the diagonal if both rank well.",
            lambda p: plots.plot_agreement_scatter(*scatter, p))

    # 7. verification: the plan and its alternatives, trained where verify trained them
    if verification is not None:
        other = across_scales(verification)
        budget = plan_obj.budget_tokens if plan_obj is not None else None
        trained = (verification.get("scale") or {}).get("tokens") or budget
        at_budget = trained is not None and budget is not None and math.isclose(float(trained), budget, rel_tol=0.05)
        where = "at the plan's budget" if at_budget else f"at {fmt.tokens(trained)} tokens" if trained else ""
        said = (f" ({fmt.tokens(trained)} tokens)" if at_budget else
                f" (the plan's budget is {fmt.tokens(budget)})" if budget is not None and trained else "")
        add("verification.png", "Verification" + (" (the prediction is for another scale)" if other else f" {where}".rstrip()),
            f"Each arm trained {where}{said} with the same seeds (dots; diamond = mean). The shaded band is the "
            "paired 95% interval of plan minus arm, placed around the arm: green when the plan is better beyond noise, "
            "red when worse, grey when within noise. "
            + ("The plan's prediction is for another scale than these arms trained, so it is not drawn." if other else
               "The dashed line is the plan's predicted value (±2σ shaded)."),
            lambda p: plots.plot_verification(verification, p))
        worse = [c["against"] for c in verification["comparisons"] if c["plan_worse"]]
        if worse:
            flags.append(f"Verification: the plan trained worse than {', '.join(worse)} beyond seed noise.")

    notes, flag, warn = measured_vs_predicted(plan_obj, sv, mv)
    if flag:
        (flags if warn else notices).append(flag)
    summary = _summary(sv, y, target, plan_obj)
    sections = [("Measured vs predicted", notes)] if notes else []
    if mv is not None and (checks := model_lines(mv.meta)):  # seed noise, the level backtest, fit's warnings
        sections.append((f"Model checks ({mv.name})", checks))
    page = render_page(title, summary, list(plan_obj.reasons) if plan_obj else [], figures, absent, flags=flags,
                       notes=sections or None, answer=answer(plan_obj, verification, store_tokens),
                       notices=notices, version=__version__)
    record_written(out, "report", [PAGE])
    return atomic_write_text(out / PAGE, page)


def _add_model_figure(add, mv: ModelView, sv: StoreView, target: str) -> None:
    yt, yp, ys, in_sample = model_predictions(mv, sv, target)
    n_in = int(in_sample.sum())
    if n_in == len(yt):
        what = "All of them are its training runs, so this shows fit, not generalisation"
    elif n_in == 0:
        what = "None of them are its training runs (it was fitted on another store), so this shows generalisation"
    else:
        what = f"{n_in} are its training runs (in-sample, circles) and {len(yt) - n_in} are not (held out, triangles)"
    add("pred_vs_actual_model.png", "Predicted vs actual (model on the sweep)",
        f"The model {mv.name} applied to every finished sweep run of the store, target {target}. {what}; ρ near 1 means ranks are right.",
        lambda p: plots.plot_pred_vs_actual(yt, yp, ys, p, in_sample=in_sample))


def sided_with(verification: dict, budget_tokens: float, predictions: dict[str, tuple[float, float | None]]) -> str:
    """What training the plan measured, and, when it trained at the plan's budget, how far (in each predictor's own σ)
    it landed from each prediction: the sentence that settles a disagreement between the predictors."""
    mean = float(verification["results"][0]["mean"])
    said = f"The verification above measured the plan at {fmt.loss(mean)}"
    tokens = float((verification.get("scale") or {}).get("tokens") or 0.0)
    if not math.isclose(tokens, budget_tokens, rel_tol=0.01):
        return said + f", at {fmt.tokens(tokens)} tokens rather than the plan's {fmt.tokens(budget_tokens)}."
    away = {name.split(" (")[0]: (v, abs(mean - v) / s if s else math.inf) for name, (v, s) in predictions.items()}
    parts = [f"{'' if z == math.inf else f'{z:.1f}σ '}from the {name}'s {fmt.loss(v)}" for name, (v, z) in away.items()]
    closest = min(away, key=lambda n: abs(mean - away[n][0]))
    return said + ", " + " and ".join(parts) + f": the measurement sides with the {closest}."


def _store_tokens(sv: StoreView | None) -> float | None:
    """The training tokens of the store's runs when they all share one count (the proxies' budget), else None."""
    if sv is None or not sv.ok:
        return None
    counts = {(r.scale or {}).get("tokens") or (r.proxy or {}).get("tokens") for r in sv.ok}
    return float(counts.pop()) if len(counts) == 1 and None not in counts else None


def _run_label(rec: RunRecord) -> str:
    return rec.label or rec.run_id[:10]


def _pick_curves(ok: list[RunRecord], y: np.ndarray | None, target: str):
    """Best, median and worst runs by target, plus labelled baselines, at most MAX_CURVES; legend label -> curve."""
    score = (lambda i: float(y[i])) if y is not None else (lambda i: float(np.mean(list(ok[i].metrics.values()) or [0.0])))
    with_curves = [i for i, r in enumerate(ok) if r.curves and np.isfinite(score(i))]  # unranked runs (NaN) have no role
    if not with_curves:
        return {}, ""
    order = sorted(with_curves, key=score)
    roles: dict[int, list[str]] = {}
    for role, i in (("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])):
        roles.setdefault(i, []).append(role)
    for i in with_curves:
        if ok[i].label.split("~")[0] in ("natural", "uniform"):  # "natural~seed1": a baseline's repeat
            roles.setdefault(i, []).append("baseline")
    curves: dict[str, dict[float, float]] = {}
    for i, rs in roles.items():
        tokens, values = ok[i].curve(target)
        if len(tokens) and len(curves) < MAX_CURVES:
            two = " (two-phase)" if len(ok[i].phases) > 1 else ""
            curves[f"{'/'.join(rs)}: {_run_label(ok[i])}{two}, {fmt.loss(score(i))}"] = dict(zip(map(float, tokens), map(float, values)))
    return curves, target


def _summary(sv: StoreView | None, y, target: str, plan: Plan | None) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if sv is not None:
        rows.append(("run store", str(sv.root) if sv.root else "(snapshot)"))
        other = "".join(f"; {n} {what} run{'' if n == 1 else 's'} not shown ({why})" for n, what, why in (
            (sv.n_verify, "verify:", "trained at the plan's budget to test it; --verify VERIFY.json shows them"),
            (sv.n_pool, "pool:", "each trained on one quality pool")) if n)
        rows.append(("runs", f"{len(sv.ok)} ok, {sv.n_failed} failed or non-finite{other}"))
        if sv.table is not None:
            rows.append(("domains", ", ".join(sv.table.domains)))
        rows.append(("target", target))
        if y is not None and len(y):
            i = int(np.nanargmin(y))
            mix = fmt.mixture(dict(zip(sv.table.domains, sv.table.W[i])))
            rows.append(("best run", f"{_run_label(sv.ok[i])} ({sv.table.run_ids[i]}): {target} = {fmt.loss(y[i])}; mixture {mix}"))
        elif sv.table is None:
            rows.append(("best run", "n/a (no finished runs)"))
    if plan is not None:
        n = len(plan.phases)
        rows.append(("plan budget", f"{fmt.tokens(plan.budget_tokens)} tokens in {n} phase{'' if n == 1 else 's'}"))
        rows.append(("plan mixture (overall)", fmt.mixture(plan.overall_weights())))
        if plan.epochs:
            rows.append(("epochs", ", ".join(f"{d} {fmt.epochs(e)}" for d, e in sorted(plan.epochs.items()))))
        if plan.predicted is not None:
            p = plan.predicted
            sur = (p.by or {}).get("surrogate")
            curse = sur.get("curse") if isinstance(sur, dict) else None
            end = p.end_phase.get("gain") if isinstance(p.end_phase, dict) else None
            minus = f" minus the end phase's predicted gain {fmt.loss(end)}" if end is not None else ""
            raised = (f" (the search's own value {fmt.loss(sur['uncorrected'])} plus its measured optimism {fmt.loss(curse)} "
                      f"(the optimizer's curse){',' if minus else ''}{minus})"
                      ) if curse is not None and curse > 0 and "uncorrected" in sur else (
                f" (the surrogate's {fmt.loss(sur['value'])} for the plan without its end phase{minus})"
                if end is not None and isinstance(sur, dict) and sur.get("value") is not None else "")
            rows.append(("predicted", f"{p.metric} = {fmt.pm(p.value, p.std)}{raised}"))
    return rows
