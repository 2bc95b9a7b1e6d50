"""Quality-pool frontier from real proxy runs on the embedded corpus, unique data deliberately limited.

Setup (the numbers in ``benchmarks/RESULTS.md`` come from this script):

* **Pools.** The training documents of ``prose`` and ``code`` are scored by how
  close they are to the target: the cosine similarity of each document's
  ``HashingFeaturizer(dim=128)`` features to the mean feature of the target's
  (``docs``, Python documentation) *training* documents. Documents are ranked
  by score and cut into P pools of equal token count (P=4, P=3 with
  ``--quick``); pool 0 is the closest to the target. This is the kind of score a
  filter would use ("looks like what we want to be good at"), and it is
  computed without the target's validation split.
* **Limited unique data.** Each pool is cut to U tokens (documents in a seeded
  random order). A proxy (2 layers, C=64, T=128, B=8, cosine LR) is trained on
  one pool for D = k*U tokens, k in {1, 2, 4, 8}; its error is the loss on the
  target's validation split (nats/byte). These are the library's pool-value runs
  (`mixopt.planning.pool_value.measure_pool_values`, the path of
  `mixopt plan-pools --measure` and `propose --measure-pools`): the pools are
  written as JSONL files and the runs go into a run store under ``--out``, so a
  rerun with the same ``--out`` trains nothing.
* **Fit.** A sample is one training sequence (128 tokens). ``a`` and ``d`` of the
  Goyal et al. (2024) law are shared by the pools, so they are chosen on a grid
  (d as a fraction of the lowest loss, a so that ``n = a*S/1e5`` at the smallest
  run spans 1.2..1e4; the fine grid, coarse with ``--quick``/``--smoke``); for
  each grid point every pool's ``(b, tau)`` is fitted with ``fit_pool_decay`` and
  the grid point with the lowest total squared log error wins. A pool whose fit
  is unusable (``b`` at its bound) falls back to the T-MARS prior of its rank;
  the script prints which.
* **Frontier.** ``choose_pools`` over budgets U/2 .. 64*P*U tokens gives the
  predicted error of the top-1..top-P sets and the chosen set per budget
  (``report.plots.plot_frontier``). Without ``--no-check`` it then trains every top-j
  union at a few budgets and reports the measured best set next to the chosen one.

    python benchmarks/pools_frontier.py            # ~7 min on a shared 2-core CPU
    python benchmarks/pools_frontier.py --quick    # < 2 min
    python benchmarks/pools_frontier.py --smoke    # 2 pools, U=4k tokens, a 1-layer C=32 proxy: seconds (CI)

The last line is the ``summary:`` line (goal: the frontier keeps more pools as
the budget grows).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402

from mixopt.config import DomainSpec, ProxyConfig  # noqa: E402
from mixopt.data.domains import split_documents  # noqa: E402
from mixopt.data.embedded import embedded_path  # noqa: E402
from mixopt.data.sources import load_documents  # noqa: E402
from mixopt.data.tokenize import Tokenizer  # noqa: E402
from mixopt.data.types import DomainSet, TokenizedDomain  # noqa: E402
from mixopt.mixtures import Mixture  # noqa: E402
from mixopt.report.plots import plot_frontier  # noqa: E402
from mixopt.planning.pool_value import D_FRACTIONS_FINE, N0_FINE, fit_shared_law, measure_pool_values  # noqa: E402
from mixopt.planning.pool_choice import choose_pools  # noqa: E402
from mixopt.planning.quality import prior_params, resolve_pools  # noqa: E402
from mixopt.projector.features import HashingFeaturizer  # noqa: E402
from mixopt.proxy.train import train_proxy  # noqa: E402
from mixopt.repetition import pool_error  # noqa: E402
from mixopt.runs.pool_runs import PoolTarget, pool_domain  # noqa: E402
from mixopt.runs.store import RunStore  # noqa: E402

TARGET, SOURCES = "docs", ("code", "prose")
KS = (1, 2, 4, 8)


def _split_docs(name: str) -> tuple[list[str], list[str]]:
    docs = load_documents(DomainSpec(name=name, path=str(embedded_path(name)), format="jsonl"))
    return split_documents(docs, 0.05, name)


def make_pools(n_pools: int) -> tuple[list[list[str]], list[list[float]], list[list[str]], list[str]]:
    """Documents, scores and source domains of each pool (closest to the target first); the target's validation docs."""
    target_train, target_val = _split_docs(TARGET)
    split = {name: _split_docs(name)[0] for name in SOURCES}
    docs = [d for name in SOURCES for d in split[name]]
    source = [name for name in SOURCES for _ in split[name]]
    feat = HashingFeaturizer(dim=128)
    centre = feat.transform(target_train).mean(axis=0)
    scores = feat.transform(docs) @ (centre / np.linalg.norm(centre))
    order = np.argsort(-scores, kind="stable")
    sizes = np.array([len(docs[i].encode()) + 1 for i in order], dtype=float)
    cut = np.minimum((np.cumsum(sizes) - sizes / 2) * n_pools // sizes.sum(), n_pools - 1).astype(int)
    pools = [[docs[i] for i, c in zip(order, cut) if c == j] for j in range(n_pools)]
    pscores = [[float(scores[i]) for i, c in zip(order, cut) if c == j] for j in range(n_pools)]
    psource = [[source[i] for i, c in zip(order, cut) if c == j] for j in range(n_pools)]
    return pools, pscores, psource, target_val


def tokenized(pools: list[list[str]], target_val: list[str], unique: int, seed: int):
    """One ``TokenizedDomain`` per pool (train = the same U tokens the pool-value runs train on) and the target."""
    tok = Tokenizer("bytes")
    out = {}
    for j, docs in enumerate(pools):
        out[f"pool{j}"] = pool_domain(f"pool{j}", docs, tok, unique, seed, f"pool {j} (lower --unique)")
    val = tok.encode_documents(target_val)
    target = TokenizedDomain(TARGET, np.zeros(0, dtype=val.dtype), val, 0, len(target_val), TARGET)
    return out, target, tok


def proxy_config(args, tokens: int) -> ProxyConfig:
    size = (dict(n_layer=1, n_embd=32, head_size=32, block_size=32, eval_tokens=2048) if args.smoke
            else dict(n_layer=2, n_embd=64, head_size=64, block_size=128, eval_tokens=16_384))
    return ProxyConfig(**size, batch_size=8, tokens=tokens, checkpoints=[1.0], device="cpu", dtype="float32")


def train(domains: dict, names: list[str], target, tokens: int, args) -> float:
    """Target validation loss of a proxy trained on the union of ``names`` (equal token shares)."""
    data = DomainSet({n: domains[n] for n in names}, vocab_size=257, eos_id=256, tokenizer="bytes-v1",
                     targets={TARGET: target})
    res = train_proxy(proxy_config(args, tokens), Mixture({n: 1 / len(names) for n in names}), data, args.seed, threads=args.threads)
    if res.status != "ok":
        raise SystemExit(f"proxy on {names} failed: {res.reason}")
    return res.metrics[f"target/{TARGET}"]


def fit_laws(obs: dict[str, tuple[np.ndarray, np.ndarray]], pool_samples: float, quick: bool):
    """``(a, d, rmse, {pool: (b, tau, source, rmse_log)})`` from ``obs[pool] = (samples, errors)`` with the library's
    fit: shared (a, d) on the grid (`fit_shared_law`; the coarse one when ``quick``), per-pool (b, tau) by
    `resolve_pools`, the T-MARS prior of its rank where a fit is unusable. (Also used by pools_schedule.py.)"""
    names = list(obs)
    grid = {} if quick else dict(d_fractions=D_FRACTIONS_FINE, n0=N0_FINE)
    with_size = {p: (s, y, pool_samples) for p, (s, y) in obs.items()}
    a, d, fits = fit_shared_law(with_size, {p: prior_params(j) for j, p in enumerate(names)}, **grid)
    cfg = {"a": a, "d": d, "tokens_per_sample": 1.0, "pools": [{"name": p, "share": 1 / len(names)} for p in names]}
    resolved = resolve_pools("pooled", cfg, unique_tokens=int(round(len(names) * pool_samples)), mean_tokens_per_doc=None,
                             spec=None, observations=with_size)
    laws = {r.name: (r.b, r.tau, r.law_source, fits[r.name].rmse_log) for r in resolved}
    cost = sum(f.n_points * f.rmse_log ** 2 for f in fits.values())
    return a, float(d), float(np.sqrt(cost / sum(len(s) for s, _ in obs.values()))), laws


def measure(pools: list[list[str]], target_val: list[str], U: int, ks, tps: float, args):
    """The library's pool-value runs and fit: (observations in samples, resolved pools with their laws, a, d, rmse)."""
    out = Path(args.out)
    (out / "pools").mkdir(parents=True, exist_ok=True)
    entries = []
    for j, docs in enumerate(pools):
        path = out / "pools" / f"pool{j}.jsonl"
        path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
        entries.append({"name": f"pool{j}", "path": str(path)})
    m = measure_pool_values("pooled", {"tokens_per_sample": tps, "pools": entries}, target=PoolTarget(TARGET, target_val),
                            proxy=proxy_config(args, U), store=RunStore(out / "store"), repetitions=ks, unique_tokens=U,
                            seed=args.seed, threads=args.threads, fine_grid=not (args.quick or args.smoke))
    if m.runs.failed:
        raise SystemExit(f"pool runs failed: {m.runs.failed}")
    obs = {p: (t / tps, y) for p, (t, y, _) in m.runs.observations.items()}
    a, d = m.pools.a, m.pools.d
    res = [np.log(pool_error([(r.b, r.tau)], s, a=a, d=d, pool_size=U / tps)) - np.log(y)
           for r in m.resolved for s, y in zip(*obs[r.name])]
    print(f"pool runs: {m.runs.trained} trained, {m.runs.skipped} already in {out / 'store'}")
    return obs, m.resolved, a, d, float(np.sqrt(np.mean(np.square(res))))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="3 pools, U=16k tokens, smaller grid (< 2 min)")
    mode.add_argument("--smoke", action="store_true", help="2 pools, U=4k tokens, k in 1,2,4, tiny proxy (CI)")
    ap.add_argument("--unique", type=int, default=None, help="unique tokens per pool U (default 65536, quick 16384)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per proxy run")
    ap.add_argument("--no-check", action="store_true", help="skip training the top-j unions at a few budgets")
    ap.add_argument("--out", default=None, help="folder for frontier.png and results.json "
                    "(default /tmp/mixopt_pools_frontier; smoke: a temp dir, removed)")
    args = ap.parse_args(argv)
    if args.out is None and args.smoke:
        with tempfile.TemporaryDirectory(prefix="mixopt-pools-") as tmp:
            args.out = tmp
            return run(args)
    args.out = args.out or "/tmp/mixopt_pools_frontier"
    return run(args)


def run(args) -> dict:
    start = provenance()
    t0 = time.perf_counter()
    n_pools = 2 if args.smoke else 3 if args.quick else 4
    U = args.unique or (4096 if args.smoke else 16_384 if args.quick else 65_536)
    ks = KS[:3] if args.smoke else KS
    pools, scores, sources, target_val = make_pools(n_pools)
    domains, target, _ = tokenized(pools, target_val, U, args.seed)
    names = list(domains)
    for j, (docs, sc, src) in enumerate(zip(pools, scores, sources)):
        mix = ", ".join(f"{src.count(n)} {n}" for n in SOURCES)
        print(f"pool{j}: {len(docs)} docs ({mix}), score {min(sc):.3f}..{max(sc):.3f}")

    tps = 32.0 if args.smoke else 128.0  # one training sequence (block_size tokens) per sample
    t_runs = time.perf_counter()
    obs, resolved, a, d, rmse = measure(pools, target_val, U, ks, tps, args)
    table = [(p, obs[p][1].tolist()) for p in names]
    for p, losses in table:
        print(f"{p}: target loss at k=" + ", ".join(f"{k}: {v:.4f}" for k, v in zip(ks, losses)), flush=True)
    print(f"shared law: a={a:.4g}, d={d:.4f} (rmse of log error {rmse:.4f}); runs and fit took {time.perf_counter() - t_runs:.1f}s")
    laws = {r.name: (r.b, r.tau, r.law_source, r.law_reason) for r in resolved}
    for p, (b, tau, src, why) in laws.items():
        print(f"{p}: b={b:.4f} tau={tau:.3g} ({src}: {why})")

    cfg = {"a": a, "d": d, "tokens_per_sample": tps,
           "pools": [{"name": p, "share": 1 / n_pools, "b": laws[p][0], "tau": laws[p][1]} for p in names]}
    resolved = resolve_pools("pooled", cfg, unique_tokens=n_pools * U, mean_tokens_per_doc=None, spec=None)
    budgets = [U * 2.0**k for k in range(0, 7 + int(np.log2(n_pools)) + 1)]  # from the smallest run on
    rows = []
    for B in budgets:
        c = choose_pools("pooled", resolved, cfg, B)
        rows.append({"budget": c.samples_budget, "budget_tokens": B, "best": c.kept, "errors": c.errors, "ranked": c.ranked})
        print(f"budget {B / U:7.1f}U = {B:>10.0f} tokens: keep {len(c.kept)} ({', '.join(c.kept)}); "
              "errors " + " ".join(f"{e:.4f}" for e in c.errors), flush=True)
    out = Path(args.out)
    png = plot_frontier(rows, out / "frontier.png")
    counts = [len(r["best"]) for r in rows]
    print(f"frontier: pools kept {counts} -> {'moves' if counts[-1] > min(counts) else 'does not move'}; plot {png}")

    checks = []
    if not args.no_check:
        check_at = [4.0] if args.smoke else [2.0, 16.0] if args.quick else [2.0, 8.0, 32.0]
        ranked = rows[0]["ranked"]
        for m in check_at:
            B = int(m * U)
            real = [train(domains, ranked[: j + 1], target, B, args) for j in range(n_pools)]
            chosen = len(choose_pools("pooled", resolved, cfg, B).kept)
            checks.append({"budget_tokens": B, "measured": real, "measured_best": int(np.argmin(real)) + 1, "chosen": chosen})
            print(f"check at {m:g}U: measured top-1..top-{n_pools} " + " ".join(f"{v:.4f}" for v in real)
                  + f" -> best top-{int(np.argmin(real)) + 1}; law chose top-{chosen}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({
        "unique_tokens": U, "pools": n_pools, "sources": [{n: src.count(n) for n in SOURCES} for src in sources], "ks": ks, "runs": {p: l for p, l in table}, "a": a, "d": d,
        "laws": {p: dict(zip(("b", "tau", "source", "reason"), v)) for p, v in laws.items()},
        "frontier": rows, "checks": checks}, indent=1))
    print(f"pools kept per budget {counts}; {time.perf_counter() - t0:.0f} s; results in {out}")
    print(machine_line(start, provenance()))
    agree = sum(c["measured_best"] == c["chosen"] for c in checks)
    return print_summary({"pools_kept_first": counts[0], "pools_kept_last": counts[-1],
                          **goal("pools_added", counts[-1] - counts[0], 1),
                          "checks": len(checks), "checks_law_matches_measured": agree, "fit_rmse_log": rmse,
                          "pools": n_pools, "unique_tokens": U, "mode": "smoke" if args.smoke else "quick" if args.quick else "full"})


if __name__ == "__main__":
    main()
