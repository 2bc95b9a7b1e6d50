"""Recheck of stop 40, N5: a resume or verify that trains in the store's recorded dtype while `proxy.dtype: auto` picks
another on this machine says so in one line (which dtype, why, how to train in this machine's)."""

from __future__ import annotations

import pytest

from mixopt.cli.main import run
from tests.test_cli_sweep import write_cfg


def test_a_resume_or_verify_in_the_stores_dtype_says_so_when_auto_picks_another_here(tmp_path, monkeypatch):
    """Before: a store swept where auto meant bf16 (CUDA, or a CPU whose probe chose it) trained its resumed and
    verify runs in bf16 here too, where auto means float32 (e.g. a CPU without bf16 instructions: emulated, slower),
    without a word (recheck 40, N5)."""
    import warnings

    from mixopt.proxy import device as dev
    from tests.test_store_dtype import dtypes, probe_says, sweep

    cfg = write_cfg(tmp_path, runs=4)
    store, plan = tmp_path / "store", tmp_path / "plan.yaml"
    probe_says(monkeypatch, True)
    sweep(cfg, store)
    assert run(["propose", str(cfg), "--store", str(store), "--no-projector", "--out", str(plan)]) == 0
    probe_says(monkeypatch, False)
    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: False, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sweep(cfg, store)  # nothing to train: no word, even where auto picks another dtype
    gone = min(dtypes(store))
    (store / "runs" / f"{gone}.json").unlink()
    with pytest.warns(UserWarning) as said:
        sweep(cfg, store)
    lines = [str(w.message) for w in said if "auto picks" in str(w.message)]
    assert len(lines) == 1 and f"the store {store} trains its runs in bfloat16 (`proxy_dtype`" in lines[0]
    assert "auto picks float32 on this machine (this CPU has no bf16 instructions" in lines[0]
    assert "sweep into a new --store with proxy.dtype: float32 pinned" in lines[0]
    assert set(dtypes(store).values()) == {"bfloat16"}
    with pytest.warns(UserWarning, match=r"trains its runs in bfloat16 .* auto picks float32 on this machine"):
        assert run(["verify", str(plan), "--store", str(store), "--tokens", "8192", "--seeds", "1", "--against", "natural",
                    "--out", str(tmp_path / "v.json")]) == 0
    probe_says(monkeypatch, True)  # this machine's auto agrees with the store: no word
    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: True, raising=False)
    (store / "runs" / f"{gone}.json").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sweep(cfg, store)
