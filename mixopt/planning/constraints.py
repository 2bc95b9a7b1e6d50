"""Where a mixture may go: box bounds on the simplex, from explicit weights and per-domain epoch caps.

:class:`Constraints` turns ``min_weights``/``max_weights`` and the repetition cap at a token budget
(``weight * budget / unique_tokens <= max_epochs``) into one box ``lo <= w <= hi`` with ``sum(w) = 1``, checks
that a mixture exists, and projects onto it. Every search and phase planner works inside one of these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BudgetError, ConfigError, DataError, MixtureError
from ..mixtures import max_weights_for_epochs, project_to_bounded_simplex

FEASIBLE_ATOL = 1e-9


@dataclass
class Constraints:
    """Box bounds on the simplex: ``min_weights <= w <= max_weights``, ``sum(w) = 1``.

    Attributes
    ----------
    domains : list of str, length k
        Domain order of every weight vector.
    min_weights, max_weights : ndarray of shape (k,)
        Lower and upper bounds; ``max_weights`` already includes epoch caps.
    """

    domains: list[str]
    min_weights: np.ndarray
    max_weights: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.domains)
        self.min_weights = np.asarray(self.min_weights, dtype=float).reshape(-1)
        self.max_weights = np.asarray(self.max_weights, dtype=float).reshape(-1)
        if self.min_weights.shape != (k,) or self.max_weights.shape != (k,):
            raise ConfigError(
                f"Constraints for {k} domains need bounds of shape ({k},). Got min_weights {self.min_weights.shape} "
                f"and max_weights {self.max_weights.shape}. Give one bound per domain."
            )
        _check_box(self.min_weights, self.max_weights, self.domains)

    @classmethod
    def unbounded(cls, domains: Sequence[str]) -> "Constraints":
        """The whole simplex: ``0 <= w <= 1``."""
        return cls(list(domains), np.zeros(len(domains)), np.ones(len(domains)))

    @classmethod
    def build(
        cls,
        domains: Sequence[str],
        *,
        min_weights: Mapping[str, float] | None = None,
        max_weights: Mapping[str, float] | None = None,
        token_counts: Mapping[str, int] | None = None,
        budget_tokens: float | None = None,
        max_epochs: float | Mapping[str, float] | None = None,
    ) -> "Constraints":
        """Combine explicit bounds with epoch caps ``w_i <= max_epochs_i * U_i / D``.

        ``domains`` (length k) fixes the order; unnamed domains get [0, 1].
        ``min_weights``/``max_weights`` are per-domain token-share bounds;
        ``max_epochs`` (a number or a per-domain dict) needs ``token_counts``
        (unique tokens ``U_i``; ``inf`` for a domain of unknown size, which no epoch cap binds) and
        ``budget_tokens`` (``D``).

        Raises
        ------
        MixtureError
            A bound names an unknown domain.
        ConfigError
            A bound is outside [0, 1], a min exceeds its max, or the mins sum above 1.
        BudgetError
            The caps sum below 1: the data cannot fill the budget.
        """
        domains = list(domains)
        lo = _bound_vector(min_weights, domains, 0.0, "min_weights")
        hi = _bound_vector(max_weights, domains, 1.0, "max_weights")
        epochs_cap = np.ones(len(domains))
        counts = budget = None
        if max_epochs is not None:
            if token_counts is None or budget_tokens is None:
                raise ConfigError("max_epochs needs both token_counts and budget_tokens to turn epochs into weight caps. Pass both or drop max_epochs.")
            budget = float(budget_tokens)
            if not math.isfinite(budget) or budget <= 0:
                raise BudgetError(f"The token budget must be a positive finite number. Got {budget_tokens}.")
            missing = [d for d in domains if d not in token_counts]
            if missing:
                raise DataError(f"token_counts has no entry for domains {missing}. Count their tokens or drop them from the domains.")
            counts = np.array([float(token_counts[d]) for d in domains])
            ep = _bound_vector(max_epochs, domains, None, "max_epochs", upper=math.inf) if isinstance(max_epochs, Mapping) else np.full(len(domains), float(max_epochs))
            epochs_cap = np.array([max_weights_for_epochs({d: c}, budget, e)[d] for d, c, e in zip(domains, counts, ep)])
        combined = np.minimum(hi, epochs_cap)
        bad = np.flatnonzero(lo > combined + 1e-12)
        if bad.size:
            i = bad[0]
            why = " (its epoch cap at the budget)" if epochs_cap[i] < hi[i] else ""
            raise ConfigError(
                f"min_weights must not exceed max_weights. Got min {lo[i]:.4g} > max {combined[i]:.4g}{why} for domain "
                f"'{domains[i]}'. Lower the min, raise the max" + (" or max_epochs." if why else ".")
            )
        if combined.sum() < 1.0 - 1e-12:
            if counts is not None and np.any(epochs_cap < hi):
                raise BudgetError(_budget_message(domains, combined, epochs_cap, hi, counts, budget, max_epochs))
            raise ConfigError(f"max_weights must sum to at least 1 so a mixture exists. Got {combined.sum():.4g}. Raise some max_weights.")
        return cls(domains, lo, combined)

    def feasible(self, W: np.ndarray, atol: float = FEASIBLE_ATOL) -> np.ndarray:
        """Boolean mask of rows of ``W`` (n, k) inside the bounded simplex."""
        W = np.atleast_2d(W)
        ok = np.all(W >= self.min_weights - atol, axis=1) & np.all(W <= self.max_weights + atol, axis=1)
        return ok & (np.abs(W.sum(axis=1) - 1.0) <= max(atol, 1e-9))

    def project(self, W: np.ndarray) -> np.ndarray:
        """Euclidean projection of ``W`` ((k,) or (n, k)) onto the constraints."""
        return project_to_bounded_simplex(W, self.min_weights, self.max_weights)


def _bound_vector(spec, domains, default, name, upper=1.0) -> np.ndarray:
    if spec is None:
        return np.full(len(domains), default, dtype=float)
    unknown = sorted(set(spec) - set(domains))
    if unknown:
        raise MixtureError(f"{name} names unknown domains {unknown}; known domains are {sorted(domains)}. Fix the names.")
    out = np.full(len(domains), np.nan if default is None else default, dtype=float)
    for d, v in spec.items():
        v = float(v)
        if not (math.isfinite(v) and 0.0 <= v <= upper):
            raise ConfigError(f"{name}['{d}'] must be a number in [0, {upper:g}]. Got {v}. Fix the value.")
        out[domains.index(d)] = v
    if default is None and np.isnan(out).any():
        missing = [d for d, v in zip(domains, out) if np.isnan(v)]
        raise ConfigError(f"{name} has no value for domains {missing}. Give one per domain or a single number.")
    return out


def _check_box(lo: np.ndarray, hi: np.ndarray, domains: Sequence[str]) -> None:
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ConfigError("Weight bounds must be finite numbers in [0, 1]. Replace the NaN or inf values.")
    if np.any(lo > hi + 1e-12):
        i = int(np.argmax(lo - hi))
        raise ConfigError(f"min_weights must not exceed max_weights. Got min {lo[i]:.4g} > max {hi[i]:.4g} for domain '{domains[i]}'. Lower the min or raise the max.")
    if lo.sum() > 1.0 + 1e-12:
        raise ConfigError(f"min_weights must sum to at most 1. Got {lo.sum():.4g}. Lower some min_weights.")
    if hi.sum() < 1.0 - 1e-12:
        raise ConfigError(f"max_weights must sum to at least 1 so a mixture exists. Got {hi.sum():.4g}. Raise some max_weights.")


def _budget_message(domains, combined, epochs_cap, hi, counts, budget, max_epochs) -> str:
    gap = 1.0 - combined.sum()
    binding = [i for i in range(len(domains)) if epochs_cap[i] < hi[i] and counts[i] > 0]
    # Epochs each binding domain would need to fill the whole gap alone, cheapest first.
    need = sorted(((combined[i] + gap) * budget / counts[i], domains[i]) for i in binding)
    shown = ", ".join(f"{d} needs {e:.3g} epochs" for e, d in need[:5]) + (", ..." if len(need) > 5 else "")
    each = f"{max_epochs:g} epochs each" if not isinstance(max_epochs, Mapping) else "their max_epochs"
    return (
        f"At {budget:.3g} tokens the domains can supply at most {combined.sum():.0%} of the budget within {each} "
        f"(to fill the remaining {gap:.0%} alone: {shown}). Lower the budget, raise max_epochs or add data."
    )
