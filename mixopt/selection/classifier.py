"""Target classifier: logistic regression of target against pool on hashed word and character n-grams, cross-fitted.

The discriminative counterpart of DSIR, as in GPT-3's quality filter and DCLM's fastText classifier: a linear model
learns to tell the target's documents (label 1) from the pool's (label 0). Its features are two hashed blocks
(:mod:`mixopt.selection.ngrams`): the word unigrams and bigrams that DSIR counts, and fastText's subword features
(Bojanowski et al. 2017), the character 3- to 5-grams of each whitespace-separated word padded with a space at either
end. Each count is taken as log(1 + count), each block of a document scaled to unit length and the two blocks together
to unit length. A document scores its log-odds of being a target document.

The pool holds the documents being scored, so a model fitted on all of it has seen each one as a negative and pushes
the target-like ones down. :meth:`TargetClassifier.fit_score` therefore splits the pool into ``folds`` parts and scores
each part with the model fitted without it (cross-fitting); :meth:`~TargetClassifier.fit` and
:meth:`~TargetClassifier.score` serve documents outside the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ConfigError, DataError, NotFittedError
from .ngrams import CHUNK_BYTES, HashedCharNgrams, HashedNgrams, hash_progress

CHAR_NGRAMS = (3, 5)  # character n-gram lengths, padding included (fastText's subwords: 3 to 6; 6 added nothing here)


class ClassifierFeaturizer:
    """Feature rows of documents for :class:`TargetClassifier` (build it with :meth:`TargetClassifier.featurizer`).

    :meth:`counts` gives a scipy CSR matrix (n_docs, n_buckets + char_buckets): the word block, then the character block.
    """

    def __init__(self, n_buckets: int, char_buckets: int, chunk_bytes: int = CHUNK_BYTES):
        self.words = HashedNgrams(n_buckets)
        self.chars = HashedCharNgrams(char_buckets, CHAR_NGRAMS) if char_buckets else None
        self.n_buckets, self.char_buckets, self.chunk_bytes = int(n_buckets), int(char_buckets), int(chunk_bytes)

    @property
    def n_features(self) -> int:
        return self.n_buckets + self.char_buckets

    def counts(self, texts: Sequence[str], progress: Callable[[int], None] | None = None):
        """(n_docs, n_features) CSR rows of ``texts``. ``progress(n_bytes)`` is called after each chunk of documents."""
        from scipy.sparse import csr_matrix, vstack

        blocks, batch, size = [], [], 0
        for i, t in enumerate(texts):
            batch.append(t if isinstance(t, str) else "")
            size += len(batch[-1].encode("utf-8", errors="replace"))
            if size >= self.chunk_bytes or i == len(texts) - 1:
                blocks.append(self._rows(batch))
                if progress is not None:
                    progress(size)
                batch, size = [], 0
        return vstack(blocks).tocsr() if blocks else csr_matrix((0, self.n_features))

    def _rows(self, texts: list[str]):
        from scipy.sparse import hstack

        words = _log_unit(self.words.counts(texts).matrix())
        if self.chars is None:
            return words
        return (hstack([words, _log_unit(self.chars.counts(texts).matrix())]) / np.sqrt(2)).tocsr()


class TargetClassifier(BaseEstimator):
    """Target-vs-pool logistic regression on hashed word and character n-grams, scikit-learn style.

    Parameters
    ----------
    n_buckets : int, default 65_536
        Hash buckets of the word unigrams and bigrams. 2**16 and 2**18 gave the same precision on the large corpus
        (benchmarks/selection.py).
    C : float, default 1.0
        Inverse L2 strength of scikit-learn's ``LogisticRegression`` (liblinear, dual form: fewer documents than
        features); classes are weighted to balance.
    folds : int, default 5
        Cross-fitting folds of :meth:`fit_score` (at most one per pool document).
    random_state : int, default 0
        Seeds the fold split and the solver.
    char_buckets : int, default 262_144
        Hash buckets of the character 3- to 5-grams within words; 0 leaves them out (words only, as before 2026-11-30).

    Attributes
    ----------
    coef_ : ndarray (n_buckets + char_buckets,)
    intercept_ : float
    """

    def __init__(self, n_buckets: int = 65_536, C: float = 1.0, folds: int = 5, random_state: int = 0,
                 char_buckets: int = 262_144):
        self.n_buckets = n_buckets
        self.C = C
        self.folds = folds
        self.random_state = random_state
        self.char_buckets = char_buckets

    def featurizer(self) -> ClassifierFeaturizer:
        """What turns texts into the rows :meth:`fit` and :meth:`score` take: ``featurizer().counts(texts)``."""
        return ClassifierFeaturizer(self.n_buckets, self.char_buckets)

    def fit(self, target, pool) -> TargetClassifier:
        """Fit on every target row (label 1) and every pool row (label 0), each from ``featurizer().counts(texts)``."""
        self._check(target, pool)
        self.coef_, self.intercept_ = self._fit(_stack(target, pool), target.shape[0])
        return self

    def score(self, rows) -> np.ndarray:
        """(n_docs,) log-odds that each document (rows from ``featurizer().counts(texts)``) is a target document."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("TargetClassifier is not fitted. Call fit(target_rows, pool_rows) first.")
        self._check_rows("scored", rows)
        return rows @ self.coef_ + self.intercept_

    def fit_score(self, target_texts: Sequence[str], pool_texts: Sequence[str],
                  progress: Callable[[str, int, int], None] | None = None) -> np.ndarray:
        """(n_pool,) cross-fitted log-odds of every pool document: each scored by a model fitted without its fold.

        ``progress(stage, done, total)`` hears the hashing (in bytes) and the folds. Afterwards :meth:`score` uses the
        folds' models averaged. Cost (2-core CPU): 4-5 s for 7 MB of text (3,800 documents); 148 s for 114 MB (64,782
        documents: 32 s hashing, the rest the five fits) and about 36 bytes of memory per byte of text at the peak
        (8 without the character n-grams, ``char_buckets=0``); for larger pools score a sample or split them
        (``select --max-docs``).
        """
        feat, tick = self.featurizer(), hash_progress(progress, target_texts, pool_texts)
        target, pool = feat.counts(target_texts, tick), feat.counts(pool_texts, tick)
        self._check(target, pool)
        n_target, n_pool = target.shape[0], pool.shape[0]
        k = min(int(self.folds), n_pool)
        if k < 2:
            raise DataError(f"The classifier scores the pool by cross-fitting, which needs at least 2 pool documents; got "
                            f"{n_pool}. Add documents to the pool, or use --method dsir.")
        X = _stack(target, pool)  # built once; a fold leaves out its rows by weight 0
        del target, pool
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

    def _check(self, target, pool) -> None:
        if not self.C > 0:
            raise ConfigError(f"TargetClassifier C must be > 0. Got {self.C}. Use 1.0.")
        if not int(self.folds) >= 2:
            raise ConfigError(f"TargetClassifier folds must be >= 2 (cross-fitting). Got {self.folds}. Use 5.")
        for what, rows in (("target", target), ("pool", pool)):
            self._check_rows(what, rows)
            if rows.nnz == 0:
                raise DataError(f"The {what} documents hold no words to count. Give the classifier non-empty text.")

    def _check_rows(self, what: str, rows) -> None:
        n = int(self.n_buckets) + int(self.char_buckets)
        if getattr(rows, "ndim", 0) != 2 or rows.shape[1] != n:
            got = f"{rows.shape[1]} columns" if getattr(rows, "ndim", 0) == 2 else type(rows).__name__
            raise ConfigError(f"TargetClassifier was built with {self.n_buckets} word buckets and {self.char_buckets} "
                              f"character buckets ({n} columns) but the {what} rows have {got}. Build them with "
                              f"TargetClassifier.featurizer().counts(texts).")

    def _fit(self, X, n_target: int, train: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Fit on the rows of ``X`` (``n_target`` target rows first, then the pool's) with the pool rows ``train``
        (all if None); classes weighted to balance, the other pool rows weighted 0. The dual form: documents are
        fewer than features, where liblinear's dual coordinate descent is ~10x faster for the same optimum."""
        from sklearn.linear_model import LogisticRegression

        n_pool = X.shape[0] - n_target
        train = np.ones(n_pool, dtype=bool) if train is None else train
        n_neg = int(train.sum())
        n = n_target + n_neg
        weight = np.concatenate([np.full(n_target, n / (2 * n_target)), np.where(train, n / (2 * n_neg), 0.0)])
        y = np.r_[np.ones(n_target), np.zeros(n_pool)]
        clf = LogisticRegression(C=self.C, solver="liblinear", dual=True, random_state=self.random_state)
        clf.fit(X, y, sample_weight=weight)
        return clf.coef_[0].copy(), float(clf.intercept_[0])


def _log_unit(m):
    """log(1 + count), each row scaled to unit L2 length (empty rows stay 0)."""
    from sklearn.preprocessing import normalize

    m.data = np.log1p(m.data)
    return normalize(m)


def _stack(Xt, Xp):
    from scipy.sparse import vstack

    return vstack([Xt, Xp]).tocsr()
