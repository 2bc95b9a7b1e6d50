"""`mixopt propose`: search for the best plan at a target budget."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .. import pipeline
from ..config import load_config, resolve_config
from ..errors import ConfigError, ConsistencyError, require_positive
from ..io import read_yaml
from ..plan import plan_yaml
from ..runs.pool_runs import check_repetitions
from ..runs.table import sweep_records
from ..selection.output import located_pools
from .main import app
from .outputs import check_output
from .render import only_with, progress_bars


FIT_LABEL = "fitting the model (cross-validated)"


@app.command("propose")
def propose_cmd(
    config: Path | None = typer.Argument(None, help="Sweep config: a YAML path or a packaged name (demo, tiny); its `propose:` section sets the search. For a store of imported runs, leave out `data:`."),
    model: Path | None = typer.Option(None, "--model", help="A model saved by `mixopt fit` (else one is fitted on --store)."),
    store: Path | None = typer.Option(None, "--store", help="Run store; needed for the OT projector and when no --model is given."),
    budget_tokens: float | None = typer.Option(None, "--budget-tokens", help="Target training tokens D (default: the config's, else 4x the proxy tokens; for sizes that trained different tokens, 4x the largest size's)."),
    model_params: float | None = typer.Option(None, "--model-params", help="Target model size N (non-embedding params): searched at N with a scale-aware model (a store of 2+ proxy sizes); else recorded and used by the repetition law."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Search seed (default: the config's seed)."),
    no_projector: bool = typer.Option(False, "--no-projector", help="Skip the OT projector."),
    out: Path = typer.Option(Path("plan.yaml"), "--out", help="Plan file to write (folders are created)."),
    pools: Path | None = typer.Option(None, "--pools", help="pools.yaml written by `mixopt select` ({domain: {pools: [...]}}, "
                                                           "paths relative to it); added to the config's propose.pools; a domain it names gets "
                                                           "these pools instead of the config's (a warning names it)."),
    measure_pools: bool = typer.Option(False, "--measure-pools", help="Measure b and tau of the quality pools by short proxy runs "
                                       "(one per pool and repetition count, on propose's target set or the domain's validation "
                                       "split) into --store before planning; T-MARS priors only where a fit is unusable."),
    pool_repetitions: str | None = typer.Option(None, "--pool-repetitions", help="--measure-pools: repetition counts k, at least 4 "
                                             "(a pool's law is fitted on >= 4 runs, >= 2 past one epoch; k*U tokens per run; default 1,2,4,8)."),
    pool_unique_tokens: int | None = typer.Option(None, "--pool-unique-tokens", help="--measure-pools: unique tokens U per pool "
                                                  "(default: the smallest pool, at most the proxy's tokens / max k)."),
) -> None:
    """Write PLAN.yaml: phases, epochs, predicted metric and the constraints that bind."""
    only_with("--measure-pools", measure_pools, pool_repetitions=pool_repetitions is not None,
              pool_unique_tokens=pool_unique_tokens is not None)
    require_positive("--budget-tokens", budget_tokens, "Pass the plan's target training tokens, e.g. 4e9; omit it for the config's.")
    require_positive("--model-params", model_params, "Pass the target model's non-embedding parameters, e.g. 1e9; or omit it.")
    config = resolve_config(config) if config is not None else None
    inputs = {"config": config, "--model file": model, "--pools file": pools, "--store folder": store}
    check_output(out, "--out", inputs=inputs)
    if model is None:  # a model is fitted and saved beside the plan, with its plot: neither may be an input or the plan
        model_out = pipeline.propose_model_path(out)
        for path in (model_out, pipeline.plot_path_for(model_out)):
            check_output(path, f"The model propose fits (saved beside --out {out}):", inputs={**inputs, "--out plan": out})
    cfg = load_config(config, store=store) if config is not None else None
    if pools is not None:
        if cfg is None:
            raise ConfigError("--pools needs the sweep CONFIG (its data section names the pooled domains). Pass CONFIG before the options.")
        raw = read_yaml(pools, what="Pools file", missing_hint="Write one with `mixopt select ... --out DIR`.")
        cfg = pipeline.with_pools(cfg, located_pools(raw, pools), where=str(pools))  # pool files relative to the pools file
    fitted = pipeline.open_model(model) if model is not None else None
    if fitted is not None and cfg is not None:
        _check_fit_settings(cfg, fitted, config, model)  # before --measure-pools trains anything
    if measure_pools:
        if cfg is None or store is None:
            raise ConfigError("--measure-pools trains proxy runs with the config's proxy into the run store. Pass CONFIG and --store DIR.")
        reps = check_repetitions(pool_repetitions or "1,2,4,8", fit_option="--pool-repetitions")
        with progress_bars(Console(stderr=True)) as progress:
            cfg, measured = pipeline.measure_pools(cfg, store, repetitions=reps, unique_tokens=pool_unique_tokens, progress=progress)
        for m in measured:
            runs = f"{m.runs.trained} run(s) trained, {m.runs.skipped} already in the store" if m.runs else "nothing to measure"
            dropped = sum(m.runs.excluded.values()) if m.runs else 0
            runs += f" ({dropped} pool document(s) the target holds were not trained on)" if dropped else ""
            laws = ", ".join(f"{p.name} {p.law_source} (b={p.b:.3g}, tau={p.tau:.3g})" for p in m.resolved)
            Console(stderr=True).print(f"pools of {m.domain}: {runs}; {laws}", soft_wrap=True, markup=False)
    if model is None and store is None:
        raise ConfigError("propose needs a fitted model (--model MODEL) or a run store to fit one on (--store DIR). Pass one of them.")
    if store is None and fitted is not None and fitted.meta.get("store"):
        if Path(fitted.meta["store"]).is_dir():
            store = Path(fitted.meta["store"])  # the store the model was fitted on (an older model's: relative to the cwd)
        else:
            Console(stderr=True).print(
                f"note: --model {model} was fitted on the store {fitted.meta['store']}, which is not found from here: the "
                "plan is made without it (no projector prediction, best-run baseline or end phase from its runs, and no "
                "store or proxy fingerprint for verify). Pass --store DIR to use it.", soft_wrap=True, markup=False)
    snapshot = pipeline.open_store(store) if store is not None else None
    if fitted is not None and snapshot is not None:
        pipeline.check_model_store(fitted, snapshot)  # another store's domains or data: one line, before any note
    if fitted is not None and snapshot is not None and pipeline.refit_differs(fitted, snapshot):  # verify:/pool: runs join no fit
        Console(stderr=True).print(
            f"note: --model {model} was fitted on {fitted.meta.get('store')} with {fitted.meta.get('n_runs')} runs, not on the "
            f"sweep runs {store} holds now ({len(sweep_records(snapshot.ok))} finished): refit (`mixopt fit --store {store}`) "
            "to use them", soft_wrap=True, markup=False)
    with progress_bars(Console(stderr=True)) as progress:  # bars on a terminal only; the search's candidates and stages
        if fitted is None:
            fit_cfg = cfg if cfg is not None else pipeline.store_config(snapshot)  # no CONFIG: the store's, as the search reads it
            pcfg = fit_cfg.propose if fit_cfg else None
            progress(FIT_LABEL, 0, 1)
            fitted = pipeline.fit(snapshot, pcfg.target if pcfg else "mean:all-domains", pcfg.model if pcfg else "default",
                                  seed=seed if seed is not None else (fit_cfg.seed if fit_cfg else 0), budgets=bool(pcfg and pcfg.fit_budgets))
            pipeline.save_fitted(fitted, pipeline.propose_model_path(out))
            progress(FIT_LABEL, 1, 1)
        plan = pipeline.propose(fitted, config=cfg, snapshot=snapshot, budget_tokens=budget_tokens, model_params=model_params,
                                seed=seed, use_projector=not no_projector, progress=progress,
                                config_name=str(config) if config is not None else None)
    pipeline.save(plan, out)
    shown = {k: v for k, v in plan.to_dict().items() if k not in ("provenance", "tokens_per_doc")}
    typer.echo(plan_yaml(shown).rstrip())  # as is: YAML that loads (rich would wrap a long reason at the terminal's width)
    typer.echo(f"plan -> {out}")


def _check_fit_settings(cfg, fitted, config: Path | None, model: Path) -> None:
    """The fit settings the config's propose section sets (target, model, fit_budgets) must be those the --model was
    fitted with: the search uses the model file as it is, so a setting it was not fitted with would be ignored."""
    pcfg = cfg.propose
    if "target" in pcfg.model_fields_set and pcfg.target != fitted.target:
        raise ConsistencyError(
            f"The config {config} sets propose.target: {pcfg.target}, but --model {model} predicts {fitted.target}. "
            f"Fit a model for {pcfg.target} (`mixopt fit --store DIR --target {pcfg.target} --out MODEL`), or set "
            f"propose.target to {fitted.target} (or remove it) to plan for the model's metric.")
    estimator = fitted.meta.get("estimator")
    if "model" in pcfg.model_fields_set and estimator is not None and \
            pipeline.resolved_estimator(pcfg.model, fitted.meta) != pipeline.resolved_estimator(estimator, fitted.meta):
        raise ConsistencyError(
            f"The config {config} sets propose.model: {pcfg.model}, but --model {model} was fitted with the {estimator} "
            f"surrogate. Fit one with it (`mixopt fit --store DIR --model {pcfg.model} --out MODEL`), or set propose.model "
            f"to {estimator} (or remove it), or leave out --model to fit one here.")
    budgets = bool(fitted.meta.get("budgets"))
    if "fit_budgets" in pcfg.model_fields_set and pcfg.fit_budgets != budgets:
        how = "with" if budgets else "without"
        fix = "--budgets " if pcfg.fit_budgets else ""
        raise ConsistencyError(
            f"The config {config} sets propose.fit_budgets: {str(pcfg.fit_budgets).lower()}, but --model {model} was "
            f"fitted {how} --budgets. Fit one to match (`mixopt fit --store DIR {fix}--out MODEL`), or set "
            f"propose.fit_budgets to {str(budgets).lower()} (or remove it), or leave out --model to fit one here.")
