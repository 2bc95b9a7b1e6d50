"""An earlier sweep's runs as rows of today's fit, after the domain set changed (config ``reuse.store``).

A run of the old sweep trained a mixture of the old domains; in today's domain set that is the same mixture with every
new domain at 0, a point of today's simplex like any other. So its measurements stay valid rows for any target it
measured, as long as the data of the domains it trained did not change and the proxy is the same. Only those runs join:
``reused_records`` compares the domains' content fingerprints (or, for stores written before they were kept, their
token counts and the data settings), drops runs on other proxies or that trained a removed or revised domain (a run
that gave such a domain weight 0 stays, without that domain and its metrics), follows a chain of updates
(``store_chain``), and says why it took what it took.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from ..errors import ConsistencyError, DataError, FitError
from ..mixtures import Mixture
from .record import RunRecord, canonical_json, id_proxy
from .store import RunStore, StoreSnapshot
from .table import records_table, sweep_records

#: ProxyConfig fields that say how a run was executed, not what it trained: runs differing only here are the same proxy.
EXECUTION_FIELDS = frozenset({"device", "dtype", "compile", "cuda_graphs", "threads"})
DATA_SETTINGS = ("tokenizer", "val_fraction", "max_documents")  # data settings every domain's tokens depend on


def reused_records(snapshot: StoreSnapshot, target: str) -> tuple[list[RunRecord], list[RunRecord], str | None]:
    """(the earlier store's runs that measured ``target``, those that measured only some of an averaged target's
    components, a line saying what was taken) for a fit of ``target`` on ``snapshot``.

    ``snapshot``'s sweep config names the earlier store (``reuse.store``); without one: ``([], [], None)``. The partial
    runs can serve an averaged target's component models (``MetricAverage``), not a model of the target itself.
    Updates in a row chain: when the earlier store was itself swept with ``reuse.store``, that store's runs come too,
    and so on (``store_chain``), each checked the same way.

    Raises
    ------
    DataError
        The earlier store is missing or holds no finished runs.
    ConsistencyError
        The data settings changed (tokenizer, validation split, document cap): every domain's tokens differ.

    A domain whose data changed since (revised) counts as removed and added again: runs that trained it stay out,
    the others join without its metric (today's runs alone measure its new text).
    """
    cfg = snapshot.meta.get("config") or {}
    path = (cfg.get("reuse") or {}).get("store")
    if not path:
        return [], [], None
    check_reuse_store(path)
    paths, missing = store_chain(path, snapshot.root)
    chain = [(where, RunStore(where, create=False).snapshot()) for where in paths]
    old = chain[0][1]
    if not sweep_records(old.ok):
        raise DataError(f"reuse.store {path} holds no finished sweep runs. Point it at the earlier sweep's store.")
    runs, seen, revised, stale = [], set(), set(), set()
    for where, store in chain:
        changed = set(changed_domains(store.meta, snapshot.meta, where))
        targets = set(changed_targets(store.meta, snapshot.meta))
        revised, stale = revised | changed, stale | targets
        gone = {f"val/{d}" for d in changed} | {f"target/{t}" for t in targets}  # metrics on text that changed since
        for r in sweep_records(store.ok):
            if r.run_id not in seen:
                seen.add(r.run_id)
                runs.append((r, changed, gone))
    today = records_table(sweep_records(snapshot.ok))  # the target as today's runs define it: mean:all-domains covers new domains
    domains = set(snapshot.meta.get("domains") or today.domains)
    proxies = {_shape(r.proxy) for r in sweep_records(snapshot.ok)}
    dropped: dict[str, int] = {}
    kept = []
    for r, changed, gone in runs:
        trained = {d for d, w in r.overall_mixture().items() if w > 0}
        why = ("another proxy" if _shape(r.proxy) not in proxies else
               "it trained a domain no longer in the data" if trained - domains else
               "it trained a domain whose data changed" if trained & changed else "")
        if why:
            dropped[why] = dropped.get(why, 0) + 1
        else:
            kept.append(restricted(r, domains, set(today.metrics) - gone))
    try:
        cols = [target] if target in today.metrics else today.target_components(target)[0]
    except FitError:  # an unknown target: fit says so
        return [], [], None
    left = "".join(f"; {n} left out ({why})" for why, n in sorted(dropped.items()))
    if len(chain) > 1:
        path = f"{path} and the {len(chain) - 1} store(s) it reused ({', '.join(w for w, _ in chain[1:])})"
    if missing:
        left += f"; its earlier store {missing} is gone, so its runs are not used"
    if revised:
        left += f"; the data of {', '.join(sorted(revised))} changed since: only today's runs measure it"
    if stale:
        left += f"; target set {', '.join(sorted(stale))} changed since: only today's runs measure it"
    if not kept:
        return [], [], f"reuse.store {path}: none of its {len(runs)} run(s) can join this fit{left}"
    has = [c for c in cols if all(math.isfinite(r.metrics.get(c, math.nan)) for r in kept)]
    new = sorted(domains - set(old.meta.get("domains") or []) | revised)
    at0 = f"with {', '.join(new) or 'no new domain'} at 0"
    if len(has) == len(cols):
        return kept, [], f"reuse.store: {len(kept)} run(s) of {path} join this store's {at0}{left}"
    if not has:
        return [], [], (f"reuse.store {path}: its runs did not measure {target}, so this fit uses this store's runs only "
                        f"(the new domains {', '.join(new) or '-'} have no metrics there){left}")
    missing = [c for c in cols if c not in has]
    return [], kept, (f"reuse.store: {len(kept)} run(s) of {path} join {at0}, for the {len(has)} of {len(cols)} components "
                      f"of {target} they measured (not {', '.join(missing)}){left}")


def check_reuse_store(path: str) -> None:
    """A one-line DataError unless ``path`` is a run store (``mixopt sweep`` checks before training, ``fit`` again)."""
    if not Path(path, "store.json").is_file() and not Path(path, "runs").is_dir():
        raise DataError(f"reuse.store {path} is not a run store (no store.json). Fix the path to the earlier sweep's --store, "
                        "or drop reuse.store.")


def describe_chain(path: str, root: str | Path | None = None) -> str:
    """What ``reuse.store`` brings, for ``mixopt sweep`` to say: the store and the earlier ones it reused in turn."""
    paths, missing = store_chain(path, root)
    earlier = paths[1:]
    return (f"the runs of {path}" + (f" and of the {len(earlier)} store(s) it reused ({', '.join(earlier)})" if earlier else "")
            + (f"; its earlier store {missing} is gone" if missing else ""))


MAX_CHAIN = 32  # stores followed through reuse.store, at most


def store_chain(path: str, root: str | Path | None = None) -> tuple[list[str], str | None]:
    """(the store at ``path`` and those it reused in turn, nearest first, read from each store's meta; the path of an
    earlier store that no longer exists, or None). A store already in the chain (or ``root``, today's) ends it."""
    seen = {Path(root).resolve()} if root else set()
    chain: list[str] = []
    while path and Path(path).resolve() not in seen and len(chain) < MAX_CHAIN:
        if chain and not Path(path, "store.json").is_file() and not Path(path, "runs").is_dir():
            return chain, path
        seen.add(Path(path).resolve())
        chain.append(path)
        path = (((RunStore(path, create=False).meta().get("config") or {}).get("reuse")) or {}).get("store")
    return chain, None


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
    fo, fn = old.get("domain_fingerprints"), new.get("domain_fingerprints")
    if fo and fn:
        # a store swept before stop 29 hashed fields that change no token (quality_field, ...): either form matches
        fov, fnv = old.get("domain_fingerprints_verbatim") or {}, new.get("domain_fingerprints_verbatim") or {}
        forms = [(lambda d, f=f, v=v: {f.get(d), v.get(d)} - {None}) for f, v in ((fo, fov), (fn, fnv))]
        changed = [d for d in shared if not forms[0](d) & forms[1](d)]
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
    """Evaluation-only target sets both stores measured whose text changed (stores from before stop 25 kept no target
    fingerprints: their sets are taken as unchanged)."""
    fo, fn = old.get("target_fingerprints") or {}, new.get("target_fingerprints") or {}
    return sorted(t for t in set(fo) & set(fn) if fo[t] != fn[t])


def _shape(proxy: dict[str, Any] | None) -> str:
    return canonical_json({k: v for k, v in id_proxy(proxy or {}).items() if k not in EXECUTION_FIELDS})
