"""HF ``datasets.interleave_datasets`` probabilities (a directory of two files).

* ``interleave.json``: per phase, the dataset paths in order, ``probabilities``
  (summing to exactly 1), ``seed`` and ``stopping_strategy``.
* ``interleave.py``: a snippet that loads the JSON and calls ``interleave_datasets``.

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
"""

import json
from pathlib import Path

from datasets import interleave_datasets, load_dataset

PLAN = json.loads((Path(__file__).parent / "interleave.json").read_text())


def build(phase=0, load=lambda path: load_dataset(path, split="train", streaming=True)):
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
