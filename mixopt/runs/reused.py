"""An earlier sweep's runs as rows of today's fit, after the domain set changed (config ``reuse.store``).

A run of the old sweep trained a mixture of the old domains; in today's domain set that is the same mixture with every
new domain at 0, a point of today's simplex like any other. So its measurements stay valid rows for any target it
measured, as long as the data of the domains it trained did not change and the proxy is the same. Only those runs join:
``reused_records`` compares the domains' content fingerprints (or, for stores written before they were kept, their
token counts and the data settings), drops runs on other proxies, runs today's store holds itself (the same run id, or
the same proxy, phases and seed: :func:`training_key`), and runs that trained a removed or revised domain (a run that
gave such a domain weight 0 stays, without that domain and its metrics), follows a chain of updates (``store_chain``), decides per run whether it measured the target (or
only some of an averaged target's components), and says why it took what it took, per store of the chain.

Where the stores of the chain lie (paths recorded in store.json): :mod:`mixopt.runs.reuse_chain`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConsistencyError, DataError, FitError
from ..mixtures import Mixture
from ..reuse import ReusedMixture
from .record import RunRecord, _rounded, canonical_json, id_proxy
from .reuse_chain import describe_chain, is_run_store, recorded_reuse, reuse_store_of, show, store_chain
from .store import RunStore, StoreSnapshot
from .table import records_table, sweep_records

#: ProxyConfig fields that say how a run was executed, not what it trained: runs differing only here are the same proxy.
EXECUTION_FIELDS = frozenset({"device", "dtype", "compile", "cuda_graphs", "threads"})
DATA_SETTINGS = ("tokenizer", "val_fraction", "max_documents")  # data settings every domain's tokens depend on
SAME_RUN = "this store holds the same run"  # a reused run today's store (or sweep) trains too (:func:`training_key`)


# ------------------------------------------------------------------ which runs join

@dataclasses.dataclass
class Gathered:
    """The chain's runs sorted for today's store: those that can join (with the metrics of changed text to remove)
    and, per reason, how many cannot."""

    kept: list[tuple[RunRecord, Path, frozenset[str]]]  # (run, its store, its metrics on text that changed since)
    dropped: dict[str, int]  # reason -> runs left out
    n: int  # distinct runs of the chain
    revised: dict[str, list[Path]]  # domain -> the stores of the chain swept on other data of it (revised since)
    stale: set[str]  # evaluation-only target sets whose text changed since
    at0: dict[Path, list[str]]  # per store: today's domains its runs have at 0 (new since, or revised)
    known: set[str]  # every domain some store of the chain trained
    current: set[str] = dataclasses.field(default_factory=set)  # ... of those, on today's data of it


def gather(chain: Sequence[tuple[Path, StoreSnapshot]], today_meta: dict[str, Any], domains: set[str],
           proxies: set[str], today: Sequence) -> Gathered:
    """Sort the sweep runs of ``chain`` (nearest store first; a run met again is the nearer store's) for a store of
    ``today_meta`` over ``domains`` whose runs train ``proxies`` (:func:`proxy_shape`) and hold ``today`` (its runs or
    planned RunSpecs). A joining run is one of today's when its run id or its :func:`training_key` is (a store swept
    before stop 38 gave the same training run another id: the embedded corpus's data fingerprint changed since)."""
    g = Gathered([], {}, 0, {}, set(), {}, set())
    today_ids = {r.run_id for r in today}
    today_keys = {training_key(r) for r in today}
    seen: set[str] = set()
    met: set = set()  # training keys of the runs met so far that trained only unchanged data
    again = 0  # runs of a farther store that a nearer one holds under another run id
    for where, store in chain:
        changed = set(changed_domains(store.meta, today_meta, show(where)))
        targets = set(changed_targets(store.meta, today_meta))
        for d in sorted(changed):
            g.revised.setdefault(d, []).append(where)
        g.stale |= targets
        trained = set(store.meta.get("domains") or [])
        g.known |= trained
        g.current |= trained - changed
        g.at0[where] = sorted(domains - trained | changed)
        gone = frozenset({f"val/{d}" for d in changed} | {f"target/{t}" for t in targets})  # metrics on changed text
        for r in sweep_records(store.ok):
            if r.run_id in seen:
                continue
            seen.add(r.run_id)
            mixed = {d for d, w in r.overall_mixture().items() if w > 0}
            why = (SAME_RUN if r.run_id in today_ids else
                   "another proxy" if proxy_shape(r.proxy) not in proxies else
                   "it trained a domain no longer in the data" if mixed - domains else
                   "it trained a domain whose data changed" if mixed & changed else "")
            key = training_key(r)
            if why in ("", SAME_RUN):  # it trained only unchanged data
                if key in met:  # a nearer store holds the same training run under another run id
                    again += 1
                    continue
                met.add(key)
            if not why and key in today_keys:  # the same training run today's store holds, under another run id
                why = SAME_RUN
            if why:
                g.dropped[why] = g.dropped.get(why, 0) + 1
            else:
                g.kept.append((r, where, gone))
    g.n = len(seen) - again
    return g


def training_key(run) -> tuple:
    """What a run (RunRecord or RunSpec) trained, whatever data fingerprint its run id hashed: its proxy
    (:func:`proxy_shape`), its phases without zero-weight domains (rounded as run ids round them), and its seed. Two
    runs of one key that trained only unchanged data are the same training run."""
    phases = tuple((round(float(s), 10), tuple((d, w) for d, w in _rounded(m).items() if w))
                   for s, m in run.phases)
    return proxy_shape(run.proxy), phases, run.seed


def _left(dropped: dict[str, int], missing: str | None, g: Gathered) -> str:
    """The reasons runs stay out, and what changed since, as ``; ...`` clauses."""
    left = "".join(f"; {n} left out ({why})" for why, n in sorted(dropped.items()))
    if missing:
        left += f"; its earlier store {missing} is gone, so its runs are not used"
    groups: dict[tuple, list[str]] = {}  # (the stores swept on other data, whether another store measured today's)
    for d, stores in sorted(g.revised.items()):
        groups.setdefault((tuple(stores), d in g.current), []).append(d)
    for (stores, measured), names in groups.items():
        one = len(names) == 1
        said = (f"their runs' {', '.join(f'val/{d}' for d in names)} {'is' if one else 'are'} not used" if measured else
                f"only today's runs measure {'it' if one else 'them'}")
        left += (f"; the data of {', '.join(names)} changed since {', '.join(show(w) for w in stores)} "
                 f"{'was' if len(stores) == 1 else 'were'} swept: {said}")
    if g.stale:
        left += f"; target set {', '.join(sorted(g.stale))} changed since: only today's runs measure it"
    return left


def _open_chain(meta: dict[str, Any], root: str | Path | None) -> tuple[list[tuple[Path, StoreSnapshot]], str | None]:
    """The chain of stores a store (``meta`` at ``root``) reuses, read; ([], None) without reuse.store. One-line
    DataErrors: the first store is missing, is the store itself, or holds no finished sweep runs."""
    first = reuse_store_of(meta, root)
    if first is None:
        return [], None
    snapshots: dict[Path, StoreSnapshot] = {}
    paths, missing, _ = store_chain(first, root, snapshots=snapshots)  # each store read once
    if not paths:
        home = show(root) if root is not None else "this store"
        raise DataError(f"reuse.store {recorded_reuse(meta, 'store')} of {home} is that store itself: a store cannot reuse its own runs. Resume its sweep with reuse.store set to the earlier "
                        f"sweep's --store (`mixopt sweep CONFIG --store {home}`), or drop reuse.store from that config.")
    chain = [(where, snapshots[where]) for where in paths]
    if not sweep_records(chain[0][1].ok):
        raise DataError(f"reuse.store {show(first)} holds no finished sweep runs. Point it at the earlier sweep's store.")
    return chain, missing


def reused_records(snapshot: StoreSnapshot, target: str) -> tuple[list[RunRecord], list[RunRecord], str | None]:
    """(the earlier stores' runs that measured ``target``, those that measured only some of an averaged target's
    components, a line saying what was taken) for a fit of ``target`` on ``snapshot``.

    ``snapshot``'s sweep config names the earlier store (``reuse.store``); without one: ``([], [], None)``. The partial
    runs can serve an averaged target's component models (``MetricAverage``), not a model of the target itself.
    Updates in a row chain: when the earlier store was itself swept with ``reuse.store``, that store's runs come too,
    and so on (``store_chain``), each checked the same way. Each run is taken on its own: one that measured the target
    (every component) joins fully whatever the other runs of its chain measured.

    Raises
    ------
    DataError
        The earlier store is missing, is this store itself, or holds no finished runs.
    ConsistencyError
        The data settings changed (tokenizer, validation split, document cap): every domain's tokens differ.

    A domain whose data changed since (revised) counts as removed and added again: runs that trained it stay out,
    the others join without its metric (today's runs alone measure its new text).
    """
    chain, missing = _open_chain(snapshot.meta, snapshot.root)
    if not chain:
        return [], [], None
    swept = sweep_records(snapshot.ok)
    today = records_table(swept)  # the target as today's runs define it: mean:all-domains covers new domains
    domains = set(snapshot.meta.get("domains") or today.domains)
    g = gather(chain, snapshot.meta, domains, {proxy_shape(r.proxy) for r in swept}, swept)
    try:
        cols = [target] if target in today.metrics else today.target_components(target)[0]
    except FitError:  # an unknown target: fit says so
        return [], [], None
    desc = describe_chain([w for w, _ in chain])
    full: list[RunRecord] = []
    part: list[RunRecord] = []
    by_store: dict[Path, list] = {}  # store -> [runs joining fully, partly, the components the partial ones lack]
    dropped = dict(g.dropped)
    unmeasured = f"it did not measure {target}" if len(cols) == 1 else f"it measured no component of {target}"
    for r, where, gone in g.kept:
        r = restricted(r, domains, set(today.metrics) - gone)
        lacks = {c for c in cols if not math.isfinite(r.metrics.get(c, math.nan))}
        if len(lacks) == len(cols):
            dropped[unmeasured] = dropped.get(unmeasured, 0) + 1
            continue
        (part if lacks else full).append(r)
        counts = by_store.setdefault(where, [0, 0, set()])
        counts[1 if lacks else 0] += 1
        counts[2] |= lacks
    if not full and not part:
        if not g.kept:
            return [], [], f"reuse.store {desc}: none of its {g.n} run(s) can join this fit{_left(dropped, missing, g)}"
        new = sorted({c[4:] for c in cols if c.startswith("val/")} - g.known)
        said = f" ({', '.join(new)} {'is' if len(new) == 1 else 'are'} new since)" if new else ""
        dropped.pop(unmeasured)
        return [], [], (f"reuse.store {desc}: none of the {len(g.kept)} run(s) that can join measured {target}{said}, "
                        f"so this fit uses this store's runs only{_left(dropped, missing, g)}")
    phrases = {}
    for where, (n_full, n_part, lacks) in by_store.items():
        at0 = f"with {', '.join(g.at0[where]) or 'no new domain'} at 0"
        some = f"the {len(cols) - len(lacks)} of {len(cols)} components of {target} they measured (not {', '.join(sorted(lacks))})"
        how = ("" if not n_part else f", for {some}" if not n_full else
               f" ({n_full} for {target}, {n_part} for {some.replace(f' of {target}', '')})")
        phrases[where] = (at0, how)
    n = len(full) + len(part)
    if len(set(phrases.values())) == 1:  # one phrase fits every store's runs
        at0, how = next(iter(phrases.values()))
        line = f"reuse.store: {n} run(s) of {desc} join " + (f"this store's {at0}" if not how else f"{at0}{how}")
    else:
        each = "; ".join(f"{sum(by_store[w][:2])} of {show(w)} {at0}{how}" for w, (at0, how) in phrases.items())
        line = f"reuse.store: {n} run(s) of {desc} join this fit: {each}"
    return full, part, line + _left(dropped, missing, g)


def sweep_reuse(path: str | Path, store_dir: str | Path, today_meta: dict[str, Any], proxies: set[str],
                today: Sequence) -> tuple[int, str]:
    """(how many runs of the chain ``reuse.store`` (``path``) brings can join a fit of the store being swept, one line
    saying so): what :func:`reused_records` will take, before any run trains. ``today_meta``: the store.json the sweep
    is about to write (domains, fingerprints, data settings); ``proxies``: its runs' :func:`proxy_shape`;
    ``today``: its planned RunSpecs and the runs the store holds. Which metrics a fit can use waits for the runs (``mixopt fit`` says)."""
    chain, missing = _open_chain({"config": {"reuse": {"store": str(path)}}}, store_dir)
    g = gather(chain, today_meta, set(today_meta.get("domains") or []), proxies, today)
    desc = describe_chain([w for w, _ in chain])
    left = _left(g.dropped, missing, g)
    if not g.kept:
        return 0, f"reuse.store {desc}: none of its {g.n} run(s) can join a fit of this store{left}"
    counts = {w: sum(1 for _, s, _ in g.kept if s == w) for w, _ in chain}
    at0 = {w: f"with {', '.join(g.at0[w]) or 'no new domain'} at 0" for w, k in counts.items() if k}
    each = (next(iter(at0.values())) if len(set(at0.values())) == 1 else
            "; ".join(f"{counts[w]} of {show(w)} {said}" for w, said in at0.items()))
    return len(g.kept), (f"reuse.store: {len(g.kept)} of the {g.n} run(s) of {desc} will join `mixopt fit` ({each}) "
                         f"for the targets they measured{left}")


def stale_plan(reuse: ReusedMixture, today_meta: dict[str, Any]) -> str | None:
    """A warning when ``reuse`` (the config's ``reuse.plan``, read) keeps the ratio of a domain whose data changed since
    the plan was made, None otherwise (or when it cannot tell: the plan names no store, or that store is gone). The
    plan's provenance names the store its model was fitted on (``plan_store``), whose store.json keeps per-domain
    content fingerprints; ``today_meta``: today's store.json (or the one the sweep is about to write)."""
    where, plan = reuse.plan_store, reuse.source
    if not where or not is_run_store(where):
        return None
    meta = RunStore(where, create=False).meta()
    try:
        changed = changed_domains(meta, today_meta, show(where))
    except ConsistencyError:  # other data settings: every domain's tokens differ
        changed = sorted(set(meta.get("domains") or []) & set(today_meta.get("domains") or []))
    changed = sorted(set(changed) & set(reuse.kept))
    if not changed:
        return None
    names, one = ", ".join(changed), len(changed) == 1
    return (f"reuse.plan {show(plan)} keeps the ratio{'' if one else 's'} of {names}, but the data of {names} changed since "
            f"that plan was made (its store {show(where)} recorded other content): the ratio{'' if one else 's'} "
            f"{'was' if one else 'were'} chosen on the old text. Add `recompute: [{names}]` under reuse: to search "
            f"{'it' if one else 'them'} anew (or keep the old ratio{'' if one else 's'} knowingly).")


# ------------------------------------------------------------------ the pieces

def restricted(r: RunRecord, domains: set[str], metrics: set[str]) -> RunRecord:
    """``r`` as a run of today's data: the zero-weight entries of removed domains out of its phases, and the metrics
    today's runs do not measure (a removed domain's) out of its metrics and curves. ``r`` itself when nothing goes."""
    gone = set(r.mixture) - domains | {d for _, m in r.phases for d in m if d not in domains}
    extra = set(r.metrics) - metrics
    if not gone and not extra:
        return r
    phases = [(s, Mixture({d: w for d, w in m.items() if d not in gone})) for s, m in r.phases]
    return dataclasses.replace(r, mixture=phases[0][1], phases=phases,
                               metrics={k: v for k, v in r.metrics.items() if k not in extra},
                               curves={k: v for k, v in r.curves.items() if k not in extra})


def changed_domains(old: dict[str, Any], new: dict[str, Any], where: str) -> list[str]:
    """The domains both stores train whose data changed (revised): per-domain content fingerprints when both stores kept
    them, else token counts. Raises ConsistencyError when the data settings changed (every domain's tokens differ)."""
    shared = sorted(set(old.get("domains") or []) & set(new.get("domains") or []))
    if old.get("domain_fingerprints") and new.get("domain_fingerprints"):
        changed = _differing(old, new, "domain", shared)
    else:
        do, dn = ((m.get("config") or {}).get("data") or {} for m in (old, new))
        settings = [k for k in DATA_SETTINGS if do.get(k) != dn.get(k)]
        if settings:
            raise ConsistencyError(f"reuse.store {where} was swept with other data settings ({', '.join(settings)} differ), "
                                   "so every domain's tokens differ. Reuse a store swept with the same settings, or drop reuse.store.")
        to, tn = old.get("token_counts") or {}, new.get("token_counts") or {}
        changed = [d for d in shared if to.get(d) != tn.get(d)]
    return changed


def changed_targets(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Evaluation-only target sets both stores measured whose text changed, either form of their fingerprints matching
    as for domains (stores from before stop 25 kept no target fingerprints: their sets are taken as unchanged)."""
    shared = set(old.get("target_fingerprints") or {}) & set(new.get("target_fingerprints") or {})
    return _differing(old, new, "target", sorted(shared))


def _differing(old: dict[str, Any], new: dict[str, Any], kind: str, names: Sequence[str]) -> list[str]:
    """Of ``names``, those whose content fingerprints (store.json's ``<kind>_fingerprints``, kind domain or target)
    share no form between the two stores: each store's fingerprint or the older form it recorded next to it
    (``<kind>_fingerprints_verbatim``: the key of a store swept before stop 29, or the embedded corpus's files' key of
    one swept before stop 38), so stores of either age match."""
    forms = [(m.get(f"{kind}_fingerprints") or {}, m.get(f"{kind}_fingerprints_verbatim") or {}) for m in (old, new)]
    return [n for n in names if not set.intersection(*({f.get(n), v.get(n)} - {None} for f, v in forms))]


def proxy_shape(proxy: dict[str, Any] | None) -> str:
    """A run's proxy as it enters a comparison: what it trained, not how it was executed."""
    return canonical_json({k: v for k, v in id_proxy(proxy or {}).items() if k not in EXECUTION_FIELDS})
