"""One function per report figure: ``(data..., path) -> Path``.

Each figure is drawn on a bare matplotlib ``Figure`` bound to the Agg canvas
inside the function, so nothing touches pyplot's global state or the process
backend, plotting works headless, and importing this module draws nothing.
PNGs are written atomically, so a figure on disk is always whole.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_bytes
from . import fmt
from .tables import across_scales

DPI = 110


def _figure(width: float, height: float, **kw: Any):
    """A Figure on the Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained", **kw)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return atomic_write_bytes(Path(path), buf.getvalue())


def plain(text: str) -> str:
    """``text`` as matplotlib shows it literally: a ``$`` escaped, so a run label, domain, metric or predictor name
    (data, often from an imported CSV) is never parsed as mathtext (``a$1 ... cost$^$2`` would otherwise raise)."""
    return str(text).replace("$", r"\$")


def _log_x(ax, x: Sequence[float], *, tokens: bool = False) -> None:
    """Log x-axis; minor ticks keep labels only when the data span less than a decade. With ``tokens``, ticks read
    as token counts (``250k``, ``2M``) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    x = [v for v in x if v > 0]
    wide = bool(x) and max(x) / min(x) >= 10
    if tokens:
        short = FuncFormatter(lambda v, _pos: fmt.tokens(v))
        ax.xaxis.set_major_formatter(short)
        ax.xaxis.set_minor_formatter(short)
        if wide:  # 20M, 50M, 100M, 200M: more than one labelled tick over a decade or two
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    if wide:
        ax.xaxis.set_minor_formatter(NullFormatter())


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation, NaN when undefined (fewer than 3 points or a constant input)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho, _ = spearmanr(x, y)
    return float(rho)


def fmt_rho(rho: float) -> str:
    return "n/a" if not math.isfinite(rho) else f"{rho:.3f}"


def plot_mixture(phases: Sequence[tuple[float, Mapping[str, float]]], path: str | Path) -> Path:
    """Grouped bars: one group per domain, one bar per phase (labelled by its start fraction)."""
    domains = sorted({d for _, w in phases for d in w})
    n = len(phases)
    x = np.arange(len(domains))
    width = 0.8 / max(n, 1)
    fig = _figure(max(5.0, 0.9 * len(domains) + 2.0), 3.8)
    ax = fig.add_subplot()
    for k, (start, weights) in enumerate(phases):
        vals = [weights.get(d, 0.0) for d in domains]
        ax.bar(x + (k - (n - 1) / 2) * width, vals, width, label=f"phase {k + 1} (from {start:.0%} of budget)")
    ax.set_xticks(x, [plain(d) for d in domains], rotation=30 if len(domains) > 6 else 0, ha="right" if len(domains) > 6 else "center")
    ax.set_ylabel("token share")
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))  # the page writes shares as percentages
    ax.set_ylim(0, max(0.05, max(w for _, ws in phases for w in ws.values()) * 1.15))
    ax.set_title("Planned mixture per phase")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_pred_vs_actual(y_true: Sequence[float], y_pred: Sequence[float], y_std: Sequence[float] | None,
                        path: str | Path, *, source: str = "", in_sample: Sequence[bool] | None = None) -> Path:
    """Scatter of predicted vs actual with the y = x line; ±1σ bars when ``y_std`` is given.

    With ``in_sample`` (one bool per point), the model's training runs (circles) and
    held-out runs (triangles) are drawn apart and the title gives ρ for each.
    """
    yt, yp = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    ys = None if y_std is None else np.asarray(y_std, dtype=float)
    fig = _figure(4.8, 4.4)
    ax = fig.add_subplot()
    if in_sample is None:
        groups = [(np.ones(yt.size, dtype=bool), "o", "C0", "")]
        title = f"Spearman ρ = {fmt_rho(spearman(yt, yp))}, n = {yt.size}"
    else:
        mask = np.asarray(in_sample, dtype=bool)
        groups = [(mask, "o", "C0", f"in-sample (n = {int(mask.sum())})"),
                  (~mask, "^", "C1", f"held out (n = {int((~mask).sum())})")]
        groups = [g for g in groups if g[0].any()]
        title = ", ".join(f"ρ {lab.split(' (')[0]} = {fmt_rho(spearman(yt[m], yp[m]))}" for m, _, _, lab in groups)
        source = " + ".join(lab.split(" (")[0] for _, _, _, lab in groups)
    for m, marker, colour, label in groups:
        if ys is not None:
            ax.errorbar(yt[m], yp[m], yerr=ys[m], fmt=marker, color=colour, ms=4, alpha=0.8, elinewidth=0.8, capsize=2,
                        label=label or None)
        else:
            ax.scatter(yt[m], yp[m], s=18, alpha=0.8, marker=marker, color=colour, label=label or None)
    lo = float(np.nanmin(np.concatenate([yt, yp])))
    hi = float(np.nanmax(np.concatenate([yt, yp])))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linestyle="--", linewidth=1, label="y = x")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(f"Predicted vs actual{f' ({source})' if source else ''}\n{title}", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


ANNOTATE_MAX_ROWS = 30  # numbers in the loss matrix's cells up to this many runs


def robust_limit(D: np.ndarray, q: float = 90.0) -> float:
    """Half-width of a symmetric colour scale: the ``q``-th percentile of ``|D|`` (so one outlier cannot squeeze the rest)."""
    a = np.abs(D[np.isfinite(D)])
    if a.size == 0:
        return 1.0
    lim = float(np.percentile(a, q))
    return lim if lim > 0 else float(a.max()) or 1.0


def plot_loss_matrix(run_labels: Sequence[str], metric_names: Sequence[str], M: np.ndarray, path: str | Path) -> Path:
    """Heatmap of runs × per-domain losses; rows sorted by mean loss (best on top).

    Colour is each loss minus its column's median on a symmetric scale clipped at
    the 90th percentile of the deviations, so the typical run is white, one outlier
    cannot wash out the rest, and domains with different loss levels compare.
    Cells carry the raw loss when there are at most ``ANNOTATE_MAX_ROWS`` runs.
    """
    from matplotlib.colors import Normalize

    M = np.asarray(M, dtype=float).reshape(len(run_labels), len(metric_names))
    order = np.argsort(np.nanmean(M, axis=1), kind="stable")
    M = M[order]
    labels = [run_labels[i] for i in order]
    n_runs, n_cols = M.shape
    D = M - np.nanmedian(M, axis=0, keepdims=True)
    lim = robust_limit(D)
    norm = Normalize(vmin=-lim, vmax=lim, clip=False)
    fig = _figure(max(5.0, 0.8 * n_cols + 3.0), min(14.0, max(3.5, 0.25 * n_runs + 1.8)))
    ax = fig.add_subplot()
    im = ax.imshow(D, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
    cols = [plain(m.removeprefix("val/")) for m in metric_names]
    ax.set_xticks(np.arange(n_cols), cols, rotation=30 if n_cols > 5 else 0, ha="right" if n_cols > 5 else "center")
    if n_runs <= 40:
        ax.set_yticks(np.arange(n_runs), [plain(lab) for lab in labels], fontsize="small")
    else:
        ax.set_ylabel(f"{n_runs} runs, best mean loss on top")
    if n_runs <= ANNOTATE_MAX_ROWS:
        for i in range(n_runs):
            for j in range(n_cols):
                if math.isfinite(M[i, j]):
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(D[i, j]) > 0.6 * lim else "black")
    cbar = fig.colorbar(im, ax=ax, extend="both" if np.nanmax(np.abs(D)) > lim else "neither")
    cbar.set_label("loss − column median (blue: lower is better)")
    ax.set_title("Per-domain validation loss of the sweep")
    return _save(fig, path)


def plot_curves(curves: Mapping[str, Mapping[float, float]], path: str | Path, *, metric: str = "val loss") -> Path:
    """Loss vs tokens seen (log-x), one line per run; the legend (below the axes) names each line."""
    fig = _figure(6.4, 4.2 + 0.22 * len(curves))
    ax = fig.add_subplot()
    for k, (label, curve) in enumerate(curves.items()):
        pts = sorted((float(t), float(v)) for t, v in curve.items())
        ax.plot([t for t, _ in pts], [v for _, v in pts], marker="os^dvP"[k % 6], ms=4, label=plain(label))
    _log_x(ax, [float(t) for c in curves.values() for t in c], tokens=True)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel(plain(metric))
    ax.set_title(plain(f"Checkpoint curves ({metric})"))
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_frontier(frontier: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Error of each top-m pool set vs budget in samples (the law's unit; log-x); the best set at each budget is starred."""
    rows = sorted(frontier, key=lambda r: float(r["budget"]))
    budgets = np.array([float(r["budget"]) for r in rows])
    n_sets = max(len(r["errors"]) for r in rows)
    E = np.full((len(rows), n_sets), np.nan)
    for i, r in enumerate(rows):
        E[i, : len(r["errors"])] = [float(e) for e in r["errors"]]
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    for m in range(n_sets):
        ax.plot(budgets, E[:, m], marker="o", ms=4, label=f"top-{m + 1}")
    best_k = [len(r["best"]) if r.get("best") else int(np.nanargmin(E[i])) + 1 for i, r in enumerate(rows)]
    best_e = [E[i, k - 1] for i, k in enumerate(best_k)]
    ax.plot(budgets, best_e, color="black", linestyle=":", linewidth=1)
    ax.scatter(budgets, best_e, marker="*", s=160, color="black", zorder=5, label="best set")
    for b, e, k in zip(budgets, best_e, best_k):
        ax.annotate(f"top-{k}", (b, e), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=7)
    _log_x(ax, budgets, tokens=True)
    ax.set_xlabel("budget (samples of the domain: documents, or tokens_per_sample)")
    ax.set_ylabel("predicted error")
    ax.margins(y=0.12)
    ax.set_title("Quality-pool frontier")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def predictions_disagree(by: Mapping[str, tuple[float, float | None]]) -> bool:
    """True when two predictions differ by more than their combined 1σ (or at all, without stds)."""
    items = list(by.values())
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (a, sa), (b, sb) = items[i], items[j]
            sigma = math.hypot(sa or 0.0, sb or 0.0)
            if abs(a - b) > (sigma if sigma > 0 else 1e-12):
                return True
    return False


def plot_prediction_agreement(by: Mapping[str, tuple[float, float | None]], path: str | Path, *,
                              disagree: bool | None = None, metric: str = "", compared: set[str] | None = None) -> Path:
    """Each predictor's value for the plan with ±1σ bars; the title flags disagreement.

    Rows named in ``compared`` (all, when None) are the like-for-like ones the verdict is about; any other row (a
    value at another token budget) is drawn hollow and grey."""
    compared = set(by) if compared is None else set(compared)
    if disagree is None:
        disagree = predictions_disagree({k: v for k, v in by.items() if k in compared})
    names = list(by)
    fig = _figure(7.0, 1.2 + 0.6 * len(names))
    ax = fig.add_subplot()
    for k, name in enumerate(names):
        v, s = by[name]
        colour = f"C{k}" if name in compared else "grey"
        ax.errorbar([v], [k], xerr=None if s is None else [s], fmt="o", ms=7, capsize=5, color=colour,
                    mfc=colour if name in compared else "white")
        ax.annotate(f"{v:.4f}" + ("" if s is None else f" ± {s:.4f}"), (v, k), textcoords="offset points",
                    xytext=(0, 9), ha="center", fontsize=8)
    ax.set_yticks(np.arange(len(names)), [plain(n) for n in names])
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlabel(plain(f"predicted {metric}".strip()))
    if len(compared & set(names)) < 2:
        disagree = False
    verdict = "DISAGREE (beyond 1σ)" if disagree else "agree within 1σ"
    if len(compared & set(names)) < 2:
        verdict = "one prediction at this scale, nothing to compare"
    ax.set_title(f"Surrogate vs projector for the plan: {verdict}", color="firebrick" if disagree else "black", fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_agreement_scatter(surrogate: Sequence[float], projector: Sequence[float], actual: Sequence[float] | None,
                           path: str | Path) -> Path:
    """Surrogate vs projector predictions per mixture, coloured by the actual value."""
    s, p = np.asarray(surrogate, dtype=float), np.asarray(projector, dtype=float)
    rho = spearman(s, p)
    fig = _figure(5.2, 4.4)
    ax = fig.add_subplot()
    if actual is not None:
        sc = ax.scatter(s, p, c=np.asarray(actual, dtype=float), cmap="viridis_r", s=22)
        fig.colorbar(sc, ax=ax).set_label("actual (lower is better)")
    else:
        ax.scatter(s, p, s=22)
    lo, hi = float(np.nanmin(np.concatenate([s, p]))), float(np.nanmax(np.concatenate([s, p])))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("surrogate prediction")
    ax.set_ylabel("projector prediction")
    ax.set_title(f"Surrogate vs projector, Spearman ρ = {fmt_rho(rho)}")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_verification(body: Mapping, path: str | Path) -> Path:
    """Each arm's measured target (mean over paired seeds, seed values as dots) beside the plan's prediction."""
    results = list(body["results"])
    ci = {c["against"]: c for c in body["comparisons"]}
    plan_mean = results[0]["mean"]
    fig = _figure(6.2, 1.8 + 0.55 * len(results))
    ax = fig.add_subplot()
    for k, r in enumerate(results):
        c = ci.get(r["name"])
        colour = "C0" if k == 0 else ("C2" if c and c["plan_better"] else "C3" if c and c["plan_worse"] else "C7")
        if c is not None and c.get("ci95") is not None:  # the paired 95% interval of (plan - arm), drawn around the arm
            # as where the plan may sit (none with one seed)
            lo, hi = c["ci95"]
            ax.plot([r["mean"] + lo, r["mean"] + hi], [k, k], color=colour, linewidth=6, alpha=0.25, solid_capstyle="butt")
        ax.scatter(r["values"], [k] * len(r["values"]), s=14, color=colour, alpha=0.7)
        ax.scatter([r["mean"]], [k], s=60, marker="D", color=colour)
        verdict = "" if c is None else (" the plan's runs" if c.get("same_as_plan") else " one seed" if c.get("ci95") is None else
                                        " plan better" if c["plan_better"] else " plan worse" if c["plan_worse"] else " within noise")
        ax.annotate(f"{r['mean']:.4f}{verdict}", (r["mean"], k), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    pred = body.get("predicted") or {}
    if pred.get("value") is not None and not across_scales(body):  # a prediction for another scale is not drawn beside these
        ax.axvline(pred["value"], color="C0", linestyle="--", linewidth=1, label=plain(f"plan predicted ({pred.get('scale', 'proxy')} scale)"))
        if pred.get("std"):
            ax.axvspan(pred["value"] - 2 * pred["std"], pred["value"] + 2 * pred["std"], color="C0", alpha=0.08)
    ax.axvline(plan_mean, color="C0", linewidth=1, alpha=0.5)
    ax.set_yticks(np.arange(len(results)), [plain(r["name"]) for r in results])
    ax.set_ylim(-0.7, len(results) - 0.3)
    sc = body["scale"]
    ax.set_xlabel(f"{plain(body['target'])} at {fmt.tokens(sc['model_params'])} params, {fmt.tokens(sc['tokens'])} tokens (lower is better)")
    ax.set_title(f"Verification: {len(body['seeds'])} paired seeds; bands: plan's 95% interval relative to each arm", fontsize=9)
    if pred.get("value") is not None:  # below the axes: "best" placement ignores the arms' value labels and covered them
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
