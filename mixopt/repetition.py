"""What repeated data is worth.

Two families of models, both pure functions over numbers and numpy arrays:

* Muennighoff et al. (2023), *Scaling Data-Constrained Language Models*:
  repeated tokens count as fewer "effective" tokens, saturating at
  ``U * (1 + R*)``. Used to cap how often a domain may be repeated.
* Goyal et al. (2024), *Scaling Laws for Data Filtering -- Data Curation cannot
  be Compute Agnostic*: each quality pool has a utility ``b < 0`` that halves
  every ``tau`` repetitions. Used to decide how many quality pools to keep for a
  given budget: small budgets favour the best pool alone, large budgets favour
  more (less repeated) data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from .errors import BudgetError, ConfigError

# Muennighoff et al. (2023), fitted on C4; Table/eq. (5)-(6) of the paper.
R_STAR = 15.387756  # R_D*: repetitions after which extra epochs are worth ~1/e of fresh data
R_N_STAR = 5.309743  # R_N*: same, for excess parameters
DC_A = math.exp(6.255414)
DC_B = math.exp(7.3049974)
DC_E = math.exp(0.6254804)
DC_ALPHA = 0.3526596
DC_BETA = 0.3526596

# Goyal et al. (2024): sample counts are divided by this before the power law. Below a * samples / POOL_NORMALIZER = 1
# the law inverts (n^b grows with |b|: weaker pools look better); planning.pool_choice does not let it decide there.
POOL_NORMALIZER = 1e5
# Guard against budgets that would make us iterate over absurd repetition counts.
MAX_REPETITIONS = 10_000_000

Objective = Literal["effective_utility", "effective_data"]
OBJECTIVES: tuple[str, ...] = ("effective_utility", "effective_data")


# ---------------------------------------------------------------------------
# Muennighoff et al.: effective tokens and the data-constrained loss
# ---------------------------------------------------------------------------


def _as_finite(x: Any, name: str, *, positive: bool = False, nonneg: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise BudgetError(f"{name} must be a number or an array of numbers. Got {x!r}. Pass numeric values.") from None
    if not np.all(np.isfinite(arr)):
        raise BudgetError(f"{name} must be finite. Got {x!r}. Replace inf/NaN with a finite token count.")
    if positive and np.any(arr <= 0):
        raise BudgetError(f"{name} must be > 0. Got {x!r}. Pass a positive value.")
    if nonneg and np.any(arr < 0):
        raise BudgetError(f"{name} must be >= 0. Got {x!r}. Pass a non-negative value.")
    return arr


def _out(arr: np.ndarray) -> float | np.ndarray:
    return float(arr) if arr.ndim == 0 else arr


def effective_tokens(D: Any, U: Any, r_star: float = R_STAR) -> float | np.ndarray:
    """Tokens that ``D`` tokens drawn from ``U`` unique ones are worth.

    ``D' = D`` if ``D <= U``, else ``U + U * R* * (1 - exp(-(D/U - 1) / R*))``.
    Repeated epochs decay exponentially in value, so ``D'`` saturates at
    ``U * (1 + R*)``. Broadcasts over numpy arrays; returns a float for scalars.
    """
    D_ = _as_finite(D, "Tokens seen D", nonneg=True)
    U_ = _as_finite(U, "Unique tokens U", positive=True)
    r = float(_as_finite(r_star, "r_star", positive=True))
    D_, U_ = np.broadcast_arrays(D_, U_)
    repeats = np.maximum(D_ / U_ - 1.0, 0.0)
    out = np.where(D_ <= U_, D_, U_ + U_ * r * -np.expm1(-repeats / r))
    return _out(out)


def data_constrained_loss(
    N: Any,
    D: Any,
    U: Any,
    *,
    A: float = DC_A,
    B: float = DC_B,
    E: float = DC_E,
    alpha: float = DC_ALPHA,
    beta: float = DC_BETA,
    r_star: float = R_STAR,
    r_n_star: float = R_N_STAR,
) -> float | np.ndarray:
    """Loss ``E + A / N'^alpha + B / D'^beta`` of a model with ``N`` parameters
    trained on ``D`` tokens from ``U`` unique ones (Muennighoff et al., eq. 5-6).

    ``D' = effective_tokens(D, U)``. Parameters beyond the compute-optimal size
    for ``U`` tokens, ``U_N = min(N, G * (U*G)^(beta/alpha))`` with
    ``G = (alpha*A / (beta*B))^(1/(alpha+beta))``, are worth less in the same way:
    ``N' = U_N + U_N * R_N* * (1 - exp(-R_N / R_N*))``, ``R_N = N/U_N - 1``.
    """
    N_ = _as_finite(N, "Parameter count N", positive=True)
    D_ = _as_finite(D, "Tokens seen D", positive=True)
    U_ = _as_finite(U, "Unique tokens U", positive=True)
    rn = float(_as_finite(r_n_star, "r_n_star", positive=True))
    N_, D_, U_ = np.broadcast_arrays(N_, D_, U_)
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    U_N = np.minimum(N_, (U_ * G) ** (beta / alpha) * G)
    R_N = N_ / U_N - 1.0
    N_eff = U_N + U_N * rn * -np.expm1(-R_N / rn)
    D_eff = np.asarray(effective_tokens(D_, U_, r_star))
    return _out(E + A / N_eff**alpha + B / D_eff**beta)


# ---------------------------------------------------------------------------
# Goyal et al.: quality pools whose utility decays with repetition
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """One quality pool: utility ``b < 0`` that halves every ``tau`` repetitions."""

    name: str
    b: float
    tau: float


def as_pool(p: Any, index: int = 0) -> Pool:
    """Accept a `Pool`, a mapping with ``b``/``tau`` (and optional ``name``), an
    object with ``.b``/``.tau``, or a ``(b, tau)`` / ``(name, b, tau)`` tuple."""
    if isinstance(p, Pool):
        pool = p
    elif isinstance(p, Mapping):
        if "b" not in p or "tau" not in p:
            raise ConfigError(f"Pool #{index} must have 'b' and 'tau'. Got keys {sorted(p)}. Add the missing field.")
        pool = Pool(str(p.get("name", f"pool{index}")), p["b"], p["tau"])
    elif hasattr(p, "b") and hasattr(p, "tau"):
        pool = Pool(str(getattr(p, "name", f"pool{index}")), p.b, p.tau)
    elif isinstance(p, (tuple, list)) and len(p) in (2, 3):
        pool = Pool(f"pool{index}", *p) if len(p) == 2 else Pool(str(p[0]), p[1], p[2])
    else:
        raise ConfigError(f"Pool #{index} must be a Pool, a mapping with b and tau, or a (b, tau) pair. Got {p!r}.")
    try:
        b, tau = float(pool.b), float(pool.tau)
    except (TypeError, ValueError):
        raise ConfigError(f"Pool '{pool.name}' needs numeric b and tau. Got b={pool.b!r}, tau={pool.tau!r}.") from None
    if not (math.isfinite(b) and b < 0):
        raise ConfigError(
            f"Pool '{pool.name}' utility b must be finite and < 0 (error falls as data grows). Got b={pool.b!r}. "
            "Use the negative exponent of the fitted power law."
        )
    if not (math.isfinite(tau) and tau > 0):
        raise ConfigError(
            f"Pool '{pool.name}' half-life tau must be finite and > 0 repetitions. Got tau={pool.tau!r}. "
            "Fit it with mixopt.repetition_fit or use a prior such as 5."
        )
    return Pool(pool.name, b, tau)


def _check_pools(pools: Iterable[Any]) -> list[Pool]:
    out = [as_pool(p, i) for i, p in enumerate(pools)]
    if not out:
        raise ConfigError("At least one quality pool is needed. Got an empty pool list. Add pools with name, b and tau.")
    return out


def _check_common(samples: Any, a: float, pool_size: float, objective: str, normalizer: float) -> float:
    S = float(_as_finite(samples, "Sample budget", positive=True))
    if not (math.isfinite(a) and a > 0):
        raise ConfigError(f"Scale a must be finite and > 0. Got a={a!r}. Use the fitted value (e.g. 0.025).")
    if not (math.isfinite(pool_size) and pool_size > 0):
        raise ConfigError(f"pool_size must be finite and > 0 samples. Got {pool_size!r}. Set the size of one pool.")
    if not (math.isfinite(normalizer) and normalizer > 0):
        raise ConfigError(f"normalizer must be finite and > 0. Got {normalizer!r}. Use the default 1e5.")
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {list(OBJECTIVES)}. Got {objective!r}. Pick one of those.")
    return S


def sort_pools(pools: Iterable[Any]) -> list[Pool]:
    """Pools in the order they are added: most negative ``b`` (most useful) first; ties keep input order."""
    return sorted(_check_pools(pools), key=lambda p: p.b)


def pool_error(
    pools: Sequence[Any],
    samples: float,
    *,
    a: float,
    d: float,
    pool_size: float,
    objective: Objective = "effective_utility",
    normalizer: float = POOL_NORMALIZER,
) -> float:
    """Predicted error ``y`` of training for ``samples`` on the union of ``pools``.

    ``m = len(pools)`` pools of ``pool_size`` samples each form one epoch of
    ``P = m * pool_size`` samples; ``K = floor(S / P)``, and for epoch ``k``
    ``n_k = a*min((k+1)P, S)/1e5``, ``n'_k = a*kP/1e5``. Each pool's half-life is
    multiplied by ``m`` (as in the authors' reference implementation, since a
    pool in a union of ``m`` is repeated ``m`` times less often per epoch),
    so its decay at epoch ``k`` is ``delta_ik = 0.5^(k / (m * tau_i))``.

    * ``effective_utility``: ``b_k = mean_i b_i delta_ik`` and
      ``y = (n_0^b_0 + d) * prod_{k=1..K} (n_k / n'_k)^b_k``.
    * ``effective_data``: ``eff_0 = n_0``,
      ``eff_k = eff_{k-1} + (n_k - n'_k)/m * sum_i delta_ik``,
      ``b_k = sum_i b_i delta_ik / sum_i delta_ik`` and
      ``y = n_0^b_0 * prod_{k>=1} (eff_k / eff_{k-1})^b_k + d``; for one pool this
      is ``(sum_k (n_k - n'_k) 0.5^(k/tau))^b + d``.

    When ``S`` is an exact multiple of ``P`` the last epoch adds nothing and
    contributes a factor of 1.
    """
    ps = _check_pools(pools)
    S = _check_common(samples, a, pool_size, objective, normalizer)
    if not math.isfinite(d):
        raise ConfigError(f"Irreducible error d must be finite. Got d={d!r}. Use the fitted value (e.g. 0.1).")
    m = len(ps)
    P = m * float(pool_size)
    K = int(S // P)
    if K > MAX_REPETITIONS:
        raise BudgetError(
            f"A budget of {S:.4g} samples repeats {m} pool(s) of {pool_size:.4g} samples {S / P:.4g} times, more than "
            f"{MAX_REPETITIONS}. Use a smaller budget or larger pools."
        )
    k = np.arange(K + 1, dtype=float)  # (K+1,)
    n = a * np.minimum((k + 1) * P, S) / normalizer  # (K+1,)
    n_prev = a * k * P / normalizer  # (K+1,)
    b = np.array([p.b for p in ps])[:, None]  # (m, 1)
    tau = np.array([p.tau for p in ps])[:, None] * m  # (m, 1): half-life scaled by m, see docstring
    delta = 0.5 ** (k[None, :] / tau)  # (m, K+1)
    if objective == "effective_utility":
        b_k = (b * delta).mean(axis=0)  # (K+1,)
        log_ratio = np.log(n[1:] / n_prev[1:])
        return float((n[0] ** b_k[0] + d) * np.exp(np.sum(b_k[1:] * log_ratio)))
    dsum = delta.sum(axis=0)  # (K+1,)
    # b-weighted mean over pools with weights delta_ik, computed from log-weights so
    # that it stays defined when every delta_ik underflows to 0 at very large k.
    log_delta = -np.log(2.0) * k[None, :] / tau  # (m, K+1)
    w = np.exp(log_delta - log_delta.max(axis=0, keepdims=True))  # (m, K+1)
    b_k = (b * w).sum(axis=0) / w.sum(axis=0)
    eff = np.cumsum((n - n_prev) / m * dsum)  # eff[0] == n_0
    log_ratio = np.log(eff[1:] / eff[:-1])
    return float(n[0] ** b_k[0] * np.exp(np.sum(b_k[1:] * log_ratio)) + d)


def pool_set_errors(
    pools: Sequence[Any],
    samples: float,
    *,
    a: float,
    d: float,
    pool_size: float,
    objective: Objective = "effective_utility",
    normalizer: float = POOL_NORMALIZER,
) -> list[float]:
    """Errors ``[y(top-1), y(top-2), ..., y(top-m)]``, pools ranked by ``b`` (most negative first)."""
    ranked = sort_pools(pools)
    return [
        pool_error(ranked[: i + 1], samples, a=a, d=d, pool_size=pool_size, objective=objective, normalizer=normalizer)
        for i in range(len(ranked))
    ]


def best_pool_count(errors: Sequence[float]) -> int:
    """Number of top pools with the lowest error (first one on ties)."""
    if len(errors) == 0:
        raise ConfigError("Cannot pick the best pool set from an empty error list. Pass at least one pool.")
    return int(np.argmin(np.asarray(errors, dtype=float))) + 1
