"""Where the stores and the plan a sweep config's ``reuse:`` names lie, and the chain of stores ``reuse.store`` follows.

The sweep records ``reuse.store`` and ``reuse.plan`` as absolute paths in store.json (:func:`absolute_reuse`) and,
under ``reuse_relative``, relative to the store's folder (:func:`relative_reuse`), for a tree moved as a whole, and under
``reuse_store_runs`` some run ids the earlier store holds, which tell it apart from another store made where it was. A
store of an older mixopt recorded them as typed, relative to a folder it did not record: :func:`locate` looks next to
the store's folder and in each folder above it, then in the current folder. The error says where it looked when none
holds it, and names them when several hold a store it cannot tell apart. Which of the chain's runs join a fit: :mod:`mixopt.runs.reused`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import SweepConfig
from ..errors import ConfigError, DataError
from .store import RunStore, StoreSnapshot

MAX_CHAIN = 32  # stores followed through reuse.store, at most


def show(path: str | Path) -> str:
    """``path`` for a message: relative to the current folder when it lies under it, else absolute."""
    full = os.path.abspath(path)
    try:
        rel = os.path.relpath(full)
    except ValueError:  # another drive
        return full
    return full if rel.startswith("..") else rel


def is_run_store(path: str | Path) -> bool:
    return Path(path, "store.json").is_file() or Path(path, "runs").is_dir()


def recorded_reuse(meta: dict[str, Any], key: str) -> str | None:
    """``reuse.<key>`` (store, plan) of the sweep config a store recorded, as recorded; None without one."""
    return (((meta.get("config") or {}).get("reuse")) or {}).get(key)


def locate(recorded: str, root: str | Path | None, meta: dict[str, Any], key: str) -> tuple[Path | None, list[Path]]:
    """(where the path a store at ``root`` recorded as ``reuse.<key>`` lies now, or None; every place looked).

    An absolute path (what the sweep records) is looked for relative to the store's folder (``reuse_relative`` in its
    store.json: the tree moved or copied as a whole) and as it is. A relative one (an older mixopt's, as typed in
    the config, relative to the folder that sweep ran in) is looked for next to the store's folder and in each folder
    above it, nearest first, then in the current folder. A store: the one that holds the runs store.json's
    ``reuse_store_runs`` names (the earlier store's, at sweep time); otherwise, for a store or a plan, the only place
    that holds one (or copies of one: the same run ids, the same bytes); a one-line DataError when that does not tell
    them apart (:func:`_which`)."""
    places = _places(recorded, root, meta, key)
    return _which(recorded, root, meta, key, places), places


def _places(recorded: str, root: str | Path | None, meta: dict[str, Any], key: str) -> list[Path]:
    path = Path(recorded).expanduser()
    base = Path(os.path.abspath(root)) if root is not None else None
    if path.is_absolute():  # relative to the store first: of two copies of one store, the one in the store's own tree
        rel = (meta.get("reuse_relative") or {}).get(key)
        places = [base / rel, path] if rel and base is not None else [path]
    else:
        places = [above / path for above in base.parents] if base is not None else []
        places.append(Path.cwd() / path)
    return list(dict.fromkeys(Path(os.path.normpath(p)) for p in places))


def _holding(places: list[Path], key: str) -> list[Path]:
    """The places that hold a run store (``key`` store) or a file (plan), one per store folder or file (a path and a
    link to it are one), in order."""
    held: dict[Path, Path] = {}
    for p in places:
        if is_run_store(p) if key == "store" else p.is_file():
            held.setdefault(p.resolve(), p)
    return list(held.values())


def _content(place: Path, key: str) -> frozenset[str] | bytes:
    """What tells two stores (their run ids) or two plans (their bytes) apart: copies of one have the same."""
    return frozenset(RunStore(place, create=False).run_ids()) if key == "store" else place.read_bytes()


def _which(recorded: str, root: str | Path | None, meta: dict[str, Any], key: str, places: list[Path]) -> Path | None:
    held = _holding(places, key)
    home = show(root) if root is not None else "the store"
    ran = set(meta.get("reuse_store_runs") or []) if key == "store" else set()  # run ids the earlier store held then
    typed = not Path(recorded).is_absolute()  # an older mixopt's path, relative to a folder it did not record
    naming = "naming its earlier store" if key == "store" else "naming its plan"
    fix = (f"resume this store's sweep {'from the folder it was swept from' if typed else f'with reuse.{key} {naming}'} "
           f"(`mixopt sweep CONFIG --store {home}`): it records the full path"
           + (" and which runs that store holds" if key == "store" else ""))
    if held and ran:
        ours = [p for p in held if ran & set(RunStore(p, create=False).run_ids())]
        if not ours:
            raise DataError(f"reuse.store {recorded} (recorded in {home}/store.json): {_looked(held)} "
                            f"{'holds a run store' if len(held) == 1 else 'hold run stores'}, but none of the runs its "
                            f"earlier store held when {home} was swept (e.g. {min(ran)}): another store lies there now. "
                            f"Move the earlier store back there, or {fix}.")
        return ours[0]  # several: copies of one store (they hold the same runs)
    if len(held) > 1 and len({_content(p, key) for p in held}) > 1:  # not copies of one
        how = (f" (recorded as typed, relative to the folder {home} was swept from, which an older mixopt did not record)"
               if typed else " (relative to the store as recorded, and the path recorded: its folder was moved or copied)")
        what, other = ("run stores", "the stores that are not its earlier store") if key == "store" else \
            ("plan files, not copies of one", "the files that are not its plan")
        raise DataError(f"reuse.{key} {recorded} of {home} could be any of {len(held)} {what}: {_looked(held)}{how}. "
                        f"To tell, {fix}; or move {other} away.")
    return held[0] if held else None


def located_reuse(meta: dict[str, Any], root: str | Path | None, key: str, *, strict: bool = False) -> Path | None:
    """:func:`locate` of a store's recorded ``reuse.<key>``; None when it records none, it is not found, or (unless
    ``strict``: then the one-line DataError) the places that hold it cannot be told apart (``fit`` says so of a store)."""
    recorded = recorded_reuse(meta, key)
    if not recorded:
        return None
    try:
        return locate(recorded, root, meta, key)[0]
    except DataError:
        if strict:
            raise
        return None


def _looked(places: list[Path]) -> str:
    shown = [show(p) for p in places]
    return ", ".join(shown if len(shown) <= 4 else [*shown[:3], "...", shown[-1]])


def absolute_reuse(cfg: SweepConfig) -> SweepConfig:
    """``cfg`` with ``reuse.store`` and ``reuse.plan`` as absolute paths (against the current folder, as the sweep reads
    them), so store.json records where they are and later commands find them from any folder."""
    if cfg.reuse is None:
        return cfg
    paths = {k: os.path.abspath(os.path.expanduser(v)) for k in ("store", "plan") if (v := getattr(cfg.reuse, k))}
    return cfg.model_copy(update={"reuse": cfg.reuse.model_copy(update=paths)}) if paths else cfg


def relative_reuse(cfg: SweepConfig, store_dir: str | Path) -> dict[str, str]:
    """``{key: path relative to the store's folder}`` of the config's reuse paths (store.json's ``reuse_relative``)."""
    if cfg.reuse is None:
        return {}
    base = os.path.abspath(store_dir)
    return {k: os.path.relpath(os.path.abspath(v), base) for k in ("store", "plan") if (v := getattr(cfg.reuse, k))}


def same_reuse_paths(old: dict[str, Any] | None, new: dict[str, Any], meta: dict[str, Any], root: str | Path) -> dict | None:
    """The store's recorded config ``old`` with a ``reuse`` path replaced by ``new``'s where both name the same file or
    store, so a resume does not count that as a config change: a relative path an older mixopt recorded, now absolute;
    one spelled through a symbolic link; one where the store's tree was moved or copied as a whole (``reuse_relative``
    finds it next to the store, :func:`locate`)."""
    if not old or not (old.get("reuse") and new.get("reuse")):
        return old
    reuse = dict(old["reuse"])
    for key in ("store", "plan"):
        was, now = reuse.get(key), new["reuse"].get(key)
        if was and now and was != now:
            held = _holding(_places(was, root, meta, key), key)
            if os.path.abspath(was) == now or Path(now).resolve() in {p.resolve() for p in held}:
                reuse[key] = now
    return {**old, "reuse": reuse}


def reuse_store_of(meta: dict[str, Any], root: str | Path | None) -> Path | None:
    """The earlier store a store (``meta``, at ``root``) names in ``reuse.store``, located (:func:`locate`); None
    without one. A one-line DataError, naming the places looked, when none holds it."""
    recorded = recorded_reuse(meta, "store")
    if not recorded:
        return None
    where, places = locate(recorded, root, meta, "store")
    if where is None:
        home = show(root) if root is not None else "the store"
        raise DataError(f"reuse.store {recorded} (recorded in {home}/store.json) is not a run store: looked at "
                        f"{_looked(places)}. Move the earlier store back there, or resume this store's sweep from the "
                        f"folder it was swept from (`mixopt sweep CONFIG --store {home}`: it records the full path), "
                        "or drop reuse.store from that config.")
    return where


def check_reuse_store(path: str, store_dir: str | Path | None = None) -> None:
    """Before the sweep trains: ``path`` (config ``reuse.store``) is a run store, not the store being swept
    (``store_dir``) nor one that reuses it in turn (``fit`` would read this store's runs as earlier ones). A one-line
    ConfigError or DataError otherwise."""
    where = Path(os.path.abspath(path))
    if store_dir is not None and where.resolve() == Path(store_dir).resolve():
        raise ConfigError(f"reuse.store {path} is the store this sweep writes (--store {store_dir}): a store cannot reuse "
                          "its own runs. Set reuse.store to the earlier sweep's --store, or drop reuse.store.")
    if not is_run_store(where):
        raise DataError(f"reuse.store {path} is not a run store (no store.json). Fix the path to the earlier sweep's --store, "
                        "or drop reuse.store.")
    if store_dir is not None:
        chain, _, back = store_chain(where, store_dir)
        if back:
            via = " -> ".join(show(w) for w in [*chain, Path(store_dir)])
            raise ConfigError(f"reuse.store {path} reuses the store this sweep writes in turn ({via}): its runs would "
                              "join their own fit as earlier ones. Set reuse.store to a store swept before this one, or "
                              "drop reuse.store.")


def store_chain(first: str | Path, root: str | Path | None = None, *,
                snapshots: dict[Path, StoreSnapshot] | None = None) -> tuple[list[Path], str | None, bool]:
    """(the store at ``first`` and those it reused in turn, nearest first, each located from the one before
    (:func:`locate`); the recorded path of an earlier store that no longer exists, or None; whether the chain came back
    to ``root``, today's store). A store already in the chain (or ``root``) ends it. With ``snapshots``, each store of
    the chain is read whole into it (``RunStore.snapshot``: its store.json and records, once); else its store.json."""
    top = Path(root).resolve() if root is not None else None
    seen = {top} if top is not None else set()
    chain: list[Path] = []
    path: Path | None = Path(os.path.abspath(first))
    while path is not None and len(chain) < MAX_CHAIN:
        if path.resolve() in seen:
            return chain, None, path.resolve() == top
        seen.add(path.resolve())
        chain.append(path)
        if snapshots is None:
            meta = RunStore(path, create=False).meta()
        else:
            snapshots[path] = RunStore(path, create=False).snapshot()
            meta = snapshots[path].meta
        recorded = recorded_reuse(meta, "store")
        if not recorded:
            break
        path = locate(recorded, path, meta, "store")[0]
        if path is None:
            return chain, recorded, False
    return chain, None, False


def describe_chain(chain: Sequence[Path]) -> str:
    """The stores of a chain (:func:`store_chain`) for messages: the nearest and the earlier ones it reused in turn."""
    earlier = chain[1:]
    return show(chain[0]) + (f" and the {len(earlier)} store(s) it reused ({', '.join(show(w) for w in earlier)})"
                             if earlier else "")
