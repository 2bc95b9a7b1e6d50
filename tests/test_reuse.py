"""Mixture reuse (Olmix): an earlier plan's ratios kept by the sweep's draws and by propose's search."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from mixopt.cli.main import run
from mixopt.config import config_from_dict, load_config
from mixopt.errors import ConfigError, ConsistencyError
from mixopt.runs.reused import changed_domains
from mixopt.mixtures import epochs_of
from mixopt.planning.propose import ProposeContext, search_mixture
from mixopt.reuse import REUSED, ReusedMixture
from mixopt.runs.sweep import plan_sweep
from tests.test_cli_sweep import write_cfg

DOMAINS = ["a", "b", "c", "d"]
COUNTS = {"a": 1_000_000, "b": 2_000_000, "c": 500_000, "d": 300_000}


def reuse_of(weights=None, recompute=()):
    return ReusedMixture.from_weights(weights or {"a": 0.2, "b": 0.6, "c": 0.2}, DOMAINS, recompute=recompute)


# ------------------------------------------------------------------ the object

def test_kept_ratios_free_domains_and_the_reduced_simplex():
    r = reuse_of({"a": 0.1, "b": 0.3, "c": 0.1, "gone": 0.5})  # 'gone' left the data: dropped, ratios renormalised
    assert r.ratios == pytest.approx({"a": 0.2, "b": 0.6, "c": 0.2}) and r.dropped == ("gone",)
    assert r.free == ["d"] and r.coords == [REUSED, "d"]
    W = r.expand(np.array([[0.5, 0.5], [1.0, 0.0]]))
    assert W == pytest.approx(np.array([[0.1, 0.3, 0.1, 0.5], [0.2, 0.6, 0.2, 0.0]]))
    assert r.reduce(W) == pytest.approx(np.array([[0.5, 0.5], [1.0, 0.0]]))
    assert r.keeps_ratios(W).all() and not r.keeps_ratios(np.array([0.25, 0.25, 0.25, 0.25]))[0]


def test_recompute_frees_a_kept_domain():
    r = reuse_of(recompute=["b"])
    assert r.ratios == pytest.approx({"a": 0.5, "c": 0.5}) and r.free == ["b", "d"]


def test_the_group_holds_the_tokens_before_its_first_member_runs_out():
    r = reuse_of()
    # a: 1M / 0.2 = 5M, b: 2M / 0.6 = 3.33M, c: 0.5M / 0.2 = 2.5M -> c runs out first
    assert r.token_counts(COUNTS) == {REUSED: pytest.approx(2_500_000), "d": 300_000}


def test_bounds_of_kept_domains_bound_the_group():
    lo, hi = reuse_of().bounds({"c": 0.1, "d": 0.05}, {"b": 0.3, "a": 0.5})
    assert lo == {"d": 0.05, REUSED: pytest.approx(0.5)}  # c >= 0.1 at ratio 0.2
    assert hi == {REUSED: pytest.approx(0.5)}  # b <= 0.3 at ratio 0.6 is tighter than a's 2.5


def test_a_minimum_above_the_kept_ratio_is_refused_naming_the_domain():
    """A kept domain cannot take more than its ratio of the group: refuse instead of clipping the group's minimum to 1."""
    r = reuse_of()  # c keeps ratio 0.2 of the group
    with pytest.raises(ConfigError) as info:
        r.bounds({"c": 0.3}, {})
    msg = str(info.value)
    assert "propose.min_weights c 0.3 cannot hold with reuse" in msg and "at most 0.2" in msg
    assert "reuse.recompute" in msg and "plan" in msg and "\n" not in msg
    assert r.bounds({"c": 0.2}, {})[0] == {REUSED: pytest.approx(1.0)}  # exactly the whole group still holds
    ctx = ProposeContext(domains=DOMAINS, target="t", token_counts=COUNTS, reuse=r)
    cfg = config_from_dict({"propose": {"n_candidates": 200, "min_weights": {"c": 0.3}}}).propose
    with pytest.raises(ConfigError, match="min_weights c 0.3 cannot hold with reuse"):
        search_mixture(Bowl(), ctx, cfg, budget_tokens=1e6)


@pytest.mark.parametrize("weights, recompute, match", [
    ({"x": 1.0}, (), "keeps no domain"),
    ({"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}, (), "nothing to search"),
    ({"a": 1.0}, ("zz",), "recompute names"),
    ({"a": 0.2, "b": 0.2, "c": 0.2, "d": 0.2, "gone": 0.2}, (), "the old ratios renormalised are the mixture \\(a 0.2500.*--drop gone"),
])
def test_bad_reuse_is_a_one_line_error(weights, recompute, match):
    with pytest.raises(ConfigError, match=match):
        reuse_of(weights, recompute)


def test_a_missing_plan_names_the_file(tmp_path):
    cfg = config_from_dict({"reuse": {"plan": str(tmp_path / "nope.yaml")}})
    with pytest.raises(ConfigError, match="nope.yaml"):
        ReusedMixture.from_config(cfg.reuse, DOMAINS)


# ------------------------------------------------------------------ the sweep's draws

def test_sweep_draws_keep_the_ratios_and_the_epoch_caps(tmp_path):
    plan = tmp_path / "old.yaml"
    plan.write_text(yaml.safe_dump({"budget_tokens": 1e6, "phases": [{"start_fraction": 0.0, "weights": {"a": 0.2, "b": 0.6, "c": 0.2}}]}))
    cfg = config_from_dict({"runs": 12, "proxy": {"tokens": 4_000_000},
                            "sampler": {"two_phase_runs": 0, "noise_seeds": 1, "noise_mixtures": 0, "max_epochs": 2},
                            "reuse": {"plan": str(plan)}})
    data = SimpleNamespace(token_counts=COUNTS, fingerprint="fp0", names=DOMAINS)
    specs = plan_sweep(cfg, data)
    r = ReusedMixture.from_config(cfg.reuse, DOMAINS)
    sampled = [s for s in specs if s.label.startswith("sample-")]
    assert len(sampled) == 12
    W = np.array([s.mixture.vector(DOMAINS) for s in sampled])
    assert r.keeps_ratios(W, atol=1e-9).all()
    assert len({round(float(w), 6) for w in W[:, 3]}) == 12  # only the group's share against d varies
    for s in sampled:
        assert max(epochs_of(s.mixture, COUNTS, 4_000_000).values()) <= 2 + 1e-9
    # the baselines stay ordinary mixtures of every domain
    natural = next(s for s in specs if s.label == "natural").mixture.vector(DOMAINS)
    assert natural == pytest.approx(np.array([COUNTS[d] for d in DOMAINS]) / sum(COUNTS.values()))


# ------------------------------------------------------------------ the search

class Bowl:
    """Loss (w - c)^2 summed: its minimum c is off the reused subspace."""

    c = np.array([0.4, 0.1, 0.1, 0.4])

    def predict(self, W, return_std=False):
        m = ((np.atleast_2d(W) - self.c) ** 2).sum(axis=1)
        return (m, np.zeros_like(m)) if return_std else m


def test_search_stays_on_the_subspace_and_finds_its_best_point():
    r = reuse_of()
    ctx = ProposeContext(domains=DOMAINS, target="t", token_counts=COUNTS, reuse=r)
    cfg = config_from_dict({"propose": {"n_candidates": 5000}}).propose
    result, cons = search_mixture(Bowl(), ctx, cfg, budget_tokens=1e6)
    assert cons.domains == DOMAINS and result.domains == DOMAINS
    assert r.keeps_ratios(result.weights, atol=1e-9).all()
    grid = r.expand(np.column_stack([np.linspace(0, 1, 100_001), 1 - np.linspace(0, 1, 100_001)]))
    best = grid[np.argmin(Bowl().predict(grid))]
    assert result.weights == pytest.approx(best, abs=1e-3)


# ------------------------------------------------------------------ end to end

def test_sweep_and_propose_reuse_an_old_plan_through_the_cli(tmp_path, capsys):
    old_cfg = write_cfg(tmp_path, runs=6, data={"include": ["code", "prose"]}, propose={"n_candidates": 2000})
    (tmp_path / "old").mkdir()
    old_cfg = old_cfg.rename(tmp_path / "old" / "cfg.yaml")
    assert run(["sweep", str(old_cfg), "--store", str(tmp_path / "s_old")]) == 0
    old_plan = tmp_path / "old_plan.yaml"
    assert run(["propose", str(old_cfg), "--store", str(tmp_path / "s_old"), "--no-projector", "--out", str(old_plan)]) == 0
    old_w = yaml.safe_load(old_plan.read_text())["phases"][0]["weights"]

    new_cfg = write_cfg(tmp_path, runs=4, propose={"n_candidates": 2000}, reuse={"plan": str(old_plan)})  # legal is new
    assert run(["sweep", str(new_cfg), "--store", str(tmp_path / "s_new")]) == 0
    new_plan = tmp_path / "new_plan.yaml"
    assert run(["propose", str(new_cfg), "--store", str(tmp_path / "s_new"), "--no-projector", "--out", str(new_plan)]) == 0
    body = yaml.safe_load(new_plan.read_text())
    assert body["provenance"]["reuse"]["free"] == ["legal"]
    assert any(r.startswith("mixture reuse (Olmix)") for r in body["reasons"])
    if "kept" not in " ".join(body["reasons"][:2]):  # the search's mixture (not a kept baseline) keeps the old ratios
        w = body["phases"][0]["weights"]
        assert w["code"] / w["prose"] == pytest.approx(old_w["code"] / old_w["prose"], rel=1e-4)

    plain = write_cfg(tmp_path, runs=4, propose={"n_candidates": 2000})  # the same data, no reuse: the plan says so
    assert run(["propose", str(plain), "--store", str(tmp_path / "s_new"), "--no-projector", "--out", str(tmp_path / "p.yaml")]) == 0
    assert any("keep the ratios of" in r for r in yaml.safe_load((tmp_path / "p.yaml").read_text())["reasons"])

    capsys.readouterr()
    bad = write_cfg(tmp_path, reuse={"plan": str(tmp_path / "missing.yaml")})
    assert run(["sweep", str(bad), "--store", str(tmp_path / "s_bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.yaml" in err and len(err.splitlines()) == 1 and "Traceback" not in err


# ------------------------------------------------------------------ the old sweep's runs (reuse.store)

def test_reuse_needs_a_store_or_a_plan():
    with pytest.raises(ConfigError, match="store .* and/or plan"):
        config_from_dict({"reuse": {}})
    with pytest.raises(ConfigError, match="recompute"):
        config_from_dict({"reuse": {"store": "s", "recompute": ["a"]}})


def test_changed_domain_data_is_found():
    old = {"domains": ["a", "b"], "domain_fingerprints": {"a": "1", "b": "2"}}
    assert changed_domains(old, {"domains": ["a", "b", "c"], "domain_fingerprints": {"a": "1", "b": "2", "c": "3"}},
                           "old") == []
    assert changed_domains(old, {"domains": ["a", "b"], "domain_fingerprints": {"a": "1", "b": "9"}}, "old") == ["b"]
    # a store swept before stop 29 with quality_field set on b: today's store records that form too (unchanged data)
    today = {"domains": ["a", "b"], "domain_fingerprints": {"a": "1", "b": "2n"}, "domain_fingerprints_verbatim": {"b": "2"}}
    assert changed_domains(old, today, "old") == []
    assert changed_domains(old, {**today, "domain_fingerprints_verbatim": {"b": "8"}}, "old") == ["b"]
    # stores written before per-domain fingerprints: token counts and data settings
    legacy = {"domains": ["a"], "token_counts": {"a": 10}, "config": {"data": {"tokenizer": "bytes"}}}
    assert changed_domains(legacy, {**legacy, "token_counts": {"a": 11}}, "old") == ["a"]
    with pytest.raises(ConsistencyError, match="tokenizer"):
        changed_domains(legacy, {**legacy, "config": {"data": {"tokenizer": "tok.json"}}}, "old")


def test_a_revised_domain_counts_as_removed_and_added(tmp_path):
    """prose's data changed: old runs that trained it stay out, the others join without val/prose."""
    import json

    from mixopt import pipeline
    from mixopt.runs.reused import reused_records, training_key

    old_cfg = write_cfg(tmp_path, runs=8, sampler={"min_weight": 0.3}).rename(tmp_path / "old.yaml")
    assert run(["sweep", str(old_cfg), "--store", str(tmp_path / "s_old")]) == 0
    old = pipeline.open_store(tmp_path / "s_old").ok
    free = [r for r in old if r.overall_mixture().get("prose", 0.0) == 0.0]
    assert 0 < len(free) < len(old)
    revised = tmp_path / "prose.jsonl"  # prose, revised: other documents under the same name
    revised.write_text("".join(json.dumps({"text": f"Revised prose document {i}. " * 40}) + "\n" for i in range(80)))
    new_cfg = write_cfg(tmp_path, runs=4, data={"include": ["code", "legal"], "domains": [
        {"name": "prose", "path": str(revised), "format": "jsonl"}]}, reuse={"store": str(tmp_path / "s_old")})
    assert run(["sweep", str(new_cfg), "--store", str(tmp_path / "s_new")]) == 0
    snap = pipeline.open_store(tmp_path / "s_new")
    full, partial, line = reused_records(snap, "val/code")
    assert len(full) == len(free) and all("val/prose" not in r.metrics for r in full)
    assert "left out (it trained a domain whose data changed)" in line and "the data of prose changed since" in line
    _, partial, line = reused_records(snap, "mean:all-domains")  # val/prose is today's runs' alone
    assert len(partial) == len(free) and "not val/prose" in line
    assert pipeline.fit(snap, "val/code").meta["reused_runs"] == len(free)


def test_fit_adds_the_old_runs_with_the_new_domain_at_zero(tmp_path, capsys):
    from mixopt import pipeline

    old_cfg = write_cfg(tmp_path, runs=5, data={"include": ["code", "prose"]})
    old_cfg = old_cfg.rename(tmp_path / "old.yaml")
    assert run(["sweep", str(old_cfg), "--store", str(tmp_path / "s_old")]) == 0
    new_cfg = write_cfg(tmp_path, runs=4, propose={"n_candidates": 2000}, reuse={"store": str(tmp_path / "s_old")})
    assert run(["sweep", str(new_cfg), "--store", str(tmp_path / "s_new")]) == 0
    snap = pipeline.open_store(tmp_path / "s_new")
    n_new = len(snap.ok)

    model = pipeline.fit(snap, "val/code")  # measured by the old runs: they join
    assert model.meta["reused_runs"] == 7 and model.meta["n_runs"] == n_new + 7
    W = np.asarray(model.meta["train_mixtures"])
    assert (W[:, model.domains.index("legal")] == 0).sum() == 7  # only the old runs leave legal out
    assert "join this store's with legal at 0" in model.meta["reused"]

    # the mean needs val/legal, which the old runs never measured: they serve the per-domain models of the others
    mean = pipeline.fit(snap, "mean:all-domains")
    assert mean.meta["reused_runs"] == 7 and "2 of 3 components of mean:all-domains" in mean.meta["reused"]
    assert "not val/legal" in mean.meta["reused"] and len(mean.meta["cv"]["y_true"]) == n_new  # scored on today's runs
    assert sorted(len(m.gp_.Z_) for m in mean.estimator.estimators_) == [n_new, n_new + 7, n_new + 7]  # legal's: today's runs
    linear = pipeline.fit(snap, "mean:all-domains", "linear")  # one model of the mean cannot use partial rows
    assert linear.meta["reused_runs"] == 0 and "not used" in linear.meta["reused"]

    plan = pipeline.propose(model, config=load_config(new_cfg), snapshot=snap, use_projector=False)
    assert plan.provenance["reused_runs"] == 7 and plan.reasons[0].startswith("reuse.store: 7 run(s)")
    plain = pipeline.propose(model, config=load_config(write_cfg(tmp_path, runs=4)), snapshot=snap, use_projector=False)
    assert not any("keep the ratios of" in r for r in plain.reasons)  # a store-only sweep drew plain mixtures

    capsys.readouterr()
    assert run(["fit", "--store", str(tmp_path / "s_new"), "--target", "val/code", "--out", str(tmp_path / "m.pkl")]) == 0
    assert "reuse.store: 7 run(s)" in capsys.readouterr().out


def test_runs_of_another_proxy_are_left_out(tmp_path, capsys):
    """The sweep refuses, before training and leaving no store, a reuse.store none of whose runs can join (another
    proxy); fit on a store that names one anyway says so."""
    import json

    from mixopt import pipeline
    from mixopt.runs.reused import reused_records

    old_cfg = write_cfg(tmp_path, runs=3, data={"include": ["code", "prose"]}, proxy={"n_embd": 64, "head_size": 64})
    old_cfg = old_cfg.rename(tmp_path / "old.yaml")
    assert run(["sweep", str(old_cfg), "--store", str(tmp_path / "s_old")]) == 0
    new_cfg = write_cfg(tmp_path, runs=3, reuse={"store": str(tmp_path / "s_old")})
    capsys.readouterr()
    assert run(["sweep", str(new_cfg), "--store", str(tmp_path / "s_new")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none of its 5 run(s) can join" in err and "5 left out (another proxy)" in err
    assert not (tmp_path / "s_new").exists()  # refused after tokenizing: the new store's empty folders are gone
    plain = write_cfg(tmp_path, runs=3)
    assert run(["sweep", str(plain), "--store", str(tmp_path / "s_new")]) == 0
    meta = json.loads((tmp_path / "s_new" / "store.json").read_text())  # as if swept with reuse.store (an older mixopt)
    meta["config"]["reuse"] = {"store": str(tmp_path / "s_old"), "plan": None, "recompute": []}
    (tmp_path / "s_new" / "store.json").write_text(json.dumps(meta))
    full, partial, line = reused_records(pipeline.open_store(tmp_path / "s_new"), "val/code")
    assert full == partial == [] and "none of its 5 run(s) can join" in line and "5 left out (another proxy)" in line


def test_a_removed_domain_keeps_the_old_runs_that_never_trained_it(tmp_path):
    """After a removal, old runs that gave the removed domain weight 0 join (without it and its metric); the rest
    stay out, counted."""
    from mixopt import pipeline
    from mixopt.runs.reused import reused_records, training_key

    old_cfg = write_cfg(tmp_path, runs=8, sampler={"min_weight": 0.3})  # code, prose, legal; small weights zeroed
    old_cfg = old_cfg.rename(tmp_path / "old.yaml")
    assert run(["sweep", str(old_cfg), "--store", str(tmp_path / "s_old")]) == 0
    old = pipeline.open_store(tmp_path / "s_old").ok
    free = [r for r in old if r.overall_mixture().get("legal", 0.0) == 0.0]
    assert 0 < len(free) < len(old)  # the draw under this seed has both kinds
    new_cfg = write_cfg(tmp_path, runs=4, data={"include": ["code", "prose"]}, reuse={"store": str(tmp_path / "s_old")})
    assert run(["sweep", str(new_cfg), "--store", str(tmp_path / "s_new")]) == 0
    snap = pipeline.open_store(tmp_path / "s_new")
    full, partial, line = reused_records(snap, "mean:all-domains")
    today = {training_key(r) for r in snap.ok}
    same = [r for r in free if training_key(r) in today]  # today's store trained it too (another data fingerprint)
    joining = [r for r in free if r not in same]
    assert len(full) == len(joining) and partial == [] and (not same or f"{len(same)} left out (this store holds" in line)
    assert f"{len(old) - len(free)} left out (it trained a domain no longer in the data)" in line
    assert all(set(r.mixture) <= {"code", "prose"} and "val/legal" not in r.metrics for r in full)
    model = pipeline.fit(snap, "mean:all-domains")  # the old runs' val/legal is no component today
    assert model.meta["reused_runs"] == len(joining) and model.domains == ["code", "prose"]


@pytest.mark.slow  # every arm of mixture_reuse.py's update cases: 12-42 s (its smoke run stays in the default selection)
def test_the_update_benchmarks_run_their_arms(monkeypatch, capsys, tmp_path):
    """benchmarks/mixture_reuse.py --remove, --chain and --revise at smoke size: every comparison is in the summary;
    the renormalised old plan keeps the old ratios without the removed domain; the revised domain's file is a
    filtered copy."""
    from tests.bench_loader import load_benchmark
    module = load_benchmark("mixture_reuse", monkeypatch)
    fields = module.main(["--smoke", "--remove"])
    assert fields["removal"] is True and fields["runs_reuse"] < fields["runs_full"]
    for key in ("renorm_vs_recompute", "renorm_vs_recompute_small", "reuse_runs_vs_recompute"):
        assert key in fields, key
    out = capsys.readouterr().out
    assert "renorm" in out and "reuse-runs fitted" in out
    from mixopt.plan import plan_from_dict
    plan = plan_from_dict({"budget_tokens": 1e6, "phases": [{"start_fraction": 0.0,
                                                             "weights": {"a": 0.5, "b": 0.3, "legal": 0.2}}]})
    assert module.renormalised(plan, "legal").phases[0].weights == pytest.approx({"a": 0.625, "b": 0.375})
    assert module.renormalised(plan, "math") is plan  # a domain the plan never trained
    fields = module.main(["--smoke", "--chain"])  # two additions in a row: the second store chains to the first
    assert fields["chain"] is True and "chain_vs_full" in fields and "chain fitted" in capsys.readouterr().out
    fields = module.main(["--smoke", "--revise"])  # legal's data revised: every other document
    assert fields["revision"] is True and "reuse_plan_vs_recompute" in fields and "reuse_runs_vs_recompute" in fields
    from mixopt.data.embedded import embedded_manifest
    lines = module.revised_file("legal", tmp_path).read_text().splitlines()
    assert len(lines) == (embedded_manifest()["legal"]["n_docs"] + 1) // 2


def test_updates_in_a_row_chain_the_stores(tmp_path, capsys):
    """A store that itself reused one brings that store's runs too; a store that is gone is said, not fatal."""
    import shutil

    from mixopt import pipeline
    from mixopt.runs.reused import reused_records

    s0, s1, s2 = (str(tmp_path / n) for n in ("s0", "s1", "s2"))
    first = write_cfg(tmp_path, runs=3, data={"include": ["code", "prose"]}).rename(tmp_path / "c0.yaml")
    assert run(["sweep", str(first), "--store", s0]) == 0
    second = write_cfg(tmp_path, runs=3, reuse={"store": s0}).rename(tmp_path / "c1.yaml")  # legal added
    assert run(["sweep", str(second), "--store", s1]) == 0
    third = write_cfg(tmp_path, runs=2, seed=5, reuse={"store": s1})  # another update on the same domains
    capsys.readouterr()
    assert run(["sweep", str(third), "--store", s2]) == 0
    n0, n1 = (len(pipeline.open_store(s).ok) for s in (s0, s1))
    said = " ".join(capsys.readouterr().out.split())
    assert f"reuse.store: {n0 + n1} of the {n0 + n1} run(s) of {s1} and the 1 store(s) it reused ({s0}) will join" in said
    full, partial, line = reused_records(pipeline.open_store(s2), "val/code")
    assert len(full) == n0 + n1 and partial == [] and f"and the 1 store(s) it reused ({s0})" in line
    model = pipeline.fit(pipeline.open_store(s2), "val/code")
    assert model.meta["reused_runs"] == n0 + n1
    shutil.rmtree(s0)
    full, _, line = reused_records(pipeline.open_store(s2), "val/code")
    assert len(full) == n1 and f"its earlier store {s0} is gone" in line


def test_a_changed_target_set_drops_its_old_metric(tmp_path):
    """An evaluation-only target set whose text changed: the old runs join without their loss on it."""
    import json

    from mixopt import pipeline
    from mixopt.runs.reused import reused_records

    t = tmp_path / "t.jsonl"
    t.write_text("".join(json.dumps({"text": f"Target text number {i}. " * 30}) + "\n" for i in range(60)))
    data = {"include": ["code", "prose"], "targets": [{"name": "t", "path": str(t), "format": "jsonl"}]}
    old_cfg = write_cfg(tmp_path, runs=3, data=data).rename(tmp_path / "old.yaml")
    assert run(["sweep", str(old_cfg), "--store", str(tmp_path / "s_old")]) == 0
    assert all("target/t" in r.metrics for r in pipeline.open_store(tmp_path / "s_old").ok)
    new_cfg = write_cfg(tmp_path, runs=3, seed=1, data=data, reuse={"store": str(tmp_path / "s_old")})
    t.write_text("".join(json.dumps({"text": f"Another target, text {i}. " * 30}) + "\n" for i in range(60)))
    assert run(["sweep", str(new_cfg), "--store", str(tmp_path / "s_new")]) == 0
    snap = pipeline.open_store(tmp_path / "s_new")
    full, _, line = reused_records(snap, "val/code")
    assert full and all("target/t" not in r.metrics for r in full) and "target set t changed since" in line
    assert reused_records(snap, "target/t")[:2] == ([], [])  # today's runs alone measure the new text


def test_a_wrong_reuse_store_fails_before_training(tmp_path, capsys):
    cfg = write_cfg(tmp_path, runs=2, reuse={"store": str(tmp_path / "nope")})
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "s")]) != 0
    err = capsys.readouterr().err
    assert "reuse.store" in err and "is not a run store" in err and "Traceback" not in err
    assert not (tmp_path / "s" / "runs").exists() or not any((tmp_path / "s" / "runs").iterdir())
