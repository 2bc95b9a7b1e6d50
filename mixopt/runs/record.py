"""Run specs and run records.

A run is keyed by a content hash of (mixture schedule, proxy config, data
fingerprint, seed), so the same planned run always gets the same id and a
resumed sweep can tell what is already done.

Phases follow the one convention of :data:`mixopt.mixtures.Phases`: the full
list ``[(start_fraction, Mixture), ...]`` starting at 0. ``mixture`` is the
first phase's weights. Record version 1 stored only the later phases; such
records are read by prepending phase 0 from ``mixture``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, ClassVar

import numpy as np

from ..config import ProxyConfig
from ..errors import DataError, FitError
from ..mixtures import Mixture, Phases, overall_shares
from .targets import resolve_target

RECORD_VERSION = 2  # 2: `phases` holds every phase, from start 0; `scale` added


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def check_scale_value(value, name: str, *, where: str, error: type[Exception] = DataError) -> float | None:
    """A positive finite scale number (``model_params`` or ``tokens``), or None when not given."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a positive number. Got {value!r} in {where}. Write it as e.g. 1e6.") from None
    if not (math.isfinite(v) and v > 0):
        blank = "leave the flag out" if where.startswith("--") else "leave the cell empty"
        raise error(f"{name} must be a positive finite number. Got {value!r} in {where}. Fix the value or {blank} if unknown.")
    return v


# ProxyConfig fields of record version 1. A field added since enters a run id only when it differs from
# its default, so a new option (e.g. `decay_fraction`) leaves the ids of existing stores unchanged.
# Fields that only say how a step executes (same numbers up to float rounding) never enter it.
ID_IGNORED_FIELDS = frozenset({"cuda_graphs"})
V1_PROXY_FIELDS = frozenset({"n_layer", "n_embd", "head_size", "block_size", "batch_size", "tokens", "lr", "min_lr_ratio",
                             "schedule", "warmup_fraction", "weight_decay", "grad_clip", "checkpoints", "eval_tokens",
                             "device", "dtype", "compile", "threads"})


@cache
def _proxy_defaults() -> dict[str, Any]:
    return ProxyConfig().model_dump(mode="json")


def id_proxy(proxy: dict[str, Any]) -> dict[str, Any]:
    """The part of a proxy config that enters a run id: version-1 fields, and later fields set away from their default."""
    defaults = _proxy_defaults()
    return {k: v for k, v in proxy.items()
            if k not in ID_IGNORED_FIELDS and (k in V1_PROXY_FIELDS or k not in defaults or v != defaults[k])}


def _rounded(w) -> dict[str, float]:
    return {k: round(float(v), 10) for k, v in sorted(w.items())}


def _full_phases(mixture, phases, where: str) -> tuple[Mixture, Phases]:
    """(phase-0 Mixture, full phases) from a mixture and phases in either convention.

    ``phases`` empty: one phase, the mixture. First start 0: the full list (its
    phase 0 is the mixture). First start > 0: version-1 later phases, phase 0
    prepended from ``mixture``.
    """
    later = [(float(s), w) for s, w in phases]
    if later and later[0][0] == 0.0:
        first = later[0][1] if mixture is None else mixture
        later = later[1:]
    else:
        first = mixture
    m0 = first if isinstance(first, Mixture) else Mixture(first, where=where)
    out = [(0.0, m0)]
    for i, (s, w) in enumerate(later):
        out.append((s, w if isinstance(w, Mixture) else Mixture(w, where=f"phase {i + 1} of {where}")))
    return m0, out


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a proxy run's outcome.

    ``phases`` may be left empty (one phase: ``mixture``), given in full from
    start 0, or (version-1 style) as later phases only; it is always stored in
    full. ``run_id`` hashes the same body as version 1, so old stores resume.
    """

    mixture: Mixture  # phase-0 token shares
    proxy: dict[str, Any]  # ProxyConfig.model_dump(), the size's overrides applied
    data_fingerprint: str
    seed: int
    label: str = ""  # e.g. "natural", "natural~seed1", "sample-0003"; not part of the id
    phases: tuple = ()  # ((0.0, Mixture), (start_fraction, Mixture), ...)
    dtype: str = ""  # what proxy.dtype "auto" trains in: the store's recorded dtype ("" = resolve now); not part of the id

    def __post_init__(self):
        m0, full = _full_phases(self.mixture, self.phases, f"run spec {self.label or '?'}")
        object.__setattr__(self, "mixture", m0)
        object.__setattr__(self, "phases", tuple(full))

    @property
    def run_id(self) -> str:
        body = {"mixture": _rounded(self.mixture), "proxy": id_proxy(self.proxy), "data": self.data_fingerprint, "seed": self.seed}
        if len(self.phases) > 1:  # version-1 body: later phases only
            body["phases"] = [[round(s, 10), _rounded(w)] for s, w in self.phases[1:]]
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


@dataclass
class RunRecord:
    """One finished run, as stored. Written whole or not at all."""

    run_id: str
    mixture: Mixture  # phase-0 token shares
    status: str  # "ok" or "failed"
    metrics: dict[str, float] = field(default_factory=dict)  # final value per metric
    curves: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> {tokens_seen: value}
    reason: str = ""
    seed: int | None = None
    proxy: dict[str, Any] | None = None
    data_fingerprint: str = ""
    label: str = ""
    phases: list = field(default_factory=list)  # [(0.0, Mixture), (start_fraction, Mixture), ...]
    source: str = "sweep"  # "sweep" or "import"
    info: dict[str, Any] = field(default_factory=dict)  # timings, device, versions, realised epochs
    scale: dict[str, Any] = field(default_factory=dict)  # model_params (non-embedding), total_params, tokens, schedule
    version: int = RECORD_VERSION

    parse_count: ClassVar[int] = 0  # records parsed by from_json in this process (tests count parses)

    def __post_init__(self):
        self.mixture, self.phases = _full_phases(self.mixture, self.phases, f"run {self.run_id}")

    def overall_mixture(self) -> dict[str, float]:
        """Token shares over the whole run: each phase weighted by the share of tokens it covers."""
        return overall_shares(self.phases)

    def curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, values)`` of a metric's checkpoints, sorted by tokens; both empty when not recorded.

        ``metric`` is any target name :func:`mixopt.runs.targets.resolve_target` accepts (``val/code``,
        ``mean:all-domains``, ``mean:code,prose``, ``wmean:a=0.3,b=0.7``), averaged at the checkpoints they share.
        """
        try:
            cols, weights = resolve_target(metric, list(self.curves))
        except FitError:
            return np.zeros(0), np.zeros(0)
        if not cols or any(c not in self.curves for c in cols) or sum(weights) <= 0:
            return np.zeros(0), np.zeros(0)
        shared = set.intersection(*(set(self.curves[c]) for c in cols))
        keys = sorted(shared, key=float)
        tokens = np.array([float(k) for k in keys])
        values = np.array([sum(w * float(self.curves[c][k]) for c, w in zip(cols, weights)) / sum(weights) for k in keys])
        return tokens, values

    def is_usable(self) -> bool:
        """Finished ``ok`` with every final metric finite: the runs models learn from."""
        return self.status == "ok" and bool(self.metrics) and all(math.isfinite(v) for v in self.metrics.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON body: plain dicts and ``[start, {domain: w}]`` pairs."""
        return {
            "run_id": self.run_id, "mixture": dict(self.mixture), "status": self.status, "metrics": dict(self.metrics),
            "curves": {k: dict(v) for k, v in self.curves.items()}, "reason": self.reason, "seed": self.seed,
            "proxy": self.proxy, "data_fingerprint": self.data_fingerprint, "label": self.label,
            "phases": [[float(s), dict(w)] for s, w in self.phases], "source": self.source, "info": self.info,
            "scale": self.scale, "version": self.version,
        }

    def to_json(self) -> str:
        body = self.to_dict()
        checksum = hashlib.sha256(canonical_json(body).encode()).hexdigest()
        return json.dumps({"record": body, "sha256": checksum}, indent=1, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RunRecord":
        """Parse and verify a record (version 1 or 2); raises ValueError for partial or corrupt files.

        Two kinds of ValueError say more: :class:`NotARecord` (valid JSON, but not a run record's outer form, e.g. a
        user's notes.json) and :class:`RecordTooNew` (sealed by its checksum, but of a record version this mixopt does
        not know, or with fields it does not know: a newer mixopt wrote it). Neither is corrupt, so neither is
        quarantined.
        """
        RunRecord.parse_count += 1
        outer = json.loads(text)
        if not isinstance(outer, dict) or not ({"record", "sha256"} & set(outer)):
            raise NotARecord("it has no `record` and `sha256`" if isinstance(outer, dict)
                             else f"it holds a JSON {type(outer).__name__}, not a record")
        body, seal = outer.get("record"), outer.get("sha256")
        if not isinstance(body, dict) or not isinstance(seal, str):
            raise ValueError("`record` or `sha256` missing or malformed")
        if hashlib.sha256(canonical_json(body).encode()).hexdigest() != seal:
            raise ValueError("checksum mismatch")
        version = body.get("version", 1)
        if isinstance(version, int) and not isinstance(version, bool) and version > RECORD_VERSION:
            raise RecordTooNew(f"record version {version}; this mixopt reads versions 1 to {RECORD_VERSION}")
        if version not in (1, RECORD_VERSION):
            raise ValueError(f"unknown record version {version!r}")
        unknown = sorted(set(body) - {f.name for f in fields(cls)})
        if unknown:
            raise RecordTooNew(f"fields this mixopt does not know: {', '.join(map(str, unknown))}")
        rec = cls(**body)  # version 1's later-only phases get phase 0 prepended in __post_init__
        rec.version = RECORD_VERSION
        if rec.status not in ("ok", "failed"):
            raise ValueError(f"bad status {rec.status!r}")
        return rec


class NotARecord(ValueError):
    """A JSON file in a store's runs/ that is not a run record (no ``record``/``sha256``): skipped, never quarantined."""


class RecordTooNew(ValueError):
    """A checksum-sealed record of a newer record version, or with fields this mixopt does not know: a newer mixopt
    wrote it. Skipped with a warning to upgrade; never quarantined and never trained over."""
