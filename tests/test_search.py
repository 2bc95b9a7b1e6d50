import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from mixopt.errors import BudgetError, ConfigError, MixtureError
from mixopt.mixtures import project_to_bounded_simplex
from mixopt.planning.constraints import Constraints
from mixopt.planning.search import (
    SearchResult,
    kl_to_prior,
    optimize_mixture,
    simulate_search,
)

DOMAINS = ["code", "math", "prose", "web"]
PRIOR = np.array([0.25, 0.25, 0.25, 0.25])


class Bowl:
    """Quadratic bowl ``|w - target|^2`` with optional std ``std_fn(W)``."""

    def __init__(self, target, std_fn=None, mean_fn=None):
        self.target = np.asarray(target, dtype=float)
        self.std_fn = std_fn
        self.mean_fn = mean_fn

    def predict(self, W, return_std=False):
        W = np.atleast_2d(W)
        mean = self.mean_fn(W) if self.mean_fn else ((W - self.target) ** 2).sum(axis=1)
        if not return_std:
            return mean
        std = self.std_fn(W) if self.std_fn else np.zeros(len(W))
        return mean, std


class ConstantStd:
    """A LightGBM regressor with a constant std, as a surrogate stand-in."""

    def __init__(self, model, std=0.1):
        self.model, self.s = model, std

    def predict(self, W, return_std=False):
        m = self.model.predict(W)
        return (m, np.full(len(m), self.s)) if return_std else m


# ---------------------------------------------------------------- projection

def _qp_projection(v, lo, hi):
    res = minimize(
        lambda w: 0.5 * ((w - v) ** 2).sum(),
        np.clip(np.full_like(v, 1 / len(v)), lo, hi),
        jac=lambda w: w - v,
        bounds=list(zip(lo, hi)),
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones_like(w)}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


def test_projection_matches_qp_and_is_exact():
    rng = np.random.default_rng(0)
    for _ in range(30):
        k = rng.integers(2, 7)
        lo = rng.uniform(0, 0.8 / k, size=k)
        hi = np.maximum(lo + rng.uniform(0.05, 0.8, size=k), lo)
        if hi.sum() < 1:
            hi = hi / hi.sum() * 1.2
            hi = np.minimum(np.maximum(hi, lo), 1.0)
        v = rng.normal(0.2, 0.6, size=k)
        w = project_to_bounded_simplex(v, lo, hi)
        assert abs(w.sum() - 1) < 1e-9
        assert np.all(w >= lo - 1e-12) and np.all(w <= hi + 1e-12)
        np.testing.assert_allclose(w, _qp_projection(v, lo, hi), atol=1e-6)
        np.testing.assert_allclose(project_to_bounded_simplex(w, lo, hi), w, atol=1e-12)  # idempotent


def test_projection_brute_force_grid_and_batch():
    lo, hi = np.array([0.1, 0.0, 0.2]), np.array([0.5, 0.4, 1.0])
    grid = [np.array(p) for p in itertools.product(np.linspace(0, 1, 201), repeat=2)]
    pts = np.array([[a, b, 1 - a - b] for a, b in grid if 1 - a - b >= -1e-12])
    pts = pts[np.all(pts >= lo - 1e-12, axis=1) & np.all(pts <= hi + 1e-12, axis=1)]
    rng = np.random.default_rng(1)
    V = rng.normal(0.3, 0.5, size=(20, 3))
    W = project_to_bounded_simplex(V, lo, hi)  # batch
    for v, w in zip(V, W):
        best = pts[np.argmin(((pts - v) ** 2).sum(axis=1))]
        assert ((w - v) ** 2).sum() <= ((best - v) ** 2).sum() + 1e-12
        np.testing.assert_allclose(w, best, atol=0.01)
        np.testing.assert_allclose(w, project_to_bounded_simplex(v, lo, hi), atol=1e-12)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-9)


def test_projection_edge_cases():
    # a coordinate fixed by lo == hi, a box whose caps sum to exactly 1, huge inputs
    np.testing.assert_allclose(project_to_bounded_simplex(np.array([0.9, 0.05, 0.05]), [0.2, 0, 0], [0.2, 1, 1]), [0.2, 0.4, 0.4])
    np.testing.assert_allclose(project_to_bounded_simplex(np.array([5.0, -3, 1]), 0, [0.5, 0.3, 0.2]), [0.5, 0.3, 0.2])
    np.testing.assert_allclose(project_to_bounded_simplex(np.array([1e6, -1e6, 3]), 0, 1), [1, 0, 0])
    rng = np.random.default_rng(5)
    for _ in range(300):
        k = int(rng.integers(1, 9))
        lo = rng.uniform(0, 1 / k, size=k) * rng.integers(0, 2, size=k)
        hi = np.minimum(1, lo + rng.uniform(0, 1, size=k) * rng.integers(0, 2, size=k))
        if hi.sum() < 1 or lo.sum() > 1:
            continue
        W = project_to_bounded_simplex(rng.normal(0, rng.choice([1e-3, 1, 1e3]), size=(3, k)), lo, hi)
        assert np.all(np.abs(W.sum(axis=1) - 1) < 1e-9) and np.all(W >= lo) and np.all(W <= hi)


def test_projection_rejects_empty_set():
    with pytest.raises(ConfigError, match="empty"):
        project_to_bounded_simplex(np.ones(3), np.zeros(3), np.full(3, 0.2))


def test_kl_to_prior():
    p = np.array([0.5, 0.5, 0.0])
    assert kl_to_prior(np.array([0.5, 0.5, 0.0]), p) == pytest.approx(0.0)
    assert kl_to_prior(np.array([1.0, 0.0, 0.0]), p) == pytest.approx(np.log(2))
    assert np.isinf(kl_to_prior(np.array([0.5, 0.0, 0.5]), p))
    assert kl_to_prior(np.eye(3)[:2], p).shape == (2,)


# ---------------------------------------------------------------- constraints

COUNTS = {"code": 1e8, "math": 5e7, "prose": 2e8, "web": 1e8}


def test_constraints_build_combines_epoch_caps():
    c = Constraints.build(DOMAINS, max_weights={"prose": 0.5}, min_weights={"math": 0.05}, token_counts=COUNTS, budget_tokens=1e9, max_epochs=4)
    np.testing.assert_allclose(c.max_weights, [0.4, 0.2, 0.5, 0.4])
    np.testing.assert_allclose(c.min_weights, [0, 0.05, 0, 0])
    assert c.feasible(np.array([0.3, 0.1, 0.3, 0.3]))[0]
    assert not c.feasible(np.array([0.5, 0.1, 0.2, 0.2]))[0]


def test_constraints_build_errors():
    with pytest.raises(MixtureError, match=r"unknown domains \['cod'\].*known domains"):
        Constraints.build(DOMAINS, max_weights={"cod": 0.5})
    with pytest.raises(ConfigError, match="must not exceed"):
        Constraints.build(DOMAINS, min_weights={"code": 0.6}, max_weights={"code": 0.5})
    with pytest.raises(ConfigError, match="sum to at most 1"):
        Constraints.build(DOMAINS, min_weights={"code": 0.6, "web": 0.6})
    with pytest.raises(ConfigError, match="epoch cap"):
        Constraints.build(DOMAINS, min_weights={"math": 0.5}, token_counts=COUNTS, budget_tokens=1e9, max_epochs=4)
    with pytest.raises(ConfigError, match="token_counts and budget_tokens"):
        Constraints.build(DOMAINS, max_epochs=4)


def test_budget_error_names_binding_domain_and_epochs():
    # 4 epochs of 4.5e8 unique tokens supply 1.8e9 of 2e9 -> 90%.
    with pytest.raises(BudgetError) as err:
        Constraints.build(DOMAINS, token_counts=COUNTS, budget_tokens=2e9, max_epochs=4)
    msg = str(err.value)
    assert "at most 90% of the budget within 4 epochs" in msg
    # prose alone filling the 10% gap: (0.4 + 0.1) * 2e9 / 2e8 = 5 epochs.
    assert "prose needs 5 epochs" in msg and "math needs" in msg
    assert "raise max_epochs" in msg


# ---------------------------------------------------------------- simulate_search

TARGET = np.array([0.1, 0.2, 0.3, 0.4])


def test_simulate_finds_bowl_optimum_and_is_deterministic():
    r = simulate_search(Bowl(TARGET), PRIOR, n_candidates=20_000, top_k=20, seed=3, batch_size=7_000)
    assert isinstance(r, SearchResult) and r.method == "simulate"
    np.testing.assert_allclose(r.weights, TARGET, atol=0.04)
    assert abs(r.weights.sum() - 1) < 1e-9 and r.top_k_weights.shape == (20, 4)
    np.testing.assert_allclose(r.weights, project_to_bounded_simplex(r.top_k_weights.mean(axis=0), 0, 1), atol=1e-12)
    assert r.predicted == pytest.approx(((r.weights - TARGET) ** 2).sum())
    again = simulate_search(Bowl(TARGET), PRIOR, n_candidates=20_000, top_k=20, seed=3, batch_size=7_000)
    np.testing.assert_array_equal(r.weights, again.weights)
    other = simulate_search(Bowl(TARGET), PRIOR, n_candidates=20_000, top_k=20, seed=4, batch_size=7_000)
    assert not np.array_equal(r.weights, other.weights)


def test_top_k_is_global_across_batches():
    bowl = Bowl(TARGET)
    r = simulate_search(bowl, PRIOR, n_candidates=9_000, top_k=5, seed=0, batch_size=1_000)
    best = bowl.predict(r.top_k_weights)
    assert np.all(np.diff(best) >= 0)  # best first
    # k=1 answer equals the single best row
    r1 = simulate_search(bowl, PRIOR, n_candidates=9_000, top_k=1, seed=0, batch_size=1_000)
    np.testing.assert_allclose(r1.weights, r.top_k_weights[0], atol=1e-12)


def test_simulate_respects_bounds():
    c = Constraints.build(DOMAINS, min_weights={"code": 0.2}, max_weights={"web": 0.25})
    r = simulate_search(Bowl(TARGET), PRIOR, constraints=c, n_candidates=20_000, top_k=20, seed=0)
    assert c.feasible(r.weights)[0] and np.all(c.feasible(r.top_k_weights))
    assert r.weights[0] >= 0.2 - 1e-12 and r.weights[3] <= 0.25 + 1e-12
    np.testing.assert_allclose(r.weights, [0.2, 0.225, 0.325, 0.25], atol=0.04)  # projection of the target


def test_kl_weight_moves_toward_prior():
    prior = np.array([0.4, 0.3, 0.2, 0.1])
    target = np.array([0.0, 0.1, 0.2, 0.7])
    plain = simulate_search(Bowl(target), prior, n_candidates=20_000, top_k=20, seed=0)
    reg = simulate_search(Bowl(target), prior, n_candidates=20_000, top_k=20, seed=0, kl_weight=0.5)
    assert kl_to_prior(reg.weights, prior) < 0.5 * kl_to_prior(plain.weights, prior)


def test_uncertainty_weight_avoids_high_std_corner():
    # The mean is best at code=1 but the std is large there.
    corner = np.array([1.0, 0, 0, 0])
    safe = np.array([0.1, 0.1, 0.1, 0.7])
    mean_fn = lambda W: np.minimum(((W - corner) ** 2).sum(1), 0.05 + ((W - safe) ** 2).sum(1))  # noqa: E731
    std_fn = lambda W: 2.0 * np.exp(-((W - corner) ** 2).sum(1) / 0.2)  # noqa: E731
    est = Bowl(corner, std_fn=std_fn, mean_fn=mean_fn)
    greedy = simulate_search(est, PRIOR, n_candidates=20_000, top_k=20, seed=0)
    careful = simulate_search(est, PRIOR, n_candidates=20_000, top_k=20, seed=0, uncertainty_weight=1.0)
    assert greedy.weights[0] > 0.7
    assert careful.weights[0] < 0.3 and careful.std < 0.1 * greedy.std


def test_lightgbm_surrogate_with_constant_std():
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(4), size=300)
    y = ((X - TARGET) ** 2).sum(1) + rng.normal(0, 1e-3, 300)
    model = lgb.LGBMRegressor(n_estimators=60, learning_rate=0.1, min_child_samples=5, verbose=-1, random_state=0, n_jobs=1).fit(X, y)
    est = ConstantStd(model, 0.1)
    r = simulate_search(est, PRIOR, n_candidates=20_000, top_k=50, seed=0, uncertainty_weight=1.0)
    assert r.std == pytest.approx(0.1)
    assert ((r.weights - TARGET) ** 2).sum() < 0.03
    # plain LGBMRegressor (no std) works when the std is not needed
    r2 = simulate_search(model, PRIOR, n_candidates=5_000, top_k=20, seed=0)
    assert r2.std == 0.0


# ---------------------------------------------------------------- optimize_mixture

def test_optimize_improves_and_stays_feasible():
    c = Constraints.build(DOMAINS, min_weights={"code": 0.2}, max_weights={"web": 0.25})
    bowl = Bowl(TARGET)
    start = simulate_search(bowl, PRIOR, constraints=c, n_candidates=2_000, top_k=10, seed=0)
    r = optimize_mixture(bowl, start, constraints=c, seed=0, n_restarts=3, maxiter=100)
    assert r.method == "es" and r.score <= start.score + 1e-12
    assert c.feasible(r.weights)[0] and np.all(c.feasible(r.top_k_weights))
    np.testing.assert_allclose(r.weights, [0.2, 0.225, 0.325, 0.25], atol=2e-3)  # projection of the target
    # from an infeasible array start: projected first, still improves
    r2 = optimize_mixture(bowl, np.array([0.7, 0.1, 0.1, 0.1]), constraints=c, seed=1, n_restarts=2, maxiter=100)
    assert c.feasible(r2.weights)[0] and r2.predicted < bowl.predict(c.project(np.array([0.7, 0.1, 0.1, 0.1])))[0]


def test_optimize_on_piecewise_constant_lightgbm():
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(4), size=300)
    model = lgb.LGBMRegressor(n_estimators=40, min_child_samples=5, verbose=-1, random_state=0, n_jobs=1).fit(X, ((X - TARGET) ** 2).sum(1))
    c = Constraints.build(DOMAINS, max_weights={"web": 0.3})
    x0 = np.array([0.7, 0.1, 0.1, 0.1])
    r = optimize_mixture(model, x0, constraints=c, seed=0, n_restarts=2, maxiter=60)
    assert c.feasible(r.weights)[0]
    assert r.predicted < model.predict(x0[None])[0]
    with pytest.raises(ConfigError, match="kl_weight"):
        optimize_mixture(model, x0, constraints=c, kl_weight=1.0)


def test_plan_budget_precedence():
    """The CLI's budget, else the config's, else 4x the proxies' tokens (one rule for propose and build_plan)."""
    from mixopt.config import ProposeConfig
    from mixopt.planning.propose import plan_budget
    assert plan_budget(None, ProposeConfig(), 1000) == 4000
    assert plan_budget(None, ProposeConfig(budget_tokens=7e6), 1000) == 7e6
    assert plan_budget(5e6, ProposeConfig(budget_tokens=7e6), 1000) == 5e6
    assert plan_budget(None, ProposeConfig(), None) is None
