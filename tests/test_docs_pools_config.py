"""The README's `propose.pools` example (a `quality_field` domain cut into score buckets) is a config mixopt accepts,
and its buckets size the domain the way the comments say: best first, min_score <= score < max_score, documents with
no score never trained."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from mixopt.config import config_from_dict
from mixopt.data.domains import split_documents
from mixopt.data.embedded import embedded_path
from mixopt.planning.quality import resolve_domain_pools

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- docs:pools-config -->"


def readme_block() -> dict:
    text = README.read_text()
    assert MARK in text, f"README.md lost its {MARK} example"
    return yaml.safe_load(text.split(MARK, 1)[1].split("```yaml\n", 1)[1].split("\n```", 1)[0])


def test_the_readmes_pools_config_is_accepted_and_sizes_its_buckets(tmp_path, monkeypatch):
    texts = [json.loads(line)["text"] for line in gzip.open(embedded_path("docs"), "rt")]
    rows = [{"text": t, "score": None if i % 7 == 0 else (i * 37 % 100) / 100} for i, t in enumerate(texts)]
    (tmp_path / "crawl_scored.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.table({"text": texts[:5]}), tmp_path / "books.parquet")
    monkeypatch.chdir(tmp_path)

    cfg = config_from_dict(readme_block(), "README.md")
    spec = next(d for d in cfg.data.domains if d.name == "web")
    assert spec.quality_field == "score" and list(cfg.propose.pools) == ["web"]

    train = set(split_documents(texts, cfg.data.val_fraction, "web")[0])
    def tokens(lo, hi):
        return sum(len(r["text"].encode()) + 1 for r in rows
                   if r["text"] in train and r["score"] is not None and lo <= r["score"] < hi)
    pd = resolve_domain_pools("web", cfg.propose.pools["web"], unique_tokens=None, mean_tokens_per_doc=None, spec=spec,
                              val_fraction=cfg.data.val_fraction)
    assert [p.name for p in pd.resolved] == ["top", "mid", "low"]
    assert [p.tokens for p in pd.resolved] == [tokens(0.8, 2), tokens(0.5, 0.8), tokens(-1, 0.5)]
    assert all(p.law_source == "prior" for p in pd.resolved)  # no b/tau written: the T-MARS prior of each rank
    assert "in no quality bucket" in pd.note  # the unscored documents are said, never trained
