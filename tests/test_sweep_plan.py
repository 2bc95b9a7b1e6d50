"""Sweep planning (anchors over seeds, several proxy sizes), record version 2, reading the store once, stale temporaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from mixopt.cli.main import run
from mixopt.config import config_from_dict
from mixopt.errors import ConfigError
from mixopt.runs.record import RECORD_VERSION, RunRecord, RunSpec
from mixopt.runs.store import RunStore
from mixopt.runs.sweep import execute_runs, plan_sweep, sweep_scales
from tests.test_cli_sweep import records, write_cfg

DATA = SimpleNamespace(token_counts={"a": 1_000_000, "b": 2_000_000, "c": 500_000}, fingerprint="fp0", names=["a", "b", "c"])

# Written by mixopt at 3e426a9 (record version 1: `phases` holds the later phases only).
V1_RECORD = json.dumps({"record": {
    "curves": {"val/a": {"100": 3.5, "200": 3.0}}, "data_fingerprint": "", "info": {}, "label": "twophase-0000",
    "metrics": {"val/a": 3.0}, "mixture": {"a": 0.5, "b": 0.5}, "phases": [[0.8, {"a": 1.0}]], "proxy": None, "reason": "",
    "run_id": "v1run", "seed": 0, "source": "sweep", "status": "ok", "version": 1},
    "sha256": "76286db99000079e64f7e3b015e1c9e1ff6147f180d7be479f888b2d21460c73"})


def _cfg(**over):
    raw = {"runs": 3, "proxy": {"tokens": 65536}, "sampler": {"two_phase_runs": 2, "noise_seeds": 1, "noise_mixtures": 0}}
    for k, v in over.items():
        raw[k] = {**raw.get(k, {}), **v} if isinstance(v, dict) else v
    return config_from_dict(raw)


# ------------------------------------------------------------------ ids and anchors

def test_run_ids_of_a_version_1_plan_are_unchanged():
    """Ids computed by mixopt at 3e426a9 for this plan: an old store resumes, even with proxy fields added since."""
    want = [("natural", "048268e758265a07"), ("uniform", "ae3a81dd227d98a6"), ("sample-0000", "5ed78350a3b231f2"),
            ("sample-0001", "7a72bc3223a8f548"), ("sample-0002", "f14bbba037251cd9"), ("twophase-0000", "83ce58c4d0254e0b"),
            ("twophase-0001", "570bc7e90252fd02")]
    specs = plan_sweep(_cfg(), DATA)
    assert [(s.label, s.run_id) for s in specs] == want
    assert all(s.phases[0] == (0.0, s.mixture) for s in specs)  # full phases from start 0
    assert [len(s.phases) for s in specs] == [1] * 5 + [2] * 2


def test_anchors_repeat_over_seeds():
    specs = plan_sweep(_cfg(sampler={"noise_seeds": 3, "noise_mixtures": 1}), DATA)
    by_label = {s.label: s for s in specs}
    assert len(by_label) == len(specs) == 7 + 3 * 2  # natural, uniform, sample-0000: two more seeds each
    for anchor in ("natural", "uniform", "sample-0000"):
        base = by_label[anchor]
        for k in (1, 2):
            rep = by_label[f"{anchor}~seed{k}"]
            assert rep.seed == base.seed + k and rep.phases == base.phases and rep.proxy == base.proxy
            assert rep.run_id != base.run_id
    assert "sample-0001~seed1" not in by_label and "twophase-0000~seed1" not in by_label
    # the repeats come after the single-seed runs, so the plan's first runs keep their order
    assert [s.label for s in specs[:7]] == [s.label for s in plan_sweep(_cfg(), DATA)]


def test_noise_mixtures_beyond_runs_are_still_anchors():
    specs = plan_sweep(_cfg(runs=1, sampler={"noise_seeds": 2, "noise_mixtures": 2, "two_phase_runs": 0}), DATA)
    assert [s.label for s in specs] == ["natural", "uniform", "sample-0000", "sample-0001", "natural~seed1", "uniform~seed1",
                                        "sample-0000~seed1", "sample-0001~seed1"]


# ------------------------------------------------------------------ several proxy sizes

def test_sizes_plan_many_small_runs_and_few_large_ones():
    cfg = _cfg(runs=5, sizes=[{"name": "xs", "n_embd": 32, "head_size": 32, "runs": 5},
                              {"name": "m", "tokens": 131072, "runs": 2, "two_phase_runs": 0},
                              {"n_layer": 3, "runs": 1, "two_phase_runs": 0}],
               sampler={"noise_seeds": 2, "noise_mixtures": 0})
    scales = sweep_scales(cfg)
    assert [s.name for s in scales] == ["xs", "m", "s2"]
    assert [(s.proxy.n_embd, s.proxy.n_layer, s.proxy.tokens) for s in scales] == [(32, 2, 65536), (64, 2, 131072), (64, 3, 65536)]
    specs = plan_sweep(cfg, DATA)
    per = {name: [s for s in specs if s.label.endswith("@" + name)] for name in ("xs", "m", "s2")}
    assert len(specs) == sum(map(len, per.values()))
    # baselines + sampled + two-phase + baselines under a second seed
    assert [len(v) for v in per.values()] == [2 + 5 + 2 + 2, 2 + 2 + 2, 2 + 1 + 2]
    # nested: a larger scale trains the first mixtures of the smaller one's draw
    mix = {name: [dict(s.mixture) for s in v if s.label.startswith("sample-")] for name, v in per.items()}
    assert mix["m"] == mix["xs"][:2] and mix["s2"] == mix["xs"][:1]
    assert {json.dumps(s.proxy, sort_keys=True) for s in per["m"]} == {json.dumps(scales[1].proxy.model_dump(mode="json"), sort_keys=True)}
    assert len({s.run_id for s in specs}) == len(specs)


def test_bad_size_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"sizes\[1\] gives an invalid proxy.*multiple of head_size"):
        _cfg(sizes=[{}, {"n_embd": 48}])
    with pytest.raises(ConfigError, match="names must be unique"):
        _cfg(sizes=[{"name": "a"}, {"name": "a", "tokens": 131072}])


def test_a_two_size_sweep_records_each_scale(tmp_path):
    cfg = write_cfg(tmp_path, runs=2, proxy={"tokens": 4096, "checkpoints": [1.0], "threads": 1},
                    sizes=[{"name": "small", "n_embd": 32, "runs": 2}, {"name": "big", "n_embd": 64, "head_size": 32, "tokens": 8192, "runs": 1}])
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    recs = list(RunStore(store).records())
    assert sorted(r.label for r in recs) == sorted(["natural@small", "uniform@small", "sample-0000@small", "sample-0001@small",
                                                    "natural@big", "uniform@big", "sample-0000@big"])
    scale = {r.label.split("@")[1]: r.scale for r in recs}
    assert scale["small"]["tokens"] == 4096 and scale["big"]["tokens"] == 8192
    assert scale["small"]["schedule"] == "cosine"
    for s in scale.values():
        assert 0 < s["model_params"] < s["total_params"]
    assert scale["big"]["model_params"] > 3 * scale["small"]["model_params"]  # width 64 vs 32: ~4x the matrices
    small = next(r for r in recs if r.label == "sample-0000@small")
    assert small.scale["total_params"] == small.info["n_params"]


# ------------------------------------------------------------------ record version 2

def test_version_1_record_reads_with_phase_0_prepended(tmp_path):
    rec = RunRecord.from_json(V1_RECORD)
    assert rec.version == RECORD_VERSION == 2
    assert rec.phases == [(0.0, {"a": 0.5, "b": 0.5}), (0.8, {"a": 1.0})]
    assert rec.overall_mixture() == pytest.approx({"a": 0.6, "b": 0.4})
    assert rec.scale == {}
    # a version-1 store: the record is read, and kept as it was written
    store = RunStore(tmp_path / "s")
    store.runs_dir.mkdir(parents=True)
    store.path_of("v1run").write_text(V1_RECORD)
    snap = store.snapshot()
    assert [r.run_id for r in snap.ok] == ["v1run"] and snap.ok[0].phases[1] == (0.8, {"a": 1.0})
    assert store.path_of("v1run").read_text() == V1_RECORD


def test_version_2_round_trip_and_one_convention():
    spec = RunSpec({"a": 0.5, "b": 0.5}, {"tokens": 10}, "fp", 0, phases=((0.0, {"a": 0.5, "b": 0.5}), (0.8, {"a": 1.0})))
    old_style = RunSpec({"a": 0.5, "b": 0.5}, {"tokens": 10}, "fp", 0, phases=((0.8, {"a": 1.0}),))
    assert spec.phases == old_style.phases and spec.run_id == old_style.run_id
    rec = RunRecord(run_id=spec.run_id, mixture=spec.mixture, status="ok", phases=list(spec.phases),
                    scale={"model_params": 10, "total_params": 20, "tokens": 100, "schedule": "wsd"})
    body = json.loads(rec.to_json())["record"]
    assert body["phases"] == [[0.0, {"a": 0.5, "b": 0.5}], [0.8, {"a": 1.0}]] and body["version"] == 2
    back = RunRecord.from_json(rec.to_json())
    assert back.phases == rec.phases and back.scale == rec.scale


def test_curve_accessor_is_sorted_by_tokens():
    rec = RunRecord("r", {"a": 1.0}, "ok", curves={"val/a": {"1000": 2.0, "200": 3.0, "30": 4.0},
                                                  "val/b": {"200": 5.0, "1000": 4.0}, "target/t": {"1000": 1.0}})
    tokens, values = rec.curve("val/a")
    assert tokens.tolist() == [30.0, 200.0, 1000.0] and values.tolist() == [4.0, 3.0, 2.0]
    tokens, values = rec.curve("mean:all-domains")  # val/* at the checkpoints they share
    assert tokens.tolist() == [200.0, 1000.0] and values.tolist() == [4.0, 3.0]
    assert rec.curve("wmean:val/a=3,val/b=1")[1].tolist() == [3.5, 2.5]
    assert rec.curve("val/missing")[0].size == 0 and rec.curve("mean:val/a,val/missing")[0].size == 0


# ------------------------------------------------------------------ the store is read once

def test_has_does_not_parse_and_snapshot_parses_each_record_once(tmp_path):
    store = RunStore(tmp_path / "s")
    for i in range(3):
        store.put(RunRecord(f"r{i}", {"a": 1.0}, "ok" if i else "failed", metrics={"val/a": float(i)} if i else {},
                            reason="" if i else "diverged"))
    store.put(RunRecord("r9", {"a": 1.0}, "failed", reason="diverged"))
    before = RunRecord.parse_count
    assert store.has("r1") and not store.has("nope")
    store.put(RunRecord("r1", {"a": 1.0}, "ok"))  # exists: not overwritten, not parsed
    assert RunRecord.parse_count == before
    with pytest.warns(UserWarning, match=r"2 failed or non-finite run\(s\) excluded .*r9: diverged"):
        snap = store.snapshot()
    assert RunRecord.parse_count - before == 4 and snap.root == store.root
    assert [r.run_id for r in snap.records] == ["r0", "r1", "r2", "r9"]
    assert [r.run_id for r in snap.ok] == ["r1", "r2"] and [r.run_id for r in snap.failed] == ["r0", "r9"]
    assert snap.fingerprint == store.fingerprint()


@pytest.mark.parametrize("resume", [False, True])
def test_sweep_command_parses_each_record_at_most_once(tmp_path, resume):
    cfg = write_cfg(tmp_path, runs=2, proxy={"tokens": 4096, "checkpoints": [1.0], "threads": 1})
    store = tmp_path / "store"
    if resume:
        assert run(["sweep", str(cfg), "--store", str(store), "--runs", "1"]) == 0
    before = RunRecord.parse_count
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    assert RunRecord.parse_count - before <= len(records(store)) == 4


# ------------------------------------------------------------------ one claim → train → put

def test_execute_runs_trains_claimed_runs_and_skips_finished_ones(tmp_path):
    from mixopt.config import load_config
    from mixopt.data.domains import load_domain_set

    cfg = load_config(write_cfg(tmp_path, runs=1, proxy={"tokens": 2048, "checkpoints": [1.0], "threads": 1}))
    data = load_domain_set(cfg.data)
    specs = plan_sweep(cfg, data)
    store = RunStore(tmp_path / "s")
    out = execute_runs(specs[:2], store, data, wait=False)
    assert [o.outcome for o in out] == ["trained", "trained"] and all(o.reason == "" for o in out)
    with store.claim(specs[2].run_id, wait=False):  # held by "another sweep"
        out = execute_runs(specs, store, data, wait=False)
    assert [o.outcome for o in out] == ["skipped", "skipped", "busy"]
    assert not store.has(specs[2].run_id)


# ------------------------------------------------------------------ stale temporaries

KILL_IN_WRITE = """
import os, signal, sys
import mixopt.io
from mixopt.runs.record import RunRecord
from mixopt.runs.store import RunStore

store = RunStore(sys.argv[1])
def die(src, dst):  # killed inside the write, between the temporary and its rename
    os.kill(os.getpid(), signal.SIGKILL)
mixopt.io.os.replace = die
with store.claim("deadbeef00000000", wait=False):
    store.put(RunRecord("deadbeef00000000", {"a": 1.0}, "ok"))
"""


def test_temporaries_of_a_write_killed_midway_are_cleaned_at_sweep_start(tmp_path):
    store_dir = tmp_path / "store"
    RunStore(store_dir).check_writable()
    proc = subprocess.run([sys.executable, "-c", KILL_IN_WRITE, str(store_dir)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    litter = [p.name for p in (store_dir / "runs").iterdir()]
    assert len(litter) == 1 and litter[0].startswith(".deadbeef00000000.json.") and litter[0].endswith(".tmp")
    # a temporary whose run is claimed belongs to a live writer and must stay
    live = store_dir / "runs" / ".cafe000000000000.json.abc123.tmp"
    live.write_text("{")
    old_probe = store_dir / "runs" / ".probe-99999999"
    old_probe.write_bytes(b"x")
    os.utime(old_probe, (1, 1))
    store = RunStore(store_dir)
    held = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom mixopt.runs.store import RunStore\n"
                             f"with RunStore({str(store_dir)!r}).claim('cafe000000000000', wait=False) as g:\n"
                             "    print(g, flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert held.stdout.readline().strip() == "True"
        cfg = write_cfg(tmp_path, runs=1, proxy={"lr": 1e6, "threads": 1})  # diverges at once: a cheap sweep
        assert run(["sweep", str(cfg), "--store", str(store_dir)]) == 0
        left = sorted(p.name for p in store.runs_dir.iterdir() if p.name.startswith("."))
        assert left == [live.name]
    finally:
        held.kill()
        held.wait()
    assert [p.name for p in store.clean_stale_temporaries()] == [live.name]
    assert len(store.snapshot(warn_failed=False).records) == 3 and np.all([r.status == "failed" for r in store.records()])


def test_stacked_group_matches_one_by_one_and_the_local_executor_only_schedules_it(tmp_path, monkeypatch):
    """The stacked (CUDA) path of the local executor, forced on CPU: groups go through execute_runs(stacked=True)."""
    from mixopt.config import load_config
    from mixopt.data.domains import load_domain_set
    from mixopt.proxy import train as proxy_train
    from mixopt.runs import executors

    cfg = load_config(write_cfg(tmp_path, runs=1, proxy={"tokens": 2048, "checkpoints": [0.5, 1.0], "threads": 1, "dtype": "float32"},
                                sampler={"two_phase_runs": 1}))
    data = load_domain_set(cfg.data)
    specs = plan_sweep(cfg, data)
    assert len(specs) == 4 and len(specs[-1].phases) == 2
    calls = []
    real = proxy_train.train_proxies_stacked

    def spy(proxy, schedules, *a, **k):
        calls.append(len(schedules))
        return real(proxy, schedules, *a, **k)

    monkeypatch.setattr(proxy_train, "train_proxies_stacked", spy)
    monkeypatch.setattr(executors, "_stack_size", lambda cfg, data: 3)
    said = []
    summary = executors.run_local(specs, cfg, RunStore(tmp_path / "stacked"), data, on_info=said.append)
    assert calls == [3, 1] and summary.trained == 4
    assert len(said) == 1 and "up to 3 proxies per stack" in said[0] and "eager" in said[0]  # the user hears how
    one_by_one = RunStore(tmp_path / "single")
    assert [o.outcome for o in execute_runs(specs, one_by_one, data, wait=False, threads=1)] == ["trained"] * 4
    a = {r.run_id: r for r in RunStore(tmp_path / "stacked").records()}
    b = {r.run_id: r for r in one_by_one.records()}
    assert sorted(a) == sorted(b)
    for rid in a:
        assert a[rid].status == b[rid].status == "ok"
        assert a[rid].metrics == pytest.approx(b[rid].metrics, rel=1e-4)
        assert a[rid].phases == b[rid].phases


def test_each_record_of_a_stack_carries_the_stacks_mfu(tmp_path, monkeypatch):
    """MFU is the device's utilisation: one model's FLOPs per token times the stack's tokens/s (each record's own
    tokens/s is its share). CUDA is faked: a CPU stack reported as run on an H100."""
    import dataclasses

    from mixopt.config import load_config
    from mixopt.data.domains import load_domain_set
    from mixopt.proxy import mfu as mfu_mod, train as proxy_train

    cfg = load_config(write_cfg(tmp_path, runs=1, proxy={"tokens": 1024, "checkpoints": [1.0], "threads": 1}))
    data = load_domain_set(cfg.data)
    specs = plan_sweep(cfg, data)[:3]
    real, results = proxy_train.train_proxies_stacked, []

    def on_cuda(*a, **k):
        results.extend(dataclasses.replace(r, device="cuda") for r in real(*a, **k))
        return results

    monkeypatch.setattr(proxy_train, "train_proxies_stacked", on_cuda)
    monkeypatch.setattr(mfu_mod, "_device_name", lambda device: "NVIDIA H100 80GB HBM3")
    store = RunStore(tmp_path / "s")
    assert [o.outcome for o in execute_runs(specs, store, data, wait=False, stacked=True)] == ["trained"] * 3
    stack = mfu_mod.mfu(results[0].flops_per_token, sum(r.tokens_per_second for r in results), "cuda")
    for spec, result in zip(specs, results):
        info = store.get(spec.run_id).info
        assert info["tokens_per_second"] == result.tokens_per_second  # the run's own, as before
        assert info["mfu"] == pytest.approx(stack) and info["mfu"] > 2.9 * mfu_mod.mfu(result.flops_per_token,
                                                                                       result.tokens_per_second, "cuda")


def test_worker_count_defaults_to_one_single_thread_run_per_core(monkeypatch):
    from mixopt.runs import executors

    monkeypatch.setattr(executors.os, "cpu_count", lambda: 2)
    big = plan_sweep(_cfg(runs=20, proxy={"tokens": 65536}), DATA)  # 27 runs x 65k tokens > 1M
    small = big[:3]
    cfg = _cfg()
    assert executors.threads_per_run(cfg) == 1
    assert executors.choose_workers(cfg, None, big) == 2  # one per core (stop 32: a third lost 11-14%)
    assert executors.choose_workers(cfg, None, small) == 1  # not worth starting processes
    assert executors.choose_workers(cfg, 3, big) == 3  # --workers
    assert executors.choose_workers(_cfg(workers=1), None, big) == 1  # the config says so
    pinned = _cfg(proxy={"threads": 2})
    assert executors.threads_per_run(pinned) == 2 and executors.default_workers(pinned) == 1
    assert executors.choose_workers(pinned, None, big) == 1  # one two-thread run at a time, in process


def test_uniform_sweeps_honour_the_epoch_cap():
    """sampler.method: uniform with a cap no draw can meet stops before training (it trained past the cap before)."""
    from mixopt.errors import BudgetError
    with pytest.raises(BudgetError):
        plan_sweep(_cfg(runs=4, sampler={"method": "uniform", "max_epochs": 0.001}), DATA)
    specs = plan_sweep(_cfg(runs=4, sampler={"method": "uniform"}), DATA)
    assert len(specs) >= 4
