"""The run store: a directory with one JSON record per run.

Layout::

    STORE/store.json          what the store holds (domains, data fingerprint, sweep config and the configs it
                              replaced); optional, but a corrupt one is an error, never read as empty
    STORE/runs/<run_id>.json  one record each, written atomically, checksummed
    STORE/locks/<run_id>.lock claimed by the process training that run
    STORE/quarantine/         corrupt records moved aside, never deleted

A corrupt or partial record is moved to quarantine and the run is trained again;
it is never silently used. Commands read the store once, through
:meth:`RunStore.snapshot`; ``has`` only checks that a record file exists (a
corrupt one is found, and quarantined, when it is read).
"""

from __future__ import annotations

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
from .record import RunRecord


TMP_SUFFIX = ".tmp"  # atomic writes go through ".<name>.<random>.tmp" beside the target (mixopt.io)
PROBE_MAX_AGE_S = 60.0  # a writability probe older than this was left by a killed process


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
        self.runs_dir = self.root / "runs"
        self.locks_dir = self.root / "locks"

    # ------------------------------------------------------------ reading
    def path_of(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def get(self, run_id: str) -> RunRecord | None:
        """The finished record of a run, or None if absent or corrupt (then quarantined)."""
        path = self.path_of(run_id)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"Cannot read {path}: {exc.strerror}. Check permissions.") from None
        try:
            rec = RunRecord.from_json(text)
            if rec.run_id != run_id:
                raise ValueError("run id does not match file name")
            return rec
        except Exception as exc:  # partial, truncated or edited record
            self._quarantine(path, str(exc))
            return None

    def has(self, run_id: str) -> bool:
        """Whether the run's record file exists (not parsed: a corrupt file is found when it is read)."""
        return self.path_of(run_id).is_file()

    def run_ids(self) -> list[str]:
        """Ids of the record files present, sorted (nothing parsed)."""
        if not self.runs_dir.exists():
            return []
        return sorted(p.stem for p in self.runs_dir.glob("*.json") if not p.name.startswith("."))

    def records(self, *, include_failed: bool = True) -> list[RunRecord]:
        """All valid records, sorted by run id; each file parsed once."""
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
        """Write a record atomically. Never overwrites an existing record file (callers hold the run's claim)."""
        path = self.path_of(rec.run_id)
        if path.exists():
            return path
        return atomic_write_text(path, rec.to_json())

    def update_meta(self, **fields) -> None:
        meta = self.meta()
        meta.update(fields)
        atomic_write_json(self.root / "store.json", meta)

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

    def _quarantine(self, path: Path, why: str) -> None:
        qdir = self.root / "quarantine"
        try:
            qdir.mkdir(exist_ok=True)
            dest = qdir / f"{path.name}.{int(time.time() * 1000)}"
            os.replace(path, dest)
            warnings.warn(f"Corrupt run record {path.name} ({why}) moved to {dest}; the run will be trained again.", stacklevel=3)
        except OSError:
            warnings.warn(f"Corrupt run record {path} ({why}) is ignored and will be re-run.", stacklevel=3)


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
