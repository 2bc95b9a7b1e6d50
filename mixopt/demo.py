"""The demo: sweep -> fit -> propose -> export -> verify -> report on a config's data (the packaged ``demo`` config: the
embedded corpus), composed from the pipeline verbs.

The demo records what it writes into ``--out`` (`io.record_written`, ``.mixopt-demo.json``; its report folder has the
report's own record), so a rerun or an interrupted demo's folder resumes (the sweep skips the runs its ``store/``
holds) and replaces the demo's own files, and a folder holding files of those names that no demo wrote (a user's
plan.yaml, model.pkl, report/index.html) is refused before any training. A folder a mixopt from before that record
wrote is told by its content (`older_outputs`: its store/ swept with the demo's config, its files mixopt's) and taken.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from . import pipeline
from .config import load_config, resolve_config
from .errors import ConfigError, MixoptError
from .data.domains import domain_specs, load_domain_set
from .export import ExportOptions, export_target, write_export
from .io import atomic_write_text, not_written_by, record_written, refuse_foreign, shown_path, written_marker
from .pipeline import plot_path_for
from .plan import load_plan, plan_yaml
from .report import build_report
from .report.build import foreign_report_files, is_matplotlib_png, older_report_files
from .report.tables import runs_table, verify_table
from .runs.store import RunStore
from .surrogates.registry import FORMAT as SURROGATE_FORMAT
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


def _store_config(store: Path) -> str | None:
    """The name of the config a sweep recorded in ``store``'s store.json; None when it is no run store with one."""
    try:
        config = RunStore(store, create=False).meta().get("config") if store.is_dir() else None
    except MixoptError:
        return None
    return config.get("name") if isinstance(config, dict) and isinstance(config.get("name"), str) else None


def _is_mixopt_file(out: Path, name: str) -> bool:
    """Whether the demo's output ``name`` in ``out`` reads as what mixopt writes under that name (its content, not its
    name): fit's model and plot, a plan that loads, verify's JSON, an export's file."""
    path = out / name
    try:
        if name == MODEL:
            with open(path, "rb") as fh:
                return SURROGATE_FORMAT.encode() in fh.read(256)  # the pickle's format field, without unpickling
        if name == plot_path_for(out / MODEL).name:
            return is_matplotlib_png(path)
        if name == PLAN:
            load_plan(path)
            return True
        if name == VERIFY:
            body = json.loads(path.read_text())
            return isinstance(body, dict) and all(isinstance(body.get(k), list) for k in ("results", "seeds"))
        fmt = Path(name).parent.name  # exports/FORMAT/FILE
        if path.suffix == ".json" and isinstance(body := json.loads(path.read_text()), dict) and body.get("format") == fmt:
            return True
        with open(path, "rb") as fh:
            if f"written by `mixopt export --format {fmt}`".encode() in fh.read(4096):
                return True
        blend = json.loads((path.parent / "blend.json").read_text())  # megatron's: names each phase's argument files
        named = {ph.get(k) for ph in blend.get("phases", []) for k in ("data_args_path", "per_split_data_args_path")}
        return blend.get("format") == fmt and path.name in named
    except (MixoptError, OSError, ValueError, AttributeError, TypeError):
        return False


def older_outputs(out: Path, config_name: str, foreign: list[str]) -> tuple[list[str], list[str], str]:
    """Split ``foreign`` (`foreign_outputs`) into what a mixopt from before demos recorded their files wrote and the
    rest, with what the rest lack. Told by content, not names: without a ``.mixopt-demo.json``, ``store/`` must be a run
    store swept with this config (the demo's sweep resumes it), and each other file must read as mixopt's own
    (`_is_mixopt_file`; the report's: `older_report_files`). A store swept with another config is a one-line ConfigError
    (that demo's folder, not this one's)."""
    if not foreign or written_marker(out, "demo").exists():
        return [], foreign, ""
    swept = _store_config(out / STORE)
    if swept is None:
        return [], foreign, f"there is no {STORE}/ that mixopt swept with config '{config_name}'"
    if swept != config_name:  # an earlier demo's (or sweep's) folder all the same: not called foreign
        raise ConfigError(f"--out {shown_path(out)} holds the outputs of a demo of config '{swept}' (its {STORE}/ was "
                          f"swept with it, before demos recorded their files), not of this demo's '{config_name}', which "
                          f"would sweep into that store and replace that demo's plan, model and report. "
                          f"Write to another --out (a new folder), or run the demo with config '{swept}' to resume it.")
    report = [n[len(REPORT) + 1:] for n in foreign if n.startswith(f"{REPORT}/")]
    _, r_left, r_why = older_report_files(out / REPORT, report)
    left = [n for n in foreign if n != f"{STORE}/" and not n.startswith(f"{REPORT}/") and not _is_mixopt_file(out, n)]
    left += [f"{REPORT}/{n}" for n in r_left]
    why = f"{STORE}/ is this config's run store, but {'that file does' if len(left) == 1 else 'those files do'} not " \
          "read as mixopt's"
    return [n for n in foreign if n not in left], left, "; ".join(w for w in (why if left else "", r_why) if w)


def adopt_older_outputs(out: Path, older: list[str], config_name: str) -> str:
    """Record ``older`` (`older_outputs`) as an earlier demo's (the report's files in its report folder's record); the
    one line that says so."""
    report = [n[len(REPORT) + 1:] for n in older if n.startswith(f"{REPORT}/")]
    record_written(out, "demo", [n for n in older if not n.startswith(f"{REPORT}/")])
    if report:
        record_written(out / REPORT, "report", report)
    return (f"note: --out {shown_path(out)} is a demo an earlier mixopt wrote before demos recorded their files "
            f"({STORE}/ swept with config '{config_name}', {len(older)} outputs in all): resuming it, recorded in "
            f"{written_marker(out, 'demo').name}")


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
    older, foreign, why = older_outputs(out, cfg.name, foreign_outputs(out))
    refuse_foreign("--out", out, "demo", foreign, why=why)
    if older:
        console.print(adopt_older_outputs(out, older, cfg.name), markup=False, highlight=False, soft_wrap=True)
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
        for line in result.warnings:  # stale phase files; megatron's paths: the data's document files, placeholders
            console.print(f"{fmt}: {line}", style="yellow", markup=False, soft_wrap=True)
    console.print(f"{len(written)} files under {exports}")

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
