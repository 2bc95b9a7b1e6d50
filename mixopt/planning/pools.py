"""Which quality pools to keep at each budget (compute-aware filtering).

``POOLS.yaml`` describes quality buckets of one domain (best first or not: they
are ranked by utility ``b``) and the fitted decay law of Goyal et al. (2024):

.. code-block:: yaml

    objective: effective_utility   # or effective_data
    a: 0.025                       # sample-count scale
    d: 0.1                         # irreducible error
    pool_size: 12.8e6              # samples per pool
    pools:
      - {name: top0-10, b: -0.16, tau: 6.7273}

`plan_pools` evaluates the top-1, top-2, ... pool sets at each budget and keeps
the set with the lowest predicted error: aggressive filtering wins at small
budgets, looser filtering once the best pool would be repeated too often.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from ..config import DomainPools, domain_pools_from_dict
from ..errors import ConfigError
from ..io import read_yaml
from ..repetition import POOL_NORMALIZER, Pool, best_pool_count, pool_set_errors, sort_pools


def load_pools(path: str | Path) -> DomainPools:
    """Read and validate ``POOLS.yaml`` (the :class:`~mixopt.config.DomainPools` schema); problems are one-line errors."""
    raw = read_yaml(path, what="Pools file", missing_hint="Pass a POOLS.yaml (see configs/pools_tmars.yaml).")
    return domain_pools_from_dict(raw, where=str(path))


def law_pools(config: DomainPools, where: str = "the pools file") -> list[Pool]:
    """Pools most useful first (most negative ``b``); every pool needs its law ``b`` and ``tau`` here."""
    missing = [p.name for p in config.pools if p.b is None or p.tau is None]
    if missing:
        raise ConfigError(f"plan-pools needs b and tau for every pool; pool '{missing[0]}' in {where} lacks them. "
                          "Give the fitted law's values (see configs/pools_tmars.yaml), or plan with `mixopt propose`, which fits or uses priors.")
    return sort_pools(Pool(p.name, p.b, p.tau) for p in config.pools)


def parse_budgets(text: str) -> list[float]:
    """``"32e6,64e6"`` -> ``[3.2e7, 6.4e7]``; rejects empty, non-numeric, non-finite or non-positive items."""
    items = [t.strip() for t in str(text).split(",")]
    if not any(items):
        raise ConfigError(f"Budgets must be a comma-separated list of sample counts. Got {text!r}. Example: 32e6,64e6.")
    out = []
    for t in items:
        try:
            v = float(t.replace("_", ""))
        except ValueError:
            v = float("nan")
        if not (t and math.isfinite(v) and v > 0):
            raise ConfigError(
                f"Each budget must be a finite number > 0. Got {t!r} in {text!r}. Example: --budgets 32e6,64e6."
            )
        out.append(v)
    return out


def plan_pools(config: DomainPools, budgets: Sequence[float]) -> list[dict[str, Any]]:
    """For each budget: errors of the top-1..top-m equal-size pool sets and the best set.

    Returns ``[{"budget": float, "best": [pool names], "errors": [y_top1, y_top2, ...]}]``
    in the order of ``budgets``.
    """
    ranked = law_pools(config)
    if config.pool_size is None:
        raise ConfigError("plan-pools needs pool_size (samples per pool) in the pools file. Add e.g. `pool_size: 12.8e6`.")
    results = []
    for budget in budgets:
        errors = pool_set_errors(
            ranked,
            float(budget),
            a=config.a,
            d=config.d,
            pool_size=config.pool_size,
            objective=config.objective,
            normalizer=config.normalizer or POOL_NORMALIZER,
        )
        k = best_pool_count(errors)
        results.append({"budget": float(budget), "best": [p.name for p in ranked[:k]], "errors": errors})
    return results
