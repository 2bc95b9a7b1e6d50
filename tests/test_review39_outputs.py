"""First-hour review 39, findings 2, 3 and 9: `demo --out` and `report --out` refuse files they did not write (and
resume their own folders); the demo exports each domain's configured data; a megatron export says when its paths are
document files, not .bin/.idx prefixes."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from mixopt.cli.main import run
from mixopt.data.embedded import embedded_path
from mixopt.export import write_export
from mixopt.plan import save_plan
from tests.test_report import _plan


# --- finding 2: report --out ------------------------------------------------------------------------------------------

def test_report_refuses_a_users_index_and_figure(tmp_path, capsys):
    out = tmp_path / "rtest"
    out.mkdir()
    (out / "index.html").write_text("<html>mine</html>")
    (out / "mixture.png").write_text("keep")
    plan = save_plan(_plan(), tmp_path / "plan.yaml")
    assert run(["report", "--plan", str(plan), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "index.html and mixture.png" in err and "mixopt report did not write" in err
    assert "another --out" in err and "remove them" in err
    assert (out / "index.html").read_text() == "<html>mine</html>" and (out / "mixture.png").read_text() == "keep"
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "mixture.png"]  # nothing written


def test_report_rebuilds_its_own_folder_and_leaves_other_names_alone(tmp_path):
    from mixopt.io import record_written, written_by

    out = tmp_path / "rep"
    plan = save_plan(_plan(), tmp_path / "plan.yaml")
    assert run(["report", "--plan", str(plan), "--out", str(out)]) == 0
    assert {"index.html", "mixture.png"} <= written_by(out, "report")
    (out / "notes.txt").write_text("mine")  # not a name a report writes: no refusal, not touched
    (out / "index.html").write_text("stale")
    assert run(["report", "--plan", str(plan), "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine" and "stale" not in (out / "index.html").read_text()
    # a report stopped after its first figure (its record names only that figure) reruns too
    part = tmp_path / "part"
    part.mkdir()
    (part / "mixture.png").write_bytes((out / "mixture.png").read_bytes())
    record_written(part, "report", ["mixture.png"])
    assert run(["report", "--plan", str(plan), "--out", str(part)]) == 0


# --- finding 2: demo --out --------------------------------------------------------------------------------------------

def test_demo_refuses_the_tour_folder_before_training(tmp_path, capsys):
    out = tmp_path / "tour"
    (out / "runs" / "tiny").mkdir(parents=True)
    (out / "report").mkdir()
    files = {"plan.yaml": "mine", "model.pkl": "mine", "verify.json": "{}", "report/index.html": "<html>mine</html>"}
    for name, text in files.items():
        (out / name).write_text(text)
    assert run(["demo", "--config", "tiny", "--runs", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mixopt demo did not write" in err and "another --out" in err
    assert all(name in err for name in files)
    assert {n: (out / n).read_text() for n in files} == files
    assert not (out / "store").exists() and not (out / ".mixopt-demo.json").exists()  # no sweep started


def test_demo_outputs_it_did_not_write_are_foreign_and_its_own_are_not(tmp_path):
    from mixopt.demo import foreign_outputs
    from mixopt.io import record_written

    out = tmp_path / "d"
    (out / "store").mkdir(parents=True)  # a store of the user's: the demo would sweep into it
    (out / "exports" / "megatron").mkdir(parents=True)
    (out / "exports" / "megatron" / "blend.json").write_text("{}")
    (out / "notes.txt").write_text("x")  # no name the demo writes
    assert foreign_outputs(out) == ["store/", "exports/megatron/blend.json"]
    record_written(out, "demo", ["store/"])  # a demo stopped in its sweep: its record names its store
    assert foreign_outputs(out) == ["exports/megatron/blend.json"]
    record_written(out, "demo", ["exports/megatron/blend.json"])
    assert foreign_outputs(out) == []
    (out / "report").mkdir()
    (out / "report" / "index.html").write_text("mine")
    assert foreign_outputs(out) == ["report/index.html"]


def test_a_finished_demo_folder_is_its_own_and_says_its_megatron_paths_are_placeholders(tiny_demo):
    from mixopt.demo import foreign_outputs
    from mixopt.io import written_by

    assert foreign_outputs(tiny_demo) == []
    owned = written_by(tiny_demo, "demo")
    assert {"store/", "model.pkl", "model.png", "plan.yaml", "verify.json"} <= owned
    assert any(f.startswith("exports/megatron/") for f in owned) and "index.html" in written_by(tiny_demo / "report", "report")
    note = json.loads((tiny_demo / "exports" / "megatron" / "blend.json").read_text())["paths_note"]
    assert "preprocess_data.py" in note and str(embedded_path("code")) in note


@pytest.mark.slow  # ~40 s on 2 cores: a second demo (no training) over a copy of the session's demo folder
def test_a_finished_demo_folder_reruns(tiny_demo, tmp_path, capsys):
    out = tmp_path / "again"
    shutil.copytree(tiny_demo, out)
    assert run(["demo", "--config", "tiny", "--runs", "4", "--out", str(out)]) == 0
    assert "0 trained" in capsys.readouterr().out


# --- finding 3: the demo's exports on own data ------------------------------------------------------------------------

def test_demo_export_paths_are_the_configs(tmp_path, monkeypatch):
    from mixopt.config import load_config
    from mixopt.demo import export_paths

    monkeypatch.chdir(tmp_path)
    (tmp_path / "code.jsonl").write_text('{"text": "x"}\n')
    cfg = tmp_path / "own.yaml"
    cfg.write_text(yaml.safe_dump({"name": "own", "data": {"corpus": "embedded", "include": ["legal"], "domains": [
        {"name": "code", "path": "code.jsonl"}, {"name": "books", "path": "someone/books", "format": "hub"}]}}))
    paths = export_paths(load_config(cfg), ["books", "code", "legal"])
    assert paths == {"books": "someone/books", "code": str(tmp_path / "code.jsonl"), "legal": str(embedded_path("legal"))}


@pytest.mark.slow  # ~60 s on 2 cores: a 2-run demo on own data
def test_demo_on_own_data_exports_that_data(tmp_path, monkeypatch):
    import gzip

    monkeypatch.chdir(tmp_path)
    for name, src in (("code", "code"), ("books", "prose")):  # one name the corpus has, one it has not
        rows = [json.loads(line) for line in gzip.open(embedded_path(src), "rt")][:120]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"content": r["text"]}) + "\n" for r in rows))
    from mixopt.config import packaged_config

    raw = yaml.safe_load(packaged_config("tiny").read_text())
    raw["data"] = {"corpus": "none", "domains": [{"name": n, "path": f"{n}.jsonl", "text_field": "content"}
                                                 for n in ("code", "books")]}
    raw["sampler"]["two_phase_runs"] = 0
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(raw))
    assert run(["demo", "--config", "own.yaml", "--runs", "2", "--out", "demo-own"]) == 0
    body = json.loads((tmp_path / "demo-own" / "exports" / "hf-datasets" / "interleave.json").read_text())
    assert sorted(body["phases"][0]["paths"]) == [str(tmp_path / "books.jsonl"), str(tmp_path / "code.jsonl")]


def test_demo_help_names_every_stage(capsys):
    assert run(["demo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "fit, propose, export, verify and report" in text


# --- finding 9: megatron paths ----------------------------------------------------------------------------------------

DOMAINS = ("code", "math", "prose")


def test_megatron_document_file_paths_are_flagged_in_the_result_and_the_files(tmp_path):
    paths = {"code": "data/code.jsonl", "math": "data/math_text_document", "prose": "data/prose.parquet"}
    result = write_export(_plan(), "megatron", tmp_path / "meg", paths)
    assert result.path_warning and "code, prose" in result.path_warning and "math" not in result.path_warning
    assert "tools/preprocess_data.py" in result.path_warning and "--paths code=PREFIX" in result.path_warning
    assert result.warnings == [result.path_warning]
    blend = json.loads((tmp_path / "meg" / "blend.json").read_text())
    assert blend["paths_note"] == result.path_warning
    split = json.loads((tmp_path / "meg" / "phase_00.per_split_data_args.json").read_text())
    assert result.path_warning in split["_mixopt"]
    assert (tmp_path / "meg" / "phase_00.data_args.txt").read_text().split()[1] == "data/code.jsonl"  # written as given


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".jsonl.gz", ".parquet", ".txt", ".arrow", ".JSONL"])
def test_each_document_suffix_is_flagged(tmp_path, suffix):
    paths = {d: f"data/{d}{suffix}" for d in DOMAINS}
    assert "preprocess_data.py" in write_export(_plan(), "megatron", tmp_path / "m", paths).path_warning


def test_megatron_prefixes_say_nothing(tmp_path):
    paths = {"code": "data/code_text_document", "math": "data/math.bin", "prose": "/d/prose_text_document.idx"}
    result = write_export(_plan(), "megatron", tmp_path / "m", paths)
    assert result.path_warning is None and result.warnings == []
    assert "paths_note" not in json.loads((tmp_path / "m" / "blend.json").read_text())


def test_export_cli_warns_on_megatron_document_paths(tmp_path, capsys):
    plan = save_plan(_plan(), tmp_path / "plan.yaml")
    argv = ["export", str(plan), "-f", "megatron", "-o", str(tmp_path / "meg") + "/"]
    assert run(argv + [a for d in DOMAINS for a in ("--paths", f"{d}=data/{d}.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "warning: the megatron paths of code, math, prose are document files" in err and "preprocess_data.py" in err
    assert run(argv + [a for d in DOMAINS for a in ("--paths", f"{d}=data/{d}_text_document")]) == 0
    assert "document files" not in capsys.readouterr().err

# --- recheck-first-hour-39, finding 7: megatron's document paths from data's one list, and folders -------------------

@pytest.mark.parametrize("suffix", [".md", ".text", ".jsonl.zst", ".json.bz2", ".txt.xz", ".parquet.zst", "/"])
def test_more_document_paths_are_flagged(tmp_path, suffix):
    paths = {d: f"/data/{d}{suffix}" for d in DOMAINS}
    assert "preprocess_data.py" in write_export(_plan(), "megatron", tmp_path / "m", paths).path_warning


def test_a_folder_of_documents_is_flagged_and_a_prefix_beside_a_folder_is_not(tmp_path):
    (tmp_path / "code").mkdir()  # a domain given as a folder (as a config may)
    (tmp_path / "math").mkdir()
    (tmp_path / "math.bin").write_bytes(b"")  # a prefix that also names a folder: its .bin is there
    paths = {"code": str(tmp_path / "code"), "math": str(tmp_path / "math"), "prose": "/d/prose_text_document"}
    warning = write_export(_plan(), "megatron", tmp_path / "m", paths).path_warning
    assert warning and "paths of code are document files or folders" in warning


def test_megatron_document_suffixes_are_datas():
    from mixopt.data.sources import _EXT_FORMAT, COMPRESSION_SUFFIXES, DOCUMENT_SUFFIXES
    from mixopt.export import megatron

    assert not hasattr(megatron, "DOCUMENT_SUFFIXES") or megatron.DOCUMENT_SUFFIXES is DOCUMENT_SUFFIXES
    assert set(_EXT_FORMAT) | set(COMPRESSION_SUFFIXES) <= set(DOCUMENT_SUFFIXES)
