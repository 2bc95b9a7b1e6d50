"""nanotron ``data_stages`` YAML block (one file), one stage per plan phase.

nanotron's ``Nanoset`` blends fixed-length samples of ``sequence_length`` tokens,
so ``dataset_weights`` are token shares and the plan's weights are written
unchanged. Stages follow nanotron's ``DatasetStageArgs`` schema
(``name``, ``start_training_step``, ``data: DataArgs``) with a
``NanosetDatasetsArgs`` dataset (``dataset_folder``, ``dataset_weights``).
nanotron counts steps from 1 and requires a stage that starts at step 1, so
``start_training_step = round(start_fraction * train_steps) + 1``.
Paste the block into your nanotron config next to ``tokens: {train_steps, ...}``.
"""

from __future__ import annotations

import yaml

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
    ]
    body = yaml.safe_dump({"data_stages": stages}, sort_keys=False, default_flow_style=False)
    return {"data_stages.yaml": "".join(f"# {line}\n" for line in head) + body}
