"""Scores cached by content: the same pools, target, method and settings give the same key.

A key hashes the content keys of every source (file bytes and read settings),
the method and every setting that changes the scores. Entries are written
atomically, so a killed run leaves either a whole entry or none.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from ..io import default_cache_dir
from ..errors import StoreError
from ..io import atomic_write_bytes

SCORES_VERSION = "select-v2"  # bump when a scorer's output changes for the same inputs (v2: classifier subwords)


def score_key(settings: dict, source_keys: list[tuple[str, str]]) -> str:
    """A content key for a scoring job: ``settings`` (JSON-able) and ``(name, content key)`` of each source."""
    blob = json.dumps({"v": SCORES_VERSION, "settings": settings, "sources": source_keys}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class ScoreCache:
    """``{key: scores}`` on disk under ``<cache>/selection``; ``root=None`` uses the mixopt cache directory."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir() / "selection"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError):  # a corrupt entry only costs a recomputation
            p.unlink(missing_ok=True)
            return None

    def put(self, key: str, scores: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(scores, dtype=np.float64), allow_pickle=False)
        try:
            atomic_write_bytes(self.path(key), buf.getvalue())
        except StoreError:
            return  # a read-only cache only costs time
