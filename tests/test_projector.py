"""Tests of mixopt.projector: features, OT of mixtures with gradients, stage 1/2, search, pool scoring."""

from __future__ import annotations

import numpy as np
import pytest

from mixopt.errors import ConvergenceError, DataError, FitError, MixtureError, NotFittedError
from mixopt.projector import (FeatureCache, HashingFeaturizer, MixtureOT, OTProjector, ProxyHiddenFeaturizer,
                              TwoStageProjector, featurize, score_pools)

VOCABS = {
    "cooking": "flour sugar butter oven bake whisk recipe salt pepper onion garlic simmer boil fry pan dough".split(),
    "code": "def return import class self lambda yield for while if else try except print list dict".split(),
    "legal": "court plaintiff defendant statute hereby pursuant clause contract liability appeal judge ruling".split(),
}


def make_docs(domain: str, n: int, seed: int, length: int = 60) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = VOCABS[domain]
    probs = rng.dirichlet(np.ones(len(vocab)) * 5)
    return [" ".join(rng.choice(vocab, size=length, p=probs)) for _ in range(n)]


@pytest.fixture(scope="module")
def clusters():
    rng = np.random.default_rng(0)
    src = {d: rng.normal(size=(n, 6)) + c for d, n, c in [("a", 20, 0.0), ("b", 30, 1.0), ("c", 25, -0.7)]}
    tgt = rng.normal(size=(35, 6)) + 0.3
    return src, tgt


def random_direction(rng, k):
    d = rng.normal(size=k)
    return d - d.mean()


# ------------------------------------------------------------------ features

def test_hashing_featurizer_deterministic_normalised_and_similar_texts_close():
    f = HashingFeaturizer(dim=64, seed=3)
    docs = ["the cat sat on the mat", "the cat sat on a mat", "def f(x): return x + 1", ""]
    x = f.transform(docs)
    assert x.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(x[:3], axis=1), 1.0)
    assert np.all(x[3] == 0)
    np.testing.assert_array_equal(x, HashingFeaturizer(dim=64, seed=3).transform(docs))
    assert x[0] @ x[1] > x[0] @ x[2] + 0.3


def test_feature_cache_roundtrip(tmp_path):
    docs = make_docs("code", 5, 0)
    f = HashingFeaturizer(dim=32)
    cache = FeatureCache(tmp_path)
    first = featurize(docs, f, cache)
    second = featurize(docs, f, cache)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, f.transform(docs))
    assert FeatureCache.key("x", f.identity) != FeatureCache.key("x", HashingFeaturizer(dim=16).identity)


class _NaNFeaturizer:
    identity = "nan-test"

    def transform(self, docs):
        out = np.ones((len(docs), 4))
        out[-1, 0] = np.nan
        return out


def test_nan_features_raise_data_error():
    with pytest.raises(DataError, match="finite"):
        featurize(["a", "b"], _NaNFeaturizer())


def test_proxy_hidden_featurizer_with_stand_in_model():
    torch = pytest.importorskip("torch")

    class TinyCausal(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.emb = torch.nn.Embedding(300, 8)

        def forward_hidden(self, idx):  # (B, T) -> (B, T, C); per-position, so trivially causal
            return self.emb(idx)

    model = TinyCausal()
    feat = ProxyHiddenFeaturizer(model, lambda s: list(s.encode()), batch_size=2)
    x = feat.transform(["ab", "abcd", "z"])
    assert x.shape == (3, 8)
    expected = model.emb.weight[torch.tensor(list(b"abcd"))].mean(0).detach().double().numpy()
    np.testing.assert_allclose(x[1], expected, atol=1e-6)
    assert feat.identity.startswith("proxy-hidden:")


# ------------------------------------------------------------------ OT of mixtures

@pytest.mark.parametrize("method", ["emd", "sinkhorn"])
@pytest.mark.parametrize("p", [[0.3, 0.5, 0.2], [0.0, 0.6, 0.4]])
def test_gradient_matches_finite_differences_along_simplex(clusters, method, p):
    src, tgt = clusters
    mot = MixtureOT(src, tgt, method=method, reg=0.05)
    p = np.array(p)
    value, grad = mot.distance_and_grad(p)
    assert np.isfinite(value) and abs(grad.sum()) < 1e-9
    rng = np.random.default_rng(1)
    h = 1e-6
    for _ in range(3):
        if p.min() > 0:
            d = random_direction(rng, 3)
            fd = (mot.objective(p + h * d) - mot.objective(p - h * d)) / (2 * h)
        else:  # on the boundary: feasible one-sided directions
            d = np.array([1.0, -rng.uniform(), 0.0])
            d[2] = -1.0 - d[1]
            fd = (mot.objective(p + h * d) - mot.objective(p)) / h
        assert grad @ d == pytest.approx(fd, rel=2e-3, abs=2e-5)


@pytest.mark.parametrize("p", [[0.3, 0.5, 0.2], [0.0, 0.6, 0.4]])
def test_sinkhorn_log_domain_gives_the_same_value_and_gradient(clusters, p):
    src, tgt = clusters
    v1, g1 = MixtureOT(src, tgt, method="sinkhorn").distance_and_grad(p)
    v2, g2 = MixtureOT(src, tgt, method="sinkhorn", sinkhorn_method="sinkhorn_log").distance_and_grad(p)
    assert v1 == pytest.approx(v2, rel=1e-6)
    np.testing.assert_allclose(g1, g2, atol=1e-6)


def test_cost_matrix_is_reused_across_mixtures(clusters):
    import ot

    src, tgt = clusters
    mot = MixtureOT(src, tgt)
    cost_id = id(mot.cost)
    W = np.random.default_rng(2).dirichlet(np.ones(3), size=8)
    values = mot.distances(W)
    assert id(mot.cost) == cost_id and values.shape == (8,)
    for w, v in zip(W, values):
        assert v == pytest.approx(ot.emd2(mot.source_weights(w), np.full(35, 1 / 35), mot.cost), rel=1e-9)
    assert mot.distance({"a": 0.3, "b": 0.7}) == pytest.approx(mot.distance([0.3, 0.7, 0.0]))


def test_mixture_errors(clusters):
    src, tgt = clusters
    mot = MixtureOT(src, tgt)
    with pytest.raises(MixtureError, match="no samples"):
        mot.distance({"a": 0.5, "zzz": 0.5})
    with pytest.raises(MixtureError, match="shape"):
        mot.distance([0.5, 0.5])
    with pytest.raises(MixtureError, match="sum to 1"):
        mot.distance([0.5, 0.5, 0.5])
    with pytest.raises(DataError, match="0 samples"):
        MixtureOT({"a": np.zeros((0, 6))}, tgt)
    with pytest.raises(DataError, match="0 samples"):
        MixtureOT(src, np.zeros((0, 6)))


def test_sinkhorn_non_convergence_raises(clusters):
    src, tgt = clusters
    mot = MixtureOT(src, tgt, method="sinkhorn", reg=1e-3, num_itermax=3)
    with pytest.raises(ConvergenceError, match="reg"):
        mot.distance([0.2, 0.3, 0.5])


# ------------------------------------------------------------------ stage 1 / stage 2

def _synthetic_runs(mot, n, seed, coef):
    W = np.random.default_rng(seed).dirichlet(np.ones(3), size=n)
    o = mot.distances(W)
    k = 3
    b2, b1, b0, c2, c1, c0 = coef[:k], coef[k:2 * k], coef[2 * k], coef[2 * k + 1:3 * k + 1], coef[3 * k + 1:4 * k + 1], coef[-1]
    y = (W**2 @ b2 + W @ b1 + b0) * o + W**2 @ c2 + W @ c1 + c0
    return W, o, y


def test_stage1_recovers_law_on_synthetic_runs(clusters):
    src, tgt = clusters
    mot = MixtureOT(src, tgt)
    coef = np.array([0.5, -0.3, 0.2, 0.1, 0.4, -0.2, 2.0, 0.3, 0.1, -0.2, 0.2, 0.0, -0.1, 3.0])
    W, o, y = _synthetic_runs(mot, 40, 0, coef)
    proj = OTProjector(mot, alpha=1e-8).fit(W, y, ot_values=o)
    W_test, o_test, y_test = _synthetic_runs(mot, 10, 1, coef)
    mean, std = proj.predict(W_test, return_std=True, ot_values=o_test)
    np.testing.assert_allclose(mean, y_test, atol=1e-4)
    assert std.shape == (10,) and np.all(std >= 0)
    np.testing.assert_allclose(proj.predict(W_test[:3]), mean[:3], atol=1e-9)  # OT computed internally
    assert set(proj.get_params()) == {"ot", "alpha"}


def test_stage2_extrapolation_is_exact_for_log_linear_losses(clusters):
    src, tgt = clusters
    mot = MixtureOT(src, tgt)
    W = np.random.default_rng(3).dirichlet(np.ones(3), size=30)
    o = mot.distances(W)
    a = 3.0 + 0.5 * o + W[:, 0] ** 2  # L(N, p) = a(p) + b(p) ln N, each in the stage-1 family
    b = -0.1 - 0.05 * o * W[:, 1]
    n0, n1, n = 1e6, 4e6, 1e9
    proj = TwoStageProjector(mot, n0=n0, n1=n1, alpha=1e-10).fit(W, a + b * np.log(n0), a + b * np.log(n1), ot_values=o)
    pred, std = proj.predict(W, n_tokens=n, return_std=True, ot_values=o)
    np.testing.assert_allclose(pred, a + b * np.log(n), atol=1e-4)
    np.testing.assert_allclose(proj.predict(W, n_tokens=n0, ot_values=o), a + b * np.log(n0), atol=1e-5)
    assert np.all(np.isfinite(std))


def test_projectors_are_sklearn_estimators(clusters):
    from sklearn.base import BaseEstimator, clone

    src, tgt = clusters
    mot = MixtureOT(src, tgt)
    two = TwoStageProjector(mot, n0=1e6, n1=4e6)
    assert isinstance(two, BaseEstimator) and isinstance(OTProjector(), BaseEstimator)
    assert two.get_params() == {"ot": mot, "n0": 1e6, "n1": 4e6, "alpha": 1e-3}
    assert two.set_params(n1=8e6, alpha=0.1) is two and (two.n1, two.alpha) == (8e6, 0.1)
    with pytest.raises(ValueError, match="Invalid parameter 'n2'"):
        two.set_params(n2=1.0)
    copy = clone(two)
    assert copy.get_params()["n1"] == 8e6 and copy.ot is not mot and copy.ot.domains == mot.domains
    assert "TwoStageProjector(" in repr(two) and "OTProjector(alpha=0.5)" == repr(OTProjector(alpha=0.5))
    with pytest.raises(NotFittedError, match="not fitted"):
        two.predict(np.full((1, 3), 1 / 3), n_tokens=1e7)


def test_checkpoint_losses_reads_run_records():
    from mixopt.projector import checkpoint_losses
    from mixopt.runs.record import RunRecord

    records = [RunRecord(run_id="a", mixture={"t": 1.0}, status="ok", curves={"val/t": {"262144": 3.2, "524288": 3.0}}),
               RunRecord(run_id="b", mixture={"t": 1.0}, status="ok", curves={"val/t": {"262144": 3.5}})]
    np.testing.assert_allclose(checkpoint_losses(records, "val/t", 262144), [3.2, 3.5])
    with pytest.raises(DataError, match="Run 1"):
        checkpoint_losses(records, "val/t", 524288)


def test_store_projector_learns_each_checkpoint_under_the_shares_trained_by_then(clusters):
    """A two-phase run's end loss belongs to its whole-run shares, as in every surrogate (it was learnt under phase 0);
    its loss at an earlier checkpoint before the switch belongs to phase 0. Single-phase runs: one mixture for both."""
    from mixopt.projector.from_runs import fit_store_projector
    from mixopt.runs.record import RunRecord

    src, tgt = clusters
    rng = np.random.default_rng(5)
    records, W0, W1 = [], [], []
    for i in range(12):
        w0, w1 = rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3))
        phases = [[0.0, dict(zip("abc", w0))]] + ([[0.75, dict(zip("abc", w1))]] if i % 2 else [])
        end = 0.75 * w0 + 0.25 * w1 if i % 2 else w0
        records.append(RunRecord(run_id=f"r{i}", mixture=dict(zip("abc", w0)), status="ok", phases=phases,
                                 scale={"tokens": 4_000_000},
                                 curves={"val/t": {"1000000": 4.0 - w0[0], "2000000": 3.6 - w0[0], "4000000": 3.0 - end[0] + end[1] ** 2}}))
        W0.append(w0), W1.append(end)
    proj = fit_store_projector(records, ["a", "b", "c"], "val/t", src, tgt)
    assert (proj.n0, proj.n1) == (2e6, 4e6)
    mot = MixtureOT(src, tgt)
    y0 = np.array([r.curves["val/t"]["2000000"] for r in records])
    y1 = np.array([r.curves["val/t"]["4000000"] for r in records])
    np.testing.assert_allclose(proj.stage1_.coef_, OTProjector(mot).fit(np.array(W1), y1).coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(proj.stage0_.coef_, OTProjector(mot).fit(np.array(W0), y0).coef_, rtol=1e-6, atol=1e-9)

    from mixopt.projector.from_runs import seen_shares
    rec = records[1]
    assert seen_shares(rec, 2e6, "val/t") == pytest.approx(rec.mixture)  # before the switch at 3e6: phase 0
    assert seen_shares(rec, 4e6, "val/t") == pytest.approx(rec.overall_mixture())
    unscaled = RunRecord(run_id="x", mixture=rec.mixture, status="ok", phases=rec.phases, curves=rec.curves)
    b = [w["b"] for _, w in rec.phases]
    assert seen_shares(unscaled, 3.5e6, "val/t")["b"] == pytest.approx(b[0] * 6 / 7 + b[1] / 7)  # no scale: the last checkpoint ends it


def test_projector_input_validation(clusters):
    src, tgt = clusters
    mot = MixtureOT(src, tgt)
    with pytest.raises(NotFittedError):
        OTProjector(mot).predict(np.array([[0.2, 0.3, 0.5]]))
    with pytest.raises(FitError, match="columns"):
        OTProjector(mot).fit(np.full((5, 2), 0.5), np.ones(5))
    with pytest.raises(FitError, match="shape"):
        OTProjector(mot).fit(np.full((5, 3), 1 / 3), np.ones(4))
    with pytest.raises(MixtureError, match="row 1 of W"):
        OTProjector(mot).fit(np.array([[1 / 3] * 3, [0.5, 0.5, 0.5], [1, 0, 0.0]]), np.ones(3))
    with pytest.raises(FitError, match="n0 < n1"):
        TwoStageProjector(mot, n0=5, n1=2).fit(np.full((5, 3), 1 / 3), np.ones(5), np.ones(5))


# ------------------------------------------------------------------ search

@pytest.mark.parametrize("stage", [1, 2])
def test_projector_gradient_matches_finite_differences(clusters, stage):
    src, tgt = clusters
    mot = MixtureOT(src, tgt)
    W = np.random.default_rng(6).dirichlet(np.ones(3), size=25)
    o = mot.distances(W)
    y = 2.0 + 1.5 * o * W[:, 0] + 0.3 * W[:, 2] ** 2
    if stage == 1:
        proj = OTProjector(mot, alpha=1e-3).fit(W, y, ot_values=o)
        fun, predict = proj.predict_and_grad, lambda p: proj.predict(p[None, :])[0]
    else:
        proj = TwoStageProjector(mot, n0=1e6, n1=2e6).fit(W, y, y - 0.1 * o, ot_values=o)
        fun, predict = (lambda p: proj.predict_and_grad(p, 1e8)), (lambda p: proj.predict(p[None, :], n_tokens=1e8)[0])
    p = np.array([0.3, 0.45, 0.25])
    value, grad = fun(p)
    assert value == pytest.approx(predict(p))
    d = random_direction(np.random.default_rng(7), 3)
    h = 1e-6
    assert grad @ d == pytest.approx((predict(p + h * d) - predict(p - h * d)) / (2 * h), rel=2e-3, abs=1e-5)


# ------------------------------------------------------------------ pool scoring

def test_pool_ranking_same_domain_before_blend_before_unrelated():
    target = make_docs("cooking", 30, 10)
    same, other = make_docs("cooking", 30, 11), make_docs("legal", 30, 12)
    blend = same[:15] + other[:15]
    pools = {"same": same, "blend": blend, "unrelated": other}
    ranked = score_pools(pools, target, featurizer=HashingFeaturizer(dim=64))
    assert [r["pool"] for r in ranked] == ["same", "blend", "unrelated"]
    ot_of = {r["pool"]: r["ot_distance"] for r in ranked}
    assert ot_of["same"] < ot_of["blend"] < ot_of["unrelated"]
    assert ranked[0]["projected_by"] == "ot" and ranked[0]["best_weight"] == 1.0
    assert ranked[0]["unique_tokens_estimate"] == sum(len(d.encode()) for d in same)


def test_pool_ot_distance_does_not_depend_on_other_pools():
    target = make_docs("cooking", 20, 30)
    pools = {"a": make_docs("cooking", 20, 31), "b": make_docs("code", 20, 32), "c": make_docs("legal", 5, 33)}
    feat = HashingFeaturizer(dim=32)
    together = {r["pool"]: r["ot_distance"] for r in score_pools(pools, target, featurizer=feat)}
    for name in pools:
        alone = score_pools({name: pools[name]}, target, featurizer=feat)[0]["ot_distance"]
        assert alone == pytest.approx(together[name], rel=1e-12)


def test_pool_scoring_with_base_mixture_picks_weights():
    target = make_docs("cooking", 24, 20)
    base = {"code": make_docs("code", 20, 21), "legal": make_docs("legal", 20, 22)}
    pools = {"cook": make_docs("cooking", 20, 23), "more_code": make_docs("code", 20, 24)}
    ranked = score_pools(pools, target, base_docs=base, featurizer=HashingFeaturizer(dim=64), grid=11,
                         pool_doc_counts={"cook": 2000}, tokens_of=lambda s: len(s.split()))
    by = {r["pool"]: r for r in ranked}
    assert ranked[0]["pool"] == "cook"
    assert by["cook"]["best_weight"] > 0.8
    assert by["cook"]["projected_metric"] <= by["cook"]["ot_distance"] + 1e-9
    assert by["cook"]["unique_tokens_estimate"] == pytest.approx(60 * 2000)


def test_pool_scoring_errors():
    target = make_docs("cooking", 5, 0)
    with pytest.raises(DataError, match="pool 'empty'"):
        score_pools({"empty": []}, target)
    with pytest.raises(DataError, match="target_docs"):
        score_pools({"p": target}, [])


def test_pool_scoring_with_fitted_projector():
    target = make_docs("cooking", 20, 40)
    docs = {"code": make_docs("code", 20, 41), "cooking": make_docs("cooking", 20, 42), "legal": make_docs("legal", 20, 43)}
    feat = HashingFeaturizer(dim=32)
    mot = MixtureOT({d: featurize(v, feat) for d, v in docs.items()}, featurize(target, feat))
    W = np.random.default_rng(5).dirichlet(np.ones(3), size=20)
    o = mot.distances(W)
    proj = OTProjector(mot).fit(W, 2.0 + o, ot_values=o)
    ranked = score_pools({"cooking": docs["cooking"]}, target, base_mixture={"code": 0.5, "legal": 0.5},
                         projector=proj, featurizer=feat, grid=6)
    assert ranked[0]["projected_by"] == "projector" and ranked[0]["best_weight"] > 0.5
    with pytest.raises(MixtureError, match="only knows domains"):
        score_pools({"new_pool": docs["cooking"]}, target, base_mixture={"code": 1.0}, projector=proj, featurizer=feat)
    two = TwoStageProjector(mot, n0=1e6, n1=4e6).fit(W, 2.0 + o, 1.9 + o, ot_values=o)
    from mixopt.errors import ConfigError
    with pytest.raises(ConfigError, match="budget_tokens"):
        score_pools({"cooking": docs["cooking"]}, target, base_mixture={"code": 1.0}, projector=two, featurizer=feat)


def test_sentence_transformer_featurizer_needs_local_path_and_extra(tmp_path, monkeypatch):
    import sys

    from mixopt.errors import MissingExtraError
    from mixopt.projector import SentenceTransformerFeaturizer

    with pytest.raises(DataError, match="locally"):
        SentenceTransformerFeaturizer(str(tmp_path / "missing")).transform(["x"])
    # make the optional package unimportable whether or not it is installed, so the check always runs
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'mixopt\[embeddings\]'"):
        SentenceTransformerFeaturizer(str(tmp_path)).transform(["x"])
