"""Mixtures of domains: the ``Mixture`` and ``Phases`` types, the one simplex check and projection, and the baselines.

A mixture maps domain name -> weight. Weights are token shares: finite, >= 0
and summing to 1 (within 1e-6 after normalisation). Whenever a vector is needed
the domain order is sorted by name. The samplers that propose mixtures (and
RegMix's temperature prior) are in :mod:`mixopt.samplers`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.sparse import issparse

from .errors import BudgetError, ConfigError, MixtureError

SUM_TOLERANCE = 1e-6  # a Mixture: weights we wrote ourselves
ROW_SUM_TOLERANCE = 1e-2  # rows given to estimators and searches (rounded tables, float noise); renormalised
IMPORT_SUM_TOLERANCE = 1e-2  # imported tables: RegMix rounds weights to 3 decimals; rows sum to 1 within ~0.004


Phases = list[tuple[float, "Mixture"]]
"""A data schedule: ``[(start_fraction, Mixture), ...]``, the first start 0, starts increasing, each phase
running to the next start (or the end). One convention for specs, records, the trainer and plans."""


class Mixture(dict):
    """A validated ``{domain: token share}`` mapping, sorted by domain name."""

    def __init__(self, weights: Mapping[str, float], *, where: str = "mixture", tolerance: float = SUM_TOLERANCE):
        clean = validate_weights(weights, where=where, tolerance=tolerance)
        super().__init__(sorted(clean.items()))

    @property
    def domains(self) -> list[str]:
        return list(self.keys())

    def vector(self, domains: Sequence[str]) -> np.ndarray:
        """Weights as a vector in the given domain order; raises on unknown names."""
        unknown = sorted(set(self) - set(domains))
        if unknown:
            raise MixtureError(
                f"Mixture names unknown domains {unknown}; known domains are {sorted(domains)}. "
                "Fix the domain names or add those domains to the config."
            )
        return np.array([self.get(d, 0.0) for d in domains], dtype=float)

    @classmethod
    def from_vector(cls, vector: Sequence[float], domains: Sequence[str], *, drop_zeros: bool = False) -> "Mixture":
        v = np.asarray(vector, dtype=float)
        if v.shape != (len(domains),):
            raise MixtureError(f"Mixture vector has shape {v.shape}, but {len(domains)} domains were given.")
        w = {d: float(x) for d, x in zip(domains, v) if not (drop_zeros and x == 0.0)}
        return cls(w)

    def rounded(self, digits: int = 6) -> "Mixture":
        """Round and renormalise so that the weights still sum to 1."""
        domains = self.domains
        v = np.round(self.vector(domains), digits)
        return Mixture.from_vector(v / v.sum(), domains)


def validate_weights(weights: Mapping[str, float], *, where: str = "mixture", tolerance: float = SUM_TOLERANCE) -> dict[str, float]:
    """Check weights are finite, non-negative and sum to 1; normalise to exactly 1."""
    if not isinstance(weights, Mapping) or len(weights) == 0:
        raise MixtureError(f"A mixture must be a non-empty mapping of domain -> weight. Got {weights!r} in {where}.")
    out: dict[str, float] = {}
    for name, value in weights.items():
        if not isinstance(name, str) or not name:
            raise MixtureError(f"Domain names must be non-empty strings. Got {name!r} in {where}.")
        if isinstance(value, (bool, np.bool_)):  # float(True) is 1.0; YAML reads yes/no/on/off as booleans too
            raise MixtureError(f"Weight of domain {name!r} must be a number. Got the boolean {str(value).lower()} in {where} "
                               "(YAML reads true/false, yes/no, on/off as booleans). Write a number in [0, 1].")
        try:
            w = float(value)
        except (TypeError, ValueError):
            raise MixtureError(f"Weight of domain {name!r} must be a number. Got {value!r} in {where}.") from None
        if not math.isfinite(w):
            raise MixtureError(f"Weights must be finite. Got {w} for domain {name!r} in {where}. Replace it with a number in [0, 1].")
        if w < 0:
            raise MixtureError(f"Weights must be >= 0. Got {w} for domain {name!r} in {where}. Use 0 to leave a domain out.")
        out[name] = w
    total = math.fsum(out.values())  # exact: 6-digit plan shares that sum to 1 come back unchanged, not as 0.29072199...
    if abs(total - 1.0) > tolerance:
        raise MixtureError(f"Mixture weights must sum to 1 (±{tolerance:g}). Got {total:.6g} in {where}. Normalise the weights or fix the typo.")
    return out if total == 1.0 else {k: v / total for k, v in out.items()}


def mixture_rows(mixtures: Iterable[Mapping[str, float]], domains: Sequence[str]) -> np.ndarray:
    """Mixtures as the rows of an array, columns in ``domains`` order; a domain a mixture lacks is 0, and a name not in
    ``domains`` is dropped without a word (:meth:`Mixture.vector` refuses it). Exactly
    ``np.array([[m.get(d, 0.0) for d in domains] for m in mixtures])``: float64 for float shares, shape ``(0,)`` for
    no mixtures."""
    return np.array([[m.get(d, 0.0) for d in domains] for m in mixtures])


def as_float_array(X, *, where: str, what: str, error: type[Exception] = MixtureError) -> np.ndarray:
    """``X`` as a dense real float array, or a one-line ``error`` for sparse, complex or non-numeric input
    (the wording scikit-learn's estimator checks look for)."""
    if issparse(X):
        raise error(f"{where} is a sparse matrix; {what} must be a dense array. Pass {where}.toarray().")
    if np.asarray(X).dtype.kind == "c":
        raise error(f"Complex data not supported: {what} in {where} must be real numbers. Pass the real part.")
    try:
        return np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise error(f"{where} must be a numeric array of {what}. Got an entry that is not a number ({exc}).") from None


def check_simplex_rows(W, *, where: str = "W", tolerance: float = ROW_SUM_TOLERANCE) -> np.ndarray:
    """The one simplex check for arrays: finite weights >= 0 whose rows sum to 1 (± ``tolerance``), renormalised.

    Parameters
    ----------
    W : array-like of shape (n_runs, n_domains)
        Non-negative finite weights; each row must sum to 1 within ``tolerance``.
    where : str
        Name used in error messages.
    tolerance : float
        Allowed ``|row sum - 1|``: :data:`SUM_TOLERANCE`, :data:`ROW_SUM_TOLERANCE` or :data:`IMPORT_SUM_TOLERANCE`.

    Returns
    -------
    ndarray of shape (n_runs, n_domains), float64, rows summing to 1.
    """
    W = as_float_array(W, where=where, what="mixture weights")
    if W.ndim != 2:
        raise MixtureError(
            f"{where} must be 2-D with shape (n_runs, n_domains). Got shape {W.shape}. "
            "Reshape your data: a single mixture is W.reshape(1, -1)."
        )
    if W.shape[1] == 0:
        raise MixtureError(f"{where} has 0 feature(s) (shape={W.shape}) while a minimum of 1 is required: a mixture needs at least one domain.")
    bad = ~np.isfinite(W)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise MixtureError(f"Mixture weights must be finite (no NaN or inf). Got {W[r, c]} in row {r}, column {c} of {where}. "
                           "Fill or drop that row.")
    if (W < 0).any():
        r, c = np.argwhere(W < 0)[0]
        raise MixtureError(f"Mixture weights must be >= 0. Negative values in data passed to {where}: {W[r, c]:.4g} in row {r}, "
                           f"column {c}. Use 0 to leave a domain out.")
    sums = W.sum(axis=1)
    off = np.abs(sums - 1.0) > tolerance
    if off.any():
        rows = np.flatnonzero(off)
        raise MixtureError(
            f"Mixture weights must sum to 1 (±{tolerance:g}). Got {sums[rows[0]]:.6g} in row {rows[0]} of {where} "
            f"({len(rows)} such rows: {rows[:5].tolist()}). Normalise the rows or drop them."
        )
    return W / sums[:, None]


# ---------------------------------------------------------------- baselines

def natural_mixture(token_counts: Mapping[str, int]) -> Mixture:
    """Token-proportional mixture: every domain weighted by its unique token count."""
    total = float(sum(token_counts.values()))
    if total <= 0:
        raise MixtureError("Cannot form the natural mixture: all domains have zero tokens. Check the data paths.")
    return Mixture({d: c / total for d, c in token_counts.items()})


def uniform_mixture(domains: Sequence[str]) -> Mixture:
    return Mixture({d: 1.0 / len(domains) for d in domains})


def max_weights_for_epochs(token_counts: Mapping[str, int], budget_tokens: float, max_epochs: float) -> dict[str, float]:
    """Largest weight per domain that keeps it within ``max_epochs`` at the budget."""
    return {d: min(1.0, max_epochs * c / budget_tokens) for d, c in token_counts.items()}


def epochs_of(mixture: Mapping[str, float], token_counts: Mapping[str, int], budget_tokens: float) -> dict[str, float]:
    """How many passes over each domain's unique tokens the mixture makes at the budget."""
    return {d: (w * budget_tokens / token_counts[d]) if token_counts[d] > 0 else math.inf for d, w in mixture.items()}


def check_budget(token_counts: Mapping[str, int], budget_tokens: float, max_epochs: float) -> None:
    """Raise naming the binding domains when no mixture can meet the budget."""
    if not math.isfinite(budget_tokens) or budget_tokens <= 0:
        raise BudgetError(f"The token budget must be a positive finite number. Got {budget_tokens}.")
    supply = max_epochs * sum(token_counts.values())
    if supply < budget_tokens:
        worst = sorted(token_counts, key=token_counts.get)[:3]
        need = budget_tokens / max(sum(token_counts.values()), 1)
        raise BudgetError(
            f"The data cannot supply {budget_tokens:.3g} tokens at <= {max_epochs:g} epochs per domain: all domains together hold "
            f"{sum(token_counts.values()):.3g} unique tokens, so every domain would need {need:.3g} epochs "
            f"(smallest: {', '.join(worst)}). Lower the budget, raise max_epochs, or add data."
        )


def overall_shares(phases: Sequence[tuple[float, Mapping[str, float]]]) -> dict[str, float]:
    """Whole-run token shares of a phased schedule ``[(start_fraction, weights), ...]`` (first start 0).

    Each phase covers the budget from its start to the next phase's start (or the end).
    """
    starts = [float(s) for s, _ in phases] + [1.0]
    out: dict[str, float] = {}
    for (a, b), (_, weights) in zip(zip(starts, starts[1:]), phases):
        for d, x in weights.items():
            out[d] = out.get(d, 0.0) + (b - a) * float(x)
    return out


def round_shares(weights: Mapping[str, float], digits: int = 6, *, caps: Mapping[str, float] | None = None) -> dict[str, float]:
    """Round to `digits`, drop zeros, put the remainder on the largest weight so the sum is exactly 1 (plan files).

    ``caps`` (domain -> largest share, e.g. an epoch cap at the plan's budget): a share is never rounded above its cap,
    and the remainder goes to the largest weight with room for it, so a plan at a binding cap stays within it.
    """
    q = 10 ** digits
    caps = caps or {}
    r = {}
    for d, w in sorted(weights.items()):
        x = round(float(w), digits)
        if d in caps and x > caps[d]:
            x = math.floor(float(caps[d]) * q) / q
        if x > 0:
            r[d] = x
    if not r:
        raise MixtureError(f"A mixture needs at least one weight >= {0.5 * 10 ** -digits:g}. Got {dict(weights)}.")
    rem = 1.0 - math.fsum(r.values())
    room = [d for d in r if r[d] + rem <= caps.get(d, math.inf)]
    top = max(room or r, key=r.get)
    r[top] = round(r[top] + rem, digits)
    return r


def project_to_bounded_simplex(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean projection onto ``{w : lo <= w <= hi, sum(w) = 1}``.

    The solution is ``w = clip(v - tau, lo, hi)`` for the shift ``tau`` with
    ``f(tau) = sum(w) = 1``. ``f`` is piecewise linear and non-increasing with
    breakpoints ``v - hi`` and ``v - lo``; sorting them (a vectorised
    bisection over breakpoints) brackets ``tau`` in one linear piece, where it
    is solved exactly. O(n k log k), no iteration count to tune.

    Parameters
    ----------
    v : ndarray of shape (k,) or (n, k)
        Points to project (each row separately).
    lo, hi : ndarray of shape (k,) (or scalars)
        Bounds with ``sum(lo) <= 1 <= sum(hi)`` and ``lo <= hi``.

    Returns
    -------
    w : ndarray, same shape as ``v``
        Rows sum to 1 within 1e-12 and respect the bounds exactly.
    """
    v = np.asarray(v, dtype=float)
    single = v.ndim == 1
    V = np.atleast_2d(v)  # (n, k)
    n, k = V.shape
    lo = np.broadcast_to(np.asarray(lo, dtype=float), (k,))
    hi = np.broadcast_to(np.asarray(hi, dtype=float), (k,))
    if lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12 or np.any(lo > hi):
        raise ConfigError(f"The bounded simplex is empty: need lo <= hi and sum(lo) <= 1 <= sum(hi). Got sum(lo)={lo.sum():.4g}, sum(hi)={hi.sum():.4g}.")
    if not np.all(np.isfinite(V)):
        raise MixtureError("Cannot project weights containing NaN or inf. Check the estimator or the start point.")
    B = np.concatenate([V - hi, V - lo], axis=1)  # (n, 2k) breakpoints
    order = np.argsort(B, axis=1, kind="stable")
    T = np.take_along_axis(B, order, axis=1)
    free = np.cumsum(np.where(order < k, 1, -1), axis=1)  # coordinates strictly inside on (T_j, T_j+1)
    drop = free[:, :-1] * np.diff(T, axis=1)  # (n, 2k - 1) decrease of f over each piece
    F = hi.sum() - np.concatenate([np.zeros((n, 1)), np.cumsum(drop, axis=1)], axis=1)  # f(T_j)
    hit = F <= 1.0
    j = np.minimum(np.argmax(hit, axis=1), 2 * k - 1)  # first breakpoint with f <= 1
    jm = np.maximum(j - 1, 0)
    rows = np.arange(n)
    m = free[rows, jm]
    tau = np.where((j > 0) & (m > 0), T[rows, jm] + (F[rows, jm] - 1.0) / np.maximum(m, 1), T[rows, j])
    # sum(lo) == 1 (the minimums pin one point): rounding can leave f a hair above 1 at every breakpoint, and argmax
    # of no hit is 0, which put every coordinate at its max; past the last breakpoint every coordinate sits at lo
    tau = np.where(hit.any(axis=1), tau, T[:, -1])
    W = np.clip(V - tau[:, None], lo, hi)
    return W[0] if single else W


def as_phases(schedule, *, where: str = "schedule") -> Phases:
    """A Mixture (one phase) or ``[(start_fraction, weights), ...]`` as validated :data:`Phases`.

    Starts must begin at 0, increase strictly and lie in [0, 1); every phase's weights must be a valid mixture.
    """
    if isinstance(schedule, Mapping):
        return [(0.0, schedule if isinstance(schedule, Mixture) else Mixture(schedule, where=where))]
    phases = [(float(s), w if isinstance(w, Mixture) else Mixture(w, where=f"phase {i} of {where}"))
              for i, (s, w) in enumerate(schedule)]
    starts = [s for s, _ in phases]
    if not phases or starts[0] != 0.0 or any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] >= 1.0:
        raise MixtureError(f"Phases must start at 0 with strictly increasing start fractions below 1. Got starts {starts} in {where}. "
                           "Write them as [(0, w0), (0.8, w1), ...].")
    return phases


def __getattr__(name: str):
    """``temperature_prior`` moved to :mod:`mixopt.samplers` (RegMix's sampling prior); the old import path still works."""
    if name == "temperature_prior":
        from .samplers import temperature_prior  # noqa: PLC0415  (samplers imports this module)
        return temperature_prior
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
