"""Turn a DataConfig into a DomainSet: load, split by hash, tokenize, cache.

Validation documents are chosen by a hash of their text, so the split is the
same on every machine and no training run ever sees them (a tiny domain's
fallback has one limit: :func:`split_documents`). Token shards are
cached under a key made from the source bytes, tokenizer and split settings, so
a second sweep does not re-tokenize.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import warnings
from pathlib import Path

import numpy as np

from ..config import DataConfig, DomainSpec
from ..errors import DataError
from ..io import atomic_write_bytes, default_cache_dir
from .embedded import embedded_domains, embedded_path
from .overlap import MIN_SHARED_SHARE, document_keys, shared_tokens
from .sources import load_documents, source_keys
from .tokenize import Tokenizer
from .types import DomainSet, TokenizedDomain

CACHE_VERSION = "v1"


def domain_specs(cfg: DataConfig) -> list[DomainSpec]:
    """Training domains the config names: embedded ones (maybe a subset) plus listed ones."""
    specs: list[DomainSpec] = []
    if cfg.corpus == "embedded":
        known = embedded_domains()
        wanted = cfg.include if cfg.include is not None else known
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise DataError(f"Unknown embedded domains {unknown}; the embedded corpus has {known}. Fix data.include.")
        listed = {d.name for d in cfg.domains}
        specs += [DomainSpec(name=d, path=str(embedded_path(d)), format="jsonl") for d in sorted(wanted) if d not in listed]
        if cfg.domains and "corpus" not in cfg.model_fields_set and cfg.include is None:
            warnings.warn(_default_corpus_note(known, sorted(listed)), stacklevel=2)
    specs += list(cfg.domains)
    if not specs:
        raise DataError("The config selects no domains. List some under data.domains or data.include.")
    return sorted(specs, key=lambda s: s.name)


def _default_corpus_note(embedded: list[str], listed: list[str]) -> str:
    """The warning for a config that lists its own domains but leaves ``data.corpus`` at its default, ``embedded``."""
    replaced = [d for d in listed if d in embedded]
    kept = [d for d in embedded if d not in listed]
    return (f"data.corpus is not set, so it is 'embedded': the embedded corpus's {', '.join(kept)} are trained beside "
            f"your {len(listed)} listed domain(s)"
            + (f", and yours replace its {', '.join(replaced)}" if replaced else "")
            + ". Write `corpus: none` under data: to train only your domains, or `corpus: embedded` to keep both "
            "(this warning then stops)")


def embedded_names(cfg: DataConfig) -> list[str]:
    """The training domains of ``cfg`` read from the embedded corpus (those no listed domain of the same name replaces)."""
    if cfg.corpus != "embedded":
        return []
    listed = {d.name for d in cfg.domains}
    return sorted(d for d in (cfg.include if cfg.include is not None else embedded_domains()) if d not in listed)


def is_validation(doc: str, val_fraction: float) -> bool:
    """Deterministic hash split: a document is held out iff its hash falls under val_fraction."""
    h = hashlib.sha256(doc.encode("utf-8", errors="replace")).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < val_fraction


def split_documents(docs: list[str], val_fraction: float, name: str) -> tuple[list[str], list[str]]:
    """(train, val) documents of a domain, each in source order: a document is held out iff :func:`is_validation`, so
    every copy of a text lands on one side (:func:`validation_mask`, with its rule for a tiny domain). Fewer than 2
    distinct texts cannot be split."""
    if len(set(docs)) < 2:
        raise DataError(f"Domain '{name}' has {len(set(docs))} distinct document(s) ({len(docs)} in all); at least 2 "
                        "distinct documents are needed to hold one out for validation. Add data.")
    mask = validation_mask(docs, val_fraction)
    return [d for d, v in zip(docs, mask) if not v], [d for d, v in zip(docs, mask) if v]


def validation_mask(docs: list[str], val_fraction: float) -> list[bool]:
    """Which of ``docs`` (a domain's documents) its validation split holds: those :func:`is_validation` holds out.

    A tiny domain whose hash split leaves a side empty moves one text, every copy of it, onto that side: the text with
    the smallest hash into validation, or the one with the largest back into training. Such a held-out text may still
    be in another domain's training split, where the hash puts it; choosing it in view of the other domains would tie
    each domain's split (and its token cache) to the others. Fewer than 2 distinct texts: the hash split as it is.
    `mixopt select` holds the same documents out of a pool's buckets, so a domain whose data is the pool never trains
    on its validation text.
    """
    mask = [is_validation(d, val_fraction) for d in docs]
    texts = set(docs)
    if all(mask) == any(mask) and len(texts) >= 2:  # one side empty
        moved = (max if mask[0] else min)(texts, key=lambda t: hashlib.sha256(t.encode("utf-8", "replace")).digest())
        mask = [(d != moved) if mask[0] else (d == moved) for d in docs]
    return mask


def validation_texts(spec: DomainSpec, val_fraction: float, max_documents: int | None = None) -> set[str]:
    """The texts a domain's validation split holds: :func:`validation_mask` over the documents the domain is tokenized
    from (its first ``max_documents``: the config's ``data.max_documents``)."""
    docs = load_documents(spec, max_documents)
    return {d for d, v in zip(docs, validation_mask(docs, val_fraction)) if v}


def domain_keys(spec: DomainSpec, tok: Tokenizer, cfg: DataConfig, *, evaluation_only: bool = False) -> list[str]:
    """A domain's cache key, then the keys older mixopt gave it: the fingerprints a store records, without tokenizing."""
    settings = f"{tok.identity}|{cfg.val_fraction}|{cfg.max_documents}|{evaluation_only}"
    return [hashlib.sha256(f"{CACHE_VERSION}|{k}|{settings}".encode()).hexdigest()[:24] for k in source_keys(spec)]


def cache_dir(cfg: DataConfig) -> Path:
    """The token cache folder: ``data.cache_dir``, else the default (``MIXOPT_CACHE``)."""
    return Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()


def tokenize_domain(spec: DomainSpec, tok: Tokenizer, cfg: DataConfig, *, evaluation_only: bool = False) -> TokenizedDomain:
    """Load, split and tokenize one domain, reading the cache when possible."""
    key, *legacy = domain_keys(spec, tok, cfg, evaluation_only=evaluation_only)
    cache = cache_dir(cfg)
    shard = cache / "tokens" / f"{key}.npz"
    if shard.exists():
        try:
            with np.load(shard) as z:
                return TokenizedDomain(spec.name, z["train"], z["val"], int(z["n_train"]), int(z["n_val"]), key, *legacy)
        except Exception:
            shard.unlink(missing_ok=True)  # corrupt cache entry: rebuild it
    docs = load_documents(spec, cfg.max_documents)
    if evaluation_only:
        train, val = [], docs
    else:
        train, val = split_documents(docs, cfg.val_fraction, spec.name)
    dom = TokenizedDomain(spec.name, tok.encode_documents(train), tok.encode_documents(val), len(train), len(val), key, *legacy)
    _write_cache(shard, train=dom.train, val=dom.val, n_train=dom.n_docs_train, n_val=dom.n_docs_val)
    return dom


def _write_cache(path: Path, **arrays) -> None:
    """Write ``arrays`` to the cache file ``path`` (an ``.npz``, atomically); a cache that cannot be written (read-only)
    only costs time."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except Exception:
        pass


def load_domain_set(cfg: DataConfig, *, progress=None, store_fingerprint: str | None = None) -> DomainSet:
    """Every training domain and target of the config, tokenized.

    ``store_fingerprint``: the data fingerprint a run store recorded, adopted when it is one older mixopt made of this
    data (:meth:`DomainSet.adopt`).
    """
    tok = Tokenizer(cfg.tokenizer)
    specs = domain_specs(cfg)
    domains = {}
    for i, spec in enumerate(specs):
        domains[spec.name] = tokenize_domain(spec, tok, cfg)
        if progress:
            progress(i + 1, len(specs) + len(cfg.targets))
    targets = {}
    for j, spec in enumerate(cfg.targets):
        targets[spec.name] = tokenize_domain(spec, tok, cfg, evaluation_only=True)
        if progress:
            progress(len(specs) + j + 1, len(specs) + len(cfg.targets))
    data = DomainSet(domains=domains, vocab_size=tok.vocab_size, eos_id=tok.eos_id, tokenizer=tok.identity, targets=targets)
    data.adopt(store_fingerprint)
    for note in data_notes(data, specs, cache_dir(cfg)):
        warnings.warn(note, stacklevel=2)
    return data


#: Fewer validation tokens than this make a domain's val/* loss (and its share of mean:all-domains) mostly noise.
MIN_VAL_TOKENS = 1000


def _cached_document_keys(dom: TokenizedDomain, eos_id: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`.overlap.document_keys` of a domain's training tokens, kept beside its token cache (its fingerprint is the
    cache key), so a later load of the same data reads 16 bytes per document instead of hashing them again."""
    path = cache / "tokens" / f"{dom.fingerprint}.dockeys.npz" if cache is not None else None
    if path is not None and path.exists():
        try:
            with np.load(path) as z:
                if int(z["tokens"]) == dom.train.size:
                    return z["keys"], z["lengths"]
        except Exception:
            pass  # rebuilt below
    keys = document_keys(dom.train, eos_id)
    if path is not None:
        _write_cache(path, keys=keys[0], lengths=keys[1], tokens=dom.train.size)
    return keys


def data_notes(data: DomainSet, specs: list[DomainSpec], cache: Path | None = None) -> list[str]:
    """One line per problem the tokenized domains show: two training domains with the same documents, or sharing some
    of them (at least ``MIN_SHARED_SHARE`` of either's tokens, counted per document, :mod:`.overlap`; a plan would count
    their epochs apart, so the cap on repetition no longer holds for those documents), or a validation split under
    ``MIN_VAL_TOKENS`` tokens. ``cache``: the token cache folder (the documents' digests are kept there)."""
    notes = []
    paths = {s.name: s.path for s in specs}
    by_content: dict[tuple, list[str]] = {}
    for name, dom in data.domains.items():
        if dom.train.size:
            key = (dom.train.size, hashlib.sha256(dom.train.tobytes()).hexdigest(), dom.val.size)
            by_content.setdefault(key, []).append(name)
    same = [names for names in by_content.values() if len(names) > 1]
    for names in same:
        notes.append(f"domains {', '.join(names)} hold the same documents ({', '.join(sorted({str(paths[n]) for n in names}))}): "
                     "a plan counts their epochs apart, so the data repeats more than each one's epochs say. Keep one "
                     "of them under data.domains")
    # one domain of each identical group (said above), each against the others; a share under MIN_SHARED_SHARE of both
    # domains' tokens is boilerplate, not worth a line
    groups = {names[0]: names for names in by_content.values()}
    keys = {n: _cached_document_keys(data.domains[n], data.eos_id, cache) for n in sorted(groups)}
    for a, b in itertools.combinations(sorted(keys), 2):
        docs, tok_a, tok_b = shared_tokens(keys[a], keys[b])
        share_a, share_b = tok_a / max(data.domains[a].train.size, 1), tok_b / max(data.domains[b].train.size, 1)
        if docs and max(share_a, share_b) >= MIN_SHARED_SHARE:
            name_a, name_b = (f"'{n}'" + (f" (and {', '.join(groups[n][1:])}, the same)" if len(groups[n]) > 1 else "")
                              for n in (a, b))
            notes.append(f"domains {name_a} and {name_b} share {docs} training document(s), {share_a:.1%} of {a}'s "
                         f"training tokens and {share_b:.1%} of {b}'s: a plan counts their epochs apart, so those "
                         "documents repeat more than either's epochs say. Remove them from one domain's files")
    for name, dom in {**data.domains, **data.targets}.items():
        if dom.val.size < MIN_VAL_TOKENS:
            notes.append(f"{'target' if name in data.targets else 'domain'} '{name}' has {int(dom.val.size)} validation "
                         f"token(s) in {dom.n_docs_val} document(s): its loss is measured on too little text to rank "
                         f"mixtures. Add documents, or raise data.val_fraction (under {MIN_VAL_TOKENS} tokens is too few)")
    return notes


def domain_texts(data: DomainSet, tokenizer: str, *, max_docs: int = 200) -> dict[str, tuple[list[str], list[str]]]:
    """(train docs, val docs) text per domain and target, decoded from the token cache (targets have no train docs).

    The documents are the ones the trainer reads, in the same order, so featurizers see exactly the training data.
    """
    tok = Tokenizer(tokenizer)
    out = {}
    for name, dom in {**data.domains, **data.targets}.items():
        out[name] = (decode_documents(dom.train, tok, max_docs), decode_documents(dom.val, tok, max_docs))
    return out


def decode_documents(ids: np.ndarray, tok: Tokenizer, max_docs: int) -> list[str]:
    """The first ``max_docs`` documents of an eos-separated token array, as text."""
    ends = np.flatnonzero(ids == tok.eos_id)[:max_docs]
    starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else np.zeros(0, dtype=int)
    return [tok.decode(ids[a:b]) for a, b in zip(starts, ends)]
