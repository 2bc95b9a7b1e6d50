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


def _source_files(records: Sequence[RunRecord]) -> list[str]:
    """Each imported run's source file ("" for swept runs and runs that carry a scale of their own)."""
    return [str((r.info or {}).get("source_file") or "") if r.source == "import" and not r.proxy else "" for r in records]


def file_gap_note(records: Sequence[RunRecord], y: np.ndarray, groups: np.ndarray, *, min_pairs: int = 8,
                  share: float = 0.9, W: np.ndarray | None = None) -> str:
    """A warning when runs imported from two files without a scale look like two model sizes or token budgets pooled as
    one scale, "" otherwise. Where the files share mixtures: one file lower in ``share`` or more of ``min_pairs`` or
    more shared mixtures (RegMix's 1M and 60M test tables: the 60M file lower in every pair; seeds differ both ways).
    Where they share too few and ``W`` (the runs' mixtures) is given: :func:`residual_gap_note`."""
    files = _source_files(records)
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
                    f"{_POOLS}")
    if W is not None and not any(len(d) >= min_pairs for d in gaps.values()):
        return residual_gap_note(files, np.asarray(W, dtype=float), y)
    return ""


_POOLS = "pools them as seed repeats of one scale. Re-import each file with --model-params and --tokens"
#: How far apart two files' runs must sit, beyond what their mixtures explain, to be named: the share of cross-file
#: pairs one file wins (rank AUC) and the gap in within-file residual sds.
RESIDUAL_AUC, RESIDUAL_SDS, RESIDUAL_MIN_RUNS = 0.95, 2.0, 8


def residual_gaps(files: Sequence[str], W: np.ndarray, y: np.ndarray) -> list[tuple[str, str, float, float, float]]:
    """``(file a, file b, share, gap, sd)`` per pair of files with ``RESIDUAL_MIN_RUNS`` runs or more: one least squares
    fit of ``y`` on the weights (rows sum to 1, so the columns carry the intercept) over every imported run, then
    ``share`` of cross-file pairs where a's residual is above b's (rank AUC), ``gap`` the difference of their mean
    residuals and ``sd`` the within-file residual sd. [] when there are too few runs for the fit."""
    idx = np.array([i for i, f in enumerate(files) if f], dtype=int)
    if len(idx) < W.shape[1] + 2 * RESIDUAL_MIN_RUNS:
        return []
    X, yy = W[idx], np.asarray(y, dtype=float)[idx]
    lam = 1e-3 * len(idx)  # a light ridge: many domains, few runs, collinear weights
    r = yy - X @ np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ yy)
    names = np.array([files[i] for i in idx])
    kept = [f for f in sorted(set(names)) if (names == f).sum() >= RESIDUAL_MIN_RUNS]
    within = np.concatenate([r[names == f] - r[names == f].mean() for f in kept]) if kept else np.zeros(0)
    sd = float(np.sqrt(np.sum(within**2) / max(1, len(within) - len(kept)))) if len(within) else 0.0
    out = []
    for k, a in enumerate(kept):
        for b in kept[k + 1:]:
            ra, rb = r[names == a], r[names == b]
            share = float(np.mean(ra[:, None] > rb[None, :]) + 0.5 * np.mean(ra[:, None] == rb[None, :]))
            out.append((a, b, share, float(ra.mean() - rb.mean()), sd))
    return out


def residual_gap_note(files: Sequence[str], W: np.ndarray, y: np.ndarray) -> str:
    """A warning when two files' runs (no mixtures in common) sit apart by more than their mixtures explain
    (:func:`residual_gaps`): one file's residuals above the other's in ``RESIDUAL_AUC`` of cross pairs and by
    ``RESIDUAL_SDS`` within-file sds. RegMix's 1M train and 60M test tables (no shared mixtures) are such; its 1M train
    and 1M test tables are not (``benchmarks/unscaled_files.py``). "" otherwise."""
    for a, b, share, gap, sd in residual_gaps(files, W, y):
        if max(share, 1 - share) >= RESIDUAL_AUC and sd > 0 and abs(gap) >= RESIDUAL_SDS * sd:
            low = b if gap > 0 else a
            return (f"the runs imported from {Path(a).name} and {Path(b).name} (few or no mixtures in common) sit apart by "
                    f"{abs(gap):.3g} beyond what their mixtures explain ({Path(low).name} lower in "
                    f"{max(share, 1 - share):.0%} of cross-file pairs, {abs(gap) / sd:.1f} within-file sds): two model "
                    f"sizes or token budgets with no scale? fit {_POOLS}")
    return ""
