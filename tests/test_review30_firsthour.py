"""review30 "first hour" findings 4, 8 and 9: a folder that is not a run store, the repo's configs/, and a one-file
export's --out naming a folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mixopt.cli.main import run
from tests.test_cli_sweep import write_cfg

ROOT = Path(__file__).resolve().parents[1]


def _one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- finding 4: a folder that is not a store

@pytest.mark.parametrize("argv", [
    ["runs", "list", "--store", "{s}"],
    ["runs", "show", "natural", "--store", "{s}"],
    ["runs", "export", "--store", "{s}", "--out", "{t}/r.csv"],
    ["fit", "--store", "{s}", "--target", "mean:all-domains", "--out", "{t}/m.pkl"],
    ["propose", "tiny", "--store", "{s}", "--out", "{t}/p.yaml"],
    ["report", "--store", "{s}", "--out", "{t}/rep/"],
])
@pytest.mark.parametrize("content", ["other-files", "empty"])
def test_reading_commands_refuse_a_folder_that_is_not_a_store(tmp_path, capsys, argv, content):
    s = tmp_path / "notastore"
    s.mkdir()
    if content == "other-files":
        (s / "file.txt").write_text("hi\n")
    code = run([a.format(s=s, t=tmp_path) for a in argv])
    assert code == 2
    _one_line(capsys, f"Run store {s} is an empty folder: it holds no runs yet" if content == "empty" else
              f"{s} is not a run store (no store.json or runs/): pass the folder `mixopt sweep --store`")
    assert sorted(p.name for p in s.iterdir()) == ([] if content == "empty" else ["file.txt"])  # nothing written
    assert not (tmp_path / "rep").exists()


def test_verify_refuses_a_folder_that_is_not_a_store(tmp_path, capsys):
    s = tmp_path / "notastore"
    s.mkdir()
    (s / "file.txt").write_text("hi\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text("budget_tokens: 1000\nphases:\n- start_fraction: 0.0\n  weights: {code: 1.0}\n")
    assert run(["verify", str(plan), "--store", str(s), "--out", str(tmp_path / "v.json")]) == 2
    _one_line(capsys, "is not a run store")


def test_sweep_refuses_a_folder_of_other_files_but_takes_an_empty_one(tmp_path, capsys):
    cfg = write_cfg(tmp_path, runs=1, sampler={"two_phase_runs": 0})
    s = tmp_path / "notastore"
    s.mkdir()
    (s / "file.txt").write_text("hi\n")
    assert run(["sweep", str(cfg), "--store", str(s)]) == 2
    _one_line(capsys, f"{s} is not a run store (no store.json or runs/) and holds other files (file.txt)")
    assert [p.name for p in s.iterdir()] == ["file.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(["sweep", str(cfg), "--store", str(empty)]) == 0
    capsys.readouterr()
    assert run(["runs", "list", "--store", str(empty)]) == 0  # a store now, and resumable
    assert run(["sweep", str(cfg), "--store", str(empty)]) == 0


def test_runs_import_refuses_a_folder_of_other_files(tmp_path, capsys):
    s = tmp_path / "notastore"
    s.mkdir()
    (s / "notes.md").write_text("x\n")
    (tmp_path / "m.csv").write_text("index,code,prose\n0,0.5,0.5\n")
    (tmp_path / "x.csv").write_text("index,val/code\n0,3.0\n")
    assert run(["runs", "import", "--mixtures", str(tmp_path / "m.csv"), "--metrics", str(tmp_path / "x.csv"),
                "--store", str(s), "--model-params", "1e6", "--tokens", "1e8"]) == 2
    _one_line(capsys, "is not a run store")
    assert [p.name for p in s.iterdir()] == ["notes.md"]


# ---------------------------------------------------------------- finding 8: the repo's configs/

@pytest.mark.parametrize("name", ["demo", "tiny"])
def test_repo_configs_are_real_files_identical_to_the_packaged_ones(name):
    repo, packaged = ROOT / "configs" / f"{name}.yaml", ROOT / "mixopt" / "configs" / f"{name}.yaml"
    assert not repo.is_symlink(), f"{repo} is a link: a copied configs/ folder would hold a dangling one"
    assert repo.read_bytes() == packaged.read_bytes(), f"{repo} differs from {packaged}: copy one onto the other"


def test_a_dangling_config_link_is_named_as_a_broken_link(tmp_path, capsys):
    (tmp_path / "configs").mkdir()
    os.symlink("../mixopt/configs/tiny.yaml", tmp_path / "configs" / "tiny.yaml")  # as `cp -r` of the old configs/
    assert run(["sweep", str(tmp_path / "configs" / "tiny.yaml"), "--store", str(tmp_path / "s")]) == 2
    line = _one_line(capsys, "tiny.yaml is a broken link: it points to ../mixopt/configs/tiny.yaml", "cp -L")
    assert "does not exist." not in line.split("(")[0]
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- finding 9: a one-file export's --out as a folder

@pytest.fixture
def plan_file(tmp_path) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text("budget_tokens: 4194304\nphases:\n- start_fraction: 0.0\n  weights: {code: 0.5, prose: 0.5}\n")
    return plan


@pytest.mark.parametrize("fmt,name", [("nanotron", "nanotron.yaml"), ("json", None)])
@pytest.mark.parametrize("existing", [False, True])
def test_a_one_file_export_refuses_a_folder_out(tmp_path, capsys, plan_file, fmt, name, existing):
    out = tmp_path / "ex" / "nanodir"
    if existing:
        out.mkdir(parents=True)
    paths = ["--paths", "code=/data/code.jsonl", "--paths", "prose=/data/prose.jsonl"]
    assert run(["export", str(plan_file), "--format", fmt, "--out", f"{out}/", *paths]) == 2
    _one_line(capsys, f"--out must be a file path for format '{fmt}' (it writes one file). Got the directory {out}",
              f"Pass e.g. {out}/")
    assert out.is_dir() if existing else not out.exists()  # nothing written, no file named like the folder
    # without the slash, a new name is the file itself; a multi-file format takes the slash as its folder
    assert run(["export", str(plan_file), "--format", fmt, "--out", str(tmp_path / "one"), *paths]) == 0
    assert (tmp_path / "one").is_file()
    assert run(["export", str(plan_file), "--format", "olmo-core", "--out", f"{tmp_path / 'multi'}/", *paths]) == 0
    assert (tmp_path / "multi").is_dir()


def test_a_store_a_sweep_began_and_a_folder_with_dot_files_are_no_foreign_folders(tmp_path, capsys):
    """diff review: a sweep stopped before it wrote anything leaves locks/; .gitkeep or .DS_Store are no user files."""
    from mixopt.runs.store import RunStore, check_store_target

    began = tmp_path / "began"
    (began / "locks").mkdir(parents=True)
    assert RunStore(began, create=False).run_ids() == []
    assert run(["runs", "list", "--store", str(began)]) == 0
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / ".gitkeep").write_text("")
    (kept / ".DS_Store").write_text("x")
    check_store_target(kept)  # no error
