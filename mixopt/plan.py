"""The plan file: what to train on, in what proportions, when, at what budget.

``plan.yaml`` is the contract between ``mixopt propose`` and the exporters:

.. code-block:: yaml

    budget_tokens: 1.0e+11
    phases:
      - start_fraction: 0.0
        weights: {code: 0.31, prose: 0.69}
    epochs: {code: 1.2, prose: 0.4}
    predicted: {metric: ..., value: ..., std: ...}

Phase weights are token shares. Later phases start at ``start_fraction`` of the
budget and run until the next phase (or the end).
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .config import DomainSpec
from .data.sources import files_digest, resolve_files
from .errors import ConfigError, ConsistencyError, DataError, MixtureError, pydantic_summary
from .io import atomic_write_text, read_yaml
from .mixtures import Phases, overall_shares, validate_weights
from .repetition import effective_tokens


#: Significant digits a plan keeps of each domain's epochs. Exporters, `Plan.without` and `Plan.with_phases` recover a
#: domain's unique tokens as overall share x budget / epochs, so epochs rounded to decimals lost them for small epochs
#: (0.000533 for 0.0005326: 222 documents read as 221.8); twelve digits keep them to ~1e-12.
EPOCH_DIGITS = 12


def plan_epochs(tokens: float, unique: float) -> float:
    """The ``epochs`` a plan writes for ``tokens`` trained of ``unique`` unique tokens: to ``EPOCH_DIGITS`` digits."""
    return float(f"{tokens / unique:.{EPOCH_DIGITS}g}")


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_fraction: float = Field(ge=0.0, lt=1.0)
    weights: dict[str, float]

    @field_validator("weights")
    @classmethod
    def _weights_sum_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        try:
            return dict(sorted(validate_weights(v, where="plan phase").items()))
        except MixtureError as exc:
            raise ValueError(str(exc)) from None


def phase_pairs(phases: list[Phase]) -> Phases:
    """The :data:`~mixopt.mixtures.Phases` view of a plan's phases: ``[(start_fraction, weights), ...]``.

    No re-validation: the weights are the phases' own (already checked) dicts, so the floats are unchanged.
    """
    return [(p.start_fraction, p.weights) for p in phases]


class Prediction(BaseModel):
    model_config = ConfigDict(extra="allow")

    metric: str
    value: float
    std: float | None = None
    by: dict[str, Any] = Field(default_factory=dict)
    disagreement: bool | None = None
    baselines: dict[str, dict[str, Any]] = Field(default_factory=dict)  # natural / uniform / best-run: {value, std[, measured, label]}
    seed_sd: float | None = None  # seed noise of one run's metric, measured on repeated mixtures
    beats_baselines: bool | None = None  # true only when the predicted gain over every baseline exceeds the noise band
    # a proposed end phase's predicted gain {kind, fraction, gain, gain_std, model, note}: ``value`` is then
    # by.surrogate's value (the plan without its end phase, trained flat) minus ``gain``, and ``std`` adds ``gain_std``
    end_phase: dict[str, Any] | None = None

    @field_validator("value")
    @classmethod
    def _finite_value(cls, v: float) -> float:
        if not math.isfinite(v):  # a plan that predicts nothing: JSON cannot hold it and verify cannot compare it
            raise ValueError(f"must be a finite number, got {v}")
        return v


class Plan(BaseModel):
    model_config = ConfigDict(extra="allow")

    budget_tokens: float = Field(gt=0)
    phases: list[Phase] = Field(min_length=1)
    epochs: dict[str, float] = Field(default_factory=dict)
    effective_tokens: dict[str, float] = Field(default_factory=dict)
    pools: dict[str, list[str]] = Field(default_factory=dict)
    pool_laws: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)  # {domain: {pool: {b, tau, law_source, law_reason}}}
    predicted: Prediction | None = None
    reasons: list[str] = Field(default_factory=list)
    tokens_per_doc: dict[str, float] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    # domains `without` removed (`mixopt export --drop`): {domain: its share of the tokens in the plan it left};
    # the exporters say so next to the weights. None (not written) for a plan as proposed.
    dropped: dict[str, float] | None = None

    @field_validator("budget_tokens")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("budget_tokens must be finite")
        return v

    @field_validator("epochs", "effective_tokens", "tokens_per_doc")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {d: x for d, x in v.items() if not (math.isfinite(x) and x >= 0)}
        if bad:
            raise ValueError(f"values must be finite numbers >= 0, got {bad}")
        return v

    @field_validator("dropped")
    @classmethod
    def _shares(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        bad = {d: x for d, x in (v or {}).items() if not (math.isfinite(x) and 0 <= x <= 1)}
        if bad:
            raise ValueError(f"shares must be numbers in [0, 1], got {bad}")
        return v

    @model_validator(mode="after")
    def _phase_order(self) -> "Plan":
        starts = [p.start_fraction for p in self.phases]
        if starts[0] != 0.0:
            raise ValueError(f"the first phase must start at 0.0, got {starts[0]}")
        if any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError(f"phase start fractions must increase strictly, got {starts}")
        return self

    @property
    def domains(self) -> list[str]:
        return sorted({d for p in self.phases for d in p.weights})

    def phase_fractions(self) -> list[float]:
        """Share of the budget each phase covers."""
        starts = [p.start_fraction for p in self.phases] + [1.0]
        return [b - a for a, b in zip(starts, starts[1:])]

    def phase_pairs(self) -> Phases:
        """``phases`` (the file form, a list of :class:`Phase`) as :data:`~mixopt.mixtures.Phases` pairs."""
        return phase_pairs(self.phases)

    def overall_weights(self) -> dict[str, float]:
        """Token shares over the whole run, phases weighted by their length."""
        return overall_shares(self.phase_pairs())

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def without(self, removed: list[str] | tuple[str, ...]) -> "Plan":
        """This plan after ``removed`` left the data: each phase's other shares renormalised, their epochs scaled by how
        much their overall share grew, the removed domains' entries gone, the prediction dropped (it was for the
        old mixture), the old reasons marked as the old mixture's, and ``dropped`` recording each removed domain's share
        (the exporters write it next to the weights, `drop_note`). Olmix's answer to a removal; on the embedded corpus
        it trained as well as a re-sweep (benchmarks/RESULTS.md, "Reusing an earlier sweep", removal).

        Raises ConfigError for a domain the plan does not train, or when a phase would be left with nothing.
        """
        gone = sorted(set(removed))
        unknown = [d for d in gone if d not in self.domains]
        if unknown:
            raise ConfigError(f"The plan has no domain {', '.join(unknown)}; its domains are {self.domains}. Fix the name.")
        phases = []
        for i, p in enumerate(self.phases):
            left = {d: w for d, w in p.weights.items() if d not in gone}
            total = math.fsum(left.values())
            if total <= 0:
                raise ConfigError(f"Phase {i} of the plan trains only {', '.join(d for d in p.weights if d in gone)}: "
                                  "nothing is left of it without them. Plan anew on the remaining domains.")
            phases.append(Phase(start_fraction=p.start_fraction, weights={d: w / total for d, w in left.items()}))
        epochs, effective = self._rescaled(phases)
        repeated = repeated_more({d: e for d, e in self.epochs.items() if d not in gone}, epochs)
        shares = self.overall_weights()
        had = {d: round(shares.get(d, 0.0), 6) for d in gone}
        reason = (f"{', '.join(gone)} removed from the plan: the other shares renormalised ("
                  + ", ".join(f"{d} had {w:.1%} of the tokens" for d, w in had.items()) + ")"
                  + (f"; the prediction {self.predicted.metric} {self.predicted.value:.4f} was for the old mixture and "
                     "is dropped" if self.predicted else "")
                  + (f"; epochs now {', '.join(repeated)}" if repeated else ""))
        before = f"before {', '.join(gone)} {'was' if len(gone) == 1 else 'were'} removed: "  # the old mixture's reasons
        return self.model_copy(update=dict(
            phases=phases, predicted=None, reasons=[reason, *(before + r for r in self.reasons)],
            dropped={**(self.dropped or {}), **had},
            epochs={d: e for d, e in epochs.items() if d not in gone},
            effective_tokens={d: t for d, t in effective.items() if d not in gone},
            pools={d: v for d, v in self.pools.items() if d not in gone},
            pool_laws={d: v for d, v in self.pool_laws.items() if d not in gone},
            tokens_per_doc={d: v for d, v in self.tokens_per_doc.items() if d not in gone}))

    def drop_note(self) -> str | None:
        """One phrase for the exporters to write next to the weights when this plan lost domains (``without``): which,
        their old shares, and that the plan's prediction no longer applies; None for a plan as proposed."""
        if not self.dropped:
            return None
        had = ", ".join(f"{d} had {w:.1%}" for d, w in self.dropped.items())
        return (f"plan without {', '.join(self.dropped)} (mixopt export --drop): shares renormalised ({had} of the tokens); "
                "the plan's prediction no longer applies")

    def with_phases(self, phases: list[Phase], reason: str, predicted: Prediction | None,
                    provenance: dict[str, Any]) -> "Plan":
        """This plan with another schedule of the same domains (an alternative that trained better, ``verify --adopt``):
        epochs and effective tokens scaled by how much each domain's overall share changed, ``reason`` first among the
        reasons, ``provenance`` merged in (a key given as None is removed). Pools stay: a pooled domain's epochs keep
        counting its kept pools' tokens (chosen at the old share; `verify --adopt` passes over a schedule that would
        repeat them past propose.max_epochs)."""
        trained = self.overall_weights()
        unknown = sorted({d for p in phases for d, w in p.weights.items() if w > 0 and trained.get(d, 0.0) <= 0})
        if unknown:
            raise ConfigError(f"The new schedule trains {', '.join(unknown)}, which the plan does not "
                              f"({', '.join(d for d in self.domains if trained.get(d, 0.0) > 0)}): its epochs are unknown.")
        epochs, effective = self._rescaled(phases)
        return self.model_copy(update=dict(phases=phases, predicted=predicted, reasons=[reason, *self.reasons],
                                           epochs=epochs, effective_tokens=effective,
                                           provenance={k: v for k, v in {**self.provenance, **provenance}.items()
                                                       if v is not None}))

    def _rescaled(self, phases: list[Phase]) -> tuple[dict[str, float], dict[str, float]]:
        """(epochs, effective tokens) under ``phases`` at the same budget: a domain's unique tokens are what the plan
        trains of it over its epochs, so its epochs scale with its overall share, and its effective tokens follow
        Muennighoff's law (`repetition.effective_tokens`: they saturate with repetition, not linear in the share).
        A domain the new schedule no longer trains leaves both."""
        old, new = self.overall_weights(), overall_shares(phase_pairs(phases))
        epochs, effective = {}, {}
        for d, e in self.epochs.items():
            if new.get(d, 0.0) <= 0 or old.get(d, 0.0) <= 0 or e <= 0:
                continue
            tokens, unique = new[d] * self.budget_tokens, old[d] * self.budget_tokens / e
            epochs[d] = plan_epochs(tokens, unique)
            if d in self.effective_tokens:
                effective[d] = float(effective_tokens(tokens, unique))
        return epochs, effective


def repeated_more(before: dict[str, float], after: dict[str, float]) -> list[str]:
    """``"domain epochs-before -> epochs-after"`` for each domain repeated more than once after a change of shares."""
    return [f"{d} {before[d]:.2f} -> {e:.2f}" for d, e in sorted(after.items()) if e > 1.0 and d in before]


@dataclass
class PoolFiles:
    """What :func:`check_pool_files` found of a plan's kept pool files."""

    plan: Plan  # the plan, a pool file found elsewhere (a --paths file, beside the plan) at the path it was found at
    notes: list[str] = field(default_factory=list)  # where a moved file was found; a plan that recorded no digests
    unchecked: list[str] = field(default_factory=list)  # (``gone_ok``) files found nowhere: not checked, counts as planned


def check_pool_files(plan: Plan, where: str = "the plan", *, plan_path: str | Path | None = None,
                     given: Mapping[str, str] | None = None, gone_ok: bool = False) -> PoolFiles:
    """Check a plan's kept pool files against what it was made on (``provenance.pool_sources``: each file's digest,
    :func:`~mixopt.data.sources.files_digest`): its epochs, windows and tokens per document count the files as they
    were, e.g. before ``mixopt select`` was rerun into their folder. ``where``: the plan as the user names it. Only
    domains the plan trains on pools are checked.

    A file that is there and differs is refused in one line (:class:`~mixopt.errors.ConsistencyError`). One that is
    gone from its recorded path is looked for (with its digest) in ``given`` (``export --paths``: the domain's file,
    or each file its glob or folder holds) and beside ``plan_path`` (the ``relative`` path :func:`save_plan` records,
    then ``POOLS_FOLDER/NAME`` and ``NAME``), as :func:`~mixopt.selection.output.located_pools` does for pools.yaml;
    the one found replaces the path in the returned plan, and one beside the plan that differs (none matching) is
    refused as changed. Found nowhere, or gone from a plan that recorded no digest:
    refused, unless ``gone_ok`` (export, whose paths may be a trainer's tokenized data), where it is listed in
    ``unchecked`` and marked ``unchecked`` in the returned plan (the export's notes say so)."""
    sources = plan.provenance.get("pool_sources") or {}
    shares = plan.overall_weights()
    files = [(d, name, src) for d, kept in sorted(plan.pools.items()) if shares.get(d, 0.0) > 0 for name in kept
             if isinstance(src := (sources.get(d) or {}).get(name), dict) and src.get("path")]
    here = Path(plan_path).expanduser().resolve().parent if plan_path is not None else None
    problems, notes, unchecked, moved, undigested = [], [], [], {}, []
    for d, name, src in files:
        gone = "is gone since {where} was made (moved, or deleted by a rerun of mixopt select?)"
        pool = f"quality pool file {src['path']} (domain '{d}', pool '{name}')"
        tokens = f" ({src['tokens']:.4g} unique tokens)" if src.get("tokens") else ""
        again = "Rerun mixopt propose on the pools as they are now."
        if not src.get("digest"):  # an older plan: nothing to compare, but a file that is gone is gone
            if Path(src["path"]).exists() or glob.glob(str(src["path"])):
                undigested.append(str(src["path"]))
            elif gone_ok:
                unchecked.append((d, name, src))
            else:
                problems.append((f"{pool} {gone.format(where=where)}", tokens, again))
            continue
        digest = _digest_or_none(src["path"])
        if digest == src["digest"]:
            continue
        if digest is not None:
            problems.append((f"{pool} changed since {where} was made (mixopt select rerun into its folder?)", tokens, again))
            continue
        found, beside, changed = _moved_pool_file(src, (given or {}).get(d), here)
        if changed is not None:  # the plan's folder moved with its pools, and the file there changed
            problems.append((f"quality pool file {changed} (domain '{d}', pool '{name}'; {src['path']} when {where} was "
                             f"made) changed since (mixopt select rerun into its folder?)", tokens, again))
        elif found is not None:
            moved[(d, name)] = found
            notes.append(f"{d}'s pool {name}: {src['path']} is gone; checked {found} instead (the same digest)")
        elif gone_ok:
            unchecked.append((d, name, src))
        else:
            looked = f" (looked beside it too: {', '.join(map(str, beside))})" if beside else ""
            moved_plan = bool(beside) and here is not None and beside[0] == here / str(src.get("relative"))
            problems.append((f"{pool} {gone.format(where=where)}{looked}", tokens,
                             f"Put the file back{f' (or at {beside[0]}, beside {where})' if moved_plan else ''}, or "
                             + again[0].lower() + again[1:]))
    if problems:
        (first, tokens, fix), more = problems[0], (f"; {len(problems) - 1} more pool file(s) too" if len(problems) > 1 else "")
        raise ConsistencyError(f"The {first}: the plan's epochs, windows and tokens per document count the file as it "
                               f"was{tokens}{more}. {fix}")
    if moved or unchecked:
        flagged = {(d, n) for d, n, _ in unchecked}
        pool_sources = {d: {n: {**src, "path": moved[(d, n)]} if (d, n) in moved else
                            {**src, "unchecked": True} if (d, n) in flagged else src for n, src in pools.items()}
                        if isinstance(pools, dict) else pools for d, pools in sources.items()}
        plan = plan.model_copy(update={"provenance": {**plan.provenance, "pool_sources": pool_sources}})
    if undigested:
        notes.append(f"{where} records no digest of its pool files ({', '.join(undigested)}; made by an older mixopt), "
                     "so whether they changed since cannot be checked; rerun propose to record them")
    return PoolFiles(plan, notes, [_unchecked_line(unchecked, where, given or {})] if unchecked else [])


def _unchecked_line(unchecked: list[tuple[str, str, dict]], where: str, given: Mapping[str, str]) -> str:
    """One line on the pool files :func:`check_pool_files` found nowhere (``gone_ok``): what the export states."""
    files = "; ".join(f"{src['path']} (domain '{d}', pool '{n}'"
                      + (f", {src['tokens']:.4g} unique tokens" if src.get("tokens") else "") + ")" for d, n, src in unchecked)
    among = " or among their domains' --paths files" if any(d in given for d, _, _ in unchecked) else ""
    domains = sorted({d for d, _, _ in unchecked})
    return (f"{'this quality pool file is' if len(unchecked) == 1 else 'these quality pool files are'} not at the path "
            f"{where} recorded, beside it{among}, so {'it' if len(unchecked) == 1 else 'they'} cannot be checked against "
            f"it: {files}. The export states the plan's counts; make {', '.join(domains)}'s path hold exactly "
            "those pools' documents")


def _digest_or_none(path: str | Path) -> str | None:
    try:
        return files_digest(path)
    except DataError:
        return None


def _moved_pool_file(src: Mapping[str, Any], given: str | None, here: Path | None) -> tuple[str | None, list[Path], Path | None]:
    """(where a pool file gone from its recorded path is now, with its recorded digest: a file of ``given`` or one
    beside the plan's folder ``here``; the places looked at beside the plan; else the first of them that holds a file
    of the pool's name that differs, e.g. ``mixopt select`` rerun into the moved folder)."""
    if given:
        try:
            files = resolve_files(DomainSpec(name="file", path=str(given)))
        except (DataError, ValueError):  # a trainer's path (a .bin/.idx prefix, a bucket), not local documents
            files = []
        for f in ([Path(given)] if len(files) > 1 else []) + files:
            if _digest_or_none(f) == src["digest"]:
                return str(Path(f).resolve()), [], None
    if here is None:
        return None, [], None
    recorded = Path(str(src["path"])).expanduser()
    beside = [here / src["relative"]] if isinstance(src.get("relative"), str) else []
    beside += [here / recorded.parent.name / recorded.name, here / recorded.name]
    beside = [f for f in dict.fromkeys(beside) if f.resolve() != recorded.resolve()]  # (the plan was not moved)
    digests = {f: _digest_or_none(f) for f in beside}
    found = next((f for f, digest in digests.items() if digest == src["digest"]), None)
    if found is not None:
        return str(found.resolve()), beside, None
    return None, beside, next((f for f, digest in digests.items() if digest is not None), None)


def load_plan(path: str | Path) -> Plan:
    raw = read_yaml(path, what="Plan file", missing_hint=f"Create one with `mixopt propose ... --out {path}`.",
                    fix_hint="Fix the syntax or regenerate it with `mixopt propose`.")
    return plan_from_dict(raw, where=str(path))


def plan_from_dict(raw: Any, where: str = "plan") -> Plan:
    if not isinstance(raw, dict):
        raise ConfigError(f"Plan in {where} must be a YAML mapping with budget_tokens and phases. Got {type(raw).__name__}.")
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"Invalid plan in {where}: {pydantic_summary(exc)}. Fix the field or regenerate it with `mixopt propose`.") from None


def plan_yaml(body: dict) -> str:
    """A plan (or part of one) as YAML for people: UTF-8 kept as is (``±``, not ``\\xB1``) and each reason on one line."""
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=1_000_000)


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Write ``plan`` to ``path``; each kept pool file it records (``provenance.pool_sources``) gets its path relative
    to the plan's folder as ``relative`` too, so a project moved with its plan and pools still finds them
    (:func:`check_pool_files`)."""
    return atomic_write_text(Path(path), plan_yaml(_with_relative_pools(plan.to_dict(), Path(path))))


def _with_relative_pools(body: dict, path: Path) -> dict:
    sources = (body.get("provenance") or {}).get("pool_sources")
    if not isinstance(sources, dict):
        return body
    here = path.expanduser().resolve().parent

    def placed(src: Any) -> Any:
        if not isinstance(src, dict) or not isinstance(src.get("path"), str):
            return src
        src = {k: v for k, v in src.items() if k != "relative"}  # of the plan's old folder
        file = Path(src["path"]).expanduser()
        if file.exists():
            with contextlib.suppress(ValueError):  # another drive (Windows): no relative path
                src["relative"] = os.path.relpath(file.resolve(), here)
        return src

    pool_sources = {d: {n: placed(src) for n, src in pools.items()} if isinstance(pools, dict) else pools
                    for d, pools in sources.items()}
    return {**body, "provenance": {**body["provenance"], "pool_sources": pool_sources}}
