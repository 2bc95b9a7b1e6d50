"""`run_sweep`: load data, plan the runs, hand the pending ones to an executor."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import ProxyConfig, SweepConfig, recorded_config, without_execution_fields
from ..data.domains import domain_specs, load_domain_set
from ..data.types import DomainSet
from ..proxy.loop import eval_token_count
from ..errors import ConfigError, ConsistencyError, MixoptError, interrupted
from ..proxy.device import auto_dtype_reason, resolved_dtype
from ..reuse import ReusedMixture, reused_mixture
from .executors import check_ray_address, choose_workers, entered_without_sigint, run_local, run_ray, threads_per_run
from .record import ID_IGNORED_FIELDS, RunRecord, canonical_json, id_proxy
from .reuse_chain import absolute_reuse, check_reuse_store, relative_reuse, same_reuse_paths
from .reused import EXECUTION_FIELDS, proxy_shape, stale_plan, sweep_reuse
from .store import RunStore, check_store_target, is_store_folder
from .sweep import SweepSummary, plan_sweep, sweep_scales
from .table import sweep_records


def run_sweep(cfg: SweepConfig, store_dir: str | Path, *, n_runs: int | None = None, executor: str = "local",
              workers: int | None = None, ray_address: str | None = None, show_progress: bool = True) -> SweepSummary:
    """Train every planned run of `cfg` that `store_dir` does not hold yet."""
    if executor not in ("local", "ray"):
        raise ConfigError(f"--executor must be 'local' or 'ray'. Got '{executor}'.")
    if executor == "ray":
        check_ray_address(ray_address)  # before tokenizing: an unreachable cluster fails at once
    if cfg.reuse is not None and cfg.reuse.store:
        check_reuse_store(cfg.reuse.store, store_dir)  # before training: a wrong path fails now, not at `fit`
    # the plan file, and recompute's names, before the store is made; read once, over the names sorted as data.names
    reuse = reused_mixture(cfg.reuse, sorted(s.name for s in domain_specs(cfg.data)))
    cfg = absolute_reuse(cfg)  # store.json records where reuse.store / reuse.plan lie, whatever folder reads it later
    check_store_target(store_dir)  # a folder of other files is not made a store
    check_wsd(store_dir, cfg)  # before the store folder is made: a refused new sweep leaves nothing behind
    fresh = not Path(store_dir).exists()
    store = RunStore(store_dir)
    try:
        return _run_sweep(cfg, store, n_runs=n_runs, executor=executor, workers=workers, ray_address=ray_address,
                          show_progress=show_progress, reuse=reuse)
    except KeyboardInterrupt:  # Ctrl-C while tokenizing or planning (run_local says it itself while training)
        raise interrupted(store) from None
    except MixoptError:
        if fresh:  # refused before any write (e.g. after tokenizing): the new store's empty folders go too
            remove_empty_store(store)
        raise


def remove_empty_store(store: RunStore) -> None:
    """Remove a store folder this sweep made while it is still empty (its runs/ and locks/ folders, then itself); a
    folder anything was written to (another sweep's, a record, a lock file) stays."""
    for folder in (store.runs_dir, store.locks_dir, store.root):
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone
            pass


def _run_sweep(cfg: SweepConfig, store: RunStore, *, n_runs: int | None, executor: str, workers: int | None,
               ray_address: str | None, show_progress: bool, reuse: ReusedMixture | None) -> SweepSummary:
    meta = store.meta()  # a corrupt store.json stops here, before anything is written
    config = recorded_config(cfg)  # without execution settings (workers): a command without CONFIG must not inherit them
    check_same_proxy(store, meta.get("config"), config)  # before tokenizing: a changed proxy fails at once
    store.check_writable()  # before any training: a read-only or full disk fails here
    # no store.json (a folder of records, or one moved away): the records stand in for it, read once for both checks
    scanned = None if meta.get("config") and meta.get("data_fingerprint") else store.scan()
    records = scanned[0] if scanned else []
    if not meta.get("config"):
        check_same_proxy_as_records(store.root, records, cfg)  # the records say which proxy they trained
    store.clean_stale_temporaries()  # left by a process killed inside a record write
    active: list[int] = []  # this sweep's hold on locks/active.lock, released when it ends
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    try:
        with entered_without_sigint(Progress(*columns, disable=not show_progress, transient=False)) as progress:
            t_data = progress.add_task("tokenizing domains", total=None)
            recorded = meta.get("data_fingerprint") or records_data_fingerprint(records)
            data = load_domain_set(cfg.data, progress=lambda i, n: progress.update(t_data, completed=i, total=n),
                                   store_fingerprint=recorded)
            check_same_data(store, recorded, data.fingerprint, changes=data_changes(meta, data, config.get("data")))
            check_same_domains(store, meta, data.names)
            specs = plan_sweep(cfg, data, n_runs=n_runs, reuse=reuse)
            for note in proxy_notes(cfg, data):
                warnings.warn(note, stacklevel=3)
            dtype = sweep_dtype(cfg, store, meta, records, data.vocab_size)  # before the lock: a CPU probe may run
            today = {"domains": data.names, "token_counts": data.token_counts, "config": config,
                     "domain_fingerprints": {n: d.fingerprint for n, d in data.domains.items()},
                     **verbatim_fingerprints(data),
                     "target_fingerprints": {n: t.fingerprint for n, t in data.targets.items()}}
            reuse_line = check_reuse(cfg, store, today, specs, reuse)  # before training: none of the old runs can join
            # Under the store lock: another sweep may have written store.json since, or be starting on this store now.
            # Checked again against what it recorded (also while the store holds no record yet, if that sweep still
            # runs), and this sweep's config written, before any other sweep can pass the same checks.
            with store.store_lock():
                latest = store.meta()
                busy = store.other_sweep_active()
                check_same_proxy(store, latest.get("config"), config, busy=busy)
                dtype = latest.get(DTYPE_KEY) if cfg.proxy.dtype == "auto" and latest.get(DTYPE_KEY) else dtype
                check_store_dtype(store, dtype, cfg.proxy, busy=busy)
                check_same_data(store, latest.get("data_fingerprint") or recorded, data.fingerprint, busy=busy,
                                changes=data_changes(latest, data, config.get("data")))
                # an older mixopt recorded reuse paths as typed: the same file, now absolute, is no config change
                recorded = {**latest, "config": same_reuse_paths(latest.get("config"), config, latest, store.root)}
                changes, history = config_history(recorded, config)
                relative = relative_reuse(cfg, store.root)
                store.update_meta(**today, data_fingerprint=data.fingerprint, planned=[s.run_id for s in specs],
                                  tokens_per_doc={n: d.mean_tokens_per_doc for n, d in data.domains.items()},
                                  **({"reuse_relative": relative} if relative or "reuse_relative" in latest else {}),
                                  **reuse_store_runs(cfg, latest),
                                  **({"config_history": history} if history else {}), **{DTYPE_KEY: dtype})
                active.append(store.hold_active())
            # what the store holds, from its parsed records: a corrupt record is quarantined now and trained below
            held = (scanned or store.scan({s.run_id for s in specs}))[1]
            pending = [dataclasses.replace(s, dtype=dtype) for s in specs if s.run_id not in held]
            if pending and (note := store_dtype_note(store, dtype, cfg, data.vocab_size)):
                warnings.warn(note, stacklevel=3)  # trains in the store's dtype, not in what auto picks here
            cfg = training_config(cfg, dtype)  # the executor's stack probe and threads: as the runs train
            n_workers = choose_workers(cfg, workers, pending) if executor == "local" else 1
            t_runs = progress.add_task("proxy runs", total=len(specs), completed=len(specs) - len(pending))
            t_step = progress.add_task("  current run (steps)", total=1, visible=executor == "local" and n_workers <= 1)

            def on_run(run_id: str, outcome: str, reason: str) -> None:
                progress.advance(t_runs)
                if reason:
                    progress.console.print(f"[yellow]run {run_id} failed: {reason}[/]")

            def on_step(step: int, total: int) -> None:
                progress.update(t_step, completed=step, total=total)

            if executor == "ray":
                summary = run_ray(pending, cfg, store, data, address=ray_address, on_run=on_run)
            else:
                summary = run_local(pending, cfg, store, data, workers=n_workers, on_run=on_run, on_step=on_step,
                                    on_info=progress.console.print)
    finally:
        for fd in active:
            os.close(fd)
    summary.planned = len(specs)
    summary.skipped += len(specs) - len(pending)
    summary.config_changes = changes
    summary.reuse_line = reuse_line
    summary.reuse_plan_line = reuse.describe() if reuse is not None else ""
    return summary


DTYPE_KEY = "proxy_dtype"  # store.json: the dtype its runs train in, recorded at its first sweep


def store_dtype(meta: dict, records: list[RunRecord] | None = None) -> str | None:
    """The dtype (``float32`` / ``bfloat16``) a store's runs train in: store.json's ``proxy_dtype``, else (a store of an
    older mixopt) the ``info.dtype`` its finished sweep runs (``records``) agree on, or that most of them hold when an
    older resume mixed them (fewest runs to train again; ``sweep`` and ``fit`` warn of the mix); None when none says."""
    if meta.get(DTYPE_KEY):
        return meta[DTYPE_KEY]
    counts = Counter(r.info["dtype"] for r in sweep_records(records or []) if r.status == "ok" and r.info.get("dtype"))
    ranked = counts.most_common(2)
    return ranked[0][0] if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]) else None


def sweep_dtype(cfg: SweepConfig, store: RunStore, meta: dict, records: list[RunRecord], vocab_size: int) -> str:
    """The dtype this sweep's runs train in: a pinned ``proxy.dtype``; for ``auto``, the store's recorded one
    (:func:`store_dtype`), else what ``auto`` resolves to here now (on CPU a timing probe, cached in $MIXOPT_CACHE;
    bf16 on CUDA), which the sweep then records, so a later resume or another machine's probe cannot change it."""
    if cfg.proxy.dtype != "auto":
        return cfg.proxy.dtype
    return recorded_dtype(store, meta, records) or resolved_dtype(sweep_scales(cfg)[0].proxy, vocab_size=vocab_size,
                                                                  threads=threads_per_run(cfg))


def store_dtype_note(store: RunStore, dtype: str | None, cfg: SweepConfig, vocab_size: int) -> str | None:
    """A line when ``proxy.dtype: auto`` trains in the store's recorded ``dtype`` (:func:`store_dtype`) although
    ``auto`` picks another here (another machine or probe made the store): which, why, and how to train in this
    machine's; None when they agree (or the config pins a dtype). Costs a CPU probe once per machine (cached)."""
    if not dtype or cfg.proxy.dtype != "auto":
        return None
    proxy = sweep_scales(cfg)[0].proxy
    here = resolved_dtype(proxy, vocab_size=vocab_size, threads=threads_per_run(cfg))
    if here == dtype:
        return None
    return (f"the store {store.root} trains its runs in {dtype} (`{DTYPE_KEY}` in {store.meta_path}, its first "
            f"sweep's choice), so the runs trained now do too, although proxy.dtype auto picks {here} on this "
            f"machine ({auto_dtype_reason(proxy, here)}): the store's runs stay comparable. To train in {here}, sweep "
            f"into a new --store with proxy.dtype: {here} pinned")


def recorded_dtype(store: RunStore, meta: dict | None = None, records: list[RunRecord] | None = None) -> str | None:
    """:func:`store_dtype` of ``store`` (``meta``: its store.json, read when None); the records are read only for an
    older store whose store.json records no dtype (``records``: when the caller holds them)."""
    meta = store.meta() if meta is None else meta
    if not meta.get(DTYPE_KEY) and not records and store.run_ids():
        records = store.records(include_failed=False)
    return store_dtype(meta, records)


def check_store_dtype(store: RunStore, dtype: str | None, proxy: ProxyConfig, *, busy: bool = False) -> None:
    """A config that pins another ``proxy.dtype`` than the store's runs train in (``dtype``: :func:`store_dtype`) is a
    one-line ConsistencyError when the store holds runs (or another sweep is about to write them: ``busy``)."""
    if not dtype or proxy.dtype in ("auto", dtype) or not (busy or store.run_ids()):
        return
    raise ConsistencyError(
        f"The store {store.root} trains its runs in {dtype} (`{DTYPE_KEY}` in {store.meta_path}), but this config pins "
        f"proxy.dtype {proxy.dtype}: runs of both would be fitted together as one proxy. Set proxy.dtype to auto (or "
        f"{dtype}), or sweep into a new --store.")


def training_config(cfg: SweepConfig, dtype: str | None) -> SweepConfig:
    """``cfg`` with ``proxy.dtype: auto`` replaced by ``dtype`` (the store's), for the executors; run specs keep "auto"
    in their proxy (their run ids) and carry the dtype beside it (``RunSpec.dtype``)."""
    if not dtype or cfg.proxy.dtype != "auto":
        return cfg
    return cfg.model_copy(update={"proxy": cfg.proxy.model_copy(update={"dtype": dtype})})


def check_reuse(cfg: SweepConfig, store: RunStore, today: dict, specs: list, reuse: ReusedMixture | None = None) -> str:
    """Before any run trains: with ``reuse.plan`` (``reuse``: that plan, read), a warning when it keeps the ratio of a
    domain whose data changed since the plan was made (:func:`~mixopt.runs.reused.stale_plan`); with ``reuse.store``,
    the line saying how many of the earlier runs will join ``mixopt fit`` (:func:`~mixopt.runs.reused.sweep_reuse`),
    and a one-line ConsistencyError when none can (another proxy, every one trained changed data ...): that store adds
    nothing. A resume with nothing left to train only warns: the store is complete, and its runs are fitted alone.
    ``today``: the store.json fields this sweep is about to write; ``specs``: its planned runs."""
    if cfg.reuse is None:
        return ""
    if reuse is not None and (note := stale_plan(reuse, today)):
        warnings.warn(note, stacklevel=3)
    if not cfg.reuse.store:
        return ""
    ids = store.run_ids()
    held = sweep_records(store.snapshot(warn_failed=False).ok) if ids else []  # runs of an earlier config of this store too
    joining, line = sweep_reuse(cfg.reuse.store, store.root, today, {proxy_shape(s.proxy) for s in specs}, [*specs, *held])
    if not joining and {s.run_id for s in specs} <= set(ids):  # nothing left to train: nothing to protect
        warnings.warn(f"{line}. This store's sweep is complete and fit works on its own runs; to add earlier runs, point "
                      "reuse.store at an earlier sweep of this proxy whose runs trained data that is still the same",
                      stacklevel=3)
        return ""  # said in the warning
    if not joining:
        raise ConsistencyError(f"{line}. Nothing was trained or written. Point reuse.store at an earlier sweep of this "
                               "proxy whose runs trained data that is still the same, or drop reuse.store.")
    return line


REUSE_STORE_RUNS = 16  # run ids of the earlier store recorded in store.json


def reuse_store_runs(cfg: SweepConfig, latest: dict) -> dict:
    """``{"reuse_store_runs": [...]}``: some run ids the earlier store (``reuse.store``) holds now, so a later command
    tells it apart from another store at the same path (:func:`~mixopt.runs.reuse_chain.locate`: a tree moved, and a
    new store made where it was); ``{"reuse_store_runs": []}`` to clear an older entry; ``{}`` when there is none."""
    ids = RunStore(cfg.reuse.store, create=False).run_ids()[:REUSE_STORE_RUNS] if cfg.reuse and cfg.reuse.store else []
    return {"reuse_store_runs": ids} if ids or "reuse_store_runs" in latest else {}


def verbatim_fingerprints(data) -> dict:
    """``{"domain_fingerprints_verbatim": {...}, "target_fingerprints_verbatim": {...}}`` for the domains and evaluation
    targets older mixopt fingerprinted differently (before stop 29 it hashed fields that change no token, e.g.
    quality_field; before stop 38 it keyed the embedded corpus's files apart from copies of them:
    `TokenizedDomain.older_fingerprint`), so a later ``reuse.store`` check matches a store of either age; each only
    when some entry differs."""
    out = {}
    for kind, group in (("domain", data.domains), ("target", data.targets)):
        verbatim = {n: d.older_fingerprint for n, d in group.items() if d.older_fingerprint}
        if verbatim:
            out[f"{kind}_fingerprints_verbatim"] = verbatim
    return out


def check_same_data(store: RunStore, recorded: str | None, fingerprint: str, *, busy: bool = False,
                    changes: list[str] | None = None) -> None:
    """A store holds runs on one data set: sweeping other data into it would mix their losses in every fit. A one-line
    ConsistencyError names both fingerprints (``recorded``: the store's) and what changed (``changes``:
    :func:`data_changes`); a store without runs takes the new data, unless another sweep is running on it (``busy``: it
    recorded its data and is about to write runs)."""
    if recorded and recorded != fingerprint and busy and not store.run_ids():
        raise ConsistencyError(
            f"Another sweep is running on the store {store.root} with other data (fingerprint {recorded}) than this "
            f"config reads ({fingerprint}): runs of both would be fitted together. Sweep into a new --store, or wait "
            "for that sweep to finish and use the data it was swept with.")
    if recorded and recorded != fingerprint and store.run_ids():
        if changes and all("evaluation target" in c for c in changes):  # no training data changed: only what runs measure
            fix = ("Every run id names the whole data set, targets too, so this store's runs would not resume. Sweep into "
                   "a new --store (its runs measure the targets listed now), or set data.targets back to the store's "
                   "to resume it.")
        elif changes and changes[0].startswith("data."):  # the tokenizer or the split: no old run carries over
            fix = (f"Sweep into a new --store, or set those back to the store's (its config is `config` in "
                   f"{store.meta_path}).")
        else:
            fix = (f"Sweep the new data into a new --store (with `reuse: {{store: {store.root}}}` in its config "
                   "these runs join its fit: README \"When the domain set changes\"), or restore the data the store was "
                   "swept with" + ("" if changes else " (a store an older mixopt wrote from another folder also reads "
                                                      "as other data)") + ".")
        said = "; ".join(changes) if changes else "a data file, the tokenizer, val_fraction or max_documents changed"
        raise ConsistencyError(
            f"The store {store.root} holds runs on other data (fingerprint {recorded}) than this config reads "
            f"({fingerprint}): {said}. {fix}")


def data_changes(meta: dict, data, data_cfg: dict | None = None) -> list[str]:
    """What differs between the data a store was swept on (its store.json: the sweep config's ``data:``,
    ``domain_fingerprints``, ``target_fingerprints``) and ``data`` (a DomainSet, or one of fingerprints only), one
    phrase each for a one-line message: the settings that tokenize every domain anew (``data_cfg``: the config's
    ``data:`` as a dict), else the domains and evaluation targets whose data changed, or that were added or removed.
    [] when store.json records none of this (a folder of records, or a store of an older mixopt)."""
    stored = (meta.get("config") or {}).get("data") or {}
    settings = [f"data.{k}" for k in ("tokenizer", "val_fraction", "max_documents")
                if data_cfg is not None and k in stored and stored[k] != data_cfg.get(k)]
    if settings:
        return [f"{', '.join(settings)} changed, which changes every domain's tokens"]
    out = []
    kinds = (("domain", data.domains, "domain"), ("evaluation target", data.targets, "target"))
    for kind, group, key in kinds:
        recorded, verbatim = meta.get(f"{key}_fingerprints"), meta.get(f"{key}_fingerprints_verbatim") or {}
        if not isinstance(recorded, dict):
            continue
        now = {n: d.known_fingerprints() for n, d in group.items()}
        changed = sorted(n for n in set(now) & set(recorded) if not now[n] & {recorded[n], verbatim.get(n)})
        added, removed = sorted(set(now) - set(recorded)), sorted(set(recorded) - set(now))
        where = " (data.targets)" if kind != "domain" else ""
        for names, what in ((changed, "data changed"), (added, "added"), (removed, "removed")):
            if names:
                out.append(f"{kind}{'s' if len(names) > 1 else ''} {', '.join(names)}{where}: {what}")
    return out


def records_data_fingerprint(records: list[RunRecord]) -> str | None:
    """The data fingerprint of a store's swept ``records`` when it has no ``store.json`` that names one (a folder of
    records, or a store.json moved away): so :func:`check_same_data` still keeps other data out. None when the records
    name none, or several."""
    found = {r.data_fingerprint for r in records if r.data_fingerprint}
    return found.pop() if len(found) == 1 else None


def check_same_domains(store: RunStore, meta: dict, names: list[str]) -> None:
    """A store's runs are over one domain set (e.g. an imported store, which records no data fingerprint): a sweep over
    other domains into a store that holds runs is a one-line ConsistencyError, and store.json keeps its domains."""
    if not store.run_ids():
        return
    stored = store.domains(meta)
    if stored and sorted(stored) != sorted(names):
        raise ConsistencyError(
            f"The store {store.root} holds runs over domains {sorted(stored)}, but this config trains {sorted(names)}: "
            "runs over other domains cannot be fitted together. Sweep into a new --store, or set data: to the store's "
            "domains.")


def proxy_differences(stored: dict, config: dict) -> list[str]:
    """How ``config`` trains other proxies than the ``stored`` sweep config (both ``SweepConfig.model_dump(mode="json")``
    dicts): each differing ``proxy.<field>`` and ``sizes[<name>].<field>`` as ``field old -> new``. Every field that
    enters a run id counts (``cuda_graphs`` does not); a field an older store's config lacks counts at its default.
    Sizes added since are new scales, not a change; run counts (``runs``, ``two_phase_runs``) are not proxy settings."""
    defaults = ProxyConfig().model_dump(mode="json")
    old, new = stored.get("proxy") or {}, config.get("proxy") or {}
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, defaults.get(k)), new.get(k, defaults.get(k))
        if k in defaults and k not in ID_IGNORED_FIELDS and a != b:  # a field mixopt no longer has cannot be set
            out.append(f"proxy.{k} {_short(a)} -> {_short(b)}")
    skip = {"name", "runs", "two_phase_runs"}

    def by_name(sizes) -> dict[str, dict]:
        return {s.get("name") or f"s{i}": s for i, s in enumerate(sizes or []) if isinstance(s, dict)}

    old_sizes, new_sizes = by_name(stored.get("sizes")), by_name(config.get("sizes"))
    for name in sorted(set(old_sizes) & set(new_sizes)):
        a, b = old_sizes[name], new_sizes[name]
        for k in sorted(set(a) | set(b)):
            if k not in skip and a.get(k) != b.get(k):
                out.append(f"sizes[{name}].{k} {_short(a.get(k))} -> {_short(b.get(k))}")
    return out


def check_same_proxy(store: RunStore, stored: dict | None, config: dict, *, busy: bool = False) -> None:
    """A store's runs are fitted together, so they must train one proxy (per scale): a sweep whose ``proxy:`` (or a
    size of ``sizes:`` it shares with the store's config) differs from the store's recorded config is a one-line
    ConsistencyError when the store holds runs, or when another sweep is running on it (``busy``: it recorded that
    config and is about to write runs; checked under the store lock). More runs, added sizes, other seed, sampler,
    propose or reuse settings resume the store (and the replaced config is kept: :func:`config_history`)."""
    if not stored:
        return
    has_runs = bool(store.run_ids())
    if not (has_runs or busy):
        return
    diffs = proxy_differences(stored, config)
    if not diffs:
        return
    if not has_runs:
        raise ConsistencyError(
            f"Another sweep is running on the store {store.root} with other proxy settings than this config's "
            f"({'; '.join(diffs)}): runs of both would be fitted together as one proxy. Sweep into a new --store, or "
            f"wait for that sweep to finish and set those fields to its (`config` in {store.meta_path}).")
    fields = {d.split(" ", 1)[0] for d in diffs}
    execution_only = fields <= {f"proxy.{k}" for k in EXECUTION_FIELDS}  # e.g. threads: the same numbers, other run ids
    why = ("these fields enter every run id, so each run would be trained again and fitted twice" if execution_only
           else "runs of both would be fitted together as one proxy")
    raise ConsistencyError(
        f"The store {store.root} was swept with other proxy settings than this config's ({'; '.join(diffs)}): {why}. "
        f"Sweep into a new --store, or set those fields back to the store's (its config is `config` in "
        f"{store.meta_path}); to add a proxy scale, keep proxy: and add an entry to sizes:.")


#: A sweep warns when a domain's validation split holds less than this share of ``proxy.eval_tokens`` (a shortfall of a
#: few windows, e.g. the demo's legal split: 14,720 of 16,384, changes the measurement's noise little)
EVAL_SHORT_SHARE = 0.5


def proxy_notes(cfg: SweepConfig, data: DomainSet) -> list[str]:
    """One line per proxy setting that trains or measures much less than it says (sizes that share a line share it):
    ``tokens`` rounded down to whole batches, more than 1% of them (``ProxyConfig.rounding_note``), and ``eval_tokens``
    above what a domain's (or target's) validation split holds, under :data:`EVAL_SHORT_SHARE` of them evaluated
    (``proxy.loop.eval_token_count``), so that domain is measured on fewer tokens, with more noise."""
    lines: dict[str, list[str]] = {}
    for sc in sweep_scales(cfg):
        p, short = sc.proxy, []
        for name, dom in {**data.domains, **data.targets}.items():
            n_tok = int(dom.val.size)
            evaluated = eval_token_count(n_tok, p.block_size, p.eval_tokens) if n_tok >= 2 else p.eval_tokens
            if evaluated < EVAL_SHORT_SHARE * p.eval_tokens:  # whole windows alone keep over half: the split caps it
                short.append(f"{name} ({n_tok:,} tokens: {evaluated:,} evaluated)")
        if short:
            lines.setdefault(f"eval_tokens {p.eval_tokens:,} exceeds the validation split of {', '.join(short)}: each of "
                             "those is measured on what its split holds, less than half of eval_tokens and so with more "
                             "noise. Raise data.val_fraction or lower eval_tokens", []).append(sc.name)
        if line := p.rounding_note():
            lines.setdefault(line, []).append(sc.name)
    out = []
    for line, names in lines.items():
        sizes = [n for n in names if n]
        which = f" (size {sizes[0]})" if len(sizes) == 1 else f" (sizes {', '.join(sizes)})" if sizes else ""
        out.append(f"proxy{which}: {line}")
    return out


def check_wsd(store_dir: str | Path, cfg: SweepConfig) -> None:
    """A WSD warm-up that reaches into a decay (``ProxyConfig.wsd_overlap``) is a one-line ConfigError for a new sweep;
    a store that already holds runs trained so resumes with a warning (its runs stay comparable with each other)."""
    for sc in sweep_scales(cfg):
        problem = sc.proxy.wsd_overlap()
        if problem and Path(store_dir).is_dir() and is_store_folder(store_dir) \
                and RunStore(store_dir, create=False).run_ids():
            warnings.warn(f"proxy{f' (size {sc.name})' if sc.name else ''}: {problem}; this store's runs were trained "
                          "so, and resuming it keeps them comparable", stacklevel=2)
        elif problem:
            raise ConfigError(f"proxy{f' (size {sc.name})' if sc.name else ''}: {problem}.")


def check_same_proxy_as_records(root: Path, records: list[RunRecord], cfg: SweepConfig) -> None:
    """:func:`check_same_proxy` for a store with runs but no recorded config (a folder of records, a store.json moved
    away): the records' own proxies stand in for it. Refused when no scale of ``cfg`` trains a proxy that any record
    was trained with (a size added next to a known one resumes); records without a proxy (imported runs) say nothing."""
    counts: dict[str, int] = {}
    for rec in records:
        if rec.proxy:
            key = canonical_json(id_proxy(rec.proxy))
            counts[key] = counts.get(key, 0) + 1
    ours = {canonical_json(id_proxy(sc.proxy.model_dump(mode="json"))) for sc in sweep_scales(cfg)}
    if not counts or ours & set(counts):
        return
    most = json.loads(max(counts, key=counts.get))
    diffs = proxy_differences({"proxy": most}, {"proxy": id_proxy(cfg.proxy.model_dump(mode="json"))})
    said = "; ".join(diffs) if diffs else "its sizes: train none of them"
    raise ConsistencyError(
        f"The store {root} has no store.json, and its runs were trained with other proxy settings than this "
        f"config's ({said}): runs of both would be fitted together as one proxy. Sweep into a new --store, or set those "
        f"fields back to the runs' (each record in {root / 'runs'} holds its `proxy`).")


def config_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Paths where two config dicts differ, as ``path old -> new`` (``proxy.lr``, ``sizes[1].n_layer``, ``sizes[2]``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += config_changes(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(old, list) and isinstance(new, list) and any(isinstance(x, dict) for x in old + new):
        out = []
        for i in range(max(len(old), len(new))):
            out += config_changes(old[i] if i < len(old) else None, new[i] if i < len(new) else None, f"{prefix}[{i}]")
        return out
    return [] if old == new else [f"{prefix} {_short(old)} -> {_short(new)}"]


def _short(value: Any, n: int = 60) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= n else text[:n - 3] + "..."


def config_history(meta: dict, config: dict) -> tuple[list[str], list[dict] | None]:
    """(how ``config`` differs from the store's recorded one, store.json's ``config_history`` with the recorded config
    appended, or None when nothing changed). A replaced config is kept there, never dropped silently."""
    old = meta.get("config")
    settings = [without_execution_fields(c) for c in (old, config)]  # an older store recorded workers: no config change
    if not old or settings[0] == settings[1]:
        return [], None
    changes = config_changes(*settings)
    history = [h for h in (meta.get("config_history") or []) if isinstance(h, dict)]
    history.append({"config": old, "replaced_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "changes": changes})
    return changes, history
