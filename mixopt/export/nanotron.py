"""nanotron ``data_stages`` YAML block (one file), one stage per plan phase.

nanotron's ``Nanoset`` blends fixed-length samples of ``sequence_length`` tokens,
so ``dataset_weights`` are token shares and the plan's weights are written
unchanged. Stages follow nanotron's ``DatasetStageArgs`` schema
(``name``, ``start_training_step``, ``data: DataArgs``) with a
``NanosetDatasetsArgs`` dataset (``dataset_folder``, ``dataset_weights``).
nanotron counts steps from 1 and requires a stage that starts at step 1, so
``start_training_step = round(start_fraction * train_steps) + 1``.
Paste the block into your nanotron config next to ``tokens: {train_steps, ...}``.

Stages do NOT continue each domain where the earlier ones stopped (a limitation of
nanotron's Nanoset, which takes only ``dataset_folder`` and ``dataset_weights``, no
offset; read from nanotron's source, nanotron is not installed here): each stage builds
a new ``Nanoset`` with its own weights and reads it from its start (run_train.py: "each
stage starts from zero"), and a Nanoset's order is a seeded shuffle of one epoch of its
datasets' samples. So a later stage draws each domain afresh: with the same ``seed`` the
draws of a domain are aligned with the earlier stage's, and a domain planned at <= 1
epoch overall is partly re-read and partly never read. The YAML header says so; to keep
stages disjoint, give each stage its own folder of such a domain (its share of the
tokenized files, ``planned`` in the header).
"""

from __future__ import annotations

import yaml

from .reading import reading_text
from .spec import ExportSpec


def export_nanotron(spec: ExportSpec) -> dict[str, str]:
    sched = spec.schedule()
    stages = []
    for phase, start in zip(spec.phases, sched["start_steps"]):
        stages.append(
            {
                "name": phase.name,
                "start_training_step": start + 1,
                "data": {
                    "dataset": {
                        "dataset_folder": [spec.paths[d] for d in phase.weights],
                        "dataset_weights": list(phase.weights.values()),
                    },
                    "seed": spec.options.seed,
                    "num_loading_workers": 1,
                },
            }
        )
    head = [
        "nanotron data_stages written by `mixopt export --format nanotron`.",
        f"dataset_weights: {spec.note}.",
        f"Steps assume sequence_length={sched['seq_length']} and global batch {sched['global_batch_size']} sequences "
        f"({sched['tokens_per_step']} tokens/step): set tokens.train_steps = {sched['total_steps']}.",
        "start_training_step = round(start_fraction * train_steps) + 1 (nanotron steps start at 1).",
        "Stages do NOT continue each domain where the earlier stages stopped: nanotron builds a new Nanoset per stage and "
        "reads it from its start (a seeded shuffle of one epoch of its datasets), so a later stage draws each domain "
        "afresh and a domain planned at <= 1 epoch is partly re-read and partly never read. To keep stages disjoint, give "
        "each stage its own dataset_folder holding its share of such a domain (the planned reading below); a different "
        "seed per stage only makes the overlap random.",
    ]
    for phase, reading in zip(spec.phases, reading_text(spec, per="tokens")):
        head.append(f"planned {phase.name}: " + ", ".join(reading) + " (epochs of the domain's data, or tokens).")
    body = yaml.safe_dump({"data_stages": stages}, sort_keys=False, default_flow_style=False)
    return {"data_stages.yaml": "".join(f"# {line}\n" for line in head) + body}
