"""Weighting the pool-law fit toward the repeated points (`repetition_fit.point_weights`, ``weighting=``) and the
filtering-schedule benchmark's loss cache (benchmarks/RESULTS.md, filtering schedule)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from mixopt.errors import ConfigError
from mixopt.planning.pool_value import fit_shared_law
from mixopt.repetition_fit import usable_fit
from mixopt.planning.pool_choice import choose_pools
from mixopt.planning.quality import prior_params, priors_on_fitted_scale, resolve_pools
from mixopt.repetition import pool_error
from mixopt.repetition_fit import DEFAULT_WEIGHTING, UNDERTRAINED_WEIGHT, WEIGHTINGS, PoolDecayFit, fit_pool_decay, point_weights
from tests.bench_loader import load_benchmark


# benchmarks/pools_schedule.py --unique 16384 --ks 1,4,16,64,128 (2026-11-30): target loss of a 2-layer proxy trained
# on each DSIR bucket alone for k * U tokens, U = 16,384 (128 samples of 128 tokens).
KS = (1, 4, 16, 64, 128)
U16K = {"b0": [4.7214, 3.6300, 3.0516, 3.0528, 3.2191], "b1": [4.6697, 3.6731, 3.4211, 4.0081, 4.1035],
        "b2": [4.6719, 3.6679, 3.4139, 3.6657, 3.8980], "b3": [4.6859, 3.6384, 3.3737, 3.5638, 3.9357]}


def test_point_weights_uniform_and_repetition():
    S = np.array([1.0, 4.0, 16.0, 64.0]) * 100
    assert np.array_equal(point_weights(S, 100.0, "uniform"), np.ones(4))
    w = point_weights(S, 100.0, "repetition")
    assert w.mean() == pytest.approx(1.0)
    assert np.all(np.diff(w) > 0)  # later points weigh more
    raw = np.log2(2 * np.array([1.0, 4.0, 16.0, 64.0])) * np.array([UNDERTRAINED_WEIGHT, 1, 1, 1])
    assert np.allclose(w, raw / raw.mean())
    assert point_weights([], 100.0, "repetition").size == 0
    assert set(WEIGHTINGS) == {"uniform", "repetition"} and DEFAULT_WEIGHTING == "repetition"
    assert np.allclose(point_weights(S, 100.0), w)  # the default


def test_unknown_weighting_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as info:
        point_weights([1.0, 2.0], 1.0, "late")
    assert "'late'" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        fit_pool_decay([1e6, 2e6, 4e6, 8e6], [0.5, 0.45, 0.42, 0.41], a=0.025, d=0.1, pool_size=1e6,
                       prior_b=-0.1, prior_tau=5.0, weighting="nope")


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_exact_law_points_are_recovered_under_either_weighting(weighting):
    kw = dict(a=0.025, d=0.1, pool_size=1e6)
    S = np.array([1, 2, 4, 8, 16, 32]) * 1e6
    y = np.array([pool_error([(-0.12, 6.0)], s, **kw) for s in S])
    fit = fit_pool_decay(S, y, prior_b=-0.1, prior_tau=5.0, weighting=weighting, **kw)
    assert fit.source == "fit" and fit.b == pytest.approx(-0.12, rel=1e-3) and fit.tau == pytest.approx(6.0, rel=1e-2)
    assert fit.rmse_log < 1e-6 and fit.weighted_rmse_log < 1e-6


def test_repetition_weighting_resists_an_undertrained_first_epoch():
    """A one-epoch point far above the law (a small proxy that saw few steps) pulls the uniform fit; the repetition
    weighting recovers b and tau of the repeated regime more closely."""
    kw = dict(a=0.025, d=0.1, pool_size=1e6)
    S = np.array(KS, dtype=float) * 1e6
    y = np.array([pool_error([(-0.12, 6.0)], s, **kw) for s in S])
    y[0] *= 1.1
    fits = {w: fit_pool_decay(S, y, prior_b=-0.1, prior_tau=5.0, weighting=w, **kw) for w in WEIGHTINGS}
    b_err = {w: abs(f.b + 0.12) for w, f in fits.items()}
    tau_err = {w: abs(np.log(f.tau / 6.0)) for w, f in fits.items()}
    assert b_err["repetition"] < 0.7 * b_err["uniform"]
    assert tau_err["repetition"] < 0.8 * tau_err["uniform"]
    assert fits["uniform"].weighted_rmse_log == pytest.approx(fits["uniform"].rmse_log)


def _planner(weighting: str):
    """The benchmark's planner: shared a, d and per-bucket b, tau with ``weighting``; prior where unusable."""
    P = 16384 / 128
    obs = {p: (np.array(KS, float) * P, np.array(y), P) for p, y in U16K.items()}
    a, d, fits = fit_shared_law(obs, {p: prior_params(j) for j, p in enumerate(U16K)}, weighting=weighting)
    cfg = {"a": a, "d": d, "tokens_per_sample": 128.0, "pools": [{"name": p, "share": 0.25} for p in U16K]}
    resolved = [replace(p, b=fits[p.name].b, tau=fits[p.name].tau, law_source="fit") if usable_fit(fits[p.name]) is None
                else p for p in resolve_pools("pool", cfg, unique_tokens=4 * 16384, mean_tokens_per_doc=None, spec=None)]
    return fits, priors_on_fitted_scale(resolved), cfg


@pytest.mark.slow  # 8-17 s on 2 cores
def test_repetition_fit_adds_buckets_at_128_epochs_where_training_says_so():
    """RESULTS.md: at 128U the union of the buckets beats the best bucket alone by 0.24 nats; the uniform fit keeps
    one bucket at every budget, the repetition-weighted one keeps 2 at 128U and still 1 at 8U and 32U."""
    kept = {}
    for w in WEIGHTINGS:
        fits, resolved, cfg = _planner(w)
        kept[w] = [len(choose_pools("pool", resolved, cfg, m * 16384).kept) for m in (8, 32, 128)]
        if w == "repetition":
            assert fits["b0"].tau < 0.7 * _planner("uniform")[0]["b0"].tau  # b0's decay read from the plateau
    assert kept["uniform"] == [1, 1, 1]
    assert kept["repetition"][:2] == [1, 1] and kept["repetition"][2] >= 2


def test_usable_fit_says_why_not():
    good = PoolDecayFit(-0.05, 4.0, "fit", 5, 0.1, "ok", 0.1)
    assert usable_fit(good) is None
    assert "too few runs" in usable_fit(replace(good, source="prior"))
    assert "bound" in usable_fit(replace(good, b=-1e-6))


def test_loss_cache_reuses_runs_and_refuses_another_setting(tmp_path, monkeypatch):
    mod = load_benchmark("pools_schedule", monkeypatch)
    path = tmp_path / "c.json"
    setting = {"target": "docs", "unique": 4096}
    path.write_text(json.dumps({"setting": setting, "losses": {"b0@1x": 3.5}}))
    cache = mod.LossCache(str(path), setting)
    # a cached key is never trained: the job tuple here would fail if it were
    assert cache.get({"b0@1x": ("not", "a", "job")}, workers=1) == {"b0@1x": 3.5}
    with pytest.raises(SystemExit, match="another file"):
        mod.LossCache(str(path), {**setting, "unique": 8192})
