"""Name -> estimator class registry, and model persistence."""

from __future__ import annotations

import pickle
from pathlib import Path

from ..errors import MixoptError
from .base import Surrogate
from .gp import GPSurrogate
from .lgbm import RegMixLightGBM
from .linear import LinearSurrogate
from .annealing import AnnealingLaw
from .mixing_law import MixingLawSurrogate
from .nested_law import NestedMixingLaw
from .scale import ScaleGP
from .shift import ShiftGP

#: registry name -> class; ``default`` is mixopt's own surrogate
ESTIMATORS: dict[str, type[Surrogate]] = {
    "default": GPSurrogate,
    "gp": GPSurrogate,
    "regmix-lightgbm": RegMixLightGBM,
    "linear": LinearSurrogate,
    "mixing-law": MixingLawSurrogate,
}

#: scale-aware estimators (inputs ``[W | model_params | tokens]``), used by ``fit`` when a store spans several scales
SCALE_ESTIMATORS = {"scale-gp": ScaleGP, "shift-gp": ShiftGP, "nested-law": NestedMixingLaw, "annealing-law": AnnealingLaw}
DEFAULT_SCALE_ESTIMATOR = "scale-gp"
#: the default of ``fit --budgets`` on one proxy size (every extrapolation is in tokens; benchmarks/budget_transfer.py)
DEFAULT_BUDGET_ESTIMATOR = "shift-gp"

FORMAT = "mixopt-surrogate"
FORMAT_VERSION = 1


def get_estimator(name: str, *, where: str = "", **params) -> Surrogate:
    """Build the estimator registered as ``name`` with keyword ``params``.

    ``where`` names where the name came from in errors (e.g. ``"--model"`` or
    ``"propose.model in demo.yaml"``).
    """
    try:
        cls = ESTIMATORS[name]
    except (KeyError, TypeError):
        source = f" (from {where})" if where else ""
        raise MixoptError(f"Unknown surrogate {name!r}{source}. Known surrogates: {', '.join(sorted(ESTIMATORS))}. "
                          "Use one of these names.") from None
    try:
        return cls(**params)
    except TypeError:
        known = sorted(cls().get_params())
        bad = sorted(set(params) - set(known))
        raise MixoptError(f"{cls.__name__} ('{name}') has no parameters {bad}. Its parameters are {known}; "
                          "pass only those.") from None


def save_model(estimator: Surrogate, path, meta: dict) -> Path:
    """Pickle a fitted estimator inside a versioned envelope.

    ``meta`` should hold at least ``domains`` (the column order) and ``target``.
    Missing parent folders are created. The file is written to a temporary name then renamed, so it is whole or absent.
    Only load files you trust: this is pickle.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "version": FORMAT_VERSION, "estimator": estimator, "meta": dict(meta)}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(blob, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return path


def load_model(path) -> tuple[Surrogate, dict]:
    """Load ``(estimator, meta)`` written by :func:`save_model`."""
    path = Path(path)
    if path.is_dir():
        raise MixoptError(f"Surrogate model file {path} is a folder, not a file. Pass the .pkl `mixopt fit --out` wrote.")
    try:
        with open(path, "rb") as fh:
            blob = pickle.load(fh)
    except FileNotFoundError:
        raise MixoptError(f"Surrogate model file {path} does not exist. Fit a model first or fix the path.") from None
    except Exception as exc:  # corrupt / truncated / not a pickle
        raise MixoptError(f"{path} is not a readable mixopt surrogate model ({type(exc).__name__}: {exc}). Refit and save it again.") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise MixoptError(f"{path} is not a mixopt surrogate model file (no '{FORMAT}' envelope). Refit and save it again.")
    if blob.get("version") != FORMAT_VERSION:
        raise MixoptError(f"{path} has model format version {blob.get('version')}, but this mixopt reads version {FORMAT_VERSION}. Refit and save it again.")
    return blob["estimator"], blob["meta"]
