"""The Ray executor against a local Ray instance started by the test."""

import json

import pytest

from tests.test_cli_sweep import records, write_cfg

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'mixopt[ray]'")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    # workers share the test's cache dir, so they reuse its tokens and its CPU dtype decision
    env = {"MIXOPT_CACHE": str(tmp_path_factory.getbasetemp() / "mixopt-cache"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.mark.slow  # a local Ray cluster's start and a sweep: 6-16 s; test_ray.py's resume keeps Ray in the default run
def test_ray_sweep_matches_local_sweep(tmp_path, local_ray):
    from mixopt.cli.main import run

    cfg = write_cfg(tmp_path, runs=3)
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "local")]) == 0
    by_ray, by_local = records(tmp_path / "ray"), records(tmp_path / "local")
    assert len(by_ray) == 5
    assert {k: r["metrics"] for k, r in by_ray.items()} == {k: r["metrics"] for k, r in by_local.items()}
    # a second Ray sweep trains nothing
    before = {k: json.dumps(r, sort_keys=True) for k, r in by_ray.items()}
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert {k: json.dumps(r, sort_keys=True) for k, r in records(tmp_path / "ray").items()} == before
