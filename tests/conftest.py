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


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Token shards go to a per-session cache so tests never touch ~/.cache."""
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path_factory.getbasetemp() / "mixopt-cache"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
