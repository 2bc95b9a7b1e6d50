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
