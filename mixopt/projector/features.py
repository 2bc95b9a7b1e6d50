"""Document features for optimal transport, and a per-document feature cache.

Three featurizers share one small contract: an ``identity`` string (what the
cache keys on) and ``transform(docs) -> np.ndarray`` of shape ``(n_docs, dim)``.

- :class:`HashingFeaturizer` (default): no download, deterministic, fast.
- :class:`ProxyHiddenFeaturizer`: mean hidden state of a torch proxy model.
- :class:`SentenceTransformerFeaturizer`: a sentence-transformers model loaded
  from a local path only.

:func:`featurize` wraps any of them with validation and an optional
:class:`FeatureCache`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import DataError, require

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_BASE = np.uint64(0x100000001B3)  # odd, so invertible modulo 2**64
_BASE_INV = np.uint64(pow(0x100000001B3, -1, 2**64))


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads polynomial hashes over all 64 bits."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def _span_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hashes (mod 2**64) of the byte spans ``data[s:e]``, vectorised.

    With prefix sums ``H[i] = sum_{k<i} data[k] * B**k`` the span hash is
    ``(H[e] - H[s]) * B**(-s)``, i.e. ``sum_k data[s+k] * B**k``.
    """
    n = data.shape[0]
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.concatenate([[np.uint64(1)], np.full(n, _BASE, dtype=np.uint64)]), dtype=np.uint64)
        inv_powers = np.cumprod(np.concatenate([[np.uint64(1)], np.full(n, _BASE_INV, dtype=np.uint64)]), dtype=np.uint64)
        prefix = np.concatenate([[np.uint64(0)], np.cumsum((data.astype(np.uint64) + np.uint64(1)) * powers[:n], dtype=np.uint64)])
        return (prefix[ends] - prefix[starts]) * inv_powers[starts]


class HashingFeaturizer:
    """Hashed character n-grams and word n-grams -> sublinear tf -> Gaussian projection.

    For a document, every lower-cased UTF-8 byte n-gram with ``n`` in
    ``char_ngrams`` and every word n-gram with ``n`` in ``word_ngrams`` (words are
    runs of ASCII letters/digits/underscore or non-ASCII bytes) is hashed into
    ``n_features`` buckets with a random sign. Counts become ``1 + log(tf)``
    (sublinear tf; there is no IDF, so a document's features never depend on
    the other documents and can be cached). The character part and the word
    part are each L2-normalised and added; the sum ``x`` is projected with a
    seeded Gaussian matrix ``R`` of shape ``(n_features, dim)`` and the result
    ``x @ R`` is L2-normalised. An empty document maps to the zero vector.

    Parameters
    ----------
    dim : int, default 128
        Output dimension.
    seed : int, default 0
        Seed of the hash signs and of the projection matrix.
    char_ngrams, word_ngrams : tuple of int
        Inclusive ranges ``(lo, hi)`` of n-gram lengths; ``None`` disables a part.
    n_features : int, default 2**16
        Size of the hashing space (rows of ``R``; ``R`` takes ``n_features*dim*4`` bytes).
    max_bytes : int, default 20000
        Documents are truncated to this many UTF-8 bytes.
    """

    version = "hashing-v1"

    def __init__(self, dim: int = 128, seed: int = 0, *, char_ngrams=(3, 5), word_ngrams=(1, 2),
                 n_features: int = 2**16, max_bytes: int = 20000):
        self.dim = dim
        self.seed = seed
        self.char_ngrams = char_ngrams
        self.word_ngrams = word_ngrams
        self.n_features = n_features
        self.max_bytes = max_bytes
        self._projection = None

    @property
    def identity(self) -> str:
        return (f"{self.version}:dim={self.dim}:seed={self.seed}:char={self.char_ngrams}:"
                f"word={self.word_ngrams}:nf={self.n_features}:max_bytes={self.max_bytes}")

    def _matrix(self) -> np.ndarray:
        if self._projection is None:
            rng = np.random.default_rng([self.seed, 0x5EED])
            self._projection = rng.standard_normal((self.n_features, self.dim), dtype=np.float32)
        return self._projection

    def _doc_hashes(self, doc: str) -> tuple[np.ndarray, np.ndarray]:
        data = np.frombuffer(doc.lower().encode("utf-8")[: self.max_bytes], dtype=np.uint8)
        n = data.shape[0]
        char_parts, word_parts = [], []
        if self.char_ngrams and n:
            for k in range(self.char_ngrams[0], self.char_ngrams[1] + 1):
                if n >= k:
                    starts = np.arange(n - k + 1)
                    char_parts.append(_span_hashes(data, starts, starts + k) ^ np.uint64(k))
        if self.word_ngrams and n:
            is_word = (data >= 128) | ((data >= 48) & (data <= 57)) | ((data >= 97) & (data <= 122)) | (data == 95)
            edges = np.diff(np.concatenate([[0], is_word.astype(np.int8), [0]]))
            w = _mix64(_span_hashes(data, np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))
            with np.errstate(over="ignore"):
                for k in range(self.word_ngrams[0], self.word_ngrams[1] + 1):
                    if w.shape[0] >= k:
                        h = np.zeros(w.shape[0] - k + 1, dtype=np.uint64)
                        for j in range(k):
                            h = _mix64(h * _BASE + w[j: w.shape[0] - k + 1 + j])
                        word_parts.append(h ^ np.uint64(1000 + k))
        empty = np.zeros(0, dtype=np.uint64)
        return (np.concatenate(char_parts) if char_parts else empty,
                np.concatenate(word_parts) if word_parts else empty)

    def _part(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bucket ids and signed sublinear-tf values, L2-normalised."""
        if hashes.shape[0] == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        h = _mix64(hashes ^ np.uint64(self.seed & 0xFFFFFFFF))
        sign = np.where((h >> np.uint64(63)) == 1, -1.0, 1.0)
        idx = (h % np.uint64(self.n_features)).astype(np.int64)
        key = idx * 2 + (sign > 0)
        uniq, counts = np.unique(key, return_counts=True)
        vals = (1.0 + np.log(counts)) * np.where(uniq % 2 == 1, 1.0, -1.0)
        return uniq // 2, vals / np.linalg.norm(vals)

    def transform(self, docs: Sequence[str]) -> np.ndarray:
        """Features of ``docs``: array of shape ``(len(docs), dim)``, rows of norm 1 (or 0)."""
        from scipy import sparse

        rows, cols, vals = [], [], []
        for i, doc in enumerate(docs):
            for hashes in self._doc_hashes(doc):
                c, v = self._part(hashes)
                rows.append(np.full(c.shape[0], i)), cols.append(c), vals.append(v)
        if not docs:
            return np.zeros((0, self.dim))
        x = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(len(docs), self.n_features))
        out = np.asarray(x @ self._matrix().astype(np.float64))
        return _l2_normalise(out)


class ProxyHiddenFeaturizer:
    """Mean last hidden state of a torch proxy model over a document's tokens.

    Parameters
    ----------
    model : torch.nn.Module
        Must provide ``forward_hidden(idx) -> (B, T, C)`` for ``idx`` of shape
        ``(B, T)`` (``mixopt.proxy.model``). Attention must be causal: documents
        are right-padded with ``pad_id`` and the mean is taken over real tokens only.
    encode : callable ``str -> list[int]``
    name : str, optional
        Identity used by the cache. Default: sha256 of the model's parameters.
    max_tokens, batch_size, pad_id, device
        Truncation length (default: ``model.config.block_size`` when present, else 256), docs per
        forward, padding id, torch device.
    """

    def __init__(self, model, encode: Callable[[str], Sequence[int]], *, name: str | None = None,
                 max_tokens: int | None = None, batch_size: int = 16, pad_id: int = 0, device: str = "cpu"):
        self.model = model
        self.encode = encode
        self.name = name
        block = getattr(getattr(model, "config", None), "block_size", None)
        self.max_tokens = max_tokens if max_tokens is not None else int(block or 256)
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.device = device

    @property
    def identity(self) -> str:
        name = self.name
        if name is None:  # recomputed on every call, so a model trained further gets a new identity
            h = hashlib.sha256()
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(key.encode())
                h.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
            name = h.hexdigest()[:16]
        return f"proxy-hidden:{name}:max_tokens={self.max_tokens}"

    def transform(self, docs: Sequence[str]) -> np.ndarray:
        import torch

        encoded = [list(self.encode(d))[: self.max_tokens] for d in docs]
        out = []
        was_training = bool(getattr(self.model, "training", False))
        self.model.eval()
        try:
            out = self._forward(encoded, torch)
        finally:
            self.model.train(was_training)
        if not out:
            return np.zeros((0, 0))
        return np.concatenate(out, axis=0)

    def _forward(self, encoded: list[list[int]], torch) -> list[np.ndarray]:
        out = []
        with torch.no_grad():
            for start in range(0, len(encoded), self.batch_size):
                batch = encoded[start: start + self.batch_size]
                width = max(1, max(len(e) for e in batch))
                idx = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.float64)
                for r, e in enumerate(batch):
                    idx[r, : len(e)] = torch.tensor(e, dtype=torch.long)
                    mask[r, : len(e)] = 1.0
                hidden = self.model.forward_hidden(idx.to(self.device)).detach().cpu().double()  # (B, T, C)
                summed = (hidden * mask[:, :, None]).sum(dim=1)  # (B, C)
                out.append((summed / mask.sum(dim=1, keepdim=True).clamp(min=1.0)).numpy())
        return out


class SentenceTransformerFeaturizer:
    """Embeddings of a sentence-transformers model loaded from a local directory (never downloads)."""

    def __init__(self, path: str, *, batch_size: int = 32, device: str | None = None):
        self.path = path
        self.batch_size = batch_size
        self.device = device
        self._model = None

    @property
    def identity(self) -> str:
        return f"sentence-transformers:{os.path.abspath(self.path)}"

    def transform(self, docs: Sequence[str]) -> np.ndarray:
        if self._model is None:
            if not os.path.isdir(self.path):
                raise DataError(f"A sentence-transformers model directory must exist locally. Got path '{self.path}', "
                                "which is not a directory. Download the model once and pass its local path.")
            st = require("sentence_transformers", "embeddings")
            self._model = st.SentenceTransformer(self.path, device=self.device, local_files_only=True)
        emb = self._model.encode(list(docs), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float64)


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


class FeatureCache:
    """Feature vectors keyed by ``sha256(featurizer identity + NUL + doc text)``, in one sqlite file.

    Parameters
    ----------
    directory : str or path
        Created if missing; the database is ``<directory>/features.sqlite``.
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(self.directory, exist_ok=True)
        con = sqlite3.connect(os.path.join(self.directory, "features.sqlite"), timeout=60)
        con.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")
        return con

    @staticmethod
    def key(doc: str, identity: str) -> str:
        return hashlib.sha256(identity.encode() + b"\0" + doc.encode("utf-8", "surrogatepass")).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        con = self._connect()
        try:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start: start + 500])
                q = f"SELECT key, vec FROM features WHERE key IN ({','.join('?' * len(chunk))})"
                for k, blob in con.execute(q, chunk):
                    found[k] = np.frombuffer(blob, dtype=np.float64).copy()
        finally:
            con.close()
        return found

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        con = self._connect()
        try:
            with con:
                con.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?)",
                                [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float64).tobytes())
                                 for k, v in zip(keys, vectors)])
        finally:
            con.close()


def featurize(docs: Sequence[str], featurizer=None, cache: FeatureCache | None = None, *, where: str = "docs") -> np.ndarray:
    """Features of ``docs`` as a float64 array of shape ``(len(docs), dim)``.

    Parameters
    ----------
    docs : sequence of str
    featurizer : object with ``identity`` and ``transform``, default :class:`HashingFeaturizer`
    cache : FeatureCache, optional
        Vectors already cached for this featurizer are read back; the rest are computed and stored.
    where : str
        Named in error messages (e.g. ``"pool 'web'"``).

    Raises
    ------
    DataError
        If a document is not a string or a feature is not finite.
    """
    featurizer = featurizer if featurizer is not None else HashingFeaturizer()
    if isinstance(docs, str) or not isinstance(docs, Sequence):
        raise DataError(f"Documents must be a list of strings. Got {type(docs).__name__} in {where}. Wrap a single text in a list.")
    for i, d in enumerate(docs):
        if not isinstance(d, str):
            raise DataError(f"Documents must be strings. Got {type(d).__name__} at index {i} of {where}. Decode or drop it.")
    if cache is None:
        feats = np.asarray(featurizer.transform(list(docs)), dtype=np.float64)
        _check_finite(feats, where, featurizer)
        return feats
    identity = featurizer.identity
    keys = [FeatureCache.key(d, identity) for d in docs]
    found = cache.get_many(keys)
    missing = sorted({k: i for i, k in enumerate(keys) if k not in found}.values())
    if missing:
        fresh = np.asarray(featurizer.transform([docs[i] for i in missing]), dtype=np.float64)
        _check_finite(fresh, where, featurizer, index=missing)
        cache.put_many([keys[i] for i in missing], fresh)
        found.update({keys[i]: v for i, v in zip(missing, fresh)})
    feats = np.stack([found[k] for k in keys]) if keys else np.zeros((0, 0))
    _check_finite(feats, where, featurizer)
    return feats


def _check_finite(feats: np.ndarray, where: str, featurizer, index=None) -> None:
    if feats.ndim != 2:
        raise DataError(f"Features must have shape (n_docs, dim). Got shape {feats.shape} from {featurizer.identity} on {where}.")
    bad = np.flatnonzero(~np.isfinite(feats).all(axis=1))
    if bad.size:
        first = int(index[bad[0]]) if index is not None else int(bad[0])
        raise DataError(
            f"Features must be finite. Got NaN/inf for {bad.size} document(s) of {where} (first: index {first}) from "
            f"featurizer {featurizer.identity}. Drop or fix those documents, or check the featurizer/model weights."
        )
