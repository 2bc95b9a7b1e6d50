"""End-to-end: the sweep CLI on the embedded corpus, resume after kill -9, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mixopt.cli.main import run

MICRO = {
    "name": "micro",
    "seed": 0,
    "runs": 4,
    "data": {"corpus": "embedded", "include": ["code", "legal", "prose"], "max_documents": 60},
    "proxy": {"n_layer": 1, "n_embd": 32, "head_size": 32, "block_size": 32, "batch_size": 8, "tokens": 8192,
              "checkpoints": [0.5, 1.0], "eval_tokens": 512},
    "sampler": {"baselines": ["natural", "uniform"], "noise_seeds": 1},  # no seed repeats: tests count runs as sampled + 2
    "propose": {"n_candidates": 20000},  # as the packaged tiny config: the default 1M candidates cost seconds a propose
}


def write_cfg(tmp_path: Path, **over) -> Path:
    cfg = json.loads(json.dumps(MICRO))
    for k, v in over.items():
        cfg[k] = v if not isinstance(v, dict) else {**cfg.get(k, {}), **v}
    path = tmp_path / "micro.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def records(store: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text())["record"] for p in (store / "runs").glob("*.json")}


def test_sweep_end_to_end_and_rerun_skips(tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    recs = records(store)
    assert len(recs) == 6  # 4 sampled + natural + uniform
    assert all(r["status"] == "ok" for r in recs.values())
    r = next(iter(recs.values()))
    assert set(r["metrics"]) == {"val/code", "val/legal", "val/prose"}
    assert all(len(c) == 2 for c in r["curves"].values())  # two checkpoints
    before = {k: (store / "runs" / f"{k}.json").read_bytes() for k in recs}
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "0 trained now" in out and "6 already done" in out
    assert {k: (store / "runs" / f"{k}.json").read_bytes() for k in recs} == before
    # export: one row per run
    csv = tmp_path / "runs.csv"
    assert run(["runs", "export", "--store", str(store), "--out", str(csv)]) == 0
    assert len(csv.read_text().splitlines()) == 7


def _sweep_proc(cfg: Path, store: Path, runs: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "mixopt", "sweep", str(cfg), "--store", str(store), "--runs", str(runs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(5))
def test_kill_9_at_random_points_then_resume_is_exact(tmp_path, trial):
    """issue 7: five kill -9 trials at random points; the resumed sweep is exact."""
    import random

    rng = random.Random(trial)  # a random point: after some number of finished runs, plus a random delay
    _kill_and_resume(tmp_path, kill_after=rng.uniform(0.0, 0.4), after_runs=[0, 3, 7, 12, 18][trial], n_runs=24)


def test_kill_9_then_resume_is_exact(tmp_path):
    _kill_and_resume(tmp_path, kill_after=None)


def _kill_and_resume(tmp_path: Path, kill_after: float | None, n_runs: int = 5, after_runs: int = 2):
    cfg = write_cfg(tmp_path, runs=n_runs)
    store = tmp_path / "store"
    proc = _sweep_proc(cfg, store, n_runs)
    deadline = time.time() + 120

    def n_done() -> int:
        return len(list((store / "runs").glob("*.json"))) if (store / "runs").exists() else 0

    while time.time() < deadline and n_done() < after_runs and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(kill_after or 0.0)
    assert proc.poll() is None, f"the sweep ended before the kill: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    done_before = {k: (store / "runs" / f"{k}.json").read_bytes() for k in records(store)} if (store / "runs").exists() else {}
    assert run(["sweep", str(cfg), "--store", str(store), "--runs", str(n_runs)]) == 0
    after = records(store)
    assert len(after) == n_runs + 2  # exactly the planned runs: sampled + 2 baselines, none lost, none duplicated
    meta = json.loads((store / "store.json").read_text())
    assert sorted(meta["planned"]) == sorted(after)
    if kill_after is None:
        assert 2 <= len(done_before) < n_runs + 2  # killed mid-sweep
    for k, raw in done_before.items():  # finished runs are untouched
        assert (store / "runs" / f"{k}.json").read_bytes() == raw
    # and the resumed store equals a clean sweep, metric for metric
    clean = tmp_path / "clean"
    assert run(["sweep", str(cfg), "--store", str(clean), "--runs", str(n_runs)]) == 0
    assert {k: r["metrics"] for k, r in records(clean).items()} == {k: r["metrics"] for k, r in after.items()}


def _err(capsys) -> str:
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "over,match",
    [
        ({"data": {"include": ["code", "nonexistent"]}}, "Unknown embedded domains"),
        ({"proxy": {"n_embd": 48, "head_size": 32}}, "multiple of head_size"),
        ({"proxy": {"tokens": 10**10}, "sampler": {"max_epochs": 1}}, "cannot supply"),
        ({"bogus_key": 1}, "bogus_key"),
    ],
)
def test_bad_config_is_one_line_error(tmp_path, capsys, over, match):
    cfg = write_cfg(tmp_path, **over)
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "s")]) == 2
    err = _err(capsys)
    assert match in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_broken_yaml_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs: [1, 2\nproxy: {")
    assert run(["sweep", str(bad), "--store", str(tmp_path / "s")]) == 2
    assert "not valid YAML" in _err(capsys)
    assert run(["sweep", str(tmp_path / "nope.yaml"), "--store", str(tmp_path / "s")]) == 2
    assert "does not exist" in _err(capsys)


def test_missing_data_file_domain(tmp_path, capsys):
    cfg = write_cfg(tmp_path, data={"corpus": "none", "include": None, "domains": [{"name": "x", "path": str(tmp_path / "missing.jsonl")}]})
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "s")]) == 2
    err = _err(capsys)
    assert "does not exist" in err and len(err.splitlines()) == 1


def test_worker_processes_match_sequential_at_pinned_threads(tmp_path):
    """--workers N trains in spawned processes; with proxy.threads pinned the metrics are bit-identical."""
    cfg = write_cfg(tmp_path, runs=3, proxy={"threads": 1})
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "par"), "--workers", "2"]) == 0
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "seq")]) == 0
    par, seq = records(tmp_path / "par"), records(tmp_path / "seq")
    assert len(par) == 5 and {k: r["metrics"] for k, r in par.items()} == {k: r["metrics"] for k, r in seq.items()}
    assert len({r["info"]["pid"] for r in par.values()}) >= 2  # really trained in other processes


def test_sweeping_other_data_into_a_store_is_refused(tmp_path, capsys):
    """Runs on two data sets in one store would be fitted together: the second sweep stops before training."""
    store = tmp_path / "store"
    assert run(["sweep", str(write_cfg(tmp_path, runs=1)), "--store", str(store)]) == 0
    before = sorted(p.name for p in (store / "runs").glob("*.json"))
    capsys.readouterr()
    changed = write_cfg(tmp_path, runs=1, data={"max_documents": 40})  # other documents: other data
    assert run(["sweep", str(changed), "--store", str(store)]) != 0
    err = _err(capsys)
    assert "holds runs on other data" in err and "new --store" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in (store / "runs").glob("*.json")) == before


def test_a_store_written_before_fingerprints_dropped_paths_resumes(tmp_path, capsys, monkeypatch):
    """Old mixopt hashed the data's path into the fingerprint (so into every run id). Its stores still resume."""
    import mixopt.data.domains as domains
    from mixopt.data.sources import source_keys

    cfg, store = write_cfg(tmp_path, runs=1), tmp_path / "store"
    with monkeypatch.context() as m:  # the old code: the legacy key is the key
        m.setattr(domains, "source_keys", lambda spec: (source_keys(spec)[1],) * 2)
        m.setenv("MIXOPT_CACHE", str(tmp_path / "old-cache"))
        assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    before = sorted(p.name for p in (store / "runs").glob("*.json"))
    capsys.readouterr()
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    assert "0 trained now" in capsys.readouterr().out
    assert sorted(p.name for p in (store / "runs").glob("*.json")) == before


def test_runs_show_by_label_or_prefix_and_bad_ids(tmp_path, capsys):
    cfg = write_cfg(tmp_path, runs=1)
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    capsys.readouterr()
    assert run(["runs", "show", "natural", "--store", str(store)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["label"] == "natural"
    assert run(["runs", "show", body["run_id"][:6], "--store", str(store)]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == body["run_id"]
    assert run(["runs", "show", "zz-nothing", "--store", str(store)]) != 0
    err = capsys.readouterr().err
    assert "No run in" in err and "zz-nothing" in err and "Traceback" not in err
    assert run(["runs", "show", "", "--store", str(store)]) != 0  # every id has the empty prefix
    assert "matches" in capsys.readouterr().err
