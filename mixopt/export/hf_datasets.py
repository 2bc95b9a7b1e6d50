"""HF ``datasets.interleave_datasets`` probabilities (a directory of two files).

* ``interleave.json``: per phase, the dataset paths in order, ``probabilities``
  (summing to exactly 1), ``seed`` and ``stopping_strategy``.
* ``interleave.py``: a snippet that loads the JSON and calls ``interleave_datasets``.
  It loads each path by its kind, decided where the data lives (at load time):
  a single file or a glob goes to the json / parquet / csv / text / arrow builder
  (chosen by extension, compression suffixes such as ``.gz`` ignored) with
  ``data_files=``; a ``save_to_disk`` directory to ``load_from_disk``; any other
  directory or a Hub id to ``load_dataset(path)``. ``load_dataset(file)`` alone
  fails with "Couldn't find any data file", hence the dispatch.

``interleave_datasets`` picks one example at a time, so probabilities are
document shares converted from the plan's token shares (see semantics.py).

``stopping_strategy`` defaults to ``"all_exhausted"``: sampling continues at the
exported probabilities, restarting any dataset that runs out, until every
dataset has been seen once, so small domains are repeated as the plan intends.
``"first_exhausted"`` also keeps the probabilities but stops as soon as one
dataset runs out, which can be early. ``"all_exhausted_without_replacement"``
is refused: it drops exhausted datasets and renormalises, drifting from the plan.
"""

from __future__ import annotations

import json

from .spec import ExportSpec

_SNIPPET = '''"""Interleave datasets as planned, written by `mixopt export --format hf-datasets`.

Probabilities: {note}.

Each path is loaded by its kind (see ``load``): a file or glob with the json
(.json/.jsonl/.ndjson, also .gz/.bz2/.xz/.zst), parquet, csv, text or arrow
builder and ``data_files=``; a ``Dataset.save_to_disk`` directory with
``load_from_disk``; any other directory or a Hub id with ``load_dataset(path)``.
"""

import glob
import json
from pathlib import Path

from datasets import interleave_datasets, load_dataset, load_from_disk

PLAN = json.loads((Path(__file__).parent / "interleave.json").read_text())

BUILDERS = {{
    ".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet", ".csv": "csv",
    ".txt": "text", ".text": "text", ".md": "text", ".arrow": "arrow",
}}
COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".lz4")


def builder_of(path):
    """The packaged builder for a data file name (compression suffix ignored), or None."""
    name = str(path)
    for suffix in COMPRESSION:
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return BUILDERS.get(Path(name).suffix.lower())


def load(path, streaming=True):
    """One path as a train split; an IterableDataset when ``streaming`` (what interleaving mixes here)."""
    local = Path(path).expanduser()
    if local.is_dir():
        if (local / "state.json").is_file() or (local / "dataset_dict.json").is_file():  # Dataset(Dict).save_to_disk
            ds = load_from_disk(str(local))
            ds = ds["train"] if (local / "dataset_dict.json").is_file() else ds
            return ds.to_iterable_dataset() if streaming else ds
        return load_dataset(str(local), split="train", streaming=streaming)
    builder = builder_of(path)
    if local.is_file() or glob.has_magic(str(path)) or "://" in str(path):
        if builder is None:
            raise ValueError(
                f"Cannot tell the file format of {{path!r}} from its name. Rename it with a .jsonl/.parquet/.csv/.txt "
                "suffix, or pass build(phase, load=...) with your own loader."
            )
        return load_dataset(builder, data_files=str(path) if "://" in str(path) else str(local), split="train",
                            streaming=streaming)
    if builder is not None:  # a file name that is not there: say so instead of looking it up on the Hub
        raise FileNotFoundError(f"Data file {{path!r}} does not exist. Fix its path in interleave.json.")
    return load_dataset(str(path), split="train", streaming=streaming)  # a Hub dataset id


def build(phase=0, load=load):
    """Interleaved dataset for one plan phase; ``load`` turns a path into a (Iterable)Dataset."""
    spec = PLAN["phases"][phase]
    return interleave_datasets(
        [load(path) for path in spec["paths"]],
        probabilities=spec["probabilities"],
        seed=spec["seed"],
        stopping_strategy=spec["stopping_strategy"],
    )
'''


def export_hf_datasets(spec: ExportSpec) -> dict[str, str]:
    phases = []
    for p in spec.phases:
        domains = list(p.weights)
        phases.append(
            {
                "name": p.name,
                "start_fraction": p.start_fraction,
                "end_fraction": p.end_fraction,
                "domains": domains,
                "paths": [spec.paths[d] for d in domains],
                "probabilities": [p.weights[d] for d in domains],
                "token_shares": [p.token_shares[d] for d in domains],
                "tokens_per_doc": [spec.tokens_per_doc[d] for d in domains],
                "seed": spec.options.seed,
                "stopping_strategy": spec.options.stopping_strategy,
            }
        )
    meta = {"format": "hf-datasets", "probabilities": spec.note, "phases": phases}
    return {
        "interleave.json": json.dumps(meta, indent=1) + "\n",
        "interleave.py": _SNIPPET.format(note=spec.note),
    }
