"""A quality pool's documents: read from the pool's own file, or the domain's documents inside its score bucket.

Sizing a pool (`mixopt.planning.quality`, `mixopt.planning.pool_sources`) and training on it
(`mixopt.runs.pool_runs`) both read its documents here. :func:`kept_pools_data` builds the
:class:`~mixopt.data.types.DomainSet` a plan's kept pools train on (in `mixopt.verify`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import DomainSpec, QualityPool
from ..errors import ConfigError, DataError
from .domains import validation_texts
from .sources import load_column, load_dataset_of, load_documents
from .tokenize import Tokenizer
from .types import DomainSet, TokenizedDomain


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


def token_digest(*arrays: np.ndarray, extra: str = "") -> str:
    """A 24-hex fingerprint of token arrays (their bytes) and a label ``extra``: a pool-built domain's fingerprint."""
    h = hashlib.sha256(extra.encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:24]


@dataclass(frozen=True)
class KeptPools:
    """What one pooled domain of a plan trains on in `verify` (:func:`kept_pools_data`): its kept pools' documents
    (``tokens`` of them), or the whole domain where a kept pool has no documents of its own (``why``)."""

    domain: str
    pools: tuple[str, ...]  # the kept pools, as the plan names them
    domain_tokens: int  # the whole domain's training tokens
    tokens: int | None = None  # training tokens of the kept pools together; None: the domain trains whole
    documents: int = 0
    validation_dropped: int = 0  # documents of the pools that the domain's validation split holds (left out)
    why: str = ""  # why the domain trains whole
    domain_documents: int = 0  # the whole domain's training documents (its mean document, for an adopted no-pools plan)

    def to_dict(self) -> dict:
        return {"pools": list(self.pools), "trained_on": "whole domain" if self.tokens is None else "kept pools",
                "tokens": self.tokens, "documents": self.documents, "domain_tokens": self.domain_tokens,
                "domain_documents": self.domain_documents,
                **({"validation_dropped": self.validation_dropped} if self.validation_dropped else {}),
                **({"why": self.why} if self.why else {})}


def source_pool(name: str, where: Mapping) -> QualityPool | None:
    """A kept pool as a plan records where it is (``provenance.pool_sources``: a file, a score bucket or a share); None
    for a share, which has no documents of its own."""
    if where.get("path") is not None:
        return QualityPool(name=name, path=str(where["path"]), text_field=where.get("text_field"))
    if where.get("quality_field") is not None or where.get("min_score") is not None or where.get("max_score") is not None:
        return QualityPool(name=name, min_score=where.get("min_score"), max_score=where.get("max_score"))
    return None


def kept_pools_data(data: DomainSet, kept: Mapping[str, Sequence[str]], sources: Mapping[str, Mapping[str, Mapping]],
                    specs: Sequence[DomainSpec], *, tokenizer: str, val_fraction: float,
                    max_documents: int | None = None) -> tuple[DomainSet, list[KeptPools]]:
    """``data`` with each pooled domain's training split replaced by its kept pools' documents (``kept``: the plan's
    ``pools``; ``sources``: its ``provenance.pool_sources``), so a run trains what the plan says; its validation split
    stays the domain's, so ``val/DOMAIN`` is measured on the same text as for the whole domain. Pool documents that the
    domain's validation split holds (:func:`~mixopt.data.domains.validation_texts` at ``val_fraction``) are left out.

    A domain whose kept pools include a share (no documents of its own), or whose sources the plan does not record,
    keeps its whole training split, and its :class:`KeptPools` says why. The pooled domains get their own fingerprints,
    so the returned set's fingerprint (part of every run id) differs from ``data``'s wherever a domain trains on pools."""
    by_name = {s.name: s for s in specs}
    tok = Tokenizer(tokenizer)
    domains, out = dict(data.domains), []
    for d in sorted(kept):
        names = tuple(kept[d])
        if d not in data.domains or not names:
            continue
        whole = data.domains[d]
        where = sources.get(d) or {}
        spec = by_name.get(d)
        pools = {n: source_pool(n, where[n]) if n in where else None for n in names}
        missing = [n for n in names if n not in where]
        shares = [n for n in names if n in where and pools[n] is None]
        why = (f"the plan does not record where pool(s) {', '.join(missing)} are (provenance.pool_sources; propose it "
               "again)" if missing else
               f"pool(s) {', '.join(shares)} are a share of the domain, with no documents of their own" if shares else
               "the config does not list the domain's data" if spec is None else "")
        if why:
            out.append(KeptPools(d, names, whole.unique_tokens, why=why, domain_documents=whole.n_docs_train))
            continue
        fields = {where[n].get("quality_field") for n in names if where[n].get("path") is None}
        bucket_spec = spec.model_copy(update={"quality_field": fields.pop()}) if len(fields) == 1 else spec
        docs: list[str] = []
        for n in names:
            docs += pool_documents(d, pools[n], bucket_spec, max_documents)
        held = validation_texts(spec, val_fraction, max_documents)
        train = [t for t in docs if t not in held]
        if not train:
            raise DataError(f"The plan's kept pools of domain '{d}' ({', '.join(names)}) hold no documents besides the "
                            "domain's validation documents. Select the pools from the domain's training documents "
                            "(mixopt select --config CONFIG), then propose again.")
        ids = tok.encode_documents(train)
        fp = token_digest(ids, extra=f"kept-pools|{d}|{','.join(names)}|{whole.fingerprint}|{tok.identity}")
        domains[d] = TokenizedDomain(d, ids, whole.val, len(train), whole.n_docs_val, fp)
        out.append(KeptPools(d, names, whole.unique_tokens, int(ids.shape[0]), len(train), len(docs) - len(train),
                              domain_documents=whole.n_docs_train))
    pooled = DomainSet(domains, data.vocab_size, data.eos_id, data.tokenizer, targets=dict(data.targets))
    return pooled, out
