"""Export a plan to trainer formats: one pure function per format, ``ExportSpec -> {filename: text}``.

`export_plan` validates everything first (plan, paths, tokens per document, step
options), converts token shares to what each trainer's weight means (see
``semantics.py``) and only then renders, so callers can write nothing on error.
`write_export` (``write.py``) renders and writes whole or not at all.

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

from .registry import EXPORTERS, Exporter, export_json, export_plan, get_exporter
from .spec import OPTION_FORMATS, ExportOptions, ExportSpec, inapplicable_options, prepare, rounding_note
from .write import ExportResult, export_target, write_export

__all__ = [
    "EXPORTERS",
    "ExportOptions",
    "ExportResult",
    "ExportSpec",
    "OPTION_FORMATS",
    "Exporter",
    "export_json",
    "export_plan",
    "export_target",
    "get_exporter",
    "inapplicable_options",
    "prepare",
    "rounding_note",
    "write_export",
]
