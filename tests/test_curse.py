"""The optimizer's curse: cross-fitted optimism of the search's predicted value."""

from __future__ import annotations

import numpy as np

from mixopt.planning.curse import FitRows, search_optimism
from mixopt.surrogates import get_estimator


def _argmin_vertex(model) -> np.ndarray:
    """A search over the corners of the simplex: the domain the model predicts lowest, alone."""
    corners = np.eye(4)
    return corners[int(np.argmin(model.predict(corners)))]


def _rows(name, W, y):
    return FitRows(get_estimator(name), W, y)


def _runs(noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(4), size=24)
    y = W @ np.array([3.0, 3.0, 3.0, 3.0]) + noise * rng.standard_normal(len(W))
    return W, y


def test_a_search_on_pure_noise_is_optimistic():
    """Every domain is equally good, so the corner a model picks wins only by its own noise: the other half's model
    predicts it worse."""
    W, y = _runs(noise=0.1)
    mean, sd = search_optimism(_rows("linear", W, y), _argmin_vertex, repeats=3)
    assert mean > 0.05 and sd > 0


def test_progress_hears_each_half_and_changes_nothing():
    W, y = _runs(noise=0.1)
    calls = []
    seen = search_optimism(_rows("linear", W, y), _argmin_vertex, repeats=3, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k, 6) for k in range(1, 7)]
    assert seen == search_optimism(_rows("linear", W, y), _argmin_vertex, repeats=3)


def test_no_optimism_without_noise():
    W, _ = _runs(noise=0.0)
    y = W @ np.array([3.0, 2.5, 2.8, 3.1])  # an exact linear law: both halves recover it
    mean, _ = search_optimism(_rows("linear", W, y), _argmin_vertex)
    assert abs(mean) < 1e-6


def test_too_few_mixtures_to_split():
    W, y = _runs(noise=0.1)
    W3 = np.repeat(W[:3], 2, axis=0)  # three mixtures, each trained twice
    assert search_optimism(_rows("linear", W3, np.repeat(y[:3], 2)), _argmin_vertex) is None


def test_halves_too_small_for_the_estimator_give_none():
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), size=6)  # halves of 3 runs: fewer than the GP's min_runs for 3 domains
    y = W @ np.array([3.0, 2.0, 1.0])
    assert search_optimism(_rows("default", W, y), lambda m: np.eye(3)[0]) is None


def test_the_full_models_choice_scales_the_halves_optimism_down():
    """A half knows less than the whole: scaled by the full model's std at its own choice over each half's std at its
    choice, the optimism is smaller (the full model's choice is less of a lucky draw)."""
    W, y = _runs(noise=0.1)
    rows = _rows("linear", W, y)
    est = rows.estimator.fit(W, y)
    raw, _ = search_optimism(rows, _argmin_vertex, repeats=3)
    scaled, _ = search_optimism(rows, _argmin_vertex, chosen=_argmin_vertex(est), repeats=3)
    assert 0 < scaled < raw
