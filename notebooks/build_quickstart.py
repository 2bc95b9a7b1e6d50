"""Regenerate ``notebooks/quickstart.ipynb`` with its outputs: ``python notebooks/build_quickstart.py``.

Edit the cells here rather than in the .ipynb, so the notebook stays reviewable
as plain Python. The script runs the notebook top to bottom (offline, tiny
config, a temporary folder) and saves it with its outputs, so a reader on
GitHub sees real numbers. ``tests/test_notebook.py`` runs it again and fails when
the saved run counts differ from a fresh run's: rebuild after changing the tiny
config or the sweep. ``--no-execute`` writes it without outputs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS: list[tuple[str, str]] = [
    ("md", """\
# mixopt quickstart

mixopt chooses a **data mixture** for LM pretraining: how many tokens to draw from each domain (code, prose, math, ...).
It trains many tiny *proxy* models on sampled mixtures, fits a *surrogate* that predicts validation loss from the
mixture, searches that surrogate for the best mixture at your real budget, and writes the result as a **plan**
that trainers can read.

This notebook walks through every step on the small corpus shipped inside mixopt and the `tiny` config
(the whole notebook runs in well under a minute on 2 CPU cores; the last cell prints the time it took). It needs no
network and no GPU, and downloads nothing: data, tokenizer (byte-level) and features all come from the package.

**corpus → sweep → fit → propose → score a pool → export → report**

Each step also has a CLI command; they are shown in the markdown so you can run the same pipeline from a shell."""),
    ("code", """\
import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # everything below reads local files only
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import tempfile
import time
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice about Jupyter widgets
from pathlib import Path

from IPython.display import Image, display

import mixopt
from mixopt import pipeline

# All outputs go to one working directory: $MIXOPT_NB_OUT if set, else a fresh temporary one.
WORK = Path(os.environ.get("MIXOPT_NB_OUT") or tempfile.mkdtemp(prefix="mixopt-quickstart-"))
WORK.mkdir(parents=True, exist_ok=True)
STORE = WORK / "store"      # the run store: one JSON record per proxy run
MODEL = WORK / "model.pkl"  # the fitted surrogate
PLAN = WORK / "plan.yaml"   # the proposed mixture
T0 = time.time()
print("mixopt", mixopt.__version__, "| outputs go to a working folder:", "$MIXOPT_NB_OUT" if os.environ.get("MIXOPT_NB_OUT") else "a temporary one")"""),
    ("md", """\
## 1. The corpus

mixopt ships a small corpus of 7 genuinely different domains of real text (about 0.8 MB each, from dozens of
long documents for code and docs to a few hundred short ones for dialogue; sources and licences are in a manifest),
so that everything works offline. Your own data goes under `data.domains` in a config
(local JSONL/Parquet/text files or a Hugging Face dataset id); the pipeline is the same.

CLI: `mixopt corpus list`"""),
    ("code", """\
from mixopt.data.embedded import embedded_domains, embedded_manifest, embedded_path

manifest = embedded_manifest()
print(f"{'domain':<14}{'docs':>6}{'MB':>8}  source")
for d in embedded_domains():
    m = manifest[d]
    print(f"{d:<14}{m.get('n_docs', '?'):>6}{m.get('n_bytes', 0) / 1e6:>8.2f}  {m.get('source', '')}")
print("\\ne.g. the code domain lives at", embedded_path("code"))"""),
    ("md", """\
A **config** says which domains to use, how big the proxy models are and how many runs to sample.
`tiny` is packaged with mixopt (`configs/tiny.yaml` in the repo is the same file): a handful of sampled mixtures
plus the natural and uniform baselines, a few two-phase runs and a second seed of the baselines (to measure seed noise),
each a one-layer model on 40k tokens. The cell below prints the exact counts. Real sweeps use `demo` or your own YAML
with far more runs.

Loading the domain set tokenizes each domain (byte-level here) and caches the token shards under
`$MIXOPT_CACHE` (default `~/.cache/mixopt`)."""),
    ("code", """\
from mixopt.config import load_config, packaged_config
from mixopt.data.domains import load_domain_set

cfg_path = packaged_config("tiny")
cfg = load_config(cfg_path)
print(cfg_path.read_text())
s = cfg.sampler
print(f"{cfg.runs} sampled mixtures, {s.two_phase_runs} two-phase runs, natural + uniform baselines; "
      f"{s.noise_seeds} seeds for the baselines and {s.noise_mixtures} extra noise mixture(s)")

data = load_domain_set(cfg.data)
for name, n in data.token_counts.items():
    print(f"{name:<14}{n:>10,} training tokens")"""),
    ("md", """\
## 2. Sweep: train proxy models on sampled mixtures

`pipeline.sweep` samples `runs` mixtures over the domains (respecting how often each domain may be repeated),
adds baselines such as the uniform mixture, trains one proxy model per mixture and writes one record per run to the store. The store is resumable:
rerun the same command and finished runs are skipped, so a killed sweep loses at most the run in flight.

CLI:
```bash
mixopt sweep configs/tiny.yaml --store runs/tiny
```"""),
    ("code", """\
t = time.time()
summary = pipeline.sweep(cfg, STORE, show_progress=False)
print(f"{summary.planned} runs planned: {summary.trained} trained, {summary.skipped} already in the store, "
      f"{len(summary.failed)} failed")
print(f"sweep took {time.time() - t:.0f} s")"""),
    ("md", """\
Each record holds the mixture `W` (one weight per domain, the token share over the whole run) and the metrics
measured at the end of the run: validation loss on every domain. Labels name the baselines (`natural`: shares
proportional to each domain's size; `uniform`), their repeats under another seed (`~seed1`, for the seed noise),
the sampled mixtures and the two-phase runs (which switch to an upsampled mixture near the end). `pipeline.open_store` reads the store once; `records_table` turns its usable
records into arrays. A *target* is the number
we want to minimise. `mean:all-domains` is the average validation loss over all domains (you could
also use one column such as `val/code`, or a weighted mean `wmean:code=0.7,prose=0.3`)."""),
    ("code", """\
from mixopt.runs.table import records_table

snapshot = pipeline.open_store(STORE)
print(len(snapshot.records), "records;", len(snapshot.ok), "usable (ok, finite metrics)")

table = records_table(snapshot.ok)
target = "mean:all-domains"
y = table.target(target)
short = [d[:6] for d in table.domains]
print("\\n" + f"{'label':<16}" + " ".join(f"{d:>7}" for d in short) + f"  {target:>17}")
for rec, w, v in zip(snapshot.ok, table.W, y):  # records_table keeps the order of the records it is given
    print(f"{rec.label:<16}" + " ".join(f"{x:>7.3f}" for x in w) + f"  {v:>17.4f}")
print("\\nmetric columns:", sorted(table.metrics)[:8], "...")"""),
    ("md", """\
## 3. Fit the surrogate

The surrogate maps a mixture to the target. `pipeline.fit` first cross-validates it (out-of-fold predictions
on every run), then refits on all runs and records what `propose` needs (domains, token counts, the training
mixtures, the seed noise of repeated runs); `pipeline.save_fitted` writes it. A dozen runs is far too few for a trustworthy fit: the point here is the mechanics.
With a real sweep, look for a high Spearman correlation and a small regret@1 (how much worse the
best-predicted run is than the actual best run).

CLI:
```bash
mixopt fit --store runs/tiny --out model.pkl
```"""),
    ("code", """\
fitted = pipeline.fit(snapshot, target, "default", seed=cfg.seed)
model_path, plot_path = pipeline.save_fitted(fitted, MODEL)
cv = fitted.meta["cv"]
print(f"{fitted.meta['n_runs']} runs, {cv['k']}-fold CV: spearman {cv['spearman']:.3f}, MAE {cv['mae']:.4f}, "
      f"regret@1 {cv['regret_at_1']:.4f}")
print(pipeline.noise_line(fitted.meta["noise"]))
display(Image(filename=str(plot_path)))"""),
    ("md", """\
## 4. Propose a plan

`propose` searches the surrogate over many candidate mixtures at the target budget (by default 4x the proxy
tokens; set `--budget-tokens` for a real run), limits how many epochs any domain may be repeated, and writes
`plan.yaml`: the phases with their weights, the epochs per domain, the predicted metric and the reasons for
the choice. A searched mixture that is not predicted to beat natural or uniform beyond the seed noise and the model's
own uncertainty is not taken: the plan keeps that baseline and says so in its first reason (and in
`predicted.by.surrogate.search`, `baseline:<name>`). The cell prints which happened here; with a sweep this small,
expect a baseline. The plan is the contract between mixopt and the exporters: the cell prints its decision in
words, then the top of `plan.yaml` as written.

CLI:
```bash
mixopt propose configs/tiny.yaml --store runs/tiny --model model.pkl --out plan.yaml
```"""),
    ("code", """\
plan = pipeline.propose(fitted, config=cfg, snapshot=snapshot)
pipeline.save(plan, PLAN)
p = plan.predicted
search = p.by["surrogate"].get("search", "")
print(f"budget: {plan.budget_tokens:,.0f} tokens in {len(plan.phases)} phase(s)")
for k, phase in enumerate(plan.phases):
    print(f"phase {k + 1} from {phase.start_fraction:.0%}:", ", ".join(f"{d} {w:.1%}" for d, w in phase.weights.items()))
print("epochs (passes over each domain's unique tokens):", ", ".join(f"{d} {e:.2f}" for d, e in plan.epochs.items()))
print(f"predicted {p.metric} = {p.value:.4f} ± {p.std:.4f} at the {p.by['surrogate'].get('scale', '?')} scale; "
      f"beats the baselines beyond noise: {p.beats_baselines}")
print("decision:", f"kept the {search.split(':', 1)[1]} baseline" if search.startswith("baseline:") else "took the search's mixture")
print("\\nwhy:")
for r in plan.reasons:
    print(" -", r)
print("\\n" + "\\n".join(PLAN.read_text().splitlines()[:12]) + "\\n...")"""),
    ("md", """\
## 5. Score a candidate data pool

Before adding new data, you can ask whether it is close to what you care about. `score_pools` embeds
documents (hashed n-gram features, no model download) and measures the optimal-transport (OT) distance from
each candidate pool to a *target* sample: lower is closer. With a `base_mixture`, it also finds the weight at
which the pool best joins that mixture.

Here the target is a sample of code, and the candidates are *more* code (different documents), legal text,
and a 50/50 blend of the two. More code should rank first, the blend second."""),
    ("code", """\
import random

from mixopt.config import DomainSpec
from mixopt.data.sources import load_documents
from mixopt.projector.scoring import score_pools

def docs_of(domain, n=None):
    # up to n documents of an embedded domain (None: all of them)
    return load_documents(DomainSpec(name=domain, path=str(embedded_path(domain))), n)

code = docs_of("code")
half = len(code) // 2
target_docs, more_code = code[:half], code[half:]  # disjoint halves: the pool never contains the target's documents
legal = docs_of("legal", half)
blend = more_code[: half // 2] + legal[: half // 2]
random.Random(0).shuffle(blend)

rows = score_pools(pools={"more-code": more_code, "legal": legal, "blend-50/50": blend}, target_docs=target_docs)
print(f"{'pool':<14}{'OT distance':>12}{'docs':>6}{'tokens in sample':>18}")  # byte-level: a token is a byte
for r in rows:
    print(f"{r['pool']:<14}{r['ot_distance']:>12.4f}{r['n_docs_sampled']:>6}{r['unique_tokens_estimate']:>18,.0f}")
assert rows[0]["pool"] == "more-code", rows"""),
    ("md", """\
The same pools scored as additions to the plan's mixture: `best_weight` is the share of the blend
`(1 - w) * plan + w * pool` that brings it closest to the code target. Expect a weight well below 1 for
more code (the plan already holds code and Python docs) and about 0 for legal text. A weight of 0 means the
blend's distance is the plan's own: the pool does not bring the mixture closer to the target."""),
    ("code", """\
base = plan.overall_weights()
base_docs = {d: docs_of(d, 40) for d in base}
rows = score_pools(pools={"more-code": more_code, "legal": legal}, target_docs=target_docs,
                   base_docs=base_docs, base_mixture=base)
for r in rows:
    print(f"{r['pool']:<12} best_weight {r['best_weight']:.3f}  OT distance of the blend at that weight {r['blend_ot_distance']:.4f}")"""),
    ("md", """\
CLI (pools and target can be any file the data layer reads: JSONL, Parquet, text, ...):
```bash
mixopt score --pool more-code=new_code.jsonl --pool legal=legal.jsonl --target code_val.jsonl \\
             --base-mixture plan.yaml
```

## 6. Export the plan for a trainer

`write_export` renders the plan in a trainer's own format and writes it whole or not at all: Hugging Face `datasets`
(`interleave_datasets` probabilities), OLMo-core, Megatron, nanotron, LitData, MosaicML Streaming or plain
JSON. Each domain needs a data location; here, the embedded files.

CLI:
```bash
mixopt export plan.yaml --format olmo-core --paths code=data/code.jsonl.gz --paths prose=... --out export/olmo-core
```"""),
    ("code", """\
from mixopt.export import export_target, write_export

paths = {d: str(embedded_path(d)) for d in plan.domains}
for fmt in ("hf-datasets", "olmo-core"):
    result = write_export(plan, fmt, export_target(fmt, WORK / "export" / fmt), paths)
    for path in result.files:
        text = Path(path).read_text()
        print(f"===== {fmt}: {Path(path).name}")
        print(text if len(text) < 3000 else text[:3000] + "\\n... (truncated)")"""),
    ("md", """\
## 7. Report

`build_report` writes one static HTML page, figures embedded (no server, no JavaScript, nothing fetched), that
opens with the plan (mixture, epochs, predicted loss with its uncertainty and scale, and, given `verification=` the
body of `mixopt verify`'s VERIFY.json, what training the plan showed), then the runs, the surrogate's
cross-validation, and an explanation whenever a measured run beats the plan's prediction. Open `index.html` in a
browser.

CLI:
```bash
mixopt report --store runs/tiny --plan plan.yaml --model model.pkl --out report/
```"""),
    ("code", """\
from mixopt.report import build_report

index = build_report(WORK / "report", store=snapshot, plan=plan, model=fitted)
print("report:", Path(index).relative_to(WORK), "in the working folder; open it in a browser:")
print(Path(index).resolve().as_uri())
print("files:", sorted(p.name for p in Path(index).parent.iterdir()))"""),
    ("md", """\
## Where next

- The whole pipeline in one command: `mixopt demo --out demo/` (the `demo` config: more runs, bigger proxies).
- Check the plan by training it: `mixopt verify plan.yaml --store runs/tiny --out verify.json` trains it and its
  alternatives (natural, uniform, the best run, ...; `--against` picks) at the plan's budget with paired seeds, then
  `mixopt report ... --verify verify.json` puts the outcome at the top of the report.
- Your data: add `data.domains` entries to a copy of `configs/demo.yaml` (in an installed mixopt,
  `mixopt.config.packaged_config("demo")` is its path).
- Scale up: `mixopt sweep ... --workers 4`, or `--executor ray` on a cluster.

The last cell checks the plan on disk: its weights must sum to 1."""),
    ("code", """\
from mixopt.plan import load_plan

saved = load_plan(PLAN)
sums = [sum(p.weights.values()) for p in saved.phases]
assert all(abs(s - 1.0) < 1e-6 for s in sums), sums
print(f"MIXOPT_QUICKSTART_OK phases={len(sums)} weights_sum={min(sums):.6f} elapsed_s={time.time() - T0:.1f}")"""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def kernel_dir(root: Path) -> Path:
    """A ``python3`` kernelspec that runs *this* interpreter, for ``JUPYTER_PATH`` (searched before any other)."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python", "metadata": {"debugger": False},
    }))
    return root


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel of this interpreter (offline); outputs are kept in ``nb``."""
    import nbclient

    with tempfile.TemporaryDirectory() as jupyter:
        env = {"JUPYTER_PATH": str(kernel_dir(Path(jupyter))), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return nb


if __name__ == "__main__":
    out = Path(__file__).with_name("quickstart.ipynb")
    nb = build()
    if "--no-execute" not in sys.argv:
        with tempfile.TemporaryDirectory() as cwd:
            execute(nb, Path(cwd))
    nbformat.validate(nb)
    nbformat.write(nb, out)
    print("wrote", out, "(with outputs)" if "--no-execute" not in sys.argv else "(no outputs)")
