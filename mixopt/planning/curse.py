"""The optimizer's curse: how optimistic the search's predicted value is, measured by cross-fitting.

The search picks the mixture its surrogate predicts lowest, so the surrogate's value there is biased low: among many
candidates, the one whose error happens to be most favourable wins (Smith & Winkler 2006, "The optimizer's curse").
Cross-fitting measures that bias on the runs themselves: split the swept mixtures in two halves, fit the surrogate on
one half, let it search, and ask the model fitted on the *other* half what it predicts for the chosen mixture. The
mean gap, over both halves and a few splits, is the search's optimism; ``propose`` adds it to the plan's predicted value
when the plan takes the search's mixture (after the keep-baseline gate, which judges the raw values it was validated on).

Measured (RESULTS.md "The optimizer's curse"): on three one-scale stores, claimed gains over the baselines were 1.5-2x
what the plans trained to at the proxies' own budget, and the correction cut the claims' mean error by a quarter
(0.051-0.072 -> 0.037-0.060). On RegMix's public runs, on draws the rules below were chosen on, it halved the chosen
mixture's error with 128-256 runs; on 36 draws they never saw (``search_curse.py --regmix 128,256 --draws 36
--first-draw 100``) it halves it with 256 runs (0.0164 -> 0.0093) but ties with 128 (0.0151 -> 0.0154: the optimistic
bias -0.012 becomes a pessimistic +0.011).
On scale-aware fits (several budgets or sizes) the halves' level extrapolations differ so much that the measured
optimism (0.03-0.13) made the claims worse (held 10 -> 6 of 18 on a WSD store), so those fits are not corrected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from ..errors import MixoptError
from ..surrogates.crossval import mixture_groups


@dataclass
class FitRows:
    """The rows a fitted surrogate learned from, so that ``search_optimism`` can refit it on halves of them."""

    estimator: Any  # the fitted surrogate (cloned, never refitted)
    X: np.ndarray  # (n, k) mixtures
    Y: np.ndarray  # (n,) targets, or (n, m) component metrics


#: Fewest distinct mixtures per domain in each half. With fewer, the halves' surrogates are so much poorer than the
#: full one that their disagreement measures their own poverty: on RegMix's runs (17 domains) halves of 32 mixtures
#: (1.9 per domain) gave an optimism of 0.06 where the chosen mixture's real one was 0.007, and the correction made the
#: error 3x worse; halves of 64 (3.8 per domain) halved it. The embedded stores' halves hold about 2.9 per domain.
MIN_HALF_RUNS_PER_DOMAIN = 2.5


def search_optimism(rows: FitRows, search: Callable[[Any], np.ndarray], *, chosen: np.ndarray | None = None,
                    repeats: int = 2, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None) -> tuple[float, float] | None:
    """(mean, sd) of how much worse a held-out model predicts the search's mixture than the model that chose it.

    ``search(predictor)`` is the search's mixture (k,) for a predictor. Each split fits the surrogate on one half of
    the distinct mixtures (a mixture's seed repeats stay together), searches with it, and predicts the chosen mixture with the surrogate fitted on the
    other half; both halves choose in turn, so a level that differs between the halves cancels. With ``chosen`` (the
    full surrogate's own choice) each gap is scaled by the full surrogate's std there over the half's std at its choice:
    a selection bias grows with the chooser's uncertainty, and a half knows less than the whole (on RegMix's runs the
    scaling cut the corrected error from 0.0167 to 0.0091 with 128 runs on the draws it was chosen on; a tie on fresh ones). Positive means the search was optimistic.
    None when the halves hold fewer than ``MIN_HALF_RUNS_PER_DOMAIN`` distinct mixtures per domain, or are too few to fit.
    ``progress(done, total)`` hears of each half's search (``2 * repeats`` of them).
    """
    X, Y = np.asarray(rows.X, dtype=float), np.asarray(rows.Y, dtype=float)
    groups = mixture_groups(X)
    ids = np.unique(groups)
    if len(ids) < 4 or len(ids) // 2 < MIN_HALF_RUNS_PER_DOMAIN * X.shape[1]:
        return None
    full_sd = None
    if chosen is not None:
        full_sd = float(np.ravel(rows.estimator.predict(np.asarray(chosen, dtype=float)[None, :], return_std=True)[1])[0])
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(repeats):
        half = np.isin(groups, rng.permutation(ids)[: len(ids) // 2])
        for chose in (half, ~half):
            try:
                chooser = clone(rows.estimator).fit(X[chose], Y[chose])
                judge = clone(rows.estimator).fit(X[~chose], Y[~chose])
            except MixoptError:  # half the runs are too few for this estimator (its min_runs)
                return None
            w = np.asarray(search(chooser), dtype=float)[None, :]
            mean, sd = chooser.predict(w, return_std=True)
            gap = float(np.ravel(judge.predict(w))[0] - np.ravel(mean)[0])
            gaps.append(gap * (full_sd / float(np.ravel(sd)[0]) if full_sd is not None else 1.0))
            if progress is not None:
                progress(len(gaps), 2 * repeats)
    return float(np.mean(gaps)), float(np.std(gaps, ddof=1))
