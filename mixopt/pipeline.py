"""The pipeline verbs, in the order data flows: sweep -> fit -> propose -> export -> report.

Each verb takes objects (a config, a store snapshot read once, a fitted model, a plan) and returns one; paths appear
only in the ``open_*``/``save_*`` helpers at the edges. The CLI commands and the demo are thin compositions of these.
Where two inputs meet (config and store, model and store, model and config) their fingerprints are compared first:
domains, data fingerprint and target. A mismatch is a one-line :class:`~mixopt.errors.ConsistencyError` naming both.

``select`` (score documents into quality pools) comes before ``sweep``; ``verify`` (train the plan and its
alternatives at the target scale, :mod:`mixopt.verify`) after ``propose``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import (DomainSpec, DomainPools, ProposeConfig, SamplerConfig, SweepConfig, domain_pools_from_dict,
                     load_config, resolve_config, stored_config)
from .data.domains import domain_keys, domain_specs, domain_texts, embedded_names, load_domain_set
from .data.embedded import embedded_domains, embedded_path
from .data.sources import looks_like_hub_id, names_local_data
from .data.tokenize import Tokenizer
from .data.types import DomainSet, TokenizedDomain
from .errors import ConfigError, ConsistencyError, FitError, MixoptError, require_positive
from .io import atomic_write_bytes
from .plan import Plan, load_plan, save_plan
from .reuse import ReusedMixture
from .planning.curse import FitRows
from .planning.pool_value import PoolMeasurement, measure_pool_values
from .planning.propose import DEFAULT_BUDGET_MULTIPLE, ProposeContext, build_plan, plan_budget
from .planning.quality import declared_laws
from .projector.features import featurize
from .projector.from_runs import fit_store_projector, projector_summary, target_docs_for
from .runs.driver import data_changes, run_sweep
from .runs.reuse_chain import located_reuse
from .runs.reused import reused_records, stale_plan
from .runs.pool_runs import DEFAULT_REPETITIONS, Progress, target_from_data, target_from_path
from .runs.store import RunStore, StoreSnapshot, check_fitted_on, mixed_dtype_note, mixed_proxy_problem, records_fingerprint
from .runs.sweep import SweepSummary, proxy_fingerprint
from .runs.groups import file_gap_note, repeat_groups
from .runs.table import RunTable, budget_table, records_table, step_tokens, sweep_records
from .selection.output import MANIFEST
from .selection.read import read_texts, source_spec
from .selection.select import SelectResult, select_documents
from .surrogates import (DEFAULT_BUDGET_ESTIMATOR, DEFAULT_SCALE_ESTIMATOR, SCALE_ESTIMATORS, AtScale, MetricAverage, cross_validate, get_estimator,
                         held_out_level, held_out_scale_cv, load_model, plot_pred_vs_actual, save_model, scale_inputs)
from .surrogates.crossval import mixture_groups
from .surrogates.noise import measure_noise, seed_noise
from .surrogates.scale import largest_scale_rows
from .surrogates.checks import backtest_line, extrapolation_note, level_notes, model_lines, noise_line, together_note  # noqa: F401  (the CLI's, the demo's)
from .surrogates.checks import scale_text as _scale_text
from .surrogates.shift import significant_miss

__all__ = ["FittedModel", "open_store", "select", "sweep", "fit", "make_estimator", "resolved_estimator", "at_scale", "save_fitted", "open_model", "propose", "save", "check_model_store",
           "check_config_store", "measure_noise", "noise_line", "with_pools", "measure_pools", "measure_pool_file", "measure_targets",
           "base_mixture_docs"]


# ---------------------------------------------------------------- edges: stores and models

def open_store(path: str | Path) -> StoreSnapshot:
    """Read a run store once: its meta, every record, the usable ones."""
    return RunStore(path, create=False).snapshot()


@dataclass
class FittedModel:
    """A fitted surrogate and what the later verbs must know of where it came from."""

    estimator: Any
    meta: dict[str, Any]  # domains, target, estimator, n_runs, data_fingerprint, token counts, cv, noise, ...
    path: Path | None = None

    @property
    def domains(self) -> list[str]:
        return list(self.meta["domains"])

    @property
    def target(self) -> str:
        return str(self.meta["target"])


def open_model(path: str | Path) -> FittedModel:
    est, meta = load_model(path)
    return FittedModel(est, meta, Path(path))


#: the figure formats `fit --plot` takes (matplotlib's, by suffix)
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def plot_path_for(out: str | Path, plot: str | Path | None = None) -> Path:
    """Where ``save_fitted`` writes the predicted-vs-actual plot: ``plot``, else the model path with .png (a path without
    a suffix gets .png: matplotlib writes PNG and adds it). The CLI checks this path before fitting."""
    plot_path = Path(plot) if plot else Path(out).with_suffix(".png")
    return plot_path if plot_path.suffix else plot_path.with_name(plot_path.name + ".png")


def propose_model_path(out: str | Path) -> Path:
    """Where ``mixopt propose`` without --model saves the model it fits: beside the plan, ``<plan stem>.model.pkl``."""
    return Path(out).with_name(Path(out).stem + ".model.pkl")


def save_fitted(model: FittedModel, out: str | Path, *, plot: str | Path | None = None) -> tuple[Path, Path]:
    """Save the model (creating folders) and its predicted-vs-actual plot, each whole or not at all (a failed write is a
    one-line StoreError and keeps the earlier file); returns both paths."""
    out = Path(out)
    plot_path = plot_path_for(out, plot)
    if plot_path.resolve() == out.resolve():
        raise ConfigError(f"The model {out} and its plot would be the same file; pass another plot path.")
    _write_through(out, lambda tmp: save_model(model.estimator, tmp, model.meta))
    model.path = out
    cv = model.meta["cv"]
    scale_aware = model.meta.get("scale_aware")  # CV on the largest scale's runs, with that scale held out
    name = type(model.estimator).__name__ if scale_aware else model.meta["estimator"]
    title = (f"{name}, largest scale held out ({model.target})" if scale_aware
             else f"{name}: {cv['k']}-fold CV on {len(cv['y_true'])} runs ({model.target})")
    _write_through(plot_path, lambda tmp: plot_pred_vs_actual(np.asarray(cv["y_true"]), np.asarray(cv["oof_pred"]), tmp,
                                                              title=title, y_std=np.asarray(cv["oof_std"])))
    return out, plot_path


def _write_through(path: Path, write) -> Path:
    """Let ``write(tmp)`` write a file (a pickle, a figure: writers that take a path) under a scratch name with
    ``path``'s suffix, then put its bytes at ``path`` with ``atomic_write_bytes`` (folders created, one-line errors)."""
    with tempfile.TemporaryDirectory(prefix="mixopt-") as scratch:
        tmp = Path(scratch) / ("out" + path.suffix)
        write(tmp)
        data = tmp.read_bytes()
    return atomic_write_bytes(path, data)


# ---------------------------------------------------------------- consistency where inputs meet

def check_model_store(model: FittedModel, snapshot: StoreSnapshot, *, model_name: str = "the model") -> None:
    """The model was fitted on this store's domains and data."""
    check_fitted_on(model.meta, snapshot.meta, snapshot.meta.get("domains") or records_table(sweep_records(snapshot.ok)).domains,
                    model_name=model_name, where=str(snapshot.root),
                    fix=f"Fit a model on this store (`mixopt fit --store {snapshot.root}`).")


def store_config(snapshot: StoreSnapshot, *, strict: bool = True) -> SweepConfig | None:
    """The config the store was swept with (store.json's ``config``); None for a store without one (imported runs).
    Without a CONFIG, propose fits its model and searches with this one, so the two read the same ``propose:`` section.
    Its ``reuse.plan`` where it lies now: when several places hold one, not copies of one, a one-line DataError (the
    search would keep its ratios) unless not ``strict`` (only the proxy is read); a ``reuse.store`` that cannot be told
    apart is said when fit reads the store's runs."""
    raw = snapshot.meta.get("config")
    if raw and raw.get("reuse"):  # reuse paths where they lie now (an older store recorded them relative: locate)
        found = {k: str(p) for k in ("store", "plan")
                 if (p := located_reuse(snapshot.meta, snapshot.root, k, strict=strict and k == "plan"))}
        raw = {**raw, "reuse": {**raw["reuse"], **found}}
    return stored_config(raw, where=f"{snapshot.root}/store.json") if raw else None


def check_config_store(cfg: SweepConfig, snapshot: StoreSnapshot, *, where: str = "the config",
                       propose_only: bool = False) -> None:
    """The config names the domains the store's runs were trained on.

    ``propose_only``: the config only sets the search (``propose:``, ``seed:``). Then a store of imported runs, which has
    no sweep config and no data here, accepts a config without a ``data:`` section: the domains are the store's."""
    store_domains = snapshot.meta.get("domains")
    if not store_domains:  # no domains recorded: nothing to compare
        return
    imported = not snapshot.meta.get("config")
    if propose_only and imported and "data" not in cfg.model_fields_set:
        return
    config_domains = sorted(s.name for s in domain_specs(cfg.data))
    if config_domains != sorted(store_domains):
        fix = ("Pass the config the store was swept with, or omit it to use the store's own config" if not imported else
               "The store holds imported runs (no sweep config of its own): " + (
                   "for propose, remove the config's data: section so that it sets only the search (propose:, seed:)"
                   if propose_only else "to train them here, the config's data: section must name those domains with "
                   "their files (corpus: none, one data.domains entry each)"))
        raise ConsistencyError(f"{where} names domains {config_domains}, but the store {snapshot.root} was swept on "
                               f"{sorted(store_domains)}. {fix}.")


# ---------------------------------------------------------------- select (before the sweep: quality pools from documents)

def select(pools: dict[str, str], target: str, out_dir: str | Path, **options) -> SelectResult:
    """Score every document of the pools against the target and write score buckets as quality pools
    (see :func:`mixopt.selection.select.select_documents`)."""
    return select_documents(pools, target, out_dir, **options)


# ---------------------------------------------------------------- score (pools against a target, with optimal transport)

def base_mixture_docs(base_mixture: str | Path | None, extra: dict[str, str], config: str | None = None, *,
                      text_field: str = "text", max_docs: int = 400, seed: int = 0,
                      note: Callable[[str], None] | None = None) -> tuple[dict[str, float] | None, dict[str, list[str]] | None]:
    """`mixopt score --base-mixture`: the base plan's overall shares and each of its domains' documents, ``(None, None)``
    without a base mixture. A domain's documents are read from ``extra`` (``--paths DOMAIN=PATH``, with ``text_field``),
    else ``config`` (the sweep config the plan was made with: a YAML path or a packaged name), else the embedded corpus
    where the plan's ``provenance.embedded_domains`` lists it (every domain for a plan from before stop 36, with a
    ``note``; default: a warning); ``max_docs`` documents each, a sample seeded by ``seed``. One-line errors name the
    option to fix."""
    if base_mixture is None and (extra or config is not None):
        raise ConfigError(f"{'--paths gives' if extra else '--config names'} data for base-mixture domains, but no "
                          f"--base-mixture was given. Add --base-mixture PLAN.yaml or drop {'--paths' if extra else '--config'}.")
    if base_mixture is None:
        return None, None
    base_plan = load_plan(base_mixture)
    base_w = base_plan.overall_weights()
    unknown = sorted(set(extra) - set(base_w))
    if unknown:
        raise ConfigError(f"--paths names {unknown}, which the base mixture {base_mixture} does not hold; its domains are "
                          f"{sorted(base_w)}. Fix the domain name.")
    specs = {s.name: s for s in domain_specs(load_config(resolve_config(config)).data)} if config is not None else {}
    plan_embedded = base_plan.provenance.get("embedded_domains")  # None: a plan from before stop 36
    known = set(embedded_domains()) if plan_embedded is None else set(plan_embedded)
    if config is not None:
        missing = sorted(d for d in base_w if d not in extra and d not in specs)
        if missing:
            raise ConfigError(f"Base-mixture domains {missing} are not domains of --config {config}. Pass the config the "
                              "plan was made with, or give their data with --paths DOMAIN=PATH.")
    missing = sorted(d for d in base_w if d not in extra and d not in known and d not in specs)
    if missing:
        where = ("are not in the embedded corpus" if plan_embedded is None
                 else "were trained on your own data (the plan's provenance.embedded_domains does not list them)")
        raise ConfigError(f"Base-mixture domains {missing} {where}. Give their data with --paths DOMAIN=PATH"
                          + (" (every domain of the plan that was not read from the embedded corpus)." if plan_embedded is None else "."))
    fallback = sorted(d for d in base_w if d not in extra and d not in specs)
    if fallback and plan_embedded is None:  # an older plan cannot say where its domains' data came from: say what is read
        said = (f"note: read base-mixture domain(s) {', '.join(fallback)} from the embedded corpus (no --paths); if "
                "the plan was made on your own data of those names, pass --paths DOMAIN=PATH for each")
        if note is not None:
            note(said)
        else:
            warnings.warn(said, stacklevel=2)
    base_docs = {}
    for d in base_w:
        spec = (source_spec(d, extra[d], option="--paths", text_field=text_field) if d in extra
                else specs[d] if d in specs else source_spec(d, str(embedded_path(d)), option="--paths"))
        base_docs[d] = read_texts(spec, option="--config" if d in specs and d not in extra else "--paths",
                                  max_documents=max_docs, seed=seed)
    return base_w, base_docs


# ---------------------------------------------------------------- sweep

def sweep(cfg: SweepConfig, store_dir: str | Path, **options) -> SweepSummary:
    """Train every planned run of ``cfg`` that the store does not hold yet (see :func:`mixopt.runs.driver.run_sweep`)."""
    return run_sweep(cfg, store_dir, **options)


# ---------------------------------------------------------------- fit

def _one_token_count(table) -> float | None:
    """The runs' training tokens when every run records the same count (imported runs have no sweep config to say)."""
    known = {float(t) for t in table.tokens if np.isfinite(t)}
    return known.pop() if len(known) == 1 and np.isfinite(table.tokens).all() else None


def _unplaced_scales(table) -> str:
    """The one-line refusal for a store whose runs differ in scale while some of them lack model_params or tokens."""
    n, d = np.isfinite(table.model_params), np.isfinite(table.tokens)
    lacking = [f"{int((~n).sum())} without model_params" if (~n).any() else "", f"{int((~d).sum())} without tokens" if (~d).any() else ""]
    return (f"The runs differ in scale but {' and '.join(x for x in lacking if x)} (of {len(n)}), so fit can neither "
            "pool them as one scale nor place them on a scale axis. Give every run both: re-import with --model-params "
            "and --tokens (or model_params and tokens columns in the metrics CSV), into a fresh store.")


def unmeasured_target(table, target: str, y: np.ndarray) -> str:
    """The one-line refusal for a target some runs have no finite value of: which component metrics are missing, in
    how many runs, at which scales, and the fix."""
    bad = ~np.isfinite(y)
    cols = [target] if target in table.metrics else table.target_components(target)[0]
    missing = [f"{c} in {int((~np.isfinite(table.metrics[c]) & bad).sum())}" for c in cols
               if (~np.isfinite(table.metrics[c]) & bad).any()]
    at = sorted({(float(n), float(d)) for n, d in zip(table.model_params[bad], table.tokens[bad]) if np.isfinite(n) and np.isfinite(d)})
    where = f" (runs at {_scale_text(at[:3])}{', ...' if len(at) > 3 else ''})" if at else ""
    fix = ("Pick a target every run measured (e.g. mean:a,b of the metrics they share, or one metric column)"
           + (", or fit each scale's runs in a store of their own" if at else "") + ".")
    return (f"Target '{target}' has no finite value in {int(bad.sum())} of {len(y)} run(s){where}: missing "
            f"{'; '.join(missing) if missing else 'values'}. {fix}")


def default_scale(model: FittedModel, model_params: float | None = None, tokens: float | None = None) -> tuple[float, float]:
    """The scale a scale-aware model predicts at when not told (as propose's default): the largest trained model size,
    and the token budget its largest scale trained (given values are kept)."""
    scales = [(float(n), float(d)) for n, d in model.meta.get("scales") or []]
    top = max(scales)
    return (float(model_params) if model_params is not None else top[0]), (float(tokens) if tokens is not None else top[1])


#: The progress labels of :func:`fit`: the cross-validation folds, then the fit on every run.
FIT_FOLDS_LABEL = "fit: cross-validation folds"
FIT_FINAL_LABEL = "fit: the final fit on every run"


def fit(snapshot: StoreSnapshot, target: str, model_name: str = "default", *, folds: int = 5, seed: int = 0,
        budgets: bool = False, progress: Progress | None = None) -> FittedModel:
    """Cross-validate, then fit on every usable sweep run; the model's meta carries the store's fingerprints and seed noise.

    Each run gives its final measurement; with ``budgets`` also every WSD decay branch (:func:`fit_rows`).
    ``progress(label, done, total)``, when given, hears of each fold (:data:`FIT_FOLDS_LABEL`) and of the final fit
    (:data:`FIT_FINAL_LABEL`); a progress bar's, the model is the same without it.
    """
    tick = progress or (lambda label, done, total: None)

    def folds_done(done: int, total: int) -> None:
        tick(FIT_FOLDS_LABEL, done, total)

    reused, partial, reuse_line = reused_records(snapshot, target)  # config reuse.store: an earlier sweep's runs, new domains at 0
    swept = sweep_records(snapshot.ok)
    if problem := mixed_proxy_problem(swept, snapshot.root):  # e.g. two sweeps with other proxies raced into one store
        raise ConsistencyError(problem)
    runs = swept + reused
    table = records_table(runs)
    if len(table.run_ids) < 2:
        raise FitError(f"The store {snapshot.root} has {len(table.run_ids)} finished run(s); fitting needs at least 2 "
                       "(and cross-validation 5 or more). Sweep more runs first.")
    y = table.target(target)
    if not np.all(np.isfinite(y)):
        raise FitError(unmeasured_target(table, target, y))
    groups = repeat_groups(runs)
    noise = measure_noise(y, groups, scales=[tuple(r) for r in table.scale_matrix()])  # on each run's final measurement
    if noise["seed_sd"] is None and (pending := unfinished_repeats(snapshot)):
        noise["repeats_pending"] = pending  # noise_line says to resume the sweep, not to ask for seeds it asks for
    elif noise["seed_sd"] is None and (seeds := unrepeated_seeds(snapshot)):
        noise["seeds_without_anchors"] = seeds  # noise_line says what to repeat, not to ask for the seeds it has
    n_reused, used_partial = len(reused), False
    n_runs, final, notes = len(y), table, []
    if note := mixed_dtype_note(swept, snapshot.root, snapshot.meta.get("proxy_dtype")):
        notes.append(note)
    if note := file_gap_note(runs, y, groups, W=table.W):
        notes.append(note)
    if budgets:
        table = fit_rows(runs, table, target)
        y = table.target(target)
    spread = None
    every = table.scales()
    scales = [sc for sc in every if np.isfinite(sc).all()]
    if len(every) >= 2 and len(scales) < len(every):  # runs of several scales, some of them not placed: pooling them is wrong
        raise FitError(_unplaced_scales(table))
    if len(scales) >= 2:  # runs at several (model_params, tokens): a scale-aware model, judged on the largest scale held out
        one_size = len({sc[0] for sc in scales}) == 1  # with --budgets: every extrapolation is in tokens
        if note := together_note(scales):
            notes.append(note)
        if budgets and not one_size:
            notes.append("--budgets on several model sizes: on the embedded 3-size store the decay-branch rows made the "
                         "largest size's level worse in held-out CV (MAE 0.100 vs 0.048 from the runs' ends; RESULTS.md); "
                         "fit without --budgets unless your CV says otherwise")
        default = DEFAULT_BUDGET_ESTIMATOR if budgets and one_size else DEFAULT_SCALE_ESTIMATOR
        name = default if model_name == "default" else model_name
        if name not in SCALE_ESTIMATORS:
            spans = "With --budgets the rows span" if budgets else "The store spans"
            raise FitError(f"{spans} {len(scales)} scales ({_scale_text(scales[:3])}{', ...' if len(scales) > 3 else ''}), "
                           f"so fit needs a scale-aware model; '{model_name}' is not one. Use --model default or one of "
                           f"{', '.join(sorted(SCALE_ESTIMATORS))}{', or drop --budgets' if budgets else ''}.")
        est = SCALE_ESTIMATORS[name](random_state=seed)
        if "schedule" in est.get_params():  # the annealing law reads each run as a straight run of the store's schedule
            est.set_params(schedule=(snapshot.meta.get("config") or {}).get("proxy"))
        if noise["seed_sd"] is not None:
            est.set_params(noise_variance=noise["seed_sd"] ** 2)
        fit_y = y
        if "mixture" in est.get_params():  # shift-gp: its mixture model is the one fit gives a single scale
            mixture, _ = make_estimator(final, target, "default", seed=seed, groups=groups if noise["seed_sd"] is not None else None)
            columns = isinstance(mixture, MetricAverage) or target in table.metrics  # what fit_y's columns are
            est.set_params(mixture=mixture, component_domains=table.component_domains(target) if columns else None)
            if isinstance(mixture, MetricAverage):  # an averaged target: the component metrics, as at one scale
                fit_y = table.component_matrix(target)[0]
        X = scale_inputs(table.W, table.model_params, table.tokens)
        mixtures = mixture_groups(table.W)
        n_big = len(np.unique(mixtures[largest_scale_rows(X)[1]]))  # the folds deal the largest scale's mixtures, not its runs
        k = max(2, min(folds, n_big))
        folds_done(0, k)  # the bar shows before the first fold, which can take minutes on a large store
        cv = held_out_scale_cv(est, X, fit_y, k=k, seed=seed, groups=mixtures, progress=folds_done)
        tick(FIT_FINAL_LABEL, 0, 1)
        est.fit(X, fit_y)
        backtest = est.backtest_ if hasattr(est, "backtest_") else held_out_level(est, X, fit_y)  # shift-gp runs its own
        tick(FIT_FINAL_LABEL, 1, 1)
        notes += level_notes(backtest, widened=bool(getattr(est, "level_bias_", 0.0)))
        if getattr(est, "domain_slopes_", None):  # shift-gp spreads its level shift by each domain's weight
            factors = est.shift_factor(final.W)
            spread = [float(factors.min()), float(factors.max())]
        if budgets and not significant_miss(backtest):  # the backtest did not speak: the rule of thumb
            notes += short_budget_notes(runs, table)
    else:
        backtest = None
        est, fit_y = make_estimator(table, target, model_name, seed=seed, groups=groups if noise["seed_sd"] is not None else None)
        mixtures = mixture_groups(table.W)
        if mixtures.max() < 1:
            raise FitError(f"The store {snapshot.root} trains one mixture only ({len(y)} run(s) of it); fitting needs at least 2 "
                           "distinct mixtures. Sweep more runs first.")
        extra = component_rows(partial, runs, target) if partial and isinstance(est, MetricAverage) else None
        k = min(folds, len(np.unique(mixtures)))
        folds_done(0, k)  # the bar shows before the first fold, which can take minutes on a large store
        try:
            cv = cross_validate(est, table.W, fit_y, k=k, seed=seed, groups=mixtures, train_only=extra, progress=folds_done)
        except FitError as exc:
            need = est.min_rows(table.W.shape[1]) if hasattr(est, "min_rows") else getattr(est, "min_runs", 2)
            if "needs at least" not in str(exc) or len(fit_y) < need:
                raise
            raise FitError(f"The store {snapshot.root} has {len(fit_y)} runs: enough to fit {type(est).__name__} "
                           f"(it needs {need} for {table.W.shape[1]} domains) but not to cross-validate it, since each "
                           f"of the {k} folds trains on the runs of the others. Sweep a few more runs (mixopt sweep "
                           "--runs N).") from None
        tick(FIT_FINAL_LABEL, 0, 1)
        est.fit(*((np.vstack([table.W, extra[0]]), np.vstack([fit_y, extra[1]])) if extra else (table.W, fit_y)))
        tick(FIT_FINAL_LABEL, 1, 1)
        cv["y_true"] = y
        n_reused += len(partial) if extra else 0
        used_partial = bool(extra)
    if partial and not used_partial:  # the runs that measured all of the target still joined (n_reused)
        which = f"the {len(partial)} that measured only some components are " if n_reused else ""
        reuse_line += (f"; {which}not used: only the default model of an averaged target at one scale (one model per "
                       "component) can learn from runs that measured some of its components")
    meta = snapshot.meta
    cfg = meta.get("config") or {}
    model_meta = {
        "domains": table.domains, "target": target, "estimator": model_name, "n_runs": n_runs, "n_rows": len(y),
        "token_counts": meta.get("token_counts", {}), "tokens_per_doc": meta.get("tokens_per_doc", {}),
        "proxy_tokens": (cfg.get("proxy") or {}).get("tokens") or _one_token_count(final), "store": str(Path(snapshot.root).resolve()), "store_fingerprint": snapshot.fingerprint,
        "runs_fingerprint": fit_runs_fingerprint(snapshot),
        "data_fingerprint": meta.get("data_fingerprint"), "train_mixtures": final.W.tolist(),
        "cv": {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in cv.items()},
        "cv_kind": "largest scale held out" if len(scales) >= 2 else f"{cv['k']}-fold",
        "noise": noise, "scales": [list(sc) for sc in scales], "scale_aware": len(scales) >= 2, "budgets": budgets,
        "seed": seed,  # of the CV folds and the estimator
        "notes": notes, "level_backtest": backtest, "shift_spread": spread, "reused": reuse_line,
        "reused_runs": n_reused,
        # one-scale fits: propose's optimizer's-curse cross-fit refits the model on halves of these rows. Scale-aware
        # fits keep none: on halves their level extrapolation differs so much that the measured optimism (0.03-0.13)
        # made the claims worse (held 10 -> 6 of 18 on a WSD store; RESULTS.md "The optimizer's curse")
        "fit_rows": None if len(scales) >= 2 else {"W": table.W.tolist(), "Y": np.asarray(fit_y).tolist()},
    }
    return FittedModel(est, model_meta)


def unfinished_repeats(snapshot: StoreSnapshot) -> dict[str, int] | None:
    """``{noise_seeds, missing, planned}`` when the store's sweep config repeats its anchors over seeds
    (``sampler.noise_seeds`` >= 2, with baselines or ``noise_mixtures``) and runs it planned (store.json's ``planned``)
    are not in the store yet: an interrupted sweep, whose seed repeats come after the mixtures they repeat. None
    otherwise (a finished sweep, or a store without a sweep config)."""
    sampler = (snapshot.meta.get("config") or {}).get("sampler") or {}
    seeds, anchors = sampler.get("noise_seeds") or 1, len(sampler.get("baselines") or []) + (sampler.get("noise_mixtures") or 0)
    planned = snapshot.meta.get("planned") or []
    held = {r.run_id for r in snapshot.records}
    missing = sum(1 for run_id in planned if run_id not in held)
    if seeds < 2 or not anchors or not missing:
        return None
    return {"noise_seeds": int(seeds), "missing": missing, "planned": len(planned)}


def unrepeated_seeds(snapshot: StoreSnapshot) -> int | None:
    """The sweep config's ``sampler.noise_seeds`` when it is 2 or more but names no mixture to repeat (no baselines and
    ``noise_mixtures: 0``), so no seed noise was measured; None otherwise."""
    sampler = (snapshot.meta.get("config") or {}).get("sampler") or {}
    seeds = int(sampler.get("noise_seeds") or 1)
    return seeds if seeds >= 2 and not sampler.get("baselines") and not sampler.get("noise_mixtures") else None


def fit_runs_fingerprint(snapshot: StoreSnapshot) -> str:
    """Hash of the runs :func:`fit` learns from in ``snapshot``: its usable sweep runs (``verify:`` and ``pool:`` runs
    join no fit), so a store that only gained such runs fits the same model."""
    return records_fingerprint(sweep_records(snapshot.ok))


def refit_differs(model: FittedModel, snapshot: StoreSnapshot) -> bool:
    """Whether fitting on ``snapshot`` now would learn from other runs than ``model`` did (a model saved before fit
    recorded ``runs_fingerprint`` compares the whole store's fingerprint, with or without the non-sweep runs)."""
    now = fit_runs_fingerprint(snapshot)
    if model.meta.get("runs_fingerprint"):
        return model.meta["runs_fingerprint"] != now
    old = model.meta.get("store_fingerprint")
    return old is not None and old not in (snapshot.fingerprint, records_fingerprint(sweep_records(snapshot.records)), now)


def component_rows(partial: list, runs: list, target: str) -> tuple[np.ndarray, np.ndarray]:
    """``(W, Y)`` of runs that measured only some of an averaged target's components (NaN elsewhere), in the columns of
    a table of ``runs``: rows for ``MetricAverage``'s component models."""
    both = records_table(runs + partial)
    rows = both.rows(np.arange(len(both.run_ids)) >= len(runs))
    return rows.W, rows.component_matrix(target)[0]


def fit_rows(runs: list, final: RunTable, target: str) -> RunTable:
    """Every token budget the runs measured: each run's end and, under WSD, each decay branch (``budget_table``).

    A one-size WSD store fitted this way can speak for a larger token budget (the plan's): shift-gp keeps the ends'
    ranking and moves the level along a power law in tokens. ``fit`` uses the ends unless asked (``budgets=True``):
    the branches sit at other budgets than the plan's, scale-gp ranks worse with them, and across model sizes they
    made the level worse (numbers in RESULTS.md, "Budget transfer").
    """
    rows = budget_table(runs)
    rows = rows.rows(np.isfinite(rows.target(target)))  # a branch that lacks the target's metrics drops out
    if len(rows.run_ids) == len(final.run_ids):
        raise FitError("--budgets (config: propose.fit_budgets) needs runs that measured several token budgets "
                       "(proxy.schedule: wsd with checkpoints before 1.0: each checkpoint is a decay branch); this store's "
                       "runs measured only their end. Drop --budgets (or set propose.fit_budgets: false), or sweep with "
                       "schedule: wsd.")
    return rows


#: Fewer optimizer steps than this and a budget sits in the initial transient, where the loss falls faster than the
#: power law the level follows: from branches at 10 and 20 steps (40-step runs) predictions at 4x-16x came out 0.47-0.83
#: nats too low (benchmarks/verify_plans.py --budgets); from 61-244 steps (the demo's) within 0.05 (budget_transfer.py).
SHORT_BUDGET_STEPS = 50


def short_budget_notes(runs: list, rows: RunTable) -> list[str]:
    """A warning when the shortest budget fitted has fewer than ``SHORT_BUDGET_STEPS`` optimizer steps."""
    step = min((s for s in map(step_tokens, (r.proxy for r in runs)) if s > 0), default=0)
    if not step or not np.isfinite(rows.tokens).any():
        return []
    shortest = float(np.nanmin(rows.tokens)) / step
    if shortest >= SHORT_BUDGET_STEPS:
        return []
    return [f"the shortest budget fitted is {shortest:.0f} optimizer steps: in the first ~{SHORT_BUDGET_STEPS} steps the loss "
            "falls faster than the power law the level follows, so predictions at larger budgets come out too low "
            "(0.5-0.8 nats from 10-40-step runs). Train longer proxies, or put the first checkpoint later."]


def at_scale(model: FittedModel, model_params: float | None = None, tokens: float | None = None):
    """The model as a mixture -> metric predictor at a target scale (a scale-aware model), or as it is.

    A model fitted on one scale ranks mixtures at any scale but cannot say the level there: asking it for another
    scale is a one-line error that says so.
    """
    if model.meta.get("scale_aware"):
        return AtScale(model.estimator, model_params, tokens)
    if model_params is not None or tokens is not None:
        scales = model.meta.get("scales") or []
        raise FitError(f"The model was fitted on runs at one scale ({_scale_text(scales)}); one scale transfers the mixtures' rank, "
                       "not their level at another size. Drop --model-params/--tokens (the ranking holds), or sweep a second "
                       "proxy size (`sizes:` in the config) and fit again.")
    return model.estimator


def resolved_estimator(name: str | None, meta: dict) -> str | None:
    """The registry name ``fit`` builds for the model name ``name`` on the runs a model's ``meta`` describes: on 2+
    scales ``default`` is :data:`DEFAULT_SCALE_ESTIMATOR` (:data:`DEFAULT_BUDGET_ESTIMATOR` with --budgets on one
    size), as :func:`fit` picks it; any other name (and ``default`` at one scale) as is."""
    if name != "default" or not meta.get("scale_aware"):
        return name
    one_size = len({sc[0] for sc in meta.get("scales") or []}) == 1
    return DEFAULT_BUDGET_ESTIMATOR if meta.get("budgets") and one_size else DEFAULT_SCALE_ESTIMATOR


def make_estimator(table: RunTable, target: str, model_name: str = "default", *, seed: int = 0,
                   groups: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
    """The estimator ``fit`` ships for ``target`` (unfitted) and its training targets Y.

    An averaged target with the default model becomes ``MetricAverage`` over one default GP per component metric
    (Y has one column per component); otherwise the named estimator on the target column. With ``groups`` (repeat
    groups of the table's rows), each GP's noise level is fixed to the seed noise measured on those repeats.
    """
    if target not in table.metrics and model_name == "default":
        cols, weights = table.target_components(target)
        noise_var = [seed_noise(table.metrics[c], groups)[0] for c in cols] if groups is not None else None
        est = MetricAverage(estimator=get_estimator("default", where="--model"), weights=weights, random_state=seed,
                            noise_variance=noise_var)
        return est, table.component_matrix(target)[0]
    est = get_estimator(model_name, where="--model")
    y = table.target(target)
    if "random_state" in est.get_params():
        est.set_params(random_state=seed)
    if groups is not None and "noise_variance" in est.get_params():
        est.set_params(noise_variance=seed_noise(y, groups)[0])
    return est, y


# ---------------------------------------------------------------- propose

def propose(model: FittedModel, *, config: SweepConfig | None = None, snapshot: StoreSnapshot | None = None,
            budget_tokens: float | None = None, model_params: float | None = None, seed: int | None = None,
            use_projector: bool = True, progress: Progress | None = None, config_name: str | None = None) -> Plan:
    """Search for the best plan with a fitted model; the store (optional) adds the two-phase model and the projector.
    ``progress(label, done, total)`` hears of the search's stages (a progress bar's; the plan is the same without it).
    ``config_name``: the config's path as the user gave it, for the fixes the pool files' notes name."""
    require_positive("budget_tokens", budget_tokens, "None gives the default.")
    require_positive("model_params", model_params, "None gives the default.")
    where = "this config"
    if snapshot is not None:
        check_model_store(model, snapshot)
        if config is None:
            config, where = store_config(snapshot), "the store's config"
        else:
            check_config_store(config, snapshot, propose_only=True)
    pcfg = config.propose if config else ProposeConfig()
    seed = (config.seed if config else 0) if seed is None else seed
    meta = model.meta
    cv = meta.get("cv", {})
    ctx = ProposeContext(
        domains=model.domains, target=model.target, token_counts=meta.get("token_counts") or {},
        tokens_per_doc=meta.get("tokens_per_doc") or {}, train_mixtures=np.asarray(meta.get("train_mixtures") or [], dtype=float),
        proxy_tokens=meta.get("proxy_tokens"), noise=meta.get("noise"),
        sampler=config.sampler if config is not None else SamplerConfig(),
        records=sweep_records(snapshot.ok) if snapshot is not None else None,
        provenance={"model": str(model.path) if model.path else None, "store_fingerprint": meta.get("store_fingerprint"),
                    "estimator": meta.get("estimator"), "data_fingerprint": meta.get("data_fingerprint"),
                    "config_hash": _config_hash(config) if config else None, "mixopt_version": __version__,
                    "seed": seed, **({"fit_seed": meta["seed"]} if meta.get("seed") is not None else {}),
                    "cv": {"y_true": cv.get("y_true"), "y_pred": cv.get("oof_pred"), "y_std": cv.get("oof_std"),
                           "spearman": cv.get("spearman")}},
    )
    if config is not None and snapshot is not None and snapshot.meta.get("config"):  # swept runs: their data is known
        ctx.provenance["embedded_domains"] = [d for d in embedded_names(config.data) if d in ctx.domains]  # `score
        # --base-mixture` reads only these from the embedded corpus itself
        ctx.provenance["store"] = str(Path(snapshot.root).resolve())  # verify refuses a store of other proxies
        ctx.provenance["proxy_fingerprint"] = proxy_fingerprint(store_config(snapshot, strict=False))
    if config is not None and pcfg.pools and (ctx.token_counts or "data" in config.model_fields_set):
        # the config's data is the runs' (a search-only config for imported runs leaves data: at the embedded default)
        ctx.specs, ctx.val_fraction = domain_specs(config.data), config.data.val_fraction
        ctx.max_documents, ctx.config_name = config.data.max_documents, config_name  # the pool files' notes
        ctx.tokenizer = config.data.tokenizer  # pools counted in the tokens of the domains' counts and the budget
    if config is not None and config.reuse is not None and config.reuse.plan and not meta.get("reused_runs"):
        # reuse.plan ties the search to the old ratios; with the old runs in the fit the surrogate knows those ratios'
        # neighbourhood, and the free search matched a full recompute (benchmarks/mixture_reuse.py) where the tied one
        # inherited the old plan's misses
        ctx.reuse = ReusedMixture.from_config(config.reuse, ctx.domains)
    plan_note = (stale_plan(ctx.reuse, snapshot.meta)  # the ratio of a domain whose data changed
                 if ctx.reuse is not None and snapshot is not None and snapshot.meta.get("domain_fingerprints") else None)
    projector = data = None
    if use_projector and snapshot is not None and config is not None and ctx.token_counts:
        projector, data = _store_projector(config, ctx)
    data_note = other_data_note(config, snapshot, data, where=where) if snapshot is not None and config is not None else None
    predictor, scale_reasons = model.estimator, []
    if model.meta.get("scale_aware"):  # predict at the target scale: the plan's budget, and N (default: the largest trained)
        asked = budget_tokens is not None or pcfg.budget_tokens is not None
        budget = plan_budget(budget_tokens, pcfg, ctx.proxy_tokens)
        tokens = sorted({float(sc[1]) for sc in model.meta["scales"]})
        if len(tokens) == 1 and budget is not None and not np.isclose(budget, tokens[0]):  # the sizes never varied tokens
            if asked:
                raise FitError(f"--budget-tokens {budget:g} asks for another token budget, but every run of the store has "
                               f"tokens = {tokens[0]:g}: its sizes vary the model, not the tokens. Drop --budget-tokens "
                               "(and propose.budget_tokens), or add runs at a second token budget.")
            budget = budget_tokens = tokens[0]  # the default (4x the proxy's tokens) cannot be predicted from these runs
            scale_reasons.append(f"budget: the runs' own {tokens[0]:.3g} tokens, not the default 4x: every run of the "
                                 "store trained that many (its sizes vary the model, not the tokens), so no other "
                                 "budget can be predicted")
        elif len(tokens) > 1 and not asked:  # sizes trained different budgets: 4x the largest size's, not the base proxy's
            top_n, top_d = max((float(sc[0]), float(sc[1])) for sc in model.meta["scales"])
            budget = budget_tokens = DEFAULT_BUDGET_MULTIPLE * top_d
            scale_reasons.append(f"budget {budget:.3g} tokens: {DEFAULT_BUDGET_MULTIPLE}x the {top_d:.3g} tokens the "
                                 f"largest proxy size ({top_n:.3g} non-embedding parameters) trained, the default "
                                 "(--budget-tokens or propose.budget_tokens sets the budget you train at)")
        n = model_params if model_params is not None else max(sc[0] for sc in model.meta["scales"])
        predictor = at_scale(model, n, budget)
        ctx.provenance["target_scale"] = {"model_params": n, "tokens": budget}
        if far := extrapolation_note(model.meta.get("scales") or [], n, budget):
            scale_reasons.append(far)
    elif meta.get("fit_rows"):  # one-scale fits only: kept by fit since the optimizer's-curse correction (RESULTS.md)
        W = np.asarray(meta["fit_rows"]["W"], dtype=float)
        ctx.fit_rows = FitRows(model.estimator, W, np.asarray(meta["fit_rows"]["Y"], dtype=float))
    plan = build_plan(predictor, ctx, pcfg, budget_tokens=budget_tokens, seed=seed, projector=projector, model_params=model_params,
                      progress=progress)
    if config is not None and pcfg.pools:  # each pool's law and where it came from (measured, config or prior)
        plan.pool_laws = {d: declared_laws(d, dp) for d, dp in sorted(pcfg.pools.items())}
        runs = {d: dp.measured for d, dp in pcfg.pools.items() if getattr(dp, "measured", None)}
        if runs:
            plan.provenance["pool_runs"] = runs
    if meta.get("reused_runs"):
        plan.provenance["reused_runs"] = meta["reused_runs"]
        free = (" reuse.plan's ratios are not imposed: with the old runs in the fit the search is free"
                if config is not None and config.reuse is not None and config.reuse.plan else "")
        plan.reasons.insert(0, f"{meta['reused']}.{free}")
    elif meta.get("reused"):  # reuse.store named, but its runs did not measure this target
        plan.reasons.insert(0, meta["reused"])
    plan.reasons += [f"model warning: {note}" for note in model.meta.get("notes") or []] + scale_reasons
    for note in (data_note, plan_note):
        if note:
            warnings.warn(note, stacklevel=2)
            plan.reasons.insert(0, note)
    swept_plan = ((((snapshot.meta.get("config") or {}) if snapshot is not None else {}).get("reuse")) or {}).get("plan")
    here = located_reuse(snapshot.meta, snapshot.root, "plan") if swept_plan else None  # the file, wherever it lies
    ours = config.reuse.plan if config is not None and config.reuse else None
    if swept_plan and not (ours and Path(ours).resolve() == Path(here or swept_plan).resolve()):
        plan.reasons.append(f"the store's sampled mixtures keep the ratios of {swept_plan} (its sweep config's "
                            "`reuse:`), but this config searches otherwise: away from those ratios the surrogate has only "
                            "the baselines' runs; pass the config the store was swept with")
    if model_params is not None and not model.meta.get("scale_aware"):
        plan.reasons.append(f"model_params {model_params:.3g} is used by the repetition law only: the model was fitted at one scale "
                            f"({_scale_text(model.meta.get('scales') or [])}), which transfers the mixtures' rank, not their level; "
                            "sweep a second proxy size (`sizes:`) to predict at N")
    return plan


def with_pools(config: SweepConfig, pools: Any, *, where: str) -> SweepConfig:
    """The config with quality pools (e.g. ``mixopt select``'s pools.yaml: ``{domain: {pools: [...]}}``) added to
    propose.pools: a domain the file names gets the file's pools in place of the config's (a warning names it)."""
    if not isinstance(pools, dict) or not pools:
        raise ConfigError(f"Pools file {where} must map each domain to its pools ({{domain: {{pools: [...]}}}}). Got "
                          f"{type(pools).__name__}. Use the pools.yaml written by `mixopt select`.")
    if replaced := sorted(set(pools) & set(config.propose.pools)):
        which = "that domain" if len(replaced) == 1 else "those domains"
        warnings.warn(f"the pools of {', '.join(replaced)} in {where} replace the config's propose.pools of {which} (a domain's "
                      "pools come from one place); to plan with the config's, remove the domain from the file", stacklevel=2)
    merged = {**config.propose.pools, **{d: domain_pools_from_dict(v, where=f"{where}: {d}") for d, v in pools.items()}}
    return config.model_copy(update={"propose": config.propose.model_copy(update={"pools": merged})})


def measure_pools(config: SweepConfig, store_dir: str | Path, *, repetitions=DEFAULT_REPETITIONS, unique_tokens: int | None = None,
                  progress: Progress | None = None) -> tuple[SweepConfig, list[PoolMeasurement]]:
    """Measure b and tau of the config's quality pools (``propose.pools``) by short proxy runs into the store.

    Pools are scored on propose's target when it is one target set (``target/NAME``), else on the domain's validation
    split. Returns the config with its pools replaced by ``MeasuredPools``, and the measurements.
    """
    pools = config.propose.pools
    if not pools:
        raise ConfigError("Measuring pools needs quality pools: pass --pools pools.yaml (from `mixopt select`) or set "
                          "propose.pools in the config.")
    data = load_domain_set(config.data)
    unknown = sorted(set(pools) - set(data.domains))
    if unknown:
        raise ConfigError(f"propose.pools names domain '{unknown[0]}', which is not a training domain (known: {data.names}). "
                          "Fix the name or add the domain under data.")
    specs = {s.name: s for s in domain_specs(config.data)}
    store = RunStore(store_dir)
    store.check_writable()
    merged, out = dict(pools), []
    name = config.propose.target.removeprefix("target/")
    for domain in sorted(pools):
        target = target_from_data(data, name if name in data.targets else domain, config.data.tokenizer)
        m = measure_pool_values(domain, pools[domain], target=target, proxy=config.proxy, store=store, repetitions=repetitions,
                                unique_tokens=unique_tokens, spec=specs.get(domain),
                                domain_tokens=data.token_counts[domain], mean_tokens_per_doc=data.domains[domain].mean_tokens_per_doc,
                                val_fraction=config.data.val_fraction, tokenizer=config.data.tokenizer, seed=config.seed,
                                progress=progress)
        merged[domain] = m.pools
        out.append(m)
    return config.model_copy(update={"propose": config.propose.model_copy(update={"pools": merged})}), out


def measure_pool_file(domain: str, pools: DomainPools, store_dir: str | Path, *, target: str, config: SweepConfig | None = None,
                      text_field: str = "text", repetitions=DEFAULT_REPETITIONS, unique_tokens: int | None = None,
                      progress: Progress | None = None, pool_text_field: str = "text") -> PoolMeasurement:
    """`plan-pools --measure`: one domain's pools measured on ``target`` — a domain of ``config`` (its validation
    split), a target set of ``config``, else a path of documents (read like a domain, every document evaluated;
    their text under ``text_field``). The proxy, tokenizer and seed are the config's (defaults without one). Pool
    files of a domain that ``config`` does not list are read with ``pool_text_field``."""
    cfg = config or SweepConfig()
    store = RunStore(store_dir)
    store.check_writable()
    names = ({s.name for s in domain_specs(cfg.data)} | {t.name for t in cfg.data.targets}) if config is not None else set()
    data = load_domain_set(cfg.data) if target in names or domain in names else None
    ptarget = target_from_data(data, target, cfg.data.tokenizer) if target in names else target_from_path(target, text_field)
    spec = next((s for s in domain_specs(cfg.data) if s.name == domain), None) if config is not None else None
    files = [p.path for p in pools.pools if p.path is not None]
    if spec is None and files:  # pools from files alone (`mixopt select`'s): how to read them
        spec = DomainSpec(name=domain, path=str(files[0]), text_field=pool_text_field)
    known = data is not None and domain in data.domains
    return measure_pool_values(domain, pools, target=ptarget, proxy=cfg.proxy, store=store, repetitions=repetitions,
                               unique_tokens=unique_tokens, spec=spec, domain_tokens=data.token_counts[domain] if known else None,
                               mean_tokens_per_doc=data.domains[domain].mean_tokens_per_doc if known else None,
                               val_fraction=cfg.data.val_fraction if known else None,
                               tokenizer=cfg.data.tokenizer, seed=cfg.seed, progress=progress)


def selection_manifest(pools_file: str | Path) -> dict:
    """The selection.json beside a ``mixopt select`` pools.yaml (target, text_field, target_text_field, ...); {} if none."""
    try:
        body = json.loads((Path(pools_file).parent / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def measure_targets(pools_file: str | Path, target: str | None = None, text_field: str | None = None,
                    target_text_field: str | None = None) -> tuple[str, str, str]:
    """`plan-pools --measure`'s ``(target, target_text_field, pool_text_field)``: each as given, else the `mixopt select`
    run's that wrote ``pools_file`` (its :func:`selection_manifest`), else ``text`` for the columns. The select run's
    target must still be found (a path of local data or a hub id); one-line errors otherwise."""
    selection = selection_manifest(pools_file)
    from_selection = target is None or target == selection.get("target")
    target = target or selection.get("target")
    if target is None:
        raise ConfigError("--measure needs --target: a PATH of documents (or a domain/target set of --config) the pools should be good for.")
    if from_selection and not (names_local_data(target) or looks_like_hub_id(target)):
        raise ConfigError(f"--measure: the `mixopt select` run scored against --target {target}, which is not found"
                          f"{' (it was stored relative to the folder select ran in)' if not Path(target).is_absolute() else ''}."
                          " Pass --target PATH of the target documents.")
    target_text = target_text_field or (selection.get("target_text_field", selection.get("text_field"))
                                        if from_selection else None) or "text"
    return target, target_text, text_field or selection.get("text_field") or "text"


def save(plan: Plan, out: str | Path) -> Path:
    """Write PLAN.yaml (creating folders; atomic_write_text makes them, so a read-only disk is one line)."""
    return save_plan(plan, out)


HASH_IGNORED_PROXY = ("threads", "device", "compile", "cuda_graphs")  # how runs execute, not what they compute


def _config_hash(config: SweepConfig) -> str:
    """A hash of the config's canonical form: domains sorted by name; where it runs (``workers``, the proxy's threads,
    device, compile, CUDA graphs) left out, so configs that plan alike hash alike."""
    body = config.model_dump(mode="json")
    body.pop("workers", None)
    for k in HASH_IGNORED_PROXY:
        (body.get("proxy") or {}).pop(k, None)
    data = body.get("data") or {}
    data["domains"] = sorted(data.get("domains") or [], key=lambda d: str(d.get("name")))
    if data.get("include"):
        data["include"] = sorted(data["include"])
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _store_projector(config: SweepConfig, ctx: ProposeContext) -> tuple[Any, DomainSet | None]:
    """A callable (w, budget) -> projector summary, or None when the store can't support a projector; and the config's
    data it loaded (None when it could not), which propose compares with the store's (:func:`other_data_note`).

    Documents come from the token cache (decoded), not from re-reading the sources.
    """
    data = None
    try:
        data = load_domain_set(config.data)
        texts = domain_texts(data, config.data.tokenizer, max_docs=60)
        val_docs = {d: texts[d][1] for d in ctx.domains}  # the target side: what the metric measures
        target_sets = {name: texts[name][1] for name in data.targets}
        feats = {d: featurize(texts[d][0], where=f"domain {d}") for d in ctx.domains}  # the source side: what runs train on
        target_feats = featurize(target_docs_for(ctx.target, val_docs, target_sets), where="target")
        proj = fit_store_projector(ctx.records or [], ctx.domains, ctx.target, feats, target_feats)
    except MixoptError as exc:
        warnings.warn(f"OT projector skipped: {exc}", stacklevel=2)
        return None, data
    return (lambda w, budget: projector_summary(proj, np.asarray(w, dtype=float), budget)), data


def data_fingerprints(config: SweepConfig) -> DomainSet:
    """The config's data as a DomainSet of fingerprints only: each domain's and target's files are read and hashed
    into the key :func:`~mixopt.data.domains.tokenize_domain` gives them, but nothing is tokenized (so changed data
    costs one read of its files, not a tokenization). Raises DataError where a file is missing."""
    tok = Tokenizer(config.data.tokenizer)
    empty = np.zeros(0, dtype=np.int64)

    def keyed(spec: DomainSpec, evaluation_only: bool = False) -> TokenizedDomain:
        return TokenizedDomain(spec.name, empty, empty, 0, 0, *domain_keys(spec, tok, config.data, evaluation_only=evaluation_only))

    with warnings.catch_warnings():  # domain_specs' notes on the config: the sweep said them
        warnings.simplefilter("ignore")
        specs = domain_specs(config.data)
    return DomainSet(domains={s.name: keyed(s) for s in specs}, vocab_size=0, eos_id=0, tokenizer=tok.identity,
                     targets={s.name: keyed(s, evaluation_only=True) for s in config.data.targets})


def other_data_note(config: SweepConfig, snapshot: StoreSnapshot, data: DomainSet | None = None, *,
                    where: str = "this config") -> str | None:
    """One line when the data ``config`` reads now (``data``: already loaded, else :func:`data_fingerprints`) differs
    from the data the store was swept on: the model's token counts, so the plan's epochs, are the swept data's. None
    when it is the same, differs in evaluation targets only, or cannot be compared (a store of imported runs; data
    files not on this machine)."""
    recorded = snapshot.meta.get("data_fingerprint")
    if not recorded or not snapshot.meta.get("config"):
        return None
    if data is None:
        try:
            data = data_fingerprints(config)
        except (MixoptError, OSError):  # e.g. proposing on a machine without the data: nothing to compare
            return None
    data.adopt(recorded)  # a store an older mixopt fingerprinted
    if data.fingerprint == recorded:
        return None
    changes = data_changes(snapshot.meta, data, config.data.model_dump(mode="json"))
    if changes and all("evaluation target" in c for c in changes):  # the training data, so the epochs, are the swept
        return None
    said = "; ".join(changes) if changes else f"data fingerprint {recorded}, now {data.fingerprint}"
    root = snapshot.root
    return (f"the data {where} reads differs from the data the store {root} was swept on ({said}): the plan's epochs "
            "use the swept token counts. To plan for the new data, sweep it into a new --store (with `reuse: {store: "
            f"{root}}}` in its config these runs join its fit: README \"When the domain set changes\"), then fit and "
            "propose there")
