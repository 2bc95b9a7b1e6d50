"""Where a domain's quality pool files come from: the domain's own data, without its validation documents.

A quality pool stands for part of its domain: the plan weighs the domain, counts its epochs on the domain's tokens and
predicts ``val/DOMAIN``, the domain's hash-held-out documents (:func:`~mixopt.data.domains.is_validation`). Pool files
that hold other text, or that hold those validation documents (a selection made with ``--keep-validation-docs``, by
an older mixopt, or by hand), break that without a sign. :func:`pool_file_notes` says so, one line per domain and problem.

Where the files came from is read, when it can be, from the ``selection.json`` that ``mixopt select`` writes beside
them (the path it read for the pool, and the val_fraction it held out): a pool selected from the domain's own files
needs no reading of the domain. Otherwise up to :data:`DOMAIN_CHECK_DOCS` of the domain's documents are read and the
first :data:`POOL_SAMPLE_DOCS` documents of each pool file looked up among them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..config import DomainPools, DomainSpec, QualityPool, domain_pools_from_dict
from ..data.domains import is_validation
from ..data.sources import load_documents, resolve_files
from ..errors import MixoptError
from ..runs.pool_runs import pool_documents
from ..selection.output import MANIFEST

POOL_SAMPLE_DOCS = 2000  # documents read from the head of each pool file for the checks
DOMAIN_CHECK_DOCS = 200_000  # documents of the domain the pools' documents are looked up in (no manifest to go by)
MIN_FROM_DOMAIN = 0.5  # below this share of pool documents found in the domain's data, the pools are other data
_SELECTED = re.compile(r"^(?P<pool>.+)\.(?:q\d+|kept|scored)\.jsonl$")


def pool_file_notes(pools: Mapping[str, object], specs: Sequence[DomainSpec], val_fraction: float) -> list[str]:
    """One line per domain whose pool files are not (all) its own data, or hold its validation documents.

    ``pools``: ``propose.pools`` (domain -> :class:`~mixopt.config.DomainPools` or its dict); ``specs``: the config's
    domain specs; ``val_fraction``: the config's ``data.val_fraction``. Pools of a domain the specs do not list,
    and files that cannot be read, are left to the planner, which reads them next and says what is wrong.
    """
    by_name = {s.name: s for s in specs}
    notes = []
    for domain in sorted(pools):
        spec = by_name.get(domain)
        try:
            dp = pools[domain] if isinstance(pools[domain], DomainPools) else domain_pools_from_dict(pools[domain], where=domain)
            files = [p for p in dp.pools if p.path is not None]
            if spec is not None and files:
                notes += _domain_notes(domain, files, spec, val_fraction)
        except (MixoptError, OSError):
            continue
    return notes


def _domain_notes(domain: str, files: list[QualityPool], spec: DomainSpec, val_fraction: float) -> list[str]:
    selected = {p.name: _selected_from(p) for p in files}  # (the path select read, its manifest) or None
    same = {p.name: selected[p.name] is not None and _same_files(selected[p.name][0], spec) for p in files}
    docs = {p.name: pool_documents(domain, p, spec, POOL_SAMPLE_DOCS) for p in files}
    notes, other = [], []
    unsure = [p.name for p in files if not same[p.name]]
    if unsure:
        known = {_key(d) for d in load_documents(spec, DOMAIN_CHECK_DOCS)}
        for name in unsure:
            found = sum(_key(d) in known for d in docs[name])
            if found >= MIN_FROM_DOMAIN * len(docs[name]):
                same[name] = True
            else:
                other.append((name, found, len(docs[name])))
    if other:
        found, total = sum(f for _, f, _ in other), sum(t for *_, t in other)
        read = sorted({selected[n][0] for n, *_ in other if selected[n] is not None})
        notes.append(f"domain '{domain}': its quality pool file(s) {', '.join(n for n, *_ in other)} are not the domain's "
                     f"data: {found} of the {total} documents read from them occur in {spec.path}"
                     f"{' (mixopt select read ' + ', '.join(read) + ')' if read else ''}. The plan weighs the domain's data, "
                     f"counts its epochs and predicts val/{domain} on it, but training on the pools reads other text. Select "
                     f"from the domain's own data (mixopt select --pool {domain}={spec.path}), or add the pools' data as a domain")
    leaks = {}
    for p in files:
        manifest = selected[p.name][1] if selected[p.name] is not None else {}
        if not same[p.name] or manifest.get("val_fraction") == val_fraction:  # select held these out already
            continue
        n_val = sum(is_validation(d, val_fraction) for d in docs[p.name])
        if n_val:
            leaks[p.name] = n_val
    if leaks:
        capped = any(len(docs[n]) >= POOL_SAMPLE_DOCS for n in leaks)
        notes.append(f"domain '{domain}': its quality pool file(s) hold {sum(leaks.values())} of the domain's validation "
                     f"documents ({', '.join(f'{n} {c}' for n, c in leaks.items())}"
                     f"{f', in the first {POOL_SAMPLE_DOCS} of each file' if capped else ''}; by hash, data.val_fraction "
                     f"{val_fraction:g}): training on the pools trains on the text val/{domain} is measured on. Select them "
                     "again with `mixopt select` (without --keep-validation-docs), which leaves those documents out of the buckets")
    return notes


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


def _same_files(path: str, spec: DomainSpec) -> bool:
    """Whether ``path`` names the same local files as the domain's spec (a hub id: the same id)."""
    try:
        ours = {f.resolve() for f in resolve_files(DomainSpec(name=spec.name, path=path))}
        theirs = {f.resolve() for f in resolve_files(spec)}
    except MixoptError:
        return False
    return ours == theirs if ours or theirs else path == spec.path


def _key(doc: str) -> bytes:
    return hashlib.sha1(doc.encode("utf-8", errors="replace")).digest()
