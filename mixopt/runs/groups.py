"""Repeat groups: runs that differ only in their seed, the basis of every seed-noise estimate."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from .record import RunRecord, id_proxy


def design_key(rec: RunRecord) -> str:
    """Everything that fixes a run's outcome except its seed: schedule, proxy config (as its run id reads it, so
    how steps executed, e.g. ``cuda_graphs``, splits no group) and data."""
    phases = [[round(float(s), 10), {d: round(float(w), 10) for d, w in sorted(dict(m).items())}] for s, m in rec.phases or [[0.0, rec.mixture]]]
    return json.dumps({"phases": phases, "proxy": id_proxy(rec.proxy or {}), "data": rec.data_fingerprint}, sort_keys=True)


def repeat_groups(records: Sequence[RunRecord]) -> np.ndarray:
    """(n,) integer group ids: records with equal :func:`design_key` share an id (first-seen order)."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(design_key(r), len(ids)) for r in records], dtype=int)
