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

Phases continue each domain where the earlier ones stopped. ``build(phase)`` loads every
path afresh, and a fresh dataset starts at its first row, so without care a later phase
(say an end-of-training upsampling) would re-read the rows the earlier phases read and
never reach the domain's unseen tail. So each domain's dataset is cut to a *window* of
its rows read over and over in order (rows, rows, rows, ...), as the litdata export
does (the same windows, see litdata.py): phase k reads ``[start_k, start_k + planned_k)``
with ``start_k`` the sum of the earlier phases' planned readings, then a *spare* that lies
beyond the run's total planned reading. Windows are in epochs of the domain's rows
(from the plan's ``epochs``) or in documents where the plan has none. A map-style
``Dataset`` is cut with ``select`` (epochs turned into rows by its real length); a
streaming ``IterableDataset`` with ``repeat(None).skip(a).take(b - a)``, which reads
through the skipped rows, and epochs turned into rows by the plan's estimate
(``documents_per_epoch``, unique tokens over mean tokens per document) since a stream
does not know its length. ``build(phase, windows=False)`` gives the old, plain datasets.
"""

from __future__ import annotations

import json

from .reading import planned_reading, pools_text, stream_windows
from .spec import ExportSpec

_SNIPPET = '''"""Interleave datasets as planned, written by `mixopt export --format hf-datasets`.

Probabilities: {note}.

Each path is loaded by its kind (see ``load``): a file or glob with the json
(.json/.jsonl/.ndjson, also .gz/.bz2/.xz/.zst), parquet, csv, text or arrow
builder and ``data_files=``; a ``Dataset.save_to_disk`` directory with
``load_from_disk``; any other directory or a Hub id with ``load_dataset(path)``.

Build each phase when it starts: ``build(phase)``. Phases continue each domain where
the earlier ones stopped: phase k's dataset of a domain is the window "read" of the
domain's rows read over and over in order (bounds in "unit": epochs of its rows, or
documents where the plan has no epochs), starting where phase k-1's planned reading
ended, then the window "spare" (slack beyond the run's total planned reading, so a
phase that draws a little more than planned still reads nothing another phase planned).
So over the run each domain is read as often as the plan says, and one planned at
<= 1 epoch repeats nothing. A map-style Dataset is cut with ``select`` (epochs turned
into rows by its length); a stream (the default ``load``) with ``repeat(None).skip(a)
.take(b - a)``, which reads through the skipped rows (pass
``load=lambda p: load(p, streaming=False)`` to jump instead), with epochs turned into
rows by the plan's ``documents_per_epoch``. Rows are read in the order the loader gives
them: shuffle inside ``load`` with a fixed seed, the same in every phase, if you want them
shuffled. One pass of a phase's dataset holds about its planned documents (plus the
spares); train the phase's tokens and stop. ``build(phase, windows=False)`` gives plain
datasets that each start at the domain's first row (every phase re-reads the same head).
"""

import glob
import json
from pathlib import Path

import numpy as np
from datasets import Dataset, concatenate_datasets, interleave_datasets, load_dataset, load_from_disk

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


def window(ds, win):
    """``ds`` cut to ``win``: its "read" rows then its "spare" rows, of its rows read over and over in order."""
    if isinstance(ds, Dataset):
        n = len(ds)
        if n == 0:
            raise ValueError("Cannot read a window of an empty dataset. Fix its path in interleave.json.")
        scale = n if win["unit"] == "epochs" else 1
    else:
        n, scale = None, win["documents_per_epoch"] if win["unit"] == "epochs" else 1
    bounds = [(int(round(a * scale)), int(round(b * scale))) for a, b in (win["read"], win["spare"])]
    if all(b <= a for a, b in bounds):  # a share too small for one row still gets one
        bounds = [(bounds[1][0], bounds[1][0] + 1)]
    bounds = [(a, b) for a, b in bounds if b > a]
    if n is not None:
        return ds.select(np.concatenate([np.arange(a, b) % n for a, b in bounds]))
    parts = [ds.repeat(None).skip(a).take(b - a) for a, b in bounds]
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def build(phase=0, load=load, windows=True):
    """Interleaved dataset for one plan phase; ``load`` turns a path into a (Iterable)Dataset.

    With ``windows`` (the default) each domain's dataset is cut to the phase's window of it,
    so the phase continues every domain where the earlier phases stopped.
    """
    spec = PLAN["phases"][phase]
    sets = [load(path) for path in spec["paths"]]
    if windows:
        sets = [window(ds, win) for ds, win in zip(sets, spec["windows"])]
    return interleave_datasets(
        sets,
        probabilities=spec["probabilities"],
        seed=spec["seed"],
        stopping_strategy=spec["stopping_strategy"],
    )
'''


def export_hf_datasets(spec: ExportSpec) -> dict[str, str]:
    phases = []
    for p, win in zip(spec.phases, stream_windows(spec)):
        domains = list(p.weights)
        reading = planned_reading(spec, p)
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
                "windows": [_window(win[d], reading[d]) for d in domains],
            }
        )
    meta = {
        "format": "hf-datasets",
        "probabilities": spec.note,
        "windows": "each phase continues each domain where the earlier phases stopped: phases[k].windows[i] is where "
        "build(k) reads domain i, 'read' (the phase's planned part) then 'spare' (slack), as [start, stop) in 'unit' "
        "(epochs of the domain's rows, or documents) of its rows read over and over; documents_per_epoch is the "
        "plan's estimate, used for streams (whose length is unknown)",
        **({"pools": pools} if (pools := pools_text(spec, "hf-datasets")) else {}),
        "phases": phases,
    }
    return {
        "interleave.json": json.dumps(meta, indent=1) + "\n",
        "interleave.py": _SNIPPET.format(note=spec.note),
    }


def _window(win: dict, reading: tuple[float, str, float]) -> dict:
    """A litdata-style window with the plan's documents per epoch (for streams, whose length is unknown)."""
    amount, unit, docs = reading
    per_epoch = docs / amount if unit == "epochs" and amount > 0 else None
    return {**win, "documents_per_epoch": per_epoch}
