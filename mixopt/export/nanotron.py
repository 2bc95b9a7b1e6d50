"""nanotron ``data_stages`` YAML block (one file), one stage per plan phase.

nanotron's ``Nanoset`` blends fixed-length samples of ``sequence_length`` tokens,
so ``dataset_weights`` are token shares and the plan's weights are written
unchanged. Stages follow nanotron's ``DatasetStageArgs`` schema
(``name``, ``start_training_step``, ``data: DataArgs``) with a
``NanosetDatasetsArgs`` dataset (``dataset_folder``, ``dataset_weights``).
nanotron counts steps from 1 and requires a stage that starts at step 1, so
``start_training_step = round(start_fraction * train_steps) + 1``.
Paste the block into your nanotron config next to ``tokens: {train_steps, ...}``.

Whether stages continue each domain depends on the nanotron version (read from
nanotron's source, huggingface/nanotron at 2411b022; nanotron is not run here: it
imports flash-attn and triton):

- nanotron main since June 2025 (7bc99232, "SmolLM3 training") trains the config's
  *last* stage only and moves on by resuming: launch k lists stages 0..k, sets
  ``tokens.train_steps`` to stage k's last step, and resumes from launch k-1's
  checkpoint (``get_dataloader`` requires the new stage's ``start_training_step`` to
  be the step after the last trained one, which this file's steps are). Its
  TokenizedBytes loader then offsets each ``dataset_folder`` by the tokens the
  earlier stages consumed from that folder (``consumed_tokens_per_dataset_folder``
  in the checkpoint), so stages continue each domain, as the plan means, when every
  stage names it by the same folder, as this file does.
- Nanoset-era nanotron (2024 to early 2025) builds a new ``Nanoset`` per stage and
  reads it from its start: one epoch's weighted index over its datasets, shuffled
  with ``seed``, each domain read from its sample 0 (modulo its length). So a later
  stage reads each domain's first samples again, and a domain planned at <= 1 epoch
  overall is partly re-read and partly never read; to keep stages disjoint there,
  give each stage its own folder of such a domain (its share of the tokenized
  files, ``planned`` in the header).

The YAML header says both, with each stage's last step and planned reading (what the stage's whole steps read). Where
the whole steps train more than 1% off the plan's budget (a budget under one step, or not far above it, rounded up at
this batch and sequence length) or off a stage's planned tokens (its start rounded to a whole step of few) the header
says so next to ``train_steps`` (a budget under half a step is refused).
"""

from __future__ import annotations

import yaml

from .reading import pools_text, reading_text, step_tokens
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
        f"({sched['tokens_per_step']} tokens/step): the whole run is tokens.train_steps = {sched['total_steps']} "
        "(keep the LR schedule's decay over it in every launch).",
        *([f"Rounding: {note}"] if (note := sched["rounding_note"]) else []),
        "start_training_step = round(start_fraction * train_steps) + 1 (nanotron steps start at 1).",
        "nanotron main (since 2025-06) trains the config's last stage only: run one launch per stage, launch k with "
        "data_stages holding stages 0..k, tokens.train_steps = stage k's last step (below), "
        "resuming from launch k-1's checkpoint; its loader then starts each dataset_folder after the tokens earlier "
        "stages consumed from it, so stages continue each domain (each domain keeps one folder here).",
        "Older, Nanoset-based nanotron builds a new Nanoset per stage and reads each domain from its start, so a later "
        "stage re-reads its first samples and a domain planned at <= 1 epoch is partly never read: there, give each "
        "stage its own dataset_folder holding its share of such a domain (the planned reading below).",
    ]
    for phase, reading in zip(spec.phases, reading_text(spec, per="tokens", tokens=step_tokens(sched))):
        last = sched["start_steps"][phase.index + 1] if phase.index + 1 < len(spec.phases) else sched["total_steps"]
        head.append(f"planned {phase.name} (steps {sched['start_steps'][phase.index] + 1}-{last}): " + ", ".join(reading)
                    + " (epochs of the domain's data, or tokens, that these steps read).")
    if pools := pools_text(spec, "nanotron"):
        head.append(pools)
    body = yaml.safe_dump({"data_stages": stages}, sort_keys=False, default_flow_style=False)
    return {"data_stages.yaml": "".join(f"# {line}\n" for line in head) + body}
