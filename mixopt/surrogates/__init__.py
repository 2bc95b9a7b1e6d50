"""Mixture -> metric surrogates with a scikit-learn interface and a name registry."""

from .average import MetricAverage
from .base import Surrogate, check_target, check_weights
from .crossval import cross_validate
from .gp import GPSurrogate
from .lgbm import RegMixLightGBM
from .linear import LinearSurrogate
from .mixing_law import MixingLawSurrogate
from .plots import plot_pred_vs_actual
from .registry import ESTIMATORS, get_estimator, load_model, save_model

__all__ = [
    "MetricAverage",
    "ESTIMATORS", "GPSurrogate", "LinearSurrogate", "MixingLawSurrogate", "RegMixLightGBM", "Surrogate",
    "check_target", "check_weights", "cross_validate", "get_estimator", "load_model", "plot_pred_vs_actual",
    "save_model",
]
