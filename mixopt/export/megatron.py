"""Megatron-LM blends: ``--data-path w1 prefix1 w2 prefix2 ...`` per phase.

Megatron's ``BlendedDataset`` draws fixed-length samples (``--seq-length`` tokens),
so a blend weight is a token share and the plan's weights are written unchanged.

Output is a directory:

* ``blend.json``: every phase with its blend list, first/last iteration and the
  conversion note; ``start_iteration = round(start_fraction * total_iterations)``. Where the
  whole iterations train more than 1% off the plan's budget (a small budget rounded up to whole
  steps, or a phase start rounded to a whole iteration of few) ``rounding_note`` says so next to
  ``total_iterations``; each phase's ``tokens`` and ``samples`` count the iterations written, and
  ``planned_tokens`` is the plan's (a budget under half a step is refused).
* ``phase_NN.data_args.txt``: the blend as whitespace-separated text, for
  ``--data-args-path`` (Megatron reads it with ``f.read().split()``).
* ``phase_NN.per_split_data_args.json``: ``{"train": [...], "valid": null, "test": null}``
  for ``--per-split-data-args-path``; fill in ``valid``/``test`` with your own blends.

Megatron takes one blend per run, so each phase is a run that resumes from the
previous phase's checkpoint. Keep one learning-rate schedule over the whole run:
pass ``--train-iters TOTAL --lr-decay-iters TOTAL`` (``total_iterations``, and the
same warmup and ``--lr-wsd-decay-iters`` where used) to every phase, and stop phase
NN with ``--exit-interval END`` (its ``end_iteration``; Megatron saves a checkpoint
and exits at the first iteration divisible by it, which is END since phases end in
increasing order). Passing ``--train-iters END`` instead would decay the learning
rate to its minimum by the end of phase 0 (``--lr-decay-iters`` defaults to
``--train-iters``), and the resumed phase would fail Megatron's check that the
scheduler's decay steps match the checkpoint's. ``blend.json`` writes each
phase's arguments out as ``megatron_args``.

Phases do NOT continue each domain where the earlier ones stopped (a limitation of
Megatron's data pipeline, which has no per-dataset sample offset; checked with
megatron-core 0.16). A resumed phase builds a new ``BlendedDataset`` with its own
weights and skips the checkpoint's consumed samples of *that* blend, so phase k reads
dataset i's samples ``[w_ki * start_k, w_ki * end_k)`` (in sequences, ``start``/``end``
its iterations times the global batch) of the dataset's own sample order, where the plan
wants ``[sum of earlier phases' w_ji * (end_j - start_j), + w_ki * (end_k - start_k))``.
A domain whose weight falls re-reads samples an earlier phase read and never reaches its
planned tail; one whose weight rises skips samples and reads past its planned epochs.
``blend.json`` writes both ranges per domain (``samples``) and says so in ``continuation``.

No blend makes a resumed phase read exactly its planned samples. Giving phase k its own
``.bin``/``.idx`` prefix of such a domain (its documents of ``samples.planned``) keeps the
phases disjoint, but the phase still does not read that prefix once: Megatron sizes every
dataset of a blend for the whole run (``w_ki`` x ``--train-iters`` x the global batch), so a
phase prefix spans about 1 / (the phase's share of the run) epochs shuffled together, and the
phase reads a slice of that shuffle: some documents twice, about a third never (checked with
megatron-core 0.16's ``GPTDataset``: an end phase of a quarter of the run, prefix of 1,400
one-sample documents, read 954 distinct in its 1,400 samples). ``continuation`` says so too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..data.sources import DOCUMENT_SUFFIXES
from ..errors import ExportError
from .reading import pools_text
from .spec import ExportSpec


#: What blend.json says about phases and each domain's data (see the module docstring).
CONTINUATION = (
    "phases do NOT continue each domain where the earlier phases stopped: a resumed phase builds a new blend with its "
    "own weights and skips the checkpoint's consumed samples of that blend, so phase k reads dataset i's samples "
    "[w_ki * start_k, w_ki * end_k) (sequences; start/end = iterations x global batch) of the dataset's own sample "
    "order ('samples.megatron_reads'), not the plan's 'samples.planned' (which starts where the earlier phases' "
    "planned reading ended). A domain whose weight falls re-reads samples an earlier phase read and never reaches its "
    "planned tail; one whose weight rises skips samples and reads past its planned epochs. No blend reads exactly the "
    "planned samples: a phase's own .bin/.idx prefix of such a domain (its documents of samples.planned) keeps the "
    "phases disjoint, but Megatron sizes it for the whole run (w_ki x train-iters x global batch), so the prefix spans "
    "about 1 / (the phase's share of the run) epochs shuffled together and the phase reads a slice of that shuffle: "
    "some documents twice, about a third never (megatron-core 0.16: 954 distinct of 1,400 reads for an end phase of a "
    "quarter of the run)"
)


def blend_list(weights: dict[str, float], paths: dict[str, str]) -> list[str]:
    """The flat ``[w1, prefix1, w2, prefix2, ...]`` list Megatron's ``--data-path`` takes."""
    out: list[str] = []
    for domain, w in weights.items():
        out += [repr(w), dataset_prefix(paths[domain])]
    return out


def dataset_prefix(path: str) -> str:
    """Megatron wants the prefix of ``PREFIX.bin``/``PREFIX.idx``; strip either suffix. Any other path is written as
    given (a document file is flagged by `document_files_note`, not changed)."""
    for suffix in (".bin", ".idx"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def is_documents(path: str) -> bool:
    """Whether ``path`` names documents rather than a ``.bin``/``.idx`` prefix: a file ending in one of data's
    `DOCUMENT_SUFFIXES` (what sweep reads, compressed or not), or a folder (a path ending in ``/``, or naming a folder
    here that has no ``PREFIX.bin`` beside it)."""
    p = str(path)
    if p.lower().endswith(DOCUMENT_SUFFIXES) or p.endswith(("/", os.sep)):
        return True
    local = Path(p).expanduser()
    return local.is_dir() and not Path(f"{local}.bin").exists()


def document_files_note(paths: dict[str, str]) -> str | None:
    """What an export whose paths are document files or folders (`is_documents`), not ``.bin``/``.idx`` prefixes, says
    (the CLI's and the demo's warning, blend.json's ``paths_note``), or None."""
    docs = {d: p for d, p in paths.items() if is_documents(p)}
    if not docs:
        return None
    d, p = next(iter(sorted(docs.items())))
    return (f"the megatron paths of {', '.join(sorted(docs))} are document files or folders (e.g. {d}: {p}), not the PREFIX of the "
            "PREFIX.bin/PREFIX.idx Megatron opens, so the blend fails at launch as written: they are placeholders. "
            "Tokenize each with Megatron's tools/preprocess_data.py and pass its output prefix (--paths "
            f"{d}=PREFIX, without .bin/.idx)")


def megatron_args(data_args_path: str, total: int, end: int) -> str:
    """The Megatron-LM arguments that run one phase inside one schedule of ``total`` iterations, ending at ``end``."""
    args = f"--data-args-path {data_args_path} --train-iters {total} --lr-decay-iters {total}"
    return args if end >= total else f"{args} --exit-interval {end}"


def export_megatron(spec: ExportSpec) -> dict[str, str]:
    bad = {d: p for d, p in spec.paths.items() if any(c.isspace() for c in p)}
    if bad:
        raise ExportError(
            f"Megatron blend paths must not contain whitespace (--data-args-path is split on whitespace). Got {bad}. "
            "Rename or symlink those files."
        )
    sched = spec.schedule()
    ends = sched["start_steps"][1:] + [sched["total_steps"]]
    files: dict[str, str] = {}
    phases = []
    total = sched["total_steps"]
    gbs = sched["global_batch_size"]
    at: dict[str, float] = {}
    paths_note = document_files_note(spec.paths)
    for phase, start, end in zip(spec.phases, sched["start_steps"], ends):
        blend = blend_list(phase.weights, spec.paths)
        samples = {}
        for d, w in phase.weights.items():
            first = at.get(d, 0.0)
            at[d] = first + w * (end - start) * gbs
            samples[d] = {"planned": [round(first, 3), round(at[d], 3)], "megatron_reads": [round(w * start * gbs, 3), round(w * end * gbs, 3)]}
        args_name = f"{phase.name}.data_args.txt"
        split_name = f"{phase.name}.per_split_data_args.json"
        files[args_name] = "".join(f"{w} {p}\n" for w, p in zip(blend[::2], blend[1::2]))
        per_split = {"train": blend, "valid": None, "test": None,
                     "_mixopt": f"{spec.note}; fill in valid/test" + (f"; {paths_note}" if paths_note else "")}
        files[split_name] = json.dumps(per_split, indent=1) + "\n"
        phases.append(
            {
                "name": phase.name,
                "start_fraction": phase.start_fraction,
                "end_fraction": phase.end_fraction,
                "start_iteration": start,
                "end_iteration": end,
                "tokens": (end - start) * sched["tokens_per_step"],  # what its iterations train
                "planned_tokens": int(round(phase.tokens)),  # the plan's: differs where rounding_note says so
                "data_path": blend,
                "token_shares": phase.token_shares,
                "data_args_path": args_name,
                "per_split_data_args_path": split_name,
                "megatron_args": megatron_args(args_name, total, end),
                "samples": samples,
            }
        )
    meta = {
        "format": "megatron",
        "weights": spec.note,
        "budget_tokens": spec.plan.budget_tokens,
        "seq_length": sched["seq_length"],
        "global_batch_size": sched["global_batch_size"],
        "tokens_per_iteration": sched["tokens_per_step"],
        "total_iterations": sched["total_steps"],
        **({"rounding_note": note} if (note := sched["rounding_note"]) else {}),
        "iterations_rule": sched["steps_rule"] + " (0-based iterations)",
        "usage": f"one learning-rate schedule over the whole run: train every phase with --train-iters {total} "
        f"--lr-decay-iters {total} (the same warmup and --lr-wsd-decay-iters too) and --data-args-path "
        "phase_k.data_args.txt (or --per-split-data-args-path ...), stop phase k with --exit-interval end_iteration "
        "(the last phase ends at --train-iters) and resume phase k+1 from its checkpoint; each phase's megatron_args "
        "has these",
        "continuation": CONTINUATION,
        **({"paths_note": paths_note} if paths_note else {}),
        **({"pools": pools} if (pools := pools_text(spec, "megatron")) else {}),
        "phases": phases,
    }
    files["blend.json"] = json.dumps(meta, indent=1) + "\n"
    return files
