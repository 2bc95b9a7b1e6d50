"""litdata: a small Python module that builds a weighted ``CombinedStreamingDataset``.

``CombinedStreamingDataset(weights=...)`` picks one item at a time from the
chosen dataset, so weights are item (document) shares and the plan's token shares
are converted with the domains' mean tokens per document (see semantics.py).
``iterate_over_all=False`` is required: litdata ignores weights otherwise.
A plan with several phases gives one entry per phase in ``PHASES``;
``build(phase)`` returns the dataset for one of them.

With ``iterate_over_all=False`` a pass ends as soon as any one dataset runs out,
and a loop that starts another pass restarts every stream. So each domain's
stream is sized to what the phase trains of it: ``repeat`` is passed as
litdata's ``StreamingDataset(subsample=...)``, which repeats the shard list for
values above 1. ``repeat = max(1.0, phase_tokens / unique_tokens * (1 + margin))``
rounded up to 2 decimals, where ``phase_tokens`` is the phase's share of the
domain times the phase's tokens and ``unique_tokens`` is the domain's overall
share of the budget divided by its plan ``epochs`` (the margin is OLMo-core's,
see semantics.py). One pass of ``build(phase)`` then yields at least the phase's
planned documents of every domain, repeated as the plan intends, and a little
more; train the phase's tokens and stop. A domain without ``epochs`` in the
plan gets 1.0 (one pass over it).
"""

from __future__ import annotations

import pprint

from .semantics import REPETITION_MARGIN, max_repetition_ratio
from .spec import ExportSpec, PhaseSpec

_TEMPLATE = '''"""Data mixture for litdata, written by `mixopt export --format litdata`.

Weights: {note}.

Usage: ``from this_module import build; ds = build(phase=0, cache_dir=...)``;
extra keyword arguments go to every ``StreamingDataset``.

A pass ends when the first stream runs out (``iterate_over_all=False``), and a new
pass restarts every stream. So each stream is sized to the phase: "repeat" is its
``subsample`` (above 1 litdata repeats the shards), the phase's tokens of the domain
over its unique tokens (from the plan's epochs) times {factor:g}, at least 1.0.
One pass yields the phase's planned documents; train the phase's tokens and stop.
A ``subsample`` passed to ``build`` replaces the planned repeat factors.
"""

from litdata import CombinedStreamingDataset, StreamingDataset

SEED = {seed}

# One entry per plan phase. "weights" are item shares (what litdata samples by);
# "token_shares" are the plan's token shares they were converted from; "repeat" is
# each stream's subsample (how many times its data is gone through in the phase).
PHASES = {phases}


def build(phase=0, seed=SEED, **streaming_kwargs):
    """CombinedStreamingDataset for one plan phase, sampled by item share."""
    spec = PHASES[phase]
    names = list(spec["weights"])
    return CombinedStreamingDataset(
        datasets=[StreamingDataset(spec["inputs"][n], **{{"subsample": float(spec["repeat"][n]), **streaming_kwargs}})
                  for n in names],
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
            "repeat": repeat_factors(spec, p),
        }
        for p in spec.phases
    ]
    text = _TEMPLATE.format(
        note=spec.note, seed=spec.options.seed, factor=1 + REPETITION_MARGIN, phases=pprint.pformat(phases, sort_dicts=False, width=100)
    )
    return {"mixture_litdata.py": text}


def repeat_factors(spec: ExportSpec, phase: PhaseSpec) -> dict[str, float]:
    """Each domain's ``subsample`` for ``phase``: its tokens in the phase over its unique tokens, with the margin.

    A domain's unique tokens are its overall share of the budget over its plan epochs;
    without epochs (or trained nowhere) it is 1.0, one pass over the domain's data.
    """
    overall = spec.plan.overall_weights()
    out = {}
    for d, share in phase.token_shares.items():
        epochs = spec.plan.epochs.get(d)
        if not epochs or overall.get(d, 0.0) <= 0:
            out[d] = 1.0
            continue
        unique = overall[d] * spec.plan.budget_tokens / epochs
        out[d] = max_repetition_ratio(phase.tokens * share / unique)
    return out
