"""Review of stop 40 (does every setting do what its documentation says?): settings that were silently ignored or
misread now act, or are refused in one line naming the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.config import config_from_dict, load_config
from mixopt.errors import ConsistencyError, FitError
from tests.test_cli_sweep import write_cfg


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def micro_store(tmp_path_factory) -> tuple[Path, Path]:
    """(config, store) of a 3-run micro sweep (one sampled mixture and the two baselines; cosine schedule; ~2 s)."""
    tmp = tmp_path_factory.mktemp("rev40")
    cfg = write_cfg(tmp, runs=1)
    store = tmp / "store"
    assert run(["sweep", str(cfg), "--store", str(store), "--workers", "1"]) == 0
    return cfg, store


# ---------------------------------------------------------------- 1. propose.model / fit_budgets against --model


def _model_file(tmp_path, **meta) -> Path:
    from mixopt.surrogates import get_estimator, save_model

    W = np.random.default_rng(0).dirichlet(np.ones(3), size=6)
    est = get_estimator("linear").fit(W, W @ np.array([3.0, 3.2, 3.4]))
    return save_model(est, tmp_path / "m.pkl", {"domains": ["code", "legal", "prose"], "target": "mean:all-domains",
                                                  "estimator": "default", "budgets": False, **meta})


@pytest.mark.parametrize("propose, says", [
    ({"model": "linear"}, "propose.model: linear, but --model"),
    ({"fit_budgets": True}, "propose.fit_budgets: true, but --model"),
])
def test_config_fit_settings_the_model_file_was_not_fitted_with_are_an_error(tmp_path, capsys, propose, says):
    """Before: exit 0 and a plan from the model file's surrogate (`estimator: default`), the config's key unread."""
    model = _model_file(tmp_path)
    cfg, out = write_cfg(tmp_path, propose=propose), tmp_path / "p.yaml"
    assert run(["propose", str(cfg), "--model", str(model), "--budget-tokens", "40000", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert says in err and "mixopt fit" in err and "or remove it" in err and not out.exists()


def test_config_fit_settings_the_model_was_fitted_with_pass(tmp_path):
    from mixopt.cli.cmd_propose import _check_fit_settings

    fitted = pipeline.open_model(_model_file(tmp_path, estimator="linear", budgets=True))
    _check_fit_settings(load_config(write_cfg(tmp_path)), fitted, None, fitted.path)  # unset: the model's are used
    _check_fit_settings(load_config(write_cfg(tmp_path, propose={"model": "linear", "fit_budgets": True})), fitted, None,
                        fitted.path)
    with pytest.raises(ConsistencyError, match="propose.fit_budgets: false, but --model .* fitted with --budgets"):
        _check_fit_settings(load_config(write_cfg(tmp_path, propose={"fit_budgets": False})), fitted, None, fitted.path)
    older = pipeline.open_model(_model_file(tmp_path, estimator=None))  # a model file that recorded no estimator
    older.meta.pop("estimator")
    _check_fit_settings(load_config(write_cfg(tmp_path, propose={"model": "linear"})), older, None, older.path)


@pytest.mark.parametrize("budgets, scales, same", [
    (False, [[5e4, 1e5], [2e4, 1e5]], "scale-gp"),  # two sizes: default is scale-gp
    (True, [[5e4, 1e5], [5e4, 5e4]], "shift-gp"),  # --budgets on one size: default is shift-gp
])
def test_default_and_the_estimator_it_resolves_to_are_one_model(tmp_path, budgets, scales, same):
    """On a store of several scales `default` is scale-gp (shift-gp with --budgets on one size): propose.model: default
    with a model fitted --model scale-gp, or the reverse, was refused although both are the same model (recheck of stop
    40, N2). At one scale default and gp stay apart (an averaged target's default is a MetricAverage of GPs)."""
    from mixopt.cli.cmd_propose import _check_fit_settings

    extra = {"propose": {"fit_budgets": budgets}} if budgets else {}
    for fitted_as, config_says in (("default", same), (same, "default")):
        fitted = pipeline.open_model(_model_file(tmp_path, estimator=fitted_as, budgets=budgets, scale_aware=True,
                                                 scales=scales))
        _check_fit_settings(load_config(write_cfg(tmp_path, propose={"model": config_says, **extra.get("propose", {})})),
                            fitted, None, fitted.path)
    other = "shift-gp" if same == "scale-gp" else "scale-gp"
    fitted = pipeline.open_model(_model_file(tmp_path, estimator="default", budgets=budgets, scale_aware=True, scales=scales))
    with pytest.raises(ConsistencyError, match=f"propose.model: {other}, but --model"):
        _check_fit_settings(load_config(write_cfg(tmp_path, propose={"model": other, **extra.get("propose", {})})),
                            fitted, None, fitted.path)
    one = pipeline.open_model(_model_file(tmp_path, estimator="default"))  # one scale: default is not gp
    with pytest.raises(ConsistencyError, match="propose.model: gp, but --model"):
        _check_fit_settings(load_config(write_cfg(tmp_path, propose={"model": "gp"})), one, None, one.path)


def test_fit_budgets_error_names_the_config_key(micro_store):
    """propose fits with the config's propose.fit_budgets: the error named only fit's --budgets flag."""
    _, store = micro_store
    with pytest.raises(FitError, match=r"--budgets \(config: propose.fit_budgets\).*propose.fit_budgets: false"):
        pipeline.fit(pipeline.open_store(store), "mean:all-domains", budgets=True)


# ---------------------------------------------------------------- 2+3. workers: unset means one per core, also from a store


def _pending(n: int) -> list:
    return [SimpleNamespace(proxy={"tokens": 1_000_000}) for _ in range(n)]


def test_workers_default_is_unset_and_means_one_per_core(monkeypatch):
    from mixopt.runs import executors

    monkeypatch.setattr(executors, "default_workers", lambda cfg: 3)
    monkeypatch.setattr(executors, "pick_device", lambda proxy: SimpleNamespace(type="cpu"))
    assert config_from_dict({}).workers is None  # the documented default, not 1
    assert executors.choose_workers(config_from_dict({}), None, _pending(4)) == 3
    assert executors.choose_workers(config_from_dict({"workers": 1}), None, _pending(4)) == 1  # the config's, when set
    assert executors.choose_workers(config_from_dict({"workers": 1}), 2, _pending(4)) == 2  # the CLI's first


def test_a_stored_config_leaves_workers_unset(micro_store, tmp_path, monkeypatch):
    """verify and propose without CONFIG read the store's config: its `workers` (an older store recorded the old default
    1) pinned them to one worker. A store made that way resumes as it is: same run ids, no config change recorded."""
    import shutil

    from mixopt.runs import executors

    monkeypatch.setattr(executors, "default_workers", lambda cfg: 3)
    monkeypatch.setattr(executors, "pick_device", lambda proxy: SimpleNamespace(type="cpu"))
    cfg, store = micro_store
    assert "workers" not in json.loads((store / "store.json").read_text())["config"]  # an execution setting: not recorded
    old = tmp_path / "old"
    shutil.copytree(store, old)
    meta = json.loads((old / "store.json").read_text())
    meta["config"]["workers"] = 1  # as every sweep before stop 40 recorded it
    (old / "store.json").write_text(json.dumps(meta))
    stored = pipeline.store_config(pipeline.open_store(old))
    assert stored.workers is None and executors.choose_workers(stored, None, _pending(4)) == 3
    before = sorted(p.name for p in (old / "runs").glob("*.json"))
    assert run(["sweep", str(cfg), "--store", str(old), "--workers", "1"]) == 0  # no "other settings" refusal
    assert sorted(p.name for p in (old / "runs").glob("*.json")) == before  # nothing trained again: the same run ids
    assert "config_history" not in json.loads((old / "store.json").read_text())  # `workers` going is no config change


def test_config_hash_is_unchanged_by_the_workers_setting():
    """Plans record a hash of the config: where runs execute (workers, unset or set) leaves it as it is (the
    determinism review made it a hash of the canonical form, so the values pinned at stop 39 moved once)."""
    from mixopt.config import packaged_config
    from mixopt.pipeline import _config_hash

    assert _config_hash(config_from_dict({})) == _config_hash(config_from_dict({"workers": 2})) \
        == _config_hash(config_from_dict({"workers": 1}))
    assert _config_hash(load_config(packaged_config("tiny"))) != _config_hash(config_from_dict({}))


# ---------------------------------------------------------------- 5. keep_best_run without its gate


def test_keep_best_run_without_the_gate_is_refused(tmp_path, capsys):
    """Before: accepted, and the plan was the same as without keep_best_run (the gate that reads it was off)."""
    from mixopt.config import stored_config
    from mixopt.errors import ConfigError

    both = {"keep_baseline_within_noise": False, "keep_best_run": True}
    with pytest.raises(ConfigError, match="keep_best_run acts only with keep_baseline_within_noise: true.*drop keep_best_run"):
        config_from_dict({"propose": both}, where="c.yaml")
    assert run(["propose", str(write_cfg(tmp_path, propose=both)), "--store", str(tmp_path / "s"),
                "--out", str(tmp_path / "p.yaml")]) == 2
    assert "propose.keep_best_run acts only" in _one_line_error(capsys) and not (tmp_path / "p.yaml").exists()
    assert config_from_dict({"propose": {"keep_best_run": True}}).propose.keep_best_run  # with the gate (the default)
    assert stored_config({"propose": both}, where="store.json").propose.keep_best_run  # a store swept so stays readable


# ---------------------------------------------------------------- 6. schedule keys that do nothing under the schedule


@pytest.mark.parametrize("proxy, says", [
    ({"decay_fraction": 0.3}, "proxy.decay_fraction (0.3) acts only with schedule: wsd, and does nothing under schedule: cosine"),
    ({"schedule": "constant", "decay_fraction": 0.3}, "does nothing under schedule: constant"),
    ({"schedule": "constant", "min_lr_ratio": 0.0}, "proxy.min_lr_ratio (0.0) is the floor of a decaying learning rate"),
])
def test_a_schedule_key_that_does_nothing_is_refused_at_load(tmp_path, capsys, proxy, says):
    """Before: accepted; it trained the same runs under other run ids, and the sweep then refused its own store."""
    assert run(["sweep", str(write_cfg(tmp_path, proxy=proxy)), "--store", str(tmp_path / "s"), "--workers", "1"]) == 2
    err = _one_line_error(capsys)
    assert says in err and "drop it" in err and not (tmp_path / "s").exists()


def test_a_store_an_older_mixopt_swept_with_an_idle_schedule_key_stays_resumable(tmp_path, capsys):
    """A store swept (by an older mixopt) with decay_fraction under cosine: its config, refused at load since, resumes and
    grows it with one warning; a config that drops the key has other run ids (refused by the store check), so before
    no config could sweep into it (recheck of stop 40, N3). A new store, or another value, is still refused."""
    import yaml

    from mixopt.config import stored_config
    from tests.test_cli_sweep import records

    path = write_cfg(tmp_path, runs=1, proxy={"decay_fraction": 0.3})
    old = tmp_path / "old"
    pipeline.sweep(stored_config(yaml.safe_load(path.read_text()), where="old"), old, workers=1)  # as the older mixopt did
    before = set(records(old))
    capsys.readouterr()
    with pytest.warns(UserWarning, match=r"swept with proxy.decay_fraction 0.3, which does nothing under schedule: "
                                         r"cosine; kept for this store so its runs keep their ids"):
        assert run(["sweep", str(path), "--store", str(old), "--runs", "2", "--workers", "1"]) == 0
    assert before < set(records(old)) and {r["proxy"]["decay_fraction"] for r in records(old).values()} == {0.3}
    assert run(["sweep", str(path), "--store", str(tmp_path / "new"), "--workers", "1"]) == 2
    assert "acts only with schedule: wsd" in _one_line_error(capsys) and not (tmp_path / "new").exists()
    (tmp_path / "o").mkdir()
    other = write_cfg(tmp_path / "o", runs=2, proxy={"decay_fraction": 0.4})
    assert run(["sweep", str(other), "--store", str(old), "--workers", "1"]) == 2
    assert "proxy.decay_fraction (0.4) acts only with schedule: wsd" in _one_line_error(capsys)


def test_schedule_keys_that_act_load_and_a_stores_config_stays_readable():
    from mixopt.config import packaged_config, packaged_names, stored_config

    for proxy in ({"schedule": "wsd", "decay_fraction": 0.3, "min_lr_ratio": 0.0}, {"min_lr_ratio": 0.0},
                  {"decay_fraction": 0.2}, {"schedule": "constant", "min_lr_ratio": 0.1}):  # acting, or at the default
        config_from_dict({"proxy": proxy})
    assert stored_config({"proxy": {"decay_fraction": 0.3}}, where="store.json").proxy.decay_fraction == 0.3
    for name in packaged_names():
        load_config(packaged_config(name))
    from tests.conftest import REPO
    for path in sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "benchmarks").glob("*.yaml")):
        if "pools" not in path.name:  # a pools file, not a sweep config
            load_config(path)


# ---------------------------------------------------------------- 7, 8. eval_tokens above a split, tokens off whole batches


def test_a_sweep_says_when_eval_tokens_exceed_a_split_and_when_tokens_lose_a_partial_batch(tmp_path):
    """Before: silent; a domain's loss was measured on what its split held, and 8400 tokens trained 8192."""
    cfg = write_cfg(tmp_path, runs=1, proxy={"tokens": 8400, "eval_tokens": 10**6})
    with pytest.warns(UserWarning) as said:
        assert run(["sweep", str(cfg), "--store", str(tmp_path / "s"), "--workers", "1"]) == 0
    lines = [str(w.message) for w in said]
    assert len([x for x in lines if "eval_tokens" in x]) == 1 and len([x for x in lines if "rounded down" in x]) == 1
    evals = next(x for x in lines if "eval_tokens" in x)
    assert "proxy: eval_tokens 1,000,000 exceeds the validation split of code (" in evals and "raise data.val_fraction" in evals.lower()
    rounded = next(x for x in lines if "rounded down" in x)
    assert "tokens 8,400 is rounded down to whole batches of batch_size x block_size (8x32 = 256 tokens): each run trains " \
           "8,192" in rounded and "multiple of 256" in rounded
    rec = json.loads(next((tmp_path / "s" / "runs").glob("*.json")).read_text())["record"]
    assert rec["scale"]["tokens"] == 8192  # what the note says


def test_no_note_when_eval_tokens_fit_and_under_one_percent_is_lost():
    from mixopt.config import ProxyConfig
    from mixopt.data.domains import load_domain_set
    from mixopt.proxy.loop import eval_token_count, eval_windows
    from mixopt.runs.driver import proxy_notes

    from tests.test_cli_sweep import MICRO

    cfg = config_from_dict(MICRO)
    data = load_domain_set(cfg.data)
    assert proxy_notes(cfg, data) == []  # eval_tokens 512 fits every split; 8192 = 32 batches
    near = config_from_dict({**MICRO, "proxy": {**MICRO["proxy"], "eval_tokens": 5000}})  # prose's split: 4,416 of them
    assert proxy_notes(near, data) == []  # over half evaluated (as the demo's legal split: 14,720 of 16,384): no note
    assert ProxyConfig(tokens=16 * 128 * 100 + 20).rounding_note() is None  # 20 of 204,820 tokens: under 1%
    assert ProxyConfig(tokens=16 * 128 * 3 + 100).rounding_note() is not None
    vals = np.arange(1000)
    for n_tok, eval_tokens in ((1000, 64), (1000, 10**6), (1000, 1), (50, 100)):
        x, _ = eval_windows(vals[:n_tok], 64, eval_tokens, "d")
        assert x.numel() == eval_token_count(n_tok, 64, eval_tokens)  # the note counts as the loop evaluates


# ---------------------------------------------------------------- 9. data.cache_dir in the README


def test_readme_says_what_data_cache_dir_holds(tmp_path):
    """The README named only MIXOPT_CACHE; data.cache_dir, which moves the token shards and nothing else, was missing."""
    from mixopt.config import DataConfig
    from mixopt.data.domains import cache_dir
    from tests.conftest import REPO

    data = REPO.joinpath("README.md").read_text().split("\n## Data\n")[1].split("\n## ")[0]
    text = " ".join(data.split())
    assert "`data.cache_dir` holds only the token shards" in text
    for probe in ("dtype_probe.json", "stack_probe.json", "selection/"):
        assert probe in text
    assert cache_dir(DataConfig(cache_dir=str(tmp_path))) == tmp_path  # as it says: the shards go there
    from mixopt.selection.cache import ScoreCache
    assert ScoreCache().root == cache_dir(DataConfig()) / "selection"  # and select's scores to MIXOPT_CACHE
