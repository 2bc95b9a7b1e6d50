"""Target classifier: logistic regression of target against pool on hashed n-grams, cross-fitted.

The discriminative counterpart of DSIR, as in GPT-3's quality filter and DCLM's fastText classifier: a linear model
learns to tell the target's documents (label 1) from the pool's (label 0) on the hashed word unigrams and bigrams that
DSIR counts (:mod:`mixopt.selection.ngrams`), each count as log(1 + count) and each document's vector scaled to unit
length. A document scores its log-odds of being a target document.

The pool holds the documents being scored, so a model fitted on all of it has seen each one as a negative and pushes
the target-like ones down. :meth:`TargetClassifier.fit_score` therefore splits the pool into ``folds`` parts and scores
each part with the model fitted without it (cross-fitting); :meth:`~TargetClassifier.fit` and
:meth:`~TargetClassifier.score` serve documents outside the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ConfigError, DataError, NotFittedError
from .ngrams import HashedNgrams, NgramCounts, hash_progress


class TargetClassifier:
    """Target-vs-pool logistic regression on hashed n-grams, scikit-learn style.

    Parameters
    ----------
    n_buckets : int, default 65_536
        Hash buckets (features). 2**16 and 2**18 gave the same precision on the large corpus (benchmarks/selection.py).
    C : float, default 1.0
        Inverse L2 strength of scikit-learn's ``LogisticRegression`` (liblinear); classes are weighted to balance.
    folds : int, default 5
        Cross-fitting folds of :meth:`fit_score` (at most one per pool document).
    random_state : int, default 0
        Seeds the fold split and the solver.

    Attributes
    ----------
    coef_ : ndarray (n_buckets,)
    intercept_ : float
    """

    def __init__(self, n_buckets: int = 65_536, C: float = 1.0, folds: int = 5, random_state: int = 0):
        self.n_buckets = n_buckets
        self.C = C
        self.folds = folds
        self.random_state = random_state

    def featurizer(self) -> HashedNgrams:
        return HashedNgrams(self.n_buckets)

    def fit(self, target: NgramCounts, pool: NgramCounts) -> TargetClassifier:
        """Fit on every target document (label 1) and every pool document (label 0), counted by :meth:`featurizer`."""
        self._check(target, pool)
        self.coef_, self.intercept_ = self._fit(features(target), features(pool))
        return self

    def score(self, counts: NgramCounts) -> np.ndarray:
        """(n_docs,) log-odds that each document is a target document."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("TargetClassifier is not fitted. Call fit(target_counts, pool_counts) first.")
        return features(counts) @ self.coef_ + self.intercept_

    def fit_score(self, target_texts: Sequence[str], pool_texts: Sequence[str],
                  progress: Callable[[str, int, int], None] | None = None) -> np.ndarray:
        """(n_pool,) cross-fitted log-odds of every pool document: each scored by a model fitted without its fold.

        ``progress(stage, done, total)`` hears the hashing (in bytes) and the folds.
        """
        feat, tick = self.featurizer(), hash_progress(progress, target_texts, pool_texts)
        target, pool = feat.counts(target_texts, tick), feat.counts(pool_texts, tick)
        self._check(target, pool)
        Xt, Xp = features(target), features(pool)
        k = min(int(self.folds), Xp.shape[0])
        if k < 2:
            raise DataError(f"The classifier scores the pool by cross-fitting, which needs at least 2 pool documents; got "
                            f"{Xp.shape[0]}. Add documents to the pool, or use --method dsir.")
        rng = np.random.default_rng(self.random_state)
        fold = rng.permutation(np.arange(Xp.shape[0]) % k)
        out = np.empty(Xp.shape[0])
        for i in range(k):
            held = fold == i
            if progress:
                progress("fit classifier (folds)", i, k)
            coef, icpt = self._fit(Xt, Xp[~held])
            out[held] = Xp[held] @ coef + icpt
        if progress:
            progress("fit classifier (folds)", k, k)
        self.coef_, self.intercept_ = self._fit(Xt, Xp)  # for documents outside the pool
        return out

    def _check(self, target: NgramCounts, pool: NgramCounts) -> None:
        if not self.C > 0:
            raise ConfigError(f"TargetClassifier C must be > 0. Got {self.C}. Use 1.0.")
        if not int(self.folds) >= 2:
            raise ConfigError(f"TargetClassifier folds must be >= 2 (cross-fitting). Got {self.folds}. Use 5.")
        for what, c in (("target", target), ("pool", pool)):
            if c.n_buckets != self.n_buckets:
                raise ConfigError(f"TargetClassifier was built with {self.n_buckets} buckets but the {what} counts have "
                                  f"{c.n_buckets}. Count with TargetClassifier.featurizer().")
            if c.docs.shape[0] == 0:
                raise DataError(f"The {what} documents hold no words to count. Give the classifier non-empty text.")

    def _fit(self, Xt, Xp) -> tuple[np.ndarray, float]:
        from scipy.sparse import vstack
        from sklearn.linear_model import LogisticRegression

        X = vstack([Xt, Xp]).tocsr()
        y = np.r_[np.ones(Xt.shape[0]), np.zeros(Xp.shape[0])]
        clf = LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear", random_state=self.random_state)
        clf.fit(X, y)
        return clf.coef_[0].copy(), float(clf.intercept_[0])


def features(counts: NgramCounts):
    """(n_docs, n_buckets) CSR features: log(1 + count), each row scaled to unit L2 length (empty rows stay 0)."""
    from sklearn.preprocessing import normalize

    m = counts.matrix()
    m.data = np.log1p(m.data)
    return normalize(m)
