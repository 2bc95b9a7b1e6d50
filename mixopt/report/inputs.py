"""The report's inputs, read and checked once: the store, the plan, a fitted model, a frontier, CV predictions.

A problem that makes the page wrong (a target no run recorded, a model from
other domains or data) is a one-line :class:`~mixopt.errors.MixoptError`. A
problem with an optional extra in the plan (a malformed ``provenance.cv``) is
listed on the page under "Not shown" instead.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ConsistencyError, FitError
from ..plan import Plan, load_plan, plan_from_dict
from ..runs.record import RunRecord
from ..runs.store import RunStore, check_fitted_on
from ..runs.table import POOL_LABEL, VERIFY_LABEL, RunTable, not_sweep_counts, records_table, sweep_records
from ..surrogates import load_model, scale_inputs
from . import fmt
from .answer import proxy_tokens


@dataclass
class StoreView:
    """The store as the report needs it: read once. ``ok`` are the sweep's usable runs, the ones models learn from
    (:func:`~mixopt.runs.table.sweep_records`): not the ``verify:`` runs, trained at the plan's budget, nor the
    ``pool:`` runs, trained on one quality pool."""

    root: Path | None
    meta: dict
    records: list[RunRecord]
    ok: list[RunRecord]
    table: RunTable | None  # one row per ok record, in order
    n_failed: int = 0  # sweep runs that failed or have a non-finite metric
    n_verify: int = 0  # verify: runs, left off the page (VERIFY.json, --verify, shows them)
    n_pool: int = 0  # pool: runs, left off the page


def read_store(store: Any) -> StoreView | None:
    """A store path, or a snapshot already read (anything with ``meta``, ``records`` and ``ok``)."""
    if store is None:
        return None
    # the page counts failed runs itself, so reading the store does not warn about them
    snap = store if hasattr(store, "ok") else RunStore(store, create=False).snapshot(warn_failed=False)
    root = getattr(snap, "root", None) or (None if hasattr(store, "ok") else Path(store))
    records = list(snap.records)
    sweep = sweep_records(records)
    ok = sweep_records(snap.ok)
    other = not_sweep_counts(records)
    return StoreView(root, dict(snap.meta or {}), records, ok, records_table(ok) if ok else None,
                     n_failed=len(sweep) - len(ok), n_verify=other[VERIFY_LABEL], n_pool=other[POOL_LABEL])


@dataclass
class ModelView:
    """A fitted surrogate and what it was fitted on."""

    estimator: Any
    meta: dict
    name: str

    @property
    def target(self) -> str | None:
        return self.meta.get("target")


def read_model(model: Any) -> ModelView | None:
    """A model path, an object with ``estimator`` and ``meta`` (the pipeline's FittedModel), or ``(estimator, meta)``."""
    if model is None:
        return None
    if hasattr(model, "estimator") and hasattr(model, "meta"):
        path = getattr(model, "path", None)
        return ModelView(model.estimator, dict(model.meta), Path(path).name if path else "the model")
    if isinstance(model, tuple) and len(model) == 2:
        return ModelView(model[0], dict(model[1]), "the model")
    path = Path(model)
    if not path.exists():
        raise ConfigError(f"Model file {path} does not exist. Fit one with `mixopt fit ... --out {path}` or drop --model.")
    est, meta = load_model(path)
    meta = dict(meta) if isinstance(meta, Mapping) else dict(vars(meta))
    if not meta.get("domains"):
        raise ConfigError(f"Model {path} does not record its domain columns (meta.domains). Refit it with `mixopt fit`.")
    return ModelView(est, meta, path.name)


def as_plan(plan: str | Path | Plan | Mapping | None) -> Plan | None:
    if plan is None or isinstance(plan, Plan):
        return plan
    if isinstance(plan, Mapping):
        return plan_from_dict(dict(plan))
    return load_plan(plan)


def resolve_target(target: str | None, store: StoreView | None, model: ModelView | None, plan: Plan | None) -> str:
    """The metric the page ranks by: the one asked for, else the model's, else the plan's, else mean:all-domains.

    An asked-for target must exist in the store's runs and match the model's target.
    """
    if target is not None and model is not None and model.target and target != model.target:
        raise ConsistencyError(f"--target is {target}, but {model.name} predicts {model.target}. Drop --target (the report "
                               f"then uses {model.target}) or fit a model for {target} (`mixopt fit --target {target}`).")
    chosen = target or (model.target if model else None) or (plan.predicted.metric if plan and plan.predicted else None) \
        or "mean:all-domains"
    if store is not None and store.table is not None:
        table = store.table
        try:
            y = table.target(chosen)
        except FitError as exc:
            known = sorted(table.metrics)
            close = difflib.get_close_matches(chosen, known, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise FitError(f"Report target: {' '.join(str(exc).split())}{hint}") from None
        if not np.isfinite(y).any():
            cols = [chosen] if chosen in table.metrics else table.target_components(chosen)[0]
            missing = [c for c in cols if not np.isfinite(table.metrics[c]).all()]
            full = [m for m in sorted(table.metrics) if np.isfinite(table.metrics[m]).all()]
            fix = (f"pass --target with a metric every run measured ({', '.join(full[:6])}{', ...' if len(full) > 6 else ''})"
                   if full else "pass --target with a metric the runs measured")
            raise FitError(f"Report target {chosen}: no run in the store measured all of it (runs lack "
                           f"{', '.join(missing[:6])}{', ...' if len(missing) > 6 else ''}), so no run can be ranked. "
                           f"Import the missing metrics, or {fix}.")
    return chosen


def check_model_fits_store(model: ModelView, store: StoreView) -> None:
    """The model was fitted on the store's domains and data (one-line ConsistencyError naming both sides)."""
    where = store.root or "the store"
    check_fitted_on(model.meta, store.meta, store.meta.get("domains") or store.table.domains, model_name=model.name, where=str(where),
                    fix=f"Report on the store the model was fitted on, or refit it (`mixopt fit --store {where}`).")


def predict_at_runs(model: ModelView, W: np.ndarray, model_params, tokens):
    """The model's ``predict(..., return_std=True)`` for runs of mixtures ``W``: a scale-aware model at each run's
    own scale (``model_params``, ``tokens``: per row or one value), any other on the mixtures alone."""
    if model.meta.get("scale_aware"):
        return model.estimator.predict(scale_inputs(W, model_params, tokens), return_std=True)
    return model.estimator.predict(W, return_std=True)


def model_predictions(model: ModelView, store: StoreView, target: str):
    """``(y_true, y_pred, y_std|None, in_sample)`` of the model on the store's runs.

    ``in_sample`` marks the runs whose mixture is one the model was fitted on (its
    ``train_mixtures``); the others are held out, so they show generalisation.
    """
    check_model_fits_store(model, store)
    table, domains = store.table, list(model.meta["domains"])
    n = len(table.run_ids)
    W = np.column_stack([table.W[:, table.domains.index(d)] if d in table.domains else np.zeros(n) for d in domains])
    out = predict_at_runs(model, W, table.model_params, table.tokens)
    y_pred, y_std = (out[0], out[1]) if isinstance(out, tuple) else (out, None)
    train = np.asarray(model.meta.get("train_mixtures") or [], dtype=float).reshape(-1, len(domains))
    in_sample = np.array([bool(len(train)) and bool(np.any(np.all(np.abs(train - w) < 1e-9, axis=1))) for w in W])
    return (table.target(target), np.asarray(y_pred, dtype=float), None if y_std is None else np.asarray(y_std, dtype=float),
            in_sample)


def xy(obj: Any, where: str) -> tuple[list[float], list[float], list[float] | None]:
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


def cv_input(arg: Any, plan: Plan | None, absent: list[str]):
    if arg is not None:
        return xy(arg, "cv_predictions"), "cross-validated"
    raw = plan.provenance.get("cv") if plan is not None else None
    if raw is None:
        return None, ""
    try:
        return xy(raw, "plan provenance.cv"), "out-of-fold"
    except ConfigError as exc:
        absent.append(f"Cross-validated predicted vs actual: {exc}")
        return None, ""


def frontier_problem(rows: Any) -> str:
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


def frontier_input(arg: Any, plan: Plan | None, absent: list[str]):
    if arg is not None:
        problem = frontier_problem(arg)
        if problem:
            raise ConfigError(f"The frontier {problem}. Pass the output of `mixopt plan-pools POOLS.yaml --budgets ... --json`.")
        return arg
    raw = (plan.model_extra or {}).get("frontier") if plan is not None else None
    if raw is None:
        absent.append("Quality-pool frontier: no --frontier file and no frontier field in the plan.")
        return None
    problem = frontier_problem(raw)
    if problem:
        absent.append(f"Quality-pool frontier: the plan's frontier field {problem}.")
        return None
    return raw


def predictors(plan: Plan | None, absent: list[str]) -> dict[str, tuple[float, float | None]]:
    by: dict[str, tuple[float, float | None]] = {}
    if plan is None or plan.predicted is None or not plan.predicted.by:
        absent.append("Surrogate vs projector for this plan: the plan has no predicted.by.")
        return by
    for name, v in plan.predicted.by.items():
        value, std = (v.get("value"), v.get("std")) if isinstance(v, Mapping) else (v, None)
        try:
            value, std = float(value), None if std is None else abs(float(std))
        except (TypeError, ValueError):
            absent.append(f"Predictor {name} in predicted.by has no numeric value; left out.")
            continue
        if math.isfinite(value) and (std is None or math.isfinite(std)):
            by[name] = (value, std)
    return by


def predictors_by_scale(plan: Plan, by: dict[str, tuple[float, float | None]], store_tokens: float | None = None
                        ) -> tuple[dict[str, tuple[float, float | None]], set[str]]:
    """The plan's predictions labelled with the token count each applies to, and the labels that compare like with like.

    A proxy-scale surrogate is compared with the projector's own proxy-scale value (``value_at_proxy``, what
    ``propose`` judged disagreement on); the projector's value at the plan's budget is shown too, marked as not
    compared, since a loss at a larger budget is lower for reasons that have nothing to do with disagreement.
    """
    raw = plan.predicted.by if plan.predicted is not None else {}
    sur = raw.get("surrogate") if isinstance(raw.get("surrogate"), Mapping) else {}
    proj = raw.get("projector") if isinstance(raw.get("projector"), Mapping) else {}
    scale = sur.get("scale")
    budget = f"plan's {fmt.tokens(plan.budget_tokens)} tokens"
    proxy_t = proxy_tokens(plan, store_tokens)
    proxy = f"proxies' {fmt.tokens(proxy_t)} tokens" if proxy_t else "proxies' scale"
    tok = proj.get("tokens")  # where the projector's own value applies: the plan's budget unless it says otherwise
    proj_at = budget if not tok or math.isclose(float(tok), plan.budget_tokens) else f"{fmt.tokens(float(tok))} tokens"
    out: dict[str, tuple[float, float | None]] = {}
    compared: set[str] = set()
    for name, vs in by.items():
        if name == "surrogate" and scale in ("proxy", "target"):
            label = f"surrogate ({proxy if scale == 'proxy' else budget})"
            out[label] = vs
            compared.add(label)
        elif name == "projector" and scale == "proxy" and proj.get("value_at_proxy") is not None:
            try:
                at_proxy = (float(proj["value_at_proxy"]), None if proj.get("std_at_proxy") is None else abs(float(proj["std_at_proxy"])))
            except (TypeError, ValueError):
                at_proxy = None
            if at_proxy is not None and math.isfinite(at_proxy[0]):
                label = f"projector ({proxy})"
                out[label] = at_proxy
                compared.add(label)
            out[f"projector ({proj_at}; not compared)"] = vs
        elif name == "projector" and scale in ("proxy", "target"):
            label = f"projector ({proj_at})"
            out[label] = vs
            if scale == "target":
                compared.add(label)
        else:
            out[name] = vs
            compared.add(name)
    return out, compared


def agreement_input(plan: Plan | None, absent: list[str]):
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
