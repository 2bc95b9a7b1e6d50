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

Phases do NOT continue each domain where the earlier ones stopped (a limitation of
OLMo-core, checked with ai2-olmo-core 3.0.0): a phase's mixture draws each file's
instances afresh with ``rng.choice(instances, size=n)`` seeded by the config's ``seed``,
with replacement and no offset. With the same seed in every phase a later phase's draws
of a file are exactly the first draws an earlier phase made (it re-reads them), and
the rest of the file is left unread. Each phase file says so and names a seed per
phase (``seed + phase index``): different seeds make the phases' draws independent,
which removes the systematic re-reading but not chance overlaps. Splitting such a
domain's files and listing only phase k's share of them in its ``paths`` (the planned
reading of each domain per phase is in the file's comments) keeps the phases disjoint,
but reads no more distinct data and repeats more: each phase then draws its own files
to one epoch with replacement and reads 1 - 1/e = 63% of them, so a domain planned at
x <= 1 epochs reads 0.63 x of its data over the run, where unsplit files with independent
seeds read 1 - exp(-x) (the same at x = 1, more below it: 0.39 against 0.32 at x = 0.5).
Split only where disjoint phases matter more than repeats.

The draws are with replacement even within one phase: a phase that draws ``x`` epochs
of a file reads about ``1 - exp(-x)`` of its instances at least once (63% at one epoch)
and some of them more than once, so a plan's "1 epoch, no repetition" is not what
OLMo-core trains. Each phase file gives that expected share per domain (``coverage``).
"""

from __future__ import annotations

import math

import yaml

from .reading import planned_reading, pools_text, reading_text
from .semantics import REPETITION_MARGIN, max_repetition_ratio
from .spec import ExportSpec

__all__ = ["REPETITION_MARGIN", "coverage", "export_olmo_core", "max_repetition_ratio"]


def coverage(epochs: float) -> float:
    """Expected share of a file's instances read at least once by ``epochs`` x its size draws with replacement."""
    return 1.0 - math.exp(-epochs)


def export_olmo_core(spec: ExportSpec) -> dict[str, str]:
    files: dict[str, str] = {}
    n = len(spec.phases)
    for phase, reading in zip(spec.phases, reading_text(spec, per="tokens")):
        unit_note = "epochs of the domain's data (tokens where the plan has no epochs)"
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
            "Phases do NOT continue each domain where the earlier phases stopped: OLMo-core draws each file's instances "
            "afresh per phase (rng.choice with replacement, seeded by SourceMixtureDatasetConfig.seed), so with one seed "
            "for all phases this phase re-reads the first draws of the earlier phases and leaves the rest unread.",
            f"Use seed = {spec.options.seed + phase.index} (seed + phase index) for this phase so its draws are independent "
            "of the other phases' (chance overlaps remain). Listing only this phase's share of a domain's files in its "
            "paths keeps phases disjoint but repeats more: the phase then draws those files to one epoch with "
            "replacement and reads 63% of them, so a domain planned at x <= 1 epochs reads 0.63 x of its data over the "
            "run, against 1 - exp(-x) with unsplit files and these seeds (equal at x = 1).",
            f"Planned reading in this phase, in {unit_note}, after the earlier phases': " + ", ".join(reading) + ".",
            *([pools] if (pools := pools_text(spec, "olmo-core")) else []),
        ]
        drawn = {d: amount for d, (amount, unit, _) in planned_reading(spec, phase, per="tokens").items() if unit == "epochs"}
        if drawn:
            head.append(
                "OLMo-core draws instances with replacement even within a phase: drawing x epochs of a domain's files reads "
                "about 1 - exp(-x) of its instances at least once and repeats others (63% at x = 1). Expected coverage "
                "this phase: " + ", ".join(f"{d} {coverage(x):.2f} ({x:.3g} epochs drawn)" for d, x in drawn.items()) + "."
            )
        body = yaml.safe_dump({"sources": sources}, sort_keys=False, default_flow_style=False)
        files[f"{phase.name}.yaml"] = "".join(f"# {line}\n" for line in head) + body
    return files
