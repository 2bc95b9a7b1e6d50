"""Review stop 40 (determinism): what a plan or model depends on is recorded, and found from any folder."""

import json
import shutil

import pytest
import yaml

from mixopt.cli.main import run
from mixopt.pipeline import open_model
from tests.test_cli_sweep import write_cfg


@pytest.fixture()
def micro_store(tmp_path, monkeypatch):
    """A micro store of 8 runs (fit cross-validates it); the cwd is tmp_path."""
    cfg = write_cfg(tmp_path, runs=6, propose={"n_candidates": 500})
    monkeypatch.chdir(tmp_path)
    assert run(["sweep", str(cfg), "--store", "store", "--workers", "1"]) == 0
    return cfg, tmp_path / "store"


def plan_of(path) -> dict:
    return yaml.safe_load(open(path))


def test_fit_records_the_store_resolved_and_propose_finds_it_from_any_folder(micro_store, tmp_path, monkeypatch):
    _, store = micro_store
    assert run(["fit", "--store", "store", "--out", "m/model.pkl", "--folds", "2"]) == 0  # relative, as typed
    assert open_model(tmp_path / "m" / "model.pkl").meta["store"] == str(store.resolve())
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert run(["propose", "--model", "../m/model.pkl", "--no-projector", "--out", "../p/plan.yaml"]) == 0
    assert plan_of(tmp_path / "p" / "plan.yaml")["provenance"]["store"] == str(store.resolve())


def test_propose_says_when_the_models_store_is_gone(micro_store, tmp_path, capsys):
    _, store = micro_store
    assert run(["fit", "--store", "store", "--out", "m/model.pkl", "--folds", "2"]) == 0
    shutil.move(store, tmp_path / "moved")
    capsys.readouterr()
    assert run(["propose", "micro.yaml", "--model", "m/model.pkl", "--no-projector", "--out", "p/plan.yaml"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"fitted on the store {store.resolve()}, which is not found from here" in err and "Pass --store DIR" in err


def test_plan_and_model_record_their_seeds_and_fit_prints_it(micro_store, tmp_path, capsys):
    from mixopt import pipeline

    assert run(["fit", "--store", "store", "--out", "m/model.pkl", "--folds", "2", "--seed", "3"]) == 0
    assert "seed 3" in " ".join(capsys.readouterr().out.split())  # the CV table's title
    fitted = open_model(tmp_path / "m" / "model.pkl")
    assert fitted.meta["seed"] == 3
    assert run(["propose", "micro.yaml", "--model", "m/model.pkl", "--no-projector", "--seed", "2",
                "--out", "p/plan.yaml"]) == 0
    prov = plan_of(tmp_path / "p" / "plan.yaml")["provenance"]
    assert prov["seed"] == 2 and prov["fit_seed"] == 3
    del fitted.meta["seed"]  # a model an older mixopt saved: still plans, with no fit_seed to tell
    plan = pipeline.propose(fitted, config=None, use_projector=False)
    assert plan.provenance["seed"] == 0 and "fit_seed" not in plan.provenance


def test_fit_defaults_to_the_stores_seed_so_fit_then_propose_is_one_step_propose(tmp_path, monkeypatch):
    cfg = write_cfg(tmp_path, runs=6, seed=5, propose={"n_candidates": 500})
    monkeypatch.chdir(tmp_path)
    assert run(["sweep", str(cfg), "--store", "store", "--workers", "1"]) == 0
    assert run(["fit", "--store", "store", "--out", "m/model.pkl"]) == 0
    assert run(["propose", "micro.yaml", "--model", "m/model.pkl", "--store", "store", "--no-projector",
                "--out", "a/plan.yaml"]) == 0
    assert run(["propose", "micro.yaml", "--store", "store", "--no-projector", "--out", "b/plan.yaml"]) == 0
    a, b = plan_of(tmp_path / "a" / "plan.yaml"), plan_of(tmp_path / "b" / "plan.yaml")
    for p in (a, b):
        del p["provenance"]["model"]
    assert a == b
    assert open_model(tmp_path / "m" / "model.pkl").meta["seed"] == 5


def test_select_keys_its_scores_on_the_scoring_threads_and_dtype(tmp_path):
    from mixopt.config import ProxyConfig
    from mixopt.selection.cache import ScoreCache
    from mixopt.selection.select import select_documents
    from tests.test_selection_cli import VOCAB_A, VOCAB_B, docs_from, write_jsonl

    pool = write_jsonl(tmp_path / "pool.jsonl", [{"text": t} for t in docs_from(VOCAB_A, 12, 1) + docs_from(VOCAB_B, 12, 2)])
    target = write_jsonl(tmp_path / "target.jsonl", [{"text": t} for t in docs_from(VOCAB_A, 10, 0)])
    proxy = ProxyConfig(n_layer=1, n_embd=32, head_size=32, block_size=32, batch_size=4, tokens=1024, eval_tokens=256)
    cache = ScoreCache(tmp_path / "cache")
    results, settings = [], []
    for t in (1, 2):  # other threads, other floats: never the scores of the other thread count
        out = tmp_path / f"sel_t{t}"
        results.append(select_documents({"web": str(pool)}, str(target), out, method="perplexity", buckets=2,
                                        proxy=proxy.model_copy(update={"threads": t}), cache=cache, val_fraction=None))
        settings.append(json.loads((out / "selection.json").read_text())["settings"])
    assert not results[1].cached and results[0].key != results[1].key
    assert [s["threads"] for s in settings] == [1, 2] and settings[0]["dtype"] in ("float32", "bfloat16")


def test_config_hash_ignores_domain_order_and_where_runs_execute():
    from mixopt.config import config_from_dict
    from mixopt.pipeline import _config_hash

    doms = [{"name": "a", "path": "a.jsonl"}, {"name": "b", "path": "b.jsonl"}]
    base = {"data": {"corpus": "none", "domains": doms}}
    one = config_from_dict(base)
    other = config_from_dict({"data": {"corpus": "none", "domains": doms[::-1]}, "workers": 3,
                              "proxy": {"threads": 2, "device": "cpu"}})
    assert _config_hash(one) == _config_hash(other)
    assert _config_hash(one) != _config_hash(config_from_dict({**base, "seed": 1}))  # what plans differently still counts
