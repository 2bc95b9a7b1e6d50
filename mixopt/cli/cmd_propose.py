"""`mixopt propose`: search for the best plan at a target budget."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console

from .main import app


@app.command("propose")
def propose_cmd(
    config: Path | None = typer.Argument(None, help="Sweep config YAML (its `propose:` section sets the search)."),
    model: Path | None = typer.Option(None, "--model", help="A model saved by `mixopt fit` (else one is fitted on --store)."),
    store: Path | None = typer.Option(None, "--store", help="Run store; needed for the OT projector and when no --model is given."),
    budget_tokens: float | None = typer.Option(None, "--budget-tokens", help="Target training tokens D (default: the config's, else 4x the proxy tokens)."),
    model_params: float | None = typer.Option(None, "--model-params", help="Target model size N (recorded; used by the repetition law)."),
    seed: int | None = typer.Option(None, "--seed", help="Search seed (default: the config's seed)."),
    no_projector: bool = typer.Option(False, "--no-projector", help="Skip the OT projector."),
    out: Path = typer.Option(Path("plan.yaml"), "--out", help="Plan file to write."),
) -> None:
    """Write PLAN.yaml: phases, epochs, predicted metric and the constraints that bind."""
    from ..config import load_config
    from ..workflow import propose

    cfg = load_config(config) if config else None
    plan = propose(out=out, model=model, store=store, config=cfg, budget_tokens=budget_tokens, model_params=model_params,
                   seed=seed, use_projector=not no_projector)
    console = Console()
    shown = {k: v for k, v in plan.to_dict().items() if k not in ("provenance", "tokens_per_doc")}
    console.print(yaml.safe_dump(shown, sort_keys=False).rstrip())
    console.print(f"plan -> {out}")
