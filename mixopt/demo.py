"""The demo pipeline: sweep -> fit -> propose -> export -> report, in one call."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from .config import load_config, packaged_config


def resolve_config(config: str) -> Path:
    p = Path(config)
    return p if p.suffix in (".yaml", ".yml") or p.exists() else packaged_config(config)


def run_demo(out: str | Path, *, config: str = "demo", runs: int | None = None, console: Console | None = None) -> dict[str, Path]:
    """Run every stage on the embedded corpus; returns the paths written."""
    import yaml

    from .cli.render import print_runs_table
    from .data.embedded import embedded_path
    from .export import export_plan
    from .io import atomic_write_text
    from .plan import load_plan
    from .report import build_report
    from .runs.driver import run_sweep
    from .workflow import fit_store, propose

    console = console or Console()
    out = Path(out)
    cfg_path = resolve_config(config)
    cfg = load_config(cfg_path)
    store = out / "store"
    console.rule("1/5 sweep: proxy models over sampled mixtures")
    summary = run_sweep(cfg, store, n_runs=runs)
    print_runs_table(store, console=console, limit=12)
    console.print(f"{summary.trained} trained, {summary.skipped} already done, {len(summary.failed)} failed")

    console.rule("2/5 fit: the surrogate, cross-validated")
    fit = fit_store(store, cfg.propose.target, cfg.propose.model, out / "model.pkl", seed=cfg.seed)
    cv = fit.cv
    console.print(f"{cfg.propose.model} on {fit.n_runs} runs: CV spearman {cv['spearman']:.3f}, MAE {cv['mae']:.4f}, "
                  f"regret@1 {cv['regret_at_1']:.4f}; plot {fit.plot_path}")

    console.rule("3/5 propose: search at the target budget")
    plan_path = out / "plan.yaml"
    plan = propose(out=plan_path, model=fit.model_path, store=store, config=cfg)
    console.print(yaml.safe_dump({k: v for k, v in plan.to_dict().items() if k in ("budget_tokens", "phases", "epochs", "predicted", "reasons")},
                                 sort_keys=False).rstrip())

    console.rule("4/5 export: trainer configs")
    exports = out / "exports"
    paths = {d: str(embedded_path(d)) for d in plan.domains}
    written = []
    for fmt in ("olmo-core", "hf-datasets", "megatron"):
        for fname, text in export_plan(load_plan(plan_path), fmt, paths).items():
            written.append(atomic_write_text(exports / fmt / fname, text))
    console.print(f"{len(written)} files under {exports}")

    console.rule("5/5 report")
    index = build_report(out / "report", store=store, plan=plan_path, model=fit.model_path, target=cfg.propose.target)
    console.print(f"report: {index}")
    return {"store": store, "model": fit.model_path, "plan": plan_path, "exports": exports, "report": index}
