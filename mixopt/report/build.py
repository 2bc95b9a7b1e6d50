"""Gather a store, a plan, a model and a frontier into one static report folder.

Each figure appears only when its inputs exist; the page lists what was absent
and why, so a thin report explains itself. Images are written first and the
page last, so a crash never leaves an ``index.html`` that links missing images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, FitError, MixtureError
from ..io import atomic_write_text
from ..plan import Plan, load_plan, plan_from_dict
from ..runs.record import RunRecord
from ..runs.store import RunStore
from ..runs.table import RunTable, records_table
from . import plots
from .html import FigureEntry, render_page

MAX_CURVES = 6


def build_report(out_dir: str | Path, *, store: str | Path | None = None, plan: str | Path | Plan | None = None,
                 model: str | Path | None = None, target: str = "mean:all-domains",
                 frontier: list[dict] | None = None, cv_predictions: Any = None, title: str = "mixopt report") -> Path:
    """Write ``out_dir/index.html`` and its PNGs; returns the page's path.

    ``cv_predictions`` is ``(y_true, y_pred[, y_std])`` or a dict with those keys,
    e.g. out-of-fold predictions from a fit. ``frontier`` is the JSON output of
    ``mixopt plan-pools --json``.
    """
    if store is None and plan is None:
        raise ConfigError("mixopt report needs at least one of --store or --plan; got neither. "
                          "Pass a run-store directory (--store DIR) and/or a plan file (--plan PLAN.yaml).")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"Report output {out} is a file, not a directory. Pass a directory path to --out.")
    out.mkdir(parents=True, exist_ok=True)
    plan_obj = _as_plan(plan)
    records = RunStore(store, create=False).records() if store is not None else None
    ok = [r for r in records or [] if r.status == "ok" and all(math.isfinite(v) for v in r.metrics.values())]
    table = records_table(ok) if ok else None
    y, y_problem = _target_values(table, target)

    figures: list[FigureEntry] = []
    absent: list[str] = []

    def add(name: str, heading: str, caption: str, draw) -> None:
        draw(out / name)
        figures.append(FigureEntry(name, heading, caption))

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
    cv, cv_source = _cv_input(cv_predictions, plan_obj, absent)
    if cv is not None:
        add("pred_vs_actual_cv.png", "Predicted vs actual (cross-validated)",
            f"Each point is one run's {cv_source} prediction against its measured value; points on the dashed "
            "line are exact. Spearman ρ (title) near 1 means the predictor ranks mixtures correctly.",
            lambda p: plots.plot_pred_vs_actual(*cv, p, source="out-of-fold"))
    if model is not None:
        if table is None:
            absent.append(f"Model predictions: --model {model} needs a store with finished runs (--store) to compare against.")
        else:
            yt, yp, ys, mt = _model_predictions(Path(model), table, target)
            add("pred_vs_actual_model.png", "Predicted vs actual (model on the sweep)",
                f"The model {Path(model).name} applied to every finished run of the store, target {mt}. These runs are "
                "usually its training data, so this shows fit, not generalisation; ρ near 1 means ranks are right.",
                lambda p: plots.plot_pred_vs_actual(yt, yp, ys, p, source="in-sample"))
    elif cv is None:
        absent.append("Predicted vs actual: no --model (with --store), no cv_predictions and no provenance.cv in the plan.")

    # 3. the per-domain loss matrix
    val_cols = sorted(m for m in table.metrics if m.startswith("val/")) if table is not None else []
    if val_cols:
        labels = [_run_label(r) for r in ok]
        M = np.column_stack([table.metrics[c] for c in val_cols])
        add("loss_matrix.png", "Per-domain loss of the sweep",
            "Rows are runs, sorted by mean loss with the best on top; columns are validation domains. "
            "Lighter cells are lower loss; a column that varies a lot is a domain the mixture matters for.",
            lambda p: plots.plot_loss_matrix(labels, [c for c in val_cols], M, p))
    else:
        absent.append("Per-domain loss matrix: " + ("no store given (--store)." if store is None else
                      "the store has no finished runs with val/* metrics."))

    # 4. checkpoint curves
    curves, curve_metric = _pick_curves(ok, y, target)
    if curves:
        add("curves.png", "Checkpoint curves",
            f"{curve_metric} against tokens seen (log scale) for the best, median and worst runs and any baselines. "
            "Lines that cross mean the ranking of mixtures changes with scale; parallel lines mean a small proxy ranks well.",
            lambda p: plots.plot_curves(curves, p, metric=curve_metric))
    else:
        absent.append("Checkpoint curves: " + ("no store given (--store)." if store is None else "no run records checkpoint curves."))

    # 5. the budget frontier of quality pools
    front = _frontier_input(frontier, plan_obj, absent)
    if front is not None:
        add("frontier.png", "Quality-pool frontier",
            "Predicted error of keeping the top-1, top-2, ... quality pools at each budget (log scale). "
            "Stars mark the best set: few pools win at small budgets, more once the best pools would repeat too often.",
            lambda p: plots.plot_frontier(front, p))

    # 6. surrogate vs projector
    by, flags = _predictors(plan_obj, absent)
    if by:
        metric = plan_obj.predicted.metric
        disagree = plan_obj.predicted.disagreement
        add("agreement.png", "Surrogate vs projector for this plan",
            f"Each predictor's {metric} for the planned mixture with ±1σ bars. Overlapping bars agree; "
            "a gap wider than the bars means at least one predictor is extrapolating.",
            lambda p: plots.plot_prediction_agreement(by, p, disagree=disagree, metric=metric))
        if disagree is None:
            disagree = plots.predictions_disagree(by)
        if disagree and len(by) > 1:
            flags.append("Predictors disagree beyond 1σ on this plan: treat the predicted value with caution.")
    scatter = _agreement_input(plan_obj, absent)
    if scatter is not None:
        add("agreement_scatter.png", "Surrogate vs projector across mixtures",
            "Each point is one mixture: x the surrogate's prediction, y the projector's, colour the measured value. "
            "Points near the dashed line agree; the colour gradient should follow the diagonal if both rank well.",
            lambda p: plots.plot_agreement_scatter(*scatter, p))

    summary = _summary(store, records, ok, table, y, y_problem, target, plan_obj)
    page = render_page(title, summary, list(plan_obj.reasons) if plan_obj else [], figures, absent, flags=flags)
    return atomic_write_text(out / "index.html", page)


# ------------------------------------------------------------------ inputs
def _as_plan(plan: str | Path | Plan | Mapping | None) -> Plan | None:
    if plan is None or isinstance(plan, Plan):
        return plan
    if isinstance(plan, Mapping):
        return plan_from_dict(dict(plan))
    return load_plan(plan)


def _target_values(table: RunTable | None, target: str) -> tuple[np.ndarray | None, str]:
    if table is None:
        return None, "no finished runs"
    try:
        return np.asarray(table.target(target), dtype=float), ""
    except FitError as exc:
        return None, str(exc)


def _run_label(rec: RunRecord) -> str:
    return rec.label or rec.run_id[:10]


def _xy(obj: Any, where: str) -> tuple[list[float], list[float], list[float] | None]:
    """(y_true, y_pred, y_std|None) from a dict or tuple; raises ConfigError when malformed."""
    if isinstance(obj, Mapping):
        parts = [obj.get("y_true"), obj.get("y_pred"), obj.get("y_std")]
    elif isinstance(obj, Sequence) and len(obj) in (2, 3):
        parts = [*obj, None][:3]
    else:
        raise ConfigError(f"{where} must be a mapping with y_true and y_pred lists (y_std optional) or a "
                          f"(y_true, y_pred[, y_std]) tuple. Got {type(obj).__name__}.")
    try:
        arrs = [None if a is None else [float(v) for v in a] for a in parts]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: y_true, y_pred and y_std must be lists of numbers. Fix the values.") from None
    yt, yp, ys = arrs
    if yt is None or yp is None:
        raise ConfigError(f"{where} needs both y_true and y_pred. Add the missing list.")
    if len(yt) != len(yp) or (ys is not None and len(ys) != len(yt)) or len(yt) < 2:
        raise ConfigError(f"{where}: y_true, y_pred (and y_std) must have the same length ≥ 2; got "
                          f"{len(yt)}, {len(yp)}{'' if ys is None else f', {len(ys)}'}. Pass matching lists.")
    return yt, yp, ys


def _cv_input(arg: Any, plan: Plan | None, absent: list[str]):
    if arg is not None:
        return _xy(arg, "cv_predictions"), "cross-validated"
    raw = plan.provenance.get("cv") if plan is not None else None
    if raw is None:
        return None, ""
    try:
        return _xy(raw, "plan provenance.cv"), "out-of-fold"
    except ConfigError as exc:
        absent.append(f"Cross-validated predicted vs actual: {exc}")
        return None, ""


def _model_predictions(path: Path, table: RunTable, target: str):
    """The model's predictions for the store's runs, columns matched by domain name."""
    if not path.exists():
        raise ConfigError(f"Model file {path} does not exist. Fit one with `mixopt fit ... --out {path}` or drop --model.")
    import mixopt.surrogates as surrogates

    load_model = getattr(surrogates, "load_model", None)
    if load_model is None:
        raise ConfigError(f"Cannot load model {path}: this mixopt has no mixopt.surrogates.load_model. "
                          "Upgrade mixopt or drop --model and pass a plan with provenance.cv.")
    est, meta = load_model(path)
    get = meta.get if isinstance(meta, Mapping) else (lambda k, d=None: getattr(meta, k, d))
    domains = list(get("domains", None) or [])
    mtarget = get("target", None) or target
    if not domains:
        raise ConfigError(f"Model {path} does not record its domain columns (meta.domains). Refit it with `mixopt fit`.")
    n = len(table.run_ids)
    unknown = [d for j, d in enumerate(table.domains) if d not in domains and np.any(table.W[:, j] > 0)]
    if unknown:
        raise MixtureError(f"Model {path} was fitted on domains {domains}, but the store's runs also use {unknown}. "
                           "Report on the store the model was fitted on, or refit the model.")
    W = np.column_stack([table.W[:, table.domains.index(d)] if d in table.domains else np.zeros(n) for d in domains])
    out = est.predict(W, return_std=True)
    y_pred, y_std = (out[0], out[1]) if isinstance(out, tuple) else (out, None)
    y_true = table.target(mtarget)
    return y_true, np.asarray(y_pred, dtype=float), None if y_std is None else np.asarray(y_std, dtype=float), mtarget


def _curve_of(rec: RunRecord, target: str) -> dict[float, float]:
    """The target's curve if recorded, else the mean of the val/* curves at shared checkpoints."""
    if target in rec.curves:
        return {float(t): float(v) for t, v in rec.curves[target].items()}
    cols = [rec.curves[c] for c in rec.curves if c.startswith("val/")]
    if not cols:
        return {}
    shared = set(cols[0]).intersection(*cols[1:])
    return {float(t): float(np.mean([c[t] for c in cols])) for t in shared}


def _pick_curves(ok: list[RunRecord], y: np.ndarray | None, target: str):
    """Best, median and worst runs by target, plus labelled baselines, at most MAX_CURVES."""
    with_curves = [i for i, r in enumerate(ok) if r.curves]
    if not with_curves:
        return {}, ""
    score = (lambda i: y[i]) if y is not None else (lambda i: float(np.mean(list(ok[i].metrics.values()) or [0.0])))
    order = sorted(with_curves, key=score)
    picks = [order[0], order[len(order) // 2], order[-1]]
    picks += [i for i in with_curves if ok[i].label in ("natural", "uniform")]
    curves: dict[str, dict[float, float]] = {}
    for i in dict.fromkeys(picks):
        c = _curve_of(ok[i], target)
        if len(c) >= 1 and len(curves) < MAX_CURVES:
            curves[_run_label(ok[i])] = c
    metric = target if any(target in ok[i].curves for i in picks) else "mean val/* loss"
    return curves, metric


def _frontier_problem(rows: Any) -> str:
    if not isinstance(rows, list) or not rows:
        return f"must be a non-empty list of {{budget, best, errors}} objects; got {type(rows).__name__}"
    for k, r in enumerate(rows):
        if not isinstance(r, Mapping) or "budget" not in r or not isinstance(r.get("errors"), list) or not r["errors"]:
            return f"entry {k} needs a budget and a non-empty errors list"
        try:
            vals = [float(r["budget"]), *(float(e) for e in r["errors"])]
        except (TypeError, ValueError):
            return f"entry {k} has a non-numeric budget or error"
        if not all(math.isfinite(v) for v in vals) or vals[0] <= 0:
            return f"entry {k} needs a positive budget and finite errors"
        if not isinstance(r.get("best", []), list) or len(r.get("best", [])) > len(r["errors"]):
            return f"entry {k}: best must list at most as many pools as errors has entries"
    return ""


def _frontier_input(arg: Any, plan: Plan | None, absent: list[str]):
    if arg is not None:
        problem = _frontier_problem(arg)
        if problem:
            raise ConfigError(f"The frontier {problem}. Pass the output of `mixopt plan-pools POOLS.yaml --budgets ... --json`.")
        return arg
    raw = (plan.model_extra or {}).get("frontier") if plan is not None else None
    if raw is None:
        absent.append("Quality-pool frontier: no --frontier file and no frontier field in the plan.")
        return None
    problem = _frontier_problem(raw)
    if problem:
        absent.append(f"Quality-pool frontier: the plan's frontier field {problem}.")
        return None
    return raw


def _predictors(plan: Plan | None, absent: list[str]) -> tuple[dict[str, tuple[float, float | None]], list[str]]:
    by: dict[str, tuple[float, float | None]] = {}
    if plan is None or plan.predicted is None or not plan.predicted.by:
        absent.append("Surrogate vs projector for this plan: the plan has no predicted.by.")
        return by, []
    for name, v in plan.predicted.by.items():
        value, std = (v.get("value"), v.get("std")) if isinstance(v, Mapping) else (v, None)
        try:
            value, std = float(value), None if std is None else abs(float(std))
        except (TypeError, ValueError):
            absent.append(f"Predictor {name} in predicted.by has no numeric value; left out.")
            continue
        if math.isfinite(value) and (std is None or math.isfinite(std)):
            by[name] = (value, std)
    return by, []


def _agreement_input(plan: Plan | None, absent: list[str]):
    raw = plan.provenance.get("agreement") if plan is not None else None
    if raw is None:
        absent.append("Surrogate vs projector across mixtures: the plan has no provenance.agreement.")
        return None
    try:
        s, p = [float(v) for v in raw["surrogate"]], [float(v) for v in raw["projector"]]
        a = None if raw.get("actual") is None else [float(v) for v in raw["actual"]]
    except (TypeError, ValueError, KeyError, AttributeError):
        absent.append("Surrogate vs projector across mixtures: provenance.agreement needs surrogate and projector number lists.")
        return None
    if len(s) != len(p) or len(s) < 2 or (a is not None and len(a) != len(s)):
        absent.append("Surrogate vs projector across mixtures: provenance.agreement lists differ in length or have < 2 points.")
        return None
    return s, p, a


# ------------------------------------------------------------------ summary
def _summary(store, records, ok, table, y, y_problem, target, plan) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if store is not None:
        n_failed = len(records) - len(ok)
        rows.append(("run store", str(store)))
        rows.append(("runs", f"{len(ok)} ok, {n_failed} failed or non-finite"))
        if table is not None:
            rows.append(("domains", ", ".join(table.domains)))
        rows.append(("target", target))
        if y is not None and len(y):
            i = int(np.nanargmin(y))
            mix = ", ".join(f"{d} {w:.2f}" for d, w in zip(table.domains, table.W[i]))
            rows.append(("best run", f"{_run_label(ok[i])} ({table.run_ids[i]}): {target} = {y[i]:.4g}; mixture {mix}"))
        elif y_problem:
            rows.append(("best run", f"n/a ({y_problem})"))
    if plan is not None:
        rows.append(("plan budget", f"{plan.budget_tokens:.3g} tokens in {len(plan.phases)} phase(s)"))
        rows.append(("plan mixture (overall)", ", ".join(f"{d} {w:.3f}" for d, w in plan.overall_weights().items())))
        if plan.epochs:
            rows.append(("epochs", ", ".join(f"{d} {e:.2f}" for d, e in sorted(plan.epochs.items()))))
        if plan.predicted is not None:
            p = plan.predicted
            std = "" if p.std is None else f" ± {p.std:.2g}"
            rows.append(("predicted", f"{p.metric} = {p.value:.4g}{std}"))
    return rows
