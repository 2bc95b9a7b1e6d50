"""K-fold cross-validation of a surrogate: ranking, error, regret and calibration."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone

from ..errors import FitError
from .base import check_target, check_weights


def mixture_groups(W: np.ndarray) -> np.ndarray:
    """(n,) ids of equal mixtures (rounded to 1e-9), e.g. one mixture trained at several scales or seeds. Ids number the
    distinct mixtures in sorted order, so they (and the CV folds made from them) do not depend on the rows' order."""
    W = np.round(np.asarray(W, dtype=float), 9) + 0.0  # + 0.0: -0.0 and 0.0 are one weight
    return np.unique(W, axis=0, return_inverse=True)[1].reshape(-1).astype(int)


def group_folds(groups, k: int, seed: int = 0) -> np.ndarray:
    """(n,) fold ids in ``0..k-1`` that keep each group whole: the sorted group ids, shuffled under ``seed``, dealt
    round-robin. With ids numbered by content (:func:`mixture_groups`) the folds do not depend on the rows' order
    or the runs' ids; ``groups = arange(n)`` is a plain shuffle-split."""
    g = np.asarray(groups)
    uniq = np.unique(g)
    gfold = np.empty(len(uniq), dtype=int)
    gfold[np.random.default_rng(seed).permutation(len(uniq))] = np.arange(len(uniq)) % k
    return gfold[np.searchsorted(uniq, g)]


def cross_validate(estimator, W, y, k: int = 5, seed: int = 0, groups=None, train_only=None, progress=None) -> dict:
    """Shuffle-split ``k``-fold CV of ``estimator`` on mixtures ``W`` (n, d), targets ``y`` (n,).

    ``groups`` (n,) marks runs of one mixture (seed repeats): a group is held out whole, so a repeat never predicts
    its twin, and with content-numbered ids (:func:`mixture_groups`) the folds are the same whatever the runs' ids.
    Default: every run its own group, folds by position.

    ``y`` may be (n, m) component metrics for an estimator with ``combine`` (MetricAverage):
    it is fitted on them and scored on the combined target.

    ``train_only`` = ``(W2, Y2)``: rows added to the folds' training and never scored (an earlier sweep's runs that
    measured only some of the components, NaN elsewhere). A row whose mixture is held out in a fold stays out of that
    fold's training, as a seed repeat of it would: it would tell the model the answer it is scored on.

    ``progress(done, k)``, when given, hears of each fold fitted (a progress bar's; the result is the same without it).

    Returns
    -------
    dict with
        ``spearman``, ``pearson``, ``mae`` : float, over all out-of-fold predictions;
        ``regret_at_1`` : float, mean over folds of (true y of the held-out mixture
        predicted lowest) - (lowest true y held out); lower is better, 0 is perfect;
        ``within_1sd``, ``within_2sd`` : float, fraction of truths within ±1σ / ±2σ;
        ``oof_pred``, ``oof_std`` : ndarray (n,), out-of-fold mean and std;
        ``fold`` : ndarray (n,) of fold ids; ``k``, ``seed``.
    """
    W = check_weights(W)
    Y = np.asarray(y, dtype=float)
    if Y.ndim == 2 and hasattr(estimator, "combine"):  # component metrics: fit on Y, score the combined target
        y = estimator.combine(Y)
    else:
        Y = None
    y = check_target(y, len(W), estimator=type(estimator).__name__)
    fit_target = Y if Y is not None else y
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    n_groups = len(np.unique(groups))
    if not 2 <= k <= n_groups:
        raise FitError(f"k must be between 2 and the number of distinct mixtures ({n_groups}). Got k={k}. Lower k or add runs.")
    fold = group_folds(groups, k, seed)
    if train_only is not None:  # each extra row's mixture among the scored ones' (equal mixtures share an id)
        W2, Y2 = np.asarray(train_only[0], dtype=float), np.asarray(train_only[1], dtype=float)
        ids = mixture_groups(np.vstack([W, W2]))
        scored_ids, extra_ids = ids[:len(W)], ids[len(W):]
    pred, std = np.empty(len(y)), np.empty(len(y))
    regrets = []
    for f in range(k):
        te = fold == f
        Wt, Yt = W[~te], fit_target[~te]
        if train_only is not None:
            keep = ~np.isin(extra_ids, scored_ids[te])  # not the held-out mixtures' own runs
            Wt, Yt = np.vstack([Wt, W2[keep]]), np.concatenate([Yt, Y2[keep]])
        model = clone(estimator).fit(Wt, Yt)
        pred[te], std[te] = model.predict(W[te], return_std=True)
        regrets.append(y[te][np.argmin(pred[te])] - y[te].min())
        if progress is not None:
            progress(f + 1, k)
    z = np.abs(pred - y) / std
    return {
        "spearman": float(spearmanr(pred, y)[0]),
        "pearson": float(pearsonr(pred, y)[0]),
        "mae": float(np.mean(np.abs(pred - y))),
        "regret_at_1": float(np.mean(regrets)),
        "within_1sd": float(np.mean(z <= 1.0)),
        "within_2sd": float(np.mean(z <= 2.0)),
        "oof_pred": pred,
        "oof_std": std,
        "fold": fold,
        "k": k,
        "seed": seed,
    }
