"""`mixopt verify` of a plan with quality pools trains the kept pools (review 39, finding 1), and a verify asked for a
model size far from every proxy size says so (finding 8)."""

from __future__ import annotations

import gzip
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from mixopt.cli.main import run
from mixopt.config import DomainSpec, config_from_dict
from mixopt.data.domains import validation_mask
from mixopt.data.embedded import embedded_path
from mixopt.data.types import DomainSet, TokenizedDomain
from tests.test_cli_sweep import MICRO, write_cfg


def _prose(n: int) -> list[str]:
    return [json.loads(line)["text"] for line in list(gzip.open(embedded_path("prose"), "rt"))[:n]]


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    """A micro store and plan, and the plan with prose's quality pools: q1 (kept, a file of 20 of prose's 60 documents,
    with its validation documents among them) and q2."""
    tmp = tmp_path_factory.mktemp("verify_pools")
    cfg = write_cfg(tmp, runs=1, sampler={"noise_seeds": 1, "two_phase_runs": 0})
    store, plan = tmp / "store", tmp / "plan.yaml"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    body = {"budget_tokens": 8192.0, "phases": [{"start_fraction": 0.0, "weights": {"code": 0.3, "legal": 0.3, "prose": 0.4}}],
            "predicted": {"metric": "mean:all-domains", "value": 3.8, "std": 0.05}, "provenance": {}}
    plan.write_text(yaml.safe_dump(body))
    docs = _prose(60)
    for name, part in (("q1", docs[:20]), ("q2", docs[20:])):
        (tmp / f"prose.{name}.jsonl").write_text("".join(json.dumps({"body": d}) + "\n" for d in part))
    body["pools"] = {"prose": ["q1"]}
    body["provenance"]["pool_sources"] = {"prose": {"q1": {"path": str(tmp / "prose.q1.jsonl"), "text_field": "body"}}}
    with_pools = tmp / "plan-pools.yaml"
    with_pools.write_text(yaml.safe_dump(body))
    return tmp, cfg, store, plan, with_pools, docs


def _records(store) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text())["record"] for p in (store / "runs").glob("*.json")}


def test_verify_trains_the_kept_pools_and_no_pools_the_whole_domains(pooled, tmp_path, capsys):
    """The plan arm trains prose on its kept pool q1 only (its own run ids, its epochs counted on q1's tokens); the
    no-pools arm trains the same mixture on whole domains: the runs a verify of the plan without pools trains."""
    tmp, cfg, store, plan, with_pools, docs = pooled
    out = tmp_path / "v.json"
    argv = ["verify", str(with_pools), "--store", str(store), "--seeds", "2", "--against", "natural,no-pools"]
    assert run(argv + ["--out", str(out)]) == 0
    body = json.loads(out.read_text())
    assert body["skipped"] == []  # (old code: no-pools skipped, "the proxy trainer reads whole domains")
    names = [r["name"] for r in body["results"]]
    assert names == ["plan", "natural", "no-pools"]
    on = {r["name"]: r["on_pools"] for r in body["results"]}
    assert on == {"plan": True, "natural": False, "no-pools": False}
    held = sum(validation_mask(docs, 0.05)[:20])
    info = body["pools"]["prose"]
    assert info["trained_on"] == "kept pools" and info["pools"] == ["q1"] and info["documents"] == 20 - held
    assert info.get("validation_dropped", 0) == held and 0 < info["tokens"] < info["domain_tokens"]
    assert body["notes"] == []
    plan_res, no_pools = body["results"][0], body["results"][2]
    assert plan_res["schedule"] == no_pools["schedule"] and plan_res["values"] != no_pools["values"]
    comparison = {c["against"]: c for c in body["comparisons"]}["no-pools"]
    assert not comparison.get("same_as_plan")
    recs = [r for r in _records(store).values() if r["label"].startswith("verify:")]
    fp = {r["label"]: r["data_fingerprint"] for r in recs}
    assert fp["verify:plan"] != fp["verify:no-pools"] == fp["verify:natural"]
    trained_plan = [r for r in recs if r["label"] == "verify:plan"]
    epochs = trained_plan[0]["info"]["epochs_per_domain"]["prose"]
    tokens = trained_plan[0]["info"]["tokens_per_domain"]["prose"]
    assert epochs == pytest.approx(tokens / info["tokens"])  # repeated over q1's tokens, not prose's
    # the plan without pools: its runs are the no-pools arm's, trained once
    again = tmp_path / "plain.json"
    assert run(["verify", str(plan), "--store", str(store), "--seeds", "2", "--against", "natural", "--out", str(again)]) == 0
    plain = json.loads(again.read_text())
    assert plain["trained"] == 0 and plain["results"][0]["values"] == no_pools["values"]
    assert "pools" not in plain and "on_pools" not in plain["results"][0]
    # the prediction values whole domains: the pooled plan's prediction_error says it holds the pools' effect too
    assert "prose on its kept pools" in body["predicted"]["pools_note"] and "pools_note" not in plain["predicted"]
    assert "note: the plan's runs train prose on its kept pools" in capsys.readouterr().out
    # the table and the report say what the plan arm trained
    from rich.console import Console

    from mixopt.report.answer import verification_summary
    from mixopt.report.tables import verify_table
    console = Console(width=400, record=True)
    console.print(verify_table(body))
    assert "trained prose on its kept pools q1" in console.export_text()
    lines, _ = verification_summary(body)
    assert "(trained prose on its kept pools q1)" in lines[0]
    assert "±2σ, a prediction for the whole domains, not the kept pools trained" in lines[0]



def test_a_whole_domain_arm_against_a_pooled_plan_has_no_predicted_difference(pooled, tmp_path):
    """Recheck 39 #4: the plan's prediction values mixtures on whole domains, so against an arm that trains prose whole
    (natural here; uniform for a plan that kept uniform's shares, which got predicted_diff 0.0, claim_held true) the
    measured difference holds the kept pools' effect, which nothing predicted: null, with the reason, in VERIFY.json
    and the tables."""
    tmp, cfg, store, plan, with_pools, docs = pooled
    body = yaml.safe_load(with_pools.read_text())
    body["predicted"]["baselines"] = {"natural": {"value": 3.8}, "uniform": {"value": 3.9}}
    claimed = tmp_path / "claimed.yaml"
    claimed.write_text(yaml.safe_dump(body))
    out = tmp_path / "v.json"
    assert run(["verify", str(claimed), "--store", str(store), "--seeds", "2", "--against", "natural",
                "--out", str(out)]) == 0
    (c,) = json.loads(out.read_text())["comparisons"]
    assert c["predicted_diff"] is None and c["claim_held"] is None, c  # (old code: 0.0 and true)
    assert "prose on its kept pools" in c["claim_note"] and "not the pools' effect" in c["claim_note"]
    from rich.console import Console

    from mixopt.report.answer import verification_summary
    from mixopt.report.tables import verify_table
    console = Console(width=600, record=True)
    console.print(verify_table(json.loads(out.read_text())))
    assert "not predicted: the plan trains prose on its kept pools" in console.export_text()
    _, table = verification_summary(json.loads(out.read_text()))
    assert table.rows[1][4] == "–" and "not predicted" in table.rows[1][5]

def test_a_share_pool_trains_whole_and_says_it_verifies_the_mixture_only(pooled, tmp_path):
    """A kept pool sized by share has no documents: the domain trains whole, VERIFY.json's notes and pools say so,
    no-pools (the plan's own runs) is skipped saying why, and --adopt's note says what was verified."""
    tmp, cfg, store, plan, with_pools, docs = pooled
    body = yaml.safe_load(with_pools.read_text())
    body["provenance"]["pool_sources"] = {"prose": {"q1": {"share": 0.3}}}
    share = tmp_path / "share.yaml"
    share.write_text(yaml.safe_dump(body))
    out, adopted = tmp_path / "v.json", tmp_path / "adopted.yaml"
    with pytest.warns(UserWarning, match="verifies the plan's mixture, not its filtering of prose"):
        assert run(["verify", str(share), "--store", str(store), "--seeds", "2", "--against", "natural,no-pools",
                    "--out", str(out), "--adopt", str(adopted)]) == 0
    got = json.loads(out.read_text())
    assert got["pools"]["prose"]["trained_on"] == "whole domain" and "share" in got["pools"]["prose"]["why"]
    assert [s["name"] for s in got["skipped"]] == ["no-pools"] and "on_pools" not in got["results"][0]
    assert len(got["notes"]) == 1 and "not its filtering" in got["notes"][0]
    reason = yaml.safe_load(adopted.read_text())["reasons"][0]
    assert "prose trained whole, not on the plan's kept pools: this verified the mixture, not the filtering" in reason



def test_a_pool_file_moved_with_the_plan_is_trained_from_beside_it(pooled, tmp_path, capsys):
    """Recheck 39 #1: a plan moved with its pool file (gone from the path it recorded) is verified on the file beside
    it, found by its digest, and an adopted plan records where it was found (and its path relative to the new plan)."""
    from mixopt.data.sources import files_digest
    tmp, cfg, store, plan, with_pools, docs = pooled
    body = yaml.safe_load(with_pools.read_text())
    q1 = tmp / "prose.q1.jsonl"
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "prose.q1.jsonl").write_bytes(q1.read_bytes())
    body["provenance"]["pool_sources"]["prose"]["q1"].update(path=str(tmp_path / "old" / "prose.q1.jsonl"),
                                                             digest=files_digest(q1))
    moved = tmp_path / "proj" / "plan.yaml"
    moved.write_text(yaml.safe_dump(body))
    out, adopted = tmp_path / "v.json", tmp_path / "adopted" / "plan.yaml"
    assert run(["verify", str(moved), "--store", str(store), "--seeds", "2", "--against", "natural",
                "--out", str(out), "--adopt", str(adopted)]) == 0  # (old code: 2, "is gone since")
    assert f"checked {tmp_path}/proj/prose.q1.jsonl instead (the same digest)" in capsys.readouterr().err
    assert json.loads(out.read_text())["pools"]["prose"]["trained_on"] == "kept pools"
    src = yaml.safe_load(adopted.read_text())["provenance"]["pool_sources"]["prose"]["q1"]
    assert src["path"] == str(tmp_path / "proj" / "prose.q1.jsonl") and src["relative"] == "../proj/prose.q1.jsonl"

def test_missing_pool_file_is_one_line(pooled, tmp_path, capsys):
    tmp, cfg, store, plan, with_pools, docs = pooled
    body = yaml.safe_load(with_pools.read_text())
    body["provenance"]["pool_sources"]["prose"]["q1"]["path"] = str(tmp_path / "gone.jsonl")
    gone = tmp_path / "gone.yaml"
    gone.write_text(yaml.safe_dump(body))
    assert run(["verify", str(gone), "--store", str(store), "--seeds", "1", "--against", "natural",
                "--out", str(tmp_path / "v.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gone.jsonl" in err and "is gone since" in err, err
    assert "Rerun mixopt propose" in err and not (tmp_path / "v.json").exists()


def _toy_set(docs: list[str]) -> DomainSet:
    from mixopt.data.tokenize import Tokenizer
    tok = Tokenizer("bytes")
    mask = validation_mask(docs, 0.05)
    train = tok.encode_documents([d for d, v in zip(docs, mask) if not v])
    val = tok.encode_documents([d for d, v in zip(docs, mask) if v])
    dom = TokenizedDomain("web", train, val, mask.count(False), mask.count(True), "fp-web")
    other = TokenizedDomain("code", train[:100], val[:50], 1, 1, "fp-code")
    return DomainSet({"web": dom, "code": other}, tok.vocab_size, tok.eos_id, tok.identity)


def test_kept_pools_data_buckets_and_files(tmp_path):
    """Score buckets read the domain's quality_field (training documents only); the pooled domain keeps the domain's
    validation split and gets its own fingerprint; the other domains are untouched."""
    from mixopt.runs.pool_runs import kept_pools_data
    docs = [f"document {i} " + "x" * (i % 7) for i in range(80)]
    path = tmp_path / "web.jsonl"
    path.write_text("".join(json.dumps({"text": d, "s": i / 80}) + "\n" for i, d in enumerate(docs)))
    data = _toy_set(docs)
    spec = DomainSpec(name="web", path=str(path), quality_field="s")
    sources = {"web": {"hi": {"quality_field": "s", "min_score": 0.5, "max_score": None}}}
    pooled, kept = kept_pools_data(data, {"web": ["hi"]}, sources, [spec], tokenizer="bytes", val_fraction=0.05)
    mask = validation_mask(docs, 0.05)
    expect = [d for i, (d, v) in enumerate(zip(docs, mask)) if i >= 40 and not v]
    assert kept[0].documents == len(expect) and kept[0].tokens == pooled.domains["web"].unique_tokens
    assert np.array_equal(pooled.domains["web"].val, data.domains["web"].val)
    assert pooled.domains["code"] is data.domains["code"] and pooled.fingerprint != data.fingerprint
    # the plan records no source for a kept pool: the domain trains whole, and says why
    same, kept = kept_pools_data(data, {"web": ["hi"]}, {}, [spec], tokenizer="bytes", val_fraction=0.05)
    assert kept[0].tokens is None and "pool_sources" in kept[0].why and same.fingerprint == data.fingerprint


def test_adopting_no_pools_drops_the_pools():
    """--adopt of a no-pools arm that trained better: the plan drops its pools, their laws and sources, and counts the
    pooled domain's epochs on its whole tokens."""
    from mixopt.plan import Phase, Plan, Prediction
    from mixopt.verify import adopted_plan
    from tests.test_verify import _body
    w = {"code": 0.5, "web": 0.5}
    plan = Plan(budget_tokens=4e6, phases=[Phase(start_fraction=0.0, weights=w)], epochs={"code": 1.0, "web": 2.0},
                pools={"web": ["q1"]}, pool_laws={"web": {"q1": {"b": -0.1}}}, predicted=Prediction(metric="val/code", value=2.5),
                provenance={"pool_sources": {"web": {"q1": {"path": "q1.jsonl"}}}, "seed": 0},
                reasons=["searched", "web: keep 1 of 3 quality pools (q1) at ..."], frontier=[{"domain": "web"}])
    body = _body([2.50, 2.52, 2.49], {"no-pools": ([[0.0, w]], [2.40, 2.42, 2.40])})
    body["pools"] = {"web": {"pools": ["q1"], "trained_on": "kept pools", "tokens": 1e6, "domain_tokens": 8e6}}
    new, note = adopted_plan(plan, body)
    assert "this plan drops its quality pools" in note and new.pools == {} and new.pool_laws == {}
    assert "pool_sources" not in new.provenance and new.provenance["seed"] == 0 and "frontier" not in new.to_dict()
    assert new.epochs == pytest.approx({"code": 1.0, "web": 0.25}) and new.reasons[1:] == ["searched"]
    assert plan.pools == {"web": ["q1"]}  # the input plan is left alone


def test_adopting_no_pools_writes_epochs_to_the_digits_of_every_plan_writer():
    """Recheck 39 #2: without_pools rounded a pooled domain's epochs to 6 decimals (0.04125 for 0.0412498285554), so an
    export's unique tokens (share x budget / epochs) of a big domain at a small budget were off by up to tens of
    percent; it writes plan_epochs' 12 digits like every other plan writer."""
    from mixopt.plan import Phase, Plan, Prediction, plan_epochs
    from mixopt.verify import without_pools
    w = {"code": 0.5, "web": 0.5}
    plan = Plan(budget_tokens=2e5, phases=[Phase(start_fraction=0.0, weights=w)], epochs={"code": 1.0, "web": 0.3},
                pools={"web": ["q1"]}, predicted=Prediction(metric="val/code", value=2.5))
    unique = 7_654_321.0  # the whole domain: 1e5 tokens of it are 0.0130645... epochs
    new = without_pools(plan, {"web": {"pools": ["q1"], "trained_on": "kept pools", "tokens": 1e4, "domain_tokens": unique}})
    assert new.epochs["web"] == plan_epochs(1e5, unique) != round(1e5 / unique, 6)
    assert 0.5 * new.budget_tokens / new.epochs["web"] == pytest.approx(unique, rel=1e-10)


# -- finding 8: --model-params far from every proxy size ----------------------------------------------------------

def test_model_params_far_from_every_size_is_said():
    from mixopt.plan import Phase, Plan
    from mixopt.verify import target_scale
    cfg = config_from_dict(json.loads(json.dumps(MICRO)), where="test")
    data = SimpleNamespace(vocab_size=257)
    plan = Plan(budget_tokens=8192, phases=[Phase(start_fraction=0.0, weights={"code": 1.0})])
    scale = target_scale(cfg, data, plan, model_params=1e9)
    assert scale.note.startswith("no proxy size within 10x of --model-params 1e+09")
    assert f"{scale.model_params:.3g}" in scale.note and "`sizes:`" in scale.note and "--shape" in scale.note
    near = target_scale(cfg, data, plan, model_params=scale.model_params * 5)
    assert near.note == "" and near.model_params == scale.model_params
    assert target_scale(cfg, data, plan).note == ""


def test_model_params_note_is_warned_and_recorded(pooled, tmp_path):
    tmp, cfg, store, plan, with_pools, docs = pooled
    out = tmp_path / "v.json"
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert run(["verify", str(plan), "--store", str(store), "--seeds", "1", "--against", "natural",
                    "--model-params", "1e9", "--out", str(out)]) == 0
    said = [str(w.message) for w in rec if "no proxy size within 10x" in str(w.message)]
    assert len(said) == 1 and json.loads(out.read_text())["notes"] == said


def test_adopting_no_pools_counts_the_whole_domains_mean_document():
    """Recheck of numbers 39 #1: the adopted no-pools plan kept the kept pool's mean document (32,245 tokens where the
    whole domain's is 9,672), so hf/mosaic/litdata trained the domain at 4.76% of tokens where the plan says 14.29%.
    It counts the whole domain's (VERIFY.json's domain_documents); a VERIFY.json without them leaves the domain's
    tokens per document unset, so a document-weighted export asks for it instead of using the pools'."""
    from mixopt.export.semantics import doc_shares
    from mixopt.plan import Phase, Plan, Prediction
    from mixopt.verify import without_pools
    w = {"code": 1 / 7, "web": 6 / 7}
    plan = Plan(budget_tokens=81920, phases=[Phase(start_fraction=0.0, weights=w)], epochs={"code": 0.3, "web": 0.1},
                pools={"code": ["hq"]}, tokens_per_doc={"code": 32244.73, "web": 1000.0},
                predicted=Prediction(metric="val/code", value=2.5))
    info = {"pools": ["hq"], "trained_on": "kept pools", "tokens": 483670, "domain_tokens": 735065}
    new = without_pools(plan, {"code": {**info, "domain_documents": 76}})
    assert new.tokens_per_doc == pytest.approx({"code": 735065 / 76, "web": 1000.0})
    shares = doc_shares(new.overall_weights(), new.tokens_per_doc)
    assert shares["code"] * new.tokens_per_doc["code"] / sum(shares[d] * new.tokens_per_doc[d] for d in shares) == pytest.approx(1 / 7)
    assert "code" not in without_pools(plan, {"code": info}).tokens_per_doc  # older VERIFY.json: not the pools' mean
