"""Documents a target shares with the pools, and pools with each other: the checks `select` and `score` both run.

A pool that holds the target's own documents looks like the target to any scorer (DSIR, a classifier, an OT
distance): its scores are inflated. Two pools that share documents hold the same text twice. Both are found by a
digest of each text (:func:`~mixopt.selection.read.text_keys`) and said in one warning line each. (Training domains
that share documents are found from their tokens: :mod:`mixopt.data.overlap`.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..config import DomainSpec
from ..data.sources import load_dataset_of, utf8_errors
from .read import text_keys

BATCH = 10_000  # records hashed at a time by `all_text_keys`


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


def overlap_lines(pool_keys: Mapping[str, set[bytes]], target_keys: Sequence[bytes], *, shared_effect: str,
                  target_read: str = "") -> tuple[dict[str, int], list[str]]:
    """``(overlap, lines)``: how many of the target's documents (``target_keys``, one digest per non-empty target
    text) occur in each pool (``pool_keys``: pool -> the digests of its texts), and one warning line per pool that
    holds some and per pair of pools that share documents (``shared_effect``: what that does, and the fix).
    ``target_read``: said after the target's count when it is a sample (e.g. " read")."""
    overlap, lines = {}, []
    n = len(target_keys)
    for name, keys in pool_keys.items():
        if n_over := sum(k in keys for k in target_keys):
            overlap[name] = n_over
            lines.append(f"{n_over} of {n} target documents{target_read} also occur in pool '{name}' "
                         f"({100 * n_over / max(n, 1):.1f}%); their scores are inflated. Hold them out of the pool.")
    for a, b, said in shared_documents(pool_keys, label="pool "):
        lines.append(f"pools '{a}' and '{b}' share {said}: {shared_effect}")
    return overlap, lines


def all_text_keys(spec: DomainSpec, *, option: str) -> set[bytes]:
    """:func:`~mixopt.selection.read.text_keys` of every record of ``spec``, read in batches of :data:`BATCH` (only
    the digests are kept), for a source that was read as a sample (``score --max-docs``)."""
    where = f"{option} {spec.name}={spec.path}"
    ds = load_dataset_of(spec, where)
    keys: set[bytes] = set()
    with utf8_errors(where, spec):
        for batch in ds.iter(batch_size=BATCH):
            keys |= text_keys([t for t in batch[spec.text_field] if isinstance(t, str)])
    return keys
