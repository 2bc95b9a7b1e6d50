"""Review 30: the run store and the sweep driver under races, corrupt or foreign files, write errors and signals."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mixopt.cli.main import run
from mixopt.config import load_config
from mixopt.errors import StoreError
from mixopt.runs.driver import run_sweep
from mixopt.runs.record import RunRecord, RunSpec, canonical_json
from mixopt.runs.store import RunStore
from mixopt.runs.sweep import RunOutcome, SweepSummary

from .test_cli_sweep import write_cfg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, Path]:
    """(config, store) of one small finished sweep: 1 sampled run + natural + uniform."""
    tmp = tmp_path_factory.mktemp("swept")
    cfg = write_cfg(tmp, runs=1)
    assert run(["sweep", str(cfg), "--store", str(tmp / "store")]) == 0
    return cfg, tmp / "store"


def _copy(swept, tmp_path) -> tuple[Path, Path, list[Path]]:
    cfg, store = swept
    shutil.copytree(store, tmp_path / "s")
    return cfg, tmp_path / "s", sorted((tmp_path / "s" / "runs").glob("*.json"))


def _reseal(path: Path, edit) -> None:
    """Edit a record's body and seal it again with a matching checksum, as a careful editor or a newer mixopt would."""
    outer = json.loads(path.read_text())
    edit(outer["record"])
    outer["sha256"] = hashlib.sha256(canonical_json(outer["record"]).encode()).hexdigest()
    path.write_text(json.dumps(outer, indent=1, sort_keys=True) + "\n")


def _quarantined(store: Path) -> list[str]:
    q = store / "quarantine"
    return sorted(os.listdir(q)) if q.is_dir() else []


# ------------------------------------------------------------------ 1: two sweeps with other proxies on a new store

def test_a_second_sweep_with_another_proxy_is_refused_while_the_first_runs(tmp_path, capsys):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    cfg_a = load_config(write_cfg(tmp_path / "a", runs=1))
    cfg_b = write_cfg(tmp_path / "b", runs=1, proxy={"lr": 0.002})
    store = RunStore(tmp_path / "s")
    # what the first sweep leaves at the moment the second one checks: its config recorded, no record written yet
    store.update_meta(config=cfg_a.model_dump(mode="json"))
    fd = store.hold_active()
    try:
        assert run(["sweep", str(cfg_b), "--store", str(store.root)]) == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Another sweep is running on the store") and "proxy.lr" in err and "\n" not in err
    assert store.run_ids() == [] and store.meta()["config"]["proxy"]["lr"] == cfg_a.proxy.lr  # nothing written


def test_a_store_without_runs_and_without_a_running_sweep_takes_another_proxy(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    cfg_a = load_config(write_cfg(tmp_path / "a", runs=1, sampler={"baselines": ["natural"], "noise_seeds": 1}))
    cfg_b = load_config(write_cfg(tmp_path / "b", runs=1, proxy={"lr": 0.002},
                                  sampler={"baselines": ["natural"], "noise_seeds": 1}))
    store = RunStore(tmp_path / "s")
    store.update_meta(config=cfg_a.model_dump(mode="json"))  # a sweep that was stopped before its first record
    summary = run_sweep(cfg_b, store.root, show_progress=False)
    assert summary.trained >= 1 and not summary.failed and store.meta()["config"]["proxy"]["lr"] == 0.002


def test_the_store_lock_is_exclusive_across_processes(tmp_path):
    store = RunStore(tmp_path / "s")
    code = textwrap.dedent(f"""
        import fcntl, os
        fd = os.open({str(store.locks_dir / "store.lock")!r}, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print("free")
        except BlockingIOError:
            print("held")
    """)
    with store.store_lock():
        with store.store_lock():  # reentrant in one RunStore
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "held"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "free"


def _swept_record(run_id: str, lr: float, model_params: int = 1000, tokens: int = 8192, source: str = "sweep") -> RunRecord:
    proxy = {"n_layer": 1, "n_embd": 32, "tokens": tokens, "lr": lr} if source == "sweep" else None
    return RunRecord(run_id=run_id, mixture={"a": 0.5, "b": 0.5}, status="ok", metrics={"val/a": 3.0}, proxy=proxy,
                     source=source, scale={"model_params": model_params, "tokens": tokens, "schedule": "cosine"})


def test_mixed_proxy_problem_names_the_differing_fields_at_one_scale():
    from mixopt.runs.store import mixed_proxy_problem

    one = [_swept_record(f"a{i}", 0.003) for i in range(3)]
    assert mixed_proxy_problem(one, "S") is None
    sizes = one + [_swept_record("b0", 0.003, model_params=4000)]  # another size: a scale of its own
    assert mixed_proxy_problem(sizes, "S") is None
    imported = one + [_swept_record("i0", 0.002, source="import")]
    assert mixed_proxy_problem(imported, "S") is None
    raced = one + [_swept_record(f"c{i}", 0.002) for i in range(2)]
    line = mixed_proxy_problem(raced, "S")
    assert line is not None and "\n" not in line
    assert "2 proxy settings at one scale (model_params=1000, tokens=8192)" in line
    assert "proxy.lr 0.003 (3 runs) vs 0.002 (2 runs)" in line and "S/runs" in line


def test_fit_refuses_a_store_whose_sweep_runs_mix_proxies(tmp_path, capsys):
    store = RunStore(tmp_path / "S")
    for i in range(3):
        store.put(_swept_record(f"a{i}", 0.003))
        store.put(_swept_record(f"c{i}", 0.002))
    assert run(["fit", "--store", str(tmp_path / "S"), "--target", "val/a", "--out", str(tmp_path / "m.pkl")]) == 2
    err = capsys.readouterr().err
    assert "2 proxy settings at one scale" in err and "proxy.lr" in err and not (tmp_path / "m.pkl").exists()


# ------------------------------------------------------------------ 2, 9: reading commands move nothing

def test_reading_commands_move_no_file_and_name_each_unreadable_one(swept, tmp_path):
    _, store, files = _copy(swept, tmp_path)
    files[0].write_text(files[0].read_text()[:200])  # truncated
    _reseal(files[1], lambda r: r.__setitem__("version", 3))  # written by a newer mixopt
    _reseal(files[2], lambda r: r.__setitem__("notes", "checked by hand"))  # a field this mixopt does not know
    (store / "runs" / "notes.json").write_text('{"who": "me"}\n')
    (store / "runs" / "old.json").mkdir()
    before = sorted(os.listdir(store / "runs"))
    with pytest.warns(UserWarning) as caught:
        assert run(["runs", "list", "--store", str(store)]) == 0
        run(["runs", "export", "--store", str(store), "--out", str(tmp_path / "r.csv")])
    said = " | ".join(str(w.message) for w in caught)
    assert sorted(os.listdir(store / "runs")) == before and _quarantined(store) == []
    assert f"{files[0].name} is corrupt" in said and "left in place" in said
    assert f"{files[1].name} was written by a newer mixopt (record version 3" in said and "upgrade mixopt" in said
    assert f"{files[2].name} was written by a newer mixopt (fields this mixopt does not know: notes)" in said
    assert "notes.json is not a run record" in said and "old.json is not a run record (a directory)" in said
    assert "moved to" not in said and "will be trained again" not in said


# ------------------------------------------------------------------ 2, 3, 8, 9: the sweep, the one writer

def test_sweep_retrains_a_corrupt_record_at_once_and_never_moves_a_newer_one(swept, tmp_path, capsys):
    cfg, store, files = _copy(swept, tmp_path)
    corrupt, newer = files[0], files[1]
    corrupt.write_text(corrupt.read_text()[:200])
    _reseal(newer, lambda r: r.__setitem__("version", 3))
    newer_bytes = newer.read_bytes()
    (store / "runs" / "notes.json").write_text('{"who": "me"}\n')
    (store / "runs" / "old.json").mkdir()
    stale = store / ".store.json.k1ll3d00.tmp"  # left by a writer killed inside the store.json write
    stale.write_text("{")
    with pytest.warns(UserWarning) as caught:
        assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    said = " | ".join(str(w.message) for w in caught)
    out = capsys.readouterr().out
    assert "1 trained now, 2 already done" in out  # the corrupt run is trained again now, in this sweep
    assert RunRecord.from_json(corrupt.read_text()).status == "ok"
    assert f"Corrupt run record {corrupt.name}" in said and "the run is trained again in this sweep" in said
    assert [q.split(".json")[0] for q in _quarantined(store)] == [corrupt.stem]  # the corrupt one only
    assert newer.read_bytes() == newer_bytes and "upgrade mixopt" in said  # kept, not trained over
    assert (store / "runs" / "notes.json").is_file() and (store / "runs" / "old.json").is_dir()
    assert not stale.exists()


def test_a_writer_holding_the_claim_quarantines_a_corrupt_record_and_trains_it(tmp_path):
    store = RunStore(tmp_path / "s")
    store.put(RunRecord("r1", {"a": 1.0}, "ok", metrics={"val/a": 1.0}))
    store.path_of("r1").write_text("{")
    with store.claim("r1", wait=False) as got:
        assert got
        with pytest.warns(UserWarning, match="moved to .*trained again now"):
            assert not store.held("r1")
    assert not store.path_of("r1").exists() and len(_quarantined(store.root)) == 1
    _reseal_ok = RunRecord("r2", {"a": 1.0}, "ok", metrics={"val/a": 1.0})
    store.put(_reseal_ok)
    _reseal(store.path_of("r2"), lambda r: r.__setitem__("version", 9))
    with pytest.warns(UserWarning, match="upgrade mixopt"):
        assert store.held("r2")  # a newer mixopt's record: never trained over
    assert store.path_of("r2").is_file()


def test_put_replaces_only_a_corrupt_file(tmp_path):
    """`runs import` (no claim) writes a run whose file is corrupt: the file is moved aside first, never lost."""
    store = RunStore(tmp_path / "s")
    rec = RunRecord("r1", {"a": 1.0}, "ok", metrics={"val/a": 1.0})
    store.path_of("r1").parent.mkdir(parents=True)
    store.path_of("r1").write_text('{"record": {"run_id": "r1"')
    with pytest.warns(UserWarning, match="Corrupt run record r1.json moved to"):
        store.put(rec)
    assert store.get("r1").metrics == {"val/a": 1.0} and len(_quarantined(store.root)) == 1
    store.put(RunRecord("r1", {"a": 1.0}, "ok", metrics={"val/a": 2.0}))  # a sealed record is never overwritten
    assert store.get("r1").metrics == {"val/a": 1.0}


def test_stale_store_json_temporaries_go_when_a_writer_takes_the_store_lock(tmp_path):
    store = RunStore(tmp_path / "s")
    store.update_meta(domains=["a"])
    stale = [tmp_path / "s" / ".store.json.abc123.tmp", tmp_path / "s" / ".store.json.zz9.tmp"]
    for p in stale:
        p.write_text("{")
    other = tmp_path / "s" / ".notes.tmp"
    other.write_text("mine")
    store.update_meta(token_counts={"a": 1})
    assert not any(p.exists() for p in stale) and other.exists()
    assert store.meta() == {"domains": ["a"], "token_counts": {"a": 1}}


# ------------------------------------------------------------------ 4, 5: worker processes

def _failing_or_slow(specs, store_root, threads):
    """A worker task standing in for training: the run labelled 'bad' fails to write, the others take 4 s."""
    spec = specs[0]
    (Path(store_root) / f"started-{spec.label}").write_text(str(os.getpid()))
    if spec.label == "bad":
        raise StoreError(f"Cannot write {store_root}/runs/{spec.run_id}.json: No space left on device.")
    time.sleep(4)
    return [RunOutcome(spec.run_id, "trained")]


def _sleepy(specs, store_root, threads):
    (Path(store_root) / f"pid-{os.getpid()}").write_text("")
    time.sleep(120)
    return [RunOutcome(specs[0].run_id, "trained")]


def _specs(labels) -> list[RunSpec]:
    return [RunSpec({"a": 1.0}, {"tokens": 1}, "fp", i, label=label) for i, label in enumerate(labels)]


def test_a_write_error_in_a_worker_stops_the_pool_at_once(tmp_path):
    from mixopt.runs.executors import _run_pool

    store = RunStore(tmp_path / "s")
    specs = _specs(["bad"] + [f"ok{i}" for i in range(8)])
    with pytest.raises(StoreError, match="No space left"):
        _run_pool(specs, store, None, workers=2, threads=1, summary=SweepSummary(planned=len(specs)), on_run=None,
                  task=_failing_or_slow)
    started = sorted(p.name for p in store.root.glob("started-*"))
    assert "started-bad" in started and len(started) <= 4, started  # not every queued run (9) was started
    time.sleep(0.5)
    assert len(list(store.root.glob("started-*"))) == len(started)  # and none starts after the error


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_end_with_the_sweep(tmp_path, sig):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from mixopt.runs.executors import _run_pool
        from mixopt.runs.store import RunStore
        from mixopt.runs.sweep import SweepSummary
        from tests.test_store_review30 import _sleepy, _specs
        specs = _specs(["a", "b", "c", "d"])
        _run_pool(specs, RunStore({str(tmp_path / "s")!r}), None, workers=2, threads=1,
                  summary=SweepSummary(planned=4), on_run=None, task=_sleepy)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 45
    while len(pids := [int(p.name[4:]) for p in (tmp_path / "s").glob("pid-*")]) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert len(pids) == 2, parent.communicate(timeout=5)
    parent.send_signal(sig)
    _, err = parent.communicate(timeout=30)
    assert parent.returncode == (143 if sig == signal.SIGTERM else -9)
    assert "Traceback" not in err
    deadline = time.time() + 10
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "worker processes outlived the sweep"
