"""Everything an exporter needs, validated once before any format renders or writes.

`prepare` checks the plan, the domain paths, tokens per document and the
step options, and resolves each phase's weights (converted to documents when the
format weights documents, rounded to sum to exactly 1). Exporters then only
format text, so an error can never leave half an export behind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, ExportError
from ..plan import Plan, plan_from_dict
from .semantics import DOC_NOTE, DOCUMENTS, TOKEN_NOTE, doc_shares, exact_shares, resolve_tokens_per_doc

#: Sequence length used to turn tokens into steps when none is given.
DEFAULT_SEQ_LENGTH = 4096
#: Global batch size (sequences per step) used when none is given: 512 x 4096 ~ 2.1M tokens/step.
DEFAULT_GLOBAL_BATCH_SIZE = 512
#: HF `interleave_datasets` stopping strategies that keep the exported probabilities all run long.
STOPPING_STRATEGIES = ("all_exhausted", "first_exhausted")
#: How far --total-iterations may be from budget / tokens per step (besides one step): 1% more or fewer tokens
#: moves a domain's epochs by 1%.
TOTAL_TOLERANCE = 0.01
#: The most an export's whole steps may train, as a multiple of the plan's budget: a budget under half a step (81,920
#: tokens at the default 512 x 4096 = 2,097,152 per step trains 25.6x its epochs) is refused, naming the flags.
MAX_ROUNDING = 2.0

#: The formats each format-specific option acts in; `mixopt export` refuses one given with another format (it would
#: be ignored). tokens_per_doc: the document-weighted formats (``semantics.DOCUMENTS``); the step options: the formats
#: that write step numbers (``ExportSpec.schedule``); seed: the formats that write a sampling seed.
OPTION_FORMATS: dict[str, tuple[str, ...]] = {
    "tokens_per_doc": ("litdata", "mosaic-streaming", "hf-datasets"),
    "total_iterations": ("megatron", "nanotron"),
    "global_batch_size": ("megatron", "nanotron"),
    "seq_length": ("megatron", "nanotron"),
    "seed": ("olmo-core", "nanotron", "litdata", "hf-datasets"),
    "stopping_strategy": ("hf-datasets",),
    "local_cache": ("mosaic-streaming",),
}


def inapplicable_options(fmt: str, given: Mapping[str, bool]) -> str | None:
    """A one-line refusal naming the options in ``given`` (name, with ``_`` for ``-``, to whether it was passed) that
    format ``fmt`` ignores and the formats they act in; None when all apply (or ``fmt`` is not a known format)."""
    if fmt not in {f for formats in OPTION_FORMATS.values() for f in formats} | {"json"}:
        return None  # the unknown format is refused with the list of formats
    stray = [name for name, passed in given.items() if passed and fmt not in OPTION_FORMATS[name]]
    if not stray:
        return None
    flag = {name: "--" + name.replace("_", "-") for name in stray}
    if len(stray) == 1:
        formats = OPTION_FORMATS[stray[0]]
        return (f"{flag[stray[0]]} acts only with --format {', '.join(formats[:-1]) + ' or ' if len(formats) > 1 else ''}"
                f"{formats[-1]}; with --format {fmt} it would be ignored. Drop it, or export to one of those formats.")
    listed = "; ".join(f"{flag[n]} with {', '.join(OPTION_FORMATS[n])}" for n in stray)
    return (f"These options act only with other formats ({listed}); with --format {fmt} they would be ignored. "
            "Drop them, or export to one of those formats.")


#: Longest scan of totals `min_total_steps` does before it settles for its bound.
_MAX_SCAN = 5_000_000


@dataclass(frozen=True)
class ExportOptions:
    """Knobs some formats need; each default is documented in the CLI help."""

    global_batch_size: int | None = None  # sequences per optimizer step; DEFAULT_GLOBAL_BATCH_SIZE if None
    seq_length: int | None = None  # tokens per sequence; DEFAULT_SEQ_LENGTH if None
    total_iterations: int | None = None  # replaces ceil(budget_tokens / (gbs * seq)); must be within one step (or 1%) of the ratio
    seed: int = 42  # sampling seed written into formats that take one
    stopping_strategy: str = "all_exhausted"  # hf-datasets only; see hf_datasets.py
    local_cache: str | None = None  # mosaic-streaming only: folder for remote streams' shards; see mosaic.py


@dataclass(frozen=True)
class PhaseSpec:
    """One plan phase with the weights a format writes (zero-weight domains dropped)."""

    index: int
    start_fraction: float
    end_fraction: float
    tokens: float  # budget tokens this phase covers
    token_shares: dict[str, float]  # rounded to sum to exactly 1; a positive share stays positive
    weights: dict[str, float]  # what the format writes: token_shares, or document shares

    @property
    def name(self) -> str:
        return f"phase_{self.index:02d}"


@dataclass(frozen=True)
class ExportSpec:
    plan: Plan
    fmt: str
    semantics: str  # semantics.TOKENS or semantics.DOCUMENTS
    paths: dict[str, str]
    phases: list[PhaseSpec]
    tokens_per_doc: dict[str, float]
    options: ExportOptions = field(default_factory=ExportOptions)

    @property
    def note(self) -> str:
        """What the written weights are, for each format's header comment or metadata: the conversion, and, for a plan
        without some of its domains (``export --drop``), that its shares were renormalised (`Plan.drop_note`)."""
        base = DOC_NOTE if self.semantics == DOCUMENTS else TOKEN_NOTE
        drop = self.plan.drop_note()
        return f"{base}; {drop}" if drop else base

    def schedule(self) -> dict[str, Any]:
        """Steps: total, tokens per step, each phase's first step (0-based; every phase gets >= 1) and, when the steps
        train more than ``TOTAL_TOLERANCE`` off the budget or off a phase's planned tokens, ``rounding_note``
        (`steps_note`; else None) for the file.

        Raises `ExportError` naming the flag to change when ``--total-iterations`` disagrees with the
        budget at the batch and sequence length by more than one step (and 1%), when the steps would train more than
        ``MAX_ROUNDING`` times the budget (a budget under half a step), or when the steps leave a phase without one.
        """
        gbs = self.options.global_batch_size or DEFAULT_GLOBAL_BATCH_SIZE
        seq = self.options.seq_length or DEFAULT_SEQ_LENGTH
        per_step = gbs * seq
        total = self.options.total_iterations or max(1, math.ceil(self.plan.budget_tokens / per_step))
        if self.options.total_iterations:
            self._check_total(total, gbs, seq)
        fractions = [p.start_fraction for p in self.phases]
        if total * per_step > MAX_ROUNDING * self.plan.budget_tokens * (1 + 1e-9):
            raise ExportError(self._too_large_steps(fractions, total, gbs, seq))
        starts = start_steps(fractions, total)
        if starts is None:
            raise ExportError(self._too_few_steps(fractions, total, gbs, seq))
        return {
            "global_batch_size": gbs,
            "seq_length": seq,
            "tokens_per_step": per_step,
            "total_steps": total,
            "start_steps": starts,
            "rounding_note": steps_note(self.plan.budget_tokens, self.options, fractions),
            "steps_rule": "step = round(start_fraction * total_steps); total_steps = "
            "ceil(budget_tokens / (global_batch_size * seq_length)), or --total-iterations within one step (or 1%) of that ratio",
        }

    def _too_large_steps(self, fractions: list[float], total: int, gbs: int, seq: int) -> str:
        budget = self.plan.budget_tokens
        trained = total * gbs * seq
        example = fitting_steps(fractions, budget, seq, gbs)
        eg = f" (e.g. --global-batch-size {example[0]} with --seq-length {example[1]})" if example else ""
        given = " (--total-iterations)" if self.options.total_iterations else ""
        return (f"The plan's budget of {budget:.4g} tokens is {budget / (gbs * seq):.3g} step(s) at {gbs} x {seq} = "
                f"{gbs * seq} tokens per step ({_flags(self.options)}): the export's {total} whole step(s){given} would "
                f"train {trained:.4g} tokens ({trained / budget - 1:+.0%}), every domain {trained / budget:.3g}x its planned "
                f"epochs. Pass the --global-batch-size and --seq-length you train with, at most {budget * MAX_ROUNDING:.4g} "
                f"tokens per step{eg}; --total-iterations cannot go below 1 step.")

    def _check_total(self, total: int, gbs: int, seq: int) -> None:
        """``--total-iterations`` must train the budget at ``gbs x seq`` tokens per step, to within one step or
        ``TOTAL_TOLERANCE`` of it (a budget rounded to a round number of steps is fine).

        Otherwise the exported steps train a different number of tokens than the exported token counts
        and the plan's epochs assume.
        """
        budget = self.plan.budget_tokens
        exact = budget / (gbs * seq)
        if abs(total - exact) <= max(1.0, TOTAL_TOLERANCE * exact) + 1e-9:
            return
        g = round(budget / (total * seq))
        eg = f" (e.g. --global-batch-size {g} with --seq-length {seq})" if g >= 1 and abs(total - budget / (g * seq)) <= max(1.0, TOTAL_TOLERANCE * total) else ""
        raise ExportError(
            f"--total-iterations must train the plan's budget: {total} steps at {gbs} x {seq} = {gbs * seq} tokens per step "
            f"(--global-batch-size x --seq-length) is {total * gbs * seq:.4g} tokens, but the budget is {budget:.4g} tokens "
            f"({exact:.2f} steps). Pass the --global-batch-size and --seq-length you train with{eg}"
            + (f", or leave out --total-iterations (it would be {default})"
               if start_steps([p.start_fraction for p in self.phases], default := max(1, math.ceil(exact))) is not None
               else "") + "."
        )

    def _too_few_steps(self, fractions: list[float], total: int, gbs: int, seq: int) -> str:
        starts = [int(round(f * total)) for f in fractions]
        ends = starts[1:] + [total]
        i = next(k for k in range(len(starts)) if ends[k] <= starts[k])
        need = min_total_steps(fractions, total)
        budget = self.plan.budget_tokens
        given = f" (--total-iterations {total})" if self.options.total_iterations else ""
        fix = f"Lower --global-batch-size or --seq-length so that the budget gives at least {need} steps"
        smaller = largest_batch(fractions, budget, seq, gbs, need)
        example = (smaller, seq) if smaller is not None else fitting_steps(fractions, budget, seq // 2, gbs)
        if example is not None and math.ceil(budget / (example[0] * example[1])) >= need:
            fix += f" (e.g. --global-batch-size {example[0]} with --seq-length {example[1]})"
        if self.options.total_iterations:
            fix += ", and leave out --total-iterations or set it to budget / tokens per step"
        return (
            f"Every phase must train for at least one step (phases start at distinct steps, each before the last). "
            f"Got {self.phases[i].name} (start fraction {fractions[i]:g}) at steps [{starts[i]}, {ends[i]}) of {total}: "
            f"a budget of {budget:g} tokens at {gbs} x {seq} = {gbs * seq} tokens per step gives {total} steps{given}. "
            f"{fix}."
        )


def _flags(options: ExportOptions) -> str:
    return "--global-batch-size x --seq-length" + ("" if options.global_batch_size or options.seq_length else ", the defaults")


def steps_note(budget_tokens: float, options: ExportOptions, fractions: list[float] | tuple[float, ...] = (0.0,)) -> str | None:
    """One line when the steps written at ``options`` train more than ``TOTAL_TOLERANCE`` off the plan's budget (a budget
    under one step or not far above it rounded up to whole steps, or a ``--total-iterations`` one step off a small
    ratio), or, for phases starting at ``fractions`` of the run, train some phase more than ``TOTAL_TOLERANCE`` off its
    planned tokens (a phase start rounded to a whole step of few); None when they train the budget and every phase's
    tokens. Step formats write it next to their step count (and ``mixopt export`` prints it), so a file read later,
    without the export's stderr, still says so."""
    if not budget_tokens > 0:
        return None
    gbs = options.global_batch_size or DEFAULT_GLOBAL_BATCH_SIZE
    seq = options.seq_length or DEFAULT_SEQ_LENGTH
    per_step = gbs * seq
    exact = budget_tokens / per_step
    total = options.total_iterations or max(1, math.ceil(exact))
    fractions = list(fractions) or [0.0]
    given = " (--total-iterations)" if options.total_iterations else ""
    parts = []
    if abs(total - exact) > exact * TOTAL_TOLERANCE + 1e-9:
        parts.append(f"the plan's budget of {budget_tokens:.4g} tokens is {exact:.3g} step(s) at {gbs} x {seq} tokens per "
                     f"step ({_flags(options)}), so the export trains {total} step(s){given}, {total * per_step:.4g} tokens "
                     f"({total / exact - 1:+.0%}) and every domain reads that much {'more' if total > exact else 'less'} "
                     "than the plan's epochs say")
    errors = phase_errors(fractions, budget_tokens, per_step, total) if len(fractions) > 1 else None
    off = [i for i, e in enumerate(errors or []) if abs(e) > TOTAL_TOLERANCE + 1e-9]
    if off:
        starts = start_steps(fractions, total)
        ends = starts[1:] + [total]
        lengths = phase_lengths(fractions)
        each = ", ".join(f"phase_{i:02d} trains {ends[i] - starts[i]} step(s), {(ends[i] - starts[i]) * per_step:.4g} tokens "
                         f"where the plan has {lengths[i] * budget_tokens:.4g} ({errors[i]:+.0%})" for i in off)
        what = (f"that phase reads each domain that much {'more' if errors[off[0]] > 0 else 'less'}" if len(off) == 1
                else "those phases read each domain that much more or less")
        parts.append(f"each phase starts at the whole step round(start_fraction x {total}){given} at {gbs} x {seq} "
                     f"tokens per step ({_flags(options)}), so {each}: {what} than the plan's phases say")
    if not parts:
        return None
    example = None if options.total_iterations else fitting_steps(fractions, budget_tokens, seq, gbs)
    eg = (f" (e.g. --global-batch-size {example[0]} with --seq-length {example[1]}, which trains every phase within "
          f"{TOTAL_TOLERANCE:.0%} of its tokens)") if example and example != (gbs, seq) else ""
    return ("; ".join(parts) + " (the planned readings written here are those of these steps). Pass the "
            f"--global-batch-size and --seq-length you train with{eg}.")


def rounding_note(fmt: str, budget_tokens: float, options: ExportOptions,
                  fractions: list[float] | tuple[float, ...] = (0.0,)) -> str | None:
    """`steps_note` for a format that writes steps (``fmt`` in ``OPTION_FORMATS["total_iterations"]``); None for others.
    ``fractions``: the plan's phase start fractions."""
    return steps_note(budget_tokens, options, fractions) if fmt in OPTION_FORMATS["total_iterations"] else None


def phase_lengths(fractions: list[float]) -> list[float]:
    """Each phase's share of the run, for phases starting at ``fractions``."""
    return [b - a for a, b in zip(fractions, list(fractions[1:]) + [1.0])]


def phase_errors(fractions: list[float], budget: float, per_step: int, total: int) -> list[float] | None:
    """Per phase, what its whole steps (`start_steps` of ``total`` at ``per_step`` tokens) train relative to its planned
    tokens, minus 1; None when some phase gets no step."""
    starts = start_steps(fractions, total)
    if starts is None:
        return None
    ends = starts[1:] + [total]
    return [(e - s) * per_step / (n * budget) - 1 for s, e, n in zip(starts, ends, phase_lengths(fractions))]


def steps_fit(fractions: list[float], budget: float, per_step: int) -> bool:
    """Whether the whole steps of ``budget`` at ``per_step`` tokens (``ceil(budget / per_step)``) give every phase a step
    and train each phase's planned tokens, so the budget too, within ``TOTAL_TOLERANCE``."""
    errors = phase_errors(fractions, budget, per_step, max(1, math.ceil(budget / per_step)))
    return errors is not None and all(abs(e) <= TOTAL_TOLERANCE + 1e-9 for e in errors)


#: Most batches `fitting_steps` and `largest_batch` try at one sequence length.
_MAX_BATCHES = 100_000


def fitting_steps(fractions: list[float], budget: float, seq: int, gbs: int) -> tuple[int, int] | None:
    """``(global batch, sequence length)`` near ``gbs`` x ``seq`` whose whole steps train every phase's planned tokens,
    so the budget too, within ``TOTAL_TOLERANCE`` (`steps_fit`: each phase start lands near its planned start): the
    largest batch at ``seq``, else at a halved ``seq``."""
    while seq >= 1:
        for g in range(gbs, max(0, gbs - _MAX_BATCHES), -1):
            if steps_fit(fractions, budget, g * seq):
                return g, seq
        seq //= 2
    return None


def start_steps(fractions: list[float], total: int) -> list[int] | None:
    """``round(f * total)`` per phase, or None unless they rise strictly and the last is below ``total``."""
    starts = [int(round(f * total)) for f in fractions]
    ends = starts[1:] + [total]
    return starts if all(e > s for s, e in zip(starts, ends)) else None


def largest_batch(fractions: list[float], budget: float, seq: int, gbs: int, need: int) -> int | None:
    """The largest global batch below ``gbs`` at ``seq`` whose steps (at least ``need``) train every phase's planned
    tokens within ``TOTAL_TOLERANCE`` (`steps_fit`), if one is near."""
    top = min(gbs - 1, math.ceil(budget / ((max(need, 2) - 1) * seq)) - 1)  # the largest batch with >= need steps
    for g in range(top, max(0, top - _MAX_BATCHES), -1):
        if steps_fit(fractions, budget, g * seq):
            return g
    return None


def min_total_steps(fractions: list[float], total: int) -> int:
    """The fewest total steps ``N > total`` such that every ``T >= N`` gives every phase a step (see `start_steps`).

    Rounding to the nearest step moves a start by at most 1/2, so with the smallest phase
    share ``g`` every ``T > 1 / g`` works: consecutive starts differ by more than
    ``g * T - 1 > 0``, and the last phase keeps more than ``g * T - 1/2 > 0`` steps.
    Below that bound some totals fail although a smaller one works (e.g. phases at
    0, 0.05 and 0.075 work at 20 steps but not at 30), so ``N`` is one above the largest
    failing total under the bound. When that scan would be very long, the bound itself
    is returned: still true, not always least.
    """
    gaps = [b - a for a, b in zip(fractions, fractions[1:] + [1.0])]
    safe = max(total + 1, math.ceil(1.0 / min(gaps)) + 1)  # every T >= safe works
    if safe - (total + 1) > _MAX_SCAN:
        return safe
    f = np.asarray(fractions, dtype=float)
    hi = safe
    while hi > total + 1:  # scan down from the bound for the largest failing total
        lo = max(total + 1, hi - 100_000)
        t = np.arange(lo, hi, dtype=float)
        starts = np.rint(np.outer(t, f))  # half to even, as Python's round
        ends = np.concatenate([starts[:, 1:], t[:, None]], axis=1)
        failing = np.flatnonzero(~np.all(ends > starts, axis=1))
        if failing.size:
            return int(t[failing[-1]]) + 1
        hi = lo
    return total + 1


def prepare(
    plan: Plan | Mapping[str, Any],
    fmt: str,
    semantics: str | None,
    paths: Mapping[str, str] | None,
    tokens_per_doc: Mapping[str, float] | None = None,
    options: ExportOptions | None = None,
) -> ExportSpec:
    """Validate all inputs and resolve per-phase weights; raises `ExportError`."""
    options = options or ExportOptions()
    plan = _checked_plan(plan)
    _check_options(options)
    known = plan.domains
    used = sorted({d for p in plan.phases for d, w in p.weights.items() if w > 0})
    searched = [str(d) for d in plan.provenance.get("domains") or [] if isinstance(d, str)]
    clean_paths = _check_paths(paths or {}, known, used if semantics is not None else [], fmt, searched=searched)
    tpd = resolve_tokens_per_doc(plan.tokens_per_doc, tokens_per_doc or {}, used if semantics == DOCUMENTS else [], known, fmt)
    phases = []
    fractions = plan.phase_fractions()
    for i, (phase, frac) in enumerate(zip(plan.phases, fractions)):
        shares = {d: w for d, w in phase.weights.items() if w > 0}
        tok = exact_shares(shares)
        out = exact_shares(doc_shares(shares, tpd)) if semantics == DOCUMENTS else tok
        phases.append(
            PhaseSpec(
                index=i,
                start_fraction=phase.start_fraction,
                end_fraction=phase.start_fraction + frac,
                tokens=frac * plan.budget_tokens,
                token_shares=tok,
                weights=out,
            )
        )
    return ExportSpec(plan=plan, fmt=fmt, semantics=semantics or "", paths=clean_paths, phases=phases, tokens_per_doc=tpd, options=options)


def _checked_plan(plan: Plan | Mapping[str, Any]) -> Plan:
    # Re-validate even a Plan object: it may have been built with model_construct or edited.
    raw = plan.to_dict() if isinstance(plan, Plan) else plan
    try:
        return plan_from_dict(raw, where="the plan to export")
    except ConfigError as exc:
        raise ExportError(f"Cannot export: {exc}") from None


def _check_paths(paths: Mapping[str, str], known: list[str], required: list[str], fmt: str, *,
                 searched: list[str] = ()) -> dict[str, str]:
    """The --paths of the plan's domains. A path for a domain the search weighed and left at zero (``searched``, the
    plan's provenance) is dropped, so one export script serves every plan of a store; any other name is a typo."""
    unknown = sorted(set(paths) - set(known) - set(searched))
    if unknown:
        raise ExportError(
            f"--paths may only name domains in the plan. Got {unknown}; the plan's domains are {known}. "
            "Fix the domain names or drop those --paths"
            + ("." if searched else " (this plan does not record the domains its search left at 0; one proposed again "
                                    "does, and then takes their --paths).")
        )
    paths = {d: p for d, p in paths.items() if d in known}
    missing = [d for d in required if not paths.get(d)]
    if missing:
        hint = " ".join(f"--paths {d}=PATH" for d in missing)
        raise ExportError(
            f"Format '{fmt}' needs a data path for every domain the plan samples. Missing for {missing}. Pass {hint}."
        )
    return {d: str(paths[d]) for d in sorted(paths)}


def _check_options(o: ExportOptions) -> None:
    for name in ("global_batch_size", "seq_length", "total_iterations"):
        v = getattr(o, name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ExportError(f"--{name.replace('_', '-')} must be an integer >= 1. Got {v!r}. Pass a positive integer.")
    if o.local_cache is not None and (not isinstance(o.local_cache, str) or not o.local_cache.strip() or "://" in o.local_cache):
        raise ExportError(f"--local-cache must be a folder on the training machine's own disk. Got {o.local_cache!r}. "
                          "Pass a path such as /scratch/mds-cache (no URL scheme).")
    if o.stopping_strategy not in STOPPING_STRATEGIES:
        raise ExportError(
            f"--stopping-strategy must be one of {list(STOPPING_STRATEGIES)}. Got {o.stopping_strategy!r}. "
            "('all_exhausted_without_replacement' drops exhausted datasets and so drifts away from the planned shares.)"
        )
