"""Reading a user's own data: one-line errors that name the file and the real cause, and no record dropped unsaid.

Each test is a finding of the own-data review: non-UTF-8 files, records without text, a path typo taken for a hub
id, the cause of a read error, a folder with a README, JSONL line numbers, relative paths, and lines of spaces in
text files.
"""

import json
import warnings
from pathlib import Path

import pytest

from mixopt.cli.main import run
from mixopt.config import DomainSpec
from mixopt.data import sources
from mixopt.data.sources import load_documents, looks_like_hub_id, source_key
from mixopt.errors import DataError
from mixopt.selection.read import read_source, read_texts, source_spec
from mixopt.selection.select import select_documents


def write_jsonl(path: Path, rows: list, encoding: str = "utf-8") -> Path:
    path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode(encoding))
    return path


def docs(n: int, word: str = "document") -> list[dict]:
    return [{"text": f"{word} {i} about rivers and summits and {i % 7} lakes"} for i in range(n)]


def read_error(spec: DomainSpec) -> str:
    with pytest.raises(DataError) as info:
        load_documents(spec)
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


# ---------------------------------------------------------------- 1: text that is not UTF-8

def test_a_latin1_jsonl_is_a_one_line_error_naming_the_file_and_iconv(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "cafe.jsonl", [{"text": f"Café {i}"} for i in range(5)], encoding="latin-1")
    msg = read_error(DomainSpec(name="cafe", path=str(bad)))
    assert "Domain 'cafe'" in msg and f"{bad} is not UTF-8 text" in msg and "line 1" in msg and "iconv -f latin1 -t utf-8" in msg
    with pytest.raises(DataError, match=r"--pool p=.*cafe.jsonl: .*is not UTF-8 text"):
        read_texts(source_spec("p", str(bad), option="--pool"), option="--pool")
    with pytest.raises(DataError, match=r"--pool p=.*is not UTF-8 text"):
        read_source(source_spec("p", str(bad), option="--pool"), option="--pool")
    target = write_jsonl(tmp_path / "t.jsonl", docs(5))
    code = run(["select", "--pool", f"p={bad}", "--target", str(target), "--out", str(tmp_path / "sel")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not UTF-8 text" in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_a_latin1_text_file_reports_the_decoding_cause_not_the_generic_wrapper(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_bytes("first paragraph\n\nCafé au lait\n".encode("latin-1"))
    msg = read_error(DomainSpec(name="notes", path=str(bad)))
    assert f"{bad} is not UTF-8 text (line 3" in msg and "An error occurred while generating" not in msg


# ---------------------------------------------------------------- 2: records without text

def test_records_without_text_are_counted_in_a_warning(tmp_path):
    rows = docs(50)
    for i in range(10):
        rows[i] = {"body": rows[i]["text"]}  # another field
    for i in range(10, 16):
        rows[i] = {"text": None}
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.warns(UserWarning, match=r"Domain 'd': 16 of 50 records in .*d.jsonl have no text in 'text' "
                                         r"\(16 missing or null\); they are left out\. Set `text_field`"):
        assert len(load_documents(DomainSpec(name="d", path=str(path)))) == 34
    with pytest.warns(UserWarning, match="--pool d=.*16 of 50 records"):
        assert len(read_texts(source_spec("d", str(path), option="--pool"), option="--pool")) == 34


def test_select_says_which_pool_records_are_not_scored(tmp_path):
    rows = docs(30)
    rows[3], rows[4] = {"text": None}, {"text": "   "}
    pool = write_jsonl(tmp_path / "p.jsonl", rows)
    target = write_jsonl(tmp_path / "t.jsonl", docs(8, "target"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = select_documents({"p": str(pool)}, str(target), tmp_path / "sel", buckets=2)
    assert result.n_docs == {"p": 28}  # `select` prints the documents it scored, not every record
    said = [str(w.message) for w in caught if "have no text" in str(w.message)]
    assert len(said) == 1 and "--pool p=" in said[0] and "2 of 30 records" in said[0], said
    assert "1 missing or null, 1 empty" in said[0] and "null score, in no bucket" in said[0]


def test_a_complete_text_field_warns_nothing(tmp_path):
    path = write_jsonl(tmp_path / "ok.jsonl", docs(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_documents(DomainSpec(name="ok", path=str(path)))) == 10


# ---------------------------------------------------------------- 3: a path typo is not a hub id

def test_a_typo_under_an_existing_folder_fails_at_once_as_a_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "docs.jsonl", docs(3))
    assert looks_like_hub_id("owner/name") and not looks_like_hub_id("data/docz")

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was asked")

    import datasets
    monkeypatch.setattr(datasets, "load_dataset", no_network)
    msg = read_error(DomainSpec(name="docs", path="data/docz"))
    assert "data path data/docz does not exist" in msg
    with pytest.raises(DataError, match="does not exist"):
        source_spec("p", "data/docz", option="--pool")


def test_a_hub_read_error_never_says_valid_auto(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'owner/name' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    msg = read_error(DomainSpec(name="h", path="owner/name"))
    assert "valid auto" not in msg and "hub" in msg and "Couldn't reach" in msg


# ---------------------------------------------------------------- 4: the underlying cause of a read error

def test_files_with_different_fields_name_the_fields(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    write_jsonl(folder / "part0.jsonl", docs(5))
    write_jsonl(folder / "part1.jsonl", [{"body": d["text"]} for d in docs(5)])
    msg = read_error(DomainSpec(name="parts", path=str(folder)))
    assert "do not all have the same fields" in msg and "part0.jsonl has ['text']" in msg and "part1.jsonl has ['body']" in msg
    assert "not truncated" not in msg


# ---------------------------------------------------------------- 5: a folder with a README

def test_a_folder_with_a_readme_suggests_a_glob_that_reads(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", docs(4))
    write_jsonl(folder / "b.jsonl", docs(4, "other"))
    (folder / "README.md").write_text("# my corpus\n")
    msg = read_error(DomainSpec(name="c", path=str(folder)))
    glob = f"{folder}/*.jsonl"
    assert f"e.g. path: {glob}" in msg and "README.md" in msg and "Set `format`" not in msg
    assert glob in read_error(DomainSpec(name="c", path=str(folder), format="jsonl"))  # format alone reads the README too
    assert len(load_documents(DomainSpec(name="c", path=glob))) == 8


# ---------------------------------------------------------------- 6: JSONL line numbers

def test_a_malformed_jsonl_line_is_named_by_its_1_based_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs(6)) + '{"text": broken\n' + json.dumps(docs(1)[0]) + "\n")
    msg = read_error(DomainSpec(name="m", path=str(path)))
    assert f"line 7 of {path} is not a JSON record" in msg and "row 6" not in msg and "could not read" in msg


# ---------------------------------------------------------------- 7: a relative path that does not exist

def test_a_missing_relative_path_shows_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = read_error(DomainSpec(name="x", path="sub/missing.jsonl"))
    assert f"looked for {tmp_path.resolve() / 'sub' / 'missing.jsonl'}" in msg and "working directory" in msg
    with pytest.raises(DataError, match=f"looked for {tmp_path.resolve() / 'nope.jsonl'}"):
        source_spec("p", "nope.jsonl", option="--pool")


# ---------------------------------------------------------------- 8: lines of spaces in text files

def test_a_line_of_spaces_separates_text_documents(tmp_path):
    path = tmp_path / "paras.txt"
    path.write_text("\n \n".join(f"paragraph {i} of the text" for i in range(100)) + "\n\t\nlast one\n")
    got = load_documents(DomainSpec(name="p", path=str(path)))
    assert len(got) == 101 and got[0] == "paragraph 0 of the text" and got[-1].strip() == "last one"


def test_text_files_without_lines_of_spaces_split_and_key_as_before(tmp_path):
    path = tmp_path / "plain.txt"
    text = "one\nstill one\n\ntwo\n\n\nthree\r\n\r\nfour\n"
    path.write_bytes(text.encode())
    import datasets

    before = datasets.load_dataset("text", data_files=[str(path)], split="train", sample_by="paragraph")
    assert sources._split_at_whitespace_lines(before) is before  # read exactly as datasets reads it
    assert load_documents(DomainSpec(name="p", path=str(path))) == [t for t in before["text"] if t.strip()]
    assert not sources._has_whitespace_line(path)  # CRLF blank lines are not lines of spaces: the key stays
    spaced = tmp_path / "spaced.txt"
    spaced.write_bytes(b"one\r\n \r\ntwo\n")
    assert sources._has_whitespace_line(spaced)

    def key(p: Path, spaces: bool) -> str:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sources, "_has_whitespace_line", lambda f: spaces)
            return source_key(DomainSpec(name="p", path=str(p)))

    assert source_key(DomainSpec(name="p", path=str(path))) == key(path, False)  # hashed as before: caches stay
    assert source_key(DomainSpec(name="p", path=str(spaced))) == key(spaced, True) != key(spaced, False)  # re-split: new key


def test_a_config_domains_max_documents_bounds_what_score_samples_of_it(tmp_path):
    """read_sample (score's pools, targets and --config base-mixture domains) repeated read_source's checks but not its
    spec.max_documents: a config domain trained on its first 5 records was sampled from all 40. One reading of the
    records now serves both."""
    path = write_jsonl(tmp_path / "d.jsonl", docs(40))
    spec = DomainSpec(name="d", path=str(path), max_documents=5)
    first = {r["text"] for r in docs(5)}
    assert set(read_texts(spec, option="--config", max_documents=4, seed=0)) <= first
    assert len(read_texts(spec, option="--config")) == 5 == len(read_source(spec, option="--config").texts)
    with pytest.raises(DataError, match=r"--config d=.*records must have a 'body' field.*Set the domain's `text_field`"):
        read_texts(spec.model_copy(update={"text_field": "body"}), option="--config")
