"""Target names: which metric columns a target averages, with which weights.

One rule for every layer that reads targets (tables, record curves, reports):
a metric name resolves to itself; ``mean:all-domains`` averages every ``val/*``
metric, else every ``metric/*``; ``mean:a,b`` and ``wmean:a=0.7,b=0.3`` average
named components, where a component may be a domain name (``code``) standing for
the one metric that ends in ``/code``, or, where a family's metrics share a prefix or
suffix (RegMix's ``metric/the_pile_arxiv_val_loss``), its short name (``arxiv``,
``the_pile_arxiv``) or a store domain whose short name it is (``train_the_pile_arxiv``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence

from ..errors import FitError

MEAN_PREFIXES = ("val/", "metric/")  # mean:all-domains averages the first family present
_BOUNDARY = "_-./ "  # where a shared prefix or suffix may end or start: between words


def _shared_ends(names: Sequence[str]) -> tuple[int, int]:
    """Lengths of the prefix and suffix every name shares, cut at word boundaries; (0, 0) for fewer than 2 names or
    when cutting both would leave a name empty."""
    if len(names) < 2:
        return 0, 0
    pre = os.path.commonprefix(list(names))
    pre = pre[: max((i + 1 for i, ch in enumerate(pre) if ch in _BOUNDARY), default=0)]
    suf = os.path.commonprefix([n[::-1] for n in names])[::-1]
    suf = suf[min((i for i, ch in enumerate(suf) if ch in _BOUNDARY), default=len(suf)):]
    if any(len(n) <= len(pre) + len(suf) for n in names):
        return 0, 0
    return len(pre), len(suf)


def _family_ends(names: Sequence[str]):
    """``(name, tail, prefix length, suffix length)`` per name: the tail after the last ``/``, and what its family (the
    names with the same text before that ``/``) shares at both ends (:func:`_shared_ends`)."""
    families: dict[str, list[str]] = {}
    for n in names:
        families.setdefault(n.rpartition("/")[0], []).append(n)
    for members in families.values():
        tails = [m.rpartition("/")[2] for m in members]
        pre, suf = _shared_ends(tails)
        for m, t in zip(members, tails):
            yield m, t, pre, suf


def short_names(names: Sequence[str]) -> dict[str, str]:
    """Each name without its family (``val/``, ``metric/``, any text up to the last ``/``) and without the prefix and
    suffix every name of that family shares at a word boundary: RegMix's ``metric/the_pile_arxiv_val_loss`` ->
    ``arxiv``, mixture columns ``train_the_pile_arxiv`` -> ``arxiv``; ``val/code`` stays ``code``."""
    return {m: t[pre: len(t) - suf] for m, t, pre, suf in _family_ends(names)}


def metric_aliases(metric_names: Sequence[str]) -> dict[str, set[str]]:
    """The names a target component may use for each metric: its tail after the last ``/``, the tail without its
    family's shared suffix, and its short name (:func:`short_names`)."""
    return {m: {t, t[: len(t) - suf], t[pre: len(t) - suf]} for m, t, pre, suf in _family_ends(metric_names)}


def metric_domain(metric: str, domains: Sequence[str], metric_names: Sequence[str]) -> str | None:
    """The domain ``metric`` measures: ``val/<domain>``, or the one domain whose name or short name (:func:`short_names`
    over ``domains``) is one of the metric's aliases; None when none or several match."""
    if metric.startswith("val/") and metric[4:] in domains:
        return metric[4:]
    aliases = metric_aliases(metric_names).get(metric, set())
    short = short_names(domains)
    hits = [d for d in domains if d in aliases or short[d] in aliases]
    return hits[0] if len(hits) == 1 else None


def mean_columns(metric_names: Iterable[str]) -> list[str]:
    """The metrics ``mean:all-domains`` averages: every ``val/*``, else every ``metric/*`` (sorted)."""
    names = sorted(metric_names)
    for prefix in MEAN_PREFIXES:
        cols = [c for c in names if c.startswith(prefix)]
        if cols:
            return cols
    return []


def _component(name: str, target: str, metric_names: Sequence[str], domains: Sequence[str] = ()) -> str:
    """A metric name, or a domain name that names exactly one metric (``code`` -> ``val/code``; with a family's shared
    prefix or suffix, its short name: ``arxiv`` or ``the_pile_arxiv`` -> ``metric/the_pile_arxiv_val_loss``; a store
    domain ``train_the_pile_arxiv`` -> the metric of the same short name)."""
    if name in metric_names:
        return name
    hits = [m for m in metric_names if m.rpartition("/")[2] == name]
    if not hits:
        aliases = metric_aliases(metric_names)
        hits = [m for m in metric_names if name in aliases[m]]
        if not hits and name in domains:
            short = short_names(domains)[name]
            hits = [m for m in metric_names if short in aliases[m]]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise FitError(f"Target {target}: '{name}' could mean {hits}. Write the metric name in full.")
    raise FitError(f"Target {target} names metric '{name}', which the store does not have. Known metrics: {sorted(metric_names)}.")


def resolve_target(name: str, metric_names: Sequence[str], domains: Sequence[str] = ()) -> tuple[list[str], list[float]]:
    """The metric columns a target averages, and their weights; a metric column resolves to itself. ``domains`` (the
    store's) lets a component name a domain whose metric has another spelling (:func:`_component`)."""
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
            cols.append(_component(col.strip(), name, metric_names, domains))
        if not cols or sum(weights) <= 0 or any(not (w >= 0) for w in weights):
            raise FitError(f"Target {name} names no metrics with non-negative weights summing above 0. Use e.g. mean:val/code,val/prose.")
        return cols, weights
    raise FitError(f"Unknown target '{name}'. Use a metric column ({', '.join(sorted(metric_names)[:8])}...) or mean:all-domains.")
