"""Quality pools inside the plan (review-select findings 1 and 9): the pool choice under propose.max_epochs, the law's
inverted regime, the plan's epochs / tokens per document over the kept pools, score-bucket leftovers, exports, report."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import yaml

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.config import DomainPools, ProposeConfig, config_from_dict
from mixopt.export import export_plan
from mixopt.data.sources import files_digest
from mixopt.plan import plan_from_dict, save_plan
from mixopt.planning.propose import ProposeContext, build_plan
from mixopt.planning.pool_choice import choose_pools
from mixopt.planning.quality import resolve_domain_pools, resolve_pools
from tests.test_export import PATHS, plan_dict
from tests.test_quality import scored  # noqa: F401  (a fixture)

# one strong pool and two weak ones, on a samples scale where the law is in its fitted range (a * S / normalizer >= 1)
HAND = {"a": 0.025, "d": 0.1, "tokens_per_sample": 1.0, "normalizer": 0.01,
        "pools": [{"name": "p1", "share": 0.25, "b": -0.6, "tau": 50.0}, {"name": "p2", "share": 0.25, "b": -0.05, "tau": 1.0},
                  {"name": "p3", "share": 0.5, "b": -0.01, "tau": 1.0}]}


def _hand():
    return resolve_pools("web", HAND, unique_tokens=1000, mean_tokens_per_doc=None, spec=None)


def test_the_pool_choice_respects_max_epochs_and_says_the_cap_binds():
    free = choose_pools("web", _hand(), HAND, 5000)
    assert free.kept == ["p1"] and free.repetitions_of_kept == {"p1": pytest.approx(20.0)}  # the law alone: 20 passes
    capped = choose_pools("web", _hand(), HAND, 5000, max_epochs=8)
    # p1 alone 20x, p1 + p2 10x: both over the cap; all three 5x is the best set within it
    assert capped.kept == ["p1", "p2", "p3"] and capped.repetitions_of_kept["p1"] == pytest.approx(5.0)
    assert "would be repeated 20.00x, over propose.max_epochs 8: the cap binds" in capped.reason
    assert capped.tokens == pytest.approx(1000.0) and capped.rule == "law"
    assert choose_pools("web", _hand(), HAND, 2000, max_epochs=8).kept == ["p1"]  # 8 passes: within the cap


def test_no_pool_set_within_the_cap_keeps_all_and_says_so():
    c = choose_pools("web", _hand(), HAND, 5000, max_epochs=2)
    assert c.kept == ["p1", "p2", "p3"] and "even all 3 pools are repeated 5.00x, over propose.max_epochs 2" in c.reason


def test_in_the_laws_inverted_regime_the_fewest_best_pools_that_hold_the_tokens_are_kept():
    # select's route: T-MARS priors, the law's 1e5 normalizer, a sample is a document: a * S / 1e5 << 1
    cfg = {"tokens_per_sample": 1.0, "pools": [{"name": f"q{i}", "share": 1 / 3} for i in (1, 2, 3)]}
    r = resolve_pools("web", cfg, unique_tokens=3000, mean_tokens_per_doc=None, spec=None)
    kept = {t: choose_pools("web", r, cfg, t, max_epochs=4) for t in (500, 1500, 2500, 6000)}
    assert [c.kept for c in kept.values()] == [["q1"], ["q1", "q2"], ["q1", "q2", "q3"], ["q1", "q2", "q3"]]
    assert all(c.rule == "coverage" for c in kept.values())
    assert kept[500].repetitions_of_kept == {"q1": pytest.approx(0.5)}
    assert "without repetition" in kept[500].reason and "so the law does not decide" in kept[500].reason
    assert "--measure-pools" in kept[500].reason and "(even all of them repeat)" in kept[6000].reason
    assert min(kept[500].errors) != kept[500].errors[0]  # the law itself would have taken weaker pools


def test_documents_in_no_score_bucket_are_reported(scored):  # noqa: F811
    dp = DomainPools.model_validate({"pools": [{"name": "hi", "min_score": 0.8}, {"name": "mid", "min_score": 0.4, "max_score": 0.8}]})
    pd = resolve_domain_pools("web", dp, unique_tokens=None, mean_tokens_per_doc=None, spec=scored)
    assert pd.tokens == pytest.approx(80.0) and [p.documents for p in pd.resolved] == [4.0, 4.0]
    assert pd.note.startswith("web: 33.3% of its tokens (40 of 120 counted, 4 documents) are in no quality bucket of score")
    everything = DomainPools.model_validate({"pools": [{"name": "hi", "min_score": 0.4}, {"name": "lo", "max_score": 0.4}]})
    assert resolve_domain_pools("web", everything, unique_tokens=None, mean_tokens_per_doc=None, spec=scored).note == ""


class Prefers:
    """A surrogate that prefers as much of the domain in column ``column`` as the constraints allow (std 0.01)."""

    def __init__(self, column: int = 0):
        self.column = column

    def predict(self, W, return_std=False):
        W = np.atleast_2d(np.asarray(W, dtype=float))
        mean = 3.0 - W[:, self.column]
        return (mean, np.full(len(W), 0.01)) if return_std else mean


def _pool_files(tmp_path):
    for name, n in (("q1", 2), ("q2", 8)):  # distinct documents of 99 bytes + 1 end-of-document token = 100 tokens
        (tmp_path / f"a.{name}.jsonl").write_text("".join(json.dumps({"text": f"{name}.{i} ".ljust(99, "x")}) + "\n"
                                                          for i in range(n)))
    return {"a": {"normalizer": 0.01, "pools": [{"name": "q1", "path": str(tmp_path / "a.q1.jsonl"), "b": -0.6, "tau": 50.0},
                                                {"name": "q2", "path": str(tmp_path / "a.q2.jsonl"), "b": -0.05, "tau": 1.0}]}}


def _plan(tmp_path, **cfg):
    # domain a holds 5000 unique tokens, its pools 1000 (200 + 800): the plan trains only the pools
    ctx = ProposeContext(domains=["a", "b"], target="t", token_counts={"a": 5000, "b": 10**6},
                         tokens_per_doc={"a": 500.0, "b": 1000.0}, proxy_tokens=1e4)
    cfg = ProposeConfig(n_candidates=2000, top_k=10, upsample=False, keep_baseline_within_noise=False,
                        pools=_pool_files(tmp_path), max_epochs=4, **cfg)
    return build_plan(Prefers(0), ctx, cfg, budget_tokens=1e4, seed=0)


def test_the_plan_caps_a_pooled_domain_by_its_pools_and_counts_epochs_over_the_kept_ones(tmp_path):
    plan = _plan(tmp_path)
    share = plan.overall_weights()["a"]
    assert share == pytest.approx(0.4, abs=1e-6)  # 4 epochs of the pools' 1000 tokens, not of the domain's 5000
    assert plan.pools == {"a": ["q1", "q2"]}  # q1 alone would be 20 passes, over max_epochs 4
    assert plan.epochs["a"] == pytest.approx(4.0, rel=1e-5)
    assert plan.effective_tokens["a"] < share * plan.budget_tokens
    assert plan.tokens_per_doc["a"] == pytest.approx(100.0)  # the pools' documents, not the domain's 500
    assert any(r.startswith("a: capped at 4.00 epochs (its quality pools together)") for r in plan.reasons)
    assert any("over propose.max_epochs 4: the cap binds" in r for r in plan.reasons)


def test_imported_runs_cap_a_pooled_domain_by_its_pools_and_say_which_domains_are_not_capped(tmp_path):
    """Imported runs carry no domain sizes (token_counts {}), but a pooled domain's pools are sized from their files:
    propose.max_epochs caps it by them. It was left uncapped: a 1.0 of the budget, 10 passes over its pools."""
    ctx = ProposeContext(domains=["a", "b"], target="t", proxy_tokens=1e4)
    cfg = ProposeConfig(n_candidates=2000, top_k=10, upsample=False, keep_baseline_within_noise=False,
                        pools=_pool_files(tmp_path), max_epochs=4)
    plan = build_plan(Prefers(0), ctx, cfg, budget_tokens=1e4, seed=0)
    assert plan.overall_weights()["a"] == pytest.approx(0.4, abs=1e-6)  # 4 epochs of the pools' 1000 tokens
    assert plan.epochs == {"a": pytest.approx(4.0, rel=1e-5)}  # b's size is unknown: no epochs for it
    assert any(r.startswith("a: capped at 4.00 epochs (its quality pools together)") for r in plan.reasons)
    assert any(r.startswith("repetition not checked for b: the runs carry no domain sizes (imported runs), so "
                            "propose.max_epochs (4) caps only a, by its quality pools' tokens (counted by "
                            "data.tokenizer bytes)") for r in plan.reasons)
    unpooled = build_plan(Prefers(0), ctx, cfg.model_copy(update={"pools": {}}), budget_tokens=1e4, seed=0)
    assert unpooled.overall_weights()["a"] > 0.99  # nothing known: no cap, and the plan says so
    assert any(r.startswith("repetition not checked: the runs carry no domain sizes") for r in unpooled.reasons)


def test_a_two_phase_plan_counts_each_pooled_domains_epochs_over_its_kept_pools(tmp_path):
    plan = _plan(tmp_path, cooldown_switch=0.8)
    assert len(plan.phases) == 2 and plan.pools["a"]
    kept = {"q1": 200.0, "q2": 800.0}
    unique = sum(kept[p] for p in plan.pools["a"])
    assert plan.epochs["a"] == pytest.approx(plan.overall_weights()["a"] * plan.budget_tokens / unique, rel=1e-5)
    assert plan.epochs["a"] <= 4 + 1e-6
    assert any("from the domains' token counts (a pooled domain's: its quality pools' together)" in r for r in plan.reasons)


def _pooled_plan():
    return plan_from_dict(plan_dict(pools={"web": ["q1"]}, pool_laws={"web": {"q1": {}, "q2": {}}}), where="test")


def test_exports_name_the_kept_pools_where_they_describe_the_plan():
    plan = _pooled_plan()
    olmo = export_plan(plan, "olmo-core", PATHS)
    assert all("# Quality pools: the plan trains these domains on their kept pools only (web: q1 (of q1, q2), "
               in text for text in olmo.values())
    hf = json.loads(export_plan(plan, "hf-datasets", PATHS)["interleave.json"])
    assert "web: q1 (of q1, q2)" in hf["pools"]
    assert "Quality pools" in export_plan(plan, "litdata", PATHS)["mixture_litdata.py"]
    assert "Quality pools" in export_plan(plan, "nanotron", PATHS)["data_stages.yaml"]
    assert "Quality pools" in json.loads(export_plan(plan, "megatron", PATHS)["blend.json"])["pools"]
    assert "Quality pools" not in "".join(export_plan(plan_dict(), "olmo-core", PATHS).values())


def test_the_reports_mixture_table_names_the_kept_pools():
    from mixopt.report.answer import mixture_table

    table = mixture_table(_pooled_plan())
    assert table.header[-1] == "quality pools"
    assert [row[-1] for row in table.rows] == ["–", "–", "q1"] and "kept pools" in table.note


def test_plan_pools_says_when_a_budget_is_in_the_laws_inverted_regime(tmp_path, capsys):
    from mixopt.cli.main import run

    pools = tmp_path / "pools.yaml"
    pools.write_text("a: 0.025\nd: 0.1\npool_size: 100\npools:\n  - {name: q1, b: -0.16, tau: 6.7}\n"
                     "  - {name: q2, b: -0.125, tau: 8.5}\n")
    assert run(["plan-pools", str(pools), "--budgets", "100,1e7", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)[0]["budget"] == 100.0
    assert "note: at 100 samples a * samples / 100000 < 1" in out.err and "1e+07" not in out.err
    assert run(["plan-pools", str(pools), "--budgets", "1e7"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_a_budget_the_pools_cannot_fill_is_a_one_line_error_naming_the_pools(tmp_path):
    from mixopt.errors import BudgetError

    ctx = ProposeContext(domains=["a", "b"], target="t", token_counts={"a": 5000, "b": 1000}, proxy_tokens=1e4)
    cfg = ProposeConfig(n_candidates=500, upsample=False, pools=_pool_files(tmp_path), max_epochs=4)
    with pytest.raises(BudgetError) as err:  # a's 5000 tokens would fill it; its pools hold 1000
        build_plan(Prefers(0), ctx, cfg, budget_tokens=1e4, seed=0)
    assert "\n" not in str(err.value) and "its unique tokens are theirs (a 1000)" in str(err.value)


def test_the_frontier_says_which_rule_chose_and_the_report_explains_the_inverted_regime(tmp_path):
    from mixopt.planning.pool_choice import plan_quality_pools
    from mixopt.report.build import build_report

    cfg = {"tokens_per_sample": 1.0, "pools": [{"name": f"q{i}", "share": 1 / 3} for i in (1, 2, 3)]}
    kept, _, frontier = plan_quality_pools({"web": 1.0}, 500, {"web": cfg}, token_counts={"web": 3000}, max_epochs=4)
    assert kept == {"web": ["q1"]} and {r["rule"] for r in frontier} == {"coverage"}
    plan = _pooled_plan().model_copy(update={"frontier": frontier})
    index = build_report(tmp_path / "out", plan=plan)
    assert "the fewest best pools that hold the budget without repetition instead" in index.read_text()


def test_a_plan_pools_frontier_marks_the_laws_range_and_the_report_says_where_it_inverts(tmp_path, capsys):
    from mixopt.cli.main import run
    from mixopt.report.build import build_report

    pools = tmp_path / "pools.yaml"
    pools.write_text("a: 0.025\nd: 0.1\npool_size: 1e7\npools:\n  - {name: q1, b: -0.16, tau: 6.7}\n"
                     "  - {name: q2, b: -0.125, tau: 8.5}\n")
    assert run(["plan-pools", str(pools), "--budgets", "1e3,1e6,1e8", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["law_range"] for r in rows] == [False, False, True]  # 0.025 * samples / 1e5 >= 1 from 4e6 samples
    page = build_report(tmp_path / "out", plan=_pooled_plan(), frontier=rows).read_text()
    assert "Budgets are in samples of the domain" in page
    assert "Up to 1M samples a * samples / normalizer &lt; 1" in page or "Up to 1M samples a * samples / normalizer < 1" in page

# -- recheck 4: two pools of one domain reading the same file, or sharing documents --------------------------------

def test_two_pools_of_one_domain_with_the_same_file_are_a_one_line_error(tmp_path):
    from mixopt.errors import ConfigError

    pools = _pool_files(tmp_path)["a"]
    pools["pools"][1]["path"] = str(tmp_path / "." / "a.q1.jsonl")  # the same file, spelt otherwise
    with pytest.raises(ConfigError) as exc:
        resolve_domain_pools("a", pools, unique_tokens=5000, mean_tokens_per_doc=None, spec=None)
    msg = str(exc.value)
    assert "'q1' and 'q2' of domain 'a' both read" in msg and "Give each pool its own file" in msg and "\n" not in msg


def test_pool_files_of_one_domain_that_share_documents_warn(tmp_path):
    import warnings

    (tmp_path / "own").mkdir()
    with warnings.catch_warnings():  # distinct documents: no warning
        warnings.simplefilter("error")
        resolve_domain_pools("a", _pool_files(tmp_path / "own")["a"], unique_tokens=5000, mean_tokens_per_doc=None, spec=None)
    pools = _pool_files(tmp_path)["a"]
    first = (tmp_path / "a.q1.jsonl").read_text().splitlines()[0]
    with open(tmp_path / "a.q2.jsonl", "a") as f:
        f.write(first + "\n")  # q2 also holds one of q1's two documents
    with pytest.warns(UserWarning, match=r"quality pools 'q1' and 'q2' of domain 'a' share 1 document\(s\) \(50.0% of 'q1'") as rec:
        resolve_domain_pools("a", pools, unique_tokens=5000, mean_tokens_per_doc=None, spec=None)
    assert len(rec) == 1 and "Keep each document in one pool's file" in str(rec[0].message)


# -- recheck 2: the export notes say what each format's one path per pooled domain must hold ------------------------

def test_the_plan_records_where_its_kept_pools_documents_are(tmp_path):
    from types import SimpleNamespace

    from mixopt.config import DomainSpec
    from mixopt.planning.propose import kept_pool_sources

    plan = _plan(tmp_path)
    tokens = {"q1": 200.0, "q2": 800.0}
    assert plan.provenance["pool_sources"] == {"a": {p: {"path": str(tmp_path / f"a.{p}.jsonl"),
                                                         "digest": files_digest(tmp_path / f"a.{p}.jsonl"),
                                                         "tokens": tokens[p]} for p in plan.pools["a"]}}
    buckets = DomainPools.model_validate({"pools": [{"name": "hi", "min_score": 0.5}, {"name": "lo", "max_score": 0.5}]})
    got = kept_pool_sources({"w": SimpleNamespace(pools=buckets)}, {"w": ["hi"]}, [DomainSpec(name="w", path="x", quality_field="s")])
    assert got == {"w": {"hi": {"quality_field": "s", "min_score": 0.5, "max_score": None}}}


def test_export_and_verify_refuse_a_plan_whose_pool_files_changed_or_are_gone(tmp_path, capsys):
    """Review 39 finding 4: `select` rerun into the same folder replaced a pool file (and deleted another) the plan was
    made on; export wrote the plan's old sizes for the new files without a word. The plan records each kept file's
    digest and tokens, and export and verify refuse in one line before writing or training anything."""
    plan_path = save_plan(_plan(tmp_path), tmp_path / "plan.yaml")
    paths = ["--paths", f"a={tmp_path}/a.q*.jsonl", "--paths", "b=/data/b"]
    export = ["export", str(plan_path), "-f", "hf-datasets", *paths, "-o"]
    assert run([*export, str(tmp_path / "hf")]) == 0
    capsys.readouterr()
    q1 = tmp_path / "a.q1.jsonl"
    q1.write_text(q1.read_text() + json.dumps({"text": "one more document"}) + "\n")  # a rerun select's new bucket
    for cmd in ([*export, str(tmp_path / "hf2")], ["verify", str(plan_path), "--store", str(tmp_path / "no-store")]):
        assert run(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert f"{q1} (domain 'a', pool 'q1') changed since {plan_path} was made (mixopt select rerun" in err
        assert "200 unique tokens" in err and "Rerun mixopt propose" in err
    assert not (tmp_path / "hf2").exists() and not (tmp_path / "no-store").exists()
    q1.unlink()  # gone, and found nowhere: verify (which trains on it) refuses, export warns (recheck 39 #1, below)
    assert run(["verify", str(plan_path), "--store", str(tmp_path / "no-store")]) == 2
    assert f"{q1} (domain 'a', pool 'q1') is gone since {plan_path} was made (moved, or deleted" in capsys.readouterr().err
    # a plan made before the digests were recorded still exports (nothing to compare), and says so
    (tmp_path / "x").mkdir()
    old = _plan(tmp_path / "x")
    for src in old.provenance["pool_sources"]["a"].values():
        del src["digest"], src["tokens"]
    (tmp_path / "x" / "a.q1.jsonl").write_text("{\"text\": \"changed\"}\n")
    old_path = save_plan(old, tmp_path / "x" / "plan.yaml")
    assert run(["export", str(old_path), "-f", "hf-datasets", *paths, "-o", str(tmp_path / "hf3")]) == 0
    assert "records no digest of its pool files" in capsys.readouterr().err



def test_a_pool_file_gone_from_its_recorded_path_is_found_by_its_digest_or_exported_unchecked(tmp_path, capsys):
    """Recheck 39 #1: export refused a plan whose pool files were gone from the absolute path it recorded even when
    --paths named a file with the recorded digest, and even for megatron (only .bin/.idx prefixes where it exports),
    which 77285a6 exported. A gone file is found by its digest among the --paths files or beside the plan (the path
    relative to it that save_plan records); found nowhere, export warns and says so in its files (verify, which
    trains on it, refuses); a file found there that differs is refused."""
    proj = tmp_path / "proj"
    (proj / "pools").mkdir(parents=True)
    plan_path = save_plan(_plan(proj / "pools"), proj / "plan.yaml")
    recorded = yaml.safe_load(plan_path.read_text())["provenance"]["pool_sources"]["a"]
    assert {p: src["relative"] for p, src in recorded.items()} == {"q1": "pools/a.q1.jsonl", "q2": "pools/a.q2.jsonl"}
    q1 = proj / "pools" / "a.q1.jsonl"
    # the pools moved away from the plan: a --paths glob that holds them is checked file by file
    (proj / "pools").rename(tmp_path / "elsewhere")
    hf = ["export", str(plan_path), "-f", "hf-datasets", "--paths", "b=/data/b", "-o"]
    assert run([*hf, str(tmp_path / "hf"), "--paths", f"a={tmp_path}/elsewhere/a.q*.jsonl"]) == 0  # (old code: 2)
    err = capsys.readouterr().err
    assert "warning" not in err and f"checked {tmp_path}/elsewhere/a.q1.jsonl instead (the same digest)" in err
    pools = json.loads((tmp_path / "hf" / "interleave.json").read_text())["pools"]
    assert f"{tmp_path}/elsewhere/a.q1.jsonl" in pools and "not checked" not in pools
    # megatron on a machine with only the tokenized data: nothing to check, so a warning and a note in the files
    meg = ["export", str(plan_path), "-f", "megatron", "--global-batch-size", "1", "--seq-length", "64",
           "--paths", "a=/tok/a_pools", "--paths", "b=/tok/b", "-o"]
    assert run([*meg, str(tmp_path / "meg")]) == 0  # (old code: 2)
    err = capsys.readouterr().err
    assert (f"warning: these quality pool files are not at the path {plan_path} recorded, beside it or among their "
            f"domains' --paths files, so they cannot be checked against it: {q1} (domain 'a', pool 'q1', 200 unique "
            f"tokens); {q1.parent}/a.q2.jsonl (domain 'a', pool 'q2', 800 unique tokens). The export states the plan's "
            "counts; make a's path hold exactly those pools' documents") in err and err.count("warning") == 1, err
    written = "".join(f.read_text() for f in (tmp_path / "meg").iterdir())
    assert "q1, q2 not found where this export was made, so not checked against the plan" in written
    assert run(["verify", str(plan_path), "--store", str(tmp_path / "no-store")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is gone since" in err and f"looked beside it too: {proj}/a.q1.jsonl)" in err, err
    assert "Put the file back, or rerun mixopt propose" in err
    # the project moved whole (plan and pools): found beside the plan, for export and verify alike
    (tmp_path / "elsewhere").rename(q1.parent)
    proj.rename(tmp_path / "moved")
    moved = tmp_path / "moved"
    meg[1] = str(moved / "plan.yaml")
    assert run([*meg, str(tmp_path / "meg2")]) == 0
    err = capsys.readouterr().err
    assert "warning: quality" not in err and f"checked {moved}/pools/a.q1.jsonl instead" in err
    assert "not checked" not in "".join(f.read_text() for f in (tmp_path / "meg2").iterdir())
    from mixopt.plan import check_pool_files, load_plan
    found = check_pool_files(load_plan(moved / "plan.yaml"), "plan.yaml", plan_path=moved / "plan.yaml").plan
    assert found.provenance["pool_sources"]["a"]["q1"]["path"] == str(moved / "pools" / "a.q1.jsonl")
    # ... but a file there that differs (select rerun in the moved folder) is refused, as at the recorded path
    with open(moved / "pools" / "a.q1.jsonl", "a") as f:
        f.write(json.dumps({"text": "one more document"}) + "\n")
    for cmd in ([*meg, str(tmp_path / "meg3")], ["verify", str(moved / "plan.yaml"), "--store", str(tmp_path / "no-store")]):
        assert run(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{moved}/pools/a.q1.jsonl (domain 'a', pool 'q1'; {q1} when" in err, err
        assert "changed since" in err
    assert not (tmp_path / "meg3").exists()
    (moved / "pools" / "a.q1.jsonl").unlink()
    assert run(["verify", str(moved / "plan.yaml"), "--store", str(tmp_path / "no-store")]) == 2
    assert f"Put the file back (or at {moved}/pools/a.q1.jsonl, beside {moved}/plan.yaml), or rerun" in capsys.readouterr().err

def test_export_notes_say_what_one_path_per_pooled_domain_must_hold():
    files = {"q1": {"path": "/sel/web.q1.jsonl"}, "q2": {"path": "/sel/web.q2.jsonl"}}
    plan = plan_from_dict(plan_dict(pools={"web": ["q1", "q2"]}, pool_laws={"web": {"q1": {}, "q2": {}, "q3": {}}},
                                    provenance={"pool_sources": {"web": files}}), where="test")
    hf = json.loads(export_plan(plan, "hf-datasets", PATHS)["interleave.json"])["pools"]
    assert "the files /sel/web.q1.jsonl, /sel/web.q2.jsonl" in hf and "a glob that matches only its kept pools' files" in hf
    olmo = "".join(export_plan(plan, "olmo-core", PATHS).values())
    assert "a token file (.npy) tokenized from exactly its kept pools' documents" in olmo
    assert "--paths gives each domain one path" in olmo and "the files `mixopt select` wrote" not in olmo
    assert "an MDS folder" in "".join(export_plan(plan, "mosaic-streaming", PATHS).values())
    bucket = {"web": {"q1": {"quality_field": "score", "min_score": 0.7, "max_score": None},
                      "q2": {"quality_field": "score", "min_score": 0.4, "max_score": 0.7}}}
    plan = plan_from_dict(plan_dict(pools={"web": ["q1", "q2"]}, pool_laws={"web": {"q1": {}, "q2": {}, "q3": {}}},
                                    provenance={"pool_sources": bucket}), where="test")
    text = json.loads(export_plan(plan, "megatron", PATHS)["blend.json"])["pools"]
    assert "the domain's documents with score >= 0.4" in text and "preprocessed from" in text  # adjacent buckets joined
    bucket["web"]["q2"]["max_score"] = 0.6
    plan = plan_from_dict(plan.to_dict() | {"provenance": {"pool_sources": bucket}}, where="test")
    text = json.loads(export_plan(plan, "megatron", PATHS)["blend.json"])["pools"]
    assert "with 0.4 <= score < 0.6 or score >= 0.7" in text


def _imported(tmp_path, first: str, second: str):
    """A store of 8 imported runs over domains ``first`` and ``second`` (val/FIRST lowest at 0.7 of ``first``), and a
    model fitted on it."""
    (tmp_path / "m.csv").write_text(f"index,{first},{second}\n" + "".join(f"{i},{i / 7:.4f},{1 - i / 7:.4f}\n" for i in range(8)))
    (tmp_path / "l.csv").write_text(f"index,val/{first}\n" + "".join(f"{i},{3 + (i / 7 - 0.7) ** 2:.4f}\n" for i in range(8)))
    store = tmp_path / "imp"
    assert run(["runs", "import", "--mixtures", str(tmp_path / "m.csv"), "--metrics", str(tmp_path / "l.csv"),
                "--store", str(store)]) == 0
    return store, pipeline.fit(pipeline.open_store(store), f"val/{first}", folds=2)


def test_imported_runs_with_a_search_only_config_plan_their_pools_without_the_embedded_corpus(tmp_path):
    """A config without data: sets only the search for imported runs; its data is the embedded default, which is not
    the runs' data. An imported domain named like an embedded one ('code') had its pool files checked against the
    embedded code corpus: "are not the domain's data: 0 of the 10 documents ... occur in .../code.jsonl.gz"."""
    store, model = _imported(tmp_path, "code", "prose")
    pools = {"code": _pool_files(tmp_path)["a"]}
    cfg = config_from_dict({"propose": {"n_candidates": 2000, "top_k": 10, "upsample": False, "budget_tokens": 1e4,
                                        "max_epochs": 4, "pools": pools}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = pipeline.propose(model, config=cfg, snapshot=pipeline.open_store(store), use_projector=False)
    assert not [str(w.message) for w in caught if "quality pool" in str(w.message)]
    assert plan.overall_weights()["code"] <= 0.4 + 1e-6 and plan.epochs["code"] <= 4 + 1e-6  # capped by its pools
    assert "pool_sources" in plan.provenance and plan.provenance["pool_sources"]["code"]["q1"]["path"].endswith("a.q1.jsonl")


def test_propose_reads_each_pool_file_once_and_warns_once_of_its_records_without_text(tmp_path, monkeypatch):
    """propose's pool file checks read each file's first 2,000 records and the sizing all of them: two reads, and two
    warnings of one file's records without text ("20 of 2000 records", then "25 of 2500"). The checks now look up the
    first documents the sizing read."""
    import mixopt.planning.pool_sources as pool_sources
    import mixopt.planning.quality as quality

    docs = [f"web doc {j} " + "lorem ipsum " * (5 + j % 7) for j in range(5000)]
    domain = tmp_path / "web.jsonl"
    domain.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    (tmp_path / "q1.jsonl").write_text("".join(json.dumps({"text": d if j % 100 else ""}) + "\n" for j, d in enumerate(docs[:2500])))
    (tmp_path / "q2.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs[2500:]))
    store, model = _imported(tmp_path, "web", "b")
    reads = []
    for module in (pool_sources, quality):
        monkeypatch.setattr(module, "pool_documents", lambda d, p, *a, _f=module.pool_documents: reads.append(p.name) or _f(d, p, *a))
    cfg = config_from_dict({"data": {"corpus": "none", "domains": [{"name": "web", "path": str(domain)},
                                                                   {"name": "b", "path": str(domain)}]},
                            "propose": {"n_candidates": 500, "upsample": False, "budget_tokens": 1e6, "max_epochs": 4,
                                        "pools": {"web": {"pools": [{"name": "q1", "path": str(tmp_path / "q1.jsonl")},
                                                                    {"name": "q2", "path": str(tmp_path / "q2.jsonl")}]}}}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline.propose(model, config=cfg, snapshot=pipeline.open_store(store), use_projector=False)
    said = [str(w.message) for w in caught]
    assert sorted(reads) == ["q1", "q2"]
    assert [m for m in said if "q1.jsonl have no text" in m] == [m for m in said if "25 of 2500 records" in m] != []
    assert any("its quality pool file(s) hold" in m and "validation documents" in m for m in said)  # the checks still run


def test_propose_counts_the_pools_in_the_configs_tokenizer(tmp_path):
    """The domains' token counts and the budget are in data.tokenizer's tokens; propose sized the pools in bytes
    whatever the tokenizer (ProposeContext had none), so with a BPE tokenizer the pools looked several times bigger:
    a cap that let them repeat more than max_epochs, and too few epochs in the plan."""
    from tokenizers import Tokenizer as HF, models, pre_tokenizers, trainers

    from mixopt.data.tokenize import Tokenizer

    docs = [f"web doc {j} " + "lorem ipsum dolor " * (5 + j % 7) for j in range(400)]
    hf = HF(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.train_from_iterator(docs, trainers.BpeTrainer(vocab_size=200, special_tokens=["[UNK]"]))
    hf.save(str(tmp_path / "tokenizer.json"))
    domain = tmp_path / "web.jsonl"
    domain.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    (tmp_path / "q1.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs[:100]))
    store, model = _imported(tmp_path, "web", "b")
    cfg = config_from_dict({"data": {"corpus": "none", "tokenizer": str(tmp_path / "tokenizer.json"),
                                     "domains": [{"name": "web", "path": str(domain)}, {"name": "b", "path": str(domain)}]},
                            "propose": {"n_candidates": 500, "upsample": False, "budget_tokens": 1e5, "max_epochs": 4,
                                        "pools": {"web": {"pools": [{"name": "q1", "path": str(tmp_path / "q1.jsonl")}]}}}})
    plan = pipeline.propose(model, config=cfg, snapshot=pipeline.open_store(store), use_projector=False)
    tok = Tokenizer(str(tmp_path / "tokenizer.json"))
    pool_tokens = sum(tok.count(d) for d in docs[:100])
    assert pool_tokens < 0.5 * sum(Tokenizer("bytes").count(d) for d in docs[:100])  # the units differ
    assert plan.epochs["web"] == pytest.approx(plan.overall_weights()["web"] * 1e5 / pool_tokens, rel=1e-5)
    assert plan.epochs["web"] <= 4 + 1e-6
