"""Mixture -> metric surrogates with a scikit-learn interface and a name registry.

- :mod:`.base`: input checks and the :class:`Surrogate` contract (``predict(W, return_std=True)``).
- :mod:`.gp` (the ``default``), :mod:`.lgbm`, :mod:`.linear`, :mod:`.mixing_law`: estimators.
- :mod:`.average`: :class:`MetricAverage`, one clone of an estimator per component metric.
- :mod:`.two_phase`: :class:`TwoPhaseSurrogate` over (base mixture, end mixture, end fraction).
- :mod:`.noise`: seed noise and the signal-to-noise ratio from repeated runs.
- :mod:`.scale`: scale-aware estimators over ``[W | model_params | tokens]`` and held-out-scale CV.
- :mod:`.registry`: name -> class, and model files; :mod:`.crossval`, :mod:`.plots`.
"""

from .average import MetricAverage
from .base import Surrogate, check_target, check_weights
from .crossval import cross_validate
from .gp import GPSurrogate
from .lgbm import RegMixLightGBM
from .linear import LinearSurrogate
from .mixing_law import MixingLawSurrogate
from .noise import seed_noise, signal_to_noise
from .plots import plot_pred_vs_actual
from .annealing import AnnealingLaw
from .registry import DEFAULT_BUDGET_ESTIMATOR, DEFAULT_SCALE_ESTIMATOR, ESTIMATORS, SCALE_ESTIMATORS, get_estimator, load_model, save_model
from .nested_law import NestedMixingLaw
from .scale import AtScale, ScaleGP, held_out_level, held_out_scale_cv, scale_inputs
from .shift import ShiftGP
from .two_phase import TwoPhaseSurrogate, phase_features

__all__ = [
    "ESTIMATORS", "GPSurrogate", "LinearSurrogate", "MetricAverage", "MixingLawSurrogate", "RegMixLightGBM", "Surrogate",
    "TwoPhaseSurrogate", "check_target", "check_weights", "cross_validate", "get_estimator", "load_model", "phase_features",
    "plot_pred_vs_actual", "save_model", "seed_noise", "signal_to_noise",
    "AnnealingLaw", "AtScale", "DEFAULT_BUDGET_ESTIMATOR", "DEFAULT_SCALE_ESTIMATOR", "NestedMixingLaw", "SCALE_ESTIMATORS", "ScaleGP",
    "ShiftGP", "held_out_level", "held_out_scale_cv", "scale_inputs",
]
