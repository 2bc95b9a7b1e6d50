"""Repeat groups: runs that differ only in their seed, the basis of every seed-noise estimate."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from .record import RunRecord, id_proxy


def design_key(rec: RunRecord) -> str:
    """Everything that fixes a run's outcome except its seed: schedule, proxy config (as its run id reads it, so
    how steps executed, e.g. ``cuda_graphs``, splits no group) and data. A run without a proxy (imported) carries
    its size only in ``scale``, which then enters the key: one mixture at two sizes is no seed repeat. A swept run's
    proxy fixes its scale, so there the scale stays out (a version-1 record, which has none, still pairs with its
    version-2 repeat)."""
    phases = [[round(float(s), 10), {d: round(float(w), 10) for d, w in sorted(dict(m).items())}] for s, m in rec.phases or [[0.0, rec.mixture]]]
    key = {"phases": phases, "proxy": id_proxy(rec.proxy or {}), "data": rec.data_fingerprint}
    if not rec.proxy:
        sc = rec.scale or {}
        key["scale"] = [_number(sc.get("model_params")), _number(sc.get("tokens")), sc.get("schedule")]
    return json.dumps(key, sort_keys=True)


def _number(x) -> float | None:
    """A scale value as one float (an int 1000000 and a float 1e6 are one size); None when unknown."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def repeat_groups(records: Sequence[RunRecord]) -> np.ndarray:
    """(n,) integer group ids: records with equal :func:`design_key` share an id (first-seen order)."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(design_key(r), len(ids)) for r in records], dtype=int)
