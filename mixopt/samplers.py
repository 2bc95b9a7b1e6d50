"""Samplers that propose mixtures and schedules: RegMix's Dirichlet draws, uniform draws, vectorised search candidates
and upsampled end phases. Their defaults are the config's own defaults, so a literal never drifts from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .config import ProposeConfig, SamplerConfig
from .errors import BudgetError, ConfigError, MixtureError
from .mixtures import (
    Mixture,
    Phases,
    check_budget,
    max_weights_for_epochs,
)


def _default(model, name: str):
    return model.model_fields[name].default


# Sampler defaults come from the config's own defaults, so a literal never drifts from them.
TEMPERATURE = _default(SamplerConfig, "temperature")
STRENGTH_RANGE = (_default(SamplerConfig, "strength_min"), _default(SamplerConfig, "strength_max"))
MAX_EPOCHS = _default(SamplerConfig, "max_epochs")
MIN_WEIGHT = _default(SamplerConfig, "min_weight")
UPSAMPLE_RANGE = (_default(ProposeConfig, "upsample_fraction_min"), _default(ProposeConfig, "upsample_fraction_max"))


def temperature_prior(token_counts: Mapping[str, int], temperature: float = TEMPERATURE) -> Mixture:
    """Token share raised to ``temperature`` and renormalised (RegMix's prior)."""
    domains = sorted(token_counts)
    share = np.array([token_counts[d] for d in domains], dtype=float)
    if not share.sum() > 0:
        raise MixtureError("Cannot form the temperature prior: all domains have zero tokens. Check the data paths.")
    share = share / share.sum()
    p = share**temperature
    return Mixture.from_vector(p / p.sum(), domains)


def sample_dirichlet_mixtures(
    token_counts: Mapping[str, int],
    n: int,
    *,
    seed: int,
    budget_tokens: float | None = None,
    max_epochs: float = MAX_EPOCHS,
    temperature: float = TEMPERATURE,
    strength_range: tuple[float, float] = STRENGTH_RANGE,
    min_weight: float = MIN_WEIGHT,
    max_tries: int = 1000,
) -> list[Mixture]:
    """RegMix's sampler: Dirichlet(prior x strength), strength log-uniform.

    Draws that would repeat a domain more than ``max_epochs`` times at
    ``budget_tokens`` are rejected; weights under ``min_weight`` are zeroed and the
    rest renormalised; duplicates are dropped. Deterministic for a given seed.
    """
    domains = sorted(token_counts)
    prior = temperature_prior(token_counts, temperature).vector(domains)
    caps = None
    if budget_tokens is not None:
        check_budget(token_counts, budget_tokens, max_epochs)
        caps = np.array([max_weights_for_epochs(token_counts, budget_tokens, max_epochs)[d] for d in domains])
    rng = _rng(seed)
    lo, hi = np.log(strength_range[0]), np.log(strength_range[1])
    out: list[Mixture] = []
    seen: set[tuple] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries * max(n, 1):
            cap = f"within the epoch cap ({max_epochs:g} epochs at {budget_tokens:.3g} tokens)" if budget_tokens is not None else "at all"
            raise BudgetError(
                f"Could only sample {len(out)} of {n} distinct mixtures {cap} over {len(domains)} domain(s) with min_weight={min_weight:g}. "
                "Raise max_epochs, lower the budget or min_weight, add domains, or ask for fewer runs."
            )
        strength = float(np.exp(rng.uniform(lo, hi)))
        w = rng.dirichlet(np.maximum(prior * strength, 1e-12))
        w = _finish(w, min_weight)
        if w is None or (caps is not None and np.any(w > caps + 1e-12)):
            continue
        key = tuple(np.round(w, 6))
        if key in seen:
            continue
        seen.add(key)
        out.append(Mixture.from_vector(w, domains))
    return out


def sample_uniform_mixtures(domains: Sequence[str], n: int, *, seed: int, min_weight: float = 0.0,
                            caps: Mapping[str, float] | None = None, max_tries: int = 1000) -> list[Mixture]:
    """Uniform draws from the simplex (Dirichlet with all ones); with ``caps`` ({domain: largest weight}, e.g. the
    epoch cap's ``max_weights_for_epochs``) draws above a cap are rejected, as the Dirichlet sampler does."""
    domains = sorted(domains)
    cap = None if caps is None else np.array([caps[d] for d in domains])
    rng = _rng(seed)
    out: list[Mixture] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries * max(n, 1):
            raise BudgetError(f"Could only sample {len(out)} of {n} uniform mixtures within the epoch cap over "
                              f"{len(domains)} domain(s). Raise max_epochs, lower the budget, add domains, or ask for "
                              "fewer runs.")
        w = _finish(rng.dirichlet(np.ones(len(domains))), min_weight)
        if w is not None and (cap is None or not np.any(w > cap + 1e-12)):
            out.append(Mixture.from_vector(w, domains))
    return out


def dirichlet_candidates(prior: np.ndarray, n: int, *, seed: int, strength_range=STRENGTH_RANGE, min_weight: float = 0.0) -> np.ndarray:
    """Vectorised candidate draws (rows on the simplex) for large searches."""
    rng = _rng(seed)
    strengths = np.exp(rng.uniform(np.log(strength_range[0]), np.log(strength_range[1]), size=(n, 1)))
    alpha = np.maximum(prior[None, :] * strengths, 1e-12)
    g = rng.standard_gamma(alpha)
    g_sum = g.sum(axis=1, keepdims=True)
    bad = g_sum[:, 0] <= 0
    if bad.any():
        g[bad] = prior
        g_sum[bad] = 1.0
    w = g / g_sum
    if min_weight > 0:
        w = np.where(w < min_weight, 0.0, w)
        s = w.sum(axis=1, keepdims=True)
        w = np.where(s > 0, w / np.where(s > 0, s, 1), prior[None, :])
    return w


def _rng(seed) -> np.random.Generator:
    """numpy's generator for ``seed``; a negative seed is a one-line ConfigError, not numpy's ValueError."""
    if isinstance(seed, (int, np.integer)) and seed < 0:
        raise ConfigError(f"A sampler seed must be a whole number >= 0, got {int(seed)}. Fix the config's `seed` (or --seed).")
    return np.random.default_rng(seed)


def _finish(w: np.ndarray, min_weight: float) -> np.ndarray | None:
    w = np.where(w < min_weight, 0.0, w)
    s = w.sum()
    if not np.isfinite(s) or s <= 0:
        return None
    return w / s


TWO_PHASE_SEED_OFFSET = 7_919  # sweep seed + this seeds the two-phase runs' base mixtures (+1: their end phases)


def sample_upsampling(bases: Sequence[Mapping[str, float]], *, seed: int, f_range: tuple[float, float] = UPSAMPLE_RANGE,
                      caps: Mapping[str, float] | None = None, mix_range: tuple[float, float] = (0.3, 0.9),
                      max_domains: int = 3, max_tries: int = 100) -> list[Phases]:
    """A two-phase schedule ``[(0, p), (1 - f, q)]`` for each base mixture ``p``, deterministic in ``seed``.

    For each ``p``: pick ``m`` in {1, ..., max_domains} and ``m`` distinct domains uniformly, draw a
    boost ``b ~ Dirichlet(1_m)`` on them, ``lambda ~ U(mix_range)`` and ``f ~ U(f_range)``; then
    ``q = (1 - lambda) p + lambda b``. Mixing in (rather than multiplying p by a boost) also upsamples
    domains that ``p`` nearly leaves out. With ``caps`` (max token share per domain over the whole run,
    e.g. epoch caps) a draw whose overall share ``(1 - f) p + f q`` breaks a cap is redrawn; after
    ``max_tries`` the last draw is pulled toward ``p`` until it fits.
    """
    lo, hi = check_fraction_range(f_range)
    rng = _rng(seed)
    out = []
    for p_map in bases:
        domains = sorted(p_map)
        p = np.array([float(p_map[d]) for d in domains])
        k = len(domains)
        cap = None if caps is None else np.array([float(caps.get(d, 1.0)) for d in domains])
        for _ in range(max(1, max_tries)):
            m = int(rng.integers(1, min(max_domains, k) + 1))
            b = np.zeros(k)
            b[rng.choice(k, size=m, replace=False)] = rng.dirichlet(np.ones(m))
            lam = float(rng.uniform(*mix_range))
            f = float(rng.uniform(lo, hi))
            q = (1.0 - lam) * p + lam * b
            if cap is None or np.all((1 - f) * p + f * q <= cap + 1e-12):
                break
        else:  # shrink toward p (which is within the caps) until the overall share fits
            while lam > 1e-3 and np.any((1 - f) * p + f * q > cap + 1e-12):
                lam *= 0.5
                q = (1.0 - lam) * p + lam * b
        out.append([(0.0, Mixture(p_map)), (round(1.0 - f, 6), Mixture.from_vector(q / q.sum(), domains))])
    return out


def check_fraction_range(f_range) -> tuple[float, float]:
    lo, hi = (float(x) for x in f_range)
    if not (0.0 < lo <= hi < 1.0):
        raise ConfigError(f"The upsampling fraction range must satisfy 0 < min <= max < 1. Got ({lo:g}, {hi:g}). "
                          "Fix upsample_fraction_min / upsample_fraction_max.")
    return lo, hi
