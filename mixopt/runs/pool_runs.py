"""Pool-value runs: proxies trained on one quality pool at several repetition counts, into the run store.

A pool's value under repetition (Goyal et al. 2024's ``b`` and ``tau``) is measured by training a proxy on
``U`` unique tokens of the pool for ``k * U`` tokens, ``k`` in ``repetitions`` (default 1, 2, 4, 8), and
reading its loss on a target's text (``target/NAME``). The fit lives in `mixopt.planning.pool_value`.

Each pool is its own one-domain :class:`~mixopt.data.types.DomainSet`:

* **train**: the first ``U`` tokens of the pool's documents in a seeded order (documents that also occur in
  the target are dropped first, so no run trains on the text it is scored on);
* **val** (``val/DOMAIN.POOL``, a diagnostic the fit does not use): the pool's next tokens, else its first ones;
* **target**: the evaluation text, whole.

So a run is an ordinary :class:`~mixopt.runs.record.RunSpec` (mixture ``{DOMAIN.POOL: 1.0}``, proxy tokens
``k * U``, one checkpoint at the end) trained by :func:`~mixopt.runs.sweep.execute_runs` (claim → train → put)
like any sweep run. Its id hashes the pool's tokens, the target, the proxy and the seed, so a rerun skips
finished runs. Labels are ``pool:DOMAIN.POOL@Kx`` (:data:`~mixopt.runs.table.POOL_LABEL`);
`runs.table.sweep_records` leaves them out of the runs models learn from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DomainPools, DomainSpec, ProxyConfig
from ..data.domains import decode_documents
from ..data.pools import (KeptPools, in_bucket, kept_pools_data, pool_documents, pool_file_spec,  # noqa: F401  (their home before data/pools.py)
                          scored_documents, source_pool, token_digest)
from ..data.sources import load_documents
from ..data.tokenize import Tokenizer
from ..data.types import DomainSet, TokenizedDomain
from ..errors import ConfigError, DataError
from ..mixtures import Mixture
from ..repetition_fit import MIN_POOL_FIT_POINTS
from .driver import check_store_dtype, recorded_dtype
from .record import RunSpec
from .store import RunStore
from .sweep import execute_runs
from .table import POOL_LABEL

DEFAULT_REPETITIONS = (1, 2, 4, 8)
VAL_TOKENS = 4096  # tokens of the pool's own diagnostic val split
Progress = Callable[[str, int, int], None]  # (label, done, total)


@dataclass(frozen=True)
class PoolTarget:
    """The text a pool's value is measured on (a domain's validation split, or a target set), by name."""

    name: str  # the metric is ``target/<name>``
    documents: list[str]


@dataclass
class PoolRuns:
    """What :func:`run_pool_runs` did: observations per pool and run counts.

    ``observations[pool]`` is ``(tokens trained, target losses, unique tokens)``, one entry per finished run.
    """

    observations: dict[str, tuple[np.ndarray, np.ndarray, float]]
    unique_tokens: int
    repetitions: tuple[int, ...]
    target: str
    planned: int = 0
    trained: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)  # "label: reason"
    excluded: dict[str, int] = field(default_factory=dict)  # pool -> documents dropped because the target holds them


def pool_label(domain: str, pool: str, k: int) -> str:
    return f"{POOL_LABEL}{domain}.{pool}@{k}x"


def check_repetitions(values: Sequence[int] | str, *, fit_option: str | None = None) -> tuple[int, ...]:
    """Repetition counts as sorted unique ints >= 1; ``"1,2,4,8"`` is accepted. One-line errors. ``fit_option`` (the
    option that gave them, e.g. ``--repetitions``): also refuse counts no pool's law can be fitted on (fewer than
    :data:`~mixopt.repetition_fit.MIN_POOL_FIT_POINTS`, or fewer than two past one epoch, k > 1), before any run trains."""
    items = [t.strip() for t in values.split(",")] if isinstance(values, str) else list(values)
    out = []
    for t in items:
        try:
            k = int(t)
            ok = float(t) == k
        except (TypeError, ValueError):
            ok = False
        if not ok or k < 1:
            raise ConfigError(f"Repetition counts must be whole numbers >= 1. Got {t!r} in {values!r}. Example: --repetitions 1,2,4,8.")
        out.append(k)
    if not out:
        raise ConfigError(f"Give at least one repetition count. Got {values!r}. Example: --repetitions 1,2,4,8.")
    out = sorted(set(out))
    repeated = sum(k > 1 for k in out)
    if fit_option is not None and (len(out) < MIN_POOL_FIT_POINTS or repeated < 2):
        raise ConfigError(f"{fit_option} {','.join(map(str, out))} trains {len(out)} run(s) per pool ({repeated} past one "
                          f"epoch), but a pool's law is fitted on >= {MIN_POOL_FIT_POINTS} runs, >= 2 of them past one epoch "
                          f"(k > 1): every pool would keep its T-MARS prior after training. Give >= {MIN_POOL_FIT_POINTS} "
                          f"counts, e.g. {fit_option} 1,2,4,8.")
    return tuple(out)


def _doc_key(doc: str) -> bytes:
    return hashlib.sha1(doc.encode("utf-8", errors="replace")).digest()


def target_from_data(data: DomainSet, name: str, tokenizer: str) -> PoolTarget:
    """A target set of ``data`` (all its documents), or a domain's validation split (named ``NAME-val``)."""
    tok = Tokenizer(tokenizer)
    if name in data.targets:
        return PoolTarget(name, decode_documents(data.targets[name].val, tok, max_docs=10 ** 9))
    if name in data.domains:
        return PoolTarget(f"{name}-val", decode_documents(data.domains[name].val, tok, max_docs=10 ** 9))
    raise ConfigError(f"Target '{name}' is neither a domain nor a target set of the data ({data.names + sorted(data.targets)}). "
                      "Name one of them, or pass a path of documents.")


def target_from_path(path: str, text_field: str = "text") -> PoolTarget:
    """A file (or folder) of documents, read like a domain; every document is evaluated."""
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(str(path)).name.split(".")[0]) or "target"
    try:
        return PoolTarget(stem, load_documents(DomainSpec(name=stem, path=str(path), text_field=text_field)))
    except DataError as exc:
        raise DataError(f"--target {path}: {exc}") from None


def target_domain(target: PoolTarget, tok: Tokenizer) -> TokenizedDomain:
    """The target as an evaluation-only domain (every document in ``val``)."""
    if not target.documents:
        raise DataError(f"The target '{target.name}' holds no documents to measure pools on. Point the target at non-empty text.")
    ids = tok.encode_documents(target.documents)
    return TokenizedDomain(target.name, np.zeros(0, dtype=ids.dtype), ids, 0, len(target.documents),
                           token_digest(ids, extra=f"target|{tok.identity}"))


def pool_domain(name: str, docs: list[str], tok: Tokenizer, unique_tokens: int, seed: int, where: str) -> TokenizedDomain:
    """``unique_tokens`` training tokens of ``docs`` in a seeded order, and a diagnostic val split."""
    if not docs:
        raise DataError(f"{where} holds no documents (after dropping those the target holds). Fill it or drop it.")
    order = np.random.default_rng(seed).permutation(len(docs))
    ids = tok.encode_documents([docs[i] for i in order])
    if unique_tokens > ids.shape[0]:
        raise ConfigError(f"The unique-token budget U={unique_tokens} is larger than {where} ({ids.shape[0]} tokens). "
                          f"Lower --unique-tokens to at most {ids.shape[0]}.")
    train = ids[:unique_tokens]
    rest = ids[unique_tokens:unique_tokens + VAL_TOKENS]
    val = rest if rest.shape[0] >= 2 else ids[:VAL_TOKENS]
    return TokenizedDomain(name, train, val, len(docs), 0, token_digest(train, val, extra=f"pool|{tok.identity}"))


def plan_pool_runs(domain: str, pool: str, data: DomainSet, proxy: ProxyConfig, repetitions: Sequence[int],
                   unique_tokens: int, seed: int) -> list[RunSpec]:
    """One run per repetition count ``k``: the pool's domain alone for ``k * unique_tokens`` tokens."""
    (name,) = data.names
    specs = []
    for k in repetitions:
        body = {**proxy.model_dump(mode="json"), "tokens": int(k * unique_tokens), "checkpoints": [1.0]}
        cfg = ProxyConfig.model_validate(body)
        specs.append(RunSpec(mixture=Mixture({name: 1.0}), proxy=cfg.model_dump(mode="json"),
                             data_fingerprint=data.fingerprint, seed=seed, label=pool_label(domain, pool, k)))
    return specs


def run_pool_runs(domain: str, pools: DomainPools, names: Sequence[str], target: PoolTarget, proxy: ProxyConfig,
                  store: RunStore, *, repetitions: Sequence[int] = DEFAULT_REPETITIONS, unique_tokens: int | None = None,
                  spec: DomainSpec | None = None, tokenizer: str = "bytes", seed: int = 0, max_documents: int | None = None,
                  threads: int | None = None, progress: Progress | None = None) -> PoolRuns:
    """Train (or find in ``store``) the pool-value runs of the pools ``names`` of ``domain``; their observations.

    ``unique_tokens`` (U) defaults to the smallest pool's tokens, capped at ``proxy.tokens // max(repetitions)``
    so the longest run costs at most one proxy run of the config. U must fit in every pool and cover one batch.
    """
    reps = check_repetitions(repetitions)
    by_name = {p.name: p for p in pools.pools}
    tok = Tokenizer(tokenizer)
    tdom = target_domain(target, tok)
    held = {_doc_key(d) for d in target.documents}
    docs, excluded = {}, {}
    for n in names:
        raw = pool_documents(domain, by_name[n], spec, max_documents)
        docs[n] = [d for d in raw if _doc_key(d) not in held]
        excluded[n] = len(raw) - len(docs[n])
    sizes = {n: sum(tok.count(d) for d in ds) for n, ds in docs.items()}
    empty = [n for n in names if not docs[n]]
    if empty:
        raise DataError(f"Quality pool '{empty[0]}' of domain '{domain}' holds no documents"
                        f"{' besides the target' if excluded[empty[0]] else ''}. Fill it or drop it.")
    step = proxy.batch_size * proxy.block_size
    if unique_tokens is None:
        unique_tokens = min(min(sizes.values()), proxy.tokens // max(reps))
        if unique_tokens < step:
            unique_tokens = min(min(sizes.values()), step)
    if not isinstance(unique_tokens, (int, np.integer)) or isinstance(unique_tokens, bool) or unique_tokens < 1:
        raise ConfigError(f"The unique-token budget U must be a whole number >= 1. Got {unique_tokens!r}. Pass --unique-tokens 65536.")
    smallest = min(sizes, key=sizes.get)
    if unique_tokens > sizes[smallest]:
        raise ConfigError(f"The unique-token budget U={unique_tokens} is larger than quality pool '{smallest}' of domain "
                          f"'{domain}' ({sizes[smallest]} tokens). Lower --unique-tokens to at most {sizes[smallest]}.")
    if unique_tokens < step:
        raise ConfigError(f"The unique-token budget U={unique_tokens} is less than one proxy batch ({proxy.batch_size} x "
                          f"{proxy.block_size} = {step} tokens). Raise --unique-tokens or use a smaller batch_size/block_size.")
    sets, specs = {}, []
    for n in names:
        pdom = pool_domain(f"{domain}.{n}", docs[n], tok, int(unique_tokens), seed, f"quality pool '{n}' of domain '{domain}'")
        sets[n] = DomainSet({pdom.name: pdom}, tok.vocab_size, tok.eos_id, tok.identity, targets={target.name: tdom})
        specs += [(n, s) for s in plan_pool_runs(domain, n, sets[n], proxy, reps, int(unique_tokens), seed)]
    out = PoolRuns({}, int(unique_tokens), reps, target.name, planned=len(specs), excluded=excluded)
    metric = f"target/{target.name}"
    points: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    dtype = recorded_dtype(store)  # proxy.dtype auto trains in the store's dtype, as its sweep did
    check_store_dtype(store, dtype, proxy)
    for i, (n, s) in enumerate(specs):
        if progress:
            progress("pool runs", i, len(specs))
        on_step = (lambda a, b: progress("  current run (steps)", a, b)) if progress else None
        s = dataclasses.replace(s, dtype=dtype or "")
        outcome = execute_runs([s], store, sets[n], wait=True, progress=on_step, threads=threads or proxy.threads or 1)[0]
        out.trained += outcome.outcome == "trained"
        out.skipped += outcome.outcome != "trained"
        rec = store.get(s.run_id)
        value = rec.metrics.get(metric) if rec is not None and rec.is_usable() else None
        if value is None:
            out.failed.append(f"{s.label}: {rec.reason if rec is not None else 'no record'}")
            continue
        points[n].append((float(rec.scale.get("tokens") or s.proxy["tokens"]), float(value)))
    if progress:
        progress("pool runs", len(specs), len(specs))
    for n, pts in points.items():
        t, y = (np.array(v, dtype=float) for v in zip(*pts)) if pts else (np.zeros(0), np.zeros(0))
        out.observations[n] = (t, y, float(unique_tokens))
    return out
