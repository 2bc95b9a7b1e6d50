"""ScaleGP's level-curvature term: honest intervals one size beyond the trained ones, gradients, covariance."""

import numpy as np
import pytest
from scipy.optimize import check_grad

from mixopt.errors import FitError
from mixopt.surrogates.scale import ScaleGP, scale_inputs, split_inputs


def _level(n, alpha=0.3):
    """A loss that bends in log N, as real ones do: E + A N^-alpha (0.47 at 1e6, 0.24 at 1e7, 0.12 at 1e8)."""
    return 2.0 + 30.0 * n ** -alpha


def _effect(W):
    return 0.3 * (W[:, 0] - 0.3) ** 2 - 0.15 * W[:, 2] + 0.05 * np.sin(4 * W[:, 1])


def _runs(sizes, counts, seed=0, alpha=0.3, tokens=1e8):
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), sum(counts))
    N = np.repeat(sizes, counts).astype(float)
    y = _level(N, alpha) + _effect(W) + rng.normal(0, 0.005, len(N))
    return scale_inputs(W, N, tokens), y


@pytest.fixture(scope="module")
def two_sizes():
    return _runs([1e6, 1e7], [40, 30])


def _objective_parts(model, X, y):
    W, S = split_inputs(X)
    Uall = model._u(S)
    U = Uall[:, model.active_]
    q = U.shape[1]
    D2 = np.stack([(U[:, j, None] - U[None, :, j]) ** 2 for j in range(q)])
    UU = np.stack([U[:, j, None] * U[None, :, j] for j in range(q)])
    Q = model._quad(Uall)[:, model.active_]
    QQ = np.stack([Q[:, j, None] * Q[None, :, j] for j in range(q)])
    return model._kw(W, W), D2, UU, QQ, (y - model.y_mean_) / model.y_scale_


@pytest.mark.parametrize("curvature", [None, 0.35])
@pytest.mark.parametrize("sizes", [(1e6, 1e7), (1e6, 1e7, 1e8)])
def test_objective_gradient_is_exact(curvature, sizes):
    X, y = _runs(list(sizes), [12] * len(sizes))
    X[::2, -1] = 3e8  # two token budgets: both scale dimensions active
    model = ScaleGP(curvature=curvature, base_params={"n_restarts": 0}).fit(X, y)
    args = _objective_parts(model, X, y)
    rng = np.random.default_rng(1)
    for theta in (model.theta_, model.theta_ + rng.normal(0, 0.3, len(model.theta_))):
        err = check_grad(lambda t: model._objective(t, *args)[0], lambda t: model._objective(t, *args)[1], theta, epsilon=1e-6)
        assert err < 1e-4 * max(1.0, np.linalg.norm(model._objective(theta, *args)[1]))


def test_two_sizes_fit_and_trained_scales_unchanged(two_sizes):
    """With two trained sizes the term is 0 on every training row: fit, means and the std at trained scales stay as before."""
    X, y = two_sizes
    old, new = ScaleGP(curvature=None).fit(X, y), ScaleGP().fit(X, y)
    assert new.curvature == 0.35 and new.v_[0] > 0 and new.v_[1] == 0  # tokens inactive: no curvature there
    np.testing.assert_allclose(new.alpha_, old.alpha_, rtol=1e-4, atol=1e-6)
    for n in (1e6, 1e7, 1e8, 1e9):
        Xq = scale_inputs(X[:10, :3], n, 1e8)
        np.testing.assert_allclose(new.predict(Xq), old.predict(Xq), atol=1e-4)
    for n in (1e6, 1e7):
        Xq = scale_inputs(X[:10, :3], n, 1e8)
        np.testing.assert_allclose(new.predict(Xq, return_std=True)[1], old.predict(Xq, return_std=True)[1], rtol=1e-3)
    grow = [new.predict(scale_inputs(X[:10, :3], n, 1e8), return_std=True)[1].mean()
            / old.predict(scale_inputs(X[:10, :3], n, 1e8), return_std=True)[1].mean() for n in (3e7, 1e8, 1e9)]
    assert 1.0 < grow[0] < grow[1] < grow[2]  # wider beyond the trained sizes, more so further out


def test_curved_level_is_covered_one_size_beyond(two_sizes):
    """A power-law level bends away from the line through two sizes; the old std did not hold the miss, the new one does."""
    X, y = two_sizes
    rng = np.random.default_rng(5)
    W = rng.dirichlet(np.ones(3), 40)
    Xt = scale_inputs(W, 1e8, 1e8)
    yt = _level(np.full(40, 1e8)) + _effect(W)
    cover = {}
    for c in (None, 0.35):
        mu, sd = ScaleGP(curvature=c).fit(X, y).predict(Xt, return_std=True)
        cover[c] = (np.mean(np.abs(mu - yt) <= sd), np.mean(np.abs(mu - yt) <= 2 * sd))
    # the straight line misses the level by 0.12 (the same miss for every mixture, so coverage is all or nothing):
    # the old std (0.01) covers none of it, the curvature term's (0.12) covers it within 2σ
    assert cover[None][1] < 0.5
    assert cover[0.35][1] >= 0.9


def test_three_sizes_leave_the_curvature_to_its_prior():
    """The term is 0 at every trained scale, so data never fit it: with three sizes v_j stays at its prior median and
    the mean beyond the trained sizes keeps falling with N (a fitted quadratic turned it upward; budget_transfer.py)."""
    X, y = _runs([1e5, 1e6, 1e7], [20, 20, 20], alpha=0.3)
    model = ScaleGP().fit(X, y)
    assert model.v_[0] / (model.b_[0] * model.curvature**2) == pytest.approx(1.0, rel=1e-3)
    Wq = X[:5, :3]
    means = [model.predict(scale_inputs(Wq, n, 1e8)).mean() for n in (1e7, 1e8, 1e9)]
    assert means[0] > means[1] > means[2]
    sds = [model.predict(scale_inputs(Wq, n, 1e8), return_std=True)[1].mean() for n in (1e7, 1e8, 1e9)]
    assert sds[0] < sds[1] < sds[2]


def _budget_runs(budgets, per_budget=20, seed=0):
    """One model size at several token budgets; the level falls as a power law in D (exponent 0.3), as Chinchilla's."""
    rng = np.random.default_rng(seed)
    W = np.tile(rng.dirichlet(np.ones(3), per_budget), (len(budgets), 1))
    D = np.repeat(np.asarray(budgets, dtype=float), per_budget)
    y = 2.0 + 40.0 * D ** -0.3 + _effect(W) + rng.normal(0, 0.003, len(D))
    return scale_inputs(W, 1e6, D), y


def test_token_power_law_extrapolates_the_budget():
    """Fitted at 125k-500k tokens, predict 2M: the power-law trend in tokens keeps the level; linear in log D overshoots."""
    X, y = _budget_runs([1.25e5, 2.5e5, 5e5])
    Xq, yq = _budget_runs([2e6], seed=0)
    err = {}
    for beta in (0.3, None):
        mu, sd = ScaleGP(token_exponent=beta).fit(X, y).predict(Xq, return_std=True)
        err[beta] = np.abs(mu - yq).mean()
        if beta:
            assert np.mean(np.abs(mu - yq) <= 2 * sd) >= 0.9
    assert err[0.3] < 0.02 and err[0.3] < 0.5 * err[None]


@pytest.mark.parametrize("bad", [-0.1, float("nan"), "big"])
def test_bad_token_exponent(two_sizes, bad):
    X, y = two_sizes
    with pytest.raises(FitError, match="token_exponent must be a positive number"):
        ScaleGP(token_exponent=bad).fit(X, y)


def test_model_pickled_before_token_exponent_keeps_log_tokens():
    import pickle
    X, y = _budget_runs([1.25e5, 5e5])
    model = ScaleGP(token_exponent=None).fit(X, y)
    state = dict(model.__getstate__())
    del state["token_exponent"]  # what a model pickled before the parameter existed lacks
    old = ScaleGP.__new__(ScaleGP)
    old.__setstate__(state)
    assert old.token_exponent is None
    np.testing.assert_allclose(pickle.loads(pickle.dumps(old)).predict(X[:5]), model.predict(X[:5]))


def test_covariance_shares_the_level(two_sizes):
    X, y = two_sizes
    model = ScaleGP().fit(X, y)
    Xq = scale_inputs(X[:5, :3], 1e9, 1e8)
    mu, sd = model.predict(Xq, return_std=True)
    mu2, C = model.predict(Xq, return_cov=True)
    np.testing.assert_allclose(mu2, mu, atol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(C)), sd, rtol=1e-8)
    diff_sd = np.sqrt(C[0, 0] + C[1, 1] - 2 * C[0, 1])
    assert diff_sd < 0.3 * np.sqrt(sd[0] ** 2 + sd[1] ** 2)  # two decades beyond the data, the level is uncertain; a difference is not
    with pytest.raises(FitError, match="either the std or the covariance"):
        model.predict(Xq, return_std=True, return_cov=True)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), "big"])
def test_bad_curvature(two_sizes, bad):
    X, y = two_sizes
    with pytest.raises(FitError, match="curvature must be a positive number"):
        ScaleGP(curvature=bad).fit(X, y)


def test_model_saved_before_the_term_still_predicts(two_sizes):
    X, y = two_sizes
    model = ScaleGP(curvature=None).fit(X, y)
    ref = model.predict(X[:5], return_std=True)
    del model.v_, model.u_span_  # what a model pickled before 2026-11-30 lacks
    out = model.predict(X[:5], return_std=True)
    np.testing.assert_allclose(out[0], ref[0])
    np.testing.assert_allclose(out[1], ref[1])
