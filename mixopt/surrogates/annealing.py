"""The LR-annealing scaling law (Tissue et al., 2024) across mixtures and model sizes.

Tissue et al. fit one training curve with

.. math::

    L(s) = L_0 + A\\,S_1^{-\\alpha} - C\\,S_2,\\qquad
    S_1 = \\textstyle\\sum_{i<s} \\eta_i,\\qquad
    S_2 = \\textstyle\\sum_{i<s} m_i,\\quad m_i = \\lambda m_{i-1} + \\max(\\eta_{i-1} - \\eta_i, 0)

``S1`` (forward area) is the area under the learning-rate curve up to the
measurement, ``S2`` (annealing area) the momentum-smoothed area of its decrease.
LR *increases* (the warm-up) add nothing to ``S2``: the paper takes the
annealing to start from the peak. Because both areas follow the LR curve that
actually produced a measurement, a WSD decay branch and a cosine checkpoint
land on one law (:func:`lr_areas`).

The momentum ``lambda`` is set by a half-life. The paper's 0.999 per step is a
half-life of ~700 steps for runs of 10^4-10^5 steps; the proxies take 10^2-10^3
steps, so the half-life is a fraction of the measurement's own steps
(``half_life_unit="run"``): the same schedule shape then gives the same ``S2/S1``
at any length. Held out (WSD fitted, the other schedule predicted), the error
is flat from 0.05 to 1 of the run and from 5 to 700 steps, so the proxies
cannot pin ``lambda`` down; 0.1 sits in the flat minimum.

:class:`AnnealingLaw` (registry name ``annealing-law``) shares the law's shape
across mixtures and model sizes, with ``u = log10 N - log10 N_ref`` and
``v = log10 (S1 / S1_ref)``::

    L = L0(u) + A(u) x1^-alpha - C(u) x2 + k(u, v) m(w)
    L0 = l0 + l1 u,  A = exp(a0 + a1 u),  C = exp(c0 + c1 u),  k = exp(g_n u + g_s v)

(``x1, x2`` = the areas over the largest trained ``S1``). ``m(w)`` is the
default GP (:class:`~mixopt.surrogates.gp.GPSurrogate`) on per-mixture
offsets; ``k`` lets the spread of mixture effects grow or shrink with size and
training (``mixture_gain=True``; the default k = 1 predicted the held-out size
better). The parameters are MAP-fitted
jointly with the offsets under weak priors (a law has 4 shape parameters, a WSD
store may give only 2 budgets per size). The predictive std adds the law's
Laplace (delta-method) variance, which grows with the distance in ``u`` and
``v`` from the trained sizes and budgets, to the GP's and the run noise.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

from ..config import ProxyConfig
from ..errors import FitError, MixtureError
from ..mixtures import as_float_array
from ..proxy.schedule import lr_at, schedule_info
from ..runs.table import step_tokens
from .base import EstimatorNotFittedError, check_weights
from .gp import GPSurrogate
from .scale import ScaleGP
from .scale_base import N_SCALE, ScaleEstimator, scale_inputs

N_AREAS = 2  # S1, S2
DEFAULT_HALF_LIFE = 0.1  # of the measurement's steps (half_life_unit="run"); held-out MAE is flat from 0.05 to 1 (RESULTS)
DEFAULT_HALF_LIFE_UNIT = "run"
HALF_LIFE_UNITS = ("run", "steps")
MIXTURE_MODELS = ("offsets", "scale-gp")


# ---------------------------------------------------------------- areas

def _schedule_cfg(schedule: dict) -> SimpleNamespace:
    """The fields ``proxy.schedule.lr_at`` reads, from a record's ``info["lr_schedule"]``."""
    try:
        return SimpleNamespace(schedule=schedule["name"], lr=float(schedule["lr"]), min_lr_ratio=float(schedule.get("min_lr_ratio", 0.0)),
                               decay_fraction=float(schedule.get("decay_fraction", 0.2)), warmup_fraction=0.0)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise FitError(f"A learning-rate schedule must be a dict with name, lr, steps, warmup_steps (proxy.schedule.schedule_info). "
                       f"Got {schedule!r}. Pass the run record's info['lr_schedule'].") from None


def lr_sequence(schedule: dict, at_step: int) -> np.ndarray:
    """Learning rates ``eta_0 .. eta_{at_step-1}`` that produced the measurement after ``at_step`` steps (at_step,).

    ``schedule`` is a record's ``info["lr_schedule"]``. A WSD measurement at a
    branch budget follows the run to the fork, then the branch's decay (as
    ``proxy/loop.py`` trains it: the run's warm-up, the budget's decay); any
    other measurement follows the run's own curve.
    """
    cfg = _schedule_cfg(schedule)
    steps, warmup = int(schedule["steps"]), int(schedule.get("warmup_steps", 0))
    if not (float(at_step).is_integer() and 1 <= at_step <= steps):
        raise FitError(f"A measurement step must be a whole number in [1, {steps}] (the run's steps). Got {at_step!r}. "
                       "Divide the measurement's tokens by batch_size * block_size.")
    at_step = int(at_step)
    fork = next((int(f) for f, b in schedule.get("branches", []) if int(b) == at_step), None) if cfg.schedule == "wsd" else None
    if fork is None:
        return np.array([lr_at(i, steps, cfg, warmup=warmup) for i in range(at_step)])
    return np.array([lr_at(i, steps, cfg, warmup=warmup) for i in range(fork)]
                    + [lr_at(i, at_step, cfg, warmup=warmup) for i in range(fork, at_step)])


def momentum(half_life: float, steps: int, unit: str = DEFAULT_HALF_LIFE_UNIT) -> float:
    """``lambda`` per step for a half-life in steps, or as a fraction of ``steps`` (``unit="run"``)."""
    if unit not in HALF_LIFE_UNITS:
        raise FitError(f"half_life_unit must be one of {HALF_LIFE_UNITS}. Got {unit!r}. Use 'run' (a fraction of the measurement's steps) or 'steps'.")
    if not (isinstance(half_life, (int, float, np.floating, np.integer)) and half_life >= 0):
        raise FitError(f"half_life must be a number >= 0 (0: no memory, inf: S2 is the area under the LR drop). Got {half_life!r}.")
    h = float(half_life) * (steps if unit == "run" else 1.0)
    return 0.0 if h == 0 else 0.5 ** (1.0 / h)


def areas_of(lrs, half_life: float = DEFAULT_HALF_LIFE, unit: str = DEFAULT_HALF_LIFE_UNIT) -> tuple[float, float]:
    """``(S1, S2)`` of a learning-rate sequence (see the module docstring)."""
    lrs = np.asarray(lrs, dtype=float)
    lam = momentum(half_life, len(lrs), unit)
    drops = np.maximum(lrs[:-1] - lrs[1:], 0.0)
    m, s2 = 0.0, 0.0
    for d in drops:
        m = lam * m + d
        s2 += m
    return float(lrs.sum()), float(s2)


def lr_areas(schedule: dict, at_step: int, *, half_life: float = DEFAULT_HALF_LIFE,
             half_life_unit: str = DEFAULT_HALF_LIFE_UNIT) -> tuple[float, float]:
    """``(S1, S2)`` of the measurement after ``at_step`` steps of a run with this ``info["lr_schedule"]``."""
    return areas_of(lr_sequence(schedule, at_step), half_life, half_life_unit)


def tokens_per_step(proxy: dict) -> int:
    """``batch_size * block_size`` of a proxy config dict (a record's ``proxy``); a one-line error when unknown."""
    step = step_tokens(proxy)
    if not step:
        raise FitError(f"A proxy config must give batch_size and block_size. Got {proxy!r}. Pass the record's proxy config.")
    return step


def record_areas(record, tokens: float, **kw) -> tuple[float, float]:
    """``(S1, S2)`` of a run record's measurement at ``tokens`` (a key of its curves)."""
    schedule = (record.info or {}).get("lr_schedule")
    if not schedule:
        raise FitError(f"Run {record.run_id} has no info['lr_schedule'], so its learning-rate areas are unknown. "
                       "Use runs swept by this mixopt, or pass the areas yourself.")
    step = float(tokens) / tokens_per_step(record.proxy or {})
    return lr_areas(schedule, round(step) if abs(step - round(step)) < 1e-9 else step, **kw)


def straight_run_areas(proxy, tokens: float, **kw) -> tuple[float, float]:
    """``(S1, S2)`` at the end of a run of this proxy config's schedule trained straight to ``tokens``.

    ``proxy`` is a ``ProxyConfig`` or its dict (e.g. the store's ``config["proxy"]``); missing fields take their defaults.
    """
    body = proxy.model_dump() if hasattr(proxy, "model_dump") else dict(proxy or {})
    cfg = SimpleNamespace(**{**ProxyConfig().model_dump(), **body, "checkpoints": [1.0]})
    steps = int(float(tokens) // tokens_per_step(body or ProxyConfig().model_dump()))
    if steps < 1:
        raise FitError(f"tokens must cover at least one step ({tokens_per_step(vars(cfg))} tokens). Got {tokens!r}. Ask for a larger budget.")
    return lr_areas(schedule_info(cfg, steps), steps, **kw)


def area_inputs(W, model_params, tokens, S1, S2) -> np.ndarray:
    """``X = [W | model_params | tokens | S1 | S2]`` (n, d + 4); scalars broadcast to every row."""
    X = scale_inputs(W, model_params, tokens)
    n = len(X)
    return np.column_stack([X, np.broadcast_to(np.asarray(S1, dtype=float), (n,)), np.broadcast_to(np.asarray(S2, dtype=float), (n,))])


def record_inputs(records, W, model_params, tokens, **kw) -> np.ndarray:
    """``[W | N | D | S1 | S2]`` for measurements of runs: row i is ``records[i]`` at ``tokens[i]`` (:func:`record_areas`)."""
    D = np.broadcast_to(np.asarray(tokens, dtype=float), (len(records),))
    S = np.array([record_areas(r, d, **kw) for r, d in zip(records, D)]).reshape(-1, N_AREAS)
    return area_inputs(W, model_params, D, S[:, 0], S[:, 1])


# ---------------------------------------------------------------- the law

# theta = [l0, l1, a0, a1, log alpha, c0, c1, g_n, g_s], on the standardised target
_PRIOR_MU = np.array([0.0, 0.0, 0.0, 0.0, math.log(0.5), math.log(0.3), 0.0, 0.0, 0.0])
_PRIOR_SD = np.array([3.0, 3.0, 2.0, 1.0, 0.7, 2.0, 1.0, 1.0, 1.0])
_SIZE_TERMS, _GAIN_TERMS = [1, 3, 6, 7], [7, 8]


def _gain(theta, u, x1):
    return np.exp(theta[7] * u + theta[8] * np.log10(x1))


def _law(theta, u, x1, x2, m):
    l0, l1, a0, a1, la, c0, c1 = theta[:7]
    return l0 + l1 * u + np.exp(a0 + a1 * u) * x1 ** (-math.exp(la)) - np.exp(c0 + c1 * u) * x2 + _gain(theta, u, x1) * m


def _law_grad(theta, u, x1, x2, m) -> np.ndarray:
    """d _law / d theta, (n, 9)."""
    alpha = math.exp(theta[4])
    fwd = np.exp(theta[2] + theta[3] * u) * x1 ** (-alpha)
    ann = np.exp(theta[5] + theta[6] * u) * x2
    gm = _gain(theta, u, x1) * m
    one = np.ones_like(u)
    return np.column_stack([one, u, fwd, u * fwd, -alpha * np.log(x1) * fwd, -ann, -u * ann, u * gm, np.log10(x1) * gm])


class AnnealingLaw(ScaleEstimator):
    """The LR-annealing law with a mixture effect, across model sizes (see the module docstring).

    Parameters
    ----------
    schedule : dict, ProxyConfig or None
        The proxy config whose schedule a row without areas was trained with
        (a straight run to its tokens, :func:`straight_run_areas`). None: every
        ``X`` must carry ``S1, S2``.
    half_life, half_life_unit : float, {"run", "steps"}
        The annealing momentum, for areas computed from ``schedule``; areas
        given in ``X`` must use the same.
    mixture_gain : bool
        Fit ``k(u, v)``, the growth of the mixture effect with size and ``S1``; False fixes k = 1.
    mixture_model : {"offsets", "scale-gp"}
        ``offsets``: m(w) is one GP on the per-mixture offsets, shared by every
        size and budget. ``scale-gp``: the law gives the level and a
        :class:`~mixopt.surrogates.scale.ScaleGP` models the rest over
        ``[W | N | D]``, so the mixture effect may decorrelate across sizes
        (``mixture_gain`` is then ignored).
    base_params : dict or None
        Parameters of the mixture GP (``GPSurrogate``).
    noise_variance : float or None
        Measured seed-noise variance of one run's target (target units): the
        GP's noise, and a floor on the law's residual noise. None fits both.
    random_state : int
        Seed of the mixture GP.
    """

    name = "annealing-law"

    def __init__(self, schedule=None, half_life: float = DEFAULT_HALF_LIFE, half_life_unit: str = DEFAULT_HALF_LIFE_UNIT,
                 mixture_gain: bool = False, mixture_model: str = "offsets", base_params: dict | None = None, noise_variance: float | None = None,
                 random_state: int = 0):
        self.schedule = schedule
        self.half_life = half_life
        self.half_life_unit = half_life_unit
        self.mixture_gain = mixture_gain
        self.mixture_model = mixture_model
        self.base_params = base_params
        self.noise_variance = noise_variance
        self.random_state = random_state

    # ------------------------------------------------ inputs
    def _areas_from_schedule(self, D, where):
        if self.schedule is None:
            raise FitError(f"{self.name} needs the learning-rate areas S1, S2 of every row: {where} has only [W | model_params | tokens]. "
                           "Pass X = area_inputs(W, N, D, S1, S2) (record_areas), or set schedule= to the store's proxy config.")
        if not np.all(np.isfinite(D) & (D > 0)):
            raise FitError(f"tokens must be positive and finite to compute learning-rate areas. Got {D[~(np.isfinite(D) & (D > 0))][0]!r} in {where}.")
        cache = {d: straight_run_areas(self.schedule, d, half_life=self.half_life, half_life_unit=self.half_life_unit) for d in np.unique(D)}
        return np.array([cache[d] for d in D]).reshape(-1, N_AREAS)

    def _split(self, X, n_domains: int | None, where: str = "X"):
        """(W, N, D, S (n, 2)) from X with or without areas; ``n_domains`` None: decide by which prefix is a mixture."""
        X = as_float_array(X, where=where, what="[W | N | D | S1 | S2] rows")
        if X.ndim != 2:
            raise MixtureError(f"{where} must be 2-D with shape (n, n_domains + 4) or (n, n_domains + 2). Got shape {X.shape}. Reshape your data: "
                               "one row is X.reshape(1, -1); build rows with area_inputs(W, N, D, S1, S2).")
        if n_domains is not None and X.shape[1] not in (n_domains + N_SCALE, n_domains + N_SCALE + N_AREAS):
            raise MixtureError(f"{where} has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input "
                               f"({n_domains} domains): pass {n_domains + N_SCALE + N_AREAS} ([W | N | D | S1 | S2]) or {n_domains + N_SCALE} "
                               "([W | N | D] with schedule set).")
        if X.shape[1] < N_SCALE + 2:
            raise MixtureError(f"{where} has {X.shape[1]} feature(s) (shape={X.shape}) while a minimum of {N_SCALE + 2} is required: "
                               "[W | N | D | S1 | S2], or [W | N | D] with schedule set. Build it with area_inputs(W, N, D, S1, S2).")
        if n_domains is None:
            head = X[:, :-N_SCALE]
            plain = bool(np.all((head >= 0) & (head <= 1 + 1e-6)) and np.allclose(head.sum(1), 1.0, atol=1e-4))
            n_domains = X.shape[1] - N_SCALE - (0 if plain else N_AREAS)
            if n_domains < 1:  # no room for areas: [W | N | D] rows, whose weights check_weights explains
                n_domains = X.shape[1] - N_SCALE
        W = check_weights(X[:, :n_domains], where=where)
        N, D = X[:, n_domains], X[:, n_domains + 1]
        if X.shape[1] == n_domains + N_SCALE:
            S = self._areas_from_schedule(D, where)
        else:
            S = X[:, n_domains + N_SCALE:]
        bad = ~np.isfinite(S) | (S[:, [0]] <= 0) | (S < 0)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise FitError(f"{('S1', 'S2')[c]} must be finite, S1 > 0 and S2 >= 0. Got {S[r, c]!r} in row {r} of {where}. "
                           "Compute the areas with record_areas / lr_areas (a row needs at least one training step).")
        return W, N, D, S

    # ------------------------------------------------ fit
    def _free(self, active_size: bool) -> np.ndarray:
        fixed = set() if active_size else set(_SIZE_TERMS)
        if not self.mixture_gain or self.mixture_model == "scale-gp":
            fixed |= set(_GAIN_TERMS)
        return np.array([j for j in range(len(_PRIOR_MU)) if j not in fixed])

    def fit(self, X, y) -> AnnealingLaw:
        """Fit on ``X`` (n, d + 4) or, with ``schedule``, (n, d + 2), and targets ``y`` (n,); returns self."""
        if self.half_life_unit not in HALF_LIFE_UNITS:
            raise FitError(f"half_life_unit must be one of {HALF_LIFE_UNITS}. Got {self.half_life_unit!r}.")
        if self.mixture_model not in MIXTURE_MODELS:
            raise FitError(f"mixture_model must be one of {MIXTURE_MODELS}. Got {self.mixture_model!r}.")
        W, N, D, S = self._split(X, None)
        n_features = np.asarray(X).shape[1]
        _, _, y = self._check_fit(scale_inputs(W, N, D), y)
        if not self.known_[0]:
            raise FitError(f"{self.name} needs every run's model_params. Give each run its size (runs import --model-params) or use the default GP.")
        self.n_features_in_, self.n_domains_ = n_features, W.shape[1]
        _, inv = np.unique(np.round(W, 9), axis=0, return_inverse=True)
        self.groups_ = inv.ravel()
        G = int(self.groups_.max()) + 1
        if G < GPSurrogate.min_runs:
            raise FitError(f"{self.name} needs at least {GPSurrogate.min_runs} different mixtures to learn the mixture effect. Got {G}. Add runs.")
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        self.s_ref_ = float(S[:, 0].max())
        z = (y - self.y_mean_) / self.y_scale_
        u = np.log10(N) - self.ref_[0]
        x1, x2 = S[:, 0] / self.s_ref_, S[:, 1] / self.s_ref_
        self.free_ = self._free(bool(self.active_[0]))
        floor = math.sqrt(self.noise_variance) / self.y_scale_ if self.noise_variance else 1e-3
        sigma, best = 0.1, None
        with threadpool_limits(limits=1, user_api="blas"):
            for _ in range(2):  # fit, re-weigh the priors by the measured residual noise, fit again
                best = min((self._solve(z, u, x1, x2, G, sigma, la, best) for la in (math.log(0.3), math.log(1.0))), key=lambda r: r.cost)
                resid = z - _law(best.x[:len(_PRIOR_MU)], u, x1, x2, best.x[len(_PRIOR_MU):][self.groups_])
                sigma = max(math.sqrt(resid @ resid / max(len(z) - G - len(self.free_), 1)), floor)
        self.theta_ = best.x[:len(_PRIOR_MU)]
        self.offsets_ = best.x[len(_PRIOR_MU):]
        self.sigma_ = sigma
        J = best.jac
        k = len(self.free_)
        self.cov_ = np.linalg.pinv(J.T @ J)[:k, :k]  # Laplace, of the free law parameters (the offsets' is the GP's)
        if self.mixture_model == "scale-gp":  # the rest of the signal, mixture effect included, across scales
            level = _law(self.theta_, u, x1, x2, 0.0) * self.y_scale_ + self.y_mean_
            self.mixture_ = ScaleGP(base_params=self.base_params, random_state=self.random_state, noise_variance=self.noise_variance)
            self.mixture_.fit(scale_inputs(W, N, D), y - level)
            return self
        Wg = np.array([W[self.groups_ == g][0] for g in range(G)])
        params = dict(self.base_params or {})
        if self.noise_variance is not None:
            params["noise_variance"] = float(self.noise_variance)
        self.mixture_ = GPSurrogate(**params, random_state=self.random_state).fit(Wg, self.offsets_ * self.y_scale_)
        return self

    def _solve(self, z, u, x1, x2, G, sigma, log_alpha, start):
        k, n = len(self.free_), len(z)
        mu, sd = _PRIOR_MU[self.free_], _PRIOR_SD[self.free_]

        def resid(p):
            theta = np.array(_PRIOR_MU)
            theta[self.free_] = p[:k]
            off = p[k:]
            r = (z - _law(theta, u, x1, x2, off[self.groups_])) / sigma
            return np.r_[r, (p[:k] - mu) / sd, off, 1e2 * off.mean()]  # offsets ~ N(0, 1); centred: the level is L0's

        def jac(p):
            theta = np.array(_PRIOR_MU)
            theta[self.free_] = p[:k]
            off = p[k:]
            J = np.zeros((n + k + G + 1, k + G))
            J[:n, :k] = -_law_grad(theta, u, x1, x2, off[self.groups_])[:, self.free_] / sigma
            J[np.arange(n), k + self.groups_] = -_gain(theta, u, x1) / sigma
            J[n + np.arange(k), np.arange(k)] = 1.0 / sd
            J[n + k + np.arange(G), k + np.arange(G)] = 1.0
            J[-1, k:] = 1e2 / G
            return J

        if start is None:
            x0 = np.r_[mu, np.zeros(G)]
            x0[list(self.free_).index(0)] = z.min() - 0.5
            x0[list(self.free_).index(4)] = log_alpha
            means = np.array([z[self.groups_ == g].mean() for g in range(G)])
            x0[k:] = means - means.mean()
        else:
            x0 = np.r_[start.x[self.free_], start.x[len(_PRIOR_MU):]]
            x0[list(self.free_).index(4)] = log_alpha
        res = least_squares(resid, x0, jac=jac, method="trf", max_nfev=100 * len(x0))
        full = np.array(_PRIOR_MU)
        full[self.free_] = res.x[:k]
        res.x = np.r_[full, res.x[k:]]
        return res

    # ------------------------------------------------ predict
    def predict(self, X, return_std: bool = False):
        """Mean (n,) and, with ``return_std``, the predictive std (n,) for ``X`` with or without areas."""
        if not hasattr(self, "theta_"):
            raise EstimatorNotFittedError(f"This {self.name} estimator is not fitted yet. Call fit(X, y) first.")
        W, N, D, S = self._split(X, self.n_domains_)
        u = np.log10(N) - self.ref_[0]
        x1, x2 = S[:, 0] / self.s_ref_, S[:, 1] / self.s_ref_
        rest = isinstance(self.mixture_, ScaleGP)
        m, sm = self.mixture_.predict(scale_inputs(W, N, D) if rest else W, return_std=True)
        m, sm = m / self.y_scale_, sm / self.y_scale_
        mean = _law(self.theta_, u, x1, x2, 0.0) + m if rest else _law(self.theta_, u, x1, x2, m)
        if not return_std:
            return mean * self.y_scale_ + self.y_mean_
        grads = _law_grad(self.theta_, u, x1, x2, 0.0 if rest else m)[:, self.free_]  # delta method over the free law parameters
        gain = 1.0 if rest else _gain(self.theta_, u, x1)
        noise = 0.0 if rest else self.sigma_**2  # ScaleGP's std carries its own noise
        var = np.einsum("ij,jk,ik->i", grads, self.cov_, grads) + (gain * sm) ** 2 + noise
        return mean * self.y_scale_ + self.y_mean_, np.sqrt(var) * self.y_scale_
