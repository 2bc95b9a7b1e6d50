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
        self.coef_, self.intercept_ = self._fit(_stack(features(target), features(pool)), target.n_docs)
        return self

    def score(self, counts: NgramCounts) -> np.ndarray:
        """(n_docs,) log-odds that each document is a target document."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("TargetClassifier is not fitted. Call fit(target_counts, pool_counts) first.")
        return features(counts) @ self.coef_ + self.intercept_

    def fit_score(self, target_texts: Sequence[str], pool_texts: Sequence[str],
                  progress: Callable[[str, int, int], None] | None = None) -> np.ndarray:
        """(n_pool,) cross-fitted log-odds of every pool document: each scored by a model fitted without its fold.

        ``progress(stage, done, total)`` hears the hashing (in bytes) and the folds. Afterwards :meth:`score` uses the
        folds' models averaged. Cost (2-core CPU, 39 MB of pool text, 22k documents): 13 s and about 14 bytes of
        memory per byte of text at the peak; for larger pools score a sample or split them (``select --max-docs``).
        """
        feat, tick = self.featurizer(), hash_progress(progress, target_texts, pool_texts)
        target, pool = feat.counts(target_texts, tick), feat.counts(pool_texts, tick)
        self._check(target, pool)
        n_target, n_pool = target.n_docs, pool.n_docs
        k = min(int(self.folds), n_pool)
        if k < 2:
            raise DataError(f"The classifier scores the pool by cross-fitting, which needs at least 2 pool documents; got "
                            f"{n_pool}. Add documents to the pool, or use --method dsir.")
        X = _stack(features(target), features(pool))  # built once; a fold leaves out its rows by weight 0
        fold = np.random.default_rng(self.random_state).permutation(np.arange(n_pool) % k)
        out, coefs = np.empty(n_pool), []
        for i in range(k):
            held = fold == i
            if progress:
                progress("fit classifier (folds)", i, k)
            coef, icpt = self._fit(X, n_target, ~held)
            out[held] = X[n_target + np.flatnonzero(held)] @ coef + icpt
            coefs.append((coef, icpt))
        if progress:
            progress("fit classifier (folds)", k, k)
        # documents outside the pool: the folds' models averaged (each saw 1 - 1/k of the pool)
        self.coef_ = np.mean([c for c, _ in coefs], axis=0)
        self.intercept_ = float(np.mean([b for _, b in coefs]))
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

    def _fit(self, X, n_target: int, train: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Fit on the rows of ``X`` (``n_target`` target rows first, then the pool's) with the pool rows ``train``
        (all if None); classes weighted to balance, the other pool rows weighted 0."""
        from sklearn.linear_model import LogisticRegression

        n_pool = X.shape[0] - n_target
        train = np.ones(n_pool, dtype=bool) if train is None else train
        n_neg = int(train.sum())
        n = n_target + n_neg
        weight = np.concatenate([np.full(n_target, n / (2 * n_target)), np.where(train, n / (2 * n_neg), 0.0)])
        y = np.r_[np.ones(n_target), np.zeros(n_pool)]
        clf = LogisticRegression(C=self.C, solver="liblinear", random_state=self.random_state)
        clf.fit(X, y, sample_weight=weight)
        return clf.coef_[0].copy(), float(clf.intercept_[0])


def _stack(Xt, Xp):
    from scipy.sparse import vstack

    return vstack([Xt, Xp]).tocsr()


def features(counts: NgramCounts):
    """(n_docs, n_buckets) CSR features: log(1 + count), each row scaled to unit L2 length (empty rows stay 0)."""
    from sklearn.preprocessing import normalize

    m = counts.matrix()
    m.data = np.log1p(m.data)
    return normalize(m)
