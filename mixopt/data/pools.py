"""A quality pool's documents: read from the pool's own file, or the domain's documents inside its score bucket.

Readers only: sizing a pool (`mixopt.planning.quality`, `mixopt.planning.pool_sources`) and training on it
(`mixopt.runs.pool_runs`) both read its documents here.
"""

from __future__ import annotations

import re

import numpy as np

from ..config import DomainSpec, QualityPool
from ..errors import ConfigError, DataError
from .sources import load_column, load_dataset_of, load_documents


def scored_documents(domain: str, spec: DomainSpec, max_documents: int | None = None) -> tuple[list[str], np.ndarray]:
    """The domain's documents and their ``quality_field`` scores (NaN where missing); a non-numeric score is a
    one-line error naming the row."""
    field = spec.quality_field
    docs = load_documents(spec, max_documents)
    raw = load_column(spec, field, max_documents)
    scores = np.full(len(raw), np.nan)
    for i, v in enumerate(raw):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(f"Domain '{domain}': quality_field '{field}' must hold numbers. Got {v!r} in row {i} of "
                            f"{spec.path}. Point quality_field at a numeric column.")
        scores[i] = float(v)
    return docs, scores


def in_bucket(pool: QualityPool, scores: np.ndarray) -> np.ndarray:
    """Mask of the scores inside the pool's bucket ``min_score <= s < max_score`` (NaN is in none)."""
    lo = -np.inf if pool.min_score is None else pool.min_score
    hi = np.inf if pool.max_score is None else pool.max_score
    return (scores >= lo) & (scores < hi)


def pool_file_spec(domain: str, pool: QualityPool, spec: DomainSpec | None) -> DomainSpec:
    """How to read a pool's own file: its ``text_field``, else the domain's (``spec``), else ``text``. A missing text
    column is a one-line error that names the pool's ``text_field`` as the fix."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{domain}.{pool.name}")
    field = pool.text_field or (spec.text_field if spec else "text")
    file_spec = DomainSpec(name=name, path=str(pool.path), text_field=field)
    columns = load_dataset_of(file_spec).column_names
    if field not in columns:
        said = ("its `text_field`" if pool.text_field else f"the domain's text_field '{field}'" if spec else "the default 'text'")
        raise DataError(f"{pool.path} has no '{field}' column ({said}; columns: {columns}). Set `text_field: COLUMN` on "
                        f"pool '{pool.name}' in the pools file (beside its path), to the column that holds the text; "
                        "`mixopt select` writes it there.")
    return file_spec


def pool_documents(domain: str, pool: QualityPool, spec: DomainSpec | None, max_documents: int | None = None) -> list[str]:
    """The documents of one pool: its own file (read with the pool's ``text_field``, else the domain's), or the
    documents of the domain inside its score bucket."""
    where = f"Quality pool '{pool.name}' of domain '{domain}'"
    try:
        if pool.path is not None:
            return load_documents(pool_file_spec(domain, pool, spec), max_documents)
        if pool.is_bucket:
            if spec is None or not spec.quality_field:
                raise ConfigError(f"{where} is a score bucket, but the domain's data spec (with quality_field) is unknown here. "
                                  "Pass the sweep config that lists the domain, or give the pool a path.")
            docs, scores = scored_documents(domain, spec, max_documents)
            return [d for d, inside in zip(docs, in_bucket(pool, scores)) if inside]
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    raise ConfigError(f"{where} is sized by share (or pool_size) and has no documents of its own to train on. "
                      "Give it a path or a score bucket to measure it, or give its b and tau.")
