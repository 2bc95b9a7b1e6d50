import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from mixopt.config import DataConfig, DomainSpec
from mixopt.data.domains import is_validation, load_domain_set, split_documents
from mixopt.data.sources import load_documents
from mixopt.data.tokenize import Tokenizer
from mixopt.errors import ConfigError, DataError


def _docs(prefix, n):
    return [f"{prefix} document number {i} " + "lorem ipsum " * (i % 7 + 1) for i in range(n)]


@pytest.fixture()
def local_domains(tmp_path):
    import datasets

    jl = tmp_path / "a.jsonl"
    jl.write_text("\n".join(json.dumps({"text": d, "score": i}) for i, d in enumerate(_docs("alpha", 60))))
    gz = tmp_path / "b.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("\n".join(json.dumps({"content": d}) for d in _docs("beta", 40)))
    pq = tmp_path / "c.parquet"
    datasets.Dataset.from_dict({"text": _docs("gamma", 50)}).to_parquet(str(pq))
    txt = tmp_path / "d.txt"
    txt.write_text("\n\n".join(_docs("delta", 30)))
    disk = tmp_path / "e_saved"
    datasets.Dataset.from_dict({"text": _docs("eps", 30)}).save_to_disk(str(disk))
    return [
        DomainSpec(name="a", path=str(jl)),
        DomainSpec(name="b", path=str(gz), text_field="content"),
        DomainSpec(name="c", path=str(pq)),
        DomainSpec(name="d", path=str(txt)),
        DomainSpec(name="e", path=str(disk)),
    ]


def test_every_local_format_loads(local_domains, tmp_path):
    cfg = DataConfig(corpus="none", domains=local_domains, cache_dir=str(tmp_path / "cache"), val_fraction=0.2)
    ds = load_domain_set(cfg)
    assert ds.names == ["a", "b", "c", "d", "e"]
    assert ds.vocab_size == 257
    for name, dom in ds.domains.items():
        assert dom.unique_tokens > 0 and dom.val.size > 0
        assert dom.n_docs_train + dom.n_docs_val >= 30
    assert ds.domains["d"].n_docs_train + ds.domains["d"].n_docs_val == 30  # paragraphs of a text file


def test_validation_split_is_by_hash_and_disjoint():
    docs = _docs("x", 200)
    train, val = split_documents(docs, 0.1, "x")
    assert set(train).isdisjoint(val) and len(train) + len(val) == 200
    assert all(is_validation(d, 0.1) for d in val)
    # the same document is held out whatever else is in the domain
    train2, val2 = split_documents(docs[::-1][:150], 0.1, "x")
    assert set(val2) <= set(val)


def _fallback_texts(val_fraction, side, n):
    """``n`` texts that all hash into validation (side True) or all into training (side False) at ``val_fraction``."""
    return [t for t in (f"doc {i}" for i in range(400)) if is_validation(t, val_fraction) == side][:n]


def test_a_tiny_domain_holds_out_every_copy_of_its_validation_text():
    """Nothing hashed into validation: the smallest-hash text goes there, all its copies (one copy stayed in train)."""
    import hashlib

    texts = _fallback_texts(0.05, False, 3)
    held = min(texts, key=lambda t: hashlib.sha256(t.encode()).digest())
    docs = [held] + texts + [held]  # three copies of held
    train, val = split_documents(docs, 0.05, "tiny")
    assert val == [held] * 3 and train == [d for d in docs if d != held]


def test_a_tiny_domain_whose_documents_all_hash_into_validation_splits():
    """The symmetric fallback: the largest-hash text (all its copies) goes back to training, e.g. 2 short documents."""
    assert split_documents(["abc def", "x y z"], 0.05, "x") == (["abc def"], ["x y z"])  # both hash into validation
    texts = _fallback_texts(0.45, True, 3)
    docs = texts + texts[:2]
    train, val = split_documents(docs, 0.45, "x")
    assert train and val and not set(train) & set(val) and sorted(train + val) == sorted(docs)
    for copies in (["same"] * 3, ["only one"]):
        with pytest.raises(DataError, match=r"has 1 distinct document\(s\) \(\d in all\); at least 2 distinct documents"):
            split_documents(copies, 0.05, "x")


def test_token_cache_is_reused(local_domains, tmp_path, monkeypatch):
    cfg = DataConfig(corpus="none", domains=local_domains[:1], cache_dir=str(tmp_path / "cache"))
    first = load_domain_set(cfg)
    import mixopt.data.domains as dom

    monkeypatch.setattr(dom, "load_documents", lambda *a, **k: pytest.fail("re-tokenized despite the cache"))
    second = load_domain_set(cfg)
    assert np.array_equal(first.domains["a"].train, second.domains["a"].train)
    assert first.fingerprint == second.fingerprint


def test_cache_key_changes_with_content(local_domains, tmp_path):
    cfg = DataConfig(corpus="none", domains=local_domains[:1], cache_dir=str(tmp_path / "cache"))
    fp1 = load_domain_set(cfg).fingerprint
    path = local_domains[0].path
    with open(path, "a") as fh:
        fh.write("\n" + json.dumps({"text": "a brand new document"}))
    assert load_domain_set(cfg).fingerprint != fp1


def test_same_files_elsewhere_give_the_same_fingerprint(local_domains, tmp_path):
    """Another checkout (or a moved folder) holds the same bytes under another path: its run ids must match."""
    import shutil

    (tmp_path / "elsewhere").mkdir()
    moved = []
    for spec in local_domains:
        src = Path(spec.path)
        dst = tmp_path / "elsewhere" / src.name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
        moved.append(spec.model_copy(update={"path": str(dst)}))
    here = load_domain_set(DataConfig(corpus="none", domains=local_domains, cache_dir=str(tmp_path / "c1")))
    there = load_domain_set(DataConfig(corpus="none", domains=moved, cache_dir=str(tmp_path / "c2")))
    assert here.fingerprint == there.fingerprint
    assert here.legacy_fingerprint != there.legacy_fingerprint  # the old key hashed the path


def test_a_store_with_the_legacy_fingerprint_keeps_it(local_domains, tmp_path):
    """Stores written before fingerprints stopped hashing paths resume: the data adopts their legacy fingerprint."""
    cfg = DataConfig(corpus="none", domains=local_domains[:2], cache_dir=str(tmp_path / "cache"))
    fresh = load_domain_set(cfg)
    assert fresh.fingerprint != fresh.legacy_fingerprint
    old = load_domain_set(cfg, store_fingerprint=fresh.legacy_fingerprint)
    assert old.fingerprint == fresh.legacy_fingerprint
    # any other recorded fingerprint changes nothing: the callers report the mismatch
    other = load_domain_set(cfg, store_fingerprint="0123456789abcdef")
    assert other.fingerprint == fresh.fingerprint


def _pinned_specs(tmp_path):
    """Two plain local domains whose data fingerprint was pinned with mixopt at dfb9f19 (before stop 29)."""
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": f"alpha document {i} " + "x " * i, "score": i}) + "\n"
                                              for i in range(40)))
    (tmp_path / "b.txt").write_text("\n\n".join(f"beta paragraph {i} " + "y " * i for i in range(30)))
    return [DomainSpec(name="a", path=str(tmp_path / "a.jsonl")), DomainSpec(name="b", path=str(tmp_path / "b.txt"))]


# Field edits of domain a that change no token, and the data fingerprint mixopt at dfb9f19 gave each (stores carry them).
TOKEN_FREE_EDITS = [({"quality_field": "score"}, "feebadca67c6e9c8"), ({"format": "jsonl"}, "bfb138ba2e8a6f60"),
                    ({"format": "json"}, None), ({"split": "foo"}, "5bae32bdf85d5119"), ({"hub_config": "x"}, "0f40809f4862e60c")]


def test_fields_that_change_no_token_keep_the_fingerprint_of_a_plain_spec(tmp_path):
    """quality_field, split and hub_config on local files, and a format that reads the files as auto does, do not
    enter the fingerprint; a plain spec (and the embedded corpus) hashes as before stop 29."""
    from mixopt.data.domains import domain_specs
    from mixopt.data.sources import source_keys

    plain = _pinned_specs(tmp_path)
    cfg = DataConfig(corpus="none", domains=plain, cache_dir=str(tmp_path / "cache"))
    assert load_domain_set(cfg).fingerprint == "3e777bd0d50b5eb1"  # pinned at dfb9f19
    for edit, _ in TOKEN_FREE_EDITS:
        edited = cfg.model_copy(update={"domains": [plain[0].model_copy(update=edit), plain[1]]})
        assert load_domain_set(edited).fingerprint == "3e777bd0d50b5eb1", edit
    for edit in ({"text_field": "score"}, {"max_documents": 10}, {"format": "text"}):  # these read other documents
        assert source_keys(plain[0].model_copy(update=edit))[0] != source_keys(plain[0])[0], edit
    for spec in domain_specs(DataConfig(include=["code", "legal"])):  # the embedded corpus keeps its old key as a legacy one
        key, _, verbatim, embedded = source_keys(spec)
        assert key == source_keys(spec.model_copy(update={"format": "auto"}))[0] and verbatim == embedded != key


def test_the_split_of_a_saved_dataset_dict_still_enters_the_fingerprint(tmp_path):
    import datasets

    datasets.DatasetDict({s: datasets.Dataset.from_dict({"text": [f"{s} {i}" for i in range(5)]}) for s in ("train", "test")}
                         ).save_to_disk(str(tmp_path / "saved"))
    from mixopt.data.sources import source_keys

    spec = DomainSpec(name="s", path=str(tmp_path / "saved"))
    assert source_keys(spec)[0] != source_keys(spec.model_copy(update={"split": "test"}))[0]
    assert source_keys(spec)[0] == source_keys(spec.model_copy(update={"format": "disk", "hub_config": "x"}))[0]


def test_a_store_fingerprinted_with_a_token_free_field_set_keeps_its_fingerprint(tmp_path):
    """Before stop 29 quality_field, split, hub_config and format entered the fingerprint: stores recorded such
    fingerprints (pinned here, from mixopt at dfb9f19), and the data adopts them so those stores resume."""
    plain = _pinned_specs(tmp_path)
    for edit, recorded in TOKEN_FREE_EDITS:
        cfg = DataConfig(corpus="none", domains=[plain[0].model_copy(update=edit), plain[1]], cache_dir=str(tmp_path / "c"))
        if recorded is not None:
            assert load_domain_set(cfg, store_fingerprint=recorded).fingerprint == recorded, edit
        assert load_domain_set(cfg, store_fingerprint="0123456789abcdef").fingerprint == "3e777bd0d50b5eb1"


def test_adding_quality_field_to_a_swept_config_resumes_its_store(tmp_path, capsys, monkeypatch):
    """The README's workflow: sweep, then set quality_field to cut quality pools; the next sweep trains nothing new.
    A store swept before stop 29 with quality_field set (its fingerprint hashed the field) resumes too."""
    import mixopt.data.domains as domains
    from mixopt.cli.main import run
    from mixopt.data.sources import source_keys
    from tests.test_cli_sweep import write_cfg

    data = {"corpus": "none", "domains": [{"name": s.name, "path": s.path} for s in _pinned_specs(tmp_path)]}
    small = dict(runs=1, proxy={"tokens": 2048, "checkpoints": [1.0]}, sampler={"baselines": ["natural"]})
    store, old = tmp_path / "store", tmp_path / "old"
    assert run(["sweep", str(write_cfg(tmp_path, data=data, **small)), "--store", str(store), "--workers", "1"]) == 0
    data["domains"][0]["quality_field"] = "score"
    quality = write_cfg(tmp_path, data=data, **small)
    with monkeypatch.context() as m:  # mixopt before stop 29: every field as written is hashed
        m.setattr(domains, "source_keys", lambda spec: (source_keys(spec)[2],) * 3)
        m.setenv("MIXOPT_CACHE", str(tmp_path / "old-cache"))
        assert run(["sweep", str(quality), "--store", str(old), "--workers", "1"]) == 0
    capsys.readouterr()
    import json

    from mixopt.runs.reused import changed_domains
    old_meta = json.loads((old / "store.json").read_text())
    for where in (store, old):
        before = sorted(p.name for p in (where / "runs").glob("*.json"))
        assert run(["sweep", str(quality), "--store", str(where)]) == 0
        assert "0 trained now" in capsys.readouterr().out
        assert sorted(p.name for p in (where / "runs").glob("*.json")) == before
    # a later sweep reusing the old store (reuse.store) does not read the quality domain as revised
    new_meta = json.loads((store / "store.json").read_text())
    assert list(new_meta["domain_fingerprints_verbatim"]) == [data["domains"][0]["name"]]
    assert changed_domains(old_meta, new_meta, str(old)) == []


def test_byte_tokenizer_roundtrip():
    tok = Tokenizer("bytes")
    ids = tok.encode_documents(["héllo", "wörld"])
    assert int((ids == tok.eos_id).sum()) == 2
    assert tok.decode(ids[: len("héllo".encode())]) == "héllo"
    assert tok.count("héllo") == len("héllo".encode()) + 1
    empty = tok.encode_documents([])  # an evaluation-only target set has no training documents
    assert empty.shape == (0,) and empty.dtype == tok.dtype


def test_an_evaluation_only_target_set_loads_with_the_byte_tokenizer(tmp_path):
    """``data.targets`` with the default tokenizer (it crashed on the target's empty training part before stop 25)."""
    import json

    from mixopt.config import DataConfig
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"text": f"target document {i}"}) + "\n" for i in range(5)))
    data = load_domain_set(DataConfig(include=["code"], max_documents=20, cache_dir=str(tmp_path / "cache"),
                                      targets=[{"name": "t", "path": str(path), "format": "jsonl"}]))
    t = data.targets["t"]
    assert t.n_docs_train == 0 and t.train.size == 0 and t.n_docs_val == 5 and int((t.val == data.eos_id).sum()) == 5


def test_hf_tokenizer_json(tmp_path):
    from tokenizers import Tokenizer as HF, models, pre_tokenizers, trainers

    hf = HF(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.train_from_iterator(_docs("train", 100), trainers.BpeTrainer(vocab_size=120, special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    tok = Tokenizer(str(path))
    ids = tok.encode_documents(["lorem ipsum document", "number 3"])
    assert ids.max() == tok.eos_id and tok.vocab_size == tok.eos_id + 1


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("missing.jsonl", None, "does not exist"),
        ("empty.jsonl", "", "empty"),
        ("bad.jsonl", '{"text": "ok"}\n{"text": broken', "could not read"),
        ("nocol.jsonl", '{"body": "ok"}\n', "text_field"),
    ],
)
def test_bad_data_files_give_clear_errors(tmp_path, name, content, match):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=match):
        load_documents(DomainSpec(name="x", path=str(tmp_path / name)))


def test_bad_tokenizer_path():
    with pytest.raises(ConfigError, match="tokenizer"):
        Tokenizer("/nonexistent/tokenizer.json")


def test_single_document_domain_is_rejected(tmp_path):
    p = tmp_path / "one.jsonl"
    p.write_text(json.dumps({"text": "only one"}))
    cfg = DataConfig(corpus="none", domains=[DomainSpec(name="one", path=str(p))], cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match="at least 2"):
        load_domain_set(cfg)
