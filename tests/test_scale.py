"""Scale-aware surrogates: fit across scales, predict at a held-out larger scale, std grows with extrapolation."""

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from mixopt.errors import FitError, MixtureError, NotFittedError
from mixopt.surrogates import get_estimator
from mixopt.surrogates.nested_law import NestedMixingLaw
from mixopt.surrogates.scale import ScaleGP, held_out_scale_cv, scale_inputs, split_inputs


def _truth(W, n):
    """A loss surface whose mixture effect changes with model size: the larger model gains more from domain 2."""
    s = np.log10(n / 1e6)
    return 4.0 - 0.4 * s + 0.8 * (W[:, 0] - 0.3) ** 2 - (0.3 + 0.25 * s) * W[:, 2] + 0.2 * np.sin(4 * W[:, 1])


@pytest.fixture(scope="module")
def two_scales():
    rng = np.random.default_rng(0)
    W_small = rng.dirichlet(np.ones(3), 60)
    W_big = rng.dirichlet(np.ones(3), 40)
    noise = lambda k: rng.normal(0, 0.005, k)  # noqa: E731
    X = np.vstack([scale_inputs(W_small, 1e6, 1e8), scale_inputs(W_big, 1e7, 1e8)])
    y = np.r_[_truth(W_small, 1e6) + noise(60), _truth(W_big, 1e7) + noise(40)]
    return X, y


def test_scale_gp_predicts_the_larger_scale(two_scales):
    X, y = two_scales
    tr = np.r_[np.arange(60), 60 + np.arange(25)]
    te = 60 + np.arange(25, 40)
    model = ScaleGP().fit(X[tr], y[tr])
    mu, sd = model.predict(X[te], return_std=True)
    assert spearmanr(mu, y[te])[0] > 0.9 and np.mean(np.abs(mu - y[te])) < 0.05
    # the small-scale-only fit ranks the large scale worse: the mixture effect changed with size
    small = get_estimator("default").fit(X[:60, :3], y[:60])
    assert spearmanr(mu, y[te])[0] > spearmanr(small.predict(X[te, :3]), y[te])[0]
    assert np.all(sd > 0) and np.mean(np.abs(mu - y[te]) <= 2 * sd) >= 0.8


def test_std_grows_with_extrapolation_distance(two_scales):
    X, y = two_scales
    model = ScaleGP().fit(X, y)
    W = X[:5, :3]
    stds = [model.predict(scale_inputs(W, n, 1e8), return_std=True)[1].mean() for n in (1e7, 1e8, 1e9, 1e10)]
    assert all(a < b for a, b in zip(stds, stds[1:]))
    # tokens were never varied: another budget is an extrapolation too
    assert model.predict(scale_inputs(W, 1e7, 1e10), return_std=True)[1].mean() > stds[0]
    # predicted loss falls with model size, as trained
    means = [model.predict(scale_inputs(W, n, 1e8)).mean() for n in (1e6, 1e7, 1e8)]
    assert means[0] > means[1] > means[2]


def test_nested_law_and_offsets_variant(two_scales):
    X, y = two_scales
    for est in (NestedMixingLaw(), ScaleGP(length_scale=np.inf)):
        cv = held_out_scale_cv(est, X, y, k=4, seed=0)
        assert cv["largest_scale"] == pytest.approx((1e7, 1e8))
        assert len(cv["oof_pred"]) == 40 and cv["spearman"] > 0.5 and np.all(cv["oof_std"] > 0)
    law = NestedMixingLaw().fit(X, y)
    mu, sd = law.predict(scale_inputs(X[:3, :3], 1e8, 1e8), return_std=True)  # beyond both scales: a line in log N
    assert np.all(mu < y[:3]) and np.all(sd > law.predict(X[:3], return_std=True)[1])


def test_held_out_scale_cv_and_clone(two_scales):
    X, y = two_scales
    cv = held_out_scale_cv(ScaleGP(), X, y, k=4, seed=1)
    assert cv["spearman"] > 0.9 and 0 <= cv["regret_at_1"] < 0.05 and set(cv["fold"]) == {0, 1, 2, 3}
    assert cv["pearson"] > 0.9  # fit's CV table shows it, as for one-scale fits (it was "-")
    assert clone(ScaleGP(length_scale=2.0)).get_params()["length_scale"] == 2.0
    with pytest.raises(FitError, match="one"):
        held_out_scale_cv(ScaleGP(), X[:60], y[:60])


def test_held_out_scale_cv_counts_the_largest_scales_mixtures_not_its_runs(two_scales):
    """Folds deal whole mixture groups: 40 runs of 3 mixtures at the largest scale cannot fill k=4 folds (it used to leave
    a fold empty and fail on argmin of an empty array); 1 mixture there cannot be held out at all."""
    X, y = two_scales
    groups = np.r_[np.arange(60), 100 + np.arange(40) % 3]
    with pytest.raises(FitError, match="has 40 runs of 3 distinct mixtures, fewer than k=4 folds"):
        held_out_scale_cv(ScaleGP(), X, y, k=4, groups=groups)
    assert held_out_scale_cv(ScaleGP(), X, y, k=3, groups=groups)["k"] == 3
    with pytest.raises(FitError, match=r"\(1e\+07 params x 1e\+08 tokens\) has 40 run\(s\) of 1 mixture; .* 2\+ distinct"):
        held_out_scale_cv(ScaleGP(), X, y, k=2, groups=np.r_[np.arange(60), np.full(40, 100)])


def test_bad_scale_inputs(two_scales):
    X, y = two_scales
    with pytest.raises(NotFittedError):
        ScaleGP().predict(X)
    bad = X.copy()
    bad[0, 3] = -1.0
    with pytest.raises(FitError, match="model_params must be positive"):
        ScaleGP().fit(bad, y)
    part = X.copy()
    part[:10, 4] = np.nan
    with pytest.raises(FitError, match="known for some runs"):
        ScaleGP().fit(part, y)
    with pytest.raises(MixtureError, match="n_domains \\+ 2"):
        split_inputs(X[:, :2])
    model = ScaleGP().fit(X, y)
    with pytest.raises(MixtureError, match="weight columns"):
        model.predict(np.column_stack([X[:, :3], X[:, :1] * 0, X[:, 3:]]))
    # unknown scales (NaN everywhere) are inactive: a one-scale store still fits
    one = scale_inputs(X[:60, :3], None, None)
    assert np.isfinite(ScaleGP().fit(one, y[:60]).predict(one)).all()


def test_target_scale_checks(two_scales):
    X, y = two_scales
    gp = ScaleGP().fit(X, y)
    gp.check_target_scale(model_params=1e9, tokens=1e8)
    gp.check_target_scale(model_params=1e5)  # a GP extrapolates downwards too, with a growing std
    with pytest.raises(FitError, match="one scale transfers"):
        gp.check_target_scale(tokens=1e10)  # tokens were never varied
    with pytest.raises(FitError, match="positive"):
        gp.check_target_scale(model_params=-3)
    law = NestedMixingLaw().fit(X, y)
    with pytest.raises(FitError, match="below the smallest"):
        law.check_target_scale(model_params=1e5)
    one = ScaleGP().fit(scale_inputs(X[:60, :3], 1e6, None), y[:60])
    with pytest.raises(FitError, match="--model-params 6e\\+07.*rank"):
        one.check_target_scale(model_params=6e7)
    one.check_target_scale(model_params=1e6)


def test_measured_noise_is_used(two_scales):
    X, y = two_scales
    model = ScaleGP(noise_variance=0.01**2).fit(X, y)
    assert model.sn2_ * model.y_scale_**2 >= 1e-4 * (1 - 1e-6)  # the measured seed noise is the white noise's floor
    loose = ScaleGP(noise_variance=1e-12).fit(X, y)  # a floor far below the misfit: the fit raises the white noise above it
    assert 5e-6 < loose.sn2_ * loose.y_scale_**2 < 1e-4  # near the data's noise variance (0.005^2 = 2.5e-5)
    assert model.base_.noise_variance == pytest.approx(1e-4)
