"""Diagnostic plots for surrogates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


def plot_pred_vs_actual(y_true, y_pred, path, title: str = "Predicted vs actual", y_std=None) -> Path:
    """Write a PNG scatter of predictions (n,) against truths (n,), annotated with Spearman ρ.

    ``y_std`` (n,), if given, draws ±1σ error bars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    rho = spearmanr(y_true, y_pred)[0]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if y_std is not None:
        ax.errorbar(y_true, y_pred, yerr=np.asarray(y_std, float), fmt="none", ecolor="0.75", lw=0.6, zorder=1)
    ax.scatter(y_true, y_pred, s=10, alpha=0.7, zorder=2)
    lo, hi = min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(title, fontsize="medium" if len(title) > 44 else None)  # long titles (a scale-aware CV) fit the figure
    ax.text(0.04, 0.95, f"Spearman ρ = {rho:.4f}\nn = {len(y_true)}", transform=ax.transAxes, va="top")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
