"""The run store: a directory with one JSON record per run.

Layout::

    STORE/store.json          what the store holds (domains, data fingerprint, sweep config and the configs it
                              replaced); optional, but a corrupt one is an error, never read as empty
    STORE/runs/<run_id>.json  one record each, written atomically, checksummed
    STORE/locks/<run_id>.lock claimed by the process training that run
    STORE/locks/store.lock    held while a writer checks and updates store.json (:meth:`RunStore.store_lock`)
    STORE/locks/active.lock   held shared by every running sweep (:meth:`RunStore.hold_active`)
    STORE/quarantine/         corrupt records moved aside, never deleted

A corrupt or partial record is never silently used. Reading commands skip it
with a warning and leave it where it is; only a writer (a sweep, under the run's
claim) moves it to quarantine, and then trains the run again. A record that a
newer mixopt wrote (a newer record version, or fields this one does not know) is
skipped with a warning to upgrade, never moved and never trained over; a file in
runs/ that is no run record is skipped with a warning. Commands read the store
once, through :meth:`RunStore.snapshot`; ``has`` only checks that a record file
exists.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import ConsistencyError, StoreError
from ..io import atomic_write_json, atomic_write_text
from .record import NotARecord, RecordTooNew, RunRecord, canonical_json, id_proxy


TMP_SUFFIX = ".tmp"  # atomic writes go through ".<name>.<random>.tmp" beside the target (mixopt.io)
PROBE_MAX_AGE_S = 60.0  # a writability probe older than this was left by a killed process
META_TMP_PREFIX = ".store.json."  # store.json's atomic-write temporaries (written only under the store lock)

# Records a writer verified (RunStore.scan) and the next read of the same unchanged file takes instead of parsing it
# again: a sweep checks every record before it trains and the command reads the store after, each record parsed once.
# Keyed by absolute path; an entry is used once, and only while the file's (device, inode, size, mtime) are unchanged.
_VERIFIED: dict[str, tuple[tuple, RunRecord]] = {}


def _stat_key(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class _Unreadable:
    """Why a file in runs/ gives no record: ``kind`` is "corrupt" (quarantined by a writer), "newer" (a newer mixopt
    wrote it: kept, never trained over) or "foreign" (not a run record: kept, skipped)."""

    def __init__(self, kind: str, why: str):
        self.kind, self.why = kind, why


def records_fingerprint(records: list[RunRecord]) -> str:
    """Hash of a set of finished run ids and their statuses (order-free)."""
    h = hashlib.sha256()
    for rec in sorted(records, key=lambda r: r.run_id):
        h.update(f"{rec.run_id}:{rec.status};".encode())
    return h.hexdigest()[:16]


@dataclass
class StoreSnapshot:
    """The store as read once: its metadata, every valid record (sorted by run id) and the usable ones."""

    meta: dict
    records: list[RunRecord]
    root: Path | None = None  # where it was read from (named in messages)
    ok: list[RunRecord] = field(init=False)  # status ok, every final metric finite
    fingerprint: str = field(init=False)

    def __post_init__(self):
        self.ok = [r for r in self.records if r.is_usable()]
        self.fingerprint = records_fingerprint(self.records)

    @property
    def failed(self) -> list[RunRecord]:
        """Records left out of ``ok``: failed runs, or ok runs with a non-finite metric."""
        return [r for r in self.records if not r.is_usable()]


def check_fitted_on(model_meta: dict, store_meta: dict, store_domains: list[str], *, model_name: str, where: str, fix: str) -> None:
    """A model's fingerprints (domains, data) match the store it meets; else a one-line ConsistencyError naming both sides."""
    if sorted(model_meta["domains"]) != sorted(store_domains):
        raise ConsistencyError(f"{model_name} was fitted on domains {sorted(model_meta['domains'])}, but the runs in {where} use "
                               f"{sorted(store_domains)}. {fix}")
    fp_model, fp_store = model_meta.get("data_fingerprint"), store_meta.get("data_fingerprint")
    if fp_model and fp_store and fp_model != fp_store:
        raise ConsistencyError(f"{model_name} was fitted on data {fp_model}, but the runs in {where} were trained on data "
                               f"{fp_store}. {fix}")


def is_store_folder(root: str | Path) -> bool:
    """Whether an existing folder is a run store: it holds ``store.json`` (a sweep's) or ``runs/`` (records; an
    imported store, or one whose store.json was moved away) or ``locks/`` (a store a sweep began, stopped before it
    wrote anything). Readers refuse any other folder, an empty one too (with its own message)."""
    root = Path(root)
    return (root / "store.json").exists() or (root / "runs").is_dir() or (root / "locks").is_dir()


_STORE_ENTRIES = {"store.json", "runs", "locks", "quarantine"}  # what a store holds at its top (doremi/ is verify's)


def check_store_target(root: str | Path) -> None:
    """A writer (sweep, runs import) makes a store in a new or empty folder, or resumes a store; a one-line StoreError
    for a folder that holds other files (its ``locks/`` alone, left by a sweep stopped before it wrote anything, or
    a store another sweep is making right now, is a store being made)."""
    root = Path(root)
    if not root.is_dir() or is_store_folder(root):
        return
    # what a store makes itself (another sweep may be making this one right now): not other files
    others = sorted(p.name for p in root.iterdir() if p.name not in _STORE_ENTRIES
                    and not p.name.startswith("."))  # .gitkeep, .DS_Store, store.json's temporaries: not other files
    if others:
        shown = ", ".join(others[:3]) + (f", ... ({len(others)} in all)" if len(others) > 3 else "")
        raise StoreError(f"{root} is not a run store (no store.json or runs/) and holds other files ({shown}): a store "
                         "is not made among them. Pass a new or empty folder to --store, or the folder `mixopt sweep "
                         "--store` wrote.")


class RunStore:
    def __init__(self, root: str | Path, *, create: bool = True):
        self.root = Path(root)
        if not self.root.exists():
            if not create:
                raise StoreError(f"Run store {self.root} does not exist. Run `mixopt sweep CONFIG --store {self.root}` or `mixopt runs import` first.")
            try:
                self.root.mkdir(parents=True, exist_ok=True)  # two sweeps may create one store at once
            except OSError as exc:
                raise StoreError(f"Cannot create run store {self.root}: {exc.strerror}. Choose a writable directory.") from None
        elif not self.root.is_dir():
            raise StoreError(f"Run store {self.root} is a file, not a directory. Pass a directory path.")
        elif not create and not is_store_folder(self.root):  # e.g. `--store runs` for `--store runs/tiny`
            if not any(self.root.iterdir()):
                raise StoreError(f"Run store {self.root} is an empty folder: it holds no runs yet. Run `mixopt sweep "
                                 f"CONFIG --store {self.root}` or `mixopt runs import --store {self.root}` first.")
            raise StoreError(f"{self.root} is not a run store (no store.json or runs/): pass the folder `mixopt sweep "
                             "--store` (or `mixopt runs import --store`) wrote.")
        self.runs_dir = self.root / "runs"
        self.locks_dir = self.root / "locks"
        self._store_lock_depth = 0

    # ------------------------------------------------------------ reading
    def path_of(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def _load(self, run_id: str) -> RunRecord | _Unreadable | None:
        """The record of a run, why its file gives none (:class:`_Unreadable`), or None when there is no file."""
        path = self.path_of(run_id)
        try:
            st = path.stat()
            hit = _VERIFIED.pop(str(path.absolute()), None)
            if hit is not None and hit[0] == _stat_key(st):
                return hit[1]
            if not path.is_file():
                return _Unreadable("foreign", "a directory, not a record file" if path.is_dir() else "not a regular file")
            text = path.read_text()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            return _Unreadable("corrupt", "not UTF-8 text")
        except OSError as exc:
            raise StoreError(f"Cannot read {path}: {exc.strerror or exc}. Check its permissions; nothing in the store "
                             "was changed.") from None
        try:
            rec = RunRecord.from_json(text)
        except NotARecord as exc:
            return _Unreadable("foreign", str(exc))
        except RecordTooNew as exc:
            return _Unreadable("newer", str(exc))
        except Exception as exc:  # partial, truncated or edited record
            return _Unreadable("corrupt", str(exc) or type(exc).__name__)
        if rec.run_id != run_id:
            return _Unreadable("corrupt", f"its run id {rec.run_id} does not match the file name")
        return rec

    def _warn_unreadable(self, run_id: str, bad: _Unreadable, *, writer: bool) -> None:
        path = self.path_of(run_id)
        if bad.kind == "newer":
            warnings.warn(f"Run record {path} was written by a newer mixopt ({bad.why}); it is skipped, left in place "
                          "and not trained again: upgrade mixopt to use it.", stacklevel=3)
        elif bad.kind == "foreign":
            warnings.warn(f"{path} is not a run record ({bad.why}); it is skipped. Move it out of {self.runs_dir}.",
                          stacklevel=3)
        else:
            warnings.warn(f"Run record {path} is corrupt ({bad.why}); it is skipped{' for now' if writer else ''} and "
                          f"left in place. The next `mixopt sweep` into {self.root} moves it to "
                          f"{self.root / 'quarantine'} (and trains the run again if it plans it).", stacklevel=3)

    def get(self, run_id: str) -> RunRecord | None:
        """The finished record of a run, or None if absent or unreadable (then a warning; the file is not moved)."""
        got = self._load(run_id)
        if isinstance(got, _Unreadable):
            self._warn_unreadable(run_id, got, writer=False)
            return None
        return got

    def held(self, run_id: str) -> bool:
        """For a writer holding the run's claim: whether the store holds the run, so that it must not be trained.

        A readable record, or one a newer mixopt wrote, is held; a corrupt one is moved to quarantine (with a warning)
        and is not; a directory or other non-record in its place is held (a write there would fail), with a warning.
        """
        got = self._load(run_id)
        if got is None or isinstance(got, RunRecord):
            return got is not None
        if got.kind == "corrupt":
            dest = self._quarantine(self.path_of(run_id))
            if dest is not None:
                warnings.warn(f"Corrupt run record {self.path_of(run_id).name} ({got.why}) moved to {dest}; the run is "
                              "trained again now.", stacklevel=2)
                return False
        self._warn_unreadable(run_id, got, writer=True)
        return True

    def scan(self, planned: set[str] | None = None) -> tuple[list[RunRecord], set[str]]:
        """A writer's read of every record at the start of a sweep: (the readable records, sorted by run id; the ids
        the store holds, which the sweep must not train).

        A corrupt record is moved to quarantine under its run's claim (when another process holds the claim, that
        process re-checks it under the claim: :meth:`held`), and its warning says whether this sweep (``planned``)
        trains it again. A record of a newer mixopt is held and skipped with a warning; a non-record is skipped.
        The records read are handed to the next read of the same unchanged files in this process (one parse each).
        """
        _VERIFIED.clear()
        self._warn_stray_entries()
        records: list[RunRecord] = []
        held: set[str] = set()
        for run_id in self.run_ids():
            got = self._load(run_id)
            if isinstance(got, _Unreadable) and got.kind == "corrupt":
                with self.claim(run_id, wait=False) as free:
                    if not free:
                        continue  # its claim holder re-checks it under the claim
                    got = self._load(run_id)  # under the claim: another writer may have replaced it meanwhile
                    if isinstance(got, _Unreadable) and got.kind == "corrupt":
                        dest = self._quarantine(self.path_of(run_id))
                        if dest is not None:
                            then = ("this sweep trains the run again if it plans it" if planned is None else
                                    "the run is trained again in this sweep" if run_id in planned else
                                    "this sweep does not plan that run; a sweep that plans it trains it again")
                            warnings.warn(f"Corrupt run record {self.path_of(run_id).name} ({got.why}) moved to "
                                          f"{dest}; {then}.", stacklevel=2)
                            continue
            if isinstance(got, RunRecord):
                records.append(got)
                held.add(run_id)
                try:
                    _VERIFIED[str(self.path_of(run_id).absolute())] = (_stat_key(self.path_of(run_id).stat()), got)
                except OSError:
                    pass
            elif isinstance(got, _Unreadable):
                self._warn_unreadable(run_id, got, writer=True)
                if got.kind != "foreign":
                    held.add(run_id)  # a newer mixopt's record, or a corrupt one that could not be moved
        return records, held

    def has(self, run_id: str) -> bool:
        """Whether the run's record file exists (not parsed: a corrupt file is found when it is read)."""
        return self.path_of(run_id).is_file()

    def run_ids(self) -> list[str]:
        """Ids of the record files present, sorted (nothing parsed; a directory named *.json is no record)."""
        if not self.runs_dir.exists():
            return []
        return sorted(p.stem for p in self.runs_dir.glob("*.json") if not p.name.startswith(".") and p.is_file())

    def _warn_stray_entries(self) -> None:
        """A warning for each entry of runs/ named like a record that is not a file (e.g. a folder old.json)."""
        if not self.runs_dir.is_dir():
            return
        for p in sorted(self.runs_dir.glob("*.json")):
            if not p.name.startswith(".") and not p.is_file():
                warnings.warn(f"{p} is not a run record ({'a directory' if p.is_dir() else 'not a regular file'}); it "
                              f"is skipped. Move it out of {self.runs_dir}.", stacklevel=3)

    def records(self, *, include_failed: bool = True) -> list[RunRecord]:
        """All valid records, sorted by run id; each file parsed once. Unreadable files are skipped with a warning."""
        self._warn_stray_entries()
        out = []
        for run_id in self.run_ids():
            rec = self.get(run_id)
            if rec is not None and (include_failed or rec.status == "ok"):
                out.append(rec)
        return out

    def snapshot(self, *, warn_failed: bool = True) -> StoreSnapshot:
        """Read the store once: meta, all valid records and the usable (ok, finite) ones.

        With ``warn_failed``, records left out of ``ok`` are named in one warning.
        """
        snap = StoreSnapshot(meta=self.meta(), records=self.records(), root=self.root)
        excluded = snap.failed
        if warn_failed and excluded:
            reasons = "; ".join(f"{r.run_id}: {r.reason or 'non-finite metric'}" for r in excluded[:3])
            warnings.warn(f"{len(excluded)} failed or non-finite run(s) excluded from the table ({reasons}).", stacklevel=2)
        return snap

    def fingerprint(self) -> str:
        """Hash of the set of finished run ids and their statuses (reads every record; prefer ``snapshot().fingerprint``)."""
        return records_fingerprint(self.records())

    @property
    def meta_path(self) -> Path:
        return self.root / "store.json"

    def meta(self) -> dict:
        """What ``store.json`` records (domains, data fingerprint, sweep config...); ``{}`` when the store has none.

        A folder of records without ``store.json`` (e.g. copied run files) stays readable. A ``store.json`` that cannot
        be read or is not a JSON object is a one-line StoreError, never taken as empty: the next write would replace
        the store's data fingerprint and config with this sweep's, and the check that keeps other data out would pass.
        """
        path = self.meta_path
        try:
            text = path.read_text()
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError:
            raise self._corrupt_meta("it is not UTF-8 text") from None
        except OSError as exc:
            raise StoreError(f"Cannot read {path}: {exc.strerror or exc}. Check its permissions; nothing in the store "
                             "was changed.") from None
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._corrupt_meta(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
        if not isinstance(meta, dict):
            raise self._corrupt_meta(f"it holds a JSON {type(meta).__name__}, not an object")
        return meta

    def _corrupt_meta(self, why: str) -> StoreError:
        path = self.meta_path
        return StoreError(
            f"The run store's {path} is corrupt ({why}); it records the store's domains, data fingerprint and sweep "
            f"config, so nothing was read or written. Restore it (from a backup or a copy of the store), or move it "
            f"away (mv {path} {path}.bad) to use the run records without it: the next sweep then writes a new one.")

    def domains(self, meta: dict | None = None) -> list[str]:
        """The domains the store's runs are over: ``store.json``'s, else those the records' mixtures name (a folder of
        records without ``store.json``); ``[]`` for an empty store. Reads every record only in the second case."""
        meta = self.meta() if meta is None else meta
        if meta.get("domains"):
            return list(meta["domains"])
        names: set[str] = set()
        for rec in self.records():
            names.update(rec.mixture)
            for _, m in rec.phases:
                names.update(m)
        return sorted(names)

    # ------------------------------------------------------------ writing
    def put(self, rec: RunRecord) -> Path:
        """Write a record atomically. Never overwrites an existing record (callers hold the run's claim), except a
        corrupt file (not JSON, or its checksum fails), which is moved to quarantine first, with a warning."""
        path = self.path_of(rec.run_id)
        if path.exists():
            if _sealed(path) is not False:
                return path  # a record (of any version), or something that is no record file: kept
            dest = self._quarantine(path)
            if dest is None:
                raise StoreError(f"Cannot move the corrupt run record {path} to {self.root / 'quarantine'}. Fix the "
                                 "permissions of the store, or move that file away by hand.")
            warnings.warn(f"Corrupt run record {path.name} moved to {dest}; the run's new record replaces it.",
                          stacklevel=2)
        return atomic_write_text(path, rec.to_json())

    def update_meta(self, **fields) -> None:
        """Read-modify-write ``store.json`` under the store lock (:meth:`store_lock`), so no writer's fields are lost."""
        with self.store_lock():
            meta = self.meta()
            meta.update(fields)
            atomic_write_json(self.meta_path, meta)

    @contextmanager
    def store_lock(self) -> Iterator[None]:
        """Hold the store-wide lock (``locks/store.lock``, an exclusive ``flock``): a writer checks store.json against
        its config and updates it under it, so two sweeps cannot both pass the checks of an unchanged store.json.
        Reentrant within one RunStore. On entry, store.json temporaries left by a killed writer are removed: every
        write of store.json happens under this lock, so none of them belongs to a live writer."""
        if self._store_lock_depth:
            self._store_lock_depth += 1
            try:
                yield
            finally:
                self._store_lock_depth -= 1
            return
        fd = self._open_lock("store.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._store_lock_depth = 1
            self._clean_meta_temporaries()
            yield
        finally:
            self._store_lock_depth = 0
            os.close(fd)  # closing the only descriptor releases the flock

    def _open_lock(self, name: str) -> int:
        try:
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            return os.open(self.locks_dir / name, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise StoreError(f"Cannot create the lock {self.locks_dir / name} ({exc.strerror or exc}). Free disk space "
                             f"or fix the permissions of {self.root}; nothing in the store was changed.") from None

    def other_sweep_active(self) -> bool:
        """Whether another sweep is running on this store (it holds ``locks/active.lock`` shared: :meth:`hold_active`).
        Call it under :meth:`store_lock`, before this sweep's own :meth:`hold_active`."""
        fd = self._open_lock("active.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def hold_active(self) -> int:
        """Mark this process as sweeping the store (a shared ``flock`` on ``locks/active.lock``) until the returned
        descriptor is closed, or the process ends. Take it under :meth:`store_lock`, after the checks."""
        fd = self._open_lock("active.lock")
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    def _clean_meta_temporaries(self) -> list[Path]:
        removed = []
        for path in sorted(self.root.glob(META_TMP_PREFIX + "*" + TMP_SUFFIX)):
            if path.is_file() and _unlink(path):
                removed.append(path)
        return removed

    def check_writable(self) -> None:
        """Fail early, before any training, if records could not be written."""
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            probe = self.runs_dir / f".probe-{os.getpid()}"
            probe.write_bytes(b"x")
            probe.unlink()
        except OSError as exc:
            raise StoreError(
                f"Run store {self.root} is not writable ({exc.strerror}). Free disk space or fix permissions; existing records are untouched."
            ) from None

    def clean_stale_temporaries(self) -> list[Path]:
        """Delete temporaries that killed writers left in runs/; returns what was removed.

        A record is written to ``.<run_id>.json.<random>.tmp`` and renamed while its
        writer holds the run's lock, so a temporary whose lock is free belongs to no
        live writer. Writability probes older than a minute are removed too.
        """
        if not self.runs_dir.exists():
            return []
        removed = []
        for path in sorted(self.runs_dir.glob(".*")):
            name = path.name
            if name.endswith(TMP_SUFFIX) and ".json." in name:
                run_id = name[1:].split(".json.", 1)[0]
                with self.claim(run_id, wait=False) as free:
                    if free and _unlink(path):
                        removed.append(path)
            elif name.startswith(".probe-") and _age(path) > PROBE_MAX_AGE_S and _unlink(path):
                removed.append(path)
        return removed

    @contextmanager
    def claim(self, run_id: str, *, wait: bool) -> Iterator[bool]:
        """Hold the run's lock; yields False if another process holds it and wait is False."""
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.locks_dir / f"{run_id}.lock"))
        try:
            lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def _quarantine(self, path: Path) -> Path | None:
        """Move a corrupt record aside (never deleted); where it went, or None when it could not be moved. Only a
        writer holding the run's claim calls this."""
        qdir = self.root / "quarantine"
        try:
            qdir.mkdir(exist_ok=True)
            stamp = int(time.time() * 1000)
            dest = qdir / f"{path.name}.{stamp}"
            while dest.exists():  # never replace an earlier quarantined copy
                stamp += 1
                dest = qdir / f"{path.name}.{stamp}"
            os.replace(path, dest)
            return dest
        except OSError:
            return None


def _sealed(path: Path) -> bool | None:
    """Whether a record file is whole and sealed (its checksum matches; nothing else is checked, and it is not counted
    as a parse): True; False when corrupt; None when it is no record file (a directory, JSON without a record)."""
    try:
        outer = json.loads(path.read_bytes())
    except (IsADirectoryError, PermissionError):
        return None
    except (OSError, ValueError):
        return False
    if not isinstance(outer, dict) or not ({"record", "sha256"} & set(outer)):
        return None
    body = outer.get("record")
    try:
        return isinstance(body, dict) and hashlib.sha256(canonical_json(body).encode()).hexdigest() == outer.get("sha256")
    except ValueError:  # a NaN in the body
        return False


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:
        return False


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def mixed_dtype_note(records: list[RunRecord], where: str | Path = "the store", recorded: str | None = None) -> str | None:
    """One line when a store's finished ``records`` were trained in more than one dtype (``info.dtype``: e.g. a store
    resumed by an older mixopt on a machine whose CPU dtype probe decided otherwise), which ``fit`` fits as one proxy
    although the dtype moves losses by about the seed noise; None when they agree. ``recorded``: the store's
    ``proxy_dtype`` (store.json), which a resumed sweep trains in."""
    counts: dict[str, int] = {}
    for rec in records:
        if rec.status == "ok" and rec.info.get("dtype"):
            counts[rec.info["dtype"]] = counts.get(rec.info["dtype"], 0) + 1
    if len(counts) < 2:
        return None
    said = ", ".join(f"{n} {d}" for d, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    runs = Path(str(where)) / "runs"
    fix = (f"Move the runs not trained in {recorded} (the store's `proxy_dtype`) out of {runs} and resume the sweep, "
           f"which trains them again in {recorded}" if recorded else
           f"Move the runs of all but one dtype out of {runs} and resume the sweep, which trains them again in the dtype "
           "the rest agree on")
    return (f"the store {where} holds runs trained in {len(counts)} dtypes ({said}; info.dtype of each record), which "
            f"move losses by about the seed noise but are fitted as one proxy. {fix}, or sweep into a new --store")


def mixed_proxy_problem(records: list[RunRecord], where: str | Path = "the store") -> str | None:
    """One line saying that a store's swept ``records`` train more than one proxy at one scale (e.g. two sweeps with
    other ``proxy.lr`` raced into one new store), which ``fit`` would fit as one proxy; None when they do not.

    A scale is a run's (model_params, tokens) as ``fit`` reads them (``scale``; for a record without one, its proxy's
    shape), so the sizes of a multi-size sweep are no mix. Runs without a proxy (imported) say nothing. Proxies
    compare as their run ids read them (:func:`mixopt.runs.record.id_proxy`).
    """
    by_scale: dict[str, dict[str, list[RunRecord]]] = {}
    for rec in records:
        if not rec.proxy:
            continue
        sc = rec.scale or {}
        if sc.get("model_params") is not None and sc.get("tokens") is not None:
            key = f"model_params={sc['model_params']}, tokens={sc['tokens']}"
        else:
            p = rec.proxy
            key = (f"n_layer={p.get('n_layer')}, n_embd={p.get('n_embd')}, head_size={p.get('head_size')}, "
                   f"tokens={p.get('tokens')}")
        by_scale.setdefault(key, {}).setdefault(canonical_json(id_proxy(rec.proxy)), []).append(rec)
    for key in sorted(by_scale):
        proxies = by_scale[key]
        if len(proxies) < 2:
            continue
        (a, ra), (b, rb) = sorted(proxies.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:2]
        pa, pb = json.loads(a), json.loads(b)
        diffs = [f"proxy.{k} {json.dumps(pa.get(k))} ({len(ra)} runs) vs {json.dumps(pb.get(k))} ({len(rb)} runs)"
                 for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
        return (f"The store {where} holds swept runs of {len(proxies)} proxy settings at one scale ({key}): "
                f"{'; '.join(diffs[:3])}{'; ...' if len(diffs) > 3 else ''}. Fitting them together would treat them as "
                f"one proxy. Move the runs of all but one setting out of {Path(str(where)) / 'runs'} (each record's "
                "`proxy` says which) into a store of their own, and fit each store.")
    return None
