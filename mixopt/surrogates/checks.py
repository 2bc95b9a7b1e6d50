"""What `fit` tells people about its model, one line each: seed noise against the mixture signal, the level backtest,
scales that cannot separate size from tokens, and targets far past the runs.

Used by `mixopt fit`, the demo and the report; the numbers come from the fitted model's meta
(:func:`mixopt.pipeline.fit`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .shift import significant_miss


def scale_text(scales) -> str:
    """``(model_params, tokens)`` pairs for people; None as ``?``."""
    g = lambda v: "?" if v is None else f"{v:.3g}"  # noqa: E731
    return ", ".join(f"{g(n)} params x {g(d)} tokens" for n, d in scales) or "unknown size"


#: Signal/noise above this says the "seed repeats" are copies: real seeds gave 10-30 on every store measured here
#: (RESULTS.md "Seed noise against the mixture signal"); a rounded copy of RegMix's runs gave 16,350.
SUSPECT_SNR = 1000.0


#: Scales whose log size and log tokens lie on one line (both varying) leave the size and token effects apart unmeasured.
TOGETHER_TOLERANCE = 1e-3


def together_note(scales: list[tuple[float, float]]) -> str:
    """A fit warning when the runs' model sizes and token budgets grow together (both vary, and in log-log the scales
    lie on one line): the model cannot tell a size effect from a token effect, so predictions at another tokens per
    parameter than the runs' are extrapolations in a direction no run measured. "" otherwise."""
    pts = np.log10(np.array([[n, d] for n, d in scales], dtype=float))
    if len(pts) < 2 or np.ptp(pts[:, 0]) == 0 or np.ptp(pts[:, 1]) == 0:
        return ""
    sv = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
    if sv[1] > TOGETHER_TOLERANCE * sv[0]:
        return ""
    ratios = sorted({d / n for n, d in scales})
    return (f"the {len(scales)} scales grow model size and tokens together ({scale_text(scales[:3])}"
            f"{', ...' if len(scales) > 3 else ''}): the model cannot tell a size effect from a token effect, so a "
            f"prediction at another tokens per parameter (the runs: {ratios[0]:.3g}-{ratios[-1]:.3g}) extrapolates in a "
            "direction no run measured. Train one size at a second token budget (e.g. a `sizes:` entry that repeats a "
            "width with other tokens) before trusting those")


def extrapolation_note(scales, model_params: float, tokens: float) -> str | None:
    """One line when a scale-aware model trained at ``scales`` ((model_params, tokens) pairs) is asked for a scale over
    10x past its largest (or under its smallest) model size or token budget: the prediction rests on the fitted trend
    alone there, and mixtures' differences shrink toward the prior's. None within that."""
    scales = np.array(scales, dtype=float)
    if not len(scales):
        return None
    out = []
    for value, col, what in ((model_params, 0, "parameters"), (tokens, 1, "tokens")):
        lo, hi = scales[:, col].min(), scales[:, col].max()
        if value > 10 * hi:
            out.append(f"{value:.3g} {what}, {math.log10(value / hi):.1f} decades past the largest run's {hi:.3g}")
        elif value < lo / 10:
            out.append(f"{value:.3g} {what}, {math.log10(lo / value):.1f} decades below the smallest run's {lo:.3g}")
    if not out:
        return None
    return (f"the prediction is at {' and '.join(out)}: it rests on the fitted trend alone there, and the mixtures' "
            "differences shrink toward the model's prior (a tie there is not evidence). Verify at a size nearer the "
            "runs, or sweep a larger proxy")


def noise_line(noise: dict[str, Any]) -> str:
    """One line for people: seed noise against the mixture signal."""
    if noise.get("seed_sd") is None and (pending := noise.get("repeats_pending")):  # fit: an interrupted sweep
        return (f"seed noise: not measured yet: the sweep's config asks for seed repeats (sampler.noise_seeds: "
                f"{pending['noise_seeds']}), but {pending['missing']} of its {pending['planned']} planned runs are not "
                "trained yet (an interrupted sweep?). Resume it (rerun the same `mixopt sweep` command), then fit again. "
                "Differences between single runs may be seed noise.")
    if noise.get("seed_sd") is None and (seeds := noise.get("seeds_without_anchors")):  # fit: nothing to repeat
        return (f"seed noise: not measured: the sweep's config sets sampler.noise_seeds: {seeds} but names no mixture to "
                "repeat (no baselines, noise_mixtures: 0). Set sampler.noise_mixtures >= 1 (or keep a baseline) and sweep "
                "again: only the repeats train. Differences between single runs may be seed noise.")
    if noise.get("seed_sd") is None:
        return ("seed noise: not measured (no mixture was trained with 2+ seeds; set sampler.noise_seeds >= 2, or import "
                "runs of one mixture with several seeds). "
                "Differences between single runs may be seed noise.")
    verdict = ("the repeats agree far too well for seeds: copies of one run (the same file imported twice with rounded "
               "metrics?), which make the noise band too narrow; import each run once" if noise["snr"] > SUSPECT_SNR else
               "the mixture signal clearly exceeds seed noise" if noise["snr"] >= 3 else
               "the mixture signal is comparable to seed noise: rankings of close mixtures are unreliable" if noise["snr"] >= 1 else
               "seed noise exceeds the mixture signal: use a larger proxy, more tokens or more seeds")
    return (f"seed noise: sd {noise['seed_sd']:.4f} ({noise['dof']} dof from {noise['repeated']} repeated mixture(s)); "
            f"mixture signal sd {noise['signal_sd']:.4f} over {noise['mixtures']} mixtures; signal/noise {noise['snr']:.2f}: {verdict}")


def backtest_line(backtest: dict | None) -> str | None:
    """One line for people: the level's extrapolation, backtested (None without a backtest)."""
    if not backtest:
        return None
    b = backtest
    verdict = ("outside the model's band: see the warning" if significant_miss(b) else "within the model's band")
    return (f"level backtest: the largest scale ({scale_text([b['largest_scale']])}) predicted from the smaller ones: "
            f"mean error {b['bias']:+.4f} ({b['bias'] / b['mean_sd']:+.2f} sd), MAE {b['mae']:.4f}, "
            f"{b['within_2sd']:.0%} of {b['n']} rows within ±2σ: {verdict}")


def level_notes(backtest: dict | None, *, widened: bool = False) -> list[str]:
    """A warning when the level, backtested (:func:`~mixopt.surrogates.scale.held_out_level`), missed by more than
    ``SIGNIFICANT_MISS`` of the model's own sds: the miss is systematic, and a plan further out will likely miss the same way, by more
    (on the tiny verify proxies it did: RESULTS.md "Level backtest")."""
    if not significant_miss(backtest):
        return []
    direction = "high" if backtest["bias"] > 0 else "low"
    (n_top, _), (n_below, _) = backtest["largest_scale"], backtest["from_scale"]
    fix = LEVEL_FIX[direction] if n_top == n_below else ("Sweep a proxy size nearer the target, or compare the fit "
                                                          "without --budgets." if direction == "low" else "Sweep a proxy size nearer the target.")
    std = " shift-gp's mean is corrected by this miss and its std widened, both grown with the distance to the target." if widened else ""
    return [f"held back, the largest scale ({scale_text([backtest['largest_scale']])}) was predicted from the smaller ones "
            f"{abs(backtest['bias']):.3f} too {direction} on average ({backtest['n']} rows; the model's sd {backtest['mean_sd']:.3f}): "
            f"the loss curve does not follow the level's power law there, so predictions further out will likely be too "
            f"{direction} as well, by more.{std} {fix}"]


#: What to do when the backtest misses: too low = the fitted budgets sit in the initial transient; too high = the loss
#: still falls faster per doubling at the longest budgets than at the shorter ones.
LEVEL_FIX = {"low": "Put the first checkpoint later, or train longer proxies.",
             "high": "Train longer proxies, or add a checkpoint (e.g. proxy.checkpoints [0.125, 0.25, 0.5, 1.0]) and compare."}


def model_lines(meta: dict) -> list[str]:
    """Every check of a fitted model for people, in order: seed noise, the level backtest, then fit's warnings."""
    lines = [noise_line(meta["noise"])] if meta.get("noise") else []
    if meta.get("reused"):
        lines.append(meta["reused"])
    if line := backtest_line(meta.get("level_backtest")):
        lines.append(line)
    if spread := meta.get("shift_spread"):
        lines.append(f"level shift spread by each domain's weight: x{spread[0]:.2f} to x{spread[1]:.2f} over the swept mixtures "
                     "(a domain a mixture barely trains stalls, so concentrated mixtures move least)")
    return lines + [f"warning: {note}" for note in meta.get("notes") or []]
