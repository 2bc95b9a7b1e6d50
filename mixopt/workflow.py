"""The steps users chain: fit a surrogate on a store, predict, propose a plan.

Each function takes paths and configs, does one step of the pipeline and
returns what it wrote; the CLI and the demo call these.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import ProposeConfig, SweepConfig, config_from_dict
from .errors import FitError
from .runs.store import RunStore
from .runs.table import RunTable, store_table


@dataclass
class FitOutcome:
    model_path: Path
    plot_path: Path | None
    cv: dict[str, Any]
    n_runs: int


def fit_store(store_dir: str | Path, target: str, model_name: str, out: str | Path, *, folds: int = 5, seed: int = 0,
              plot: str | Path | None = None) -> FitOutcome:
    """Cross-validate, then fit on every run, save the model with what propose needs to know."""
    from .surrogates import cross_validate, get_estimator, plot_pred_vs_actual, save_model

    store = RunStore(store_dir, create=False)
    table = store_table(store)
    y = table.target(target)
    if not np.all(np.isfinite(y)):
        raise FitError(f"Target '{target}' has non-finite values in {int((~np.isfinite(y)).sum())} run(s). Drop them or pick another target.")
    fit_y = y
    if target not in table.metrics and model_name == "default":
        # an averaged target: one model per component metric, averaged (see surrogates/average.py)
        from .surrogates import MetricAverage

        cols, weights = table.target_components(target)
        est = MetricAverage("default", weights=weights, random_state=seed)
        fit_y = np.column_stack([table.metrics[c] for c in cols])
    else:
        est = get_estimator(model_name)
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
    cv = cross_validate(est, table.W, fit_y, k=min(folds, len(y)), seed=seed)
    est.fit(table.W, fit_y)
    meta = store.meta()
    cfg = meta.get("config") or {}
    model_meta = {
        "domains": table.domains, "target": target, "estimator": model_name, "n_runs": len(y),
        "token_counts": meta.get("token_counts", {}), "tokens_per_doc": meta.get("tokens_per_doc", {}),
        "proxy_tokens": (cfg.get("proxy") or {}).get("tokens"), "store": str(store_dir), "store_fingerprint": store.fingerprint(),
        "train_mixtures": table.W.tolist(),
        "cv": {**{k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in cv.items()}, "y_true": y.tolist()},
    }
    out = Path(out)
    save_model(est, out, model_meta)
    plot_path = Path(plot) if plot else out.with_suffix(".png")
    plot_pred_vs_actual(y, np.asarray(cv["oof_pred"]), plot_path, title=f"{model_name}: {cv['k']}-fold CV on {len(y)} runs ({target})",
                        y_std=np.asarray(cv["oof_std"]))
    return FitOutcome(out, plot_path, cv, len(y))


def table_for_model(store_dir: str | Path) -> RunTable:
    return store_table(RunStore(store_dir, create=False))


def propose(*, out: str | Path, model: str | Path | None = None, store: str | Path | None = None, config: SweepConfig | None = None,
            budget_tokens: float | None = None, model_params: float | None = None, seed: int | None = None,
            use_projector: bool = True):
    """Search for the best plan; writes PLAN.yaml and returns the Plan."""
    from .plan import save_plan
    from .planning.propose import ProposeContext, build_plan
    from .surrogates import load_model

    if model is None and store is None:
        raise FitError("propose needs a fitted model (--model MODEL) or a run store to fit one on (--store DIR).")
    if model is None:
        target = config.propose.target if config else ProposeConfig().target
        name = config.propose.model if config else "default"
        model = Path(out).with_name(Path(out).stem + ".model.pkl")
        fit_store(store, target, name, model, seed=seed or 0)
    est, meta = load_model(model)
    store = store or meta.get("store")
    store_meta = RunStore(store, create=False).meta() if store and Path(store).exists() else {}
    if config is None and store_meta.get("config"):
        config = config_from_dict(store_meta["config"], where=f"{store}/store.json")
    pcfg = config.propose if config else ProposeConfig()
    seed = (config.seed if config else 0) if seed is None else seed
    ctx = ProposeContext(
        domains=list(meta["domains"]), target=meta["target"], token_counts=meta.get("token_counts") or {},
        tokens_per_doc=meta.get("tokens_per_doc") or {}, train_mixtures=np.asarray(meta.get("train_mixtures") or [], dtype=float),
        proxy_tokens=meta.get("proxy_tokens"),
        provenance={"model": str(model), "store_fingerprint": meta.get("store_fingerprint"), "estimator": meta.get("estimator"),
                    "config_hash": hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16] if config else None,
                    "cv": {"y_true": meta.get("cv", {}).get("y_true"), "y_pred": meta.get("cv", {}).get("oof_pred"),
                           "y_std": meta.get("cv", {}).get("oof_std"), "spearman": meta.get("cv", {}).get("spearman")}},
    )
    if store and Path(store).exists():
        ctx.records = [r for r in RunStore(store, create=False).records() if r.status == "ok"]
    if config is not None and pcfg.pools:
        from .data.domains import domain_specs

        ctx.specs = domain_specs(config.data)
    projector = None
    if use_projector and store and config is not None and ctx.token_counts:
        projector = _store_projector(config, ctx)
    plan = build_plan(est, ctx, pcfg, budget_tokens=budget_tokens, seed=seed, projector=projector, model_params=model_params)
    save_plan(plan, out)
    return plan


def _store_projector(config: SweepConfig, ctx):
    """A callable (w, budget) -> projector summary, or None when the store can't support a projector."""
    import warnings

    from .data.domains import domain_documents
    from .errors import MixoptError
    from .projector.features import featurize
    from .projector.from_runs import fit_store_projector, projector_summary, target_docs_for

    try:
        docs = domain_documents(config.data, max_docs=60)
        val_docs = {d: v for d, (_, v) in docs.items()}  # the target side: what the metric measures
        feats = {d: featurize(docs[d][0], where=f"domain {d}") for d in ctx.domains}  # the source side: what runs train on
        target_feats = featurize(target_docs_for(ctx.target, val_docs), where="target")
        proj = fit_store_projector(ctx.records or [], ctx.domains, ctx.target, feats, target_feats)
    except MixoptError as exc:
        warnings.warn(f"OT projector skipped: {exc}", stacklevel=2)
        return None
    return lambda w, budget: projector_summary(proj, np.asarray(w, dtype=float), budget)
