"""Train proxies on mixtures and record their validation losses: the trainer's public functions.

``train_proxy(cfg, schedule, data, seed)`` trains one proxy;
``train_proxies_stacked(cfg, schedules, data, seeds)`` trains M proxies of one
shape together (one kernel stream on a GPU; ``choose_stack_size`` says how
many, from a timed probe). Both are the same loop
(``loop.train_runs``) with M = 1 and M > 1: the same batches per (schedule,
seed), the same initial weights per seed, the same learning-rate schedule,
evaluation, divergence checks and result assembly. A diverging run returns
``status="failed"`` with a reason instead of raising.

A schedule is a ``Mixture`` (one phase) or ``Phases`` ``[(0.0, Mixture),
(start, Mixture), ...]`` (``mixopt.mixtures.as_phases``): phase i trains from
optimizer step ``round(start_i * steps)`` on (an end-of-training upsampling
phase, a temperature cooldown). With ``proxy.schedule: wsd`` every checkpoint
before the end is measured by a decay branch (``schedule.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..mixtures import Mixture, Phases, as_phases
from .device import pick_device
from .loop import ProxyResult, torch_threads, train_runs
from .stack_size import choose_stack_size

__all__ = ["ProxyResult", "choose_stack_size", "train_proxy", "train_proxies_stacked"]  # the trainer's public API


def train_proxy(cfg, schedule: Mixture | Phases, data, seed: int, *, progress: Callable[[int, int], None] | None = None,
                threads: int | None = None) -> ProxyResult:
    """Train the proxy described by ``cfg`` (a ``ProxyConfig``) on ``schedule`` over ``data`` (a ``DomainSet``).

    Parameters
    ----------
    schedule : Mixture or Phases
        Token shares per domain (domains of ``data`` it leaves out get weight
        0), or phases ``[(0.0, w0), (s1, w1), ...]`` with strictly increasing
        starts in [0, 1). ``tokens_per_domain`` and ``epochs_per_domain`` count
        the whole run.
    seed : int
        Seeds the initial weights and the batch offsets; equal inputs give
        bit-identical results on CPU (for the same thread count).
    progress : callable(step, steps), optional
        Called after every optimizer step.
    threads : int, optional
        ``torch.set_num_threads`` for the duration of the call (restored after).
    """
    with torch_threads(threads):
        return train_runs(cfg, [as_phases(schedule)], data, [seed], pick_device(cfg), progress)[0]


def train_proxies_stacked(cfg, schedules: Sequence[Mixture | Phases], data, seeds: Sequence[int], *, device=None,
                          progress: Callable[[int, int], None] | None = None,
                          threads: int | None = None) -> list[ProxyResult]:
    """Train one proxy per (schedule, seed) pair together; one ``ProxyResult`` each, in order.

    Run i matches ``train_proxy(cfg, schedules[i], data, seeds[i])``: bit for
    bit when there is one run, to float rounding otherwise (batched matmuls sum
    in another order). A run that diverges stops counting (status "failed",
    its tokens and steps up to the failure) while the others go on.
    ``train_seconds`` / ``eval_seconds`` are the stack's shared wall times, so
    each run's ``tokens_per_second`` is its own tokens over that time; sum
    them for the stack's throughput. ``device`` defaults to ``pick_device(cfg)``.
    """
    if len(schedules) != len(seeds) or not schedules:
        raise ValueError(f"Need one seed per schedule and at least one run; got {len(schedules)} schedules and "
                         f"{len(seeds)} seeds.")
    phases = [as_phases(s, where=f"schedule {i}") for i, s in enumerate(schedules)]
    device = pick_device(cfg) if device is None else torch.device(device)
    with torch_threads(threads):
        return train_runs(cfg, phases, data, list(seeds), device, progress)
