"""Repeat groups: runs that differ only in their seed, the basis of every seed-noise estimate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

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


def file_gap_note(records: Sequence[RunRecord], y: np.ndarray, groups: np.ndarray, *, min_pairs: int = 8,
                  share: float = 0.9) -> str:
    """A warning when one repeat group's runs, imported from two files without a scale, differ one way in ``share`` or
    more of ``min_pairs`` or more groups: two model sizes or token budgets pooled as seed repeats of one scale (RegMix's
    1M and 60M test tables: the 60M file lower in every pair). Seeds differ both ways. "" otherwise."""
    files = [str((r.info or {}).get("source_file") or "") if r.source == "import" and not r.proxy else "" for r in records]
    if len(set(files) - {""}) < 2:  # swept runs, or one file: nothing to compare
        return ""
    gaps: dict[tuple[str, str], list[float]] = {}
    for g in np.unique(groups):
        per_file: dict[str, list[float]] = {}
        for i in np.flatnonzero(groups == g):
            if files[i]:
                per_file.setdefault(files[i], []).append(float(y[i]))
        names = sorted(per_file)
        for k, a in enumerate(names):
            for b in names[k + 1:]:
                gaps.setdefault((a, b), []).append(float(np.mean(per_file[b]) - np.mean(per_file[a])))
    for (a, b), d in gaps.items():
        d = np.asarray(d)
        neg, pos = int((d < 0).sum()), int((d > 0).sum())
        if len(d) >= min_pairs and max(neg, pos) >= share * len(d):
            return (f"the {len(d)} mixtures imported from both {Path(a).name} and {Path(b).name} differ one way "
                    f"({Path(b if neg >= pos else a).name} lower in {max(neg, pos)} of {len(d)}, by "
                    f"{float(np.mean(np.abs(d))):.3g} on average): two model sizes or token budgets with no scale? fit "
                    "pools them as seed repeats of one scale. Re-import each file with --model-params and --tokens")
    return ""
