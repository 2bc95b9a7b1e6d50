"""Reliability under faults: concurrent sweeps, diverging runs, full or read-only disks, a Ray worker killed mid-run."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

import mixopt.io
from mixopt.cli.main import run
from mixopt.runs.record import RunRecord
from tests.test_cli_sweep import records, write_cfg

# `python -m mixopt.cli.main` would run the module as __main__, a second copy whose Typer app has no commands
# registered (the cmd_* modules register on mixopt.cli.main.app); call the installed entry point instead.
CLI = [sys.executable, "-c", "from mixopt.cli.main import main; main()"]
DIVERGE = {"lr": 1e6, "threads": 1}  # every run diverges at once: cheap runs that still write a (failed) record each


def valid_records(store: Path) -> dict[str, RunRecord]:
    """Every file in runs/ must be a whole, checksummed record named after its run id; nothing else may be there."""
    out = {}
    for name in os.listdir(store / "runs"):
        assert name.endswith(".json") and not name.startswith("."), f"litter in runs/: {name}"
        rec = RunRecord.from_json((store / "runs" / name).read_text())
        assert rec.run_id == name[:-5]
        out[rec.run_id] = rec
    assert not (store / "quarantine").exists() or not os.listdir(store / "quarantine"), "a record was corrupted and quarantined"
    return out


def planned(store: Path) -> list[str]:
    return json.loads((store / "store.json").read_text())["planned"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ two sweeps on one store

def test_two_concurrent_sweeps_train_each_run_once(tmp_path):
    cfg = write_cfg(tmp_path, runs=3, proxy={"tokens": 4096, "checkpoints": [1.0], "threads": 1})
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    procs = [subprocess.Popen([*CLI, "sweep", str(cfg), "--store", str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    trained = [int(re.search(r"(\d+) trained now", out).group(1)) for out, _ in outs]
    recs = valid_records(store)
    plan = planned(store)
    assert len(plan) == 5 and sorted(recs) == sorted(plan)  # 3 sampled + natural + uniform, none missing, none extra
    by_pid = {p.pid: 0 for p in procs}
    for rec in recs.values():
        assert rec.status == "ok"
        assert rec.info["pid"] in by_pid, f"run {rec.run_id} trained by unknown process {rec.info['pid']}"
        by_pid[rec.info["pid"]] += 1
    assert [by_pid[p.pid] for p in procs] == trained  # what each process says it trained is what it wrote
    assert sum(trained) == len(plan)  # no run trained twice


# ------------------------------------------------------------------ diverging runs

@pytest.fixture(scope="module")
def diverged_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diverged")
    cfg = write_cfg(tmp, runs=2, proxy=DIVERGE)
    store = tmp / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    return store


@pytest.fixture(scope="module")
def ok_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ok")
    cfg = write_cfg(tmp, runs=4, seed=1, proxy={"tokens": 4096, "checkpoints": [1.0], "threads": 1})
    store = tmp / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    return store


def test_diverging_runs_are_recorded_failed_and_the_sweep_goes_on(diverged_store, tmp_path, capsys):
    recs = valid_records(diverged_store)
    assert sorted(recs) == sorted(planned(diverged_store)) and len(recs) == 4  # every planned run was attempted
    for rec in recs.values():
        assert rec.status == "failed" and rec.metrics == {}
        assert "diverged" in rec.reason and "proxy.lr" in rec.reason  # names the setting to change
    # a rerun does not retrain failed runs: they are finished, just not usable
    cfg = write_cfg(tmp_path, runs=2, proxy=DIVERGE)
    capsys.readouterr()
    assert run(["sweep", str(cfg), "--store", str(diverged_store)]) == 0
    assert "0 trained now" in capsys.readouterr().out


def test_fit_excludes_failed_runs_with_a_warning(ok_store, diverged_store, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(ok_store, mixed)
    for p in (diverged_store / "runs").glob("*.json"):
        shutil.copy(p, mixed / "runs" / p.name)
    n_ok, n_failed = len(records(ok_store)), len(records(diverged_store))
    with pytest.warns(UserWarning, match=rf"{n_failed} failed .*excluded"):
        code = run(["fit", "--store", str(mixed), "--model", "default", "--out", str(tmp_path / "m.pkl"), "--folds", "3"])
    assert code == 0, capsys.readouterr().err
    assert f"on {n_ok} runs" in capsys.readouterr().out.replace("\n", " ")


@pytest.mark.parametrize("n_ok", [0, 1])
def test_fit_with_too_few_ok_runs_is_a_clear_error(ok_store, diverged_store, tmp_path, capsys, n_ok):
    store = tmp_path / "few"
    shutil.copytree(diverged_store, store)
    for p in sorted((ok_store / "runs").glob("*.json"))[:n_ok]:
        shutil.copy(p, store / "runs" / p.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = run(["fit", "--store", str(store), "--model", "default", "--out", str(tmp_path / "m.pkl"), "--folds", "2"])
    assert code == 2
    one_line_error(capsys)
    assert not (tmp_path / "m.pkl").exists()


# ------------------------------------------------------------------ full disk, read-only store

class _FullFile:
    """A file on a disk that fills up: the first write lands half its bytes, then ENOSPC."""

    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()

    def write(self, data):
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.fh, name)


class _FaultyOS:
    """Stands in for `os` inside mixopt.io: record writes into runs/ after the first `allow` fail with `mode`."""

    def __init__(self, allow: int, mode: str):
        self.allow, self.mode, self.seen = allow, mode, 0

    def __getattr__(self, name):
        return getattr(os, name)

    def _hit(self, target: str) -> bool:
        if Path(target).parent.name != "runs":
            return False
        self.seen += 1
        return self.seen > self.allow

    def fdopen(self, fd, *args, **kwargs):
        target = os.readlink(f"/proc/self/fd/{fd}")
        fh = os.fdopen(fd, *args, **kwargs)
        return _FullFile(fh) if self.mode == "enospc" and self._hit(target) else fh

    def replace(self, src, dst):
        if self.mode == "erofs" and self._hit(str(dst)):
            raise OSError(errno.EROFS, "Read-only file system")
        return os.replace(src, dst)


@pytest.mark.parametrize("mode,allow,says", [("enospc", 1, "No space left on device"), ("erofs", 2, "Read-only file system")])
def test_disk_fills_or_goes_read_only_mid_sweep(tmp_path, monkeypatch, capsys, mode, allow, says):
    cfg = write_cfg(tmp_path, runs=2, proxy=DIVERGE)
    store = tmp_path / "store"
    monkeypatch.setattr(mixopt.io, "os", _FaultyOS(allow, mode))
    assert run(["sweep", str(cfg), "--store", str(store)]) == 2
    err = one_line_error(capsys)
    assert says in err and str(store / "runs") in err and ("disk has space" in err or "writable" in err)
    kept = valid_records(store)  # no .tmp litter, no partial record
    assert len(kept) == allow
    before = {k: (store / "runs" / f"{k}.json").read_bytes() for k in kept}
    # space freed / remounted read-write: the same command finishes the sweep and leaves earlier records alone
    monkeypatch.setattr(mixopt.io, "os", os)
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    after = valid_records(store)
    assert sorted(after) == sorted(planned(store))
    assert {k: (store / "runs" / f"{k}.json").read_bytes() for k in kept} == before


def test_read_only_store_fails_before_training(tmp_path, monkeypatch, capsys):
    cfg = write_cfg(tmp_path, runs=2, proxy=DIVERGE)
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store), "--runs", "1"]) == 0
    kept = valid_records(store)
    before = {k: (store / "runs" / f"{k}.json").read_bytes() for k in kept}
    real_write_bytes = Path.write_bytes

    def read_only(self, data):  # root ignores chmod, so make runs/ read-only by hand
        if self.parent == store / "runs":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    monkeypatch.setattr("mixopt.proxy.train.train_proxy", lambda *a, **k: pytest.fail("trained on a read-only store"))
    assert run(["sweep", str(cfg), "--store", str(store)]) == 2
    err = one_line_error(capsys)
    assert "not writable" in err and "Permission denied" in err and "permissions" in err
    assert {k: (store / "runs" / f"{k}.json").read_bytes() for k in valid_records(store)} == before


def test_store_path_is_a_file_or_unreadable(tmp_path, capsys):
    cfg = write_cfg(tmp_path, runs=1, proxy=DIVERGE)
    (tmp_path / "file").write_text("x")
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "file")]) == 2
    assert "is a file" in one_line_error(capsys)
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "file" / "sub")]) == 2
    one_line_error(capsys)


# ------------------------------------------------------------------ a Ray worker killed mid-run

def _kill_a_worker_holding_a_lock(store: Path, killed: dict, stop: threading.Event) -> None:
    import psutil

    locks = store.resolve() / "locks"
    while not stop.is_set():
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                if "default_worker.py" not in cmd and not cmd.startswith("ray::"):  # Ray retitles its workers ray::<task>
                    continue
                held = [f.path for f in proc.open_files() if Path(f.path).parent == locks and f.path.endswith(".lock")]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if held:
                time.sleep(0.5)  # let it get into training
                if any(Path(f.path).name == Path(held[0]).name for f in proc.open_files()):
                    killed.update(pid=proc.pid, run_id=Path(held[0]).stem)
                    os.kill(proc.pid, signal.SIGKILL)
                    return
        time.sleep(0.05)


@pytest.mark.slow
def test_ray_worker_killed_mid_run_is_retried(tmp_path, tmp_path_factory):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'mixopt[ray]'")
    pytest.importorskip("psutil")
    from mixopt.config import load_config
    from mixopt.data.domains import load_domain_set
    from mixopt.runs.driver import run_sweep
    from mixopt.runs.executors import run_ray
    from mixopt.runs.store import RunStore
    from mixopt.runs.sweep import plan_sweep

    env = {"MIXOPT_CACHE": os.environ["MIXOPT_CACHE"], "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        cfg_path = write_cfg(tmp_path, runs=3, proxy={"tokens": 32768, "threads": 1})  # runs of a second or more, so the kill lands mid-run
        store = tmp_path / "store"
        killed: dict = {}
        stop = threading.Event()
        killer = threading.Thread(target=_kill_a_worker_holding_a_lock, args=(store, killed, stop), daemon=True)
        killer.start()
        summary = run_sweep(load_config(cfg_path), store, executor="ray", show_progress=False)
        stop.set()
        killer.join(timeout=10)
        assert killed, "no Ray worker was caught holding a run lock"
        recs = valid_records(store)
        assert sorted(recs) == sorted(planned(store)) and len(recs) == 5  # exact: none lost, none duplicated
        assert all(r.status == "ok" for r in recs.values())
        assert recs[killed["run_id"]].info["pid"] != killed["pid"]  # the killed run was retried by another worker
        assert summary.trained == 5 and not summary.failed
        # and nothing left to do afterwards: every planned run handed to Ray again is skipped by its task
        cfg = load_config(cfg_path)
        data = load_domain_set(cfg.data)
        again = run_ray(plan_sweep(cfg, data), cfg, RunStore(store), data)
        assert (again.trained, again.skipped, again.failed) == (0, 5, [])
    finally:
        if started:
            ray.shutdown()
