import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def regmix_dir() -> Path | None:
    """RegMix's public tables: ../shared/anchors/regmix beside the clone, else the repo copy."""
    for cand in (os.environ.get("MIXOPT_REGMIX_DIR"), REPO.parent / "shared" / "anchors" / "regmix", REPO / "benchmarks" / "data" / "regmix"):
        if cand and (Path(cand) / "train_mixture_1m.csv").exists():
            return Path(cand)
    return None


@pytest.fixture()
def regmix():
    d = regmix_dir()
    if d is None:
        pytest.skip("RegMix tables not found in ../shared/anchors/regmix or benchmarks/data/regmix")
    return d


def _offline_env(tmp_path_factory, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("MIXOPT_CACHE", str(tmp_path_factory.getbasetemp() / "mixopt-cache"))
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    mp.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Token shards go to a per-session cache so tests never touch ~/.cache."""
    _offline_env(tmp_path_factory, monkeypatch)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """The output folder of `mixopt demo --config tiny --runs 4`, run once per session (three tests read it; each demo
    costs ~20 s on 2 cores). Tests read it and must not change it."""
    from mixopt.cli.main import run

    out = tmp_path_factory.mktemp("tiny-demo") / "demo"
    with pytest.MonkeyPatch.context() as mp:
        _offline_env(tmp_path_factory, mp)
        assert run(["demo", "--out", str(out), "--config", "tiny", "--runs", "4"]) == 0
    return out
