"""Target names: which metric columns a target averages, with which weights.

One rule for every layer that reads targets (tables, record curves, reports):
a metric name resolves to itself; ``mean:all-domains`` averages every ``val/*``
metric, else every ``metric/*``; ``mean:a,b`` and ``wmean:a=0.7,b=0.3`` average
named components, where a component may be a domain name (``code``) standing for
the one metric that ends in ``/code``.
"""

from __future__ import annotations

import math

from collections.abc import Iterable, Sequence

from ..errors import FitError

MEAN_PREFIXES = ("val/", "metric/")  # mean:all-domains averages the first family present


def mean_columns(metric_names: Iterable[str]) -> list[str]:
    """The metrics ``mean:all-domains`` averages: every ``val/*``, else every ``metric/*`` (sorted)."""
    names = sorted(metric_names)
    for prefix in MEAN_PREFIXES:
        cols = [c for c in names if c.startswith(prefix)]
        if cols:
            return cols
    return []


def _component(name: str, target: str, metric_names: Sequence[str]) -> str:
    """A metric name, or a domain name that names exactly one metric (``code`` -> ``val/code``)."""
    if name in metric_names:
        return name
    hits = [m for m in metric_names if m.rpartition("/")[2] == name]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise FitError(f"Target {target}: '{name}' could mean {hits}. Write the metric name in full.")
    raise FitError(f"Target {target} names metric '{name}', which the store does not have. Known metrics: {sorted(metric_names)}.")


def resolve_target(name: str, metric_names: Sequence[str]) -> tuple[list[str], list[float]]:
    """The metric columns a target averages, and their weights; a metric column resolves to itself."""
    metric_names = list(metric_names)
    if name in metric_names:
        return [name], [1.0]
    if name == "mean:all-domains":
        cols = mean_columns(metric_names)
        if not cols:
            raise FitError(f"Target {name} needs per-domain metrics (val/* or metric/*), but the store has {sorted(metric_names)}. Name a metric column.")
        return cols, [1.0] * len(cols)
    if name.startswith(("mean:", "wmean:")):
        kind, _, body = name.partition(":")
        cols, weights = [], []
        for p in (p.strip() for p in body.split(",") if p.strip()):
            col, _, w = p.partition("=") if kind == "wmean" else (p, "", "1")
            try:
                weights.append(float(w))
            except ValueError:
                raise FitError(f"Target {name}: weight '{w}' of '{col}' is not a number. Use wmean:code=0.5,prose=0.5.") from None
            if not (math.isfinite(weights[-1]) and weights[-1] >= 0):
                raise FitError(f"Target {name}: weight '{w}' of '{col}' must be a finite, non-negative number. Use e.g. "
                               "wmean:code=0.5,prose=0.5.")
            cols.append(_component(col.strip(), name, metric_names))
        if not cols or sum(weights) <= 0 or any(not (w >= 0) for w in weights):
            raise FitError(f"Target {name} names no metrics with non-negative weights summing above 0. Use e.g. mean:val/code,val/prose.")
        return cols, weights
    raise FitError(f"Unknown target '{name}'. Use a metric column ({', '.join(sorted(metric_names)[:8])}...) or mean:all-domains.")
