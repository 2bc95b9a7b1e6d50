"""Records to arrays, once: the usable-record filter, target names, curves, checkpoint rows."""

import math

import numpy as np
import pytest

from mixopt.errors import FitError
from mixopt.runs.record import RunRecord
from mixopt.runs.targets import mean_columns, resolve_target, short_names
from mixopt.runs.table import (
    budget_table,
    budget_tokens,
    canonical_target,
    records_table,
    target_curve,
    usable_records,
)


def _rec(i, metrics, curves=None, status="ok", phases=(), scale=None):
    return RunRecord(run_id=f"r{i}", mixture={"code": 0.25 + 0.1 * i, "prose": 0.75 - 0.1 * i}, status=status, metrics=metrics,
                     curves=curves or {}, phases=list(phases), scale=scale or {})


METRICS = ["val/code", "val/prose", "metric/x"]


def test_resolve_target_accepts_domain_names():
    assert resolve_target("mean:code,prose", METRICS) == (["val/code", "val/prose"], [1.0, 1.0])
    assert resolve_target("wmean:code=0.7,prose=0.3", METRICS) == (["val/code", "val/prose"], [0.7, 0.3])
    assert resolve_target("mean:val/code,prose", METRICS) == (["val/code", "val/prose"], [1.0, 1.0])
    assert resolve_target("val/code", METRICS) == (["val/code"], [1.0])
    assert resolve_target("mean:all-domains", METRICS) == (["val/code", "val/prose"], [1.0, 1.0])
    assert canonical_target("wmean:code=0.7,prose=0.3", METRICS) == "wmean:val/code=0.7,val/prose=0.3"
    with pytest.raises(FitError, match="could mean"):
        resolve_target("mean:code", ["val/code", "target/code"])
    with pytest.raises(FitError, match="does not have"):
        resolve_target("mean:cod", METRICS)
    with pytest.raises(FitError, match="not a number"):
        resolve_target("wmean:code=x", METRICS)
    with pytest.raises(FitError, match="non-negative"):
        resolve_target("wmean:code=-1,prose=2", METRICS)


def test_mean_columns_one_rule():
    assert mean_columns(["val/b", "val/a", "metric/z"]) == ["val/a", "val/b"]
    assert mean_columns(["metric/z", "loss"]) == ["metric/z"]
    assert mean_columns(["loss"]) == []


REGMIX_METRICS = [f"metric/the_pile_{d}_val_loss" for d in ("arxiv", "pubmed_central", "pubmed_abstracts", "github")]
REGMIX_DOMAINS = [f"train_the_pile_{d}" for d in ("arxiv", "pubmed_central", "pubmed_abstracts", "github", "enron_emails")]


def test_regmix_metric_names_have_short_names_and_map_to_their_domains():
    """RegMix's tables name a domain ``train_the_pile_arxiv`` and its loss ``metric/the_pile_arxiv_val_loss``: the shared
    prefix and suffix (at word boundaries, never leaving a name empty) give both the short name ``arxiv``."""
    short = short_names(REGMIX_METRICS)
    assert short["metric/the_pile_arxiv_val_loss"] == "arxiv" and short["metric/the_pile_pubmed_central_val_loss"] == "pubmed_central"
    assert short_names(REGMIX_DOMAINS)["train_the_pile_github"] == "github"
    assert short_names(["val/code", "val/prose"]) == {"val/code": "code", "val/prose": "prose"}
    assert short_names(["val/code_a", "val/code_b"]) == {"val/code_a": "a", "val/code_b": "b"}
    assert short_names(["val/ab", "val/ab_x"]) == {"val/ab": "ab", "val/ab_x": "ab_x"}  # cutting would empty one name
    assert short_names(["val/x"]) == {"val/x": "x"}
    arxiv = "metric/the_pile_arxiv_val_loss"
    for spelled in ("arxiv", "the_pile_arxiv", "the_pile_arxiv_val_loss", "train_the_pile_arxiv"):
        assert resolve_target(f"mean:{spelled},github", REGMIX_METRICS, REGMIX_DOMAINS)[0] == [arxiv, "metric/the_pile_github_val_loss"]
    with pytest.raises(FitError, match="does not have"):
        resolve_target("mean:train_the_pile_arxiv", REGMIX_METRICS)  # a domain name needs the store's domains
    with pytest.raises(FitError, match="does not have"):
        resolve_target("mean:pubmed", REGMIX_METRICS, REGMIX_DOMAINS)  # a prefix of two names is neither
    from mixopt.runs.table import RunTable

    t = RunTable(["r0"], REGMIX_DOMAINS, np.full((1, 5), 0.2), {m: np.ones(1) for m in REGMIX_METRICS}, np.full(1, 1e6), np.full(1, 1e9))
    assert t.component_domains("mean:all-domains") == [0, 3, 2, 1]  # sorted metrics: arxiv, github, abstracts, central
    assert t.component_domains("mean:arxiv") == [0]
    with pytest.raises(FitError, match="does not have"):
        t.component_domains("mean:train_the_pile_enron_emails")  # a domain without a metric


def test_usable_records_is_the_one_filter():
    recs = [_rec(0, {"val/code": 1.0}), _rec(1, {"val/code": math.nan}), _rec(2, {"val/code": 1.0}, status="failed"),
            _rec(3, {}), _rec(4, {"val/code": 2.0}, phases=[(0.0, {"code": 0.5, "prose": 0.5}), (0.5, {"code": 1.0, "prose": 0.0}),
                                                          (0.8, {"code": 0.0, "prose": 1.0})])]
    assert [r.run_id for r in usable_records(recs)] == ["r0", "r4"]
    assert [r.run_id for r in usable_records(recs, max_phases=1)] == ["r0"]


def test_target_curve_and_checkpoint_rows():
    curves = {"val/code": {"100": 4.0, "200": 3.0}, "val/prose": {"100": 5.0, "200": 4.0, "300": 3.5}}
    rec = _rec(0, {"val/code": 3.0, "val/prose": 3.5}, curves=curves, scale={"model_params": 1e6, "tokens": 300})
    assert target_curve(rec, "val/prose") == {100.0: 5.0, 200.0: 4.0, 300.0: 3.5}
    assert target_curve(rec, "mean:all-domains") == {100.0: 4.5, 200.0: 3.5}
    assert target_curve(rec, "wmean:code=3,prose=1") == pytest.approx({100.0: 4.25, 200.0: 3.25})
    assert target_curve(rec, "val/nothing") == {}
    t = records_table([rec, _rec(1, {"val/code": 2.0, "val/prose": 2.5})], checkpoints=True)
    assert t.run_ids == ["r0", "r0", "r0", "r1"]
    assert np.allclose(t.tokens[:3], [100, 200, 300]) and math.isnan(t.tokens[3])
    assert np.isnan(t.metrics["val/code"][2]) and t.metrics["val/prose"][2] == 3.5
    assert np.allclose(t.model_params[:3], 1e6) and math.isnan(t.model_params[3])
    final = records_table([rec])
    assert final.tokens.tolist() == [300.0] and final.target("mean:code,prose").tolist() == [3.25]


def test_budget_rows_are_run_ends_and_wsd_branch_budgets():
    """A WSD run measures its end and each decay branch's budget; a cosine checkpoint is not a budget of its own."""
    curves = {"val/code": {"1024": 3.0, "2048": 2.5, "4096": 2.0}}
    wsd = _rec(0, {"val/code": 2.0}, curves, scale={"model_params": 100, "tokens": 4096, "schedule": "wsd"})
    wsd.proxy = {"batch_size": 8, "block_size": 32}  # 256 tokens per step
    wsd.info = {"lr_schedule": {"name": "wsd", "branches": [[6, 8]]}}  # branch to step 8 = 2048 tokens
    cos = _rec(1, {"val/code": 2.1}, curves, scale={"model_params": 100, "tokens": 4096, "schedule": "cosine"})
    cos.info = {"lr_schedule": {"name": "cosine"}}
    assert budget_tokens(wsd) == {2048.0, 4096.0} and budget_tokens(cos) == {4096.0}
    table = budget_table([wsd, cos])
    assert sorted(zip(table.run_ids, table.tokens.tolist())) == [("r0", 2048.0), ("r0", 4096.0), ("r1", 4096.0)]
    assert table.metrics["val/code"].tolist() == [2.5, 2.0, 2.0]
