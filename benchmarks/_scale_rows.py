"""Rows of a multi-size store for the scale benchmarks: one row per (run, checkpoint), split by model size.

``scale_rows(store_dir)`` reads a store swept with ``benchmarks/scale_embedded.yaml``
(or any store with ``sizes:``) and returns a :class:`ScaleRows`: the mixture
matrix, model size, tokens and target loss of every measurement, with the
record each row came from (so a candidate can read its learning-rate schedule,
``record.info["lr_schedule"]``). :meth:`ScaleRows.split` holds out the largest
model size: the candidates fit on the smaller sizes and predict there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixopt.runs.record import RunRecord
from mixopt.runs.store import RunStore
from mixopt.runs.table import budget_table, sweep_records
from mixopt.surrogates.crossval import mixture_groups


@dataclass
class ScaleRows:
    """Measurements as arrays (one row per run and checkpoint)."""

    domains: list[str]
    W: np.ndarray  # (n, K) mixture of the run
    N: np.ndarray  # (n,) non-embedding parameters
    D: np.ndarray  # (n,) tokens of the measurement
    y: np.ndarray  # (n,) target loss
    records: list[RunRecord]  # the run of each row
    mixture: np.ndarray  # (n,) id of the row's mixture (equal weights -> equal id, across sizes and seeds)
    Y: np.ndarray | None = None  # (n, k) the component metrics an averaged target is made of (None: y is one metric)
    weights: list[float] | None = None  # the components' weights in the target
    component_domains: list | None = None  # per target column, the W column of the domain it measures (val/<d>), or None

    def rows(self, mask) -> "ScaleRows":
        idx = np.flatnonzero(mask)
        return ScaleRows(self.domains, self.W[idx], self.N[idx], self.D[idx], self.y[idx],
                         [self.records[i] for i in idx], self.mixture[idx], None if self.Y is None else self.Y[idx], self.weights,
                         self.component_domains)

    @property
    def sizes(self) -> list[float]:
        return sorted(set(self.N.tolist()))

    @property
    def budgets(self) -> list[float]:
        return sorted(set(self.D.tolist()))

    def split(self) -> tuple["ScaleRows", "ScaleRows"]:
        """(train, test): the smaller sizes, and the largest size."""
        big = self.N == max(self.N)
        return self.rows(~big), self.rows(big)

    def per_mixture(self, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean of ``values`` (default ``y``) per mixture id: (ids, means), ids sorted."""
        values = self.y if values is None else np.asarray(values, dtype=float)
        ids = np.unique(self.mixture)
        return ids, np.array([values[self.mixture == i].mean() for i in ids])


def scale_rows(store_dir: str | Path, target: str = "mean:all-domains") -> ScaleRows:
    """Every budget (run end, WSD branch) of every single-phase, usable sweep run of the store."""
    snap = RunStore(store_dir).snapshot()
    recs = [r for r in sweep_records(snap.ok) if len(r.phases or [(0.0, r.mixture)]) == 1]
    table = budget_table(recs)  # the run's end and its WSD branch budgets: measurements of straight runs
    by_id = {r.run_id: r for r in recs}
    y = table.target(target)
    keep = np.isfinite(y) & np.isfinite(table.model_params) & np.isfinite(table.tokens)
    Y, weights = None, None
    if target not in table.metrics:  # an averaged target: keep its components (mixopt's one-scale model fits them)
        Y, weights = table.component_matrix(target)
        keep &= np.isfinite(Y).all(axis=1)
    rows = ScaleRows(table.domains, table.W, table.model_params, table.tokens, y,
                     [by_id[i] for i in table.run_ids], mixture_groups(table.W), Y, weights, table.component_domains(target))
    return rows.rows(keep)
