"""Does an end phase help, at the same overall share? Trained directly, with paired seeds, under cosine and WSD.

The planner's end-phase search (``planning/phases.py``) judges end phases through a two-phase surrogate fitted on a
few random two-phase sweep runs, and so far it declined every end phase that ``verify_upsampling.py`` trained. This
benchmark asks the question underneath without any model: with a domain's *overall* token share fixed (a cap, as
``propose.max_weights`` imposes), does putting more of its tokens into the last part of training lower its loss?

Arms, each trained at ``--mult`` x the quick cap case's proxy tokens (1 layer, n_embd 64, 8 x 64 x 80 tokens), the
embedded 7-domain corpus, the natural mixture with ``--domain`` at ``--cap`` of the tokens:

* ``flat``: that share throughout (``verify_upsampling.py``'s matched arm);
* ``end q=Q``: share p in the first 1 - F of training and Q in the last F, with (1 - F) p + F Q = cap: the same
  tokens of the domain, moved to the end (Blakeney et al. 2024's domain upsampling). The other domains keep their
  ratios in both phases.

Under ``cosine`` and under ``wsd`` with ``decay_fraction`` = F (the end phase is the decay). Paired seeds: the same
seeds for every arm. Reported: each arm's mean loss on ``val/<domain>`` and over every ``val/*``, and each end arm
minus flat with a paired 95% interval.

    python benchmarks/end_phase_gain.py [--seeds 8] [--mult 4] [--cap 0.2] [--fraction 0.2] [--qs 0.6,1.0]
        [--schedules cosine,wsd] [--domain code] [--pairs N [--pair-mults 1,2,4 --pair-seeds 2]] [--smoke]

``--pairs N`` also trains N *pairs*, the design a planner could sweep: N sampled mixtures (RegMix's Dirichlet draw),
each flat and with one of its three largest domains moved into the last F (``planning.phases.moved_to_end``: 3x its
share there, the overall shares kept), with the same seed, and fits one slope of the own-domain effect (the moved
domain's ``val/`` loss, two-phase minus flat) against the tilt ``F (q_d - r_d)``, shared by the domains, per schedule.

``--pair-mults 1,2,4`` trains the same pairs at several budgets (``--pair-seeds`` seeds each, default 2) and asks whether
the proxies' own budget predicts a larger one: per budget the mean own-domain effect, the slope, the noise of one
seed's effect (robust: 1.4826 MAD of the seed-seed differences / sqrt 2), and against the largest budget the Pearson
and Spearman correlation of the pairs' effects and how often their signs agree (where the largest budget's effect is
beyond 0.02).

The last line reads ``summary: <schedule>_q<Q>_target_diff=.. _lo=.. _hi=.. _mean_diff=.. ... best_target_diff=..
end_phase_helps=K goal_end_phase_helps=N met_end_phase_helps=yes|no some_end_phase_helps=yes|no mode=full|smoke``.
RESULTS.md's claim is that the move helps the capped domain *at every setting* beyond the paired interval, so
``end_phase_helps`` counts the end arms (schedule x Q) whose interval on the target lies below 0, ``goal_`` is the
number of end arms, and ``met_end_phase_helps`` is yes only when every end arm helps; ``some_end_phase_helps`` says
whether at least one does (any arm, not only the one with the best mean).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine_line, print_summary, provenance

from mixopt.config import DataConfig, ProxyConfig
from mixopt.data.domains import load_domain_set
from mixopt.mixtures import Mixture, natural_mixture
from mixopt.planning.phases import moved_to_end
from mixopt.proxy.loop import torch_threads
from mixopt.proxy.train import train_proxy
from mixopt.samplers import sample_dirichlet_mixtures
from mixopt.verify import paired_interval


def with_share(base: dict[str, float], domain: str, share: float) -> dict[str, float]:
    """``base`` with ``domain`` at ``share`` and the other domains scaled to fill the rest, their ratios kept."""
    rest = 1.0 - base[domain]
    return {d: (share if d == domain else w * (1.0 - share) / rest) for d, w in base.items()}


def arms(base: dict[str, float], domain: str, cap: float, fraction: float, qs: list[float]) -> dict[str, list]:
    """Arm name -> phases [(start, Mixture), ...]; every arm spends ``cap`` of its tokens on ``domain``."""
    out = {"flat": [(0.0, Mixture(with_share(base, domain, cap)))]}
    for q in qs:
        p = (cap - fraction * q) / (1.0 - fraction)
        if not 0.0 <= p <= cap <= q <= 1.0:
            raise SystemExit(f"--qs {q}: needs cap <= Q <= 1 and (cap - F Q) / (1 - F) >= 0 (cap {cap}, F {fraction}).")
        out[f"end q={q:g}"] = [(0.0, Mixture(with_share(base, domain, p))),
                               (1.0 - fraction, Mixture(with_share(base, domain, q)))]
    return out


def proxy_cfg(args, width: int, steps: int, schedule: str) -> ProxyConfig:
    return ProxyConfig(n_layer=1, n_embd=width, head_size=width, block_size=width, batch_size=8,
                       tokens=8 * width * steps * args.mult, eval_tokens=1024 if args.smoke else 4096, lr=3e-3,
                       schedule=schedule, decay_fraction=args.fraction, checkpoints=[1.0], device="cpu", dtype="float32")


def pair_design(mixes: list[Mixture], f: float) -> list[tuple[str, float, list]]:
    """Per sampled mixture, (the moved domain: one of its three largest, in turn; the tilt ``F (q_d - r_d)``; the
    moved-to-the-end phases)."""
    out = []
    for i, m in enumerate(mixes):
        order = sorted((d for d, w in m.items() if 0 < w < 1), key=lambda d: (-m[d], d))
        d = order[i % min(3, len(order))]
        phases = moved_to_end(dict(m), d, f)
        out.append((d, f * (phases[1][1].get(d, 0.0) - m[d]), phases))
    return out


def pair_effects(cfg: ProxyConfig, data, mixes: list[Mixture], f: float, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(tilts (n,), own-domain effects moved - flat (n, seeds)), each pair trained flat and moved with the same seed."""
    design = pair_design(mixes, f)
    effects = np.array([[pair_effect(cfg, data, m, d, phases, s) for s in seeds] for m, (d, _, phases) in zip(mixes, design)])
    return np.array([t for _, t, _ in design]), effects.reshape(len(design), len(seeds))


def pair_effect(cfg: ProxyConfig, data, m: Mixture, d: str, phases: list, seed: int) -> float:
    """val/d of the moved run minus the flat run's, both trained with ``seed``."""
    with torch_threads(1):
        flat = train_proxy(cfg, m, data, seed).metrics[f"val/{d}"]
        moved = train_proxy(cfg, phases, data, seed).metrics[f"val/{d}"]
    return moved - flat


def fit_slope(t: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """The slope through the origin of effects ``e`` against tilts ``t``, and its standard error."""
    slope = float(t @ e / (t @ t))
    resid = e - slope * t
    return slope, float(np.sqrt(resid @ resid / max(len(t) - 1, 1) / (t @ t)))


def pair_slope(cfg: ProxyConfig, data, mixes: list[Mixture], f: float) -> tuple[float, float, list]:
    """(slope, its standard error, rows (domain, tilt, effect)) of the pairs' own-domain effect against their tilt;
    pair i trains with seed i."""
    rows = []
    for i, (m, (d, tilt, phases)) in enumerate(zip(mixes, pair_design(mixes, f))):
        rows.append((d, tilt, pair_effect(cfg, data, m, d, phases, i)))
    t, e = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    return (*fit_slope(t, e), rows)


def pairs_across_budgets(args, data, mixes: list[Mixture], width: int, steps: int, sched: str) -> dict:
    """The same pairs at each of ``--pair-mults``: does the smallest budget's effect predict the largest's?"""
    from scipy.stats import spearmanr

    mults = [int(x) for x in (args.pair_mults or "1,2").split(",")]
    seeds = [100 + s for s in range(args.pair_seeds)]
    means, fields = {}, {}
    for mult in mults:
        cfg = proxy_cfg(argparse.Namespace(**{**vars(args), "mult": mult}), width, steps, sched)
        t, e = pair_effects(cfg, data, mixes, args.fraction, seeds)  # (n,), (n, seeds)
        means[mult] = e.mean(1)
        slope, se = fit_slope(t, means[mult])
        diff = e[:, 0] - e[:, -1] if e.shape[1] > 1 else np.zeros(1)
        noise = float(1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2))
        key = f"{sched}_x{mult}"
        fields.update({f"{key}_effect": float(means[mult].mean()), f"{key}_slope": slope, f"{key}_slope_se": se,
                       f"{key}_noise": noise, f"{key}_helps": int((means[mult] < 0).sum())})
        print(f"{sched:8s} {mult}x: {len(t)} pairs, mean own-domain effect {means[mult].mean():+.4f} "
              f"({int((means[mult] < 0).sum())} of {len(t)} below 0), slope {slope:+.3f} ± {se:.3f}, one seed's noise "
              f"{noise:.4f}", flush=True)
    top = mults[-1]
    for mult in mults[:-1]:
        a, b = means[mult], means[top]
        clear = np.abs(b) > 0.02
        agree = float(np.mean(np.sign(a[clear]) == np.sign(b[clear]))) if clear.any() else float("nan")
        pearson, rho = float(np.corrcoef(a, b)[0, 1]), float(spearmanr(a, b)[0])
        fields.update({f"{sched}_x{mult}_vs_x{top}_pearson": pearson, f"{sched}_x{mult}_vs_x{top}_spearman": rho,
                       f"{sched}_x{mult}_vs_x{top}_sign": agree})
        print(f"{sched:8s} {mult}x against {top}x: Pearson {pearson:+.2f}, Spearman {rho:+.2f}, signs agree "
              f"{agree:.0%} of the {int(clear.sum())} pairs with |{top}x effect| > 0.02", flush=True)
    return fields


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=None, help="paired seeds per arm (default 8; smoke 2)")
    ap.add_argument("--mult", type=int, default=4, help="tokens per run: this many times the quick cap case's proxy")
    ap.add_argument("--cap", type=float, default=0.2, help="the domain's overall token share in every arm")
    ap.add_argument("--fraction", type=float, default=0.2, help="F: the end phase's share of training (and WSD's decay)")
    ap.add_argument("--qs", default="0.6,1.0", help="the domain's share in the end phase, comma-separated")
    ap.add_argument("--schedules", default="cosine,wsd", help="comma-separated of cosine, wsd, constant")
    ap.add_argument("--domain", default="code", help="the capped domain (an embedded corpus domain)")
    ap.add_argument("--pairs", type=int, default=0, help="also train this many flat / moved-to-the-end pairs and fit the "
                    "shared own-domain slope per schedule")
    ap.add_argument("--pair-mults", default=None, help="train the pairs at each of these budgets (comma-separated "
                    "multiples, e.g. 1,2,4) and compare their effects with the largest's")
    ap.add_argument("--pair-seeds", type=int, default=2, help="seeds per pair with --pair-mults")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = ap.parse_args(argv)
    start, t0 = provenance(), time.perf_counter()
    seeds = list(range(args.seeds or (2 if args.smoke else 8)))
    data = load_domain_set(DataConfig(corpus="embedded", max_documents=60 if args.smoke else 300))
    if args.domain not in data.names:
        raise SystemExit(f"--domain {args.domain}: not a domain of the embedded corpus ({', '.join(data.names)}).")
    plan = arms(dict(natural_mixture(data.token_counts)), args.domain, args.cap, args.fraction,
                [float(q) for q in args.qs.split(",")])
    width, steps = (32, 8) if args.smoke else (64, 80)
    print(f"{args.domain} at {args.cap:g} of the tokens in every arm; end phase = last {args.fraction:g}; "
          f"{len(seeds)} paired seeds; {8 * width * steps * args.mult:,} tokens per run", flush=True)
    target = f"val/{args.domain}"
    values: dict[tuple[str, str], np.ndarray] = {}
    for sched in args.schedules.split(","):
        cfg = proxy_cfg(args, width, steps, sched)
        for name, phases in plan.items():
            rows = []
            for s in seeds:
                with torch_threads(1):
                    m = train_proxy(cfg, phases, data, s).metrics
                rows.append((m[target], float(np.mean([v for k, v in m.items() if k.startswith("val/")]))))
            values[(sched, name)] = np.array(rows)  # (seeds, 2): the target, the mean over val/*
            tgt, mean = values[(sched, name)].mean(0)
            print(f"  {sched:8s} {name:10s}: {target} {tgt:.4f}, mean val {mean:.4f}", flush=True)
    fields: dict = {}
    best, his = None, []
    for sched in args.schedules.split(","):
        for name in plan:
            if name == "flat":
                continue
            d = values[(sched, name)] - values[(sched, "flat")]  # (seeds, 2)
            lo, hi = paired_interval(d[:, 0])
            mlo, mhi = paired_interval(d[:, 1])
            key = f"{sched}_{name.replace('end ', '').replace('=', '')}"
            fields.update({f"{key}_target_diff": float(d[:, 0].mean()), f"{key}_lo": lo, f"{key}_hi": hi,
                           f"{key}_mean_diff": float(d[:, 1].mean())})
            print(f"{sched:8s} {name} - flat: {target} {d[:, 0].mean():+.4f} [{lo:+.4f}, {hi:+.4f}]; "
                  f"mean val {d[:, 1].mean():+.4f} [{mlo:+.4f}, {mhi:+.4f}]", flush=True)
            his.append(hi)
            if best is None or d[:, 0].mean() < best:
                best = float(d[:, 0].mean())
    n_pairs = 3 if args.smoke else args.pairs  # smoke: exercise the pairs too
    if n_pairs:
        mixes = [m for m in sample_dirichlet_mixtures(data.token_counts, n_pairs, seed=5) if max(m.values()) < 1]
        for sched in args.schedules.split(","):
            if args.pair_mults or args.smoke:  # smoke: exercise both designs
                fields.update(pairs_across_budgets(args, data, mixes, width, steps, sched))
                if args.pair_mults:
                    continue
            cfg = proxy_cfg(args, width, steps, sched)
            slope, se, rows = pair_slope(cfg, data, mixes, args.fraction)
            fields.update({f"{sched}_pair_slope": slope, f"{sched}_pair_se": se, f"{sched}_pairs": len(rows)})
            print(f"{sched:8s} {len(rows)} pairs: own-domain slope {slope:+.3f} ± {se:.3f} per unit of tilt "
                  f"(t = {slope / se if se else float('nan'):+.1f}); tilts {min(r[1] for r in rows):.3f}-"
                  f"{max(r[1] for r in rows):.3f}", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")
    print(machine_line(start, provenance()))
    helps = sum(hi < 0 for hi in his)  # end arms beyond their paired interval on the target (nan counts as not)
    print(f"end arms better than flat on {target} beyond the paired 95% interval: {helps} of {len(his)} "
          f"(the claim: every setting)", flush=True)
    verdict = {"end_phase_helps": helps, "goal_end_phase_helps": len(his),
               "met_end_phase_helps": helps == len(his), "some_end_phase_helps": helps > 0} if his else {}
    return print_summary({**fields, "best_target_diff": best, **verdict, "seeds": len(seeds),
                          "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
