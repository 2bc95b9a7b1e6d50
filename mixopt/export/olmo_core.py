"""OLMo-core ``SourceMixtureList`` YAML, one file per phase (``phase_NN.yaml``).

OLMo-core's ``target_ratio`` is a share of tokens (``SourceMixtureDatasetConfig``
selects ``requested_tokens * target_ratio`` tokens per source), so the plan's
weights are written unchanged, rounded to sum to exactly 1.

``max_repetition_ratio`` caps how many times a source may be repeated. It is the
plan's ``epochs`` for the domain times ``1 + REPETITION_MARGIN``, rounded up to
2 decimals and at least 1.0. The margin absorbs OLMo-core rounding to whole
sequences and small differences between mixopt's token counts and your
tokenizer's. Without ``epochs`` for a domain it is 1.0 (no repetition), OLMo-core's
default. ``epochs`` covers the whole run, so it is a safe cap for every phase.
Load a file with ``SourceMixtureList.from_yaml(path)`` and pass it to
``SourceMixtureDatasetConfig(source_list=..., requested_tokens=<phase tokens>, ...)``.
"""

from __future__ import annotations

import yaml

from .semantics import REPETITION_MARGIN, max_repetition_ratio
from .spec import ExportSpec

__all__ = ["REPETITION_MARGIN", "export_olmo_core", "max_repetition_ratio"]


def export_olmo_core(spec: ExportSpec) -> dict[str, str]:
    files: dict[str, str] = {}
    n = len(spec.phases)
    for phase in spec.phases:
        sources = [
            {
                "source_name": domain,
                "target_ratio": ratio,
                "max_repetition_ratio": max_repetition_ratio(spec.plan.epochs.get(domain)),
                "paths": [spec.paths[domain]],
            }
            for domain, ratio in phase.weights.items()
        ]
        head = [
            f"OLMo-core SourceMixtureList for {phase.name} ({phase.index + 1} of {n}), written by `mixopt export --format olmo-core`.",
            f"target_ratio: {spec.note}.",
            f"max_repetition_ratio = max(1.0, plan epochs * {1 + REPETITION_MARGIN:g}) rounded up to 2 decimals; 1.0 where epochs is unknown.",
            f"This phase covers budget fractions [{phase.start_fraction:g}, {phase.end_fraction:g}): "
            f"use requested_tokens = {int(round(phase.tokens))} in SourceMixtureDatasetConfig.",
        ]
        body = yaml.safe_dump({"sources": sources}, sort_keys=False, default_flow_style=False)
        files[f"{phase.name}.yaml"] = "".join(f"# {line}\n" for line in head) + body
    return files
