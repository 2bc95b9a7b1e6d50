"""Time OT of a mixture via mixopt's MixtureOT against calling POT directly, plus a real-text sanity check.

Usage::

    python benchmarks/ot_speed.py [--n 2000] [--d 128] [--repeats 5] [--reg 0.05]
    python benchmarks/ot_speed.py --smoke     # n=300, d=32, small scaling series (seconds; CI)

Part 1 builds clustered random features (7 domains, ``n`` source samples and
``n`` target samples, dimension ``d``), then times, on the same cost matrix in
the same run: ``ot.emd2`` vs ``MixtureOT(method="emd").distance``,
``ot.sinkhorn2`` vs ``MixtureOT(method="sinkhorn").distance``, and
``distance_and_grad`` for both. Ratios are mixopt time / POT time (best of
``repeats``). Part 2 (skipped when ``mixopt/data/corpus/*.jsonl.gz`` is absent)
featurizes the embedded corpus in ~1 KB chunks and checks, with each domain in
turn as the target, that a held-out same-domain pool scores below a 50/50 blend,
which scores below an unrelated pool. Part 3 fits log-log exponents of the
exact OT time over samples and over domains. The last line is the
``summary:`` line (goals: mixopt within 25% of POT, every text target ranked
right). The summary also carries the absolute times behind the two ratios
(``emd_pot_s``, ``emd_mixopt_s``, ``sinkhorn_pot_s``, ``sinkhorn_mixopt_s``, best of ``repeats``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import ot

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance  # noqa: E402

from mixopt.projector import HashingFeaturizer, MixtureOT, score_pools  # noqa: E402

GOAL_RATIO = 1.25  # MixtureOT may cost at most 25% more than calling POT on the same problem


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def paired(fn_a, fn_b, repeats: int) -> tuple[float, object, float, object]:
    """Best times of two functions, called alternately ``repeats`` times each."""
    ta = tb = float("inf")
    out_a = out_b = None
    for _ in range(repeats):
        t, out_a = best_time(fn_a, 1)
        ta = min(ta, t)
        t, out_b = best_time(fn_b, 1)
        tb = min(tb, t)
    return ta, out_a, tb, out_b


def clustered_features(n: int, d: int, k: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    sizes = np.full(k, n // k)
    sizes[: n - sizes.sum()] += 1
    src = {f"d{i}": centres[i] + 0.8 * rng.normal(size=(s, d)) for i, s in enumerate(sizes)}
    tgt_owner = rng.choice(k, size=n, p=rng.dirichlet(np.ones(k)))
    tgt = centres[tgt_owner] + 0.8 * rng.normal(size=(n, d))
    return src, tgt


def speed(n: int, d: int, repeats: int, reg: float) -> dict:
    """The absolute times (s, best of ``repeats``) of POT and MixtureOT, emd and sinkhorn, on the same problem."""
    src, tgt = clustered_features(n, d, 7, seed=0)
    p = np.random.default_rng(1).dirichlet(np.ones(7))
    t_build, mot_emd = best_time(lambda: MixtureOT(src, tgt, method="emd"), 1)
    mot_sk = MixtureOT(src, tgt, method="sinkhorn", reg=reg)
    a, b, M = mot_emd.source_weights(p), np.full(n, 1.0 / n), mot_emd.cost
    rows = []
    # POT and mixopt calls alternate within each repeat so that load drift on a shared machine hits both alike.
    t_pot_emd, v_pot_emd, t_mix_emd, v_mix_emd = paired(lambda: ot.emd2(a, b, M), lambda: mot_emd.distance(p), repeats)
    t_pot_sk, v_pot_sk, t_mix_sk, v_mix_sk = paired(lambda: ot.sinkhorn2(a, b, M, reg, numItermax=10000, stopThr=1e-9),
                                                    lambda: mot_sk.distance(p), repeats)
    t_grad_emd, _ = best_time(lambda: mot_emd.distance_and_grad(p), repeats)
    t_grad_sk, _ = best_time(lambda: mot_sk.distance_and_grad(p), repeats)
    rows += [
        ("cost matrix build (MixtureOT init, once)", t_build, None),
        ("ot.emd2 (POT direct)", t_pot_emd, v_pot_emd),
        ("MixtureOT.distance emd", t_mix_emd, v_mix_emd),
        ("MixtureOT.distance_and_grad emd", t_grad_emd, None),
        (f"ot.sinkhorn2 reg={reg} (POT direct)", t_pot_sk, v_pot_sk),
        (f"MixtureOT.distance sinkhorn reg={reg}", t_mix_sk, v_mix_sk),
        (f"MixtureOT.distance_and_grad sinkhorn reg={reg}", t_grad_sk, None),
    ]
    print(f"# OT speed: {n} x {n} samples, d={d}, 7 domains, best of {repeats}")
    for name, t, v in rows:
        print(f"{name:48s} {t:8.3f} s" + (f"   value={float(v):.6f}" if v is not None else ""))
    print(f"grad/distance emd={t_grad_emd / t_mix_emd:.2f} sinkhorn={t_grad_sk / t_mix_sk:.2f}")
    for name, mix, pot in (("emd", t_mix_emd, t_pot_emd), ("sinkhorn", t_mix_sk, t_pot_sk)):
        print(f"{name}: MixtureOT / POT = {mix:.3f} / {pot:.3f} s = {mix / pot:.3f} "
              f"(goal <= {GOAL_RATIO:g}: {'met' if mix / pot <= GOAL_RATIO else 'MISSED'})")
    return {"emd_pot_s": t_pot_emd, "emd_mixopt_s": t_mix_emd, "sinkhorn_pot_s": t_pot_sk, "sinkhorn_mixopt_s": t_mix_sk}


def load_chunks(path: Path, chunk_bytes: int = 1000, max_chunks: int = 240) -> list[str]:
    chunks: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"]
            for i in range(0, len(text), chunk_bytes):
                piece = text[i: i + chunk_bytes]
                if len(piece) > chunk_bytes // 4:
                    chunks.append(piece)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(chunks))[:max_chunks]
    return [chunks[i] for i in idx]


def text_sanity(max_chunks: int = 240) -> tuple[int, int]:
    """(targets ranked same < blend < unrelated, targets checked); (0, 0) without the corpus files."""
    corpus = Path(__file__).resolve().parents[1] / "mixopt" / "data" / "corpus"
    files = sorted(corpus.glob("*.jsonl.gz"))
    if not files:
        print("# text sanity: skipped (no mixopt/data/corpus/*.jsonl.gz)")
        return 0, 0
    t0 = time.perf_counter()
    domains = {f.name.split(".")[0]: load_chunks(f, max_chunks=max_chunks) for f in files}
    per = min(80, min(len(c) for c in domains.values()) // 2)
    names = sorted(domains)
    feat = HashingFeaturizer()
    passed = 0
    print(f"# text sanity: {len(names)} corpus domains, 1 KB chunks, {per} target / {per} per pool, HashingFeaturizer(dim=128), emd")
    for i, name in enumerate(names):
        chunks = domains[name]
        other = domains[names[(i + 3) % len(names)]]
        target, same = chunks[:per], chunks[per:2 * per]
        pools = {"same": same, "blend": same[:per // 2] + other[:per - per // 2], "unrelated": other[:per]}
        ot_of = {r["pool"]: r["ot_distance"] for r in score_pools(pools, target, featurizer=feat)}
        ok = ot_of["same"] < ot_of["blend"] < ot_of["unrelated"]
        passed += ok
        print(f"target={name:13s} unrelated={names[(i + 3) % len(names)]:13s} same={ot_of['same']:.4f} "
              f"blend={ot_of['blend']:.4f} unrelated={ot_of['unrelated']:.4f} {'ok' if ok else 'FAIL'}")
    print(f"text sanity: {passed}/{len(names)} targets rank same < blend < unrelated ({time.perf_counter() - t0:.1f} s)")
    return passed, len(names)


def loglog_exponent(xs, ts) -> float:
    return float(np.polyfit(np.log(xs), np.log(ts), 1)[0])


def scaling(d: int, ns=(250, 500, 1000, 2000), n_k: int = 1000) -> tuple[float, float]:
    """How MixtureOT's exact OT time grows with samples (n source = n target) and with domains (fixed n)."""
    tn = []
    for n in ns:
        src, tgt = clustered_features(n, d, 7, seed=1)
        ot = MixtureOT(src, tgt, method="emd")
        p = {k: 1 / len(src) for k in src}
        tn.append(best_time(lambda: ot.distance(p), 2)[0])
    ks, tk = [2, 4, 8, 16], []
    for k in ks:
        src, tgt = clustered_features(n_k, d, k, seed=2)
        ot = MixtureOT(src, tgt, method="emd")
        p = {name: 1 / len(src) for name in src}
        tk.append(best_time(lambda: ot.distance(p), 2)[0])
    e_n, e_k = loglog_exponent(ns, tn), loglog_exponent(ks, tk)
    print("OT (emd) time vs samples: " + ", ".join(f"{n}={t:.3f}s" for n, t in zip(ns, tn)) + f"; log-log exponent {e_n:.2f}")
    print(f"OT (emd) time vs domains at n={n_k}: " + ", ".join(f"{k}={t:.3f}s" for k, t in zip(ks, tk)) + f"; log-log exponent {e_k:.2f}")
    return e_n, e_k


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="samples per side (default 2000; smoke 300)")
    parser.add_argument("--d", type=int, default=None, help="feature dimension (default 128; smoke 32)")
    parser.add_argument("--repeats", type=int, default=None, help="best of this many (default 5; smoke 2)")
    parser.add_argument("--reg", type=float, default=0.05)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args(argv)
    start = provenance()
    n = args.n or (300 if args.smoke else 2000)
    d = args.d or (32 if args.smoke else 128)
    repeats = args.repeats or (2 if args.smoke else 5)
    times = speed(n, d, repeats, args.reg)
    ratio_emd, ratio_sk = times["emd_mixopt_s"] / times["emd_pot_s"], times["sinkhorn_mixopt_s"] / times["sinkhorn_pot_s"]
    passed = total = 0
    if not args.skip_text:
        passed, total = text_sanity(max_chunks=60 if args.smoke else 240)
    e_n = e_k = float("nan")
    if not args.skip_scaling:
        e_n, e_k = scaling(d, ns=(100, 200, 400) if args.smoke else (250, 500, 1000, 2000), n_k=200 if args.smoke else 1000)
    print(machine_line(start, provenance()))
    text = goal("text_ok", float(passed), float(total)) if total else {"text_ok": "na"}
    return print_summary({**goal("ratio_emd", ratio_emd, GOAL_RATIO, higher_is_better=False),
                          **goal("ratio_sinkhorn", ratio_sk, GOAL_RATIO, higher_is_better=False),
                          **times, **text, "exponent_samples": e_n, "exponent_domains": e_k, "n": n, "d": d,
                          "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
