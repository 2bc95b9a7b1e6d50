"""Learning-rate schedules of the proxy trainer, and the decay branches of a WSD run.

Three schedules (``ProxyConfig.schedule``), all after a linear warm-up over
``int(warmup_fraction * steps)`` steps (under WSD, a warm-up that reaches into a
decay, the run's or a decay branch's, is found by ``ProxyConfig.wsd_overlap`` and
refused where a new sweep is planned, ``runs.driver.check_wsd``; a store that
already holds runs trained so resumes with a warning):

- ``constant``: the peak ``lr`` to the end;
- ``cosine``: half a cosine from ``lr`` down to ``min_lr_ratio * lr``;
- ``wsd`` (warmup-stable-decay; Hu et al. 2024, MiniCPM): ``lr`` until the
  last ``round(decay_fraction * steps)`` steps, then linearly down to
  ``min_lr_ratio * lr`` at the last step.

WSD makes one run measure several budgets. Up to the decay, a WSD run to
budget D and a WSD run to a longer budget take the very same steps, so the
loss "trained with WSD straight to D" is obtained by copying the long run at
the step where the two learning-rate curves part (the fork) and training the
copy with D's decay on the same batches: a *decay branch*
(:func:`decay_branches`). The warm-up is the long run's, in steps, so a branch
equals a straight run to D whose warm-up has the same number of steps. A
branch trains on the run's own batches, so with several data phases it sees
the phases where the full run has them (phase starts are fractions of the
full run, not of D).
"""

from __future__ import annotations

import math


def warmup_steps(steps: int, cfg) -> int:
    """Warm-up length, in optimizer steps, of a run of ``steps`` steps."""
    return int(cfg.warmup_fraction * steps)


def decay_steps(steps: int, cfg) -> int:
    """WSD: steps spent decaying at the end of a run (or branch) of ``steps`` steps."""
    return min(steps, round(cfg.decay_fraction * steps))


def lr_at(step: int, steps: int, cfg, *, warmup: int | None = None) -> float:
    """Learning rate of (0-based) ``step`` of a run of ``steps`` steps.

    ``warmup`` overrides the warm-up length (a decay branch keeps its parent
    run's warm-up). See the module docstring for the three shapes.
    """
    warmup = warmup_steps(steps, cfg) if warmup is None else warmup
    if step < warmup:
        return cfg.lr * (step + 1) / (warmup + 1)
    if cfg.schedule == "constant":
        return cfg.lr
    floor = cfg.min_lr_ratio * cfg.lr
    if cfg.schedule == "wsd":
        decay = decay_steps(steps, cfg)
        start = steps - decay
        if step < start:
            return cfg.lr
        return cfg.lr - (cfg.lr - floor) * (step - start + 1) / decay
    progress = (step - warmup) / max(steps - warmup, 1)
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - floor)


def checkpoint_steps(cfg, steps: int) -> list[int]:
    """Steps at which ``cfg.checkpoints`` (fractions of the run) fall, sorted, each at least 1."""
    return sorted({min(steps, max(1, round(f * steps))) for f in cfg.checkpoints})


def decay_branches(cfg, steps: int) -> list[tuple[int, int]]:
    """WSD: ``[(fork_step, budget_step)]``, one decay branch per checkpoint before the end.

    The branch to ``budget_step`` starts from the run's state after
    ``fork_step`` steps: the first step where the learning rate of a WSD run
    straight to ``budget_step`` (same warm-up steps) differs from this run's,
    ``budget - decay_steps(budget)`` (or the run's own decay start, should
    rounding put that earlier).
    Budgets whose fork equals the budget (no decay step) are measured on the
    run itself, as is the last one. Empty unless ``cfg.schedule == "wsd"``.
    """
    if cfg.schedule != "wsd":
        return []
    main_decay_start = steps - decay_steps(steps, cfg)
    out = []
    for budget in checkpoint_steps(cfg, steps)[:-1]:
        fork = min(budget - decay_steps(budget, cfg), main_decay_start)
        if fork < budget:
            out.append((fork, budget))
    return out


def schedule_info(cfg, steps: int) -> dict:
    """The learning-rate schedule of a run, as recorded with its results (JSON-ready)."""
    info = {"name": cfg.schedule, "lr": cfg.lr, "steps": steps, "warmup_steps": warmup_steps(steps, cfg)}
    if cfg.schedule != "constant":
        info["min_lr_ratio"] = cfg.min_lr_ratio
    if cfg.schedule == "wsd":
        info.update(decay_fraction=cfg.decay_fraction, decay="linear",
                    branches=[[fork, budget] for fork, budget in decay_branches(cfg, steps)])
    return info
