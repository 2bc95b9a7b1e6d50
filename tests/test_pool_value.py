"""A quality pool's value measured by proxy runs: runs into the store, resume, law sources, fallback, bad input, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from mixopt.cli.main import run
from mixopt.config import ProxyConfig
from mixopt.errors import ConfigError, DataError
from mixopt.planning.pool_value import fit_shared_law, measure_pool_values
from mixopt.planning.pool_choice import plan_quality_pools
from mixopt.planning.quality import TMARS_B, TMARS_TAU, MeasuredPools, resolve_pools
from mixopt.repetition import pool_error
from mixopt.runs.pool_runs import PoolTarget, check_repetitions, pool_label
from mixopt.runs.store import RunStore
from mixopt.runs.table import sweep_records
from tests.test_selection import VOCAB_A, VOCAB_B, docs_from

TINY = dict(n_layer=1, n_embd=16, head_size=16, block_size=16, batch_size=4, tokens=4096, eval_tokens=256, device="cpu",
            dtype="float32", lr=3e-3)


def write_jsonl(path: Path, texts) -> str:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


@pytest.fixture()
def pools(tmp_path):
    """Two file pools of one domain: q1 like the target, q2 unlike it."""
    q1 = write_jsonl(tmp_path / "q1.jsonl", docs_from(VOCAB_A, 20, 1))
    q2 = write_jsonl(tmp_path / "q2.jsonl", docs_from(VOCAB_B, 20, 2))
    return {"pools": [{"name": "q1", "path": q1}, {"name": "q2", "path": q2}]}


TARGET = PoolTarget("tgt", docs_from(VOCAB_A, 10, 3))


def test_measured_pools_train_into_the_store_resume_and_report_sources(pools, tmp_path):
    store = RunStore(tmp_path / "store")
    m = measure_pool_values("web", pools, target=TARGET, proxy=ProxyConfig(**TINY), store=store, unique_tokens=512)
    assert (m.runs.planned, m.runs.trained, m.runs.skipped, m.runs.failed) == (8, 8, 0, [])
    records = store.records()
    assert sorted(r.label for r in records) == sorted(pool_label("web", p, k) for p in ("q1", "q2") for k in (1, 2, 4, 8))
    assert all(r.mixture == {f"web.{r.label[len('pool:web.'):].split('@')[0]}": 1.0} for r in records)
    assert sweep_records(records) == []  # never a run the surrogates learn from
    tokens, losses, unique = m.runs.observations["q1"]
    assert tokens.tolist() == [512, 1024, 2048, 4096] and unique == 512
    assert losses[-1] < losses[0]  # more passes over the pool: lower target loss
    assert m.runs.observations["q1"][1][-1] < m.runs.observations["q2"][1][-1]  # the target-like pool is worth more
    assert isinstance(m.pools, MeasuredPools) and m.law_fit == "grid" and m.pools.a != 0.025
    assert m.pools.tokens_per_sample == pytest.approx(m.resolved[0].tokens_per_sample)
    fitted = [p for p in m.resolved if p.law_source == "fit"]
    ratio = np.mean([p.b for p in fitted]) / np.mean([TMARS_B[p.rank] for p in fitted]) if fitted else 1.0
    for p in m.resolved:
        assert p.law_source in ("fit", "prior") and p.law_reason
        if p.law_source == "prior":  # the prior's b on the fitted pools' scale (priors_on_fitted_scale)
            assert p.b == pytest.approx(TMARS_B[p.rank] * ratio) and p.tau == TMARS_TAU[p.rank] and "T-MARS prior" in p.law_reason
    # the plan uses exactly the measured laws, and its reasons name their sources
    kept, reasons, _ = plan_quality_pools({"web": 1.0}, 1e5, {"web": m.pools}, token_counts={"web": 20000})
    again = resolve_pools("web", m.pools, unique_tokens=20000, mean_tokens_per_doc=None, spec=None)
    assert [(p.b, p.tau, p.law_source) for p in again] == [(p.b, p.tau, p.law_source) for p in m.resolved]
    assert kept["web"] and ("measured by proxy runs" in reasons[0] or "T-MARS priors" in reasons[0])
    # a second call trains nothing and gives the same laws
    before = {r.run_id: store.path_of(r.run_id).read_bytes() for r in records}
    m2 = measure_pool_values("web", pools, target=TARGET, proxy=ProxyConfig(**TINY), store=store, unique_tokens=512)
    assert (m2.runs.trained, m2.runs.skipped) == (0, 8)
    assert m2.laws() == m.laws()
    assert {r.run_id: store.path_of(r.run_id).read_bytes() for r in store.records()} == before


def test_too_few_repetitions_fall_back_to_the_prior_and_say_why(pools, tmp_path):
    m = measure_pool_values("web", pools, target=TARGET, proxy=ProxyConfig(**TINY), store=RunStore(tmp_path / "s"),
                            unique_tokens=512, repetitions=[1, 2])
    assert m.runs.trained == 4
    assert [(p.law_source, p.b) for p in m.resolved] == [("prior", TMARS_B[0]), ("prior", TMARS_B[1])]
    assert all("too few runs" in p.law_reason for p in m.resolved)


def test_a_fit_that_cannot_identify_b_falls_back_to_the_prior():
    size = 100.0
    samples = [size * k for k in (1, 2, 4, 8)]
    rising = [2.0, 2.2, 2.5, 3.0]  # loss grows with training: no b < 0 explains it
    cfg = {"a": 2000.0, "d": 0.5, "tokens_per_sample": 1.0, "pools": [{"name": "top", "share": 0.5}, {"name": "rest", "share": 0.5}]}
    r = resolve_pools("web", cfg, unique_tokens=200, mean_tokens_per_doc=None, spec=None,
                      observations={"top": (samples, rising, size)})
    assert r[0].law_source == "prior" and (r[0].b, r[0].tau) == (TMARS_B[0], TMARS_TAU[0])
    assert "unusable" in r[0].law_reason and "bound" in r[0].law_reason
    assert r[1].law_source == "prior" and r[1].law_reason == "T-MARS prior: not measured"
    # a law the runs do identify is fitted, and the shared (a, d) grid finds the generating point's neighbourhood
    truth = [pool_error([(-0.3, 2.0)], s, a=2000.0, d=0.5, pool_size=size) for s in samples]
    r = resolve_pools("web", cfg, unique_tokens=200, mean_tokens_per_doc=None, spec=None, observations={"top": (samples, truth, size)})
    assert r[0].law_source == "fit" and r[0].b == pytest.approx(-0.3, rel=1e-3)
    a, d, fits = fit_shared_law({"top": (samples, truth, size)}, {"top": (TMARS_B[0], TMARS_TAU[0])})
    assert fits["top"].source == "fit" and fits["top"].rmse_log < 0.01 and a > 0 and 0 <= d < min(truth)


def test_bad_input_gives_one_line_errors_and_trains_nothing(pools, tmp_path):
    store = RunStore(tmp_path / "store")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    blank = write_jsonl(tmp_path / "blank.jsonl", ["", "  "])
    cases = [
        (DataError, "q0", {"pools": [{"name": "q0", "path": str(empty)}]}, {}),
        (DataError, "q0", {"pools": [{"name": "q0", "path": blank}]}, {}),
        (ConfigError, "whole numbers >= 1", pools, {"repetitions": [0, 2]}),
        (ConfigError, "larger than quality pool 'q2' of domain 'web' (5566 tokens)", pools, {"unique_tokens": 5600}),
        (ConfigError, "less than one proxy batch", pools, {"unique_tokens": 10}),
    ]
    for exc, text, cfg, kw in cases:
        with pytest.raises(exc) as info:
            measure_pool_values("web", cfg, target=TARGET, proxy=ProxyConfig(**TINY), store=store,
                                **{"unique_tokens": 512, **kw})
        assert text in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DataError, match="target 'tgt' holds no documents"):
        measure_pool_values("web", pools, target=PoolTarget("tgt", []), proxy=ProxyConfig(**TINY), store=store, unique_tokens=512)
    for text in ("0,1", "1,x", "", "1.5"):
        with pytest.raises(ConfigError, match="repetition"):
            check_repetitions(text)
    assert check_repetitions("8,1,2,2") == (1, 2, 8)
    assert store.records() == []


def _selected(tmp_path, n_pool: int, n_target: int, *method) -> Path:
    """A pool of ``n_pool`` documents of each vocabulary, selected in 2 buckets against ``n_target`` of the first."""
    data = tmp_path / "data"
    data.mkdir()
    pool = write_jsonl(data / "web.jsonl", docs_from(VOCAB_A, n_pool, 5) + docs_from(VOCAB_B, n_pool, 6))
    target = write_jsonl(data / "target.jsonl", docs_from(VOCAB_A, n_target, 7))
    sel = tmp_path / "sel"
    assert run(["select", "--pool", f"web={pool}", "--target", target, *method, "--buckets", "2", "--out", str(sel)]) == 0
    return sel


def test_select_then_plan_pools_measure_on_the_tiny_corpus(tmp_path, capsys):
    sel = _selected(tmp_path, 20, 10, "--method", "dsir")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"proxy": {**TINY, "tokens": 4096}}))
    store = tmp_path / "store"
    args = ["plan-pools", str(sel / "pools.yaml"), "--budgets", "50,5000", "--measure", "--store", str(store),
            "--config", str(cfg), "--unique-tokens", "512", "--json"]
    capsys.readouterr()
    assert run(args) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert [r["budget"] for r in rows] == [50.0, 5000.0]
    assert set(rows[0]["laws"]) == {"q1", "q2"} and {v["law_source"] for v in rows[0]["laws"].values()} <= {"fit", "prior"}
    assert "8 trained" in out.err and "target 'target'" in out.err  # the target of the select run
    labels = sorted(r.label for r in RunStore(store).records())
    assert labels == sorted(pool_label("web", q, k) for q in ("q1", "q2") for k in (1, 2, 4, 8))
    assert run(args) == 0
    assert "0 trained, 8 already in" in capsys.readouterr().err
    # the table names each pool's source; bad input is one line, exit 2
    assert run(args[:-1]) == 0
    text = capsys.readouterr().out
    assert "pool laws (web)" in text and ("fit" in text or "prior" in text)
    assert run(args[:-1] + ["--repetitions", "0,2"]) == 2
    err = capsys.readouterr().err
    assert "repetition" in err and len(err.strip().splitlines()) == 1
    assert run(["plan-pools", str(sel / "pools.yaml"), "--budgets", "50", "--measure"]) == 2
    assert "--store" in capsys.readouterr().err


def test_plan_pools_plans_selects_pools_yaml_with_the_priors_propose_uses(tmp_path, capsys):
    """Review 39 finding 11: plan-pools refused select's pools.yaml ("needs b and tau") while `propose --pools` planned
    the same file with the T-MARS priors. It sizes the pools from their files and uses those priors, saying so."""
    sel = _selected(tmp_path, 10, 5)
    capsys.readouterr()
    assert run(["plan-pools", str(sel / "pools.yaml"), "--budgets", "50,5000", "--json"]) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert rows[0]["laws"] == {q: {"b": TMARS_B[i], "tau": TMARS_TAU[i], "law_source": "prior"} for i, q in enumerate(("q1", "q2"))}
    assert "note: b/tau of q1, q2 are T-MARS priors, not measured" in out.err and "the pools are sized from their files" in out.err
    assert run(["plan-pools", str(sel / "pools.yaml"), "--budgets", "50"]) == 0
    text = capsys.readouterr().out
    assert "T-MARS prior: not measured" in text and "what `propose --pools` plans with" in text


def test_repetition_counts_that_cannot_fit_a_law_are_refused_before_any_run(tmp_path, capsys):
    """Review 39 finding 11: `--repetitions 1,2,4` trained 9 runs, then kept every pool's prior (a fit needs >= 4
    points, >= 2 past one epoch). Refused in one line before anything trains, for plan-pools and propose alike."""
    sel = _selected(tmp_path, 10, 5)
    store = tmp_path / "store"
    capsys.readouterr()
    for cmd in (["plan-pools", str(sel / "pools.yaml"), "--budgets", "50", "--measure", "--store", str(store),
                 "--repetitions", "1,2,4"],
                ["propose", "tiny", "--store", str(store), "--pools", str(sel / "pools.yaml"), "--measure-pools",
                 "--pool-repetitions", "2,4,8", "--out", str(tmp_path / "plan.yaml")]):
        assert run(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "trains 3 run(s) per pool" in err and ">= 4 runs" in err, err
        assert "e.g. --" in err and "1,2,4,8" in err
        assert not store.exists() and not (tmp_path / "plan.yaml").exists()
    assert check_repetitions("1,2,3,4", fit_option="--repetitions") == (1, 2, 3, 4)
    assert check_repetitions("1,2") == (1, 2)  # the library still takes any counts (its fit falls back to the prior)


def test_propose_measure_pools_writes_law_sources_into_the_plan(tmp_path, capsys):
    from tests.test_cli_sweep import write_cfg

    data = tmp_path / "data"
    data.mkdir()
    pool = write_jsonl(data / "code_pool.jsonl", docs_from(VOCAB_A, 20, 5, words=100) + docs_from(VOCAB_B, 20, 6, words=100))
    target = write_jsonl(data / "target.jsonl", docs_from(VOCAB_A, 10, 7))
    sel = tmp_path / "sel"
    assert run(["select", "--pool", f"code={pool}", "--target", target, "--buckets", "2", "--out", str(sel)]) == 0
    cfg = write_cfg(tmp_path, runs=3, propose={"n_candidates": 2000})
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    plan = tmp_path / "plan.yaml"
    args = ["propose", str(cfg), "--store", str(store), "--no-projector", "--budget-tokens", "40000", "--out", str(plan),
            "--pools", str(sel / "pools.yaml"), "--measure-pools", "--pool-repetitions", "1,2,4,8"]
    capsys.readouterr()
    assert run(args) == 0
    assert "8 run(s) trained" in capsys.readouterr().err
    body = yaml.safe_load(plan.read_text())
    laws = body["pool_laws"]["code"]
    assert set(laws) == {"q1", "q2"} and all(v["law_source"] in ("fit", "prior") for v in laws.values())
    assert body["provenance"]["pool_runs"]["code"]["runs"] == 8
    assert body["pools"]["code"] and set(body["pools"]["code"]) <= {"q1", "q2"}
    assert any("quality pools" in r for r in body["reasons"])
    records = RunStore(store).records()
    assert sum(r.label.startswith("pool:code.") for r in records) == 8
    assert run(args) == 0  # resumes: the pool runs are in the store
    assert "0 run(s) trained, 8 already in the store" in capsys.readouterr().err


def test_a_prior_pool_does_not_outrank_fitted_pools_by_its_image_text_scale():
    """Fitted b on text came out ~5x smaller than the T-MARS priors; a pool that fell back to its prior must not jump
    ahead of every fitted pool for that reason alone (the worst DSIR bucket ranked first in pools_schedule)."""
    from mixopt.planning.quality import ResolvedPool, priors_on_fitted_scale

    def pool(name, rank, b, source):
        return ResolvedPool(name, rank, 1e4, 100.0, 100.0, "file", b, TMARS_TAU[rank], source, "")
    pools = [pool("b0", 0, -0.064, "fit"), pool("b1", 1, TMARS_B[1], "prior"), pool("b2", 2, -0.015, "fit"),
             pool("b3", 3, -0.022, "fit")]
    out = priors_on_fitted_scale(pools)
    ratio = np.mean([-0.064, -0.015, -0.022]) / np.mean([TMARS_B[0], TMARS_B[2], TMARS_B[3]])
    assert out[1].b == pytest.approx(TMARS_B[1] * ratio) and "scaled" in out[1].law_reason
    assert [p.b for p in out if p.law_source == "fit"] == [-0.064, -0.015, -0.022]  # fitted pools untouched
    assert min(out, key=lambda p: p.b).name == "b0"  # the best fitted pool stays first
    assert priors_on_fitted_scale([p for p in pools if p.law_source == "prior"]) == [pools[1]]  # nothing to scale to


def test_plan_pools_measure_reads_a_select_run_with_other_text_fields(tmp_path, capsys):
    """`select --text-field content`: plan-pools --measure reads the pool files and the target with the select run's
    fields (it asked for a `text` column before stop 25, with no option to fix it)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "web.jsonl").write_text("".join(json.dumps({"content": d}) + "\n"
                                            for d in docs_from(VOCAB_A, 20, 5) + docs_from(VOCAB_B, 20, 6)))
    (data / "target.jsonl").write_text("".join(json.dumps({"body": d}) + "\n" for d in docs_from(VOCAB_A, 10, 7)))
    sel = tmp_path / "sel"
    assert run(["select", "--pool", f"web={data / 'web.jsonl'}", "--target", str(data / "target.jsonl"), "--text-field",
                "content", "--target-text-field", "body", "--method", "dsir", "--buckets", "2", "--out", str(sel)]) == 0
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"proxy": {**TINY, "tokens": 4096}}))
    capsys.readouterr()
    args = ["plan-pools", str(sel / "pools.yaml"), "--budgets", "50,5000", "--measure", "--store", str(tmp_path / "s"),
            "--config", str(cfg), "--unique-tokens", "512", "--repetitions", "1,2,3,4", "--json"]
    assert run(args) == 0, capsys.readouterr().err
    assert "8 trained" in capsys.readouterr().err


def test_fit_shared_law_searches_a_on_the_pools_normalizer():
    size = 100.0
    samples = np.array([size, 2 * size, 4 * size, 8 * size])
    obs = {"q1": (samples, [pool_error([(-0.2, 3.0)], s, a=50.0, d=0.1, pool_size=size, normalizer=1e3) for s in samples], size)}
    n0 = (1.2, 5.0, 20.0)
    a, _, fits = fit_shared_law(obs, {"q1": (TMARS_B[0], TMARS_TAU[0])}, n0=n0, normalizer=1e3)
    assert a in [pytest.approx(n * 1e3 / size) for n in n0] and fits["q1"].source == "fit"


def test_plan_pools_measure_names_a_missing_select_target_before_any_work(tmp_path, capsys):
    sel = _selected(tmp_path, 10, 5)
    manifest = json.loads((sel / "selection.json").read_text())
    manifest["target"] = "target.jsonl"  # as select stored it before: relative to the folder it ran in
    (sel / "selection.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert run(["plan-pools", str(sel / "pools.yaml"), "--budgets", "50", "--measure", "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "target.jsonl" in err and "--target" in err and "config" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
