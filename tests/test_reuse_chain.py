"""reuse.store / reuse.plan across folders, stores and chains: where the recorded paths lie, which runs join (each
on its own), a store that names itself, a plan kept on changed data, and what the sweep checks before training."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from sklearn.base import BaseEstimator

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.errors import DataError
from mixopt.runs.reused import reused_records
from mixopt.surrogates.crossval import cross_validate
from tests.test_cli_sweep import write_cfg


def sweep(tmp_path, name, store, **over):
    cfg = write_cfg(tmp_path, **over).rename(tmp_path / f"{name}.yaml")
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    return cfg


def meta_of(store):
    return json.loads((store / "store.json").read_text())


def set_reuse(where, **reuse):
    """store.json as an older mixopt wrote it: ``reuse`` as given (paths as typed), no ``reuse_relative`` nor
    ``reuse_store_runs``."""
    meta = meta_of(where)
    meta["config"]["reuse"] = {"store": None, "plan": None, "recompute": [], **reuse}
    meta.pop("reuse_relative", None)
    meta.pop("reuse_store_runs", None)
    (where / "store.json").write_text(json.dumps(meta))


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """s0 (code, prose) <- s1 (legal added) <- s2 (another seed), swept from tmp_path/work with relative paths."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    sweep(tmp_path, "c0", "s0", runs=3, data={"include": ["code", "prose"]})
    sweep(tmp_path, "c1", "s1", runs=3, reuse={"store": "s0"})
    sweep(tmp_path, "c2", "s2", runs=2, seed=5, reuse={"store": "s1"})
    return work


# ------------------------------------------------------------------ finding 1: where the recorded paths lie

def test_the_sweep_records_where_the_earlier_store_lies_and_fit_finds_it_from_any_folder(chain, tmp_path, monkeypatch):
    meta = meta_of(chain / "s2")
    assert meta["config"]["reuse"]["store"] == str(chain / "s1") and meta["reuse_relative"] == {"store": "../s1"}
    n0, n1 = (len(pipeline.open_store(chain / s).ok) for s in ("s0", "s1"))
    other = tmp_path / "other"
    shutil.copytree(chain / "s0", other / "s1")  # another store that happens to be called s1 there
    monkeypatch.chdir(other)
    assert pipeline.fit(pipeline.open_store(chain / "s2"), "val/code").meta["reused_runs"] == n0 + n1
    # a store an older mixopt wrote: the paths as typed, relative to the folder swept from (not recorded)
    for store, earlier in (("s2", "s1"), ("s1", "s0")):
        set_reuse(chain / store, store=earlier)
    with pytest.raises(DataError, match="could be any of 2 run stores"):  # next to the store, or ./s1: it cannot tell
        reused_records(pipeline.open_store(chain / "s2"), "val/code")
    monkeypatch.chdir(tmp_path)  # one place holds it: next to the store
    full, _, line = reused_records(pipeline.open_store(chain / "s2"), "val/code")
    assert len(full) == n0 + n1 and "of work/s1 and the 1 store(s) it reused (work/s0)" in line
    assert pipeline.fit(pipeline.open_store("work/s2"), "val/code").meta["reused_runs"] == n0 + n1


def test_a_lost_earlier_store_names_where_it_was_looked_for(chain, tmp_path, monkeypatch, capsys):
    set_reuse(chain / "s2", store="gone/s1")
    monkeypatch.chdir(tmp_path)
    assert run(["fit", "--store", "work/s2", "--out", str(tmp_path / "m.pkl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "looked at" in err and "work/gone/s1" in err and "mixopt sweep CONFIG --store work/s2" in err


def test_resuming_an_older_store_with_relative_paths_is_no_config_change(chain, tmp_path, capsys):
    set_reuse(chain / "s2", store="s1")
    capsys.readouterr()
    assert run(["sweep", str(tmp_path / "c2.yaml"), "--store", "s2"]) == 0
    out = capsys.readouterr().out
    assert "store config updated" not in out and "0 trained now" in out
    meta = meta_of(chain / "s2")
    assert meta["config"]["reuse"]["store"] == str(chain / "s1") and "config_history" not in meta


def test_resuming_through_a_link_or_after_a_tree_move_is_no_config_change(chain, tmp_path, monkeypatch, capsys):
    """The same earlier store spelled through a symbolic link, or found next to the store after the tree moved: the
    config did not change, so store.json gains no config_history entry (and records the path as given now)."""
    (tmp_path / "link").symlink_to(chain, target_is_directory=True)
    linked = write_cfg(tmp_path, runs=2, seed=5, reuse={"store": str(tmp_path / "link" / "s1")})
    capsys.readouterr()
    assert run(["sweep", str(linked), "--store", str(tmp_path / "link" / "s2")]) == 0
    out = capsys.readouterr().out
    assert "store config updated" not in out and "0 trained now" in out
    meta = meta_of(chain / "s2")
    assert "config_history" not in meta and meta["config"]["reuse"]["store"] == str(tmp_path / "link" / "s1")
    moved = tmp_path / "moved"
    chain.rename(moved)
    monkeypatch.chdir(moved)
    assert run(["sweep", str(tmp_path / "c2.yaml"), "--store", "s2"]) == 0  # reuse.store: s1, now moved/s1
    out = capsys.readouterr().out
    assert "store config updated" not in out and "0 trained now" in out
    meta = meta_of(moved / "s2")
    assert "config_history" not in meta and meta["config"]["reuse"]["store"] == str(moved / "s1")
    other = write_cfg(tmp_path, runs=2, seed=5, reuse={"store": str(moved / "s0")})  # another store: a change
    assert run(["sweep", str(other), "--store", "s2"]) == 0
    history = meta_of(moved / "s2")["config_history"]
    assert len(history) == 1 and history[0]["config"]["reuse"]["store"] == str(moved / "s1")


def test_a_plan_spelled_through_a_link_is_the_same_plan(tmp_path):
    from mixopt.runs.reuse_chain import same_reuse_paths

    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.yaml").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "plans", target_is_directory=True)
    old = {"reuse": {"store": None, "plan": str(tmp_path / "plans" / "p.yaml")}}
    new = {"reuse": {"store": None, "plan": str(tmp_path / "link" / "p.yaml")}}
    assert same_reuse_paths(old, new, {}, tmp_path / "s") == new
    (tmp_path / "plans" / "q.yaml").write_text("x")
    other = {"reuse": {"store": None, "plan": str(tmp_path / "link" / "q.yaml")}}
    assert same_reuse_paths(old, other, {}, tmp_path / "s") == old


def test_a_moved_tree_with_another_store_at_the_old_path_reads_its_own_earlier_store(chain, tmp_path, monkeypatch,
                                                                                     capsys):
    """The tree moved and a new, unrelated store made at the recorded absolute path: the run ids store.json recorded
    tell the earlier store apart; a store.json without them (swept before they were recorded) refuses in one line."""
    n0, n1 = (len(pipeline.open_store(chain / s).ok) for s in ("s0", "s1"))
    moved = tmp_path / "moved"
    monkeypatch.chdir(tmp_path)
    chain.rename(moved)
    shutil.copytree(moved / "s0", chain / "s1")  # another store where s1 was
    assert pipeline.fit(pipeline.open_store(moved / "s2"), "val/code").meta["reused_runs"] == n0 + n1
    meta = meta_of(moved / "s2")
    meta.pop("reuse_store_runs")
    (moved / "s2" / "store.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert run(["fit", "--store", str(moved / "s2"), "--out", str(tmp_path / "m.pkl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "could be any of 2 run stores" in err
    assert "moved/s1, work/s1 (relative to the store as recorded, and the path recorded" in err
    assert "mixopt sweep CONFIG --store moved/s2" in err
    shutil.rmtree(chain / "s1")
    shutil.copytree(moved / "s1", chain / "s1")  # a copy of the earlier store there: either is the same store
    assert pipeline.fit(pipeline.open_store(moved / "s2"), "val/code").meta["reused_runs"] == n0 + n1
    meta["reuse_store_runs"] = sorted(p.stem for p in (moved / "s1" / "runs").glob("*.json"))
    (moved / "s2" / "store.json").write_text(json.dumps(meta))
    shutil.rmtree(chain / "s1")
    shutil.copytree(moved / "s0", chain / "s1")  # the other store back where s1 was
    shutil.rmtree(moved / "s1")  # and the earlier store gone: the other store is not taken for it
    assert run(["fit", "--store", str(moved / "s2"), "--out", str(tmp_path / "m.pkl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another store lies there now" in err and "work/s1" in err


def test_an_older_store_whose_relative_path_several_folders_hold_refuses(chain, tmp_path, monkeypatch, capsys):
    """An older mixopt's relative reuse.store that more than one folder holds (next to the store, above it): it
    refuses, naming them, until the sweep is resumed from the folder it was swept from (which records the full path)."""
    set_reuse(chain / "s2", store="s1")
    shutil.copytree(chain / "s0", tmp_path / "s1")  # a store called s1 one folder up too
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert run(["fit", "--store", "work/s2", "--out", "m.pkl"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "could be any of 2 run stores: work/s1, s1" in err
    assert "mixopt sweep CONFIG --store work/s2" in err and "folder it was swept from" in err
    monkeypatch.chdir(chain)
    assert run(["sweep", str(tmp_path / "c2.yaml"), "--store", "s2"]) == 0
    assert "store config updated" not in capsys.readouterr().out
    n0, n1 = (len(pipeline.open_store(chain / s).ok) for s in ("s0", "s1"))
    assert pipeline.fit(pipeline.open_store(chain / "s2"), "val/code").meta["reused_runs"] == n0 + n1


def test_an_older_stores_relative_plan_that_several_folders_hold_refuses(tmp_path, monkeypatch, capsys):
    """(A name no folder above tmp_path holds.) reuse.plan is located as reuse.store is: an older mixopt's relative plan path that two folders hold with other
    plans refuses in one line (it took the nearest, not the plan swept with); copies of one plan are that plan."""
    monkeypatch.chdir(tmp_path)
    weights = {"budget_tokens": 1e6, "phases": [{"start_fraction": 0.0, "weights": {"code": 0.6, "prose": 0.4}}]}
    (tmp_path / "p_of_sn.yaml").write_text(yaml.safe_dump(weights))
    sweep(tmp_path, "new", "work/sn", runs=3, propose={"n_candidates": 500}, reuse={"plan": "p_of_sn.yaml"})
    set_reuse(tmp_path / "work" / "sn", plan="p_of_sn.yaml")  # as an older mixopt recorded it
    weights["phases"][0]["weights"] = {"code": 0.9, "prose": 0.1}
    (tmp_path / "work" / "p_of_sn.yaml").write_text(yaml.safe_dump(weights))  # another plan next to the store
    capsys.readouterr()
    assert run(["propose", "--store", "work/sn", "--no-projector", "--out", "a.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and not (tmp_path / "a.yaml").exists()
    assert ("reuse.plan p_of_sn.yaml of work/sn could be any of 2 plan files, not copies of one: work/p_of_sn.yaml, "
            "p_of_sn.yaml") in err
    assert "mixopt sweep CONFIG --store work/sn" in err
    shutil.copyfile(tmp_path / "p_of_sn.yaml", tmp_path / "work" / "p_of_sn.yaml")  # a copy: either is the plan
    assert run(["propose", "--store", "work/sn", "--no-projector", "--out", "b.yaml"]) == 0
    reasons = yaml.safe_load((tmp_path / "b.yaml").read_text())["reasons"]
    assert any("code 0.600, prose 0.400 keep their ratios" in r for r in reasons)


# ------------------------------------------------------------------ finding 3: each run on its own

def test_a_run_that_measured_the_target_joins_whatever_older_stores_measured(chain):
    """s0's runs never measured val/legal, s1's did: s1's join fully (single metric, any model), s0's partly."""
    snap = pipeline.open_store(chain / "s2")
    n0, n1 = (len(pipeline.open_store(chain / s).ok) for s in ("s0", "s1"))
    full, partial, line = reused_records(snap, "val/legal")
    assert len(full) == n1 and partial == [] and f"{n0} left out (it did not measure val/legal)" in line
    full, partial, line = reused_records(snap, "mean:all-domains")
    assert (len(full), len(partial)) == (n1, n0)
    assert f"{n1} of s1 with no new domain at 0" in line and "legal, at 0" not in line
    assert f"{n0} of s0 with legal at 0, for the 2 of 3 components of mean:all-domains they measured (not val/legal)" in line
    linear = pipeline.fit(snap, "mean:all-domains", "linear")  # one model of the mean: s1's runs, not s0's
    assert linear.meta["reused_runs"] == n1 and f"the {n0} that measured only some components are not used" in linear.meta["reused"]
    assert pipeline.fit(snap, "val/legal").meta["reused_runs"] == n1


def as_if_changed_since(store, domain):
    meta = meta_of(store)
    meta["domain_fingerprints"][domain] = "other text"
    meta.get("domain_fingerprints_verbatim", {}).pop(domain, None)
    (store / "store.json").write_text(json.dumps(meta))


def test_the_line_says_which_stores_were_swept_on_other_data_of_a_domain(chain):
    """prose changed since s0 only: s1's runs still measure today's prose, so the line names s0 and does not say
    "only today's runs measure it"; when it changed since s1 too, it does."""
    as_if_changed_since(chain / "s0", "prose")
    snap = pipeline.open_store(chain / "s2")
    n1 = len(pipeline.open_store(chain / "s1").ok)
    full, _, line = reused_records(snap, "val/prose")
    assert len(full) == n1 and "only today's runs" not in line
    assert "the data of prose changed since s0 was swept: their runs' val/prose is not used" in line
    as_if_changed_since(chain / "s1", "prose")
    line = reused_records(snap, "val/code")[2]
    assert "the data of prose changed since s1, s0 were swept: only today's runs measure it" in line


# ------------------------------------------------------------------ finding 5: a store that names itself

def test_a_store_cannot_reuse_itself_nor_one_that_reuses_it(chain, tmp_path, capsys):
    before = {p: p.read_bytes() for p in (chain / "s1").rglob("*") if p.is_file()}
    capsys.readouterr()
    c1 = yaml.safe_load((tmp_path / "c1.yaml").read_text())
    for reuse, said in (("s1", "is the store this sweep writes"), ("s2", "reuses the store this sweep writes in turn")):
        (tmp_path / "self.yaml").write_text(yaml.safe_dump({**c1, "reuse": {"store": reuse}}))
        assert run(["sweep", str(tmp_path / "self.yaml"), "--store", "s1"]) == 2
        err = capsys.readouterr().err.strip()
        assert said in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert {p: p.read_bytes() for p in (chain / "s1").rglob("*") if p.is_file()} == before
    set_reuse(chain / "s1", store="s1")  # a store.json that says so anyway: fit and propose say it in one line
    for argv in (["fit", "--store", "s1", "--out", "m.pkl"], ["propose", "--store", "s1", "--no-projector", "--out", "p.yaml"]):
        assert run(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "is that store itself" in err and len(err.splitlines()) == 1 and "Traceback" not in err


# ------------------------------------------------------------------ finding 2: a reused run that is one of today's

def older_run_ids(store):
    """The store's records as a store swept before stop 38 holds them: the same training runs under other run ids
    (the embedded corpus's data fingerprint changed since)."""
    import hashlib

    from mixopt.runs.record import RunRecord

    was = {}  # older id -> today's
    for path in sorted((store / "runs").glob("*.json")):
        rec = RunRecord.from_json(path.read_text())
        rec.run_id = hashlib.sha256(rec.run_id.encode()).hexdigest()[:16]
        was[rec.run_id] = path.stem
        rec.data_fingerprint = "older"
        path.unlink()
        (store / "runs" / f"{rec.run_id}.json").write_text(rec.to_json())
    return was


@pytest.mark.parametrize("older", [False, True], ids=["same-ids", "older-ids"])
def test_a_reused_run_this_store_holds_too_is_not_fitted_twice(tmp_path, monkeypatch, capsys, older):
    """The same data swept again with reuse.store: the old runs this store trained again stay out, under the same run
    id or, for a store swept before the embedded corpus's fingerprint changed, under another (same proxy, phases
    without zero-weight domains, seed)."""
    monkeypatch.chdir(tmp_path)
    sweep(tmp_path, "old", "s_old", runs=4, data={"include": ["code", "prose"]})
    was = older_run_ids(tmp_path / "s_old") if older else {}
    capsys.readouterr()
    sweep(tmp_path, "new", "s_new", runs=2, data={"include": ["code", "prose"]}, reuse={"store": "s_old"})
    old, new = (pipeline.open_store(s) for s in ("s_old", "s_new"))
    same = {r.run_id for r in old.ok if was.get(r.run_id, r.run_id) in {t.run_id for t in new.ok}}
    k = len(old.ok) - len(same)
    assert same and k > 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"reuse.store: {k} of the {len(old.ok)} run(s) of s_old will join" in said
    assert f"{len(same)} left out (this store holds the same run)" in said
    full, partial, line = reused_records(new, "val/code")
    assert len(full) == k and not {r.run_id for r in full} & same and f"{len(same)} left out (this store holds" in line
    model = pipeline.fit(new, "val/code")
    assert model.meta["n_runs"] == len(new.ok) + k and model.meta["reused_runs"] == k


def test_a_complete_store_whose_reuse_store_adds_nothing_resumes_with_a_warning(tmp_path, monkeypatch, capsys):
    """Every run of reuse.store is one of this store's: a new sweep refuses before training (nothing written), a resume
    with nothing left to train warns that the store is complete and fit works on it."""
    monkeypatch.chdir(tmp_path)
    sweep(tmp_path, "old", "s_old", runs=3, data={"include": ["code", "prose"]})
    older_run_ids(tmp_path / "s_old")  # (under other run ids: found by what they trained)
    cfg = write_cfg(tmp_path, runs=3, data={"include": ["code", "prose"]}, reuse={"store": "s_old"})
    cfg = cfg.rename(tmp_path / "reuse.yaml")
    capsys.readouterr()
    assert run(["sweep", str(cfg), "--store", "s_new"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Nothing was trained or written" in err and not (tmp_path / "s_new").exists()
    sweep(tmp_path, "plain", "s_new", runs=3, data={"include": ["code", "prose"]})
    capsys.readouterr()
    with pytest.warns(UserWarning, match="left out \\(this store holds the same run\\). This store's sweep is complete and fit"):
        assert run(["sweep", str(cfg), "--store", "s_new"]) == 0
    assert "0 trained now" in capsys.readouterr().out
    assert pipeline.fit(pipeline.open_store("s_new"), "val/code").meta.get("reused_runs", 0) == 0


class Lookup(BaseEstimator):
    """Predicts a mixture's mean training target when it saw that mixture, else 0: a leak detector."""

    def fit(self, W, y):
        self.W_, self.y_ = np.asarray(W, dtype=float), np.asarray(y, dtype=float)
        return self

    def predict(self, W, return_std=False):
        out = []
        for w in np.atleast_2d(W):
            hit = np.all(np.isclose(self.W_, w), axis=1)
            out.append(self.y_[hit].mean() if hit.any() else 0.0)
        out = np.array(out)
        return (out, np.ones_like(out)) if return_std else out


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # Rows predicts one value per fold
def test_train_only_rows_of_a_held_out_mixture_stay_out_of_its_fold():
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), size=10)
    y = rng.normal(size=10)
    leaky = cross_validate(Lookup(), W, y, k=5, train_only=(W[:4], y[:4]))  # copies of four scored runs
    plain = cross_validate(Lookup(), W, y, k=5)
    assert leaky["mae"] == pytest.approx(plain["mae"])  # the copies never predict their own mixture
    other = rng.dirichlet(np.ones(3), size=3)  # rows of other mixtures still train every fold
    rows = cross_validate(Rows(), W, y, k=5, train_only=(other, np.zeros(3)))["oof_pred"]
    assert rows == pytest.approx(cross_validate(Rows(), W, y, k=5)["oof_pred"] + 3)


class Rows(Lookup):
    """Predicts how many rows it was fitted on."""

    def predict(self, W, return_std=False):
        out = np.full(len(np.atleast_2d(W)), float(len(self.W_)))
        return (out, np.ones_like(out)) if return_std else out


# ------------------------------------------------------------------ finding 6: a plan kept on changed data

def test_a_plan_kept_on_changed_data_is_said(tmp_path, monkeypatch):
    from mixopt.config import ReuseConfig
    from mixopt.reuse import ReusedMixture
    from mixopt.runs.reused import stale_plan

    monkeypatch.chdir(tmp_path)
    old = tmp_path / "old"
    old.mkdir()
    meta = {"domains": ["code", "prose"], "domain_fingerprints": {"code": "c1", "prose": "p1"}}
    (old / "store.json").write_text(json.dumps(meta))
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"budget_tokens": 1e6, "phases": [{"start_fraction": 0.0, "weights": {"code": 0.6, "prose": 0.4}}],
                                    "provenance": {"store": str(old)}}))
    today = {"domains": ["code", "legal", "prose"], "domain_fingerprints": {"code": "c1", "prose": "p2", "legal": "l"}}
    kept, recomputed = (ReusedMixture.from_config(ReuseConfig(plan=str(plan), recompute=r), today["domains"])
                        for r in ([], ["prose"]))
    note = stale_plan(kept, today)
    assert "keeps the ratio of prose" in note and "recompute: [prose]" in note and "code" not in note.split("recompute")[1]
    assert stale_plan(recomputed, today) is None  # prose recomputed: nothing kept changed
    assert stale_plan(kept, {**today, "domain_fingerprints": meta["domain_fingerprints"]}) is None
    shutil.rmtree(old)
    assert stale_plan(kept, today) is None  # the plan's store is gone: nothing to compare


def test_the_sweep_and_propose_warn_when_the_plan_kept_changed_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep(tmp_path, "old", "s_old", runs=3, data={"include": ["code", "prose"]}, propose={"n_candidates": 500})
    assert run(["propose", "old.yaml", "--store", "s_old", "--no-projector", "--out", "old_plan.yaml"]) == 0
    meta = meta_of(tmp_path / "s_old")
    meta["domain_fingerprints"]["prose"] = "other text"  # as if prose's data changed since
    meta.get("domain_fingerprints_verbatim", {}).pop("prose", None)  # (its older key form too)
    (tmp_path / "s_old" / "store.json").write_text(json.dumps(meta))
    cfg = write_cfg(tmp_path, runs=3, propose={"n_candidates": 500}, reuse={"plan": "old_plan.yaml"})  # legal added
    with pytest.warns(UserWarning, match=r"keeps the ratio of prose.*recompute: \[prose\]"):
        assert run(["sweep", str(cfg), "--store", "s_new"]) == 0
    with pytest.warns(UserWarning, match="keeps the ratio of prose"):
        assert run(["propose", str(cfg), "--store", "s_new", "--no-projector", "--out", "new_plan.yaml"]) == 0
    assert any("recompute: [prose]" in r for r in yaml.safe_load((tmp_path / "new_plan.yaml").read_text())["reasons"])


# ------------------------------------------------------------------ finding 10: reuse.plan checked before the store

@pytest.mark.parametrize("reuse, said", [
    ({"plan": "nope.yaml"}, "nope.yaml"),
    ({"plan": "old.yaml", "recompute": ["lgeal"]}, "lgeal"),
    ({"plan": "notaplan.yaml"}, "Plan in notaplan.yaml"),
])
def test_a_bad_reuse_plan_fails_before_the_store_is_made(tmp_path, monkeypatch, capsys, reuse, said):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.yaml").write_text(yaml.safe_dump({"budget_tokens": 1e6, "phases": [
        {"start_fraction": 0.0, "weights": {"code": 0.5, "prose": 0.5}}]}))
    (tmp_path / "notaplan.yaml").write_text("- a list\n")
    import mixopt.runs.driver as driver

    monkeypatch.setattr(driver, "load_domain_set", lambda *a, **k: pytest.fail("tokenized before checking reuse.plan"))
    cfg = write_cfg(tmp_path, reuse=reuse)
    assert run(["sweep", str(cfg), "--store", "s"]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1 and not (tmp_path / "s").exists()


# ------------------------------------------------------------------ each file read once per command

def test_a_sweep_reads_its_reuse_plan_once(tmp_path, monkeypatch, capsys):
    import mixopt.reuse
    import mixopt.runs.reused

    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.yaml").write_text(yaml.safe_dump({"budget_tokens": 1e6, "phases": [
        {"start_fraction": 0.0, "weights": {"code": 0.6, "prose": 0.4}}]}))
    reads = []
    for module in (mixopt.reuse, mixopt.runs.reused):  # (reused.py read it too before)
        if hasattr(module, "load_plan"):
            load = module.load_plan
            monkeypatch.setattr(module, "load_plan", lambda p, load=load: reads.append(p) or load(p))
    cfg = write_cfg(tmp_path, runs=2, reuse={"plan": "old.yaml"})
    assert run(["sweep", str(cfg), "--store", "s"]) == 0
    assert len(reads) == 1 and "keep their ratios from old.yaml" in capsys.readouterr().out


def test_fit_reads_each_earlier_store_once(chain, monkeypatch):
    from mixopt.runs.store import RunStore

    reads: dict[str, int] = {}
    meta = RunStore.meta

    def counted(self):
        reads[self.root.resolve().name] = reads.get(self.root.resolve().name, 0) + 1
        return meta(self)

    snapshot = pipeline.open_store(chain / "s2")
    monkeypatch.setattr(RunStore, "meta", counted)
    full, _, _ = reused_records(snapshot, "val/code")
    assert full and reads == {"s1": 1, "s0": 1}
