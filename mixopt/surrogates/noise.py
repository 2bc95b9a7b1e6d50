"""Seed noise: how much a metric moves when only the training seed changes.

A sweep trains a few anchor mixtures with several seeds (``sampler.noise_seeds``).
Grouping runs by mixture, the within-group spread is pure seed noise and the
spread of the group means is the mixture effect (plus a little noise). These
functions work on plain arrays; the caller forms the groups from its runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import FitError


def _check(y, groups) -> tuple[np.ndarray, np.ndarray]:
    """``y`` as a finite float vector (n,) and ``groups`` as integer codes (n,)."""
    y = np.asarray(y, dtype=float)
    labels = np.asarray(groups, dtype=object) if not isinstance(groups, np.ndarray) else groups
    if y.ndim != 1 or labels.ndim != 1 or len(labels) != len(y):
        raise FitError(f"y and groups must be 1-D with one group label per value. Got shapes {y.shape} and {labels.shape}. "
                       "Pass one label (e.g. the mixture's key) per run.")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise FitError(f"Seed noise needs finite values. Got {y[bad[0]]} at rows {bad[:5].tolist()}. Drop failed runs first.")
    codes = np.unique(labels.astype(str), return_inverse=True)[1].reshape(-1)
    return y, codes


def seed_noise(y, groups) -> tuple[float, int]:
    """Pooled within-group variance of ``y`` and its degrees of freedom.

    .. math:: s^2 = \\frac{\\sum_g \\sum_{i \\in g} (y_i - \\bar y_g)^2}{\\sum_g (n_g - 1)}

    Parameters
    ----------
    y : array-like of shape (n,)
        The metric of each run.
    groups : array-like of shape (n,)
        A label per run; runs with the same label share everything but the seed.
        Groups of one run add nothing (0 degrees of freedom).

    Returns
    -------
    variance : float
        The pooled seed-noise variance of one run's metric.
    dof : int
        ``sum_g (n_g - 1)``, at least 1.
    """
    y, codes = _check(y, groups)
    counts = np.bincount(codes)
    dof = int((counts - 1).sum())
    if dof < 1:
        raise FitError(f"Seed noise needs a mixture trained with at least 2 seeds. Got {len(y)} run(s) in {len(counts)} "
                       "group(s), each with one run. Set sampler.noise_seeds >= 2 and run the sweep again.")
    means = np.bincount(codes, weights=y) / counts
    resid = y - means[codes]
    return float(resid @ resid / dof), dof


def signal_to_noise(y, groups) -> float:
    """Spread of the mixture effects over the seed noise: ``std(group means) / sqrt(seed_noise)``.

    The one-scale, unstratified case: every group's mean is compared with the one overall mean. ``mixopt fit``
    stores :func:`measure_noise`'s ``snr`` instead, which spreads the mixture effects around each scale's own mean.

    Parameters
    ----------
    y, groups : array-like of shape (n,)
        As in :func:`seed_noise`; at least two groups and one repeated group.

    Returns
    -------
    float
        The sample std (ddof=1) of the group means divided by the pooled seed sd;
        ``inf`` when the seeds agree exactly. Below about 1 the mixtures cannot be
        told apart from seed noise. The group means still carry noise of
        ``s^2 / n_g``, so the ratio is slightly optimistic for singleton groups.
    """
    y, codes = _check(y, groups)
    counts = np.bincount(codes)
    if len(counts) < 2:
        raise FitError(f"A signal-to-noise ratio needs at least 2 different mixtures. Got {len(counts)}. Add runs of other mixtures.")
    var, _ = seed_noise(y, codes)
    signal = float(np.std(np.bincount(codes, weights=y) / counts, ddof=1))
    return math.inf if var == 0.0 else signal / math.sqrt(var)


def measure_noise(y: np.ndarray, groups: np.ndarray, scales: np.ndarray | None = None) -> dict[str, Any]:
    """Seed noise of one run's metric next to the spread of the mixture effects.

    ``scales`` (one label per run, e.g. its (model_params, tokens)): the mixture effects are spread around each
    scale's own mean, so a size or budget effect does not pass for mixture signal on a multi-scale store.
    Returns ``{seed_sd, dof, repeated, mixtures, signal_sd, snr}``; ``seed_sd``/``snr`` are None when no mixture was
    trained with two or more seeds.
    """
    counts = np.bincount(groups)
    means = np.bincount(groups, weights=y) / counts
    strata = np.zeros(len(counts), dtype=int)
    if scales is not None:  # each group's scale (a group's runs share one)
        labels = np.unique(np.asarray([str(x) for x in scales]), return_inverse=True)[1].reshape(-1)
        strata[groups] = labels
    n_strata = len(np.unique(strata))
    centred = means - (np.bincount(strata, weights=means) / np.bincount(strata))[strata]
    ddof = len(counts) - n_strata
    signal = float(np.sqrt(centred @ centred / ddof)) if ddof >= 1 else None
    out: dict[str, Any] = {"seed_sd": None, "dof": int((counts - 1).sum()), "repeated": int((counts > 1).sum()),
                           "mixtures": int(len(counts)), "signal_sd": signal, "snr": None}
    if out["dof"] >= 1:
        out["seed_sd"] = float(np.sqrt(seed_noise(y, groups)[0]))
        if signal is not None:
            out["snr"] = math.inf if out["seed_sd"] == 0.0 else signal / out["seed_sd"]
    return out
