"""Repetition models (Muennighoff et al., Goyal et al.) and their fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixopt.errors import BudgetError, ConfigError, FitError, MixoptError
from mixopt.repetition_fit import PowerLaw, fit_loss_power_law, fit_pool_decay, fit_r_star
from mixopt.repetition import (
    R_STAR,
    Pool,
    best_pool_count,
    data_constrained_loss,
    effective_tokens,
    pool_error,
    pool_set_errors,
    sort_pools,
)

TMARS = [
    Pool("top0-10", -0.16, 6.7273),
    Pool("top10-20", -0.125, 8.5455),
    Pool("top20-30", -0.10, 5.2727),
    Pool("top30-40", -0.085, 2.2727),
]
TMARS_KW = dict(a=0.025, d=0.1, pool_size=12.8e6, objective="effective_utility")


# --- effective tokens -------------------------------------------------------


def test_effective_tokens_is_identity_without_repetition():
    D = np.array([0.0, 1.0, 5e8, 1e9])
    np.testing.assert_allclose(effective_tokens(D, 1e9), D)
    assert effective_tokens(3.0, 3.0) == 3.0
    assert isinstance(effective_tokens(1.0, 2.0), float)


def test_effective_tokens_monotone_and_saturating():
    U = 1e9
    D = np.geomspace(1e6, 1e13, 400)
    Dp = effective_tokens(D, U)
    assert np.all(np.diff(Dp) >= 0)
    assert np.all(np.diff(Dp[D < 100 * U]) > 0)  # strictly, until float saturation
    assert np.all(Dp <= D + 1e-6)
    assert np.all(Dp <= U * (1 + R_STAR))
    assert effective_tokens(1e15, U) == pytest.approx(U * (1 + R_STAR), rel=1e-9)


def test_effective_tokens_value_matches_formula():
    U, D, r = 1e9, 5e9, 15.387756
    expected = U + U * r * (1 - math.exp(-(D / U - 1) / r))
    assert effective_tokens(D, U) == pytest.approx(expected, rel=1e-12)
    assert effective_tokens(D, U, r_star=2.0) < effective_tokens(D, U, r_star=20.0)


def test_effective_tokens_broadcasts():
    out = effective_tokens(np.array([1e9, 4e9]), np.array([[1e9], [2e9]]))
    assert out.shape == (2, 2)


@pytest.mark.parametrize(
    "D,U,r",
    [(float("nan"), 1.0, R_STAR), (1.0, float("inf"), R_STAR), (1.0, 0.0, R_STAR), (-1.0, 1.0, R_STAR), (1.0, 1.0, 0.0)],
)
def test_effective_tokens_rejects_bad_input(D, U, r):
    with pytest.raises(BudgetError):
        effective_tokens(D, U, r)


# --- data-constrained loss --------------------------------------------------


def test_data_constrained_loss_decreases_in_D_and_U():
    N = 1e9
    D = np.geomspace(1e8, 1e12, 50)
    L = data_constrained_loss(N, D, 1e10)
    assert np.all(np.isfinite(L))
    assert np.all(np.diff(L) < 0)
    U = np.geomspace(1e8, 1e12, 50)
    LU = data_constrained_loss(N, 1e11, U)
    assert np.all(np.diff(LU) <= 1e-12)
    assert LU[0] > LU[-1]


def test_data_constrained_loss_bounded_below_by_E_and_overridable():
    L = data_constrained_loss(1e12, 1e14, 1e14)
    assert L > math.exp(0.6254804)
    assert data_constrained_loss(1e9, 1e10, 1e10, E=0.0) < data_constrained_loss(1e9, 1e10, 1e10)


def test_data_constrained_loss_rejects_bad_input():
    with pytest.raises(BudgetError):
        data_constrained_loss(float("inf"), 1e9, 1e9)
    with pytest.raises(BudgetError):
        data_constrained_loss(1e9, 1e9, 0.0)


# --- Goyal et al. quality pools --------------------------------------------


@pytest.mark.parametrize(
    "samples,best,acc",
    [(32e6, 1, 18.25), (64e6, 1, 24.62), (128e6, 2, 29.60), (640e6, 2, 38.55)],
)
def test_goyal_tmars_published_case(samples, best, acc):
    errors = pool_set_errors(TMARS, samples, **TMARS_KW)
    assert best_pool_count(errors) == best
    assert 100 * (1 - min(errors)) == pytest.approx(acc, abs=0.05)


def test_single_pool_objectives_match_closed_forms():
    a, d, P, b, tau = 0.02, 0.05, 1e6, -0.2, 3.0
    S = 4.5e6  # K = 4 full epochs plus half of one
    k = np.arange(5)
    n = a * np.minimum((k + 1) * P, S) / 1e5
    n1 = a * k * P / 1e5
    eff = np.sum((n - n1) * 0.5 ** (k / tau))
    assert pool_error([(b, tau)], S, a=a, d=d, pool_size=P, objective="effective_data") == pytest.approx(eff**b + d)
    bk = b * 0.5 ** (k / tau)
    util = (n[0] ** bk[0] + d) * np.prod((n[1:] / n1[1:]) ** bk[1:])
    assert pool_error([(b, tau)], S, a=a, d=d, pool_size=P, objective="effective_utility") == pytest.approx(util)


@pytest.mark.parametrize("objective", ["effective_utility", "effective_data"])
def test_pool_error_edge_cases(objective):
    kw = dict(a=0.02, d=0.1, pool_size=1e6, objective=objective)
    # K = 0: less than one epoch is plain power law.
    assert pool_error([(-0.2, 2.0)], 5e5, **kw) == pytest.approx((0.02 * 5e5 / 1e5) ** -0.2 + 0.1)
    # exact multiples of the epoch size are continuous (the empty last epoch is a factor 1).
    for S in (1e6, 3e6, 2e6 * 2):
        for pools in ([(-0.2, 2.0)], [(-0.2, 2.0), (-0.1, 1.0)]):
            y = pool_error(pools, S, **kw)
            assert math.isfinite(y)
            assert pool_error(pools, S * (1 - 1e-9), **kw) == pytest.approx(y, rel=1e-6)
    # extreme repetition with tiny half-lives stays finite (no 0/0).
    assert math.isfinite(pool_error([(-0.2, 0.01), (-0.1, 0.02)], 1e10, **kw))


@pytest.mark.parametrize("objective", ["effective_utility", "effective_data"])
def test_more_samples_never_hurt_and_repetition_decays(objective):
    kw = dict(a=0.02, d=0.1, objective=objective)
    S = np.geomspace(1e5, 1e9, 60)
    y = [pool_error([(-0.2, 2.0)], s, pool_size=1e6, **kw) for s in S]
    assert np.all(np.diff(y) <= 1e-12)
    # more unique data at the same budget never hurts
    for s in (5e6, 2e7, 1e8):
        ys = [pool_error([(-0.2, 2.0)], s, pool_size=p, **kw) for p in (1e5, 1e6, 1e7, 1e8)]
        assert np.all(np.diff(ys) <= 1e-12)


def test_pools_ranked_by_utility_and_order_invariant():
    shuffled = [TMARS[2], TMARS[0], TMARS[3], TMARS[1]]
    assert [p.name for p in sort_pools(shuffled)] == [p.name for p in TMARS]
    assert pool_set_errors(shuffled, 128e6, **TMARS_KW) == pytest.approx(pool_set_errors(TMARS, 128e6, **TMARS_KW))
    # the union is symmetric in its members
    assert pool_error(TMARS[:2], 1e8, **TMARS_KW) == pytest.approx(pool_error(TMARS[1::-1], 1e8, **TMARS_KW))


def test_pools_accept_mappings_and_tuples():
    y = pool_error([{"name": "x", "b": -0.16, "tau": 6.7273}], 32e6, **TMARS_KW)
    assert y == pytest.approx(pool_error([(-0.16, 6.7273)], 32e6, **TMARS_KW))


@pytest.mark.parametrize(
    "pools,kw,err",
    [
        ([(-0.1, 0.0)], {}, ConfigError),
        ([(-0.1, -1.0)], {}, ConfigError),
        ([(0.0, 1.0)], {}, ConfigError),
        ([(0.1, 1.0)], {}, ConfigError),
        ([], {}, ConfigError),
        ([(-0.1, 1.0)], {"pool_size": 0.0}, ConfigError),
        ([(-0.1, 1.0)], {"samples": float("inf")}, BudgetError),
        ([(-0.1, 1.0)], {"samples": float("nan")}, BudgetError),
        ([(-0.1, 1.0)], {"samples": 0.0}, BudgetError),
        ([(-0.1, 1.0)], {"objective": "nope"}, ConfigError),
        ([(-0.1, 1.0)], {"samples": 1e30}, BudgetError),
    ],
)
def test_pool_error_rejects_bad_input(pools, kw, err):
    args = dict(samples=1e7, a=0.02, d=0.1, pool_size=1e6, objective="effective_utility") | kw
    samples = args.pop("samples")
    with pytest.raises(err) as info:
        pool_error(pools, samples, **args)
    assert isinstance(info.value, MixoptError)
    assert "\n" not in str(info.value)


# --- fitting ---------------------------------------------------------------


@pytest.mark.parametrize("objective", ["effective_utility", "effective_data"])
@pytest.mark.parametrize("b,tau", [(-0.16, 6.7), (-0.3, 1.5)])
def test_fit_pool_decay_recovers_parameters(objective, b, tau):
    P = 1e6
    S = np.array([0.25, 0.5, 1, 2, 3, 5, 8, 12, 20, 30]) * P
    kw = dict(a=0.025, d=0.1, pool_size=P, objective=objective)
    y = np.array([pool_error([(b, tau)], s, **kw) for s in S])
    y *= np.exp(np.random.default_rng(0).normal(0.0, 1e-3, y.size))
    fit = fit_pool_decay(S, y, prior_b=-0.1, prior_tau=5.0, **kw)
    assert fit.source == "fit"
    assert fit.b == pytest.approx(b, rel=0.02)
    assert fit.tau == pytest.approx(tau, rel=0.05)


def test_fit_pool_decay_falls_back_to_prior():
    S = np.array([1e5, 3e5, 6e5, 9e5])  # all within the first epoch: tau is not identified
    y = np.array([pool_error([(-0.2, 3.0)], s, a=0.025, d=0.1, pool_size=1e6) for s in S])
    fit = fit_pool_decay(S, y, a=0.025, d=0.1, pool_size=1e6, prior_b=-0.15, prior_tau=4.0)
    assert (fit.source, fit.b, fit.tau) == ("prior", -0.15, 4.0)
    assert "epoch" in fit.reason


def test_fit_pool_decay_rejects_bad_observations():
    with pytest.raises(FitError):
        fit_pool_decay([1e6, 2e6], [0.5], a=0.025, d=0.1, pool_size=1e6, prior_b=-0.1, prior_tau=5.0)
    with pytest.raises(FitError):
        fit_pool_decay([1e6, float("nan")], [0.5, 0.4], a=0.025, d=0.1, pool_size=1e6, prior_b=-0.1, prior_tau=5.0)
    with pytest.raises(ConfigError):
        fit_pool_decay([1e6], [0.5], a=0.025, d=0.1, pool_size=1e6, prior_b=0.1, prior_tau=5.0)


def test_fit_r_star_recovers_value_and_falls_back():
    law = PowerLaw(E=1.7, B=400.0, beta=0.3)
    U = np.array([1e8] * 6 + [1e9] * 4)
    D = np.array([5e7, 1e8, 4e8, 1e9, 2e9, 4e9, 5e8, 1e9, 8e9, 3e10])
    L = law(effective_tokens(D, U, 7.0)) * np.exp(np.random.default_rng(1).normal(0, 1e-4, D.size))
    fit = fit_r_star(D, U, L, law=law)
    assert fit.source == "fit"
    assert fit.r_star == pytest.approx(7.0, rel=0.05)
    few = fit_r_star(D[:3], U[:3], L[:3], law=law)
    assert (few.source, few.r_star) == ("prior", R_STAR)


def test_fit_loss_power_law_recovers_law():
    law = PowerLaw(E=1.7, B=400.0, beta=0.3)
    D = np.geomspace(1e6, 1e10, 10)
    fit = fit_loss_power_law(D, law(D))
    np.testing.assert_allclose(fit(D), law(D), rtol=1e-6)
    assert fit.beta == pytest.approx(0.3, rel=0.02)
    with pytest.raises(FitError):
        fit_loss_power_law(D[:2], law(D[:2]))
