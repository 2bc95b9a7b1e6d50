"""`mixopt verify`: train the plan and its alternatives at the target scale with paired seeds."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from .. import pipeline
from ..config import load_config, resolve_config, stored_config
from ..data.domains import load_domain_set
from ..errors import ConfigError
from ..io import atomic_write_text
from ..plan import check_pool_files, load_plan, save_plan
from ..report.tables import verify_table
from ..runs.store import RunStore
from ..verify import ALTERNATIVES, adopted_plan, parse_against, seeds_advice, verify
from .main import app
from .outputs import check_output
from .render import progress_bars


@app.command("verify")
def verify_cmd(
    plan_path: Path = typer.Argument(..., help="plan.yaml written by `mixopt propose`."),
    store: Path = typer.Option(..., "--store", help="Run store the plan was proposed on; verify runs are added to it."),
    config: Path | None = typer.Option(None, "--config", help="Sweep config: a YAML path or a packaged name (default: the one stored with the store)."),
    model_params: float | None = typer.Option(None, "--model-params", help="Train at the store's proxy size nearest N non-embedding parameters "
                                         "(a warning when none is within 10x: add one under `sizes:`, or pass --shape)."),
    shape: str | None = typer.Option(None, "--shape", help="A proxy size name of the sweep, or overrides such as n_embd=128,n_layer=2."),
    tokens: float | None = typer.Option(None, "--tokens", help="Training tokens per run (default: the plan's budget)."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per arm; the same seeds for every arm (paired)."),
    first_seed: int | None = typer.Option(None, "--first-seed", help="The arms' first training seed (default: the "
                                          "config's seed); another one trains fresh runs, e.g. to check an adopted plan "
                                          "on seeds it was not chosen on."),
    against: str = typer.Option(",".join(ALTERNATIVES), "--against", help="Alternatives to train beside the plan; "
                                "add `doremi` for DoReMi's mixture (two more proxy runs at the sweep's proxy shape)."),
    out: Path = typer.Option(Path("verify.json"), "--out", help="VERIFY.json to write (folders are created)."),
    adopt: Path | None = typer.Option(None, "--adopt", help="Also write a plan to this path: the plan with the schedule "
                                      "of the alternative that trained better than it beyond the paired 95% interval "
                                      "(e.g. the end-phase arm), its prediction the measured mean; else the plan kept."),
) -> None:
    """Train PLAN and its alternatives at the target scale with paired seeds; write VERIFY.json and print a table."""
    if model_params is not None and shape is not None:
        raise ConfigError("Pass --model-params or --shape, not both.")
    names = parse_against(against)
    plan = load_plan(plan_path)
    if out.resolve() == plan_path.resolve():
        raise ConfigError(f"--out {out} is the plan file; write VERIFY.json to another path (default verify.json).")
    if adopt is not None and adopt.resolve() in (plan_path.resolve(), out.resolve()):
        raise ConfigError(f"--adopt {adopt} would overwrite the {'plan' if adopt.resolve() == plan_path.resolve() else '--out'} "
                          "file; write the adopted plan to a new path.")
    config = resolve_config(config) if config is not None else None
    inputs = {"plan": plan_path, "--config file": config, "--store folder": store}
    check_output(out, "--out", inputs=inputs)
    if adopt is not None:
        check_output(adopt, "--adopt", inputs={**inputs, "--out file": out})
    # before any training: the pool files it was made on (one moved beside the plan is trained from there)
    pool_files = check_pool_files(plan, str(plan_path), plan_path=plan_path)
    plan = pool_files.plan
    for line in pool_files.notes:
        typer.echo(f"note: {line}", err=True)
    snapshot = pipeline.open_store(store)
    if config is not None:
        cfg = load_config(config, store=store)
        pipeline.check_config_store(cfg, snapshot)
    elif snapshot.meta.get("config"):
        cfg = stored_config(snapshot.meta["config"], where=f"{store}/store.json")
    else:
        raise ConfigError(f"The store {store} holds no sweep config (imported runs?). Pass --config CONFIG whose data: section "
                          "names the store's domains with their files (corpus: none, one data.domains entry each) and whose "
                          "proxy: section is the model to train.")
    data = load_domain_set(cfg.data)
    if "doremi" in names:
        typer.echo(f"doremi: DoReMi's mixture from a reference and a Group-DRO proxy at the sweep's proxy shape "
                   f"(kept under {store}/doremi/, so a second call trains nothing)")
    with progress_bars(Console(stderr=True)) as progress:
        body = verify(plan, RunStore(store, create=False), snapshot, cfg, data, against=names, seeds=seeds, shape=shape,
                      model_params=model_params, tokens=tokens, first_seed=first_seed, progress=progress)
    atomic_write_text(out, json.dumps(body, indent=1) + "\n")
    Console().print(verify_table(body))
    for key in ("note", "pools_note"):
        if note := (body.get("predicted") or {}).get(key):
            typer.echo(f"note: {note}")
    if advice := seeds_advice(body):
        typer.echo(advice)
    typer.echo(f"verify -> {out} ({body['trained']} run(s) trained now)")
    if adopt is not None:
        kept, note = adopted_plan(plan, body, max_epochs=cfg.propose.max_epochs)
        save_plan(kept, adopt)
        typer.echo(f"{note}\nplan -> {adopt} (export it with `mixopt export {adopt} ...`)")
