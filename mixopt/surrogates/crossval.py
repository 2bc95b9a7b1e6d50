"""K-fold cross-validation of a surrogate: ranking, error, regret and calibration."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone

from ..errors import FitError
from .base import check_target, check_weights


def cross_validate(estimator, W, y, k: int = 5, seed: int = 0) -> dict:
    """Shuffle-split ``k``-fold CV of ``estimator`` on mixtures ``W`` (n, d), targets ``y`` (n,).

    ``y`` may be (n, m) component metrics for an estimator with ``combine`` (MetricAverage):
    it is fitted on them and scored on the combined target.

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
    if not 2 <= k <= len(y):
        raise FitError(f"k must be between 2 and the number of runs ({len(y)}). Got k={k}. Lower k or add runs.")
    fold = np.empty(len(y), dtype=int)
    fold[np.random.default_rng(seed).permutation(len(y))] = np.arange(len(y)) % k
    pred, std = np.empty(len(y)), np.empty(len(y))
    regrets = []
    for f in range(k):
        te = fold == f
        model = clone(estimator).fit(W[~te], fit_target[~te])
        pred[te], std[te] = model.predict(W[te], return_std=True)
        regrets.append(y[te][np.argmin(pred[te])] - y[te].min())
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
