"""The demo: sweep -> fit -> propose -> export -> verify -> report on the embedded corpus, composed from the pipeline verbs."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from . import pipeline
from .config import load_config, resolve_config
from .data.domains import load_domain_set
from .data.embedded import embedded_path
from .export import ExportOptions, export_target, write_export
from .io import atomic_write_text
from .plan import plan_yaml
from .report import build_report
from .report.tables import runs_table, verify_table
from .runs.store import RunStore
from .verify import verify

EXPORT_FORMATS = ("olmo-core", "hf-datasets", "megatron")
VERIFY_AGAINST = ("natural", "uniform")  # the demo's short verification: two alternatives, two paired seeds
VERIFY_SEEDS = 2


def run_demo(out: str | Path, *, config: str = "demo", runs: int | None = None, console: Console | None = None) -> dict[str, Path]:
    """Run every stage on the embedded corpus; returns the paths written."""
    console = console or Console()
    out = Path(out)
    cfg = load_config(resolve_config(config))
    store = out / "store"
    console.rule("1/6 sweep: proxy models over sampled mixtures")
    summary = pipeline.sweep(cfg, store, n_runs=runs)
    snapshot = pipeline.open_store(store)
    console.print(runs_table(snapshot.records, where=str(store), limit=12))
    console.print(f"{summary.trained} trained, {summary.skipped} already done, {len(summary.failed)} failed")

    console.rule("2/6 fit: the surrogate, cross-validated")
    fitted = pipeline.fit(snapshot, cfg.propose.target, cfg.propose.model, seed=cfg.seed, budgets=cfg.propose.fit_budgets)
    model_path, plot_path = pipeline.save_fitted(fitted, out / "model.pkl")
    cv = fitted.meta["cv"]
    rows = f" ({fitted.meta['n_rows']} rows: every budget they measured)" if fitted.meta.get("budgets") else ""
    console.print(f"{cfg.propose.model} on {fitted.meta['n_runs']} runs{rows}: CV ({fitted.meta['cv_kind']}) spearman {cv['spearman']:.3f}, MAE {cv['mae']:.4f}, "
                  f"regret@1 {cv['regret_at_1']:.4f}; plot {plot_path}")
    for line in pipeline.model_lines(fitted.meta):
        console.print(f"[yellow]{line}[/]" if line.startswith("warning:") else line)

    console.rule("3/6 propose: search at the target budget")
    plan = pipeline.propose(fitted, config=cfg, snapshot=snapshot)
    plan_path = pipeline.save(plan, out / "plan.yaml")
    shown = {k: v for k, v in plan.to_dict().items() if k in ("budget_tokens", "phases", "epochs", "predicted", "reasons")}
    console.print(plan_yaml(shown).rstrip(), markup=False, highlight=False, emoji=False, soft_wrap=True)  # unwrapped: YAML

    console.rule("4/6 export: trainer configs")
    exports = out / "exports"
    paths = {d: str(embedded_path(d)) for d in plan.domains}
    steps = ExportOptions(global_batch_size=cfg.proxy.batch_size, seq_length=cfg.proxy.block_size)  # the proxy's own step size
    written = []
    for fmt in EXPORT_FORMATS:
        result = write_export(plan, fmt, export_target(fmt, exports / fmt), paths, options=steps)
        written += result.files
        if result.warning:
            console.print(f"[yellow]{result.warning}[/]")
    console.print(f"{len(written)} files under {exports}")

    console.rule("5/6 verify: the plan against natural and uniform at its budget, paired seeds")
    data = load_domain_set(cfg.data)
    body = verify(plan, RunStore(store, create=False), snapshot, cfg, data, against=list(VERIFY_AGAINST), seeds=VERIFY_SEEDS)
    verify_path = atomic_write_text(out / "verify.json", json.dumps(body, indent=1) + "\n")
    console.print(verify_table(body))

    console.rule("6/6 report")
    index = build_report(out / "report", store=snapshot, plan=plan, model=fitted, target=cfg.propose.target,
                         verification=body)
    console.print(f"report: {index}")
    return {"store": store, "model": model_path, "plan": plan_path, "exports": exports, "verify": verify_path, "report": index}
