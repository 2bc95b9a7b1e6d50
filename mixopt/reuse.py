"""Mixture reuse (config ``reuse.plan``): after the domain set changes, keep an earlier plan's ratios.

The other half of reusing an earlier sweep, its runs as rows of today's fit (``reuse.store``), is
:mod:`mixopt.runs.reused`; with those runs in the fit ``propose`` searches freely, since on the embedded corpus the tied
search inherited the old plan's misses and the free one matched a full recompute (``benchmarks/mixture_reuse.py``).

Olmix (Chen et al. 2026, "Olmix: A Framework for Data Mixing Throughout LM Development") observes that the domain set
evolves during LM development (datasets added, removed, revised) and that recomputing the whole mixture after each
update wastes most of the compute: the domains the update did not touch keep their ratios to one another, and only
their joint share against the new or changed domains is searched again ("mixture reuse").

Here the kept domains form one group, ``REUSED``, whose inner ratios come from an earlier ``plan.yaml`` (its overall
token shares). Mixtures are searched on the reduced simplex of ``[REUSED] + free domains`` and expanded to every
domain by :meth:`ReusedMixture.expand`, so run records, surrogates, plans and exports keep working on real domains.
The sweep draws its sampled mixtures this way (``runs.sweep``) and ``propose`` searches this way
(``planning.propose.search_mixture``); the baselines (natural, uniform) stay ordinary mixtures of every domain.

A group behaves like one domain whose unique tokens are ``min_d U_d / r_d`` (``r_d`` its ratio): the tokens it holds
before its first member runs out at those ratios, so epoch caps and the temperature prior carry over unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .config import ReuseConfig
from .errors import ConfigError
from .plan import load_plan

REUSED = "(reused)"  # the group's name on the reduced simplex; parentheses cannot occur in a domain name


@dataclass(frozen=True)
class ReusedMixture:
    """An earlier plan's ratios among the domains it kept (``ratios``, summing to 1) inside today's ``domains``.

    ``coords`` is the reduced simplex: ``[REUSED]`` then the free domains (in ``domains`` order); :meth:`matrix` maps it
    to ``domains`` (every domain of the data, in the order of the caller's vectors).
    """

    domains: tuple[str, ...]
    ratios: Mapping[str, float]
    source: str = "plan"
    dropped: tuple[str, ...] = ()  # plan domains no longer in the data
    plan_store: str | None = None  # the store the plan's model was fitted on (its provenance), to tell changed data

    @classmethod
    def from_config(cls, cfg: ReuseConfig, domains: Sequence[str]) -> ReusedMixture:
        """Read ``cfg.plan`` and keep its ratios among today's ``domains`` except ``cfg.recompute``."""
        plan = load_plan(cfg.plan)
        reuse = cls.from_weights(plan.overall_weights(), domains, recompute=cfg.recompute, source=cfg.plan)
        return dataclasses.replace(reuse, plan_store=(plan.provenance or {}).get("store"))

    @classmethod
    def from_weights(cls, weights: Mapping[str, float], domains: Sequence[str], *, recompute: Sequence[str] = (),
                     source: str = "plan") -> ReusedMixture:
        domains = tuple(domains)
        unknown = sorted(set(recompute) - set(domains))
        if unknown:
            raise ConfigError(f"reuse.recompute names {unknown}, which the data does not hold; known domains are "
                              f"{list(domains)}. Fix the names.")
        kept = {d: float(w) for d, w in weights.items() if d in domains and d not in recompute and float(w) > 0}
        if not kept:
            raise ConfigError(f"reuse keeps no domain: none of the domains of {source} ({sorted(weights)}) is in the data "
                              f"with a weight above 0, outside reuse.recompute. Drop `reuse:` to search every domain.")
        free = [d for d in domains if d not in kept]
        total = math.fsum(kept.values())
        if not free:
            gone = sorted(d for d in weights if d not in domains)
            alone = (f" With {', '.join(gone)} removed and nothing added, the old ratios renormalised are the mixture ("
                     + ", ".join(f"{d} {w / total:.4f}" for d, w in sorted(kept.items()))
                     + f"; as good as a re-sweep on the embedded corpus): export it with `mixopt export {source} "
                     + " ".join(f"--drop {d}" for d in gone) + " ...`.") if gone else ""
            raise ConfigError(f"reuse leaves nothing to search: every domain of the data keeps its ratio from {source}.{alone} "
                              "Name the domains whose data changed in reuse.recompute, or add the new domains to data.")
        return cls(domains, {d: w / total for d, w in sorted(kept.items())}, source,
                   tuple(sorted(d for d in weights if d not in domains)))

    @property
    def kept(self) -> list[str]:
        return list(self.ratios)

    @property
    def free(self) -> list[str]:
        return [d for d in self.domains if d not in self.ratios]

    @property
    def coords(self) -> list[str]:
        return [REUSED, *self.free]

    def matrix(self) -> np.ndarray:
        """(len(coords), len(domains)) rows: the group's ratios, then one unit row per free domain."""
        E = np.zeros((len(self.coords), len(self.domains)))
        col = {d: i for i, d in enumerate(self.domains)}
        for d, r in self.ratios.items():
            E[0, col[d]] = r
        for i, d in enumerate(self.free, start=1):
            E[i, col[d]] = 1.0
        return E

    def expand(self, Z: np.ndarray) -> np.ndarray:
        """Rows on the reduced simplex (n, len(coords)) or one (len(coords),) as shares of every domain."""
        return np.asarray(Z, dtype=float) @ self.matrix()

    def reduce(self, W: np.ndarray) -> np.ndarray:
        """Shares of every domain as rows of the reduced simplex: the group's share is its members' sum (exact for rows in
        the reused subspace, :meth:`keeps_ratios`)."""
        W = np.asarray(W, dtype=float)
        return W @ (self.matrix() > 0).T.astype(float)

    def keeps_ratios(self, W: np.ndarray, atol: float = 1e-6) -> np.ndarray:
        """(n,) whether each row of shares keeps the group's ratios."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        return np.all(np.abs(self.expand(self.reduce(W)) - W) <= atol, axis=1)

    def token_counts(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Unique tokens per coordinate: a free domain's own, the group's ``min_d U_d / r_d``."""
        group = min(float(counts[d]) / r for d, r in self.ratios.items())
        return {REUSED: group, **{d: float(counts[d]) for d in self.free}}

    def bounds(self, min_weights: Mapping[str, float], max_weights: Mapping[str, float]) -> tuple[dict, dict]:
        """Per-domain share bounds as bounds of the coordinates: a kept domain's ``[lo, hi]`` bounds the group's share to
        ``[lo / r, hi / r]`` (the tightest over the members).

        Raises ConfigError when a kept domain's minimum is above its ratio ``r``: the group would need a share above 1.
        """
        lo = {d: float(v) for d, v in min_weights.items() if d not in self.ratios}
        hi = {d: float(v) for d, v in max_weights.items() if d not in self.ratios}
        g_lo = {d: float(v) / self.ratios[d] for d, v in min_weights.items() if d in self.ratios}
        g_hi = [float(v) / self.ratios[d] for d, v in max_weights.items() if d in self.ratios]
        if g_lo:
            d = max(g_lo, key=g_lo.__getitem__)
            if g_lo[d] > 1.0 + 1e-9:  # the group's share cannot exceed 1: refuse rather than clip to an unrelated failure
                r = self.ratios[d]
                raise ConfigError(f"propose.min_weights {d} {float(min_weights[d]):g} cannot hold with reuse: {d} keeps ratio "
                                  f"{r:.4g} of the reused group from {self.source}, so its share is at most {r:.4g}. "
                                  f"Lower the minimum, or add {d} to reuse.recompute.")
            lo[REUSED] = min(g_lo[d], 1.0)
        if g_hi:
            hi[REUSED] = min(min(g_hi), 1.0)
        return lo, hi

    def describe(self, shares: Mapping[str, float] | None = None) -> str:
        """One line for plans: what is kept, from where, and (given the plan's shares) the group's share."""
        kept = ", ".join(f"{d} {r:.3f}" for d, r in self.ratios.items())
        share = f"; the search chose their joint share {sum(shares.get(d, 0.0) for d in self.ratios):.3f}" if shares else ""
        gone = f"; dropped (no longer in the data): {', '.join(self.dropped)}" if self.dropped else ""
        return (f"mixture reuse (Olmix): {kept} keep their ratios from {self.source}{share} against "
                f"{', '.join(self.free)}, searched anew{gone}")


def reused_mixture(cfg: ReuseConfig | None, domains: Sequence[str]) -> ReusedMixture | None:
    """The config's ``reuse.plan`` over today's domains, or None without one."""
    return None if cfg is None or cfg.plan is None else ReusedMixture.from_config(cfg, domains)
