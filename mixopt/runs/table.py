"""Runs as tables: export to CSV, import RegMix-layout CSVs, pick a target metric.

RegMix's layout is two CSVs joined on an ``index`` column: one of domain weights,
one of metrics. mixopt exports one CSV with ``run_id``, the weights (one column
per domain) and the metrics (names contain ``/`` or ``:``).
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, FitError, MixtureError
from ..io import atomic_write_text, shown_path
from .record import RunRecord
from .store import RunStore

IMPORT_SUM_TOLERANCE = 0.01  # RegMix rounds weights to 3 decimals; rows sum to 1 within ~0.004


@dataclass
class RunTable:
    """Finished runs as arrays: W (n_runs, n_domains) and named metric columns."""

    run_ids: list[str]
    domains: list[str]
    W: np.ndarray
    metrics: dict[str, np.ndarray]

    def target(self, name: str) -> np.ndarray:
        """A metric column, or a derived one: ``mean:all-domains``, ``mean:a,b``, ``wmean:a=0.3,b=0.7``."""
        if name in self.metrics:
            return self.metrics[name]
        cols, weights = self.target_components(name)
        return np.average(np.vstack([self.metrics[c] for c in cols]), axis=0, weights=weights)

    def target_components(self, name: str) -> tuple[list[str], list[float]]:
        """The metric columns a derived target averages, and their weights."""
        if name == "mean:all-domains":
            cols = [c for c in self.metrics if c.startswith("val/")] or [c for c in self.metrics if c.startswith("metric/")]
            if not cols:
                raise FitError(f"Target {name} needs per-domain metrics (val/* or metric/*), but the store has {sorted(self.metrics)}. Name a metric column.")
            return cols, [1.0] * len(cols)
        if name.startswith(("mean:", "wmean:")):
            kind, _, body = name.partition(":")
            cols, weights = [], []
            for p in (p.strip() for p in body.split(",") if p.strip()):
                col, _, w = p.partition("=") if kind == "wmean" else (p, "", "1")
                if col not in self.metrics:
                    raise FitError(f"Target {name} names metric '{col}', which the store does not have. Known metrics: {sorted(self.metrics)}.")
                try:
                    weights.append(float(w))
                except ValueError:
                    raise FitError(f"Target {name}: weight '{w}' of '{col}' is not a number. Use wmean:metric=0.5,other=0.5.") from None
                cols.append(col)
            if not cols or sum(weights) <= 0 or any(w < 0 for w in weights):
                raise FitError(f"Target {name} names no metrics with non-negative weights summing above 0. Use e.g. mean:val/code,val/prose.")
            return cols, weights
        raise FitError(f"Unknown target '{name}'. Use a metric column ({', '.join(sorted(self.metrics)[:8])}...) or mean:all-domains.")


def store_table(store: RunStore, *, warn_failed: bool = True) -> RunTable:
    """The store's successful runs as a RunTable; failed runs are left out with a warning."""
    records = store.records()
    failed = [r for r in records if r.status != "ok"]
    ok = [r for r in records if r.status == "ok" and all(math.isfinite(v) for v in r.metrics.values())]
    if warn_failed and len(ok) < len(records):
        reasons = "; ".join(f"{r.run_id}: {r.reason}" for r in failed[:3])
        warnings.warn(f"{len(records) - len(ok)} failed or non-finite run(s) excluded from the table ({reasons}).", stacklevel=2)
    return records_table(ok)


def records_table(records: list[RunRecord]) -> RunTable:
    mixtures = [r.overall_mixture() for r in records]  # two-phase runs enter by their whole-run token shares
    domains = sorted({d for m in mixtures for d in m})
    metric_names = sorted({m for r in records for m in r.metrics})
    W = np.array([[m.get(d, 0.0) for d in domains] for m in mixtures], dtype=float).reshape(len(records), len(domains))
    metrics = {m: np.array([r.metrics.get(m, np.nan) for r in records], dtype=float) for m in metric_names}
    return RunTable([r.run_id for r in records], domains, W, metrics)


def export_csv(table: RunTable, path: str | Path) -> Path:
    """One row per run: run_id, domain weights, metrics."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    names = sorted(table.metrics)
    w.writerow(["run_id", *table.domains, *names])
    for i, rid in enumerate(table.run_ids):
        w.writerow([rid, *(repr(float(x)) for x in table.W[i]), *(repr(float(table.metrics[m][i])) for m in names)])
    return atomic_write_text(Path(path), buf.getvalue())


def read_csv_rows(path: str | Path, *, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV, with clear errors for missing, empty or broken files."""
    path = Path(path)
    shown = shown_path(path)
    if not path.is_file():
        raise DataError(f"{what} file {shown} does not exist. Check the path.")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DataError(f"{what} file {shown} is not UTF-8 text. Save it as a UTF-8 CSV.") from None
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{what} file {shown} is empty. It needs a header row with an `index` column.") from None
    header = [h.strip() for h in header]
    n_raw = len(header)
    keep = [i for i, h in enumerate(header) if h]  # RegMix files end with a trailing comma
    header = [header[i] for i in keep]
    if "index" not in header:
        raise DataError(f"{what} file {shown} has no `index` column (columns: {header[:6]}...). Add an index column to join mixtures and metrics.")
    rows = []
    for lineno, raw in enumerate(reader, start=2):
        if not any(c.strip() for c in raw):
            continue
        vals = [raw[i].strip() if i < len(raw) else "" for i in keep]
        if len(raw) > n_raw and any(c.strip() for c in raw[n_raw:]):
            raise DataError(f"{what} file {shown}, line {lineno}: {len(raw)} fields but the header has {n_raw}. Fix the row.")
        rows.append(dict(zip(header, vals)))
    if not rows:
        raise DataError(f"{what} file {shown} has a header but no rows. Add data rows.")
    return header, rows


def parse_mixture_rows(path: str | Path, *, tolerance: float = IMPORT_SUM_TOLERANCE) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """Read a mixtures CSV: (indices, domains, W normalised, rejected-row messages)."""
    header, rows = read_csv_rows(path, what="Mixtures")
    domains = [h for h in header if h != "index"]
    if not domains:
        raise DataError(f"Mixtures file {path} has no domain columns besides `index`. Add one column per domain.")
    indices, W, rejected = [], [], []
    for row in rows:
        idx = row["index"]
        shown = idx if idx.isprintable() else repr(idx)  # a quoted cell may hold a line break; keep messages one line
        try:
            w = np.array([float(row[d]) if row[d] != "" else math.nan for d in domains])
        except ValueError as exc:
            rejected.append(f"index={shown}: non-numeric weight ({exc})")
            continue
        s = w.sum()
        if not np.all(np.isfinite(w)):
            rejected.append(f"index={shown}: missing or non-finite weight")
        elif np.any(w < 0):
            rejected.append(f"index={shown}: negative weight {w.min():g}")
        elif abs(s - 1) > tolerance:
            rejected.append(f"index={shown}: weights sum to {s:.4g}, not 1 (±{tolerance:g})")
        else:
            indices.append(idx)
            W.append(w / s)
    return indices, domains, np.array(W).reshape(len(W), len(domains)), rejected


def import_regmix(store: RunStore, mixtures_csv: str | Path, metrics_csv: str | Path) -> tuple[int, list[str]]:
    """Import externally produced runs; returns (n imported, rejection messages)."""
    indices, domains, W, rejected = parse_mixture_rows(mixtures_csv)
    mheader, mrows = read_csv_rows(metrics_csv, what="Metrics")
    metric_names = [h for h in mheader if h != "index"]
    if not metric_names:
        raise DataError(f"Metrics file {metrics_csv} has no metric columns besides `index`. Add at least one.")
    clash = sorted(set(metric_names) & set(domains))
    if clash:
        raise DataError(f"Columns {clash} appear in both the mixtures and the metrics file. Rename them so each column is either a weight or a metric.")
    by_index = {r["index"]: r for r in mrows}
    store.check_writable()
    n = 0
    src = Path(mixtures_csv).name
    for idx, w in zip(indices, W):
        shown = idx if idx.isprintable() else repr(idx)
        row = by_index.get(idx)
        if row is None:
            rejected.append(f"index={shown}: no row in {Path(metrics_csv).name}")
            continue
        try:
            metrics = {m: float(row[m]) for m in metric_names}
        except ValueError:
            rejected.append(f"index={shown}: non-numeric metric")
            continue
        bad = [m for m, v in metrics.items() if not math.isfinite(v)]
        if bad:
            rejected.append(f"index={shown}: NaN/inf metric {bad[0]}")
            continue
        mixture = {d: float(x) for d, x in zip(domains, w)}
        import hashlib

        from .record import canonical_json

        rid = hashlib.sha256(canonical_json({"import": src, "index": idx, "mixture": mixture, "metrics": metrics}).encode()).hexdigest()[:16]
        store.put(RunRecord(run_id=rid, mixture=mixture, status="ok", metrics=metrics, source="import",
                            label=f"{src}#{idx}", info={"source_file": str(mixtures_csv), "index": idx}))
        n += 1
    store.update_meta(domains=domains)
    return n, rejected


def read_mixtures_for_model(path: str | Path, domains: list[str]) -> tuple[list[str], np.ndarray]:
    """Mixtures to predict, matched to a model's domains by column name (strict)."""
    indices, cols, W, rejected = parse_mixture_rows(path, tolerance=IMPORT_SUM_TOLERANCE)
    missing, extra = sorted(set(domains) - set(cols)), sorted(set(cols) - set(domains))
    if missing or extra:
        raise MixtureError(
            f"Mixtures file {path} must have exactly the model's domain columns. Missing: {missing or 'none'}; extra: {extra or 'none'}. "
            f"Rename or add columns to match: {domains}."
        )
    if rejected:
        raise MixtureError(f"Mixtures file {path} has {len(rejected)} invalid row(s), first: {rejected[0]}. Fix or drop them.")
    order = [cols.index(d) for d in domains]
    return indices, W[:, order]
