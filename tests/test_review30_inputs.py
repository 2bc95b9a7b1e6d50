"""Review 30 (config and input handling): duplicate YAML keys, integers written as 4e5, booleans where numbers go,
repeated CSV columns, packaged config names on every command, a config's include and name, outputs that cannot be
written, and the two regmix CSVs written as one."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mixopt.cli.main import run
from mixopt.cli.outputs import check_output
from mixopt.config import config_from_dict, load_config
from mixopt.errors import ConfigError, DataError, MixtureError, StoreError
from mixopt.mixtures import Mixture, validate_weights


def one_line_error(capsys, match: str) -> str:
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err
    return err


# ---------------------------------------------------------------- 5: duplicate YAML keys

def test_a_repeated_section_or_key_is_refused_naming_it_and_its_lines(tmp_path, capsys):
    dup = tmp_path / "dup.yaml"
    dup.write_text("proxy:\n  lr: 0.1\nruns: 3\nproxy:\n  tokens: 100000\n")
    with pytest.raises(ConfigError, match=r"repeats key 'proxy' \(lines 1 and 4\).*Merge them"):
        load_config(dup)
    dup.write_text("runs: 3\nproxy: {lr: 0.1, lr: 0.2}\n")
    with pytest.raises(ConfigError, match="repeats key 'lr'"):
        load_config(dup)
    dup.write_text("runs: 3\nruns: 40\n")
    assert run(["sweep", str(dup), "--store", str(tmp_path / "store")]) == 2
    one_line_error(capsys, "repeats key 'runs' (lines 1 and 2)")
    assert not (tmp_path / "store").exists()


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    from mixopt.io import read_yaml
    f = tmp_path / "merge.yaml"
    f.write_text("base: &b {lr: 0.1, tokens: 100000}\nproxy:\n  <<: *b\n  lr: 0.2\n")
    assert read_yaml(f, what="Config file", missing_hint="")["proxy"] == {"lr": 0.2, "tokens": 100000}


# ---------------------------------------------------------------- 6: integers in scientific notation

def test_integer_fields_take_integral_numbers_in_any_spelling(tmp_path):
    sci = tmp_path / "sci.yaml"
    sci.write_text("runs: 1e1\nproxy:\n  tokens: 4e5\n  eval_tokens: 1.6384e4\npropose:\n  n_candidates: 1.0e3\n"
                   "data:\n  max_documents: '2e2'\n")
    cfg = load_config(sci)
    assert (cfg.runs, cfg.proxy.tokens, cfg.proxy.eval_tokens, cfg.propose.n_candidates, cfg.data.max_documents) == \
           (10, 400000, 16384, 1000, 200)
    assert all(type(v) is int for v in (cfg.runs, cfg.proxy.tokens, cfg.data.max_documents))
    assert config_from_dict({"sizes": [{"tokens": "2e5"}]}).sizes[0].tokens == 200000


@pytest.mark.parametrize("text, says", [("proxy:\n  tokens: 4.5e0\n", "got 4.5e0, which has a fractional part"),
                                        ("runs: 2.5\n", "got 2.5, which has a fractional part"),
                                        ("runs: 1e400\n", "got 1e400, which is not finite"),
                                        ("runs: .inf\n", "which is not finite")])
def test_a_non_integral_number_for_an_integer_field_says_so(text, says, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "store")]) == 2
    err = one_line_error(capsys, says)
    assert "write a whole number such as 400000 or 4e5" in err and "unable to parse string" not in err


# ---------------------------------------------------------------- 10: booleans are no numbers

@pytest.mark.parametrize("raw, field", [({"runs": True}, "runs"), ({"proxy": {"lr": True}}, "proxy.lr"),
                                        ({"proxy": {"checkpoints": [True]}}, "proxy.checkpoints"),
                                        ({"propose": {"min_weights": {"code": True}}}, "propose.min_weights"),
                                        ({"sizes": [{"tokens": False}]}, "sizes.0.tokens")])
def test_booleans_are_refused_where_numbers_go(raw, field):
    with pytest.raises(ConfigError, match=f"{field}: expected a number, got the boolean"):
        config_from_dict(raw)


def test_yaml_on_and_yes_are_refused_as_numbers(tmp_path):
    cfg = tmp_path / "bool.yaml"
    cfg.write_text("proxy:\n  lr: yes\n")
    with pytest.raises(ConfigError, match="proxy.lr: expected a number, got the boolean true"):
        load_config(cfg)


def test_mixture_weights_refuse_booleans():
    with pytest.raises(MixtureError, match="Got the boolean true"):
        Mixture({"a": True, "b": False})
    with pytest.raises(MixtureError, match="boolean"):
        validate_weights({"code": 0.5, "prose": False, "docs": 0.5})
    assert validate_weights({"code": 1, "prose": 0}) == {"code": 1.0, "prose": 0.0}  # ints are still numbers


# ---------------------------------------------------------------- 11: include and name

def test_include_lists_each_domain_once():
    with pytest.raises(ConfigError, match=r"include names \['code'\] more than once"):
        config_from_dict({"data": {"include": ["code", "prose", "code"]}})
    assert config_from_dict({"data": {"include": ["code", "prose"]}}).data.include == ["code", "prose"]


@pytest.mark.parametrize("name", ["", "   ", "a\nb/../../c", "tab\there"])
def test_a_blank_or_multi_line_name_is_refused(name):
    with pytest.raises(ConfigError, match="name must be one printable line"):
        config_from_dict({"name": name})


def test_a_printable_name_is_kept():
    assert config_from_dict({"name": "my sweep 2"}).name == "my sweep 2"


# ---------------------------------------------------------------- 7: a column listed twice

def test_a_mixtures_csv_with_a_repeated_column_is_refused_by_name(tmp_path, capsys):
    from mixopt.runs.tables_io import parse_mixture_rows
    mix = tmp_path / "dup.csv"
    mix.write_text("index,code,code,prose\n0,0.9,0.15,0.7\n")
    with pytest.raises(DataError, match="lists column 'code' twice; keep one"):
        parse_mixture_rows(mix)
    met = tmp_path / "met.csv"
    met.write_text("index,val/code\n0,3.1\n")
    assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--store", str(tmp_path / "store")]) == 2
    one_line_error(capsys, "lists column 'code' twice")
    assert not (tmp_path / "store").exists()
    met.write_text("index,val/code,val/code\n0,3.1,3.2\n")
    mix.write_text("index,code,prose\n0,0.3,0.7\n")
    assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--store", str(tmp_path / "store")]) == 2
    one_line_error(capsys, "Metrics file")


# ---------------------------------------------------------------- 9: packaged config names

def test_sweep_and_propose_take_a_packaged_config_name(tmp_path, capsys):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert run(["sweep", "tiny", "--store", str(a_file)]) == 2  # the config was found: the store is what is refused
    one_line_error(capsys, "is a file, not a directory")
    assert run(["propose", "tiny", "--pools", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "p.yaml")]) == 2
    one_line_error(capsys, "Pools file")  # the config loaded; the missing pools file is the next problem
    assert run(["sweep", "nope", "--store", str(tmp_path / "s")]) == 2
    one_line_error(capsys, "packaged: ['demo', 'tiny']")
    assert run(["sweep", str(tmp_path / "missing.yaml"), "--store", str(tmp_path / "s")]) == 2
    err = one_line_error(capsys, "does not exist")
    assert "packaged config's name (demo, tiny)" in err and "e.g. configs/demo.yaml" not in err


# ---------------------------------------------------------------- 4: outputs that cannot be written

@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder that access(2) calls unwritable, as on a read-only mount (tests may run as root, who passes mode bits)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access

    def access(path, mode, *a, **k):
        if Path(path) == ro and mode & os.W_OK:
            return False
        return real(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)
    return ro


def test_check_output_refuses_a_path_in_an_unwritable_folder_up_front(read_only, tmp_path):
    with pytest.raises(ConfigError, match=r"--out .*sub/plan.yaml cannot be written: .*ro is not writable"):
        check_output(read_only / "sub" / "plan.yaml", "--out")
    with pytest.raises(ConfigError, match="cannot be written"):
        check_output(read_only, "--out", folder=True)
    check_output(tmp_path / "ok" / "plan.yaml", "--out")  # a writable folder: fine


def test_commands_refuse_an_unwritable_output_before_any_work(read_only, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("{}\n")
    for argv in (["propose", str(cfg), "--store", str(tmp_path / "nostore"), "--out", str(read_only / "sub" / "p.yaml")],
                 ["fit", "--store", str(tmp_path / "nostore"), "--out", str(read_only / "m.pkl")],
                 ["runs", "export", "--store", str(tmp_path / "nostore"), "--out", str(read_only / "sub" / "r.csv")],
                 ["verify", str(tmp_path / "p.yaml"), "--store", str(tmp_path / "nostore"), "--out", str(read_only / "v.json")]):
        _tiny_plan(tmp_path / "p.yaml")
        assert run(argv) == 2, argv
        one_line_error(capsys, "cannot be written")


def _tiny_plan(path: Path) -> None:
    path.write_text("budget_tokens: 1000000.0\nphases:\n- start_fraction: 0.0\n  weights: {code: 0.5, prose: 0.5}\n")


def test_a_folder_that_cannot_be_made_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """A parent folder that cannot be created (a full disk, or a read-only one the up-front check missed) is a
    one-line StoreError from every writer, not an OSError from a bare mkdir."""
    from mixopt import pipeline
    from mixopt.plan import load_plan
    real = Path.mkdir

    def mkdir(self, *a, **k):
        if "sub" in self.parts:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    plan_file = tmp_path / "p.yaml"
    _tiny_plan(plan_file)
    with pytest.raises(StoreError, match="Read-only file system"):
        pipeline.save(load_plan(plan_file), tmp_path / "sub" / "plan.yaml")


# ---------------------------------------------------------------- 8: VERIFY.json with NaN or a negative std

def _verify_body(**over):
    body = {"target": "mean:all-domains", "scale": {"model_params": 1e6, "tokens": 1e6}, "seeds": [0],
            "results": [{"name": "plan", "mean": 3.0, "values": [3.0]}, {"name": "natural", "mean": 3.1, "values": [3.1]}],
            "comparisons": [{"against": "natural", "diff": -0.1, "ci95": [-0.2, 0.0], "plan_worse": False, "plan_better": True}],
            "predicted": {"value": 3.0, "std": 0.1}}
    body.update(over)
    return body


@pytest.mark.parametrize("over", [
    {"results": [{"name": "plan", "mean": float("nan"), "values": [3.0]}]},
    {"results": [{"name": "plan", "mean": 3.0, "values": [float("inf")]}]},
    {"comparisons": [{"against": "natural", "diff": float("nan"), "ci95": [-0.2, 0.0], "plan_worse": False, "plan_better": True}]},
    {"comparisons": [{"against": "natural", "diff": -0.1, "ci95": [float("nan"), float("inf")], "plan_worse": False, "plan_better": True}]},
    {"predicted": {"value": 3.0, "std": -1.0}},
    {"predicted": {"value": float("nan"), "std": 0.1}},
])
def test_verify_json_with_non_finite_numbers_or_a_negative_std_is_refused(over):
    from mixopt.cli.cmd_report import verification_problem
    assert verification_problem(_verify_body()) == ""
    assert verification_problem(_verify_body(**over)) != ""


def test_report_refuses_a_verify_json_with_nan_in_one_line(tmp_path, capsys):
    import json
    v = tmp_path / "v.json"
    plan = tmp_path / "p.yaml"
    _tiny_plan(plan)
    body = _verify_body()
    body["results"][0]["mean"] = float("nan")
    v.write_text(json.dumps(body))  # json writes NaN, as a hand-edited or broken VERIFY.json may hold
    assert "NaN" in v.read_text()
    assert run(["report", "--plan", str(plan), "--verify", str(v), "--out", str(tmp_path / "rep")]) == 2
    one_line_error(capsys, "is not a VERIFY.json of `mixopt verify`")
    assert not (tmp_path / "rep").exists()
