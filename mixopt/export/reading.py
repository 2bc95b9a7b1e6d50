"""What each phase of a plan reads of each domain's data, and where its stream starts.

A plan's phases share each domain's data: over the run a domain is read as often as
its plan ``epochs`` say, and phase k should continue where phase k-1's planned reading
stopped. ``planned_reading`` gives one phase's amount of each domain, ``planned_bounds``
lays the phases' amounts end to end (``[start, stop)`` per phase and domain), and
``stream_windows`` adds a *spare* after the run's total planned reading: the windows
the litdata and hf-datasets exports cut each phase's streams to. Formats whose trainer
cannot start a phase partway into a dataset write ``reading_text`` into their usage
text so a user can split the data by phase instead.

Amounts are in epochs of the domain's data (its overall share of the budget over its
plan ``epochs``), or, where the plan has no epochs for a domain, in documents (document
formats) or tokens (token formats, which need no tokens per document).
"""

from __future__ import annotations

import math

from .semantics import REPETITION_MARGIN
from .spec import ExportSpec, PhaseSpec

#: Significant digits kept for window bounds (each bound is computed once and shared by the phases that meet at it):
#: as many as a plan keeps of its epochs (``plan.EPOCH_DIGITS``), so a domain read for 1e-7 epochs keeps them all
#: (9 decimals kept 3 digits of it).
BOUND_DIGITS = 12


def _bound(x: float) -> float:
    """``x`` to ``BOUND_DIGITS`` significant digits."""
    return float(f"{x:.{BOUND_DIGITS}g}")
#: A spare holds at least this many standard deviations of the number of documents a phase draws of a domain
#: (at most sqrt(planned documents)), so a small planned reading does not end the pass early by chance.
SPARE_SDS = 4.0


def planned_reading(spec: ExportSpec, phase: PhaseSpec, *, per: str = "documents",
                    tokens: float | None = None) -> dict[str, tuple[float, str, float]]:
    """What ``phase`` trains of each domain: ``(amount, unit, documents)``.

    ``unit`` is ``"epochs"`` where the plan has epochs for the domain, else ``per``
    (``"documents"`` or ``"tokens"``). ``documents`` is the phase's tokens of the domain over
    its mean tokens per document (nan where a token format has none). ``tokens``: what the phase
    trains in all where that is not the plan's (a step format's whole steps, `step_tokens`).
    """
    if per not in ("documents", "tokens"):
        raise ValueError(f"per must be 'documents' or 'tokens', got {per!r}")
    overall = spec.plan.overall_weights()
    out = {}
    for d, share in phase.token_shares.items():
        tokens_d = (phase.tokens if tokens is None else tokens) * share
        tpd = spec.tokens_per_doc.get(d)
        docs = tokens_d / tpd if tpd else math.nan
        epochs = spec.plan.epochs.get(d)
        if epochs and overall.get(d, 0.0) > 0:
            out[d] = (tokens_d / (overall[d] * spec.plan.budget_tokens / epochs), "epochs", docs)
        else:
            out[d] = (docs if per == "documents" else tokens_d, per, docs)
    return out


def step_tokens(sched: dict) -> list[float]:
    """What each phase of a step format's ``spec.schedule()`` trains: its whole steps times the tokens per step."""
    ends = sched["start_steps"][1:] + [sched["total_steps"]]
    return [float((end - start) * sched["tokens_per_step"]) for start, end in zip(sched["start_steps"], ends)]


def planned_bounds(spec: ExportSpec, *, per: str = "documents",
                   tokens: list[float] | None = None) -> list[dict[str, tuple[float, float, str]]]:
    """Per phase, each domain's planned reading ``(start, stop, unit)`` after the earlier phases'.

    Each bound is computed once (to ``BOUND_DIGITS`` significant digits), so a phase starts exactly where
    the one before it ended. ``tokens``: each phase's tokens where they are not the plan's (`planned_reading`).
    """
    at: dict[str, float] = {}
    out = []
    for i, phase in enumerate(spec.phases):
        row = {}
        for d, (amount, unit, _) in planned_reading(spec, phase, per=per, tokens=tokens[i] if tokens else None).items():
            start = at.get(d, 0.0)
            at[d] = _bound(start + amount)
            row[d] = (start, at[d], unit)
        out.append(row)
    return out


def reading_text(spec: ExportSpec, *, per: str = "documents", tokens: list[float] | None = None) -> list[list[str]]:
    """Per phase, ``"domain [start, stop)"`` of its planned reading, the unit named where it is not epochs."""
    return [[f"{d} [{a:.6g}, {b:.6g})" + ("" if unit == "epochs" else f" {unit}") for d, (a, b, unit) in row.items()]
            for row in planned_bounds(spec, per=per, tokens=tokens)]


def spare_share(docs: float) -> float:
    """A spare's size relative to its planned reading: the margin, or ``SPARE_SDS`` standard deviations if more."""
    return max(REPETITION_MARGIN, SPARE_SDS / math.sqrt(docs)) if docs > 0 else REPETITION_MARGIN


def stream_windows(spec: ExportSpec) -> list[dict[str, dict]]:
    """Per phase, each domain's window: ``read`` (its planned part, after the earlier phases') and ``spare``.

    Spares (``planned * spare_share(documents)``) are stacked after the domain's total
    planned reading, so no phase's stream overlaps another phase's planned part.
    """
    bounds = planned_bounds(spec)
    at = {d: stop for row in bounds for d, (_, stop, _) in row.items()}  # the run's total planned reading
    out = []
    for phase, row in zip(spec.phases, bounds):
        win = {}
        reading = planned_reading(spec, phase)
        for d, (start, stop, unit) in row.items():
            spare = at[d]
            amount, _, docs = reading[d]
            at[d] = _bound(spare + amount * spare_share(docs))
            win[d] = {"unit": unit, "read": [start, stop], "spare": [spare, at[d]]}
        out.append(win)
    return out


#: What each format's one path per domain (``--paths`` names a domain once) must be for a pooled domain.
POOL_PATHS = {
    "hf-datasets": "a glob that matches only its kept pools' files, or a folder that holds only them (for score buckets: "
                   "a data file of only their documents)",
    "litdata": "a folder that litdata.optimize wrote from exactly its kept pools' documents",
    "mosaic-streaming": "an MDS folder written from exactly its kept pools' documents",
    "megatron": "a .bin/.idx prefix preprocessed from exactly its kept pools' documents",
    "nanotron": "a tokenized dataset_folder made from exactly its kept pools' documents",
    "olmo-core": "a token file (.npy) tokenized from exactly its kept pools' documents",
}


def pools_text(spec: ExportSpec, fmt: str) -> str:
    """One sentence on the plan's kept quality pools, for format ``fmt``'s notes ("" when the plan keeps none): each
    such domain's one path (:data:`POOL_PATHS`, what ``fmt`` reads) must hold exactly those pools' documents (their
    files, or a score bucket's documents, as the plan's ``provenance.pool_sources`` says), whose unique tokens the
    plan's epochs (and the planned reading, repetition caps and tokens per document written here) count."""
    overall = spec.plan.overall_weights()
    sources = spec.plan.provenance.get("pool_sources") or {}
    parts = []
    for d, kept in sorted(spec.plan.pools.items()):
        if not kept or overall.get(d, 0.0) <= 0:
            continue
        every = list(spec.plan.pool_laws.get(d) or [])
        of = f" (of {', '.join(every)})" if every and len(every) > len(kept) else ""
        epochs = spec.plan.epochs.get(d)
        unique = f", {overall[d] * spec.plan.budget_tokens / epochs:.4g} unique tokens" if epochs else ""
        where = _kept_documents(sources.get(d) or {}, kept)
        lost = [p for p in kept if ((sources.get(d) or {}).get(p) or {}).get("unchecked")]  # `check_pool_files`
        lost_text = (f" ({', '.join(lost)} not found where this export was made, so not checked against the plan: the "
                     "counts here are the plan's)") if lost else ""
        parts.append(f"{d}: {', '.join(kept)}{of}{unique}{': ' + where if where else ''}{lost_text}")
    if not parts:
        return ""
    holder = POOL_PATHS.get(fmt, "a path that holds exactly its kept pools' documents")
    return ("Quality pools: the plan trains these domains on their kept pools only (" + "; ".join(parts) + "). --paths "
            f"gives each domain one path, so make each such domain's path {holder}, not the whole domain: the plan's "
            "epochs and the planned reading, repetition caps and tokens per document here count those pools.")


def _kept_documents(sources: dict, kept: list[str]) -> str:
    """Where the kept pools' documents are: their files, or the score range of each kept bucket ("" when unknown)."""
    files = [str(sources[p]["path"]) for p in kept if "path" in (sources.get(p) or {})]
    buckets = [sources[p] for p in kept if "min_score" in (sources.get(p) or {})]
    out = []
    if files:
        out.append(f"the file{'s' if len(files) > 1 else ''} {', '.join(files)}")
    if buckets:
        field = next((b["quality_field"] for b in buckets if b.get("quality_field")), None) or "the quality_field"
        ranges = " or ".join(_score_range(field, lo, hi) for lo, hi in _merged(buckets))
        out.append(f"the domain's documents with {ranges}")
    return " and ".join(out)


def _merged(buckets: list[dict]) -> list[tuple[float | None, float | None]]:
    """The buckets' ``[min_score, max_score)`` ranges, lowest first, adjacent ones joined (None: unbounded)."""
    spans = sorted(((b.get("min_score"), b.get("max_score")) for b in buckets),
                   key=lambda r: -math.inf if r[0] is None else r[0])
    out: list[tuple[float | None, float | None]] = []
    for lo, hi in spans:
        if out and out[-1][1] is not None and lo is not None and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _score_range(field: str, lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return f"any {field}"
    if lo is None:
        return f"{field} < {hi:g}"
    if hi is None:
        return f"{field} >= {lo:g}"
    return f"{lo:g} <= {field} < {hi:g}"
