"""Export a plan to trainer formats: one pure function per format, ``ExportSpec -> {filename: text}``.

`export_plan` validates everything first (plan, paths, tokens per document, step
options), converts token shares to what each trainer's weight means (see
``semantics.py``) and only then renders, so callers can write nothing on error.

======================  ==============  ======================================
format                  weights mean    output
======================  ==============  ======================================
``megatron``            tokens          directory (blend.json + per-phase files)
``olmo-core``           tokens          directory (phase_NN.yaml)
``nanotron``            tokens          file (data_stages YAML)
``litdata``             documents       file (Python module)
``mosaic-streaming``    documents       directory (phase_NN.yaml)
``hf-datasets``         documents       directory (interleave.json + .py)
``json``                (plan as is)    file (JSON)
======================  ==============  ======================================
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ExportError
from ..plan import Plan
from .hf_datasets import export_hf_datasets
from .litdata import export_litdata
from .megatron import export_megatron
from .mosaic import export_mosaic
from .nanotron import export_nanotron
from .olmo_core import export_olmo_core
from .semantics import DOCUMENTS, TOKENS
from .spec import ExportOptions, ExportSpec, prepare


def export_json(spec: ExportSpec) -> dict[str, str]:
    """The plan itself as JSON (weights are the plan's token shares)."""
    return {"plan.json": json.dumps(spec.plan.to_dict(), indent=1, allow_nan=False) + "\n"}


@dataclass(frozen=True)
class Exporter:
    render: Callable[[ExportSpec], dict[str, str]]
    semantics: str | None  # TOKENS, DOCUMENTS, or None when no paths/weights are converted
    multi_file: bool  # True: OUT is a directory; False: OUT is the single file
    description: str


EXPORTERS: dict[str, Exporter] = {
    "megatron": Exporter(export_megatron, TOKENS, True, "Megatron-LM --data-path blends per phase + start iterations"),
    "olmo-core": Exporter(export_olmo_core, TOKENS, True, "OLMo-core SourceMixtureList YAML, one per phase"),
    "nanotron": Exporter(export_nanotron, TOKENS, False, "nanotron data_stages YAML"),
    "litdata": Exporter(export_litdata, DOCUMENTS, False, "Python module building a litdata CombinedStreamingDataset"),
    "mosaic-streaming": Exporter(export_mosaic, DOCUMENTS, True, "MosaicML streaming `streams` YAML, one per phase"),
    "hf-datasets": Exporter(export_hf_datasets, DOCUMENTS, True, "HF interleave_datasets probabilities (JSON + Python)"),
    "json": Exporter(export_json, None, False, "the plan as JSON"),
}


def get_exporter(fmt: str) -> Exporter:
    try:
        return EXPORTERS[fmt]
    except KeyError:
        raise ExportError(f"Export format must be one of {sorted(EXPORTERS)}. Got {fmt!r}. Pick one of those with --format.") from None


def export_plan(
    plan: Plan | Mapping[str, Any],
    fmt: str,
    paths: Mapping[str, str] | None = None,
    tokens_per_doc: Mapping[str, float] | None = None,
    options: ExportOptions | None = None,
) -> dict[str, str]:
    """Render ``plan`` in format ``fmt`` as ``{filename: text}``; raises `ExportError` on bad input.

    ``paths`` maps each domain the plan samples to its data location;
    ``tokens_per_doc`` overrides the plan's mean tokens per document (needed by
    document-weighted formats).
    """
    exporter = get_exporter(fmt)
    spec = prepare(plan, fmt, exporter.semantics, paths, tokens_per_doc, options)
    return exporter.render(spec)


__all__ = ["EXPORTERS", "Exporter", "ExportOptions", "ExportSpec", "export_plan", "get_exporter", "prepare"]
