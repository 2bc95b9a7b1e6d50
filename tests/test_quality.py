"""Quality pools inside the plan: sizes, priors, fits, the per-budget choice and the frontier."""

from __future__ import annotations

import json

import pytest

from mixopt.config import DomainPools, DomainSpec, QualityPool
from mixopt.errors import ConfigError, DataError, MixoptError
from mixopt.planning.pool_choice import choose_pools, plan_quality_pools
from mixopt.planning.quality import TMARS_B, TMARS_TAU, prior_params, resolve_pools
from mixopt.repetition import pool_error

POOL_SAMPLES = 12.8e6  # Goyal et al.'s 10% DataComp buckets


def _tmars_pools(**extra) -> dict:
    """Four equal share-pools with the T-MARS law; one token per sample so tokens == samples."""
    return {"a": 0.025, "d": 0.1, "tokens_per_sample": 1.0,
            "pools": [{"name": f"top{i}", "share": 0.25, **extra} for i in range(4)]}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def scored(tmp_path):
    # 12 documents of 9 bytes (+1 end-of-document token = 10 tokens), scores 0.0 .. 1.1
    rows = [{"text": f"doc {i:05d}", "score": i / 10} for i in range(12)]
    return DomainSpec(name="web", path=str(_jsonl(tmp_path / "web.jsonl", rows)), format="jsonl", quality_field="score")


def test_priors_follow_tmars_then_extrapolate():
    assert [prior_params(r) for r in range(4)] == list(zip(TMARS_B, TMARS_TAU))
    b4, tau4 = prior_params(4)
    assert TMARS_B[3] < b4 < 0 and tau4 == TMARS_TAU[3]
    assert prior_params(5)[0] > b4


def test_resolve_from_share_uses_priors_by_rank():
    r = resolve_pools("web", _tmars_pools(), unique_tokens=int(4 * POOL_SAMPLES), mean_tokens_per_doc=None, spec=None)
    assert [p.name for p in r] == ["top0", "top1", "top2", "top3"]
    assert all(p.size_source == "share" and p.samples == pytest.approx(POOL_SAMPLES) for p in r)
    assert [p.b for p in r] == list(TMARS_B) and all(p.law_source == "prior" for p in r)


def test_resolve_from_buckets(scored):
    cfg = DomainPools(pools=[QualityPool(name="hi", min_score=0.8), QualityPool(name="mid", min_score=0.4, max_score=0.8),
                             QualityPool(name="lo", max_score=0.4, b=-0.05, tau=1.0)])
    r = resolve_pools("web", cfg, unique_tokens=None, mean_tokens_per_doc=None, spec=scored)
    assert [(p.name, p.tokens, p.size_source) for p in r] == [("hi", 40, "bucket"), ("mid", 40, "bucket"), ("lo", 40, "bucket")]
    assert r[0].tokens_per_sample == 10 and r[0].samples == 4  # measured mean document length
    assert r[2].law_source == "config" and r[2].b == -0.05
    # with the domain's (training-split) unique tokens known, bucket sizes are scaled to it
    r = resolve_pools("web", cfg, unique_tokens=60, mean_tokens_per_doc=5.0, spec=scored)
    assert [p.tokens for p in r] == [20, 20, 20] and r[0].samples == 4


def test_resolve_from_files(tmp_path):
    a = _jsonl(tmp_path / "a.jsonl", [{"body": "x" * 9}] * 3)
    b = _jsonl(tmp_path / "b.jsonl", [{"body": "y" * 19}] * 2)
    spec = DomainSpec(name="web", path=str(a), text_field="body")
    cfg = {"pools": [{"name": "a", "path": str(a)}, {"name": "b", "path": str(b)}]}
    r = resolve_pools("web", cfg, unique_tokens=None, mean_tokens_per_doc=None, spec=spec)
    assert [(p.tokens, p.size_source) for p in r] == [(30, "file"), (40, "file")]
    assert r[0].tokens_per_sample == pytest.approx(70 / 5)


@pytest.mark.parametrize(
    "pools, match",
    [
        ([{"name": "p"}], "has no size"),
        ([{"name": "p", "share": 0.5, "path": "x.jsonl"}], "ambiguous"),
        ([{"name": "p", "share": 0.6}, {"name": "q", "share": 0.6}], "sum to <= 1"),
        ([{"name": "p", "share": 0.5}, {"name": "p", "share": 0.5}], "unique"),
        ([{"name": "p", "min_score": 0.5}, {"name": "q", "min_score": 0.2, "max_score": 0.6}], "overlap"),
        ([{"name": "p", "min_score": 0.5}, {"name": "q", "max_score": 0.2},
          {"name": "r", "min_score": 0.2, "max_score": 0.5}], "best first"),
        ([{"name": "p", "min_score": 0.5, "max_score": 0.5}], "min_score < max_score"),
        ([{"name": "p", "share": 0.5, "b": 0.1}], "b"),
        ([{"name": "p", "share": 0.5, "tau": 0}], "tau"),
    ],
)
def test_resolve_rejects_bad_pools(pools, match, scored):
    with pytest.raises(ConfigError, match=match):
        resolve_pools("web", {"pools": pools}, unique_tokens=100, mean_tokens_per_doc=10.0, spec=scored)


def test_resolve_rejects_constructed_bad_law():
    # models built without validation still get the planner's message
    dp = DomainPools.model_construct(objective="effective_utility", a=0.025, d=0.1, tokens_per_sample=None,
                                     pools=[QualityPool.model_construct(name="p", b=0.2, tau=1.0, path=None, min_score=None,
                                                                        max_score=None, share=0.5)])
    with pytest.raises(ConfigError, match=r"pools\.0\.b: Input should be less than 0"):
        resolve_pools("web", dp, unique_tokens=100, mean_tokens_per_doc=10.0, spec=None)


def test_resolve_errors_name_the_fix(scored, tmp_path):
    with pytest.raises(ConfigError, match="no quality_field"):
        resolve_pools("web", {"pools": [{"name": "p", "min_score": 0.5}]}, unique_tokens=100, mean_tokens_per_doc=1.0, spec=None)
    with pytest.raises(ConfigError, match="needs the domain's unique token count"):
        resolve_pools("web", {"pools": [{"name": "p", "share": 0.5}]}, unique_tokens=None, mean_tokens_per_doc=1.0, spec=None)
    with pytest.raises(ConfigError, match="tokens_per_sample"):
        resolve_pools("web", {"pools": [{"name": "p", "share": 0.5}]}, unique_tokens=100, mean_tokens_per_doc=None, spec=None)
    with pytest.raises(DataError, match="no document has"):
        resolve_pools("web", {"pools": [{"name": "p", "min_score": 5.0}]}, unique_tokens=None, mean_tokens_per_doc=None, spec=scored)
    with pytest.raises(DataError, match="'p' of domain 'web'"):
        resolve_pools("web", {"pools": [{"name": "p", "path": str(tmp_path / "missing.jsonl")}]},
                      unique_tokens=None, mean_tokens_per_doc=None, spec=None)
    with pytest.raises(ConfigError, match="not have"):
        resolve_pools("web", _tmars_pools(), unique_tokens=100, mean_tokens_per_doc=None, spec=None,
                      observations={"nope": ([1, 2], [1, 1])})


def test_observations_fit_missing_law():
    truth_b, truth_tau, size = -0.2, 3.0, 4e6
    samples = [size * k for k in (1, 2, 4, 8, 16)]
    errors = [pool_error([(truth_b, truth_tau)], s, a=0.025, d=0.1, pool_size=size) for s in samples]
    cfg = {"a": 0.025, "d": 0.1, "tokens_per_sample": 1.0,
           "pools": [{"name": "top", "share": 0.5}, {"name": "rest", "share": 0.5, "b": -0.01, "tau": 1.0}]}
    r = resolve_pools("web", cfg, unique_tokens=int(2 * size), mean_tokens_per_doc=None, spec=None,
                      observations={"top": {"samples": samples, "errors": errors}, "rest": (samples, errors)})
    assert r[0].law_source == "fit" and r[0].b == pytest.approx(truth_b, rel=1e-3) and r[0].tau == pytest.approx(truth_tau, rel=1e-2)
    assert r[1].law_source == "config" and r[1].b == -0.01  # config values win over observations
    few = resolve_pools("web", cfg, unique_tokens=int(2 * size), mean_tokens_per_doc=None, spec=None,
                        observations={"top": (samples[:2], errors[:2])})
    assert few[0].law_source == "prior" and few[0].b == TMARS_B[0]


def test_choose_pools_keeps_more_pools_as_budget_grows():
    cfg = _tmars_pools()
    r = resolve_pools("web", cfg, unique_tokens=int(4 * POOL_SAMPLES), mean_tokens_per_doc=None, spec=None)
    kept = [choose_pools("web", r, cfg, s).kept for s in (32e6, 64e6, 128e6, 640e6, 4096e6)]
    counts = [len(k) for k in kept]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] >= 3
    assert kept[2] == ["top0", "top1"]
    c = choose_pools("web", r, cfg, 128e6)
    assert len(c.errors) == 4 and min(c.errors) == c.errors[1]
    assert c.samples_budget == 128e6 and c.repetitions_of_kept == {"top0": 5.0, "top1": 5.0}
    assert "keep 2 of 4" in c.reason and "priors" in c.reason
    assert choose_pools("web", r, cfg, 0).kept == []


def test_choose_pools_ranks_by_b_and_uses_union_size():
    # the better pool listed second, and twice as big: ranking follows b, epochs follow the union's real size
    cfg = {"a": 0.025, "d": 0.1, "tokens_per_sample": 1.0,
           "pools": [{"name": "small", "share": 1 / 3, "b": -0.10, "tau": 5.0}, {"name": "big", "share": 2 / 3, "b": -0.16, "tau": 6.0}]}
    r = resolve_pools("web", cfg, unique_tokens=int(3e7), mean_tokens_per_doc=None, spec=None)
    c = choose_pools("web", r, cfg, 3e9)
    assert c.ranked == ["big", "small"]
    # at 3e9 samples the big pool alone would be repeated 150x, far past its half-life: the union wins
    assert c.kept == ["big", "small"] and c.errors[1] < c.errors[0]
    assert c.repetitions_of_kept == {"big": pytest.approx(100.0), "small": pytest.approx(100.0)}  # 3e9 / 3e7 unique samples
    # at 3e8 samples the big pool is repeated only 15x and stays better alone
    c = choose_pools("web", r, cfg, 3e8)
    assert c.kept == ["big"] and c.errors[0] < c.errors[1]
    assert c.repetitions_of_kept == {"big": pytest.approx(15.0)}


def test_plan_quality_pools_shape():
    cfg = _tmars_pools()
    counts = {"web": int(4 * POOL_SAMPLES), "code": 1000}
    kept, reasons, frontier = plan_quality_pools({"web": 0.5, "code": 0.5}, 256e6, {"web": cfg, "code": _tmars_pools()},
                                                 token_counts=counts, tokens_per_doc={"web": 1.0}, specs=[])
    assert kept["web"] == ["top0", "top1"] and set(kept) == {"web", "code"}
    assert len(reasons) == 2 and reasons[1].startswith("web:")
    web = [row for row in frontier if row["domain"] == "web"]
    assert [row["at_plan"] for row in web].count(True) == 1
    assert all(set(row) == {"domain", "budget", "budget_tokens", "best", "errors", "at_plan", "rule"} for row in frontier)
    assert all(len(row["errors"]) == 4 for row in web)
    budgets = [row["budget"] for row in web]
    assert budgets == sorted(budgets) and budgets[0] < 128e6 < budgets[-1]
    plan_row = next(row for row in web if row["at_plan"])
    assert plan_row["budget"] == 128e6 and plan_row["budget_tokens"] == 256e6


def test_plan_quality_pools_skips_unused_and_rejects_unknown_domains(tmp_path):
    cfg = _tmars_pools()
    kept, reasons, frontier = plan_quality_pools({"code": 1.0}, 1e6, {"web": cfg}, token_counts={"web": 100, "code": 100})
    assert kept == {} and frontier == [] and "not in the mixture" in reasons[0]
    with pytest.raises(ConfigError, match="not a training domain"):
        plan_quality_pools({"code": 1.0}, 1e6, {"wbe": cfg}, token_counts={"web": 100, "code": 100})
    with pytest.raises(MixoptError, match="budget_tokens"):
        plan_quality_pools({"web": 1.0}, 0.0, {"web": cfg}, token_counts={"web": 100})
    with pytest.raises(ConfigError, match="(?i)invalid"):
        plan_quality_pools({"web": 1.0}, 1e6, {"web": {"pools": []}}, token_counts={"web": 100})


def test_frontier_plots(tmp_path):
    from mixopt.report.plots import plot_frontier

    _, _, frontier = plan_quality_pools({"web": 1.0}, 128e6, {"web": _tmars_pools()}, token_counts={"web": int(4 * POOL_SAMPLES)})
    out = plot_frontier(frontier, tmp_path / "frontier.png")
    assert out.stat().st_size > 0


def test_choose_pools_uses_the_pools_normalizer_like_plan_pools():
    from mixopt.planning.pools import plan_pools

    raw = {"a": 0.025, "d": 0.1, "pool_size": 1.28e6, "normalizer": 1e3,
           "pools": [{"name": "p1", "b": -0.16, "tau": 6.7273}, {"name": "p2", "b": -0.125, "tau": 8.5455},
                     {"name": "p3", "b": -0.10, "tau": 5.2727}]}
    dp = DomainPools.model_validate(raw)
    resolved = resolve_pools("norm", dp, unique_tokens=None, mean_tokens_per_doc=1.0, spec=None)
    choice = choose_pools("norm", resolved, dp, 1e7)
    planned = plan_pools(dp, [1e7])[0]
    assert choice.errors == pytest.approx(planned["errors"]) and choice.kept == planned["best"]
    default = choose_pools("norm", resolved, {**raw, "normalizer": None}, 1e7)
    assert default.errors != pytest.approx(choice.errors)
    # the reason's small-budget note uses the same scale: a * S / 1e3 = 2.5 here, inside the fitted range
    small = choose_pools("norm", resolved, dp, 1e5)
    assert "below the range" not in small.reason
    assert "below the range" in choose_pools("norm", resolved, dp, 1e4).reason


def test_fitted_laws_use_the_pools_normalizer(tmp_path):
    from mixopt.repetition_fit import fit_pool_decay

    size = 200.0
    samples = [size, 2 * size, 4 * size, 8 * size]
    errors = [pool_error([(-0.2, 3.0)], s, a=2.0, d=0.1, pool_size=size, normalizer=1e3) for s in samples]
    dp = {"a": 2.0, "d": 0.1, "tokens_per_sample": 1.0, "normalizer": 1e3,
          "pools": [{"name": "p", "path": str(_jsonl(tmp_path / "p.jsonl", [{"text": "x" * 199}]))}]}
    (pool,) = resolve_pools("web", dp, unique_tokens=None, mean_tokens_per_doc=None, spec=None,
                            observations={"p": (samples, errors, size)})
    fit = fit_pool_decay(samples, errors, a=2.0, d=0.1, pool_size=size, prior_b=TMARS_B[0], prior_tau=TMARS_TAU[0],
                         normalizer=1e3)
    assert pool.law_source == "fit" and pool.b == pytest.approx(fit.b) and pool.tau == pytest.approx(fit.tau)
    assert pool.b == pytest.approx(-0.2, abs=1e-3)
