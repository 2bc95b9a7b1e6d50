"""What the planner counts of a pooled domain (RESULTS stop 38's leftovers): score buckets over the domain's training
documents only, the pool files' validation-leak check by the split's own rule (a tiny domain's fallback included),
and the one unit the pool law counts samples in."""

from __future__ import annotations

import json
import warnings

import pytest

from mixopt.config import DomainPools, DomainSpec, ProposeConfig, SweepConfig
from mixopt.data.domains import is_validation, split_documents, validation_mask
from mixopt.pipeline import FittedModel, propose
from mixopt.planning.pool_choice import choose_pools
from mixopt.planning.pool_sources import pool_file_notes
from mixopt.planning.propose import ProposeContext, build_plan
from mixopt.planning.quality import resolve_domain_pools
from tests.test_pool_plan import Prefers

VF = 0.2
BUCKETS = {"pools": [{"name": "hi", "min_score": 0.6}, {"name": "mid", "min_score": 0.3, "max_score": 0.6}]}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _scored_domain(tmp_path, n=60):
    """A domain of ``n`` documents of 20..79 bytes with scores; a fifth have none (in no bucket)."""
    rows = [{"text": f"doc {i:03d} " + "x" * (i % 60 + 12), "score": None if i % 5 == 0 else (i * 37 % 100) / 100}
            for i in range(n)]
    spec = DomainSpec(name="web", path=str(_jsonl(tmp_path / "web.jsonl", rows)), format="jsonl", quality_field="score")
    return spec, rows


def _by_hand(rows, val_fraction):
    """Tokens (bytes + 1) per bucket, and in all, over the domain's training documents."""
    train = set(split_documents([r["text"] for r in rows], val_fraction, "web")[0])
    tokens = {"hi": 0, "mid": 0, "none": 0}
    for r in rows:
        if r["text"] in train:
            s = r["score"]
            tokens["none" if s is None or s < 0.3 else "mid" if s < 0.6 else "hi"] += len(r["text"].encode()) + 1
    return {**tokens, "all": sum(tokens.values())}


def test_score_buckets_count_the_domains_training_documents_only(tmp_path):
    spec, rows = _scored_domain(tmp_path)
    hand = _by_hand(rows, VF)
    assert sum(is_validation(r["text"], VF) for r in rows) >= 5  # the case holds validation documents to leave out
    pd = resolve_domain_pools("web", BUCKETS, unique_tokens=hand["all"], mean_tokens_per_doc=None, spec=spec,
                              val_fraction=VF)
    assert [p.tokens for p in pd.resolved] == [hand["hi"], hand["mid"]]
    left = hand["all"] - hand["hi"] - hand["mid"]
    assert pd.note.startswith(f"web: {left / hand['all']:.1%} of its training tokens ({left:,} of {hand['all']:,} counted")
    # counted over every document and scaled to the training tokens (the old way) the buckets are other numbers
    every = resolve_domain_pools("web", BUCKETS, unique_tokens=hand["all"], mean_tokens_per_doc=None, spec=spec)
    assert [p.tokens for p in every.resolved] != [hand["hi"], hand["mid"]]


def test_a_tiny_domains_buckets_leave_out_the_text_its_split_moves_into_validation(tmp_path):
    rows = [{"text": f"tiny {i}", "score": 0.9} for i in range(40)]
    rows = [r for r in rows if not is_validation(r["text"], 0.01)][:4]  # no text under the hash: the fallback applies
    spec = DomainSpec(name="web", path=str(_jsonl(tmp_path / "web.jsonl", rows)), format="jsonl", quality_field="score")
    moved = [r["text"] for r, v in zip(rows, validation_mask([r["text"] for r in rows], 0.01)) if v]
    assert len(moved) == 1
    pd = resolve_domain_pools("web", {"pools": [{"name": "hi", "min_score": 0.5}]}, unique_tokens=None,
                              mean_tokens_per_doc=None, spec=spec, val_fraction=0.01)
    assert pd.resolved[0].tokens == sum(len(r["text"]) + 1 for r in rows if r["text"] not in moved)
    assert pd.resolved[0].documents == 3


def test_the_plans_epochs_of_a_bucket_domain_count_its_training_documents(tmp_path):
    spec, rows = _scored_domain(tmp_path)
    hand = _by_hand(rows, VF)
    cfg = ProposeConfig(n_candidates=500, top_k=5, upsample=False, keep_baseline_within_noise=False, max_epochs=8,
                        max_weights={"web": 0.5}, pools={"web": DomainPools.model_validate(BUCKETS)})
    ctx = ProposeContext(domains=["books", "web"], target="t", token_counts={"books": 10**6, "web": hand["all"]},
                         tokens_per_doc={"books": 500.0, "web": 50.0}, proxy_tokens=1e4, specs=[spec], val_fraction=VF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = build_plan(Prefers(1), ctx, cfg, budget_tokens=1e4, seed=0)
    kept = sum(hand[p] for p in plan.pools["web"])
    assert plan.epochs["web"] == pytest.approx(plan.overall_weights()["web"] * 1e4 / kept, rel=1e-5)


def test_propose_sizes_buckets_over_the_configs_split(tmp_path):
    """pipeline.propose hands the config's data.val_fraction to the planner (the plan's note counts training tokens)."""
    spec, rows = _scored_domain(tmp_path)
    hand = _by_hand(rows, VF)
    config = SweepConfig.model_validate({
        "data": {"corpus": "none", "val_fraction": VF, "domains": [spec.model_dump(exclude_unset=True),
                                                                  {"name": "books", "path": str(spec.path)}]},
        "propose": {"n_candidates": 500, "top_k": 5, "upsample": False, "keep_baseline_within_noise": False,
                    "max_weights": {"web": 0.5}, "pools": {"web": BUCKETS}}})
    model = FittedModel(Prefers(1), {"domains": ["books", "web"], "target": "t", "proxy_tokens": 1e4,
                                     "token_counts": {"books": 10**6, "web": hand["all"]},
                                     "tokens_per_doc": {"books": 500.0, "web": 50.0}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = propose(model, config=config, budget_tokens=1e4, use_projector=False)
    left = hand["all"] - hand["hi"] - hand["mid"]
    assert any(r.startswith(f"web: {left / hand['all']:.1%} of its training tokens ({left:,} of") for r in plan.reasons)


def test_the_leak_check_holds_out_what_a_tiny_domains_split_does(tmp_path):
    texts = [t for t in (f"tiny document {i}" for i in range(40)) if not is_validation(t, 0.05)][:5]
    moved = [t for t, v in zip(texts, validation_mask(texts, 0.05)) if v]  # the hash holds none out: the fallback
    assert len(moved) == 1  # moves the smallest-hash text into validation
    texts = [t for t in texts if t not in moved] + moved  # it comes last in the domain's file
    domain = _jsonl(tmp_path / "tiny.jsonl", [{"text": t} for t in texts])
    pool = {"tiny": {"pools": [{"name": "val", "path": str(_jsonl(tmp_path / "hand.jsonl", [{"text": moved[0]}]))}]}}
    notes = pool_file_notes(pool, [DomainSpec(name="tiny", path=str(domain))], 0.05)
    assert len(notes) == 1 and "hold 1 of the domain's validation documents (val 1; held out at data.val_fraction" in notes[0]
    # the domain's split is made of its first documents (data.max_documents 4): that text is not the domain's then
    assert pool_file_notes(pool, [DomainSpec(name="tiny", path=str(domain))], 0.05, max_documents=4) == []
    whole = {"tiny": {"pools": [{"name": "all", "path": str(domain)}]}}  # and another text is its validation split
    notes = pool_file_notes(whole, [DomainSpec(name="tiny", path=str(domain))], 0.05, max_documents=4)
    assert len(notes) == 1 and "hold 1 of the domain's validation documents" in notes[0]


def test_the_pool_law_counts_every_pool_and_the_budget_in_one_unit(tmp_path):
    """A sample is the domain's mean training document (not the kept pools'; a definition, documented in
    resolve_domain_pools, not a fix): each pool's samples and the budget use it, so the repetition of any set is its
    tokens' ratio whatever that unit is."""
    spec, _ = _scored_domain(tmp_path)
    pd = resolve_domain_pools("web", BUCKETS, unique_tokens=None, mean_tokens_per_doc=50.0, spec=spec)
    assert {p.tokens_per_sample for p in pd.resolved} == {50.0}
    assert [p.samples for p in pd.resolved] == [p.tokens / 50.0 for p in pd.resolved]
    assert {round(p.tokens / p.documents, 6) for p in pd.resolved} != {50.0}  # not each pool's own mean document
    c = choose_pools("web", pd.resolved, pd.pools, 1000.0)
    assert c.samples_budget == 1000.0 / 50.0
    assert c.repetitions_of_kept[c.kept[0]] == pytest.approx(1000.0 / sum(p.tokens for p in pd.resolved if p.name in c.kept))
