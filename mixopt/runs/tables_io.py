"""Run tables on disk: read RegMix-layout CSVs, import them as runs, export runs re-importably.

RegMix's layout is two CSVs joined on an ``index`` column: one of domain weights,
one of metrics. The metrics CSV may carry two optional scale columns:

- ``model_params``: the model's (non-embedding) parameter count;
- ``tokens``: the tokens seen when the row's metrics were measured.

Several metric rows may share one ``index``: they are checkpoints of one run
(one record, whose ``curves`` hold every checkpoint and whose ``metrics`` are the
last one). An empty metric cell means the run did not measure that metric (at
that checkpoint): the run is kept without it, while a literal ``nan``/``inf`` is
rejected. The same weights under different indices are separate runs, for
example one mixture trained at two model sizes. Without the scale columns,
import behaves as before (one row per index).

mixopt's own export (``export_csv``) is one CSV with ``run_id``, the weights and
the metrics; ``export_regmix`` writes the two-CSV layout that ``import_regmix``
reads back.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import NAME_PATTERN
from ..errors import ConsistencyError, DataError, MixtureError
from ..io import atomic_write_files, atomic_write_text, shown_path
from .record import RunRecord, canonical_json, check_scale_value
from .store import RunStore

IMPORT_SUM_TOLERANCE = 0.01  # RegMix rounds weights to 3 decimals; rows sum to 1 within ~0.004
SCALE_COLUMNS = ("model_params", "tokens")  # optional columns of a metrics CSV; never metrics or domains


def read_csv_rows(path: str | Path, *, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV, with clear errors for missing, empty or broken files."""
    path = Path(path)
    shown = shown_path(path)
    if path.is_dir():
        csvs = sorted(q.name for q in path.glob("*.csv"))
        raise DataError(f"{what} file {shown} is a folder, not a CSV file. Pass the file itself"
                        + (f", e.g. {shown_path(path / csvs[0])}." if csvs else "."))
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
    twice = next((h for i, h in enumerate(header) if h in header[:i]), None)
    if twice is not None:  # a row dict would keep only its last cell
        raise DataError(f"{what} file {shown} lists column '{_shown_index(twice)}' twice; keep one.")
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


def _shown_index(idx: str) -> str:
    return idx if idx.isprintable() else repr(idx)  # a quoted cell may hold a line break; keep messages one line


def parse_mixture_rows(path: str | Path, *, tolerance: float = IMPORT_SUM_TOLERANCE,
                       whole_file: bool = True) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """Read a mixtures CSV: (indices, domains, W normalised, rejected-row messages).

    An index listed twice with the same weights counts once; with different
    weights it is rejected (checkpoints of one run share its mixture). With ``whole_file``, many rows whose weights
    miss 1 the same way (percentages; a domain's column missing) raise one DataError instead of per-row rejections.
    """
    header, rows = read_csv_rows(path, what="Mixtures")
    scale_cols = [h for h in header if h in SCALE_COLUMNS]
    if scale_cols:
        raise DataError(f"Mixtures file {shown_path(Path(path))} has column(s) {scale_cols}, which belong in the metrics file "
                        "(one value per measured row). Move them to the metrics CSV.")
    domains = [h for h in header if h != "index"]
    if not domains:
        raise DataError(f"Mixtures file {path} has no domain columns besides `index`. Add one column per domain.")
    bad = [d for d in domains if not re.match(NAME_PATTERN, d)]
    if bad:
        raise DataError(f"Mixtures file {shown_path(Path(path))} has domain column(s) {bad[:5]}: a domain name is letters, "
                        "digits, _ . - (it becomes a metric name, a file name and a trainer's key). Rename the column(s).")
    seen: dict[str, np.ndarray | None] = {}  # index -> weights, None once rejected
    rejected, off_sums = [], []
    for row in rows:
        idx = row["index"]
        shown = _shown_index(idx)
        try:
            w = np.array([float(row[d]) if row[d] != "" else math.nan for d in domains])
        except ValueError as exc:
            rejected.append(f"index={shown}: non-numeric weight ({exc})")
            seen[idx] = None
            continue
        s = w.sum()
        problem = ("missing or non-finite weight" if not np.all(np.isfinite(w)) else
                   f"negative weight {w.min():g}" if np.any(w < 0) else
                   f"weights sum to {s:.6g}, not 1 (±{tolerance:g})" if abs(s - 1) > tolerance + 1e-9 else "")
        if problem:
            rejected.append(f"index={shown}: {problem}")
            seen[idx] = None
            off_sums += [float(s)] if problem.startswith("weights sum") else []
            continue
        w = w / s
        if idx in seen:
            prev = seen[idx]
            if prev is not None and not np.allclose(prev, w, atol=1e-9):
                rejected.append(f"index={shown}: listed twice with different weights; rows of one index are checkpoints of one run "
                                "and share its mixture. Give each run its own index")
                seen[idx] = None
            continue
        seen[idx] = w
    if whole_file and (problem := _column_problem(off_sums, len(rows), tolerance)):
        raise DataError(f"Mixtures file {shown_path(Path(path))}: {problem}")
    kept = [(i, w) for i, w in seen.items() if w is not None]
    W = np.array([w for _, w in kept]).reshape(len(kept), len(domains))
    return [i for i, _ in kept], domains, W, rejected


def _column_problem(off_sums: list[float], n_rows: int, tolerance: float) -> str:
    """A whole file's problem behind rows whose weights do not sum to 1, or "" when one row is odd on its own.

    Importing the rows that happen to sum to 1 would keep a biased subset: with one domain's column missing, only the
    mixtures that gave it almost nothing."""
    if not off_sums:
        return ""
    if len(off_sums) == n_rows and all(abs(v - 100) <= 100 * tolerance + 1e-9 for v in off_sums):
        return "every row's weights sum to 100: they look like percentages. Divide them by 100 (shares sum to 1)."
    if len(off_sums) >= 2 and all(v < 1 for v in off_sums):  # even a small domain's column: its rows sum a little low
        return (f"{len(off_sums)} of {n_rows} rows have weights summing below 1 (e.g. {min(off_sums):.4g}): a domain's "
                "column may be missing. Add every domain's column (or fix those rows); nothing was imported.")
    return ""


def read_mixtures_for_model(path: str | Path, domains: list[str]) -> tuple[list[str], np.ndarray]:
    """Mixtures to predict, matched to a model's domains by column name (strict)."""
    indices, cols, W, rejected = parse_mixture_rows(path, tolerance=IMPORT_SUM_TOLERANCE, whole_file=False)  # columns first
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


def _token_key(tokens: float) -> str:
    return str(int(tokens)) if float(tokens).is_integer() else repr(float(tokens))


def _index_record(idx: str, mixture: dict[str, float], rows: list[dict[str, str]], metric_names: list[str], *, src: str,
                  source_file: str, model_params: float | None, tokens: float | None, schedule: str | None) -> RunRecord:
    """One run from its metric rows (checkpoints); raises DataError with the row's problem."""
    parsed = []
    for row in rows:
        try:  # an empty cell: the run did not measure that metric (at that checkpoint); `runs export` writes those
            metrics = {m: float(row[m]) for m in metric_names if row[m] != ""}
        except ValueError:
            raise DataError("non-numeric metric") from None
        bad = [m for m, v in metrics.items() if not math.isfinite(v)]
        if bad:
            raise DataError(f"NaN/inf metric {bad[0]} (leave the cell empty if the run did not measure it)")
        mp = check_scale_value(row.get("model_params"), "model_params", where="the metrics file") or model_params
        tok = check_scale_value(row.get("tokens"), "tokens", where="the metrics file") or tokens
        parsed.append((mp, tok, metrics))
    sizes = {mp for mp, _, _ in parsed}
    if len(sizes) > 1:
        raise DataError(f"its rows give model_params {sorted(sizes, key=str)}; one index is one run. Give each model size its own index")
    if len(parsed) > 1:
        toks = [t for _, t, _ in parsed]
        if any(t is None for t in toks):
            raise DataError(f"{len(parsed)} metric rows but no tokens to tell checkpoints apart. Add a tokens column or give each run its own index")
        if len(set(toks)) < len(toks):
            raise DataError("two metric rows at the same tokens. Drop the duplicate row")
    parsed.sort(key=lambda p: p[1] or 0.0)
    mp, final_tokens, metrics = parsed[-1]
    if not metrics:
        raise DataError("no metric measured: every metric cell of its last row is empty")
    curves = {m: {_token_key(t): vals[m] for _, t, vals in parsed if t is not None and m in vals} for m in metric_names}
    curves = {m: c for m, c in curves.items() if c}
    scale = {"model_params": mp, "total_params": None, "tokens": final_tokens, "schedule": schedule}
    rid = hashlib.sha256(canonical_json({"import": src, "index": idx, "mixture": mixture, "metrics": metrics,
                                         **({"scale": scale, "curves": curves} if mp or final_tokens else {})}).encode()).hexdigest()[:16]
    return RunRecord(run_id=rid, mixture=mixture, status="ok", metrics=metrics, curves=curves, source="import",
                     label=f"{src}#{idx}", info={"source_file": source_file, "index": idx}, scale=scale)


@dataclass
class ImportResult:
    """What ``import_runs`` did: runs written now, runs the store already held (the same content-keyed record),
    rejected rows (one message each) and notes on what the imported runs lack."""

    added: int = 0
    existing: int = 0
    rejected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.added + self.existing


def check_schedule_name(schedule: str | None) -> str | None:
    """An imported run's LR schedule name, as given.

    Any trainer's name is accepted (constant, cosine, wsd, linear, inverse_sqrt, ...), since the runs were
    trained elsewhere; an empty name or one with spaces is refused. The name is kept verbatim (not lower-cased):
    it is part of an imported run's id, and a re-import must find the runs it wrote before.
    """
    if schedule is None:
        return None
    name = str(schedule)
    if not name or any(c.isspace() for c in name):
        raise DataError(f"--schedule must be one word such as constant, cosine or wsd; got {schedule!r}.")
    return name


def import_regmix(store: RunStore, mixtures_csv: str | Path, metrics_csv: str | Path, *, model_params: float | None = None,
                  tokens: float | None = None, schedule: str | None = None, strict: bool = False) -> tuple[int, list[str]]:
    """Import externally produced runs; returns (n accepted: imported now or already in the store, rejection messages).

    See :func:`import_runs`, which also tells new runs from those already there.
    """
    res = import_runs(store, mixtures_csv, metrics_csv, model_params=model_params, tokens=tokens, schedule=schedule, strict=strict)
    return res.accepted, res.rejected


def import_runs(store: RunStore, mixtures_csv: str | Path, metrics_csv: str | Path, *, model_params: float | None = None,
                tokens: float | None = None, schedule: str | None = None, strict: bool = False) -> ImportResult:
    """Import externally produced runs into ``store``.

    ``model_params`` / ``tokens`` fill rows whose metrics file lacks those columns
    (or leaves a cell empty); ``schedule`` names the learning-rate schedule. With
    ``strict``, any rejected row raises ``DataError`` and nothing is written.

    A store holds runs over one domain set: an import whose domains differ from the store's (``store.json``, else
    its records'), or whose metrics share none with the store's runs, is a one-line ``ConsistencyError`` and nothing
    is written. ``store.json``'s domains are written only when the store has none.
    """
    model_params = check_scale_value(model_params, "model_params", where="--model-params")
    tokens = check_scale_value(tokens, "tokens", where="--tokens")
    schedule = check_schedule_name(schedule)
    indices, domains, W, rejected = parse_mixture_rows(mixtures_csv)
    mheader, mrows = read_csv_rows(metrics_csv, what="Metrics")
    metric_names = [h for h in mheader if h != "index" and h not in SCALE_COLUMNS]
    if not metric_names:
        raise DataError(f"Metrics file {metrics_csv} has no metric columns besides `index`{' and the scale columns' if len(mheader) > 1 else ''}. Add at least one.")
    clash = sorted(set(metric_names) & set(domains))
    if clash:
        raise DataError(f"Columns {clash} appear in both the mixtures and the metrics file. Rename them so each column is either a weight or a metric.")
    meta = store.meta()  # a corrupt store.json stops the import here, before anything is written
    held = store.records() if store.run_ids() else []
    notes = check_import_fits_store(store, meta, held, domains, metric_names, mixtures_csv, metrics_csv)
    by_index: dict[str, list[dict[str, str]]] = {}
    for r in mrows:
        by_index.setdefault(r["index"], []).append(r)
    src = Path(mixtures_csv).name
    records = []
    for idx, w in zip(indices, W):
        rows = by_index.get(idx)
        if not rows:
            rejected.append(f"index={_shown_index(idx)}: no row in {Path(metrics_csv).name}")
            continue
        mixture = {d: float(x) for d, x in zip(domains, w)}
        try:
            records.append(_index_record(idx, mixture, rows, metric_names, src=src, source_file=str(mixtures_csv),
                                         model_params=model_params, tokens=tokens, schedule=schedule))
        except DataError as exc:
            rejected.append(f"index={_shown_index(idx)}: {exc}")
    listed = {r["index"] for r in read_csv_rows(mixtures_csv, what="Mixtures")[1]}
    orphans = [idx for idx in by_index if idx not in listed]
    rejected.extend(f"index={_shown_index(idx)}: in {Path(metrics_csv).name} but not in {src}" for idx in orphans)
    if strict and rejected:
        raise DataError(f"--strict: {len(rejected)} row(s) of {src} were rejected, first: {rejected[0]}. Fix those rows, or drop --strict to import the rest.")
    res = ImportResult(rejected=rejected, notes=notes)
    if not records:  # nothing to write: leave the store (or the folder a new one would be) as it was
        return res
    partial = sorted({m for rec in records for m in metric_names if m not in rec.metrics})
    if partial:
        n = sum(1 for rec in records if len(rec.metrics) < len(metric_names))
        res.notes.append(f"{n} of the imported runs did not measure every metric (empty cells in {_few(partial)}): "
                         "a fit of those targets fails on them")
    store.check_writable()
    held_ids, held_keys = {r.run_id for r in held}, {_content_key(r) for r in held}
    twins = 0
    for rec in records:
        key = _content_key(rec)
        if rec.run_id in held_ids or store.get(rec.run_id) is not None:  # ids hash the content: imported before
            res.existing += 1
        elif key in held_keys:  # the same measurement under another file name or index (a `runs export` round trip):
            twins += 1  # kept twice, fit would read zero seed noise from the pair and CV would test on a training row
            res.existing += 1
        else:  # absent, or corrupt (quarantined when read): written now
            store.put(rec)
            res.added += 1
        held_keys.add(key)
    if twins:
        res.notes.append(f"{twins} row(s) have the weights, metrics and scale of a run the store already holds (or of "
                         "an earlier row of this file), imported under another file name or index: not imported again "
                         "(a copy would pass for a seed repeat with zero noise)")
    if records and not meta.get("domains"):
        store.update_meta(domains=domains)
    return res


def check_import_fits_store(store: RunStore, meta: dict, held: list[RunRecord], domains: list[str],
                            metric_names: list[str], mixtures_csv: str | Path, metrics_csv: str | Path) -> list[str]:
    """Runs of one store are fitted together: the import's domains must be the store's and its metrics must share at
    least one with the store's runs (a one-line ConsistencyError otherwise). Returns notes on metrics the store's
    runs measured and the imported ones lack."""
    stored = store.domains(meta)
    if stored and sorted(stored) != sorted(domains):
        missing, extra = sorted(set(stored) - set(domains)), sorted(set(domains) - set(stored))
        raise ConsistencyError(
            f"The store {store.root} holds runs over domains {sorted(stored)}, but {shown_path(Path(mixtures_csv))} has "
            f"weight columns {sorted(domains)} (missing: {missing or 'none'}; extra: {extra or 'none'}): runs over other "
            f"domains cannot be fitted together. Import them into a new --store, or rename the CSV's weight columns to "
            f"the store's domains; nothing was imported.")
    have: set[str] = set()
    for rec in held:
        have.update(rec.metrics)
    if not have:
        return []
    if not have & set(metric_names):
        raise ConsistencyError(
            f"The runs in {store.root} measured {_few(sorted(have))}, but {shown_path(Path(metrics_csv))} has metrics "
            f"{_few(metric_names)}: none in common, so no target could be fitted on both. Rename the metric columns to "
            f"the store's names, or import into a new --store; nothing was imported.")
    lacking = sorted(have - set(metric_names))
    return [f"the imported runs lack {len(lacking)} metric(s) the store's runs measured ({_few(lacking)}): a fit of those "
            "targets fails on them"] if lacking else []


def _content_key(rec: RunRecord) -> tuple:
    """What makes two records the same measurement, whatever their source file or index."""
    return (tuple((d, round(w, 9)) for d, w in sorted(rec.overall_mixture().items()) if w > 0),
            tuple(sorted((m, round(v, 9)) for m, v in rec.metrics.items())),
            rec.scale.get("model_params"), rec.scale.get("tokens"), len(rec.phases))


def _few(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def export_csv(table, path: str | Path) -> Path:
    """One row per run: run_id, domain weights, [model_params, tokens when known], metrics."""
    buf = io.StringIO()
    w = csv.writer(buf)
    names = sorted(table.metrics)
    scale = table.has_scale()
    w.writerow(["run_id", *table.domains, *(SCALE_COLUMNS if scale else ()), *names])
    for i, rid in enumerate(table.run_ids):
        sc = [_num(table.model_params[i]), _num(table.tokens[i])] if scale else []
        w.writerow([rid, *(repr(float(x)) for x in table.W[i]), *sc, *(_metric_cell(table.metrics[m][i]) for m in names)])
    return atomic_write_text(Path(path), buf.getvalue())


def _num(x: float) -> str:
    return "" if not math.isfinite(x) else (str(int(x)) if float(x).is_integer() else repr(float(x)))


def _metric_cell(x: float) -> str:
    """A metric value exactly (``repr``), or an empty cell for one the run did not measure (NaN): import reads an
    empty cell back as "not measured" for that metric only."""
    return repr(float(x)) if math.isfinite(x) else ""


def regmix_paths(out: str | Path) -> tuple[Path, Path]:
    """The two files ``export_regmix`` writes for ``--out OUT``: ``OUT-stem.mixtures.csv`` and ``OUT-stem.metrics.csv``."""
    out = Path(out)
    stem = out.name[:-4] if out.name.endswith(".csv") else out.name
    return out.with_name(stem + ".mixtures.csv"), out.with_name(stem + ".metrics.csv")


def export_regmix(table, out: str | Path) -> tuple[Path, Path]:
    """RegMix's two-CSV layout, which ``import_regmix`` reads back (index = run_id).

    With a checkpoint table (``records_table(..., checkpoints=True)``) the metrics
    file has one row per checkpoint under the run's index.
    """
    mix_path, met_path = regmix_paths(out)
    names = sorted(table.metrics)
    scale = table.has_scale()
    mix, met = io.StringIO(), io.StringIO()
    mw, tw = csv.writer(mix), csv.writer(met)
    mw.writerow(["index", *table.domains])
    tw.writerow(["index", *(SCALE_COLUMNS if scale else ()), *names])
    written = set()
    for i, rid in enumerate(table.run_ids):
        if rid not in written:
            mw.writerow([rid, *(repr(float(x)) for x in table.W[i])])
            written.add(rid)
        sc = [_num(table.model_params[i]), _num(table.tokens[i])] if scale else []
        tw.writerow([rid, *sc, *(_metric_cell(table.metrics[m][i]) for m in names)])
    # one transaction: a failed write (full disk) leaves both earlier files as they were, never a new mixtures file beside
    # an old metrics file. The window left: a process killed between the two renames (microseconds) leaves a mixed pair.
    atomic_write_files(mix_path.parent, {mix_path.name: mix.getvalue(), met_path.name: met.getvalue()})
    return mix_path, met_path
