"""litdata: a small Python module that builds a weighted ``CombinedStreamingDataset``.

``CombinedStreamingDataset(weights=...)`` picks one item at a time from the
chosen dataset, so weights are item (document) shares and the plan's token shares
are converted with the domains' mean tokens per document (see semantics.py).
``iterate_over_all=False`` is required: litdata ignores weights otherwise.
A plan with several phases gives one entry per phase in ``PHASES``;
``build(phase)`` returns the dataset for one of them.
"""

from __future__ import annotations

import pprint

from .spec import ExportSpec

_TEMPLATE = '''"""Data mixture for litdata, written by `mixopt export --format litdata`.

Weights: {note}.

Usage: ``from this_module import build; ds = build(phase=0, cache_dir=...)``;
extra keyword arguments go to every ``StreamingDataset``.
"""

from litdata import CombinedStreamingDataset, StreamingDataset

SEED = {seed}

# One entry per plan phase. "weights" are item shares (what litdata samples by);
# "token_shares" are the plan's token shares they were converted from.
PHASES = {phases}


def build(phase=0, seed=SEED, **streaming_kwargs):
    """CombinedStreamingDataset for one plan phase, sampled by item share."""
    spec = PHASES[phase]
    names = list(spec["weights"])
    return CombinedStreamingDataset(
        datasets=[StreamingDataset(spec["inputs"][n], **streaming_kwargs) for n in names],
        weights=[spec["weights"][n] for n in names],
        seed=seed,
        iterate_over_all=False,
    )
'''


def export_litdata(spec: ExportSpec) -> dict[str, str]:
    phases = [
        {
            "name": p.name,
            "start_fraction": p.start_fraction,
            "end_fraction": p.end_fraction,
            "inputs": {d: spec.paths[d] for d in p.weights},
            "weights": p.weights,
            "token_shares": p.token_shares,
            "tokens_per_doc": {d: spec.tokens_per_doc[d] for d in p.weights},
        }
        for p in spec.phases
    ]
    text = _TEMPLATE.format(note=spec.note, seed=spec.options.seed, phases=pprint.pformat(phases, sort_dicts=False, width=100))
    return {"mixture_litdata.py": text}
