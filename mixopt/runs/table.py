"""Run records as arrays: the one place records become ``W``, ``y`` and scale columns.

- :func:`usable_records` is the one "ok and finite" filter;
- :func:`mixopt.runs.targets.mean_columns` is the one rule for which metrics ``mean:all-domains`` averages;
- :func:`mixopt.runs.targets.resolve_target` turns a target name (a metric, ``mean:all-domains``,
  ``mean:a,b``, ``wmean:a=0.3,b=0.7``; components may be domain names such as
  ``code`` for ``val/code`` when unambiguous) into columns and weights;
- :func:`target_curve` is a record's checkpoint curve for any such target;
- :func:`records_table` gives one row per run ("final" rows), or one row per
  checkpoint (``checkpoints=True``), each with its ``model_params`` and ``tokens``.

Reading and writing CSVs lives in ``tables_io.py``; target names in ``targets.py``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError
from ..mixtures import mixture_rows
from .record import RunRecord
from .store import RunStore
from .targets import metric_domain, resolve_target


VERIFY_LABEL = "verify:"  # label prefix of the runs `mixopt verify` trains to test a plan
POOL_LABEL = "pool:"  # label prefix of the runs that measure a quality pool's value (mixopt.runs.pool_runs)


def sweep_records(records: Iterable[RunRecord]) -> list[RunRecord]:
    """The records of this store that models learn from: the sweep's, not the ones `verify` trained to test a plan nor
    the single-pool runs that measure a quality pool's value. (`fit` also adds the runs of a ``reuse.store``:
    `runs.reused.reused_records`.)"""
    return [r for r in records if not r.label.startswith((VERIFY_LABEL, POOL_LABEL))]


def not_sweep_counts(records: Iterable[RunRecord]) -> dict[str, int]:
    """How many of ``records`` :func:`sweep_records` leaves out, by label prefix (``verify:``, ``pool:``)."""
    records = list(records)
    return {p: sum(1 for r in records if r.label.startswith(p)) for p in (VERIFY_LABEL, POOL_LABEL)}


def usable_records(records: Iterable[RunRecord], *, max_phases: int | None = None) -> list[RunRecord]:
    """Records that finished ``ok`` with every final metric finite (and at most ``max_phases`` phases after the first)."""
    return [r for r in records if r.is_usable() and (max_phases is None or len(r.phases) - 1 <= max_phases)]


def canonical_target(target: str, metric_names: Sequence[str]) -> str:
    """``target`` with domain-name components spelled as metrics (``mean:code,prose`` -> ``mean:val/code,val/prose``)."""
    cols, weights = resolve_target(target, metric_names)
    if target in metric_names or target == "mean:all-domains":
        return target
    if target.startswith("wmean:"):
        return "wmean:" + ",".join(f"{c}={w!r}" for c, w in zip(cols, weights))
    return "mean:" + ",".join(cols)


def target_curve(record: RunRecord, target: str) -> dict[float, float]:
    """A run's checkpoint curve ``{tokens: value}`` for ``target`` (any name :func:`resolve_target` accepts); empty when not recorded."""
    try:
        name = canonical_target(target, list(record.curves))
    except FitError:
        return {}
    tokens, values = record.curve(name)
    return {float(t): float(v) for t, v in zip(tokens, values)}


def record_scale(record: RunRecord) -> dict:
    """``{model_params, total_params, tokens, schedule}`` of a record (empty when unknown)."""
    return dict(record.scale or {})


def _positive(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) and v > 0 else math.nan


@dataclass
class RunTable:
    """Runs as arrays: W (n_rows, n_domains), named metric columns, and per-row scale (NaN when unknown).

    A "final" table has one row per run; a checkpoint table (``records_table(...,
    checkpoints=True)``) one row per (run, checkpoint), and ``run_ids`` repeat.
    """

    run_ids: list[str]
    domains: list[str]
    W: np.ndarray
    metrics: dict[str, np.ndarray]
    model_params: np.ndarray = field(default=None)  # (n_rows,), NaN when unknown
    tokens: np.ndarray = field(default=None)  # (n_rows,), NaN when unknown

    def __post_init__(self):
        n = len(self.run_ids)
        if self.model_params is None:
            self.model_params = np.full(n, math.nan)
        if self.tokens is None:
            self.tokens = np.full(n, math.nan)

    def target(self, name: str) -> np.ndarray:
        """A metric column, or a derived one: ``mean:all-domains``, ``mean:a,b``, ``wmean:a=0.3,b=0.7``."""
        if name in self.metrics:
            return self.metrics[name]
        cols, weights = self.target_components(name)
        return np.average(np.vstack([self.metrics[c] for c in cols]), axis=0, weights=weights)

    def target_components(self, name: str) -> tuple[list[str], list[float]]:
        """The metric columns a derived target averages, and their weights."""
        return resolve_target(name, list(self.metrics), self.domains)

    def component_matrix(self, name: str) -> tuple[np.ndarray, list[float]]:
        """``(Y, weights)``: the columns a derived target averages as Y (n_rows, n_components), and their weights."""
        cols, weights = self.target_components(name)
        return np.column_stack([self.metrics[c] for c in cols]), weights

    def component_domains(self, name: str) -> list[int | None]:
        """For each component column of a target, the W column of the domain it measures (``val/<domain>``, or a metric
        whose short name is the domain's: :func:`mixopt.runs.targets.metric_domain`), or None."""
        cols, _ = self.target_components(name)
        found = [metric_domain(c, self.domains, list(self.metrics)) for c in cols]
        return [self.domains.index(d) if d is not None else None for d in found]

    def has_scale(self) -> bool:
        """Whether any row knows its model size or tokens."""
        return bool(np.isfinite(self.model_params).any() or np.isfinite(self.tokens).any())

    def scale_matrix(self) -> np.ndarray:
        """``[log N, log D]`` per row, shape (n_rows, 2); NaN where unknown."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.column_stack([np.log(self.model_params), np.log(self.tokens)])

    def scales(self) -> list[tuple[float, float]]:
        """The distinct (model_params, tokens) pairs, sorted; NaN stands for unknown."""
        nan = float("nan")  # one shared object: a set keeps one unknown, where float("nan") values all differ
        pairs = {(float(n) if np.isfinite(n) else nan, float(d) if np.isfinite(d) else nan) for n, d in zip(self.model_params, self.tokens)}
        return sorted(pairs, key=lambda p: (np.nan_to_num(p[0], nan=-1.0), np.nan_to_num(p[1], nan=-1.0)))

    def rows(self, mask) -> "RunTable":
        """The sub-table of the rows where ``mask`` (bool array or index array) holds."""
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask, dtype=int)
        return RunTable([self.run_ids[i] for i in idx], list(self.domains), self.W[idx],
                        {m: v[idx] for m, v in self.metrics.items()}, self.model_params[idx], self.tokens[idx])


def step_tokens(proxy: dict | None) -> int:
    """``batch_size * block_size`` of a proxy config dict (a record's ``proxy``); 0 when either is missing."""
    try:
        return int((proxy or {})["batch_size"]) * int((proxy or {})["block_size"])
    except (KeyError, TypeError, ValueError):
        return 0


def budget_tokens(record: RunRecord) -> set[float]:
    """Token counts at which a record measured a run trained straight to that budget: its end, and under WSD the
    budget of each decay branch (``proxy.schedule.decay_branches``). Cosine checkpoints are not such budgets."""
    end = _positive(record_scale(record).get("tokens"))
    out = {end} if math.isfinite(end) else set()
    info = (record.info or {}).get("lr_schedule") or {}
    if info.get("name") == "wsd" and info.get("branches"):
        step = step_tokens(record.proxy)
        out |= {float(budget * step) for _, budget in info["branches"]} if step > 0 else set()
    return out


def budget_table(records: Sequence[RunRecord]) -> RunTable:
    """One row per (run, budget it measured): its end, plus the budgets of its WSD decay branches (multi-fidelity).

    A multi-phase run gives its end only: its row's mixture is the whole run's token shares, which a branch before
    the last phase did not train on.
    """
    records = list(records)
    table = records_table(records, checkpoints=True)
    if not len(table.run_ids):
        return table
    budgets = {r.run_id: budget_tokens(r) if len(r.phases or [(0.0, r.mixture)]) == 1 else {_positive(record_scale(r).get("tokens"))}
               for r in records}
    keep = np.array([t in budgets[i] for i, t in zip(table.run_ids, table.tokens)])
    with_curves = {r.run_id for r in records if r.curves}
    keep |= np.array([i not in with_curves for i in table.run_ids])  # runs without curves keep their final row
    return table.rows(keep)


def store_table(store: RunStore, *, warn_failed: bool = True, checkpoints: bool = False) -> RunTable:
    """The store's usable runs as a RunTable; failed or non-finite runs are left out with a warning."""
    records = store.records()
    ok = usable_records(records)
    if warn_failed and len(ok) < len(records):
        failed = [r for r in records if r.status != "ok"]
        reasons = "; ".join(f"{r.run_id}: {r.reason}" for r in failed[:3])
        warnings.warn(f"{len(records) - len(ok)} failed or non-finite run(s) excluded from the table ({reasons}).", stacklevel=2)
    return records_table(ok, checkpoints=checkpoints)


def records_table(records: Sequence[RunRecord], *, checkpoints: bool = False) -> RunTable:
    """Records as a table: one row per run (final metrics), or with ``checkpoints`` one row per curve point.

    Two-phase runs enter by their whole-run token shares. A checkpoint row's
    metrics are the curves' values at its tokens (NaN for a metric without that
    checkpoint); a run without curves gives its final row.
    """
    records = list(records)
    mixtures = [r.overall_mixture() for r in records]
    domains = sorted({d for m in mixtures for d in m})
    metric_names = sorted({m for r in records for m in r.metrics})
    vec = mixture_rows(mixtures, domains)
    ids, rows_w, mp, tok, vals = [], [], [], [], []
    for r, w in zip(records, vec):
        sc = record_scale(r)
        final = [r.metrics.get(m, math.nan) for m in metric_names]
        points = sorted({float(t) for c in r.curves.values() for t in c}) if checkpoints else []
        if not points:
            ids.append(r.run_id), rows_w.append(w), mp.append(_positive(sc.get("model_params")))
            tok.append(_positive(sc.get("tokens"))), vals.append(final)
            continue
        curves = {m: {float(t): float(v) for t, v in r.curves.get(m, {}).items()} for m in metric_names}
        for t in points:
            ids.append(r.run_id), rows_w.append(w), mp.append(_positive(sc.get("model_params"))), tok.append(t)
            vals.append([curves[m].get(t, math.nan) for m in metric_names])
    n = len(ids)
    W = np.array(rows_w, dtype=float).reshape(n, len(domains))
    V = np.array(vals, dtype=float).reshape(n, len(metric_names))
    metrics = {m: V[:, j] for j, m in enumerate(metric_names)}
    return RunTable(ids, domains, W, metrics, np.array(mp, dtype=float), np.array(tok, dtype=float))
