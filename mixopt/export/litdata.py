"""litdata: a small Python module that builds a weighted ``CombinedStreamingDataset``.

``CombinedStreamingDataset(weights=...)`` picks one item at a time from the
chosen dataset, so weights are item (document) shares and the plan's token shares
are converted with the domains' mean tokens per document (see semantics.py).
``iterate_over_all=False`` is required: litdata ignores weights otherwise.
A plan with several phases gives one entry per phase in ``PHASES``;
``build(phase)`` returns the dataset for one of them.

Phases continue each domain where the one before stopped. ``build(phase)`` makes
fresh streams, so a stream that started at the domain's first documents would make a
later phase (say an end-of-training upsampling) re-read what the earlier ones read
and never reach the domain's unseen tail. Instead each domain's stream is cut to a
*window* of the domain's data read over and over in its chunk order (the sequence
data, data, data, ...): phase k reads ``[start_k, start_k + planned_k)``, where
``planned_k`` is what the phase trains of the domain and ``start_k`` the sum of the
earlier phases' ``planned``. Over the run a domain is thus read exactly as often as
its plan ``epochs`` say, and one planned at <= 1 epoch never repeats a document
within its planned reading. The cut sets the stream's ``subsampled_files`` and
``region_of_interest``, as litdata's own ``train_test_split`` does, after a plain
``StreamingDataset(subsample=1.0)`` has read the chunk list.

With ``iterate_over_all=False`` a pass ends as soon as any one dataset runs out,
and a loop that starts another pass restarts every stream. So each stream also
holds a *spare* part after its planned one: ``planned_k * margin`` (the margin is
OLMo-core's, see semantics.py), or ``reading.SPARE_SDS`` standard deviations of the number of
documents the phase draws of the domain (``sqrt(documents)``) where that is more, as
for a small phase. One pass of ``build(phase)`` then yields at least the phase's
planned documents of every domain, and a little more; train the phase's tokens and
stop. The spares of all phases lie one after another beyond the run's
total planned reading (the domain's unseen tail where the plan reads less than
its data, else its first documents again), so no spare overlaps a phase's planned
window: only a phase that draws more than planned of a domain reads past it.

Windows are in epochs of the domain's data (``planned = phase_tokens / unique_tokens``
with ``unique_tokens`` the domain's overall share of the budget over its plan
``epochs``) and turned into items by the stream's real item count; a domain
without ``epochs`` has windows in documents (``phase_tokens / tokens_per_doc``).
``repeat`` is the stream's length in those units (planned plus spare).
"""

from __future__ import annotations

import pprint

from .reading import pools_text, stream_windows
from .semantics import REPETITION_MARGIN
from .spec import ExportSpec

_TEMPLATE = '''"""Data mixture for litdata, written by `mixopt export --format litdata`.

Weights: {note}.{pools}

Usage: ``from this_module import build; ds = build(phase=0, cache_dir=...)``;
extra keyword arguments go to every ``StreamingDataset``. Build each phase when it
starts and train its tokens from one pass.

Phases continue each domain where the earlier ones stopped: phase k's stream of a
domain is the window "read" of the domain's data read over and over in chunk order
(bounds in "unit": epochs of the data, or documents where the plan has no epochs),
starting where phase k-1's planned reading ended, so over the run each domain is read
as often as the plan says and a domain planned at <= 1 epoch repeats nothing.

A pass ends when the first stream runs out (``iterate_over_all=False``) and a new pass
restarts every stream, so each stream also holds a "spare" window read after its planned
part ({margin:g} of it, or 4 x sqrt(planned documents) if more): one pass yields at
least the phase's planned documents of every domain. The spares lie beyond the run's total planned reading (the unseen tail
of the data, else its first documents again); a phase only reaches its spare when it
draws more than planned of a domain. With ``shuffle=True`` litdata shuffles the planned
and spare items of a stream together, so a phase then reads most of its planned window
and some of its spare, still no other phase's planned documents.
A ``subsample`` passed to ``build`` gives plain litdata streams instead (each from the
domain's first documents, without windows).
"""

from litdata import CombinedStreamingDataset, StreamingDataset

SEED = {seed}

# One entry per plan phase. "weights" are item shares (what litdata samples by);
# "token_shares" are the plan's token shares they were converted from; "window" is where
# each domain's stream reads: "read" (the phase's planned part) then "spare" (slack),
# as [start, stop) in "unit" of the domain's data read over and over; "repeat" is the
# stream's length in that unit.
PHASES = {phases}


def build(phase=0, seed=SEED, **streaming_kwargs):
    """CombinedStreamingDataset for one plan phase, sampled by item share."""
    spec = PHASES[phase]
    names = list(spec["weights"])
    return CombinedStreamingDataset(
        datasets=[_stream(spec["inputs"][n], spec["window"][n], streaming_kwargs) for n in names],
        weights=[spec["weights"][n] for n in names],
        seed=seed,
        iterate_over_all=False,
    )


def _stream(input_dir, window, streaming_kwargs):
    """A StreamingDataset cut to ``window`` (its "read" items, then its "spare" items)."""
    if "subsample" in streaming_kwargs:
        return StreamingDataset(input_dir, **streaming_kwargs)
    dataset = StreamingDataset(input_dir, **streaming_kwargs)
    files, roi = dataset.subsampled_files, dataset.region_of_interest
    n = sum(stop - start for start, stop in roi)
    scale = n if window["unit"] == "epochs" else 1
    bounds = [(int(round(a * scale)), int(round(b * scale))) for a, b in (window["read"], window["spare"])]
    if all(b <= a for a, b in bounds):  # a share too small for one item still gets one
        bounds = [(bounds[1][0], bounds[1][0] + 1)]
    cut_files, cut_roi = [], []
    for a, b in bounds:
        _cut(files, roi, n, a, b, cut_files, cut_roi)
    dataset.subsampled_files, dataset.region_of_interest = cut_files, cut_roi
    return dataset


def _cut(files, roi, n, start, stop, out_files, out_roi):
    """Append items [start, stop) of the chunks' items repeated forever, as (file, (first, end)) pieces."""
    while start < stop:
        base = start - start % n
        offset = base
        for name, (first, end) in zip(files, roi):
            lo, hi = max(start, offset), min(stop, offset + end - first)
            if lo < hi:
                out_files.append(name)
                out_roi.append((first + lo - offset, first + hi - offset))
            offset += end - first
        start = base + n
'''


def export_litdata(spec: ExportSpec) -> dict[str, str]:
    windows = stream_windows(spec)
    phases = [
        {
            "name": p.name,
            "start_fraction": p.start_fraction,
            "end_fraction": p.end_fraction,
            "inputs": {d: spec.paths[d] for d in p.weights},
            "weights": p.weights,
            "token_shares": p.token_shares,
            "tokens_per_doc": {d: spec.tokens_per_doc[d] for d in p.weights},
            "repeat": {d: round(w["read"][1] - w["read"][0] + w["spare"][1] - w["spare"][0], 6) for d, w in win.items()},
            "window": win,
        }
        for p, win in zip(spec.phases, windows)
    ]
    text = _TEMPLATE.format(
        note=spec.note, pools=f"\n\n{text}" if (text := pools_text(spec, "litdata")) else "", seed=spec.options.seed, margin=REPETITION_MARGIN,
        phases=pprint.pformat(phases, sort_dicts=False, width=100),
    )
    return {"mixture_litdata.py": text}
