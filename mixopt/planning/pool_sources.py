"""Where a domain's quality pool files come from: the domain's own data, without its validation documents.

A quality pool stands for part of its domain: the plan weighs the domain, counts its epochs on the domain's tokens and
predicts ``val/DOMAIN``, the domain's held-out documents (:func:`~mixopt.data.domains.validation_mask`: by hash, with
a tiny domain's fallback). Pool files that hold other text, or that hold those validation documents (a selection made
with ``--keep-validation-docs``, by an older mixopt, or by hand), or that leave out documents the domain trains on
(selected holding out a larger val_fraction than the config's), break that without a sign. :func:`pool_file_notes`
says so, one line per domain and problem.

Where the files came from is read, when it can be, from the ``selection.json`` that ``mixopt select`` writes beside
them (the path it read for the pool, and the val_fraction it held out): a pool selected from the domain's own files
needs no reading of the domain, and one selected from some of them (a shard of a sharded domain) none either.
Otherwise the domain's documents are read (all of them, or a seeded uniform sample of :data:`DOMAIN_CHECK_DOCS`) and
the first :data:`POOL_SAMPLE_DOCS` documents of each pool file looked up among them; where a sample is too small to
tell other data from the domain's, nothing is said.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..config import DomainPools, DomainSpec, QualityPool, domain_pools_from_dict
from ..data.domains import is_validation, validation_texts
from ..data.sources import load_dataset_of, load_documents, resolve_files, utf8_errors
from ..errors import MixoptError
from ..data.pools import pool_documents
from ..selection.output import MANIFEST
from ..selection.read import text_keys
from .quality import POOL_SAMPLE_DOCS  # documents of the head of each pool file the checks look up

DOMAIN_CHECK_DOCS = 200_000  # documents of the domain the pools' documents are looked up in (no manifest to go by)
MIN_FROM_DOMAIN = 0.5  # below this share of the pool documents expected in the domain's data read, the pools are other data
MIN_EXPECTED = 30  # pool documents expected among those read of the domain, at least, to say the pools are other data
_SELECTED = re.compile(r"^(?P<pool>.+)\.(?:q\d+|kept|scored)\.jsonl$")


def pool_file_notes(pools: Mapping[str, object], specs: Sequence[DomainSpec], val_fraction: float,
                    config: str | None = None, max_documents: int | None = None,
                    heads: Mapping[str, Mapping[str, list[str]]] | None = None) -> list[str]:
    """One line per domain whose pool files are not (all) its own data, hold its validation documents, or were
    selected holding out another val_fraction than the config's.

    ``pools``: ``propose.pools`` (domain -> :class:`~mixopt.config.DomainPools` or its dict); ``specs``: the config's
    domain specs; ``val_fraction``: the config's ``data.val_fraction``; ``config``: the sweep config as the user names
    it (the fixes pass it to ``mixopt select --config``, which holds out its val_fraction); ``max_documents``: the
    config's ``data.max_documents`` (the domain's split is made of its first documents); ``heads``: ``{domain: {pool:
    its first documents}}`` where the planner read the files already (:attr:`~mixopt.planning.quality.PooledDomain.heads`),
    else each file's first :data:`POOL_SAMPLE_DOCS` are read here. Pools of a domain the specs do not list, and files
    that cannot be read, are left to the planner, which reads them and says what is wrong.
    """
    by_name = {s.name: s for s in specs}
    notes = []
    for domain in sorted(pools):
        spec = by_name.get(domain)
        try:
            dp = pools[domain] if isinstance(pools[domain], DomainPools) else domain_pools_from_dict(pools[domain], where=domain)
            files = [p for p in dp.pools if p.path is not None]
            if spec is not None and files:
                notes += _domain_notes(domain, files, spec, val_fraction, config or "CONFIG", max_documents,
                                       (heads or {}).get(domain, {}))
        except (MixoptError, OSError):
            continue
    return notes


def _domain_notes(domain: str, files: list[QualityPool], spec: DomainSpec, val_fraction: float, config: str,
                  max_documents: int | None, heads: Mapping[str, list[str]]) -> list[str]:
    selected = {p.name: _selected_from(p) for p in files}  # (the path select read, its manifest) or None
    same = {p.name: selected[p.name] is not None and _within_domain(selected[p.name][0], spec) for p in files}
    docs = {p.name: list(heads[p.name][:POOL_SAMPLE_DOCS]) if p.name in heads
            else pool_documents(domain, p, spec, POOL_SAMPLE_DOCS) for p in files}
    notes, other = [], []
    unsure = [p.name for p in files if not same[p.name]]
    if unsure:
        known, rate = _domain_keys(spec)
        for name in unsure:
            found = sum(k in known for k in text_keys(docs[name], unique=False))
            expected = rate * len(docs[name])  # found if the pool is the domain's data (all of it when rate is 1)
            if found >= MIN_FROM_DOMAIN * expected:
                same[name] = True
            elif rate == 1.0 or expected >= MIN_EXPECTED:  # else too little of the domain was read to tell: nothing is said
                other.append((name, found, len(docs[name]), expected))
    if other:
        found, total = sum(o[1] for o in other), sum(o[2] for o in other)
        expected = sum(o[3] for o in other)
        sample = "" if expected >= total else f" (a uniform sample of the domain; about {expected:.0f} if they were its data)"
        read = sorted({selected[o[0]][0] for o in other if selected[o[0]] is not None})
        notes.append(f"domain '{domain}': its quality pool file(s) {', '.join(o[0] for o in other)} are not the domain's "
                     f"data: {found} of the {total} documents read from them occur in {spec.path}{sample}"
                     f"{' (mixopt select read ' + ', '.join(read) + ')' if read else ''}. The plan weighs the domain's data, "
                     f"counts its epochs and predicts val/{domain} on it, but training on the pools reads other text. Select "
                     f"from the domain's own data (mixopt select --pool {domain}={spec.path}), or add the pools' data as a domain")
    again = (f"Select them again with `mixopt select --config {config}` and the selection's other options (without "
             f"--keep-validation-docs), which leaves the documents data.val_fraction {val_fraction:g} holds out of the buckets")
    leaks, shifted = {}, {}  # shifted: selected holding out another (numeric) val_fraction -> {pool: validation docs}
    held_out, read = None, False  # the domain's validation texts (its split's own rule), read once when needed
    for p in files:
        if not same[p.name]:
            continue
        held = (selected[p.name][1] if selected[p.name] is not None else {}).get("val_fraction")
        if held == val_fraction:  # select held these out already
            continue
        n_val = 0
        if not _number(held) or held < val_fraction:
            if not read:
                held_out, read = _validation_texts(spec, val_fraction, max_documents), True
            n_val = sum(d in held_out if held_out is not None else is_validation(d, val_fraction) for d in docs[p.name])
        if _number(held):
            shifted.setdefault(float(held), {})[p.name] = n_val
        elif n_val:
            leaks[p.name] = n_val
    for held, pools in sorted(shifted.items()):
        if held > val_fraction:  # the documents hashed in [val_fraction, held) are in no pool, yet train in the domain
            lost = (held - val_fraction) / (1 - val_fraction)
            what = (f"the documents that hash between the two (by hash about {lost:.1%} of the domain's training documents) "
                    "are in no pool, so the plan counts tokens of the domain that training on the pools never reads")
        else:
            n = sum(pools.values())
            what = (f"they hold {n} of the domain's validation documents{_capped(pools, docs)}, which training on the pools "
                    f"trains on, though val/{domain} is measured on them" if n else
                    "they may hold documents the config holds out for validation (none found in the documents read)")
        notes.append(f"domain '{domain}': its quality pool file(s) {', '.join(pools)} were selected holding out "
                     f"val_fraction {held:g} (their {MANIFEST}), but the config's data.val_fraction is {val_fraction:g}: "
                     f"{what}. {again}")
    if leaks:
        notes.append(f"domain '{domain}': its quality pool file(s) hold {sum(leaks.values())} of the domain's validation "
                     f"documents ({', '.join(f'{n} {c}' for n, c in leaks.items())}{_capped(leaks, docs)}; held out at "
                     f"data.val_fraction {val_fraction:g}): training on the pools trains on the text val/{domain} is "
                     f"measured on. {again}")
    return notes


def _capped(pools: Mapping[str, int], docs: Mapping[str, list[str]]) -> str:
    return f", in the first {POOL_SAMPLE_DOCS} of each file" if any(len(docs[n]) >= POOL_SAMPLE_DOCS for n in pools) else ""


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _validation_texts(spec: DomainSpec, val_fraction: float, max_documents: int | None) -> set[str] | None:
    """The texts the domain's validation split holds: :func:`~mixopt.data.domains.validation_texts` (the split's one
    rule, with its tiny-domain fallback) over the documents the domain is tokenized from (its first ``max_documents``).
    None for a domain of more than :data:`DOMAIN_CHECK_DOCS` documents, which is not read whole: the caller applies
    the hash rule (:func:`~mixopt.data.domains.is_validation`), which is the split's for every domain that size
    except one of a few distinct texts all hashed to one side."""
    ds = load_dataset_of(spec)
    n = min(x for x in (max_documents, spec.max_documents, len(ds)) if x is not None)
    if n > DOMAIN_CHECK_DOCS:
        return None
    return validation_texts(spec, val_fraction, max_documents)


def _domain_keys(spec: DomainSpec) -> tuple[set[bytes], float]:
    """Digests of the domain's documents, and the share of its records they were read from: all of them, or a seeded
    uniform sample of :data:`DOMAIN_CHECK_DOCS` records (a head would miss every pool drawn from a later shard)."""
    ds = load_dataset_of(spec)
    n = min(len(ds), spec.max_documents) if spec.max_documents is not None else len(ds)
    if n <= DOMAIN_CHECK_DOCS:
        return text_keys(load_documents(spec, n)), 1.0
    rows = np.sort(np.random.default_rng(0).choice(n, DOMAIN_CHECK_DOCS, replace=False))
    with utf8_errors(f"Domain '{spec.name}'", spec):
        values = ds.select(rows)[spec.text_field]
    return text_keys([d for d in values if isinstance(d, str)]), DOMAIN_CHECK_DOCS / n


def _selected_from(pool: QualityPool) -> tuple[str, dict] | None:
    """The path ``mixopt select`` read for this pool file, and the selection's manifest; None when no manifest says."""
    m = _SELECTED.match(Path(str(pool.path)).name)
    if m is None:
        return None
    try:
        manifest = json.loads((Path(str(pool.path)).expanduser().parent / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    read = manifest.get("pools") if isinstance(manifest, dict) else None
    source = read.get(m.group("pool")) if isinstance(read, dict) else None
    return (str(source), manifest) if isinstance(source, str) else None


def _within_domain(path: str, spec: DomainSpec) -> bool:
    """Whether ``path`` names some of the domain's local files (one shard of a sharded domain, or all; a hub id: the
    same id)."""
    try:
        ours = {f.resolve() for f in resolve_files(DomainSpec(name=spec.name, path=path))}
        theirs = {f.resolve() for f in resolve_files(spec)}
    except MixoptError:
        return False
    return bool(ours) and ours <= theirs if ours or theirs else path == spec.path
