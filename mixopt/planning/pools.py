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

The file may also be ``mixopt select``'s ``pools.yaml`` (``{domain: {pools: [...]}}``);
`read_pools_file` picks one domain (pool paths relative to the file). A pool without ``b``/``tau`` takes the
T-MARS prior of its rank, as in `propose`; pools without ``pool_size`` are sized from their files
(:func:`sized_pools`). With laws measured by proxy runs
(`mixopt.planning.pool_value`), pass the resolved pools: their ``b``/``tau`` and
``law_source`` are used, and without ``pool_size`` each top-k set is sized by the
mean measured size of its pools.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from ..config import DomainPools, domain_pools_from_dict
from ..errors import ConfigError
from ..io import read_yaml
from ..repetition import POOL_NORMALIZER, Pool, best_pool_count, pool_set_errors, sort_pools
from ..selection.output import located_pools
from .pool_choice import set_errors
from .quality import ResolvedPool, declared_laws, resolve_pools


def read_pools_file(path: str | Path, domain: str | None = None) -> tuple[str, DomainPools]:
    """``(domain, pools)`` of a pools file: one domain's :class:`~mixopt.config.DomainPools` (named ``domain``,
    default the file's stem), or ``mixopt select``'s ``{domain: {pools: [...]}}`` (``domain`` picks one; needed
    when there are several). Problems are one-line errors."""
    raw = located_pools(read_yaml(path, what="Pools file", missing_hint="Pass a POOLS.yaml (see configs/pools_tmars.yaml)."),
                        path)  # pool files relative to the pools file
    nested = isinstance(raw, dict) and raw and "pools" not in raw and all(isinstance(v, dict) and "pools" in v for v in raw.values())
    if not nested:
        return domain or Path(path).stem, domain_pools_from_dict(raw, where=str(path))
    if domain is None and len(raw) > 1:
        raise ConfigError(f"Pools file {path} holds the pools of several domains ({sorted(raw)}). Pick one with --domain NAME.")
    name = domain or next(iter(raw))
    if name not in raw:
        raise ConfigError(f"Pools file {path} has no domain '{name}' (it has {sorted(raw)}). Fix --domain.")
    return name, domain_pools_from_dict(raw[name], where=f"{path}: {name}")


def load_pools(path: str | Path, domain: str | None = None) -> DomainPools:
    """Read and validate ``POOLS.yaml`` (see `read_pools_file`); problems are one-line errors."""
    return read_pools_file(path, domain)[1]


def law_pools(config: DomainPools) -> tuple[list[Pool], dict[str, dict[str, Any]]]:
    """Pools most useful first (most negative ``b``), and their laws ``{pool: {b, tau, law_source}}``: each pool's
    ``b``/``tau`` from the file, else the T-MARS prior of its rank (`quality.declared_laws`, as `propose` plans them)."""
    declared = declared_laws("pools", config)
    ranked = sort_pools(Pool(name, v["b"], v["tau"]) for name, v in declared.items())
    return ranked, {p.name: {"b": p.b, "tau": p.tau, "law_source": declared[p.name]["law_source"]} for p in ranked}


def sized_pools(domain: str, config: DomainPools) -> list[ResolvedPool] | None:
    """The pools of a file without ``pool_size`` sized from their own files as `propose` sizes them
    (`quality.resolve_pools`: tokens, and samples of the pools' mean document unless ``tokens_per_sample`` is set),
    with the laws `propose` gives them (the file's ``b``/``tau``, else the T-MARS prior of their rank); None when
    the file gives ``pool_size`` (every pool is that many samples) or names no pool file."""
    if config.pool_size is not None or not any(p.path is not None for p in config.pools):
        return None
    return resolve_pools(domain, config, unique_tokens=None, mean_tokens_per_doc=None, spec=None)


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


def _laws(pools: Sequence[Any]) -> dict[str, dict[str, Any]]:
    return {p.name: {"b": p.b, "tau": p.tau, "law_source": getattr(p, "law_source", "config")} for p in pools}


def in_law_range(config: DomainPools, samples: float) -> bool:
    """Whether ``a * samples / normalizer >= 1``, the range the law was fitted on (below it the law inverts and its
    best set favours weaker pools: `pool_choice`'s module docstring)."""
    return config.a * float(samples) / (config.normalizer or POOL_NORMALIZER) >= 1


def plan_pools(config: DomainPools, budgets: Sequence[float], *, resolved: Sequence[ResolvedPool] | None = None) -> list[dict[str, Any]]:
    """For each budget: errors of the top-1..top-m pool sets and the best set.

    Returns ``[{"budget": float, "best": [pool names], "errors": [y_top1, y_top2, ...], "laws": {pool: {b, tau,
    law_source}}, "law_range": bool}]`` in the order of ``budgets``; budgets are in samples; ``law_range``:
    :func:`in_law_range`. Without ``resolved`` the pools are ``pool_size`` each, their laws ``config``'s ``b``/``tau``
    or else the T-MARS priors of their rank (as `propose`); with ``resolved`` (:func:`sized_pools`, or (measured or prior laws,
    `planning.pool_value.measure_pool_values`) the pools are ``pool_size`` each when it is set, else each set is
    as big as its pools' mean measured size.
    """
    if resolved is not None:
        ranked_r = sorted(resolved, key=lambda p: p.b)
        laws = _laws(ranked_r)
        out = []
        for budget in budgets:
            if config.pool_size is not None:
                errors = pool_set_errors([Pool(p.name, p.b, p.tau) for p in ranked_r], float(budget), a=config.a, d=config.d,
                                         pool_size=config.pool_size, objective=config.objective,
                                         normalizer=config.normalizer or POOL_NORMALIZER)
            else:
                errors = set_errors(ranked_r, float(budget), config)
            k = best_pool_count(errors)
            out.append({"budget": float(budget), "best": [p.name for p in ranked_r[:k]], "errors": errors, "laws": laws,
                        "law_range": in_law_range(config, budget)})
        return out
    if config.pool_size is None:
        raise ConfigError("plan-pools needs pool_size (samples per pool) in the pools file, or pool files to size the "
                          "pools from (their path). Add e.g. `pool_size: 12.8e6`, or a path to each pool.")
    ranked, laws = law_pools(config)
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
        results.append({"budget": float(budget), "best": [p.name for p in ranked[:k]], "errors": errors, "laws": laws,
                        "law_range": in_law_range(config, budget)})
    return results
