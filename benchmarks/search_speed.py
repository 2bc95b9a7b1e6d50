"""How long RegMix's simulation search takes next to a bare LightGBM predict.

Figures (``python benchmarks/search_speed.py --write-results``; 2-core CPU,
no GPU, shared with other jobs; 2026-11-25):

    RegMix 1M table: 512 runs x 17 domains; LGBMRegressor {'n_estimators': 200, 'learning_rate': 0.05, 'num_leaves': 31, 'min_child_samples': 5, 'random_state': 0, 'verbose': -1}
    simulate_search n=1,000,000: 17.49 s; LGBMRegressor.predict on 1,000,000 rows: 15.76 s; ratio 1.11
    answer: predicted 5.0991 (training best 5.0821); top domain the_pile_pile_cc 0.958
    simulate_search n=1,000,000 with every weight <= 0.15 (projection repair): 14.14 s; ratio 0.90
    candidates: 1e+04=0.219s, 3e+04=0.568s, 1e+05=1.791s, 3e+05=3.817s, 1e+06=17.485s; log-log exponent 0.93
    domains (n=200,000): 4=1.869s, 8=2.406s, 12=1.420s, 17=2.159s; log-log exponent -0.01
    search_seconds=17.485 predict_seconds=15.758 ratio=1.110 exponent_candidates=0.928

The search is ``mixopt.planning.search.simulate_search`` with 1M Dirichlet
candidates over the 17 Pile domains of RegMix's public 1M-parameter training
table (512 runs), scored by an ``LGBMRegressor`` fitted on
``metric/the_pile_pile_cc_val_loss``. The baseline is that regressor's
``predict`` on 1M pre-drawn candidates, in the same process, right after.
The scaling series fits ``log(seconds) = a + e * log(size)``: over the number
of candidates (RegMix model, 1e4..1e6) and over the number of domains
(synthetic quadratic targets, 4..17 domains, 2e5 candidates).

The last line is machine-readable:
``search_seconds=<s> predict_seconds=<s> ratio=<r> exponent_candidates=<e>``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "regmix"
TARGET = "metric/the_pile_pile_cc_val_loss"
LGBM_PARAMS = dict(n_estimators=200, learning_rate=0.05, num_leaves=31, min_child_samples=5, random_state=0, verbose=-1)


def read_table(path: Path) -> tuple[list[str], np.ndarray]:
    """Header names (empty trailing names dropped) and the float rows of a CSV."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header = [h for h in rows[0] if h.strip()]
    body = np.array([[float(x) for x in r[: len(header)]] for r in rows[1:] if r], dtype=float)
    return header, body


def load_regmix() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Domains (17), mixtures X (n, 17) and target y (n,), joined on ``index``."""
    mh, mix = read_table(DATA / "train_mixture_1m.csv")
    lh, loss = read_table(DATA / "train_pile_loss_1m.csv")
    by_index = {int(r[0]): r[lh.index(TARGET)] for r in loss}
    keep = [i for i, r in enumerate(mix) if int(r[0]) in by_index]
    X = mix[keep][:, 1:]
    y = np.array([by_index[int(mix[i, 0])] for i in keep])
    domains = [h.removeprefix("train_") for h in mh[1:]]
    return domains, X / X.sum(axis=1, keepdims=True), y


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def slope(sizes, seconds) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main(argv=None) -> dict:
    import lightgbm as lgb

    from mixopt.mixtures import dirichlet_candidates
    from mixopt.planning.search import simulate_search

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="candidates in the headline comparison")
    ap.add_argument("--write-results", action="store_true", help="also write its section for benchmarks/RESULTS.md to /tmp/RESULTS_search.md")
    args = ap.parse_args(argv)

    domains, X, y = load_regmix()
    model = lgb.LGBMRegressor(**LGBM_PARAMS).fit(X, y)
    prior = X.mean(axis=0)  # RegMix samples around the token prior; the table's mean mixture stands in for it
    lines = [f"RegMix 1M table: {len(y)} runs x {len(domains)} domains; LGBMRegressor {LGBM_PARAMS}"]

    # Headline: search vs plain predict on the same number of candidates, best of 2, interleaved.
    W = dirichlet_candidates(prior, args.n, seed=123)
    search_s, predict_s = [], []
    for _ in range(2):
        s, result = timed(lambda: simulate_search(model, prior, n_candidates=args.n, top_k=100, seed=0))
        search_s.append(s)
        predict_s.append(timed(lambda: model.predict(W))[0])
    search, predict = min(search_s), min(predict_s)
    lines.append(f"simulate_search n={args.n:,}: {search:.2f} s; LGBMRegressor.predict on {args.n:,} rows: {predict:.2f} s; ratio {search / predict:.2f}")
    lines.append(f"  answer: predicted {result.predicted:.4f} (training best {y.min():.4f}); top domain {domains[int(np.argmax(result.weights))]} {result.weights.max():.3f}")

    # With epoch-like caps (every domain <= 0.15): infeasible draws are projected, which costs extra.
    from mixopt.planning.search import Constraints

    caps = Constraints(domains, np.zeros(len(domains)), np.full(len(domains), 0.15))
    capped, rc = timed(lambda: simulate_search(model, prior, constraints=caps, n_candidates=args.n, top_k=100, seed=0))
    lines.append(f"simulate_search n={args.n:,} with every weight <= 0.15 (projection repair): {capped:.2f} s; ratio {capped / predict:.2f}")

    # Scaling over candidates.
    sizes = [s for s in (10_000, 30_000, 100_000, 300_000) if s < args.n] + [args.n]
    secs = [timed(lambda: simulate_search(model, prior, n_candidates=n, top_k=100, seed=0))[0] for n in sizes[:-1]] + [search]
    e_cand = slope(sizes, secs)
    lines.append("candidates: " + ", ".join(f"{n:.0e}={s:.3f}s" for n, s in zip(sizes, secs)) + f"; log-log exponent {e_cand:.2f}")

    # Scaling over domains (synthetic quadratic targets).
    ks, ksecs, n_k = [4, 8, 12, 17], [], 200_000
    rng = np.random.default_rng(0)
    for k in ks:
        Xk = rng.dirichlet(np.ones(k), size=512)
        yk = ((Xk - 1.0 / k) ** 2).sum(axis=1) + rng.normal(0, 1e-3, size=512)
        mk = lgb.LGBMRegressor(**LGBM_PARAMS).fit(Xk, yk)
        ksecs.append(timed(lambda: simulate_search(mk, np.full(k, 1.0 / k), n_candidates=n_k, top_k=100, seed=0))[0])
    e_dom = slope(ks, ksecs)
    lines.append(f"domains (n={n_k:,}): " + ", ".join(f"{k}={s:.3f}s" for k, s in zip(ks, ksecs)) + f"; log-log exponent {e_dom:.2f}")

    for line in lines:
        print(line)
    last = f"search_seconds={search:.3f} predict_seconds={predict:.3f} ratio={search / predict:.3f} exponent_candidates={e_cand:.3f}"
    if args.write_results:
        write_results(lines, last)
    print(last)
    return {"search": search, "predict": predict, "capped": capped, "e_cand": e_cand, "e_dom": e_dom}


NOTES = (
    "Notes: the machine was shared with other jobs (load average 4-6 on 2 cores), so single timings move by tens of\n"
    "percent between runs; e.g. the capped search timed faster than the uncapped one although it does strictly more\n"
    "work. The search costs about one LightGBM predict over the same candidates: drawing Dirichlet candidates,\n"
    "projection repair and the top-k merge are small next to tree traversal. The domain exponent is about 0 because\n"
    "LightGBM's predict cost follows the number and depth of trees, not the number of features.\n"
)


def write_results(lines: list[str], last: str) -> Path:
    out = Path("/tmp/RESULTS_search.md")  # a section to paste into benchmarks/RESULTS.md
    body = "\n".join(f"- {line.strip()}" for line in lines)
    out.write_text(
        "# Mixture search speed\n\n"
        "Command: `python benchmarks/search_speed.py --write-results`\n"
        "Machine: 2-core CPU, no GPU (shared with other jobs, so absolute seconds are noisy; the ratio is measured in one process).\n"
        "Date: 2026-11-25\n\n"
        f"{body}\n\n`{last}`\n\n{NOTES}"
    )
    return out


if __name__ == "__main__":
    main()
