"""Hashed word unigram + bigram counts of documents, vectorised with numpy.

A document's bytes are lower-cased (ASCII) and cut into tokens: runs of letters,
digits and non-ASCII bytes (UTF-8 text of any script), and single punctuation
bytes; whitespace separates. Each token gets a 64-bit polynomial hash computed
for all tokens at once from prefix sums (no per-token Python loop); a bigram
hash combines two neighbouring tokens of the same document. Both land in
``n_buckets`` buckets. The result lists every n-gram as (document, bucket), a
sparse (documents x buckets) count matrix in coordinate form, as in DSIR (Xie et al. 2023, "Data Selection for Language Models via
Importance Resampling").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

_P = np.uint32(1_000_003)  # odd base of the polynomial hash (mod 2**32)
_P_INV = np.uint32(pow(1_000_003, -1, 2**32))
_MIX1 = np.uint32(0x7FEB352D)  # "lowbias32" finaliser constants (C. Wellons)
_MIX2 = np.uint32(0x846CA68B)
_BIGRAM = np.uint32(0x9E3779B1)
CHUNK_BYTES = 4 << 20  # documents are hashed in chunks of about this many bytes


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """(lower-case map, byte class) lookup tables; class 0 = space, 1 = word byte, 2 = punctuation."""
    lower = np.arange(256, dtype=np.uint8)
    lower[ord("A"):ord("Z") + 1] += 32
    cls = np.full(256, 2, dtype=np.uint8)
    for c in b" \t\n\r\x0b\x0c\x00":
        cls[c] = 0
    for lo, hi in ((ord("a"), ord("z")), (ord("A"), ord("Z")), (ord("0"), ord("9")), (128, 255)):
        cls[lo:hi + 1] = 1
    cls[ord("_")] = 1
    return lower, cls


@dataclass
class NgramCounts:
    """Every hashed n-gram of a document list as a (document, bucket) pair: sparse counts in COO form."""

    docs: np.ndarray  # (n_ngrams,) int32 document index
    buckets: np.ndarray  # (n_ngrams,) int32 bucket index
    n_docs: int
    n_buckets: int

    def totals(self) -> np.ndarray:
        """(n_buckets,) count of each bucket over all documents."""
        return np.bincount(self.buckets, minlength=self.n_buckets).astype(np.float64)

    def dot(self, w: np.ndarray) -> np.ndarray:
        """(n_docs,) ``counts(x) . w`` for every document x."""
        return np.bincount(self.docs, weights=np.asarray(w, dtype=np.float64)[self.buckets], minlength=self.n_docs)

    def matrix(self):
        """The (n_docs, n_buckets) count matrix, scipy CSR, float64."""
        from scipy.sparse import coo_matrix

        m = coo_matrix((np.ones(self.docs.shape[0]), (self.docs, self.buckets)), shape=(self.n_docs, self.n_buckets)).tocsr()
        m.sum_duplicates()
        return m

    def per_doc(self) -> np.ndarray:
        """(n_docs,) n-grams per document."""
        return np.bincount(self.docs, minlength=self.n_docs)

    def subset(self, mask: np.ndarray) -> NgramCounts:
        """The n-grams of the documents where ``mask`` (n_docs,) is true, renumbered."""
        new = np.cumsum(mask) - 1
        keep = mask[self.docs]
        return NgramCounts(new[self.docs[keep]].astype(np.int32), self.buckets[keep], int(mask.sum()), self.n_buckets)


class HashedNgrams:
    """Hash documents' word unigrams and bigrams into ``n_buckets`` buckets.

    Parameters
    ----------
    n_buckets : int, default 10_000
        Hash buckets shared by unigrams and bigrams.
    chunk_bytes : int
        Documents are processed in chunks of about this many UTF-8 bytes (memory ~ 30x this).
    """

    def __init__(self, n_buckets: int = 10_000, chunk_bytes: int = CHUNK_BYTES):
        if not 16 <= int(n_buckets) <= 2**24:
            raise ConfigError(f"n_buckets must be in [16, 2**24]. Got {n_buckets}. Use about 10000.")
        self.n_buckets = int(n_buckets)
        self.chunk_bytes = int(chunk_bytes)
        self._lower, self._cls = _tables()
        self._pw = self._inv = np.ones(1, dtype=np.uint32)

    def counts(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> NgramCounts:
        """All n-grams of ``texts``. ``progress(n_bytes)`` is called after each chunk with the bytes it held."""
        docs_out, buckets_out = [], []
        start = size = 0
        encoded: list[bytes] = []
        for i, t in enumerate(texts):
            b = t.encode("utf-8", errors="replace") if isinstance(t, str) else b""
            encoded.append(b)
            size += len(b)
            if size >= self.chunk_bytes or i == len(texts) - 1:
                d, bk = self._chunk(encoded)
                docs_out.append(d + start)
                buckets_out.append(bk)
                if progress is not None:
                    progress(size)
                start, size, encoded = i + 1, 0, []
        if not docs_out:
            return NgramCounts(np.zeros(0, np.int32), np.zeros(0, np.int32), len(texts), self.n_buckets)
        return NgramCounts(np.concatenate(docs_out).astype(np.int32), np.concatenate(buckets_out), len(texts), self.n_buckets)

    def _powers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self._pw.shape[0] < n:
            self._pw, self._inv = _powers_upto(1 << max(int(n - 1).bit_length(), 10))
        return self._pw[:n], self._inv[:n]

    def _chunk(self, docs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(document index within the chunk, bucket) of every n-gram of ``docs``."""
        n_docs = len(docs)
        lens = np.fromiter((len(d) for d in docs), dtype=np.int64, count=n_docs)
        offsets = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        raw = np.frombuffer(b"".join(docs), dtype=np.uint8)
        n = raw.shape[0]
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        cls = self._cls[raw]
        word = cls == 1
        prev_word = np.empty(n, dtype=bool)
        prev_word[0] = False
        prev_word[1:] = word[:-1]
        prev_word[offsets[:-1][lens > 0]] = False  # a token never spans two documents
        next_word = np.empty(n, dtype=bool)
        next_word[-1] = False
        next_word[:-1] = word[1:]
        next_word[offsets[1:][lens > 0] - 1] = False
        punct = cls == 2
        s = np.flatnonzero(punct | (word & ~prev_word))  # token starts
        e = np.flatnonzero(punct | (word & ~next_word)) + 1  # token ends (exclusive): same count, same order
        pw, inv = self._powers(n)
        with np.errstate(over="ignore"):
            pref = np.zeros(n + 1, dtype=np.uint32)
            np.cumsum(self._lower[raw] * pw, out=pref[1:])  # lower-case byte codes fit the +1-free scheme: 0 never occurs in tokens
            h = _mix((pref[e] - pref[s]) * inv[s])  # position-free hash of each token's bytes
            doc = np.searchsorted(offsets, s, side="right") - 1
            same = doc[1:] == doc[:-1]
            h2 = _mix(h[:-1] * _BIGRAM + h[1:])[same]
        buckets = (np.concatenate([h, h2]) % np.uint32(self.n_buckets)).astype(np.int32)
        return np.concatenate([doc, doc[:-1][same]]), buckets


class HashedCharNgrams(HashedNgrams):
    """Hash the byte n-grams of each word, the word padded with a space at either end, into ``n_buckets`` buckets.

    fastText's subword features (Bojanowski et al. 2017; scikit-learn's ``char_wb`` analyzer): a word here is a run of
    bytes between whitespace (punctuation stays in it), lower-cased (ASCII) like :class:`HashedNgrams`; " cat " gives
    " ca", "cat", "at ", " cat", "cat ", " cat " for ``lengths`` (3, 5). Counts come as :class:`NgramCounts`.

    Parameters
    ----------
    n_buckets : int, default 262_144
    lengths : (int, int), default (3, 5)
        Shortest and longest n-gram, in bytes, padding included.
    chunk_bytes : int
        As :class:`HashedNgrams`.
    """

    def __init__(self, n_buckets: int = 262_144, lengths: tuple[int, int] = (3, 5), chunk_bytes: int = CHUNK_BYTES):
        super().__init__(n_buckets, chunk_bytes)
        lo, hi = (int(x) for x in lengths)
        if not 3 <= lo <= hi:
            raise ConfigError(f"Character n-gram lengths must be 3 <= shortest <= longest. Got {lengths}. Use (3, 5).")
        self.lengths = (lo, hi)
        self._space_lower = self._lower.copy()
        self._space_lower[self._cls == 0] = 32  # every whitespace byte a space

    def _chunk(self, docs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(document index within the chunk, bucket) of every character n-gram of ``docs``."""
        lens = np.fromiter((len(d) + 1 for d in docs), dtype=np.int64, count=len(docs))
        # one space before, between and after the documents: every word then has a space at either end
        raw = self._space_lower[np.frombuffer(b" " + b" ".join(docs) + b" ", dtype=np.uint8)]
        n = raw.shape[0]
        doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lens)  # byte i's document (its leading space included)
        word = raw != 32
        pw, inv = self._powers(n)
        with np.errstate(over="ignore"):
            pref = np.zeros(n + 1, dtype=np.uint32)
            np.cumsum(raw * pw, out=pref[1:])
        docs_out, buckets = [], []
        inside = np.ones(n, dtype=bool)  # for the length k: bytes i+1 .. i+k-2 of the window at i are all word bytes
        for k in range(3, self.lengths[1] + 1):
            m = n - k + 1
            if m <= 0:
                break
            inside = inside[:m] & word[k - 2:k - 2 + m]  # its ends may be spaces: the padding
            if k < self.lengths[0]:
                continue
            at = np.flatnonzero(inside)
            with np.errstate(over="ignore"):
                h = _mix((pref[at + k] - pref[at]) * inv[at])  # position-free hash of the window's bytes
            buckets.append((h % np.uint32(self.n_buckets)).astype(np.int32))
            docs_out.append(doc_of[at])
        if not buckets:
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        return np.concatenate(docs_out), np.concatenate(buckets)


@functools.lru_cache(maxsize=2)
def _powers_upto(m: int) -> tuple[np.ndarray, np.ndarray]:
    """``P ** i`` and ``P ** -i`` mod 2**32 for i in [0, m), read-only, shared by every featurizer (computed on first use)."""
    pw, inv = _pow_series(_P, m), _pow_series(_P_INV, m)
    pw.flags.writeable = inv.flags.writeable = False
    return pw, inv


def _pow_series(base: np.uint32, m: int) -> np.ndarray:
    """``base ** i`` mod 2**32 for i in [0, m)."""
    out = np.full(m, base, dtype=np.uint32)
    out[0] = 1
    with np.errstate(over="ignore"):
        np.cumprod(out, out=out)
    return out


def _mix(h: np.ndarray) -> np.ndarray:
    """Spread the bits of a 32-bit hash (lowbias32: xor-shift, multiply, twice)."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16))
        h = h * _MIX1
        h = h ^ (h >> np.uint32(15))
        h = h * _MIX2
        return h ^ (h >> np.uint32(16))


def hash_progress(progress: Callable[[str, int, int], None] | None, *texts: Sequence[str]) -> Callable[[int], None]:
    """A :meth:`HashedNgrams.counts` callback that reports the bytes hashed so far of all ``texts`` lists to
    ``progress(stage, done, total)`` (stage "hash n-grams (bytes)"); does nothing without ``progress``."""
    total = sum(len(t.encode("utf-8", "replace")) for lst in texts for t in lst) if progress else 0
    done = [0]

    def tick(n_bytes: int) -> None:
        done[0] += n_bytes
        if progress:
            progress("hash n-grams (bytes)", done[0], total)

    return tick
