"""The Ray executor: an unreachable cluster, resume, user errors from inside tasks, threads per task (issue 15, finding 5)."""

from __future__ import annotations

import socket
import time

import pytest

from mixopt.cli.main import run
from mixopt.config import load_config
from mixopt.errors import ConfigError, MixtureError
from mixopt.runs.executors import check_ray_address
from mixopt.runs.record import RunSpec
from mixopt.runs.store import RunStore
from tests.test_cli_sweep import records, write_cfg

FAST = {"tokens": 4096, "checkpoints": [1.0]}


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address_is_one_line_error_at_once(tmp_path, capsys):
    pytest.importorskip("ray", reason="ray is not installed: pip install 'mixopt[ray]'")
    cfg = write_cfg(tmp_path, runs=1, proxy=FAST)
    address = f"127.0.0.1:{_unused_port()}"
    t0 = time.perf_counter()
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "s"), "--executor", "ray", "--ray-address", address]) == 2
    assert time.perf_counter() - t0 < 30  # Ray's own connect retries for about a minute
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"Cannot reach the Ray cluster at '{address}'" in err and "ray start --head" in err
    assert not (tmp_path / "s" / "runs").exists() or not any((tmp_path / "s" / "runs").iterdir())


@pytest.mark.parametrize("address", ["localhost", "host:port", ":x"])
def test_malformed_ray_address(address):
    with pytest.raises(ConfigError, match="host:port"):
        check_ray_address(address)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'mixopt[ray]'")
    import os

    env = {k: os.environ[k] for k in ("MIXOPT_CACHE", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE") if k in os.environ}
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    if started:
        ray.shutdown()


def test_ray_resume_trains_only_the_missing_runs(tmp_path, local_ray):
    from mixopt.data.domains import load_domain_set
    from mixopt.runs.driver import run_sweep
    from mixopt.runs.executors import run_ray
    from mixopt.runs.sweep import plan_sweep

    cfg = load_config(write_cfg(tmp_path, runs=3, proxy=FAST))
    store = tmp_path / "store"
    first = run_sweep(cfg, store, n_runs=1, executor="ray", show_progress=False)
    assert (first.planned, first.trained, first.skipped) == (3, 3, 0)
    done = {k: (store / "runs" / f"{k}.json").read_bytes() for k in records(store)}
    second = run_sweep(cfg, store, executor="ray", show_progress=False)
    assert (second.planned, second.trained, second.skipped, second.failed) == (5, 2, 3, [])
    assert {k: (store / "runs" / f"{k}.json").read_bytes() for k in done} == done  # finished runs untouched
    # tasks handed finished runs skip them: the check inside the task, not only the driver's filter
    data = load_domain_set(cfg.data)
    again = run_ray(plan_sweep(cfg, data), cfg, RunStore(store), data)
    assert (again.trained, again.skipped) == (0, 5)
    recs = records(store)
    # threads per run: the task's CPU reservation (1 by default), not the driver's core count
    assert {r["info"]["threads"] for r in recs.values()} == {1}


def test_ray_task_reserves_the_threads_it_uses(tmp_path, local_ray):
    from mixopt.runs.executors import run_ray
    from mixopt.data.domains import load_domain_set
    from mixopt.runs.sweep import plan_sweep

    cfg = load_config(write_cfg(tmp_path, runs=1, proxy={**FAST, "threads": 2}))
    data = load_domain_set(cfg.data)
    specs = plan_sweep(cfg, data)
    store = RunStore(tmp_path / "s")
    summary = run_ray(specs, cfg, store, data)
    assert summary.trained == 3
    recs = store.records()
    assert {r.info["threads"] for r in recs} == {2}
    # each task held both of the cluster's 2 CPUs, so no two runs trained at once
    spans = sorted((r.info["started_at_s"], r.info["finished_at_s"]) for r in recs)
    assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:])), spans


def test_user_error_inside_a_task_surfaces_as_itself(tmp_path, local_ray):
    from mixopt.data.domains import load_domain_set
    from mixopt.runs.executors import run_ray

    cfg = load_config(write_cfg(tmp_path, runs=1, proxy=FAST))
    data = load_domain_set(cfg.data)
    bad = RunSpec({"code": 0.5, "nonexistent": 0.5}, cfg.proxy.model_dump(mode="json"), data.fingerprint, 0)
    with pytest.raises(MixtureError, match="nonexistent"):
        run_ray([bad], cfg, RunStore(tmp_path / "s"), data)


@pytest.mark.slow
def test_two_raylet_cluster_trains_on_both_nodes(tmp_path):
    """A real multi-node run: two raylets of one CPU each (ray.cluster_utils), reached through --ray-address."""
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'mixopt[ray]'")
    from ray.cluster_utils import Cluster

    from mixopt.runs.driver import run_sweep

    if ray.is_initialized():
        pytest.skip("this process is already connected to a Ray instance")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        cfg = load_config(write_cfg(tmp_path, runs=3, proxy={"tokens": 16384, "checkpoints": [1.0], "dtype": "float32"}))
        store = tmp_path / "store"
        summary = run_sweep(cfg, store, executor="ray", ray_address=cluster.address, show_progress=False)
        assert (summary.trained, summary.failed) == (5, [])
        assert not ray.is_initialized()  # the driver disconnected; the cluster is still up
        recs = list(RunStore(store).records())
        spans = sorted((r.info["started_at_s"], r.info["finished_at_s"]) for r in recs)
        # one CPU per node and one per task: two runs at once means both nodes trained
        assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans
        assert {r.info["threads"] for r in recs} == {1}
    finally:
        cluster.shutdown()
