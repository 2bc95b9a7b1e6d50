"""Stop 40's structure moves: each name has one home, and the old import paths still work."""

from __future__ import annotations

import numpy as np
import pytest


def test_measure_noise_lives_with_the_seed_noise():
    from mixopt import pipeline
    from mixopt.surrogates import noise

    assert pipeline.measure_noise is noise.measure_noise  # the old path re-exports it
    assert "measure_noise" in pipeline.__all__
    out = noise.measure_noise(np.array([1.0, 1.2, 3.0, 3.2]), np.array([0, 0, 1, 1]))
    assert out["seed_sd"] == pytest.approx(np.sqrt(0.02))
    assert not hasattr(pipeline, "selection_target")  # dead: no caller anywhere
