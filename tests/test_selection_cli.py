"""`select` end to end: output files, caching, no partial output, bad input, and select -> propose -> export."""

import json
import shutil
import warnings
from pathlib import Path

import pytest
import yaml

from mixopt.cli.main import run
from mixopt.errors import ConfigError, DataError
from mixopt.selection import output as output_mod
from mixopt.selection.cache import ScoreCache
from mixopt.selection.dsir import DSIR
from mixopt.selection.select import select_documents
from tests.test_selection import VOCAB_A, VOCAB_B, docs_from


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def files(tmp_path):
    a, b = docs_from(VOCAB_A, 12, 1), docs_from(VOCAB_B, 12, 2)
    rows = [{"id": i, "text": t, "meta": {"src": "A" if i % 2 == 0 else "B"}}
            for i, t in enumerate(x for pair in zip(a, b) for x in pair)]
    rows.insert(3, {"id": 99, "text": "", "meta": {"src": "empty"}})
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    target = write_jsonl(tmp_path / "target.jsonl", [{"text": t} for t in docs_from(VOCAB_A, 10, 0)])
    return pool, target, rows


def test_select_writes_scored_records_buckets_and_pools_yaml(files, tmp_path):
    pool, target, rows = files
    out = tmp_path / "sel"
    res = select_documents({"web": str(pool)}, str(target), out, buckets=2, keep=0.5, cache=ScoreCache(tmp_path / "c"))
    scored = [json.loads(line) for line in (out / "web.scored.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "score"} for r in scored] == rows  # fields unchanged, input order
    assert scored[3]["score"] is None and all(isinstance(r["score"], float) for i, r in enumerate(scored) if i != 3)
    pools = yaml.safe_load((out / "pools.yaml").read_text())
    assert [p["name"] for p in pools["web"]["pools"]] == ["q1", "q2"]
    assert pools["web"]["pools"][0]["path"] == "web.q1.jsonl"  # relative to pools.yaml: the folder can move
    q1 = [json.loads(line) for line in (out / pools["web"]["pools"][0]["path"]).read_text().splitlines()]
    assert {r["meta"]["src"] for r in q1} == {"A"}  # the best bucket holds the target-like documents
    kept = [json.loads(line) for line in (out / "web.kept.jsonl").read_text().splitlines()]
    assert kept and {r["meta"]["src"] for r in kept} == {"A"}
    assert not res.cached and not res.skipped
    assert not list(tmp_path.glob(".sel.staging-*"))


def test_second_call_is_served_from_the_cache_and_skips_finished_output(files, tmp_path, monkeypatch):
    pool, target, _ = files
    cache = ScoreCache(tmp_path / "c")
    select_documents({"web": str(pool)}, str(target), tmp_path / "one", buckets=2, cache=cache)

    def boom(*a, **k):
        raise AssertionError("scored again")

    monkeypatch.setattr(DSIR, "fit_score", boom)
    res = select_documents({"web": str(pool)}, str(target), tmp_path / "two", buckets=3, cache=cache)
    assert res.cached and (tmp_path / "two" / "web.q3.jsonl").exists()
    again = select_documents({"web": str(pool)}, str(target), tmp_path / "two", buckets=3, cache=cache)
    assert again.skipped
    pool.write_text(pool.read_text() + json.dumps({"id": 7, "text": "glacier ledger"}) + "\n")  # new content: new key
    with pytest.raises(AssertionError, match="scored again"):
        select_documents({"web": str(pool)}, str(target), tmp_path / "two", buckets=3, cache=cache)


def test_a_failure_while_writing_leaves_no_partial_output(files, tmp_path, monkeypatch):
    pool, target, _ = files
    calls = []
    real = output_mod._write

    def dies_on_third(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what a Ctrl-C mid-way raises
        real(path, data)

    monkeypatch.setattr(output_mod, "_write", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        select_documents({"web": str(pool)}, str(target), tmp_path / "sel", buckets=2, cache=ScoreCache(tmp_path / "c"))
    assert not (tmp_path / "sel").exists() and not list(tmp_path.glob(".sel*"))


def test_bad_input_gives_one_line_errors_and_no_output(files, tmp_path):
    pool, target, _ = files
    cache = ScoreCache(tmp_path / "c")
    out = tmp_path / "sel"
    empty = tmp_path / "empty.jsonl"
    write_jsonl(empty, [{"text": ""}, {"text": "  "}])
    with pytest.raises(DataError, match="no document with non-empty 'text'"):
        select_documents({"web": str(empty)}, str(target), out, cache=cache)
    with pytest.raises(DataError, match="--target"):
        select_documents({"web": str(pool)}, str(empty), out, cache=cache)
    nofield = write_jsonl(tmp_path / "nofield.jsonl", [{"body": "river"}])
    with pytest.raises(DataError, match="'text' field.*--text-field"):
        select_documents({"web": str(nofield)}, str(target), out, cache=cache)
    with pytest.raises(DataError, match="--pool web=.*missing.jsonl.*Fix the path after --pool"):
        select_documents({"web": str(tmp_path / "missing.jsonl")}, str(target), out, cache=cache)
    for k in (0, 25):
        with pytest.raises(ConfigError, match="--buckets"):
            select_documents({"web": str(pool)}, str(target), out, buckets=k, cache=cache)
    assert not out.exists()


def test_target_overlapping_the_pool_warns_with_the_count(files, tmp_path):
    pool, _, rows = files
    target = write_jsonl(tmp_path / "t.jsonl", [{"text": rows[0]["text"]}, {"text": rows[2]["text"]}, {"text": "summit river"}])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = select_documents({"web": str(pool)}, str(target), tmp_path / "sel", buckets=2, cache=ScoreCache(tmp_path / "c"))
    assert res.overlap == {"web": 2}
    assert any("2 of 3 target documents also occur in pool 'web'" in str(w.message) for w in caught)


def test_select_cli_errors_are_one_line(files, tmp_path, capsys):
    pool, target, _ = files
    code = run(["select", "--pool", f"web={pool}", "--target", str(target), "--out", str(tmp_path / "s"), "--buckets", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "--buckets" in err and len(err.strip().splitlines()) == 1
    code = run(["select", "--pool", f"web={pool}", "--target", str(target), "--out", str(tmp_path / "s"), "--method", "nope"])
    assert code == 2 and "--method" in capsys.readouterr().err


def test_select_then_propose_with_the_written_pools_then_export(tmp_path, capsys):
    from tests.test_cli_sweep import write_cfg

    data = tmp_path / "data"
    data.mkdir()
    code_rows = [{"text": t} for t in docs_from(VOCAB_A, 30, 5, words=200) + docs_from(VOCAB_B, 30, 6, words=200)]
    pool = write_jsonl(data / "code_pool.jsonl", code_rows)
    target = write_jsonl(data / "target.jsonl", [{"text": t} for t in docs_from(VOCAB_A, 10, 7)])
    sel = tmp_path / "sel"
    assert run(["select", "--pool", f"code={pool}", "--target", str(target), "--method", "dsir", "--buckets", "2",
                "--out", str(sel)]) == 0
    assert "pools.yaml" in capsys.readouterr().out
    cfg = write_cfg(tmp_path, runs=3, propose={"n_candidates": 2000})
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    plan = tmp_path / "plan.yaml"
    sel = Path(shutil.move(sel, tmp_path / "moved"))  # pools.yaml's paths are relative to it: the folder can move
    assert run(["propose", str(cfg), "--store", str(store), "--no-projector", "--budget-tokens", "40000", "--out", str(plan),
                "--pools", str(sel / "pools.yaml")]) == 0
    body = yaml.safe_load(plan.read_text())
    assert body["pools"]["code"] and set(body["pools"]["code"]) <= {"q1", "q2"} and body["pools"]["code"][0] == "q1"
    assert body["provenance"]["pool_sources"]["code"]["q1"]["path"] == str(sel.resolve() / "code.q1.jsonl")
    out = tmp_path / "mix.json"
    paths = [f"--paths={d}=/data/{d}" for d in body["phases"][0]["weights"]]
    assert run(["export", str(plan), "--format", "json", *paths, "--out", str(out)]) == 0
    assert out.exists()
    shutil.rmtree(sel)


def test_pools_yaml_paths_are_read_beside_it_and_a_missing_file_names_the_pools_file(files, tmp_path, capsys):
    """Review 39 finding 10: select wrote absolute paths, so a moved selection folder failed `propose --pools` with
    "Fix the path in the config (or set format: hub ...)". Its paths are relative to pools.yaml now; an older
    selection's absolute ones are still read, and looked for beside the pools file once gone; a file found nowhere is
    one line that names the pools file and the fix."""
    pool, target, _ = files
    select_documents({"web": str(pool)}, str(target), tmp_path / "one", buckets=2, cache=ScoreCache(tmp_path / "c"))
    raw = yaml.safe_load((tmp_path / "one" / "pools.yaml").read_text())
    assert [p["path"] for p in raw["web"]["pools"]] == ["web.q1.jsonl", "web.q2.jsonl"]
    moved = Path(shutil.move(tmp_path / "one", tmp_path / "moved")).resolve()
    got = output_mod.located_pools(raw, moved / "pools.yaml")
    assert [p["path"] for p in got["web"]["pools"]] == [str(moved / "web.q1.jsonl"), str(moved / "web.q2.jsonl")]
    older = {"web": {"pools": [{"name": "q1", "path": str(tmp_path / "one" / "web.q1.jsonl")}]}}  # an older select's
    assert output_mod.located_pools(older, moved / "pools.yaml")["web"]["pools"][0]["path"] == str(moved / "web.q1.jsonl")
    assert output_mod.located_pools({"pools": [{"name": "q1", "path": str(pool)}]}, moved / "p.yaml")["pools"][0]["path"] == str(pool)
    (moved / "web.q2.jsonl").unlink()
    assert run(["propose", "tiny", "--pools", str(moved / "pools.yaml"), "--out", str(tmp_path / "plan.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"Pools file {moved / 'pools.yaml'}: pool 'q2' of domain 'web' reads web.q2.jsonl" in err
    assert f"Rerun mixopt select into that folder, or fix the paths in {moved / 'pools.yaml'}" in err
    assert "format: hub" not in err and not (tmp_path / "plan.yaml").exists()


def test_a_new_selection_into_the_same_folder_removes_the_earlier_buckets(files, tmp_path):
    pool, target, _ = files
    cache = ScoreCache(tmp_path / "c")
    out = tmp_path / "sel"
    other = tmp_path / "other.jsonl"
    shutil.copy(pool, other)
    select_documents({"web": str(pool), "old": str(other)}, str(target), out, buckets=3, cache=cache)
    assert (out / "old.q3.jsonl").exists() and (out / "web.q3.jsonl").exists()
    (out / "notes.txt").write_text("mine")
    select_documents({"web": str(pool)}, str(target), out, buckets=2, cache=cache)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "pools.yaml", "selection.json", "web.q1.jsonl",
                                                     "web.q2.jsonl", "web.scored.jsonl"]


def test_select_cli_with_the_classifier_keeps_the_target_like_documents(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path / "cache"))
    pool, target, rows = files
    out = tmp_path / "sel"
    code = run(["select", "--pool", f"web={pool}", "--target", str(target), "--out", str(out), "--method", "classifier",
                "--buckets", "2", "--keep", "0.4"])
    assert code == 0 and "classifier: web 24 documents (scored)" in capsys.readouterr().out  # the empty record is not scored
    manifest = json.loads((out / "selection.json").read_text())
    kept = [json.loads(line) for line in (out / "web.kept.jsonl").read_text().splitlines()]
    assert kept and {r["meta"]["src"] for r in kept} == {"A"}  # top by score: only target-like documents
    pools = yaml.safe_load((out / "pools.yaml").read_text())
    q1 = [json.loads(line) for line in (out / pools["web"]["pools"][0]["path"]).read_text().splitlines()]
    assert {r["meta"]["src"] for r in q1} == {"A"}
    assert manifest["method"] == "classifier" and manifest["settings"]["hash_buckets"] == 65_536
    assert manifest["settings"]["char_buckets"] == 262_144
    # --no-char-ngrams: words only, a different score key (so no cached scores are reused), the same kept documents here
    words = tmp_path / "words"
    code = run(["select", "--pool", f"web={pool}", "--target", str(target), "--out", str(words), "--method", "classifier",
                "--buckets", "2", "--keep", "0.4", "--no-char-ngrams"])
    assert code == 0 and "(scored)" in capsys.readouterr().out
    plain = json.loads((words / "selection.json").read_text())
    assert plain["settings"]["char_buckets"] == 0 and plain["key"] != manifest["key"]
    kept = [json.loads(line) for line in (words / "web.kept.jsonl").read_text().splitlines()]
    assert kept and {r["meta"]["src"] for r in kept} == {"A"}


def test_select_refuses_an_out_that_holds_an_input_or_files_it_did_not_write(files, tmp_path, capsys):
    pool, target, _ = files
    cache = ScoreCache(tmp_path / "c")
    out = tmp_path / "sel"
    select_documents({"web": str(pool)}, str(target), out, buckets=4, cache=cache)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # re-selecting the best bucket into the same folder would overwrite the input and delete q3, q4
    with pytest.raises(ConfigError, match=r"--out .*sel holds .*web\.q1\.jsonl, which --pool web reads"):
        select_documents({"web": str(out / "web.q1.jsonl")}, str(target), out, buckets=2, cache=cache)
    with pytest.raises(ConfigError, match="which --target reads"):
        select_documents({"web": str(pool)}, str(out / "web.q1.jsonl"), out, buckets=2, cache=cache)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a folder with a pools.yaml (and a selection.json) that no selection wrote
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pools.yaml").write_text("a: 0.025\npools: [{name: p1, b: -0.16, tau: 6.7}]\n")
    (mine / "selection.json").write_text('{"my": "notes"}\n')
    with pytest.raises(ConfigError, match="did not write"):
        select_documents({"web": str(pool)}, str(target), mine, buckets=2, cache=cache)
    (mine / "pools.yaml").unlink()
    (mine / "selection.json").unlink()
    (mine / "web.q1.jsonl").write_text('{"text": "mine"}\n')
    with pytest.raises(ConfigError, match=r"web\.q1\.jsonl, which mixopt select did not write"):
        select_documents({"web": str(pool)}, str(target), mine, buckets=2, cache=cache)
    assert sorted(p.name for p in mine.iterdir()) == ["web.q1.jsonl"]
    code = run(["select", "--pool", f"web={out / 'web.q1.jsonl'}", "--target", str(target), "--out", str(out), "--buckets", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "web.q1.jsonl" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # its own earlier output (pools.yaml, buckets) is still replaced by a rerun
    res = select_documents({"web": str(pool)}, str(target), out, buckets=2, cache=cache)
    assert not res.skipped and not (out / "web.q4.jsonl").exists()


def test_select_refuses_an_out_inside_a_folder_or_glob_it_reads(files, tmp_path):
    pool, target, _ = files
    cache = ScoreCache(tmp_path / "c")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(pool, data / "pool.jsonl")
    for out in (data / "sel", data):
        with pytest.raises(ConfigError, match=r"--out .* inside the folder .*data that --pool web reads"):
            select_documents({"web": str(data)}, str(target), out, buckets=2, cache=cache)
    with pytest.raises(ConfigError, match="--target reads"):
        select_documents({"web": str(pool)}, str(data), data / "sel", buckets=2, cache=cache)
    with pytest.raises(ConfigError, match=r"matches .*--pool web"):
        select_documents({"web": str(data / "*.jsonl")}, str(target), data, buckets=2, cache=cache)
    assert sorted(p.name for p in data.iterdir()) == ["pool.jsonl"]
    select_documents({"web": str(data / "*.jsonl")}, str(target), data / "sel", buckets=2, cache=cache)  # not matched


def test_an_input_score_field_comes_back_unchanged(files, tmp_path):
    pool, target, rows = files
    cache = ScoreCache(tmp_path / "c")
    scored_in = write_jsonl(tmp_path / "scored_in.jsonl", [{**r, "score": r["id"] / 1000} for r in rows])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = select_documents({"web": str(scored_in)}, str(target), tmp_path / "sel", buckets=2, keep=0.5, cache=cache)
    out = tmp_path / "sel"
    for name in ("web.scored.jsonl", "web.q1.jsonl", "web.q2.jsonl", "web.kept.jsonl"):
        recs = [json.loads(line) for line in (out / name).read_text().splitlines()]
        assert recs and all(r["score"] == r["id"] / 1000 for r in recs)
        assert all("mixopt_score" in r for r in recs)
    assert json.loads((out / "selection.json").read_text())["score_field"] == "mixopt_score"
    assert any("mixopt_score" in w for w in res.warnings) and any("mixopt_score" in str(w.message) for w in caught)
    plain = select_documents({"web": str(pool)}, str(target), tmp_path / "plain", buckets=2, cache=cache)
    assert json.loads((tmp_path / "plain" / "selection.json").read_text())["score_field"] == "score" and not plain.warnings


def test_select_proxy_tokens_must_be_finite(files, tmp_path, capsys):
    pool, target, _ = files
    for bad in ("inf", "1e30"):
        code = run(["select", "--pool", f"web={pool}", "--target", str(target), "--out", str(tmp_path / "o"),
                    "--method", "perplexity", "--proxy-tokens", bad])
        err = capsys.readouterr().err
        assert code == 2 and "--proxy-tokens" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_selection_manifest_holds_absolute_input_paths(files, tmp_path, monkeypatch):
    pool, target, _ = files
    monkeypatch.chdir(tmp_path)
    select_documents({"web": pool.name}, target.name, "sel", buckets=2, cache=ScoreCache(tmp_path / "c"))
    manifest = json.loads((tmp_path / "sel" / "selection.json").read_text())
    assert manifest["target"] == str(target.resolve()) and manifest["pools"] == {"web": str(pool.resolve())}


def test_a_moved_selection_is_found_complete_and_an_older_absolute_one_written_again(files, tmp_path):
    """pools.yaml's paths are relative to it, so a copied or moved selection is complete where it lies; an older
    selection's absolute paths point at the old folder, so one copied is written again (paths relative)."""
    pool, target, _ = files
    cache = ScoreCache(tmp_path / "c")
    select_documents({"web": str(pool)}, str(target), tmp_path / "one", buckets=2, cache=cache)
    shutil.copytree(tmp_path / "one", tmp_path / "moved")
    assert select_documents({"web": str(pool)}, str(target), tmp_path / "moved", buckets=2, cache=cache).skipped
    old = yaml.safe_load((tmp_path / "one" / "pools.yaml").read_text())  # as an older select wrote it: absolute paths
    for p in old["web"]["pools"]:
        p["path"] = str((tmp_path / "one" / p["path"]).resolve())
    (tmp_path / "older").mkdir()
    for f in (tmp_path / "one").iterdir():
        shutil.copy(f, tmp_path / "older" / f.name)
    (tmp_path / "older" / "pools.yaml").write_text(yaml.safe_dump(old))
    res = select_documents({"web": str(pool)}, str(target), tmp_path / "older", buckets=2, cache=cache)
    assert not res.skipped
    paths = [p["path"] for p in yaml.safe_load((tmp_path / "older" / "pools.yaml").read_text())["web"]["pools"]]
    assert paths == ["web.q1.jsonl", "web.q2.jsonl"]
    assert select_documents({"web": str(pool)}, str(target), tmp_path / "older", buckets=2, cache=cache).skipped
    (tmp_path / "older" / "web.q2.jsonl").unlink()  # a bucket file gone: written again
    res = select_documents({"web": str(pool)}, str(target), tmp_path / "older", buckets=2, cache=cache)
    assert not res.skipped and (tmp_path / "older" / "web.q2.jsonl").exists()


def test_a_default_selection_keeps_the_key_older_mixopt_gave_it(tmp_path):
    """The score-field fix must not change the output key of an ordinary selection: one written before it is found
    complete, not rescored and rewritten (key pinned from mixopt at stop 28)."""
    import json as _json

    from mixopt.cli.main import run as _run
    docs = ([{"text": f"alpha beta gamma {i} " * (3 + i % 4)} for i in range(12)]
            + [{"text": f"zeta eta theta {i} " * (2 + i % 3)} for i in range(12)])
    (tmp_path / "pool.jsonl").write_text("\n".join(_json.dumps(d) for d in docs) + "\n")
    (tmp_path / "target.jsonl").write_text("\n".join(_json.dumps({"text": f"alpha beta gamma {i} " * 3}) for i in range(6)) + "\n")
    out = tmp_path / "out"
    args = ["select", "--pool", f"web={tmp_path / 'pool.jsonl'}", "--target", str(tmp_path / "target.jsonl"),
            "--method", "dsir", "--buckets", "2", "--out", str(out)]
    assert _run(args + ["--keep-validation-docs"]) == 0  # the same files as then
    assert _json.loads((out / "selection.json").read_text())["key"] == "07bf79144bc2ce153bc666cc"
    # 2 of these documents are validation documents by hash: the default leaves them out of the buckets, other
    # files, so another key (a selection written before would hold them, and is written anew)
    assert _run(args) == 0
    assert _json.loads((out / "selection.json").read_text())["key"] != "07bf79144bc2ce153bc666cc"
