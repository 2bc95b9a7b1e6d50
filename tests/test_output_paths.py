"""Output paths are checked before any work (audit, stop 28): an output never overwrites an input, a folder where a file
goes (or the reverse) and a parent that is a file fail in one line, and nothing is written first."""

from __future__ import annotations

import json

import pytest

from mixopt.cli.main import run
from tests.test_cli_sweep import write_cfg


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outputs")
    cfg = write_cfg(tmp, runs=4, sampler={"noise_seeds": 1, "two_phase_runs": 0})
    store, model, plan = tmp / "store", tmp / "model.pkl", tmp / "plan.yaml"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    assert run(["fit", "--store", str(store), "--model", "linear", "--out", str(model)]) == 0
    assert run(["propose", str(cfg), "--store", str(store), "--model", str(model), "--no-projector", "--out", str(plan)]) == 0
    return cfg, store, model, plan


def one_line_error(capsys, match: str) -> None:
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err


def test_outputs_never_overwrite_inputs(fitted, tmp_path, capsys):
    _, store, model, plan = fitted
    mix = tmp_path / "mix.csv"
    mix.write_text("index,code,legal,prose\n0,0.2,0.3,0.5\n")
    before = mix.read_text()
    assert run(["predict", "--model", str(model), "--mixtures", str(mix), "--out", str(mix)]) == 2
    one_line_error(capsys, "is the --mixtures CSV this command reads")
    assert mix.read_text() == before
    plan_text = plan.read_text()
    assert run(["export", str(plan), "--format", "json", "--out", str(plan), "--paths", "code=/d/c"]) == 2
    one_line_error(capsys, "is the plan this command reads")
    assert plan.read_text() == plan_text
    model_bytes = model.read_bytes()
    assert run(["fit", "--store", str(store), "--model", "linear", "--out", str(tmp_path / "m.pkl"), "--plot", str(model)]) == 2
    one_line_error(capsys, "--plot")
    assert model.read_bytes() == model_bytes and not (tmp_path / "m.pkl").exists()


def test_folder_and_file_mixups_fail_before_any_work(fitted, tmp_path, capsys):
    _, store, _, _ = fitted
    a_file = tmp_path / "afile.txt"
    a_file.write_text("x")
    assert run(["fit", "--store", str(store), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "is a folder; give a file path")
    assert run(["fit", "--store", str(store), "--out", str(a_file / "m.pkl")]) == 2
    one_line_error(capsys, "is a file, not a folder")
    assert run(["fit", "--store", str(store), "--out", str(tmp_path / "m.pkl"), "--plot", str(tmp_path / "m.txt")]) == 2
    one_line_error(capsys, "not .txt")
    assert not (tmp_path / "m.pkl").exists()  # refused before the model was written
    assert run(["select", "--pool", f"web={a_file}", "--target", str(a_file), "--out", str(a_file)]) == 2
    one_line_error(capsys, "is a file, not a folder")
    assert run(["report", "--store", str(store), "--out", str(a_file)]) == 2
    one_line_error(capsys, "is a file, not a folder")
    assert a_file.read_text() == "x"


def test_plot_without_a_suffix_is_a_png_and_says_so(fitted, tmp_path, capsys):
    _, store, _, _ = fitted
    assert run(["fit", "--store", str(store), "--model", "linear", "--out", str(tmp_path / "m.pkl"),
                "--plot", str(tmp_path / "figure")]) == 0
    out = "".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert (tmp_path / "figure.png").is_file() and f"->{tmp_path / 'figure.png'}" in out


def test_report_takes_only_a_verify_json(fitted, tmp_path, capsys):
    _, store, _, _ = fitted
    bad = tmp_path / "e.json"
    for body in ({}, {"results": []}, [1, 2]):
        bad.write_text(json.dumps(body))
        assert run(["report", "--store", str(store), "--verify", str(bad), "--out", str(tmp_path / "rep")]) == 2
        one_line_error(capsys, "is not a VERIFY.json of `mixopt verify`")
        assert not (tmp_path / "rep").exists()  # nothing half-written
    assert run(["report", "--store", str(store), "--verify", str(tmp_path), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a file" in err and f"--out {tmp_path}" not in err  # the hint never names the bad path as an output


def test_select_never_deletes_an_earlier_selection_of_other_pools(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("web", "books", "target"):
        (docs / f"{name}.jsonl").write_text("".join(json.dumps({"text": f"{name} document number {i} " * 5}) + "\n"
                                                    for i in range(12)))
    out = tmp_path / "sel"
    assert run(["select", "--pool", f"web={docs / 'web.jsonl'}", "--target", str(docs / "target.jsonl"),
                "--out", str(out), "--buckets", "2"]) == 0
    earlier = sorted(p.name for p in out.iterdir())
    capsys.readouterr()  # (the first selection's notes: a 12-document pool holds one document out for validation)
    assert run(["select", "--pool", f"books={docs / 'books.jsonl'}", "--target", str(docs / "target.jsonl"),
                "--out", str(out), "--buckets", "2"]) == 2
    one_line_error(capsys, "holds an earlier selection of web")
    assert sorted(p.name for p in out.iterdir()) == earlier
    # the same pools again (other buckets) still replace their own earlier files
    assert run(["select", "--pool", f"web={docs / 'web.jsonl'}", "--target", str(docs / "target.jsonl"),
                "--out", str(out), "--buckets", "3"]) == 0
    assert (out / "web.q3.jsonl").is_file()


def test_verify_scale_inputs_are_one_line(fitted, tmp_path, capsys):
    _, store, _, plan = fitted
    base = ["verify", str(plan), "--store", str(store), "--seeds", "1", "--against", "natural", "--out", str(tmp_path / "v.json")]
    assert run(base + ["--tokens", "nan"]) == 2
    one_line_error(capsys, "--tokens must be a finite number > 0")
    assert run(base + ["--shape", "n_embd=abc"]) == 2
    one_line_error(capsys, "n_embd: Input should be a valid integer")
    assert run(base + ["--shape", "nope"]) == 2
    one_line_error(capsys, "it has one size, the config's proxy, unnamed")


def test_a_corrupt_data_file_is_one_line_with_its_cause(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json at all\n')
    good = tmp_path / "t.jsonl"
    good.write_text('{"text": "target text"}\n')
    assert run(["score", "--pool", f"web={bad}", "--target", str(good)]) == 2
    one_line_error(capsys, "line 2 of")  # the 1-based line and why (was pyarrow's "JSON parse error ... row 1")


def test_a_model_fitted_on_fewer_runs_than_the_store_holds_is_noted(fitted, tmp_path, capsys):
    import shutil
    cfg, store, model, _ = fitted
    grown = tmp_path / "store"
    shutil.copytree(store, grown)
    assert run(["sweep", str(cfg), "--store", str(grown), "--runs", "5"]) == 0  # one more sampled run
    capsys.readouterr()
    assert run(["propose", str(cfg), "--store", str(grown), "--model", str(model), "--no-projector",
                "--out", str(tmp_path / "p.yaml")]) == 0
    err = capsys.readouterr().err
    assert "note: --model" in err and "refit" in err
    assert run(["propose", str(cfg), "--store", str(store), "--model", str(model), "--no-projector",
                "--out", str(tmp_path / "q.yaml")]) == 0
    assert "note: --model" not in capsys.readouterr().err  # its own store: no note


def test_weighted_targets_and_pool_counts_name_the_bad_number(tmp_path, capsys):
    from mixopt.errors import FitError
    from mixopt.runs.targets import resolve_target
    for bad in ("wmean:val/code=nan,val/prose=1", "wmean:val/code=-1,val/prose=2"):
        with pytest.raises(FitError, match="must be a finite, non-negative number"):
            resolve_target(bad, ["val/code", "val/prose"])
    pool, target = tmp_path / "web.jsonl", tmp_path / "t.jsonl"
    pool.write_text("".join(json.dumps({"text": f"web page {i} " * 8}) + "\n" for i in range(6)))
    target.write_text(json.dumps({"text": "target text " * 8}) + "\n")
    assert run(["score", "--pool", f"web={pool}", "--target", str(target), "--pool-docs", "web=-5"]) == 2
    one_line_error(capsys, "--pool-docs web=-5")


def test_plan_pools_plot_is_a_png_and_never_its_input(tmp_path, capsys):
    pools = tmp_path / "pools.yaml"
    pools.write_text("objective: error\na: 1.0\nd: 0.5\npool_size: 1e6\npools:\n  - {name: q1, b: 0.1, tau: 2}\n")
    before = pools.read_text()
    assert run(["plan-pools", str(pools), "--budgets", "1e6", "--plot", str(tmp_path / "fr.txt")]) == 2
    one_line_error(capsys, "the frontier is written as a PNG, not .txt")
    assert run(["plan-pools", str(pools), "--budgets", "1e6", "--plot", str(pools)]) == 2
    one_line_error(capsys, "is the POOLS.yaml this command reads")
    assert pools.read_text() == before and not (tmp_path / "fr.txt").exists()


# ---------------------------------------------------------------- review 30: propose, fit and runs export outputs

def test_propose_never_overwrites_its_config_model_or_pools(fitted, tmp_path, capsys):
    import shutil
    cfg, store, model, plan = fitted
    victim, model2, pools = tmp_path / "victim.yaml", tmp_path / "model2.pkl", tmp_path / "pools.yaml"
    shutil.copy(cfg, victim)
    shutil.copy(model, model2)
    pools.write_text("code:\n  pools:\n  - {name: hi, share: 0.5}\n  - {name: lo, share: 0.5}\n")
    before = {p: p.read_bytes() for p in (victim, model2, pools)}
    base = ["propose", str(victim), "--store", str(store), "--model", str(model2), "--no-projector"]
    assert run(base + ["--out", str(victim)]) == 2
    one_line_error(capsys, "is the config this command reads")
    assert run(base + ["--out", str(model2)]) == 2
    one_line_error(capsys, "is the --model file this command reads")
    assert run(base + ["--pools", str(pools), "--out", str(pools)]) == 2
    one_line_error(capsys, "is the --pools file this command reads")
    # without --model, propose saves the model it fits beside the plan: <plan stem>.model.pkl (and its .png)
    shutil.copy(cfg, tmp_path / "p.model.pkl")
    before[tmp_path / "p.model.pkl"] = (tmp_path / "p.model.pkl").read_bytes()
    assert run(["propose", str(tmp_path / "p.model.pkl"), "--store", str(store), "--no-projector",
                "--out", str(tmp_path / "p.yaml")]) == 2
    one_line_error(capsys, "p.model.pkl is the config this command reads")
    assert {p: p.read_bytes() for p in before} == before and not (tmp_path / "p.yaml").exists()
    assert run(["verify", str(plan), "--store", str(store), "--config", str(victim), "--out", str(victim)]) == 2
    one_line_error(capsys, "is the --config file this command reads")
    assert victim.read_bytes() == before[victim]


def test_fit_out_png_is_refused_before_fitting_not_overwritten_by_its_plot(fitted, tmp_path, capsys):
    _, store, _, _ = fitted
    assert run(["fit", "--store", str(store), "--model", "linear", "--out", str(tmp_path / "m.png")]) == 2
    one_line_error(capsys, "the plot would overwrite the model")
    assert not (tmp_path / "m.png").exists()
    # an explicit --plot elsewhere keeps a model named so
    assert run(["fit", "--store", str(store), "--model", "linear", "--out", str(tmp_path / "m.png"),
                "--plot", str(tmp_path / "fig.png")]) == 0
    import pickle
    assert isinstance(pickle.loads((tmp_path / "m.png").read_bytes()), dict)


def test_regmix_export_writes_both_csvs_or_neither(fitted, tmp_path, capsys, monkeypatch):
    import os
    _, store, _, _ = fitted
    mix, met = tmp_path / "x.mixtures.csv", tmp_path / "x.metrics.csv"
    mix.write_text("OLD-MIX\n")
    met.write_text("OLD-MET\n")
    real = os.replace

    def replace(src, dst, *a, **k):  # the disk fills up as the second file goes in
        if str(dst).endswith(".metrics.csv"):
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    assert run(["runs", "export", "--store", str(store), "--out", str(tmp_path / "x.csv"), "--format", "regmix"]) == 2
    one_line_error(capsys, "No space left on device")
    assert (mix.read_text(), met.read_text()) == ("OLD-MIX\n", "OLD-MET\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.metrics.csv", "x.mixtures.csv"]  # no staging left
    monkeypatch.setattr(os, "replace", real)
    assert run(["runs", "export", "--store", str(store), "--out", str(tmp_path / "x.csv"), "--format", "regmix"]) == 0
    assert mix.read_text().startswith("index,") and met.read_text().startswith("index,")


def test_an_output_folder_that_cannot_be_made_is_one_line(fitted, tmp_path, capsys, monkeypatch):
    """mkdir failing (a full or read-only disk the up-front check cannot see) is a one-line error, not a traceback."""
    import os
    from pathlib import Path
    _, store, _, _ = fitted
    real = os.mkdir

    def mkdir(path, *a, **k):  # Path.mkdir and tempfile.mkdtemp both come here
        if "sub" in Path(path).parts or Path(path).name.startswith(".sub."):
            raise OSError(30, "Read-only file system", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "mkdir", mkdir)
    for argv in (["runs", "export", "--store", str(store), "--out", str(tmp_path / "sub" / "r.csv")],
                 ["runs", "export", "--store", str(store), "--out", str(tmp_path / "sub" / "r.csv"), "--format", "regmix"],
                 ["fit", "--store", str(store), "--model", "linear", "--out", str(tmp_path / "sub" / "m.pkl")]):
        assert run(argv) == 2, argv
        one_line_error(capsys, "Read-only file system")
    assert not (tmp_path / "sub").exists()
