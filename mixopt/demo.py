"""The demo: sweep -> fit -> propose -> export -> verify -> report on a config's data (the packaged ``demo`` config: the
embedded corpus), composed from the pipeline verbs.

The demo records what it writes into ``--out`` (`io.record_written`, ``.mixopt-demo.json``; its report folder has the
report's own record), so a rerun or an interrupted demo's folder resumes (the sweep skips the runs its ``store/``
holds) and replaces the demo's own files, and a folder holding files of those names that no demo wrote (a user's
plan.yaml, model.pkl, report/index.html) is refused before any training.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from . import pipeline
from .config import load_config, resolve_config
from .errors import ConfigError
from .data.domains import domain_specs, load_domain_set
from .export import ExportOptions, export_target, write_export
from .export.megatron import document_files
from .io import atomic_write_text, not_written_by, record_written, refuse_foreign
from .pipeline import plot_path_for
from .plan import plan_yaml
from .report import build_report
from .report.build import foreign_report_files
from .report.tables import runs_table, verify_table
from .runs.store import RunStore
from .verify import verify

EXPORT_FORMATS = ("olmo-core", "hf-datasets", "megatron")
VERIFY_AGAINST = ("natural", "uniform")  # the demo's short verification: two alternatives, two paired seeds
VERIFY_SEEDS = 2
STORE, MODEL, PLAN, EXPORTS, VERIFY, REPORT = "store", "model.pkl", "plan.yaml", "exports", "verify.json", "report"


def foreign_outputs(out: Path) -> list[str]:
    """What the demo would write into (or replace) in ``out`` that no earlier demo wrote, relative to ``out``: its
    store/, model, plot, plan, verification, any file in its export folders, and its report's files."""
    names = [f"{STORE}/", MODEL, plot_path_for(out / MODEL).name, PLAN, VERIFY]
    names += sorted(str(f.relative_to(out)) for fmt in EXPORT_FORMATS if (d := out / EXPORTS / fmt).is_dir()
                    for f in d.iterdir() if not f.name.startswith("."))
    return not_written_by(out, "demo", names) + [f"{REPORT}/{n}" for n in foreign_report_files(out / REPORT)]


def export_paths(cfg, domains) -> dict[str, str]:
    """Each domain's data as the config gives it: the embedded corpus's file, or the path under data.domains (made
    absolute where it names a local file or folder, so the exports do not depend on the folder the demo ran in)."""
    specs = {s.name: s.path for s in domain_specs(cfg.data)}
    return {d: str(Path(specs[d]).expanduser().resolve()) if Path(specs[d]).expanduser().exists() else specs[d]
            for d in domains}


def run_demo(out: str | Path, *, config: str = "demo", runs: int | None = None, console: Console | None = None) -> dict[str, Path]:
    """Run every stage on the config's data; returns the paths written. Refuses (`ConfigError`), before any training, an
    ``out`` holding files it would replace that no earlier demo wrote."""
    console = console or Console()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder. Give a folder path (it is created if absent).")
    cfg = load_config(resolve_config(config))
    refuse_foreign("--out", out, "demo", foreign_outputs(out))
    store = out / STORE
    record_written(out, "demo", [f"{STORE}/"])
    console.rule("1/6 sweep: proxy models over sampled mixtures")
    summary = pipeline.sweep(cfg, store, n_runs=runs)
    snapshot = pipeline.open_store(store)
    console.print(runs_table(snapshot.records, where=str(store), limit=12))
    console.print(f"{summary.trained} trained, {summary.skipped} already done, {len(summary.failed)} failed")

    console.rule("2/6 fit: the surrogate, cross-validated")
    fitted = pipeline.fit(snapshot, cfg.propose.target, cfg.propose.model, seed=cfg.seed, budgets=cfg.propose.fit_budgets)
    record_written(out, "demo", [MODEL, plot_path_for(out / MODEL).name])
    model_path, plot_path = pipeline.save_fitted(fitted, out / MODEL)
    cv = fitted.meta["cv"]
    rows = f" ({fitted.meta['n_rows']} rows: every budget they measured)" if fitted.meta.get("budgets") else ""
    console.print(f"{cfg.propose.model} on {fitted.meta['n_runs']} runs{rows}: CV ({fitted.meta['cv_kind']}) spearman {cv['spearman']:.3f}, MAE {cv['mae']:.4f}, "
                  f"regret@1 {cv['regret_at_1']:.4f}; plot {plot_path}")
    for line in pipeline.model_lines(fitted.meta):
        console.print(f"[yellow]{line}[/]" if line.startswith("warning:") else line)

    console.rule("3/6 propose: search at the target budget")
    plan = pipeline.propose(fitted, config=cfg, snapshot=snapshot)
    record_written(out, "demo", [PLAN])
    plan_path = pipeline.save(plan, out / PLAN)
    shown = {k: v for k, v in plan.to_dict().items() if k in ("budget_tokens", "phases", "epochs", "predicted", "reasons")}
    console.print(plan_yaml(shown).rstrip(), markup=False, highlight=False, emoji=False, soft_wrap=True)  # unwrapped: YAML

    console.rule("4/6 export: trainer configs")
    exports = out / EXPORTS
    paths = export_paths(cfg, plan.domains)
    steps = ExportOptions(global_batch_size=cfg.proxy.batch_size, seq_length=cfg.proxy.block_size)  # the proxy's own step size
    written = []
    for fmt in EXPORT_FORMATS:
        result = write_export(plan, fmt, export_target(fmt, exports / fmt), paths, options=steps)
        record_written(out, "demo", [str(f.relative_to(out)) for f in result.files])  # multi-file: names known once written
        written += result.files
        if result.warning:
            console.print(f"[yellow]{result.warning}[/]")
    console.print(f"{len(written)} files under {exports}")
    if docs := document_files(paths):  # Megatron reads .bin/.idx prefixes; the demo has only the documents
        console.print(f"[yellow]note: {exports / 'megatron'}'s paths are the data's document files ({', '.join(sorted(docs))}): "
                      "placeholders; tokenize each with Megatron's tools/preprocess_data.py and use its output prefix "
                      "(blend.json says so too)[/]")

    console.rule("5/6 verify: the plan against natural and uniform at its budget, paired seeds")
    data = load_domain_set(cfg.data)
    body = verify(plan, RunStore(store, create=False), snapshot, cfg, data, against=list(VERIFY_AGAINST), seeds=VERIFY_SEEDS)
    record_written(out, "demo", [VERIFY])
    verify_path = atomic_write_text(out / VERIFY, json.dumps(body, indent=1) + "\n")
    console.print(verify_table(body))

    console.rule("6/6 report")
    index = build_report(out / REPORT, store=snapshot, plan=plan, model=fitted, target=cfg.propose.target,
                         verification=body)
    console.print(f"report: {index}")
    return {"store": store, "model": model_path, "plan": plan_path, "exports": exports, "verify": verify_path, "report": index}
