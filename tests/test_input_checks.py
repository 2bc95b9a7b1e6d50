"""Bad input fails before any work with one `error: ...` line and exit code 2: seeds, non-finite floats, empty or
directory config files, propose's --budget-tokens and a config target the --model does not predict."""

from __future__ import annotations

from types import UnionType
from typing import Union, get_args, get_origin

import numpy as np
import pytest
import yaml

from mixopt.cli.main import run
from mixopt.config import SweepConfig, _Strict, config_from_dict, load_config
from mixopt.errors import ConfigError
from mixopt.io import read_yaml
from mixopt.samplers import (
    dirichlet_candidates,
    sample_dirichlet_mixtures,
    sample_uniform_mixtures,
    sample_upsampling,
)
from tests.test_cli_sweep import write_cfg


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _sweep_refused(cfg, tmp_path, capsys) -> str:
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store), "--runs", "1"]) == 2
    assert not store.exists()  # nothing trained, nothing written
    return _one_line_error(capsys)


# ---------------------------------------------------------------- 1. seeds


def test_negative_config_seed_is_refused(tmp_path, capsys):
    err = _sweep_refused(write_cfg(tmp_path, seed=-5), tmp_path, capsys)
    assert "seed" in err and "greater than or equal to 0" in err
    with pytest.raises(ConfigError, match="seed: Input should be less than"):
        config_from_dict({"seed": 2**64}, where="c.yaml")  # torch.manual_seed overflows
    assert config_from_dict({"seed": 2**40}).seed == 2**40


def test_negative_propose_seed_is_a_usage_error(tmp_path, capsys):
    assert run(["propose", "--store", str(tmp_path / "s"), "--seed", "-1", "--out", str(tmp_path / "p.yaml")]) == 2
    assert "--seed" in _one_line_error(capsys) and not (tmp_path / "p.yaml").exists()


@pytest.mark.parametrize("argv, says", [
    (["sweep", "--seed", "1"], "No such option: --seed"),
    (["sweep", "x.yaml", "--workers", "abc"], "'--workers'"),
    (["verify", "plan.yaml"], "Missing option '--store'"),
    (["nosuch"], "No such command 'nosuch'"),
])
def test_usage_errors_are_one_line_that_points_at_the_help(argv, says, capsys):
    # click's boxed multi-line usage errors read as a crash next to every other error's one line
    assert run(argv) == 2
    err = _one_line_error(capsys)
    assert says in err and err.endswith("--help')"), err


def test_a_group_alone_still_prints_its_help(capsys):
    assert run(["runs"]) == 2  # as click does: help, and the exit code of a usage error
    assert "Usage: mixopt runs" in capsys.readouterr().out


def test_samplers_refuse_negative_seeds_with_a_config_error():
    counts = {"a": 1000, "b": 2000}
    calls = [lambda: sample_dirichlet_mixtures(counts, 2, seed=-1), lambda: sample_uniform_mixtures(["a", "b"], 2, seed=-1),
             lambda: dirichlet_candidates(np.array([0.5, 0.5]), 4, seed=-3),
             lambda: sample_upsampling([{"a": 0.5, "b": 0.5}], seed=np.int64(-2))]
    for call in calls:
        with pytest.raises(ConfigError, match=r"seed must be a whole number >= 0, got -\d"):
            call()
    assert len(sample_uniform_mixtures(["a", "b"], 2, seed=0)) == 2


# ---------------------------------------------------------------- 2. non-finite floats


@pytest.mark.parametrize("section,field", [("proxy", "lr"), ("proxy", "weight_decay"), ("proxy", "grad_clip"),
                                           ("sampler", "max_epochs"), ("sampler", "strength_max"), ("sampler", "temperature")])
def test_infinite_floats_are_refused_by_sweep(section, field, tmp_path, capsys):
    cfg = write_cfg(tmp_path)
    body = yaml.safe_load(cfg.read_text())
    body.setdefault(section, {})[field] = float("inf")
    cfg.write_text(yaml.safe_dump(body))
    assert ".inf" in cfg.read_text()
    err = _sweep_refused(cfg, tmp_path, capsys)
    assert f"{section}.{field}" in err and "finite number" in err


def _float_fields(model, prefix=""):
    """Dotted paths of every plain float field (``float`` or ``float | None``) of the config tree."""
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, _Strict):
            out += _float_fields(ann, f"{prefix}{name}.")
        elif ann is float or (get_origin(ann) in (Union, UnionType) and set(get_args(ann)) == {float, type(None)}):
            out.append(f"{prefix}{name}")
    return out


def test_every_float_field_of_the_sweep_config_rejects_inf_and_nan():
    fields = _float_fields(SweepConfig)
    assert {"proxy.lr", "sampler.temperature", "propose.budget_tokens", "propose.kl_weight", "data.val_fraction"} <= set(fields)
    for path in fields:
        section, field = path.split(".")
        for bad in (float("inf"), float("-inf"), float("nan")):
            with pytest.raises(ConfigError) as info:
                config_from_dict({section: {field: bad}}, where="c.yaml")
            msg = str(info.value)
            assert path in msg and "\n" not in msg, msg
    # dict and list floats too: min/max weights, checkpoints, pool laws
    for raw, where in (({"propose": {"min_weights": {"code": float("nan")}}}, "propose.min_weights"),
                       ({"proxy": {"checkpoints": [0.5, float("inf")]}}, "proxy.checkpoints"),
                       ({"sizes": [{"lr": float("inf")}]}, "sizes.0.lr")):
        with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
            config_from_dict(raw, where="c.yaml")


# ---------------------------------------------------------------- 3. empty config file


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_config_file_is_an_error_not_a_default_sweep(text, tmp_path, capsys):
    cfg = tmp_path / "empty.yaml"
    cfg.write_text(text)
    err = _sweep_refused(cfg, tmp_path, capsys)
    assert "empty.yaml is empty" in err and "configs/demo.yaml" in err


def test_an_explicit_empty_mapping_still_means_all_defaults(tmp_path):
    cfg = tmp_path / "defaults.yaml"
    cfg.write_text("{}\n")
    assert load_config(cfg) == SweepConfig()


def test_empty_plan_and_pools_files_say_empty(tmp_path, capsys):
    empty = tmp_path / "plan.yaml"
    empty.write_text("")
    assert run(["export", str(empty), "--format", "olmo-core", "--out", str(tmp_path / "o")]) == 2
    assert "plan.yaml is empty" in _one_line_error(capsys)
    with pytest.raises(ConfigError, match="is empty"):
        read_yaml(empty, what="Pools file", missing_hint="Pass one.")


# ---------------------------------------------------------------- 4. a directory where a file is expected


def test_a_directory_as_config_says_so_and_names_a_file_inside(tmp_path, capsys):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "demo.yaml").write_text("runs: 2\n")
    err = _sweep_refused(folder, tmp_path, capsys)
    assert "is a directory, not a file" in err and "does not exist" not in err and str(folder / "demo.yaml") in err


def test_a_directory_as_plan_says_so(tmp_path, capsys):
    folder = tmp_path / "outdir"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    assert run(["export", str(folder), "--format", "olmo-core", "--out", str(tmp_path / "o")]) == 2
    err = _one_line_error(capsys)
    assert "Plan file" in err and "is a directory, not a file" in err and "does not exist" not in err
    assert not (tmp_path / "o").exists()


def test_missing_file_still_says_does_not_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "nope.yaml", what="Config file", missing_hint="Pass one.")


# ---------------------------------------------------------------- 5. --budget-tokens 0


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_propose_budget_tokens_must_be_positive(value, tmp_path, capsys):
    out = tmp_path / "p.yaml"
    cfg = write_cfg(tmp_path)
    assert run(["propose", str(cfg), "--store", str(tmp_path / "s"), "--model", str(tmp_path / "m.pkl"),
                "--budget-tokens", value, "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "--budget-tokens must be a finite number > 0" in err and not out.exists()


def test_propose_model_params_must_be_positive(tmp_path, capsys):
    assert run(["propose", "--store", str(tmp_path / "s"), "--model-params", "0", "--out", str(tmp_path / "p.yaml")]) == 2
    assert "--model-params must be a finite number > 0" in _one_line_error(capsys)


# ---------------------------------------------------------------- 6. config target vs --model target


def _model(tmp_path, target: str):
    from mixopt.surrogates import get_estimator, save_model

    W = np.random.default_rng(0).dirichlet(np.ones(3), size=6)
    est = get_estimator("linear").fit(W, W @ np.array([3.0, 3.2, 3.4]))
    return save_model(est, tmp_path / "m.pkl", {"domains": ["code", "legal", "prose"], "target": target})


def test_config_target_the_model_does_not_predict_is_an_error(tmp_path, capsys):
    model = _model(tmp_path, "mean:all-domains")
    cfg = write_cfg(tmp_path, propose={"target": "val/nope"})
    out = tmp_path / "p.yaml"
    assert run(["propose", str(cfg), "--model", str(model), "--budget-tokens", "40000", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "propose.target: val/nope" in err and "predicts mean:all-domains" in err and "mixopt fit" in err
    assert not out.exists()


def test_config_without_a_target_or_with_the_models_passes_the_check(tmp_path):
    from mixopt import pipeline
    from mixopt.cli.cmd_propose import _check_fit_settings

    fitted = pipeline.open_model(_model(tmp_path, "val/code"))
    _check_fit_settings(load_config(write_cfg(tmp_path)), fitted, None, fitted.path)  # default target: the model's is used
    _check_fit_settings(load_config(write_cfg(tmp_path, propose={"target": "val/code"})), fitted, None, fitted.path)


def test_plan_with_negative_or_infinite_epochs_is_refused():
    """A plan's epochs, effective tokens and tokens per document are counts: a negative or non-finite one is an
    invalid plan (audit, stop 28: `export` wrote it)."""
    from mixopt.errors import ConfigError
    from mixopt.plan import plan_from_dict
    base = {"budget_tokens": 1e6, "phases": [{"start_fraction": 0.0, "weights": {"a": 1.0}}]}
    for field in ("epochs", "effective_tokens", "tokens_per_doc"):
        for bad in (-1.0, float("inf")):
            with pytest.raises(ConfigError, match=f"{field}: values must be finite numbers >= 0"):
                plan_from_dict({**base, field: {"a": bad}})
    assert plan_from_dict({**base, "epochs": {"a": 0.0}}).epochs == {"a": 0.0}


@pytest.mark.parametrize("argv,match", [
    (["propose", "cfg.yaml", "--pool-repetitions", "1,2"], "--pool-repetitions acts only with --measure-pools"),
    (["plan-pools", "pools.yaml", "--budgets", "1e6", "--store", "S"], "--store acts only with --measure"),
    (["plan-pools", "pools.yaml", "--budgets", "1e6", "--repetitions", "1,2", "--config", "c.yaml"],
     "--repetitions, --config act only with --measure"),
    (["sweep", "cfg.yaml", "--store", "S", "--ray-address", "auto"], "--ray-address acts only with --executor ray"),
    (["sweep", "cfg.yaml", "--store", "S", "--executor", "ray", "--workers", "2"], "--workers sets local worker processes"),
    (["select", "--pool", "web=w.jsonl", "--target", "t.jsonl", "--out", "o", "--char-ngrams"],
     "--char-ngrams acts only with --method classifier"),
    (["select", "--pool", "web=w.jsonl", "--target", "t.jsonl", "--out", "o", "--method", "classifier",
      "--proxy-tokens", "1e5"], "--proxy-tokens acts only with a proxy-scoring --method"),
])
def test_options_that_would_be_ignored_are_refused(argv, match, tmp_path, monkeypatch, capsys):
    """An option that acts only with another one is a one-line error without it (audit, stop 28: they were ignored),
    before any file is read or anything is trained."""
    monkeypatch.chdir(tmp_path)
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_imported_domain_names_follow_the_config_rule_and_leave_no_store(tmp_path, capsys):
    """Domain columns are names a config could use (letters, digits, _ . -); a refused import into a new store leaves
    no empty folder behind (audit, stop 28)."""
    mix, met, store = tmp_path / "m.csv", tmp_path / "l.csv", tmp_path / "store"
    mix.write_text("index,a b,c\n0,0.5,0.5\n")
    met.write_text("index,loss\n0,3.0\n")
    assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert "domain column(s) ['a b']" in err and len(err.splitlines()) == 1
    assert not store.exists()


def test_warnings_print_as_one_line_each_once(tmp_path, capsys, monkeypatch):
    import warnings

    from mixopt.cli import cmd_runs

    def warn_twice(*a, **k):  # e.g. a store with failed runs, read twice in one command
        for _ in range(2):
            warnings.warn("3 failed or non-finite run(s)\n excluded from the table", UserWarning, stacklevel=1)
        raise SystemExit(0)

    monkeypatch.setattr(cmd_runs, "_read", warn_twice)
    assert run(["runs", "list", "--store", str(tmp_path)], plain_warnings=True) == 0
    err = capsys.readouterr().err
    assert err == "warning: 3 failed or non-finite run(s) excluded from the table\n", err
