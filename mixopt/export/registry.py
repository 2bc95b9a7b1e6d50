"""The format registry: name -> renderer, what its weights mean and whether it writes a directory."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ExportError
from ..plan import Plan
from .hf_datasets import export_hf_datasets
from .litdata import export_litdata
from .megatron import document_files_note, export_megatron
from .mosaic import export_mosaic
from .nanotron import export_nanotron
from .olmo_core import export_olmo_core
from .semantics import DOCUMENTS, TOKENS
from .spec import ExportOptions, ExportSpec, prepare


def export_json(spec: ExportSpec) -> dict[str, str]:
    """The plan itself as JSON (weights are the plan's token shares).

    JSON has no NaN or infinity: such a number (an unknown ``predicted.std``, a
    baseline's missing value, an extra field) is written as ``null``, which reads
    back as "unknown", so the file loads as a plan again. The fields that must be
    numbers (budget, weights, ``predicted.value``...) are finite by validation.
    """
    return {"plan.json": json.dumps(_finite_or_null(spec.plan.to_dict()), indent=1, allow_nan=False) + "\n"}


def _finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float, however deep in dicts and lists, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


@dataclass(frozen=True)
class Exporter:
    render: Callable[[ExportSpec], dict[str, str]]
    semantics: str | None  # TOKENS, DOCUMENTS, or None when no paths/weights are converted
    file_name: str | None  # None: OUT is a directory of several files; else the one file's usual name
    description: str
    path_note: Callable[[dict[str, str]], str | None] | None = None  # a warning about the paths given, or None

    @property
    def multi_file(self) -> bool:
        """True when OUT is a directory; False when OUT is the single file."""
        return self.file_name is None


EXPORTERS: dict[str, Exporter] = {
    "megatron": Exporter(export_megatron, TOKENS, None, "Megatron-LM --data-path blends per phase + start iterations",
                         document_files_note),
    "olmo-core": Exporter(export_olmo_core, TOKENS, None, "OLMo-core SourceMixtureList YAML, one per phase"),
    "nanotron": Exporter(export_nanotron, TOKENS, "data_stages.yaml", "nanotron data_stages YAML"),
    "litdata": Exporter(export_litdata, DOCUMENTS, "mixture_litdata.py", "Python module building a litdata CombinedStreamingDataset"),
    "mosaic-streaming": Exporter(export_mosaic, DOCUMENTS, None, "MosaicML streaming `streams` YAML, one per phase"),
    "hf-datasets": Exporter(export_hf_datasets, DOCUMENTS, None, "HF interleave_datasets probabilities (JSON + Python)"),
    "json": Exporter(export_json, None, "plan.json", "the plan as JSON"),
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
