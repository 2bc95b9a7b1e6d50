"""The dtype `proxy.dtype: auto` resolves to is recorded in store.json at a store's first sweep and used by every
later run of the store (review stop 40, F1): a CPU probe that decides otherwise later cannot mix dtypes in one store."""

import json
import shutil

import pytest

from mixopt.cli.main import run
from mixopt.config import ProxyConfig
from mixopt.errors import ConsistencyError
from mixopt.proxy import device as dev
from mixopt.runs.store import RunStore
from tests.test_cli_sweep import records, write_cfg


def probe_says(monkeypatch, bf16: bool) -> None:
    """The CPU dtype probe's answer, as on a CPU with bf16 instructions where bf16 won (or lost) the timing."""
    monkeypatch.setattr(dev, "cpu_prefers_bf16", lambda shape, b, t: bf16)


def dtypes(store) -> dict[str, str]:
    return {k: r["info"]["dtype"] for k, r in records(store).items()}


def sweep(cfg, store, *extra) -> None:
    assert run(["sweep", str(cfg), "--store", str(store), "--workers", "1", *extra]) == 0


@pytest.fixture()
def bf16_store(tmp_path, monkeypatch):
    """A micro store (auto dtype) swept while the probe chose bf16: 8 runs."""
    cfg = write_cfg(tmp_path, runs=6)
    store = tmp_path / "store"
    probe_says(monkeypatch, True)
    sweep(cfg, store)
    assert set(dtypes(store).values()) == {"bfloat16"}
    return cfg, store


def test_resume_trains_in_the_recorded_dtype_whatever_the_probe_says_now(bf16_store, monkeypatch):
    cfg, store = bf16_store
    assert json.loads((store / "store.json").read_text())["proxy_dtype"] == "bfloat16"
    gone = min(records(store))
    (store / "runs" / f"{gone}.json").unlink()
    probe_says(monkeypatch, False)  # another cache, a loaded machine: the probe now decides fp32
    with pytest.warns(UserWarning, match="trains its runs in bfloat16 .* auto picks float32 on this machine"):
        sweep(cfg, store)  # said in one line (recheck 40, N5)
    assert set(dtypes(store).values()) == {"bfloat16"} and gone in dtypes(store)


def test_an_older_store_json_without_the_record_takes_its_runs_dtype(bf16_store, monkeypatch):
    cfg, store = bf16_store
    meta = json.loads((store / "store.json").read_text())
    del meta["proxy_dtype"]  # a store an older mixopt swept
    (store / "store.json").write_text(json.dumps(meta))
    (store / "runs" / f"{min(records(store))}.json").unlink()
    probe_says(monkeypatch, False)
    with pytest.warns(UserWarning, match="trains its runs in bfloat16 .* auto picks float32 on this machine"):
        sweep(cfg, store)
    assert set(dtypes(store).values()) == {"bfloat16"}
    assert json.loads((store / "store.json").read_text())["proxy_dtype"] == "bfloat16"


def test_a_config_pinning_another_dtype_than_the_store_is_refused(bf16_store):
    from mixopt.runs.driver import check_store_dtype

    _, store = bf16_store
    with pytest.raises(ConsistencyError, match=r"trains its runs in bfloat16 .* pins proxy.dtype float32"):
        check_store_dtype(RunStore(store, create=False), "bfloat16", ProxyConfig(dtype="float32"))
    check_store_dtype(RunStore(store, create=False), "bfloat16", ProxyConfig(dtype="auto"))  # auto: the store's


def test_fit_and_sweep_warn_when_a_store_mixes_dtypes(bf16_store, tmp_path, monkeypatch, capsys):
    cfg, store = bf16_store
    other = tmp_path / "fp32"
    probe_says(monkeypatch, False)
    sweep(cfg, other)  # the same run ids, trained in fp32
    assert set(dtypes(other).values()) == {"float32"}
    moved = min(records(store))
    shutil.copy(other / "runs" / f"{moved}.json", store / "runs" / f"{moved}.json")  # as an older mixopt's resume did
    capsys.readouterr()
    sweep(cfg, store)
    err = capsys.readouterr().err
    assert "7 bfloat16, 1 float32" in err and "dtypes" in err
    assert run(["fit", "--store", str(store), "--out", str(tmp_path / "m.pkl"), "--folds", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: the store" in out and "7 bfloat16, 1 float32" in out


def test_an_older_mixed_store_takes_the_dtype_most_of_its_runs_hold():
    from mixopt.runs.driver import store_dtype
    from mixopt.runs.record import RunRecord

    def rec(i, dtype):
        return RunRecord(run_id=f"r{i}", mixture={"a": 1.0}, status="ok", info={"dtype": dtype})

    assert store_dtype({}, [rec(0, "bfloat16"), rec(1, "bfloat16"), rec(2, "float32")]) == "bfloat16"
    assert store_dtype({}, [rec(0, "bfloat16"), rec(1, "float32")]) is None  # a tie: what auto resolves to now
    assert store_dtype({"proxy_dtype": "float32"}, [rec(0, "bfloat16")]) == "float32"
