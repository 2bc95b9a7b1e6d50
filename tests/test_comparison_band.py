"""Comparing two mixtures at one target scale: the level's shared uncertainty cancels in their difference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixopt.planning.propose import ProposeContext, compare_with_baselines, comparison_band, difference_std, noise_band
from mixopt.surrogates.scale import AtScale, ScaleGP, scale_inputs


@pytest.fixture(scope="module")
def far_view():
    """ScaleGP fitted on two model sizes (3 domains), seen at a model 100x larger than the largest trained."""
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), size=24)
    effect = W @ np.array([0.30, -0.10, 0.05])
    X = np.vstack([scale_inputs(W, n, 1e6) for n in (1e5, 1e6)])
    level = np.r_[np.full(24, 3.2), np.full(24, 2.9)]
    y = level + np.r_[effect, effect] + rng.normal(0, 0.005, size=48)
    return AtScale(ScaleGP().fit(X, y), 1e8, 1e6)


def test_difference_std_is_smaller_than_the_marginals_far_from_the_trained_sizes(far_view):
    a, b = np.array([0.6, 0.2, 0.2]), np.array([0.2, 0.6, 0.2])
    _, sd = far_view.predict(np.vstack([a, b]), return_std=True)
    d = difference_std(far_view, a, b)
    assert d is not None and d < 0.5 * math.hypot(*sd)  # most of each std is the level, shared by both
    band = comparison_band(far_view, 0.01, a, sd[0], b, sd[1])
    assert band == pytest.approx(2 * math.sqrt(0.01**2 + d**2))
    assert band < noise_band(0.01, sd[0], sd[1])


def test_estimators_without_a_covariance_keep_the_independent_band():
    class MeanOnly:
        def predict(self, W, return_std=False):
            W = np.atleast_2d(W)
            return (W[:, 0], np.full(len(W), 0.1)) if return_std else W[:, 0]

    a, b = np.array([0.5, 0.5]), np.array([0.2, 0.8])
    assert difference_std(MeanOnly(), a, b) is None
    assert comparison_band(MeanOnly(), 0.02, a, 0.1, b, 0.1) == pytest.approx(noise_band(0.02, 0.1, 0.1))


def test_a_far_target_does_not_make_every_comparison_within_noise(far_view):
    """compare_with_baselines at 100x the largest trained size: the mixture effect still beats uniform beyond noise."""
    ctx = ProposeContext(domains=["a", "b", "c"], target="val/x", noise={"seed_sd": 0.005})
    best = np.array([0.02, 0.96, 0.02])  # the effect favours b: 0.25 nats better than uniform
    value, std = (float(v[0]) for v in far_view.predict(best[None, :], return_std=True))
    table, reasons, beats = compare_with_baselines(far_view, best, value, std, ctx)
    assert beats, reasons
    uniform = table["uniform"]
    assert uniform["value"] - value < 2 * math.sqrt(0.005**2 + std**2 + uniform["std"] ** 2)  # marginal stds: within


def test_unknown_seed_noise_is_said_not_printed_as_zero(far_view):
    ctx = ProposeContext(domains=["a", "b", "c"], target="val/x", noise={})  # e.g. imported runs, one seed each
    w = np.array([1 / 3, 1 / 3, 1 / 3])
    value, std = (float(v[0]) for v in far_view.predict(w[None, :], return_std=True))
    _, reasons, _ = compare_with_baselines(far_view, w, value, std, ctx)
    assert not any("seed sd 0.0000" in r or "(sd 0.0000)" in r for r in reasons), reasons
    assert any("seed noise unknown" in r and "import runs of one mixture with several seeds" in r for r in reasons), reasons


def test_a_baseline_predicted_better_beyond_the_band_is_called_a_loss(far_view):
    """A plan held away from the best mixture by a bound: each baseline predicted better beyond the band is said to be
    better (not "within the noise band"), and one outside the plan's bounds is said to be so."""
    from mixopt.planning.constraints import Constraints

    ctx = ProposeContext(domains=["a", "b", "c"], target="val/x", noise={"seed_sd": 0.005})
    held = np.array([0.9, 0.05, 0.05])  # the effect punishes a: uniform is ~0.2 nats better
    value, std = (float(v[0]) for v in far_view.predict(held[None, :], return_std=True))
    bounds = Constraints(["a", "b", "c"], min_weights=np.array([0.8, 0.0, 0.0]), max_weights=np.ones(3))
    _, reasons, beats = compare_with_baselines(far_view, held, value, std, ctx, constraints=bounds)
    line = next(r for r in reasons if r.startswith("vs uniform"))
    assert not beats and "worse" in line and "uniform is predicted better but lies outside the plan's bounds" in line, line
    _, reasons, _ = compare_with_baselines(far_view, held, value, std, ctx)  # no bounds given: nothing said about them
    assert "outside" not in next(r for r in reasons if r.startswith("vs uniform"))
