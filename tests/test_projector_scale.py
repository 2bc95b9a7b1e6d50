"""Tests of mixopt.projector.scale.ScaleProjector: stage 1 per scale, carried by a line in (log N, log D)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from mixopt.errors import FitError, MixtureError, NotFittedError
from mixopt.projector import MixtureOT, ScaleProjector, TwoStageProjector
from mixopt.surrogates.scale import scale_inputs

K = 3
B = np.array([0.6, 0.2, 1.1])  # OT amplitude per domain
C = np.array([0.3, -0.2, 0.1])  # linear mixture term


def truth(W, o, log_n, log_d=0.0):
    """Loss linear in log10 N and log10 D, with a mixture effect whose size grows with N."""
    return 4.0 - 0.3 * log_n - 0.2 * log_d + (1.0 + 0.15 * log_n) * o * (W @ B) + (1.0 - 0.1 * log_n) * (W @ C)


@pytest.fixture(scope="module")
def ot():
    rng = np.random.default_rng(0)
    src = {d: rng.normal(size=(n, 5)) + c for d, n, c in [("a", 12, 0.0), ("b", 15, 1.0), ("c", 10, -0.7)]}
    return MixtureOT(src, rng.normal(size=(14, 5)) + 0.3)


def sample(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(K), size=n)


def rows(W, ot, sizes, tokens=1e6, noise=0.0, seed=1):
    """Stacked X and y: every mixture at every model size in ``sizes`` (and ``tokens``)."""
    rng = np.random.default_rng(seed)
    o = ot.distances(W)
    X = np.vstack([scale_inputs(W, n, tokens) for n in sizes])
    y = np.concatenate([truth(W, o, np.log10(n), np.log10(tokens) - 6) + rng.normal(0, noise, len(W)) for n in sizes])
    return X, y


def test_recovers_per_scale_structure_and_extrapolates_in_log_n(ot):
    W = sample(40)
    X, y = rows(W, ot, [1e4, 1e5, 1e6], noise=0.002)
    proj = ScaleProjector(ot).fit(X, y)
    assert len(proj.stages_) == 3
    Wt = sample(25, seed=7)
    o = ot.distances(Wt)
    for n in (1e5, 1e7, 1e8):  # a trained size, then 1 and 2 decades beyond
        pred = proj.predict(scale_inputs(Wt, n, 1e6))
        err = np.abs(pred - truth(Wt, o, np.log10(n))).max()
        assert err < 0.01 + 0.01 * max(0.0, np.log10(n) - 6), (n, err)
    # the level alone would not do: the mixtures' spread at 1e8 differs from the spread at the trained sizes
    spread_big = np.ptp(truth(Wt, o, 8.0))
    assert abs(np.ptp(proj.predict(scale_inputs(Wt, 1e8, 1e6))) - spread_big) < 0.1 * spread_big


def test_std_grows_with_extrapolation_distance(ot):
    W = sample(30)
    X, y = rows(W, ot, [1e4, 1e5, 1e6], noise=0.01)
    proj = ScaleProjector(ot).fit(X, y)
    Wt = sample(10, seed=3)
    stds = [proj.predict(scale_inputs(Wt, n, 1e6), return_std=True)[1].mean() for n in (1e5, 1e6, 1e7, 1e8, 1e9)]
    assert np.all(np.diff(stds[1:]) > 0), stds
    assert stds[-1] > 2 * stds[1]


def test_two_scale_token_only_case_is_the_two_stage_projector(ot):
    W = sample(20)
    o = ot.distances(W)
    rng = np.random.default_rng(5)
    y0 = truth(W, o, 0.0) + rng.normal(0, 0.01, len(W))
    y1 = truth(W, o, 0.5) + rng.normal(0, 0.01, len(W))
    two = TwoStageProjector(ot, n0=2e5, n1=8e5, alpha=1e-3).fit(W, y0, y1)
    X = np.vstack([scale_inputs(W, None, 2e5), scale_inputs(W, None, 8e5)])  # model size unknown: tokens only
    proj = ScaleProjector(ot, alpha=1e-3, effect_alpha=0.0).fit(X, np.r_[y0, y1])
    assert proj.line_var_ == 0.0
    Wt = sample(8, seed=9)
    for d in (1e5, 4e5, 8e5, 3.2e6):
        m2, s2 = two.predict(Wt, n_tokens=d, return_std=True)
        m, s = proj.predict(scale_inputs(Wt, None, d), return_std=True)
        np.testing.assert_allclose(m, m2, rtol=0, atol=1e-10)
        np.testing.assert_allclose(s, s2, rtol=1e-10, atol=1e-12)
        v, g = proj.predict_and_grad(Wt[0], None, d)
        v2, g2 = two.predict_and_grad(Wt[0], n_tokens=d)
        assert v == pytest.approx(v2, abs=1e-10)
        np.testing.assert_allclose(g, g2, atol=1e-10)


def test_both_axes_and_line_misfit(ot):
    W = sample(30)
    o = ot.distances(W)
    grid = [(n, d) for n in (1e4, 1e5) for d in (1e6, 4e6)]
    X = np.vstack([scale_inputs(W, n, d) for n, d in grid])
    y = np.concatenate([truth(W, o, np.log10(n), np.log10(d) - 6) for n, d in grid])
    proj = ScaleProjector(ot, alpha=1e-3).fit(X, y)
    assert proj.active_.tolist() == [True, True]
    assert proj.line_var_ < 1e-8  # linear in both axes: the 4 scales lie on the plane
    Wt = sample(6, seed=2)
    pred = proj.predict(scale_inputs(Wt, 1e6, 1.6e7))
    np.testing.assert_allclose(pred, truth(Wt, ot.distances(Wt), 6.0, np.log10(1.6e7) - 6), atol=0.02)
    y_bent = y + np.concatenate([np.full(len(W), 0.05 * (i == 3)) for i in range(4)])  # an interaction at one corner
    assert ScaleProjector(ot, alpha=1e-3).fit(X, y_bent).line_var_ > 1e-4


def test_auto_effect_ridge_shrinks_noise_and_keeps_real_slopes(ot):
    W = sample(30)
    o = ot.distances(W)
    rng = np.random.default_rng(4)
    sizes = [1e4, 1e5, 1e6]
    X = np.vstack([scale_inputs(W, n, 1e6) for n in sizes])
    flat = np.concatenate([4.0 - 0.3 * np.log10(n) + o * (W @ B) + rng.normal(0, 0.02, len(W)) for n in sizes])
    steep = np.concatenate([4.0 - 0.3 * np.log10(n) + (1 + 0.8 * np.log10(n)) * o * (W @ B) for n in sizes])
    lam_flat = ScaleProjector(ot).fit(X, flat).effect_alpha_
    lam_steep = ScaleProjector(ot).fit(X, steep).effect_alpha_
    assert lam_flat > 100 * lam_steep


def test_sklearn_conventions(ot):
    est = ScaleProjector(ot, alpha=0.1, effect_alpha=0.0, min_scale_runs=4)
    assert est.get_params()["alpha"] == 0.1 and est.get_params()["min_scale_runs"] == 4
    c = clone(est)
    assert c.get_params()["effect_alpha"] == 0.0 and not hasattr(c, "stages_")
    with pytest.raises(NotFittedError, match="not fitted"):
        c.predict(scale_inputs(sample(2), 1e4, 1e6))
    W = sample(10)
    X, y = rows(W, ot, [1e4, 1e5])
    assert est.fit(X, y) is est
    assert est.n_features_in_ == K + 2
    # without a MixtureOT, OT values come with the data
    o = ot.distances(W)
    free = ScaleProjector(alpha=0.1, effect_alpha=0.0).fit(X, y, ot_values=np.r_[o, o])
    np.testing.assert_allclose(free.predict(X[:10], ot_values=o), est.predict(X[:10]), atol=1e-10)


def test_errors_are_one_line_and_name_the_fix(ot):
    W = sample(12)
    X1, y1 = rows(W, ot, [1e4])
    with pytest.raises(FitError, match="two or more scales.*One scale transfers rank only") as e:
        ScaleProjector(ot).fit(X1, y1)
    assert "\n" not in str(e.value)
    X, y = rows(W, ot, [1e4, 1e5])
    proj = ScaleProjector(ot).fit(X, y)
    with pytest.raises(MixtureError, match="weight columns"):
        proj.predict(np.column_stack([np.full((2, 4), 0.25), [1e4, 1e4], [1e6, 1e6]]))
    with pytest.raises(FitError, match="3 domains"):
        ScaleProjector(ot).fit(np.column_stack([np.full((24, 4), 0.25), X[:, -2:]]), y)
    with pytest.raises(FitError, match="OT values are needed"):
        ScaleProjector().fit(X, y)
    with pytest.raises(FitError, match="effect_alpha"):
        ScaleProjector(ot, effect_alpha=-1.0).fit(X, y)
    with pytest.raises(FitError, match="alpha"):
        ScaleProjector(ot, alpha=np.inf).fit(X, y)
    with pytest.raises(FitError, match="one scale transfers"):
        ScaleProjector(ot).fit(*rows(W, ot, [1e4, 1e5])).check_target_scale(tokens=1e7)
