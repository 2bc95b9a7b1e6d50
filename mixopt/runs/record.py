"""Run specs and run records.

A run is keyed by a content hash of (mixture, proxy config, data fingerprint,
seed), so the same planned run always gets the same id and a resumed sweep can
tell what is already done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

RECORD_VERSION = 1


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a proxy run's outcome."""

    mixture: dict[str, float]  # token shares, sorted by domain
    proxy: dict[str, Any]  # ProxyConfig.model_dump()
    data_fingerprint: str
    seed: int
    label: str = ""  # e.g. "natural", "uniform", "sample-0003"; not part of the id
    phases: tuple = ()  # optional later phases: ((start_fraction, {domain: w}), ...)

    @property
    def run_id(self) -> str:
        body = {
            "mixture": {k: round(float(v), 10) for k, v in sorted(self.mixture.items())},
            "proxy": self.proxy,
            "data": self.data_fingerprint,
            "seed": self.seed,
        }
        if self.phases:
            body["phases"] = [[round(s, 10), {k: round(float(v), 10) for k, v in sorted(w.items())}] for s, w in self.phases]
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


@dataclass
class RunRecord:
    """One finished run, as stored. Written whole or not at all."""

    run_id: str
    mixture: dict[str, float]
    status: str  # "ok" or "failed"
    metrics: dict[str, float] = field(default_factory=dict)  # final value per metric
    curves: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> {tokens_seen: value}
    reason: str = ""
    seed: int | None = None
    proxy: dict[str, Any] | None = None
    data_fingerprint: str = ""
    label: str = ""
    phases: list = field(default_factory=list)
    source: str = "sweep"  # "sweep" or "import"
    info: dict[str, Any] = field(default_factory=dict)  # timings, device, versions, realised epochs
    version: int = RECORD_VERSION

    def overall_mixture(self) -> dict[str, float]:
        """Token shares over the whole run: the base mixture and any later phases, by the tokens each covers."""
        from ..mixtures import overall_shares

        return overall_shares([(0.0, self.mixture), *((s, w) for s, w in self.phases)])

    def to_json(self) -> str:
        body = asdict(self)
        checksum = hashlib.sha256(canonical_json(body).encode()).hexdigest()
        return json.dumps({"record": body, "sha256": checksum}, indent=1, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RunRecord":
        """Parse and verify a record; raises ValueError for partial or corrupt files."""
        outer = json.loads(text)
        body = outer["record"]
        if hashlib.sha256(canonical_json(body).encode()).hexdigest() != outer["sha256"]:
            raise ValueError("checksum mismatch")
        rec = cls(**body)
        if rec.status not in ("ok", "failed"):
            raise ValueError(f"bad status {rec.status!r}")
        return rec
