"""Fit the repetition models of `mixopt.repetition` from proxy-run observations.

The caller extracts observations from checkpoints; these are pure functions over
arrays. Every fit falls back to a published or caller-given prior when the data
cannot identify the parameter (too few points, or no repeated data), and says
which was used in ``source`` so a plan can report it.

* `fit_pool_decay`: utility ``b`` and half-life ``tau`` of one quality pool
  (Goyal et al., 2024) from ``(samples seen, error)`` at several repetition counts.
* `fit_loss_power_law`: ``loss = E + B / D^beta`` from unrepeated points.
* `fit_r_star`: ``R*`` of `effective_tokens` (Muennighoff et al., 2023) from
  ``(D, U, loss)`` given that power law.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import least_squares

from .errors import ConfigError, FitError
from .repetition import POOL_NORMALIZER, R_STAR, effective_tokens, pool_error

Source = Literal["fit", "prior"]

# Search box for the fits; wide enough for any published value.
B_BOUNDS = (-5.0, -1e-6)
TAU_BOUNDS = (1e-3, 1e3)
R_STAR_BOUNDS = (1e-3, 1e4)


@dataclass(frozen=True)
class PoolDecayFit:
    """Fitted (or prior) ``b`` and ``tau`` of one pool. ``rmse_log`` is the RMS
    of ``log(predicted) - log(observed)`` over the points, for either source."""

    b: float
    tau: float
    source: Source
    n_points: int
    rmse_log: float
    reason: str
    weighted_rmse_log: float = math.nan  # the RMS the fit minimised: with `weighting`'s point weights (mean 1)


WEIGHTINGS: tuple[str, ...] = ("repetition", "uniform")
DEFAULT_WEIGHTING = "repetition"  # measured: benchmarks/RESULTS.md, filtering schedule (weighting the fit)
UNDERTRAINED_WEIGHT = 0.2  # "repetition": extra factor on points at <= one epoch (0.1-0.3 plan alike, RESULTS.md)


def point_weights(samples: Any, pool_size: float, weighting: str = DEFAULT_WEIGHTING) -> np.ndarray:
    """Weight of each observation's squared log residual in `fit_pool_decay`, scaled to mean 1.

    * ``"uniform"``: every point alike (the plain least squares).
    * ``"repetition"``: ``log2(2 k)`` with ``k = max(samples / pool_size, 1)`` the repetition count, times
      `UNDERTRAINED_WEIGHT` at ``k <= 1``. The plan is decided where pools are repeated many times; a small
      proxy's one-epoch point is mostly undertrained (it saw few optimizer steps), far above the law's level,
      and under uniform weights it pulls ``b`` and ``tau`` (benchmarks/RESULTS.md, filtering schedule).
    """
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting must be one of {WEIGHTINGS}. Got {weighting!r}. "
                          "Use 'uniform' for the plain fit or 'repetition' to favour the repeated points.")
    S = np.asarray(samples, dtype=float).ravel()
    if weighting == "uniform" or not S.size:
        return np.ones_like(S)
    k = np.maximum(S / float(pool_size), 1.0)
    w = np.log2(2.0 * k) * np.where(k <= 1.0 + 1e-9, UNDERTRAINED_WEIGHT, 1.0)
    return w * (w.size / w.sum())


@dataclass(frozen=True)
class PowerLaw:
    """``loss = E + B / D^beta``."""

    E: float
    B: float
    beta: float

    def __call__(self, D: Any) -> np.ndarray:
        return self.E + self.B / np.asarray(D, dtype=float) ** self.beta


@dataclass(frozen=True)
class RStarFit:
    """Fitted (or prior) ``R*`` of one domain."""

    r_star: float
    source: Source
    n_points: int
    rmse_log: float
    reason: str


def _arrays(names: tuple[str, ...], *values: Any) -> list[np.ndarray]:
    arrs = []
    for name, v in zip(names, values):
        try:
            a = np.asarray(v, dtype=float).ravel()
        except (TypeError, ValueError):
            raise FitError(f"{name} must be numeric. Got {v!r}. Pass an array of numbers.") from None
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise FitError(f"{name} must be finite and > 0. Got {a.tolist()[:8]}. Drop failed or empty observations.")
        arrs.append(a)
    if len({a.size for a in arrs}) != 1:
        sizes = ", ".join(f"{n}={a.size}" for n, a in zip(names, arrs))
        raise FitError(f"Observation arrays must have the same length. Got {sizes}. Pass one value per observation.")
    return arrs


def _rmse(r: np.ndarray) -> float:
    return float(np.sqrt(np.mean(r**2))) if r.size else float("nan")


#: Runs a pool's (b, tau) fit needs at least (`fit_pool_decay`), two or more of them past one epoch: fewer give the prior.
MIN_POOL_FIT_POINTS = 4


def fit_pool_decay(
    samples: Any,
    errors: Any,
    *,
    a: float,
    d: float,
    pool_size: float,
    prior_b: float,
    prior_tau: float,
    objective: Literal["effective_utility", "effective_data"] = "effective_utility",
    normalizer: float = POOL_NORMALIZER,
    min_points: int = MIN_POOL_FIT_POINTS,
    weighting: str = DEFAULT_WEIGHTING,
) -> PoolDecayFit:
    """Fit ``(b, tau)`` of a single pool trained for ``samples`` (repeating a
    pool of ``pool_size`` samples) that reached ``errors``.

    Least squares on ``log y_pred - log y_obs``, each squared residual weighted
    by `point_weights` (``weighting``: "repetition", the default, favours the
    repeated points over the undertrained one-epoch point; "uniform" weighs all
    alike, the fit before 2026-11-30), with bounds ``b < 0``,
    ``tau > 0``, started from several half-lives because the surface is not
    convex in ``tau``. ``tau`` is only identified by points past the first
    epoch: with fewer than ``min_points`` points, or fewer than two beyond one
    epoch, the prior ``(prior_b, prior_tau)`` is returned with ``source="prior"``.
    ``a`` and ``d`` are shared across pools and given by the caller.
    """
    S, y = _arrays(("samples", "errors"), samples, errors)
    sw = np.sqrt(point_weights(S, float(pool_size), weighting))
    common = dict(a=a, d=d, pool_size=pool_size, objective=objective, normalizer=normalizer)

    def log_residuals(x: np.ndarray) -> np.ndarray:
        pool = [(float(x[0]), float(x[1]))]
        pred = np.array([pool_error(pool, s, **common) for s in S])
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.log(pred) - np.log(y)
        return np.where(np.isfinite(r), r, 1e3)

    def residuals(x: np.ndarray) -> np.ndarray:
        return sw * log_residuals(x)

    # Validates the prior and the shared parameters up front, with the library's messages.
    prior_res = log_residuals(np.array([prior_b, prior_tau])) if S.size else np.zeros(0)
    repeated = int(np.sum(S > pool_size))
    if S.size < min_points or repeated < 2:
        why = (
            f"{S.size} point(s), {repeated} past one epoch; need >= {min_points} points and >= 2 past one epoch"
        )
        return PoolDecayFit(float(prior_b), float(prior_tau), "prior", int(S.size), _rmse(prior_res), why,
                            _rmse(sw * prior_res))

    b0 = min(max(float(prior_b), B_BOUNDS[0] * 0.99), B_BOUNDS[1] * 2)
    best = None
    for tau0 in (0.5, 2.0, 8.0, 32.0, float(np.clip(prior_tau, 0.01, 900))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = least_squares(
                residuals,
                x0=[b0, tau0],
                bounds=([B_BOUNDS[0], TAU_BOUNDS[0]], [B_BOUNDS[1], TAU_BOUNDS[1]]),
                x_scale=[0.1, max(tau0, 1.0)],
                xtol=1e-10,
                ftol=1e-12,
            )
        if best is None or res.cost < best.cost:
            best = res
    b_hat, tau_hat = (float(v) for v in best.x)
    return PoolDecayFit(b_hat, tau_hat, "fit", int(S.size), _rmse(log_residuals(best.x)),
                        f"least squares on log error ({weighting} weights)", _rmse(best.fun))


def fit_loss_power_law(tokens: Any, loss: Any, *, min_points: int = 3) -> PowerLaw:
    """Fit ``loss = E + B / D^beta`` on unrepeated points (log-space residuals).

    Raises `FitError` with fewer than ``min_points`` points; there is no
    universal prior for a domain's loss curve.
    """
    D, L = _arrays(("tokens", "loss"), tokens, loss)
    if D.size < min_points:
        raise FitError(
            f"A loss power law needs >= {min_points} unrepeated points. Got {D.size}. "
            "Add checkpoints or pass E, B, beta yourself."
        )
    logD = np.log(D)

    def residuals(x: np.ndarray) -> np.ndarray:
        E, logB, beta = x
        return np.log(E + np.exp(logB - beta * logD)) - np.log(L)

    best = None
    for frac in (0.0, 0.5, 0.9):
        for beta0 in (0.1, 0.3, 0.6):
            E0 = frac * float(L.min())
            logB0 = float(np.log(max(float(np.median(L)) - E0, 1e-9)) + beta0 * np.median(logD))
            res = least_squares(residuals, x0=[E0, logB0, beta0], bounds=([0.0, -50, 1e-4], [float(L.min()), 200, 3.0]))
            if best is None or res.cost < best.cost:
                best = res
    E, logB, beta = (float(v) for v in best.x)
    return PowerLaw(E, math.exp(logB), beta)


def fit_r_star(
    tokens: Any,
    unique: Any,
    loss: Any,
    *,
    law: PowerLaw,
    prior: float = R_STAR,
    min_points: int = 3,
) -> RStarFit:
    """Fit ``R*`` so that ``law(effective_tokens(D, U, R*))`` matches ``loss``.

    Only repeated points (``D > U``) carry information about ``R*``; with fewer
    than ``min_points`` of them the prior (Muennighoff et al.'s 15.39 by
    default) is returned with ``source="prior"``.
    """
    D, U, L = _arrays(("tokens", "unique", "loss"), tokens, unique, loss)
    if not (math.isfinite(prior) and prior > 0):
        raise ConfigError(f"The R* prior must be finite and > 0. Got {prior!r}. Use 15.387756 (Muennighoff et al.).")
    if not (law.B > 0 and law.beta > 0 and law.E >= 0):
        raise FitError(f"The loss law must have E >= 0, B > 0, beta > 0. Got {law}. Refit it on unrepeated points.")

    def residuals(x: np.ndarray) -> np.ndarray:
        Dp = np.asarray(effective_tokens(D, U, float(x[0])))
        return np.log(law(Dp)) - np.log(L)

    repeated = int(np.sum(D > U * (1 + 1e-9)))
    if repeated < min_points:
        why = f"{repeated} repeated point(s) (D > U); need >= {min_points}"
        return RStarFit(float(prior), "prior", int(D.size), _rmse(residuals(np.array([prior]))), why)

    best = None
    for r0 in (0.5, 5.0, float(np.clip(prior, 0.01, 9000)), 100.0):
        res = least_squares(residuals, x0=[r0], bounds=([R_STAR_BOUNDS[0]], [R_STAR_BOUNDS[1]]), x_scale=[r0])
        if best is None or res.cost < best.cost:
            best = res
    return RStarFit(float(best.x[0]), "fit", int(D.size), _rmse(best.fun), "least squares on log loss")


def usable_fit(fit: PoolDecayFit) -> str | None:
    """None when ``fit`` can be planned with, else why not (too few runs, or ``b`` at a bound of the search box)."""
    if fit.source != "fit":
        return f"too few runs to fit ({fit.reason})"
    if not (math.isfinite(fit.b) and math.isfinite(fit.tau)) or fit.b > B_BOUNDS[1] * 10 or fit.b < B_BOUNDS[0] * 0.999:
        return (f"the fit is unusable (b={fit.b:.3g} at a bound of {B_BOUNDS}: "
                "the runs do not show the pool's loss falling with samples)")
    return None
