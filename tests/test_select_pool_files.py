"""review-select findings 3-8: select's pool files carry their text field and leave the domain's validation documents
out; propose says when pool files are other data, hold validation documents, or replace the config's pools; select
warns on pools that share documents and on a target too small to learn from; and each text-field error names the
option that fixes it."""

import json
import warnings

import pytest
import yaml

from mixopt.cli.main import run
from mixopt.config import DomainPools, DomainSpec, QualityPool, load_config, resolve_config
from mixopt.data.domains import is_validation, split_documents, validation_mask
from mixopt.errors import ConfigError, DataError
from mixopt.pipeline import with_pools
from mixopt.planning.pool_sources import pool_file_notes
from mixopt.runs.pool_runs import pool_documents
from mixopt.selection.cache import ScoreCache
from mixopt.selection.output import located_pools
from mixopt.selection.select import MIN_TARGET_TOKENS, select_documents
from tests.test_selection import VOCAB_A, VOCAB_B, docs_from

VF = 0.05


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture()
def data(tmp_path):
    docs = docs_from(VOCAB_A, 40, 11) + docs_from(VOCAB_B, 40, 12)
    held = [d for d in docs if is_validation(d, VF)]
    assert held  # the fixture needs validation documents by hash
    return {"docs": docs, "held": held,
            "pool": write_jsonl(tmp_path / "web.jsonl", [{"text": d} for d in docs]),
            "content": write_jsonl(tmp_path / "web_content.jsonl", [{"content": d} for d in docs]),
            "other": write_jsonl(tmp_path / "other.jsonl", [{"text": d} for d in docs_from(VOCAB_B, 60, 13)]),
            "target": write_jsonl(tmp_path / "target.jsonl", [{"text": d} for d in docs_from(VOCAB_A, 12, 14)])}


def select(data, tmp_path, out="sel", **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = select_documents(kw.pop("pools", {"web": str(data["pool"])}), str(kw.pop("target", data["target"])),
                               tmp_path / out, method="classifier", buckets=kw.pop("buckets", 3),
                               cache=ScoreCache(tmp_path / "cache"), **kw)
    return res, [str(w.message) for w in caught]


# -- 4: the domain's validation documents stay out of the buckets ----------------------------------------------

def test_select_leaves_the_hash_held_out_documents_out_of_the_buckets(data, tmp_path):
    res, _ = select(data, tmp_path, keep=0.5)
    out = tmp_path / "sel"
    bucketed = [r["text"] for j in (1, 2, 3) for r in rows_of(out / f"web.q{j}.jsonl")]
    kept = [r["text"] for r in rows_of(out / "web.kept.jsonl")]
    assert not set(bucketed) & set(data["held"]) and not set(kept) & set(data["held"])
    assert sorted(bucketed) == sorted(d for d in data["docs"] if d not in data["held"])  # every other document once
    scored = rows_of(out / "web.scored.jsonl")
    assert len(scored) == len(data["docs"]) and all(r["score"] is not None for r in scored)  # still scored
    assert res.held_out == {"web": len(data["held"])}
    manifest = json.loads((out / "selection.json").read_text())
    assert manifest["held_out"] == {"web": len(data["held"])} and manifest["val_fraction"] == VF
    # exactly the validation split a domain of this data holds out: training on the buckets never sees val/web
    assert sorted(split_documents(data["docs"], VF, "web")[1]) == sorted(data["held"])


def test_a_pool_whose_hash_split_is_empty_holds_out_the_document_a_domain_of_it_would(data, tmp_path):
    """A tiny domain with no document under the hash moves its smallest-hash text into validation; select does too."""
    docs = [d for d in data["docs"] if not is_validation(d, VF)][:12]
    pool = write_jsonl(tmp_path / "small.jsonl", [{"text": d} for d in docs])
    res, _ = select(data, tmp_path, pools={"small": str(pool)}, buckets=2)
    val = split_documents(docs, VF, "small")[1]
    assert len(val) == 1 and res.held_out == {"small": 1}
    bucketed = [r["text"] for j in (1, 2) for r in rows_of(tmp_path / "sel" / f"small.q{j}.jsonl")]
    assert val[0] not in bucketed and len(bucketed) == 11


def test_keep_validation_docs_and_the_configs_val_fraction(data, tmp_path):
    res, _ = select(data, tmp_path, val_fraction=None)
    bucketed = [r["text"] for j in (1, 2, 3) for r in rows_of(tmp_path / "sel" / f"web.q{j}.jsonl")]
    assert res.held_out == {"web": 0} and sorted(bucketed) == sorted(data["docs"])
    res, _ = select(data, tmp_path, out="sel2", val_fraction=0.3)
    assert res.held_out["web"] == sum(is_validation(d, 0.3) for d in data["docs"]) > len(data["held"])
    with pytest.raises(ConfigError, match="val_fraction"):
        select(data, tmp_path, out="sel3", val_fraction=0.7)


def test_the_select_cli_notes_the_held_out_documents_and_takes_the_configs_fraction(data, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data:\n  corpus: none\n  val_fraction: 0.3\n  domains:\n    - {{name: web, path: {data['pool']}}}\n")
    base = ["select", "--pool", f"web={data['pool']}", "--target", str(data["target"]), "--method", "dsir", "--buckets", "2"]
    assert run(base + ["--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert f"web {len(data['held'])} document(s)" in err and "val_fraction 0.05" in err and "--keep-validation-docs" in err
    assert run(base + ["--out", str(tmp_path / "b"), "--config", str(cfg)]) == 0
    assert "val_fraction 0.3" in capsys.readouterr().err
    assert run(base + ["--out", str(tmp_path / "c"), "--keep-validation-docs"]) == 0
    assert "held" not in capsys.readouterr().err


# -- 4 (propose): pool files that are other data, or that hold the domain's validation documents ----------------

def pools_of(out):
    raw = located_pools(yaml.safe_load((out / "pools.yaml").read_text()), out / "pools.yaml")  # paths relative to it
    return {d: DomainPools.model_validate(v) for d, v in raw.items()}


def test_no_note_for_a_selection_of_the_domains_own_file(data, tmp_path):
    select(data, tmp_path)
    spec = DomainSpec(name="web", path=str(data["pool"]))
    assert pool_file_notes(pools_of(tmp_path / "sel"), [spec], VF) == []


def test_propose_notes_pool_files_that_hold_the_domains_validation_documents(data, tmp_path):
    select(data, tmp_path, val_fraction=None)  # as select wrote them before, or with --keep-validation-docs
    notes = pool_file_notes(pools_of(tmp_path / "sel"), [DomainSpec(name="web", path=str(data["pool"]))], VF)
    assert len(notes) == 1 and f"hold {len(data['held'])} of the domain's validation documents" in notes[0]
    assert "val/web" in notes[0]
    # pools written by hand (no selection.json beside them): found by their documents
    hand = {"web": {"pools": [{"name": "all", "path": str(data["pool"]), "text_field": "text"}]}}
    notes = pool_file_notes(hand, [DomainSpec(name="web", path=str(data["content"]), text_field="content")], VF)
    assert len(notes) == 1 and "validation documents" in notes[0]


def test_propose_notes_pool_files_that_are_not_the_domains_data(data, tmp_path):
    select(data, tmp_path, pools={"web": str(data["other"])})
    notes = pool_file_notes(pools_of(tmp_path / "sel"), [DomainSpec(name="web", path=str(data["pool"]))], VF)
    assert len(notes) == 1 and "are not the domain's data" in notes[0] and "0 of the" in notes[0]
    assert str(data["other"]) in notes[0] and f"--pool web={data['pool']}" in notes[0]
    # a domain the config does not list, or an unreadable pool file: left to the planner's own errors
    assert pool_file_notes(pools_of(tmp_path / "sel"), [DomainSpec(name="books", path=str(data["pool"]))], VF) == []
    gone = {"web": {"pools": [{"name": "x", "path": str(tmp_path / "missing.jsonl")}]}}
    assert pool_file_notes(gone, [DomainSpec(name="web", path=str(data["pool"]))], VF) == []


# -- 3: the pools' text field travels with them -------------------------------------------------------------------

def test_pools_yaml_carries_the_text_field_and_propose_reads_pools_with_it(data, tmp_path):
    select(data, tmp_path, pools={"web": str(data["content"])}, text_field="content", target_text_field="text")
    pools = pools_of(tmp_path / "sel")["web"]
    assert {p.text_field for p in pools.pools} == {"content"}
    spec = DomainSpec(name="web", path=str(data["pool"]))  # the domain's own field is `text`
    docs = pool_documents("web", pools.pools[0], spec)
    assert docs and set(docs) <= set(data["docs"])


def test_a_pool_without_its_text_field_names_the_pools_text_field(data, tmp_path):
    pool = QualityPool(name="q1", path=str(data["content"]))  # a pools.yaml written before the field
    with pytest.raises(DataError) as exc:
        pool_documents("web", pool, DomainSpec(name="web", path=str(data["pool"])))
    msg = str(exc.value)
    assert "Quality pool 'q1' of domain 'web'" in msg and "`text_field: COLUMN` on pool 'q1'" in msg and "'content'" in msg
    assert "\n" not in msg


def test_text_field_belongs_to_a_pool_file():
    with pytest.raises(ValueError, match="text_field"):
        QualityPool(name="q1", share=0.5, text_field="content")


# -- 5: --pools replaces a domain's config pools, and says so ----------------------------------------------------

def test_pools_file_replacing_the_configs_pools_of_a_domain_warns(tmp_path):
    cfg = load_config(resolve_config("tiny"))
    cfg = with_pools(cfg, {"prose": {"pools": [{"name": "hi", "share": 0.5}, {"name": "lo", "share": 0.5}]}}, where="cfg")
    with pytest.warns(UserWarning, match=r"the pools of prose in sel/pools.yaml replace the config's propose.pools") as rec:
        one = {"pools": [{"name": "q1", "share": 1.0}]}
        merged = with_pools(cfg, {"prose": one, "code": one}, where="sel/pools.yaml")
    assert len(rec) == 1 and "code" not in str(rec[0].message)
    assert [p.name for p in merged.propose.pools["prose"].pools] == ["q1"]


# -- 6: the same documents in two pools ------------------------------------------------------------------------

def test_pools_that_share_documents_warn(data, tmp_path):
    copy = write_jsonl(tmp_path / "copy.jsonl", [{"text": d} for d in data["docs"][:20]])
    _, said = select(data, tmp_path, pools={"a": str(data["pool"]), "b": str(copy)}, buckets=2)
    shared = [m for m in said if "share" in m]
    assert len(shared) == 1 and "pools 'a' and 'b' share 20 document(s)" in shared[0] and "100.0% of pool 'b'" in shared[0]
    _, said = select(data, tmp_path, out="sel2", pools={"a": str(data["pool"]), "b": str(data["other"])}, buckets=2)
    assert not [m for m in said if "share" in m]


# -- 7: a target too small to learn from ---------------------------------------------------------------------

def test_a_tiny_target_warns_and_a_real_one_does_not(data, tmp_path):
    tiny = write_jsonl(tmp_path / "tiny.jsonl", [{"text": data["docs"][0][:200]}])
    _, said = select(data, tmp_path, target=tiny)
    small = [m for m in said if "fewer than select needs" in m]
    assert len(small) == 1 and "1 document(s)" in small[0] and f"{MIN_TARGET_TOKENS:,} tokens" in small[0]
    _, said = select(data, tmp_path, out="sel2")
    assert not [m for m in said if "fewer than select needs" in m]


# -- 8: the target's text-field error names --target-text-field ------------------------------------------------

def test_the_targets_text_field_error_names_target_text_field(data, tmp_path, capsys):
    assert run(["select", "--pool", f"web={data['content']}", "--target", str(data["target"]), "--text-field", "content",
                "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--target target=" in err and "Pass --target-text-field" in err and len(err.splitlines()) == 1
    assert run(["select", "--pool", f"web={data['pool']}", "--target", str(data["target"]), "--text-field", "content",
                "--target-text-field", "text", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "--pool web=" in err and "Pass --text-field" in err


# -- recheck 1: pools selected from one shard of a sharded domain, and a domain larger than the lookup reads ---------

@pytest.fixture()
def sharded(data, tmp_path, monkeypatch):
    """A domain folder of two shards, the validation documents in the second; the lookup reads 40 of its 80 documents."""
    import mixopt.planning.pool_sources as ps

    monkeypatch.setattr(ps, "DOMAIN_CHECK_DOCS", 40)
    rest = [d for d in data["docs"] if d not in data["held"]]
    (tmp_path / "dom").mkdir()
    write_jsonl(tmp_path / "dom" / "shard_0.jsonl", [{"text": d} for d in rest[:40]])
    shard_1 = write_jsonl(tmp_path / "dom" / "shard_1.jsonl", [{"text": d} for d in rest[40:] + data["held"]])
    return DomainSpec(name="web", path=str(tmp_path / "dom")), shard_1


def test_pools_selected_from_one_shard_are_the_domains_data_and_their_leak_is_counted(data, tmp_path, sharded):
    spec, shard_1 = sharded
    select(data, tmp_path, pools={"web": str(shard_1)}, val_fraction=None)
    notes = pool_file_notes(pools_of(tmp_path / "sel"), [spec], VF)
    assert not [n for n in notes if "not the domain's data" in n]
    assert len(notes) == 1 and f"hold {len(data['held'])} of the domain's validation documents" in notes[0]


def test_a_lookup_that_reads_part_of_the_domain_samples_it_and_claims_other_data_only_when_it_can_tell(data, tmp_path, sharded):
    spec, shard_1 = sharded
    hand = {"web": {"pools": [{"name": "h", "path": str(shard_1)}]}}  # no selection.json: looked up in a sample
    assert not [n for n in pool_file_notes(hand, [spec], VF) if "not the domain's data" in n]
    other = {"web": {"pools": [{"name": "o", "path": str(data["other"])}]}}  # 60 documents, about 30 expected
    notes = pool_file_notes(other, [spec], VF)
    assert len(notes) == 1 and "not the domain's data: 0 of the 60" in notes[0] and "uniform sample" in notes[0]
    few = {"web": {"pools": [{"name": "o", "path": str(write_jsonl(tmp_path / "few.jsonl", rows_of(data["other"])[:20]))}]}}
    assert pool_file_notes(few, [spec], VF) == []  # 10 expected: too few to tell, nothing is claimed


# -- recheck 3 and 8: the fix names --config; pools selected at another val_fraction -----------------------------

def test_the_leak_fix_names_the_config_whose_val_fraction_select_must_hold_out(data, tmp_path):
    select(data, tmp_path, val_fraction=None)
    notes = pool_file_notes(pools_of(tmp_path / "sel"), [DomainSpec(name="web", path=str(data["pool"]))], 0.3, "exp/my.yaml")
    assert len(notes) == 1 and "`mixopt select --config exp/my.yaml`" in notes[0] and "data.val_fraction 0.3" in notes[0]
    assert "\n" not in notes[0]


def test_pools_selected_holding_out_another_val_fraction_warn_once(data, tmp_path):
    spec = DomainSpec(name="web", path=str(data["pool"]))
    select(data, tmp_path, val_fraction=0.2)  # used at 0.05: the documents in [0.05, 0.2) train in no pool
    notes = pool_file_notes(pools_of(tmp_path / "sel"), [spec], VF, "cfg.yaml")
    assert len(notes) == 1 and "val_fraction 0.2" in notes[0] and "data.val_fraction is 0.05" in notes[0]
    assert f"{0.15 / 0.95:.1%} of the domain's training documents" in notes[0] and "--config cfg.yaml" in notes[0]
    select(data, tmp_path, out="sel2", val_fraction=0.02)  # used at 0.05: they hold documents val/web is measured on
    held = validation_mask(data["docs"], 0.02)  # (with a tiny split's rule: none under 0.02 moves one text in)
    leaked = sum(is_validation(d, VF) and not h for d, h in zip(data["docs"], held))
    assert leaked
    notes = pool_file_notes(pools_of(tmp_path / "sel2"), [spec], VF)
    assert len(notes) == 1 and "val_fraction 0.02" in notes[0] and f"hold {leaked} of the domain's validation" in notes[0]
