"""Documents that two sources share: one digest per document, and the pairs of sources whose digests meet.

Used for training domains (here, from their token arrays), for quality pools (``selection``, from their texts) and
for the pools a planner sizes, so that every "these hold the same documents" warning counts the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np


def document_keys(tokens: np.ndarray, eos_id: int) -> set[bytes]:
    """A digest of each non-empty document of a token array in which every document is followed by ``eos_id``."""
    ends = np.flatnonzero(tokens == eos_id)
    starts = np.concatenate(([0], ends[:-1] + 1)) if ends.size else np.zeros(0, dtype=np.int64)
    raw, size = tokens.tobytes(), tokens.itemsize
    return {hashlib.sha1(raw[s * size:e * size]).digest() for s, e in zip(starts.tolist(), ends.tolist()) if e > s}


def shared_documents(keys: Mapping[str, set[bytes]], *, label: str = "") -> list[tuple[str, str, str]]:
    """Each pair of sources (name -> set of document digests) that share documents, as ``(a, b, said)``: ``said`` is
    "N document(s) (x% of LABEL'a', y% of LABEL'b')" for a one-line warning."""
    names, out = list(keys), []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if n := len(keys[a] & keys[b]):
                out.append((a, b, f"{n} document(s) ({n / max(len(keys[a]), 1):.1%} of {label}'{a}', "
                                  f"{n / max(len(keys[b]), 1):.1%} of {label}'{b}')"))
    return out
