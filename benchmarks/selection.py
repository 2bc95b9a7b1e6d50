"""Data selection on the embedded corpus: precision, target loss against random, and DSIR speed.

Setup. Every embedded domain's documents are cut into chunks of about 2 KB
(at line breaks) and capped at ``--bytes-per-domain``. For each target domain
the target's chunks are split by hash: 20% form the target sample the scorers
see, 20% the target validation set (never selected, never seen by a scorer),
and the rest join the pool with every chunk of the other domains.

For each method (dsir, classifier, perplexity, color-filter, and random) and
each keep share (10% and 25% of the pool's tokens) the selection is the
method's rule (DSIR: a Gumbel top-k sample by importance weight; classifier,
perplexity and color-filter: the top documents by score; random: a random
order), then a
proxy is trained on the selected tokens alone, for the same number of tokens
whatever the method, with ``--seeds`` seeds, and evaluated on the target
validation set.

Reported: precision (share of selected documents from the target's domain),
its ceiling (the target's documents shortest first, the longest others to
fill), what a perfect ranker reaches with the methods' fill (every target
document first, in random order), token precision (share of selected
tokens from the target's domain) and the target's tokens over the budget (a
ranker that selects all of them reaches that token precision),
target validation loss (mean +- std over seeds), whether each method beats
random by more than twice the standard error of the difference, and DSIR's
scoring speed (hashing target and pool, fitting, scoring) in MB of text per
second on this machine (numpy runs on one core).

    python benchmarks/selection.py --smoke   # 1 target, small pool, tiny proxies, 2 seeds (CI, seconds)
    python benchmarks/selection.py           # 3 targets, 3 seeds
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal, machine_line, print_summary, provenance

from mixopt.config import DomainSpec, ProxyConfig
from mixopt.data.embedded import embedded_domains, embedded_path
from mixopt.data.sources import load_documents
from mixopt.data.tokenize import Tokenizer
from mixopt.data.types import DomainSet, TokenizedDomain
from mixopt.mixtures import Mixture
from mixopt.proxy.train import train_proxy
from mixopt.selection.classifier import TargetClassifier
from mixopt.selection.color_filter import color_filter_scores
from mixopt.selection.dsir import DSIR, gumbel_top_k, top_by_budget
from mixopt.selection.perplexity import perplexity_scores

METHODS = ("dsir", "classifier", "perplexity", "color-filter")
PROXY_METHODS = {"perplexity": perplexity_scores, "color-filter": color_filter_scores}
CHUNK = 2000


def chunks(doc: str, size: int = CHUNK) -> list[str]:
    """Cut a document at line breaks into pieces of about ``size`` bytes."""
    out, cur, n = [], [], 0
    for line in doc.split("\n"):
        cur.append(line)
        n += len(line) + 1
        if n >= size:
            out.append("\n".join(cur))
            cur, n = [], 0
    if cur and "\n".join(cur).strip():
        out.append("\n".join(cur))
    return out


def corpus(bytes_per_domain: int, corpus_dir: str | Path | None = None) -> dict[str, list[str]]:
    """~2 KB chunks of each domain, at most ``bytes_per_domain`` each: the embedded corpus, or the
    ``<domain>.jsonl.gz`` files of one built by `mixopt corpus build` (``corpus_dir``)."""
    if corpus_dir is None:
        paths = {d: embedded_path(d) for d in embedded_domains()}
    else:
        paths = {f.name.removesuffix(".jsonl.gz"): f for f in sorted(Path(corpus_dir).glob("*.jsonl.gz"))}
        if not paths:
            raise SystemExit(f"No <domain>.jsonl.gz in {corpus_dir}. Build it with `mixopt corpus build --size large --out DIR`.")
    out = {}
    for d, path in paths.items():
        pieces, total = [], 0
        for doc in load_documents(DomainSpec(name=d, path=str(path), format="jsonl")):
            for c in chunks(doc):
                if total >= bytes_per_domain:
                    break
                pieces.append(c)
                total += len(c.encode())
        out[d] = pieces
    return out


def split_target(docs: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(target sample, target validation, rest) by a hash of the text: 20% / 20% / 60%."""
    sample, val, rest = [], [], []
    for t in docs:
        u = int.from_bytes(hashlib.sha256(("sel|" + t).encode()).digest()[:8], "big") / 2**64
        (sample if u < 0.2 else val if u < 0.4 else rest).append(t)
    return sample, val, rest


def target_loss(proxy: ProxyConfig, tok: Tokenizer, selected: list[str], val_ids: np.ndarray, seed: int) -> float:
    train = tok.encode_documents(selected)
    dom = TokenizedDomain("sel", train, val_ids, len(selected), 1, "sel")
    data = DomainSet({"sel": dom}, vocab_size=tok.vocab_size, eos_id=tok.eos_id, tokenizer=tok.identity)
    res = train_proxy(proxy, Mixture({"sel": 1.0}), data, seed, threads=1)
    return float(res.metrics["val/sel"]) if res.status == "ok" else float("nan")


def dsir_speed(target: list[str], pool: list[str], repeats: int = 3) -> float:
    mb = (sum(len(t.encode()) for t in target) + sum(len(t.encode()) for t in pool)) / 1e6
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        DSIR().fit_score(target, pool)
        best = min(best, time.perf_counter() - t0)
    return mb / best


def run_target(name: str, docs: dict[str, list[str]], args, tok: Tokenizer, score_proxy: ProxyConfig,
               train_proxy_cfg: ProxyConfig) -> dict:
    sample, val, rest = split_target(docs[name])
    pool = [t for d in sorted(docs) if d != name for t in docs[d]] + rest
    in_domain = np.array([False] * (len(pool) - len(rest)) + [True] * len(rest))
    sizes = np.array([tok.count(t) for t in pool], dtype=np.float64)
    val_ids = tok.encode_documents(val)
    scorers = {"dsir": lambda: DSIR().fit_score(sample, pool),
               "classifier": lambda: TargetClassifier(random_state=args.seed).fit_score(sample, pool),
               **{m: (lambda fn=fn: fn(score_proxy, tok, sample, pool, seed=args.seed)) for m, fn in PROXY_METHODS.items()}}
    scores, timing = {}, {}
    for m in METHODS:
        t0 = time.perf_counter()
        scores[m] = scorers[m]()
        timing[m] = time.perf_counter() - t0
    out = {"target": name, "pool_docs": len(pool), "pool_mb": sum(len(t.encode()) for t in pool) / 1e6,
           "target_share": float(sizes[in_domain].sum() / sizes.sum()), "score_seconds": timing, "cells": []}
    for keep in args.keeps:
        budget = keep * sizes.sum()
        out.setdefault("ceiling", {})[keep] = ceiling = precision_ceiling(in_domain, sizes, budget)
        out.setdefault("perfect", {})[keep] = perfect = float(np.mean(
            [in_domain[perfect_ranker(in_domain, sizes, budget, seed=s)].mean() for s in range(max(args.seeds, 8))]))
        out.setdefault("budget_share", {})[keep] = share = min(1.0, float(sizes[in_domain].sum() / budget))
        print(f"  {name:<12} keep {keep:.0%} precision ceiling {ceiling:.3f}; a perfect ranker {perfect:.3f}; the "
              f"target's tokens fill {share:.3f} of the budget", flush=True)
        for m in ("random", *METHODS):
            losses, precisions, token_precisions = [], [], []
            for s in range(args.seeds):
                if m == "random":
                    mask = top_by_budget(np.random.default_rng(1000 + s).random(len(pool)), sizes, budget)
                elif m == "dsir":
                    mask = gumbel_top_k(scores[m], sizes, budget, seed=s)
                else:
                    mask = top_by_budget(scores[m], sizes, budget)
                precisions.append(float(in_domain[mask].mean()))
                token_precisions.append(float(sizes[mask & in_domain].sum() / sizes[mask].sum()))
                losses.append(target_loss(train_proxy_cfg, tok, [pool[i] for i in np.flatnonzero(mask)], val_ids, args.seed + s))
            out["cells"].append({"keep": keep, "method": m, "precision": float(np.mean(precisions)),
                                 "token_precision": float(np.mean(token_precisions)),
                                 "loss_mean": float(np.mean(losses)), "loss_std": float(np.std(losses, ddof=1)),
                                 "losses": losses})
            c = out["cells"][-1]
            print(f"  {name:<12} keep {keep:.0%} {m:<12} precision {c['precision']:.3f} (tokens {c['token_precision']:.3f})  "
                  f"target loss {c['loss_mean']:.4f} +- {c['loss_std']:.4f}", flush=True)
    return out


def precision_ceiling(in_domain: np.ndarray, sizes: np.ndarray, budget: float) -> float:
    """The best precision a selection of ``budget`` tokens can reach: the target's documents shortest first, then the
    longest others to fill the budget (the methods fill it too; precision counts documents)."""
    target, other = np.flatnonzero(in_domain), np.flatnonzero(~in_domain)
    order = np.concatenate([target[np.argsort(sizes[target], kind="stable")], other[np.argsort(-sizes[other], kind="stable")]])
    keys = np.empty(len(order))
    keys[order] = -np.arange(len(order), dtype=float)
    return float(in_domain[top_by_budget(keys, sizes, budget)].mean())


def perfect_ranker(in_domain: np.ndarray, sizes: np.ndarray, budget: float, *, seed: int) -> np.ndarray:
    """The selection of a ranker that puts every target document first (in random order) and the others after (in
    random order), filled to ``budget`` as the methods are: the precision a perfect score reaches with this fill."""
    keys = in_domain.astype(float) + np.random.default_rng(seed).random(len(in_domain)) * 0.5
    return top_by_budget(keys, sizes, budget)


def beats_random(cells: list[dict], n: int) -> dict[tuple[float, str], bool]:
    rnd = {c["keep"]: c for c in cells if c["method"] == "random"}
    out = {}
    for c in cells:
        if c["method"] == "random":
            continue
        r = rnd[c["keep"]]
        se = math.sqrt((r["loss_std"] ** 2 + c["loss_std"] ** 2) / n)
        out[(c["keep"], c["method"])] = (r["loss_mean"] - c["loss_mean"]) > 2 * se
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="1 target, 60 KB per domain, tiny proxies, 2 seeds (CI)")
    p.add_argument("--targets", default=None, help="comma-separated target domains (default legal,math,code; smoke legal)")
    p.add_argument("--bytes-per-domain", type=int, default=None, help="text per domain (default 300 KB; smoke 60 KB)")
    p.add_argument("--seeds", type=int, default=None, help="proxy seeds per selection (default 3; smoke 2)")
    p.add_argument("--keeps", default="0.1,0.25", help="shares of the pool's tokens to select")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    p.add_argument("--corpus-dir", default=None, help="a corpus built by `mixopt corpus build --size large --out DIR` "
                   "instead of the embedded one")
    args = p.parse_args(argv)
    args.keeps = [float(k) for k in args.keeps.split(",")]
    args.seeds = args.seeds or (2 if args.smoke else 3)
    targets = (args.targets or ("legal" if args.smoke else "legal,math,code")).split(",")
    per_domain = args.bytes_per_domain or (60_000 if args.smoke else 300_000)
    start = provenance()
    tok = Tokenizer("bytes")
    width = 32 if args.smoke else 64
    shape = {"n_layer": 1, "n_embd": width, "head_size": width, "block_size": 64, "batch_size": 16, "device": "cpu",
             "dtype": "float32", "threads": 1, "checkpoints": [1.0], "eval_tokens": 4096 if args.smoke else 16_384}
    score_proxy = ProxyConfig(**shape, tokens=30_000 if args.smoke else 200_000, lr=3e-3)
    train_cfg = ProxyConfig(**shape, tokens=20_000 if args.smoke else 150_000, lr=3e-3)
    docs = corpus(per_domain, args.corpus_dir)
    print(f"pool: {sum(map(len, docs.values()))} chunks of ~{CHUNK} B from {len(docs)} domains, "
          f"{per_domain // 1000} KB each; targets {targets}; keeps {args.keeps}; {args.seeds} seeds", flush=True)
    t_all = time.perf_counter()
    results = [run_target(t, docs, args, tok, score_proxy, train_cfg) for t in targets]
    # DSIR speed on the largest pool: every domain whole (plus a sample of one as target)
    allp = [t for d in sorted(docs) for t in docs[d]]
    speed = dsir_speed(docs[targets[0]][: max(1, len(docs[targets[0]]) // 5)], allp)
    end = provenance()
    print(machine_line(start, end))
    print(f"total {time.perf_counter() - t_all:.0f}s")

    fields = {"mode": "smoke" if args.smoke else "full", "targets": len(targets), "seeds": args.seeds}
    wins, total = 0, 0
    for m in ("random", *METHODS):
        for keep in args.keeps:
            cells = [c for r in results for c in r["cells"] if c["method"] == m and c["keep"] == keep]
            fields[f"precision_{m.replace('-', '_')}_{int(keep * 100)}"] = round(float(np.mean([c["precision"] for c in cells])), 4)
            fields[f"token_precision_{m.replace('-', '_')}_{int(keep * 100)}"] = round(
                float(np.mean([c["token_precision"] for c in cells])), 4)
    for r in results:
        b = beats_random(r["cells"], args.seeds)
        r["beats_random"] = {f"{m}@{k}": v for (k, m), v in b.items()}
        wins += sum(b.values())
        total += len(b)
    best10 = max(fields[f"precision_{m.replace('-', '_')}_10"] for m in METHODS) if 0.1 in args.keeps else float("nan")
    if 0.1 in args.keeps:
        fields["precision_ceiling_10"] = round(float(np.mean([r["ceiling"][0.1] for r in results])), 4)
        fields["precision_perfect_10"] = round(float(np.mean([r["perfect"][0.1] for r in results])), 4)
        fields["target_budget_share_10"] = round(float(np.mean([r["budget_share"][0.1] for r in results])), 4)
    fields.update(goal("best_precision_10", best10, 0.9))
    fields["beats_random"] = f"{wins}/{total}"
    fields["met_beats_random"] = wins == total
    fields.update(goal("dsir_mb_per_s", round(speed, 2), 5.0))
    fields["met"] = bool(fields["met_best_precision_10"] and fields["met_beats_random"] and fields["met_dsir_mb_per_s"])
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": fields, "machine": end}, indent=1, default=str))
    return print_summary(fields)


if __name__ == "__main__":
    main()
