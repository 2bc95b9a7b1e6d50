"""How long `mixopt propose`'s mixture search takes, timed with propose's own defaults.

    python benchmarks/search_speed.py                  # 1M candidates, as `mixopt propose` (a few minutes)
    python benchmarks/search_speed.py --smoke          # 20k candidates, 128 training runs (seconds; CI)
    python benchmarks/search_speed.py --write-results  # also writes its RESULTS.md section to /tmp/RESULTS_search.md

Setup: RegMix's public 1M-parameter training table (512 runs x 17 Pile domains,
target ``metric/the_pile_pile_cc_val_loss``). The surrogate is what ``mixopt fit``
fits for a plain metric target: ``get_estimator(ProposeConfig().model)`` (the
``default`` GP). The prior is propose's own (``search_prior``: the mean training
mixture when token counts are unknown). The headline times
``simulate_search`` with ``ProposeConfig()``'s settings: ``n_candidates``
(1,000,000), ``top_k``, ``kl_weight`` and ``uncertainty_weight`` (0.5, so the
predictive std is computed for every candidate). The time includes drawing the
candidates. Side by side, in the same process: the same search scoring the mean
only (``uncertainty_weight=0``), the surrogate's plain ``predict`` on pre-drawn
candidates (what an earlier version of this benchmark quoted), propose's whole
search (``search_mixture``: this simulation plus the constrained refinement
``optimize_mixture``, timed from the simulation's answer), and
RegMix's own search (LightGBM with RegMix's parameters, mean only). The scaling
series fits ``log(seconds) = a + e * log(candidates)``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance, summary_line  # noqa: E402
from _regmix_data import TARGET, data_dir, load_regmix  # noqa: E402

from mixopt.config import ProposeConfig  # noqa: E402
from mixopt.samplers import dirichlet_candidates  # noqa: E402
from mixopt.planning.propose import ProposeContext, search_prior  # noqa: E402
from mixopt.planning.search import Constraints, optimize_mixture, simulate_search  # noqa: E402
from mixopt.surrogates import get_estimator  # noqa: E402

GOAL_SECONDS = 60.0  # propose's 1M-candidate search should take under a minute on 2 cores


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def slope(sizes, seconds) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None, help="candidates (default ProposeConfig().n_candidates; smoke 20,000)")
    ap.add_argument("--runs", type=int, default=None, help="training runs the surrogate is fitted on (default 512; smoke 128)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    ap.add_argument("--data", default=None, help="RegMix data dir")
    ap.add_argument("--write-results", action="store_true", help="also write its RESULTS.md section to /tmp/RESULTS_search.md")
    args = ap.parse_args(argv)
    start = provenance()
    cfg = ProposeConfig()
    n = args.n or (20_000 if args.smoke else cfg.n_candidates)
    n_runs = args.runs or (128 if args.smoke else 512)

    d = load_regmix(data_dir(args.data))
    W, y = d.W_train[:n_runs], d.y_train[:n_runs]
    t_fit, est = timed(lambda: get_estimator(cfg.model, random_state=0).fit(W, y))
    domains = [f"d{i}" for i in range(W.shape[1])]
    ctx = ProposeContext(domains=domains, target=TARGET, train_mixtures=W)
    prior = search_prior(ctx)
    kw = dict(n_candidates=n, top_k=cfg.top_k, seed=0, kl_weight=cfg.kl_weight, domains=domains)
    lines = [f"RegMix 1M table: {n_runs} runs x {W.shape[1]} domains; surrogate '{cfg.model}' fitted in {t_fit:.1f} s; "
             f"ProposeConfig defaults: n_candidates={cfg.n_candidates:,}, top_k={cfg.top_k}, "
             f"uncertainty_weight={cfg.uncertainty_weight}, kl_weight={cfg.kl_weight}"]

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    say(lines.pop())
    # Headline, interleaved with the mean-only search and a plain predict so load drift hits all alike.
    C = dirichlet_candidates(prior, n, seed=123)
    repeats = 1 if n >= 500_000 else 2
    t_std, t_mean, t_pred = [], [], []
    for _ in range(repeats):
        s, result = timed(lambda: simulate_search(est, prior, uncertainty_weight=cfg.uncertainty_weight, **kw))
        t_std.append(s)
        t_mean.append(timed(lambda: simulate_search(est, prior, uncertainty_weight=0.0, **kw))[0])
        t_pred.append(timed(lambda: est.predict(C))[0])
    search, mean_only, predict = min(t_std), min(t_mean), min(t_pred)
    say(f"simulate_search, propose's defaults (std for every candidate, drawing included), n={n:,}: {search:.2f} s")
    say(f"  same search scoring the mean only: {mean_only:.2f} s (the std costs {search / mean_only:.2f}x); "
        f"plain predict (mean) on {n:,} pre-drawn candidates: {predict:.2f} s")
    say(f"  answer: predicted {result.predicted:.4f} ± {result.std:.4f} (training best {y.min():.4f}); "
        f"largest weight {result.weights.max():.3f}")

    # propose's whole search (search_mixture) = this simulation + optimize_mixture from its answer: time the second part.
    t_refine, fine = timed(lambda: optimize_mixture(est, result.weights, constraints=Constraints.unbounded(domains), prior=prior,
                                                    kl_weight=cfg.kl_weight, uncertainty_weight=cfg.uncertainty_weight, seed=0))
    t_whole = search + t_refine
    say(f"propose's whole search (search_mixture = the simulation above + constrained refinement {t_refine:.2f} s): "
        f"{t_whole:.2f} s; refined score {min(fine.score, result.score):.4f} (simulation {result.score:.4f})")

    lgbm = get_estimator("regmix-lightgbm", n_bootstrap=0).fit(W, y)
    t_lgbm, _ = timed(lambda: simulate_search(lgbm, prior, uncertainty_weight=0.0, **kw))
    say(f"RegMix's search (LightGBM, RegMix's parameters, mean only), n={n:,}: {t_lgbm:.2f} s")

    sizes = sorted({s for s in (n // 100, n // 30, n // 10) if s >= 1000} | {n})
    secs = [timed(lambda: simulate_search(est, prior, uncertainty_weight=cfg.uncertainty_weight,
                                          **{**kw, "n_candidates": m}))[0] for m in sizes[:-1]] + [search]
    e_cand = slope(sizes, secs)
    say("propose-default search time vs candidates: " + ", ".join(f"{m:.0e}={s:.2f}s" for m, s in zip(sizes, secs))
        + f"; log-log exponent {e_cand:.2f}")

    end = provenance()
    machine = machine_line(start, end)
    print(machine)
    fields = {**goal("search_seconds", search, GOAL_SECONDS if n >= cfg.n_candidates else GOAL_SECONDS * n / cfg.n_candidates,
                     higher_is_better=False),
              "mean_only_seconds": mean_only, "std_cost_ratio": search / mean_only, "predict_seconds": predict,
              "whole_search_seconds": t_whole, "lgbm_search_seconds": t_lgbm, "exponent_candidates": e_cand,
              "n_candidates": n, "train_runs": n_runs, "mode": "smoke" if args.smoke else "full"}
    if args.write_results:
        write_results(lines, summary_line(fields), machine, argv)
    return print_summary(fields)


def write_results(lines: list[str], last: str, machine: str, argv) -> Path:
    out = Path("/tmp/RESULTS_search.md")  # a section to paste into benchmarks/RESULTS.md
    body = "\n".join(f"- {line.strip()}" for line in lines)
    cmd = " ".join(["python benchmarks/search_speed.py", *(argv if argv is not None else sys.argv[1:])])
    out.write_text(f"## Mixture search speed\n\nCommand: `{cmd}`\n\n{machine.replace('machine: ', 'Machine: ')}\n\n"
                   f"{body}\n\n`{last}`\n")
    return out


if __name__ == "__main__":
    main()
