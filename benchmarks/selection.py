"""Data selection on the embedded corpus: precision, target loss against random, and DSIR speed.

Setup. Every embedded domain's documents are cut into chunks of about 2 KB
(at line breaks) and capped at ``--bytes-per-domain``; each chunk keeps the
index of its source document. For each target domain the target's documents
are split whole (``--split document``, the default; every chunk of a document
lands on the same side), in the order of a hash of the document, into 20% of
the target's bytes as the target sample the scorers see, 20% as the target
validation set (never selected, never seen by a scorer), and the rest, which
joins the pool with every chunk of the other domains.
``--split chunk`` puts each chunk on a side by a hash of its text instead (the
benchmark's split before 2026-12-01, kept to reproduce older figures): chunks
of one long document then sit in the scorer's sample, the validation set and
the pool at once, which overstates ranking quality where documents are long
(code).

The split is repeated with ``--salts`` hash salts (the first is ``sel``, the
salt of the older figures). At 10% keep the budget is just above the target's
tokens in the pool, so one split's precision mostly says how many target
chunks that split left in the pool; precision is therefore reported as the
mean +- sd over the salts, and also relative to a perfect ranker on the same
split (method / perfect), the part the ranker controls.

For each method (dsir, classifier, perplexity, color-filter, and random) and
each keep share (10% and 25% of the pool's tokens) the selection is the
method's rule (DSIR: a Gumbel top-k sample by importance weight; classifier,
perplexity and color-filter: the top documents by score; random: a random
order). On the first ``--loss-salts`` salts (default 1: training them on
every salt multiplies the run time by the number of salts), a proxy is trained
on the selected tokens alone, for the same number of tokens whatever the
method, with ``--seeds`` seeds, and evaluated on the target validation set.

Reported: precision (share of selected documents from the target's domain),
its ceiling (the target's documents shortest first, the longest others to
fill), what a perfect ranker reaches with the methods' fill (every target
document first, in random order), precision over the perfect ranker's, token
precision (share of selected tokens from the target's domain) and the
target's tokens over the budget (a ranker that selects all of them reaches
that token precision), all as mean +- sd over the salts; target validation
loss on the first salt (mean +- std over seeds), whether each method beats
random by more than twice the standard error of the difference; with
``--loss-salts K`` > 1 the same test on each of the K splits, and per method
and keep the mean over targets of its loss minus random's with a 95%
t-interval across the K splits (the split, not the seed, is the replicate:
it moves the validation set and the pool), and DSIR's
scoring speed (hashing target and pool, fitting, scoring) in MB of text per
second on this machine (numpy runs on one core).

    python benchmarks/selection.py --smoke          # 1 target, small pool, 2 salts, tiny proxies, 2 seeds (CI, seconds)
    python benchmarks/selection.py                  # 3 targets, 5 salts, 3 seeds, split by document
    python benchmarks/selection.py --split chunk --salts 1   # the figures of the chunk split on salt "sel" (before 2026-12-01)
    python benchmarks/selection.py --loss-salts 5   # target losses on all 5 splits (about 5x the training time)
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


def corpus(bytes_per_domain: int, corpus_dir: str | Path | None = None, *, with_doc_ids: bool = False):
    """~2 KB chunks of each domain, at most ``bytes_per_domain`` each: the embedded corpus, or the
    ``<domain>.jsonl.gz`` files of one built by `mixopt corpus build` (``corpus_dir``).

    Returns ``{domain: [chunk, ...]}``; with ``with_doc_ids`` also ``{domain: [document index, ...]}``, the index (in the
    domain's file order) of the document each chunk was cut from, aligned with the chunks."""
    if corpus_dir is None:
        paths = {d: embedded_path(d) for d in embedded_domains()}
    else:
        paths = {f.name.removesuffix(".jsonl.gz"): f for f in sorted(Path(corpus_dir).glob("*.jsonl.gz"))}
        if not paths:
            raise SystemExit(f"No <domain>.jsonl.gz in {corpus_dir}. Build it with `mixopt corpus build --size large --out DIR`.")
    out, ids = {}, {}
    for d, path in paths.items():
        pieces, doc_ids, total = [], [], 0
        for j, doc in enumerate(load_documents(DomainSpec(name=d, path=str(path), format="jsonl"))):
            if total >= bytes_per_domain:
                break
            for c in chunks(doc):
                if total >= bytes_per_domain:
                    break
                pieces.append(c)
                doc_ids.append(j)
                total += len(c.encode())
        out[d], ids[d] = pieces, doc_ids
    return (out, ids) if with_doc_ids else out


def _unit(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def split_target(docs: list[str], doc_ids: list[int] | None = None, *, salt: str = "sel") \
        -> tuple[list[str], list[str], list[str]]:
    """(target sample, target validation, rest): 20% / 20% / 60%, by a hash.

    Without ``doc_ids`` each chunk's text is hashed (``salt|text``) and falls on a side by its hash alone: the split of
    every figure before 2026-12-01 and the one ``pools_schedule.py`` uses. With ``doc_ids`` (one per chunk, see
    :func:`corpus`) whole documents are split: they are laid end to end in the order of their hashes
    (``salt|doc<index>``) over the target's bytes, and each goes, with all its chunks, to the side where its middle
    falls (the first 20% of the bytes, the next 20%, the rest). The sides hold 20/20/60% of the bytes up to half a
    document, so a few long documents cannot leave the scorer's sample nearly empty or change the target's share
    of the pool much from one salt to the next."""
    if doc_ids is None:
        sample, val, rest = [], [], []
        for t in docs:
            u = _unit(f"{salt}|{t}")
            (sample if u < 0.2 else val if u < 0.4 else rest).append(t)
        return sample, val, rest
    if len(doc_ids) != len(docs):
        raise ValueError(f"{len(doc_ids)} document ids for {len(docs)} chunks")
    size: dict[int, int] = {}
    for t, g in zip(docs, doc_ids):
        size[g] = size.get(g, 0) + len(t.encode())
    total, before, side = sum(size.values()), 0, {}
    for g in sorted(size, key=lambda g: _unit(f"{salt}|doc{g}")):
        u = (before + size[g] / 2) / total
        side[g] = 0 if u < 0.2 else 1 if u < 0.4 else 2
        before += size[g]
    parts: tuple[list[str], list[str], list[str]] = ([], [], [])
    for t, g in zip(docs, doc_ids):
        parts[side[g]].append(t)
    return parts


def salts(k: int) -> list[str]:
    """The split salts: ``sel`` (the older figures' salt) first, then ``s0``, ``s1``, ..."""
    return ["sel", *(f"s{i}" for i in range(k - 1))]


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


def select(m: str, scores: dict, sizes: np.ndarray, budget: float, s: int) -> np.ndarray:
    """Method ``m``'s selection of ``budget`` tokens (``s``: the seed of random's order and of DSIR's Gumbel sample)."""
    if m == "random":
        return top_by_budget(np.random.default_rng(1000 + s).random(len(sizes)), sizes, budget)
    if m == "dsir":
        return gumbel_top_k(scores[m], sizes, budget, seed=s)
    return top_by_budget(scores[m], sizes, budget)


def run_split(name: str, docs: dict[str, list[str]], doc_ids: dict[str, list[int]] | None, salt: str, args,
              tok: Tokenizer, score_proxy: ProxyConfig, train_proxy_cfg: ProxyConfig, *, train: bool) -> dict:
    """Every method's selections on one split of target ``name`` (hash ``salt``); the proxies only when ``train``."""
    sample, val, rest = split_target(docs[name], None if doc_ids is None else doc_ids[name], salt=salt)
    if not (sample and val and rest):
        raise SystemExit(f"split {salt!r} of {name}: {len(sample)} sample / {len(val)} validation / {len(rest)} pool "
                         f"chunks; a side is empty (too few documents: raise --bytes-per-domain or use --split chunk)")
    pool = [t for d in sorted(docs) if d != name for t in docs[d]] + rest
    in_domain = np.array([False] * (len(pool) - len(rest)) + [True] * len(rest))
    sizes = np.array([tok.count(t) for t in pool], dtype=np.float64)
    scorers = {"dsir": lambda: DSIR().fit_score(sample, pool),
               "classifier": lambda: TargetClassifier(random_state=args.seed).fit_score(sample, pool),
               **{m: (lambda fn=fn: fn(score_proxy, tok, sample, pool, seed=args.seed)) for m, fn in PROXY_METHODS.items()}}
    scores, timing = {}, {}
    for m in METHODS:
        t0 = time.perf_counter()
        scores[m] = scorers[m]()
        timing[m] = time.perf_counter() - t0
    val_ids = tok.encode_documents(val) if train else None
    out = {"salt": salt, "sample_chunks": len(sample), "val_chunks": len(val), "pool_target_chunks": len(rest),
           "pool_docs": len(pool), "pool_mb": sum(len(t.encode()) for t in pool) / 1e6,
           "target_share": float(sizes[in_domain].sum() / sizes.sum()), "score_seconds": timing,
           "ceiling": {}, "perfect": {}, "budget_share": {}, "cells": []}
    tag = f"{name:<12} salt {salt:<4}"
    if train or args.salts == 1:
        print(f"  {tag} target chunks: sample {len(sample)}, validation {len(val)}, pool {len(rest)} "
              f"({out['target_share']:.3f} of the pool's tokens)", flush=True)
    for keep in args.keeps:
        budget = keep * sizes.sum()
        out["ceiling"][keep] = ceiling = precision_ceiling(in_domain, sizes, budget)
        out["perfect"][keep] = perfect = float(np.mean(
            [in_domain[perfect_ranker(in_domain, sizes, budget, seed=s)].mean() for s in range(max(args.seeds, 8))]))
        out["budget_share"][keep] = share = min(1.0, float(sizes[in_domain].sum() / budget))
        if train:
            print(f"  {tag} keep {keep:.0%} precision ceiling {ceiling:.3f}; a perfect ranker {perfect:.3f}; the "
                  f"target's tokens fill {share:.3f} of the budget", flush=True)
        for m in ("random", *METHODS):
            losses, precisions, token_precisions = [], [], []
            for s in range(args.seeds):
                mask = select(m, scores, sizes, budget, s)
                precisions.append(float(in_domain[mask].mean()))
                token_precisions.append(float(sizes[mask & in_domain].sum() / sizes[mask].sum()))
                if train:
                    losses.append(target_loss(train_proxy_cfg, tok, [pool[i] for i in np.flatnonzero(mask)], val_ids,
                                              args.seed + s))
            c = {"keep": keep, "method": m, "precision": float(np.mean(precisions)),
                 "token_precision": float(np.mean(token_precisions))}
            c["relative"] = c["precision"] / perfect
            if train:
                c.update(loss_mean=float(np.mean(losses)), loss_std=float(np.std(losses, ddof=1)), losses=losses)
                print(f"  {tag} keep {keep:.0%} {m:<12} precision {c['precision']:.3f} (tokens {c['token_precision']:.3f}; "
                      f"/ perfect {c['relative']:.3f})  target loss {c['loss_mean']:.4f} +- {c['loss_std']:.4f}", flush=True)
            out["cells"].append(c)
        if not train:
            got = "  ".join(f"{c['method']} {c['precision']:.3f}" for c in out["cells"] if c["keep"] == keep)
            print(f"  {tag} keep {keep:.0%} ceiling {ceiling:.3f} perfect {perfect:.3f} | {got}", flush=True)
    return out


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample sd (nan with one value)."""
    v = np.asarray(list(values), dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def run_target(name: str, docs: dict[str, list[str]], doc_ids: dict[str, list[int]] | None, args, tok: Tokenizer,
               score_proxy: ProxyConfig, train_proxy_cfg: ProxyConfig) -> dict:
    """Every split (salt) of one target; the target-loss proxies on the first ``args.loss_salts`` splits."""
    splits = [run_split(name, docs, doc_ids, salt, args, tok, score_proxy, train_proxy_cfg, train=i < args.loss_salts)
              for i, salt in enumerate(salts(args.salts))]
    first = splits[0]
    out = {"target": name, "split": args.split, "salts": [sp["salt"] for sp in splits], "splits": splits,
           # the first split's figures, as before (its cells carry the target losses)
           "pool_docs": first["pool_docs"], "pool_mb": first["pool_mb"], "target_share": first["target_share"],
           "score_seconds": first["score_seconds"], "cells": first["cells"], "over_salts": {}}
    for keep in args.keeps:
        agg = out["over_salts"][keep] = {}
        for fig in ("ceiling", "perfect", "budget_share"):
            agg[fig] = mean_sd(sp[fig][keep] for sp in splits)
        for m in ("random", *METHODS):
            cells = [next(c for c in sp["cells"] if c["keep"] == keep and c["method"] == m) for sp in splits]
            agg[m] = {f: mean_sd(c[f] for c in cells) for f in ("precision", "relative", "token_precision")}
        if args.salts > 1:
            pf = agg["perfect"]
            got = "  ".join(f"{m} {agg[m]['precision'][0]:.3f} +- {agg[m]['precision'][1]:.3f} "
                            f"(/perfect {agg[m]['relative'][0]:.3f})" for m in ("random", *METHODS))
            print(f"  {name:<12} over {args.salts} salts, keep {keep:.0%}: perfect {pf[0]:.3f} +- {pf[1]:.3f} | {got}",
                  flush=True)
    return out


def t_interval(values) -> tuple[float, float, float]:
    """Mean and 95% t-interval of ``values`` (the replicates)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def loss_over_salts(results: list[dict], args, fields: dict) -> None:
    """Target losses on every trained split: the 2-s.e. test per split, and each method's loss minus random's (mean
    over targets) with a 95% t-interval across the splits."""
    k_salts = args.loss_salts
    wins, total = [], 0
    for i in range(k_salts):
        w = 0
        for r in results:
            b = beats_random(r["splits"][i]["cells"], args.seeds)
            w += sum(b.values())
            total += len(b)
        wins.append(w)
    cells_per_salt = total // k_salts
    print(f"target loss over {k_salts} splits {salts(k_salts)}: cells beating random by more than 2 s.e., per split: "
          + ", ".join(f"{w}/{cells_per_salt}" for w in wins))
    print(f"  method loss - random loss, mean over the {len(results)} targets, mean [95% t-interval] across the "
          f"{k_salts} splits (negative: better than random):")
    for keep in args.keeps:
        parts = []
        for m in METHODS:
            diffs = []
            for i in range(k_salts):
                per_target = []
                for r in results:
                    cell = {c["method"]: c for c in r["splits"][i]["cells"] if c["keep"] == keep}
                    per_target.append(cell[m]["loss_mean"] - cell["random"]["loss_mean"])
                diffs.append(np.mean(per_target))
            mean, lo, hi = t_interval(diffs)
            key = f"loss_diff_{m.replace('-', '_')}_{int(keep * 100)}"
            fields[key], fields[f"{key}_lo"], fields[f"{key}_hi"] = round(mean, 4), round(lo, 4), round(hi, 4)
            parts.append(f"{m} {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        print(f"  keep {keep:.0%}: " + "  ".join(parts))
    fields["loss_salts"] = k_salts
    fields["beats_random_salts"] = f"{sum(wins)}/{total}"


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
    p.add_argument("--smoke", action="store_true", help="1 target, 60 KB per domain, 2 salts, tiny proxies, 2 seeds (CI)")
    p.add_argument("--targets", default=None, help="comma-separated target domains (default legal,math,code; smoke legal)")
    p.add_argument("--bytes-per-domain", type=int, default=None, help="text per domain (default 300 KB; smoke 60 KB)")
    p.add_argument("--seeds", type=int, default=None, help="proxy seeds per selection (default 3; smoke 2)")
    p.add_argument("--salts", type=int, default=None, help="split salts the precision figures are averaged over "
                   "(default 5; smoke 2); the first is 'sel', the salt of the older figures")
    p.add_argument("--loss-salts", type=int, default=1, help="train the target-loss proxies on the first K salts "
                   "(default 1: the first only); K > 1 adds the loss differences against random over the K splits")
    p.add_argument("--split", choices=("document", "chunk"), default="document",
                   help="hash each target document (default; all its chunks on one side) or each chunk (the split of "
                   "the figures before 2026-12-01)")
    p.add_argument("--keeps", default="0.1,0.25", help="shares of the pool's tokens to select")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    p.add_argument("--corpus-dir", default=None, help="a corpus built by `mixopt corpus build --size large --out DIR` "
                   "instead of the embedded one")
    args = p.parse_args(argv)
    args.keeps = [float(k) for k in args.keeps.split(",")]
    args.seeds = args.seeds or (2 if args.smoke else 3)
    args.salts = args.salts or (2 if args.smoke else 5)
    if not 1 <= args.loss_salts <= args.salts:
        p.error(f"--loss-salts must be between 1 and --salts ({args.salts}); got {args.loss_salts}")
    targets = (args.targets or ("legal" if args.smoke else "legal,math,code")).split(",")
    per_domain = args.bytes_per_domain or (60_000 if args.smoke else 300_000)
    start = provenance()
    tok = Tokenizer("bytes")
    width = 32 if args.smoke else 64
    shape = {"n_layer": 1, "n_embd": width, "head_size": width, "block_size": 64, "batch_size": 16, "device": "cpu",
             "dtype": "float32", "threads": 1, "checkpoints": [1.0], "eval_tokens": 4096 if args.smoke else 16_384}
    score_proxy = ProxyConfig(**shape, tokens=30_000 if args.smoke else 200_000, lr=3e-3)
    train_cfg = ProxyConfig(**shape, tokens=20_000 if args.smoke else 150_000, lr=3e-3)
    docs, ids = corpus(per_domain, args.corpus_dir, with_doc_ids=True)
    doc_ids = ids if args.split == "document" else None
    print(f"pool: {sum(map(len, docs.values()))} chunks of ~{CHUNK} B from {sum(len(set(v)) for v in ids.values())} "
          f"documents in {len(docs)} domains, {per_domain // 1000} KB each; targets {targets} (documents: "
          f"{', '.join(f'{t} {len(set(ids[t]))}' for t in targets)}); split by {args.split}, {args.salts} salts "
          f"{salts(args.salts)}; keeps {args.keeps}; {args.seeds} seeds; target losses on {salts(args.loss_salts)}", flush=True)
    t_all = time.perf_counter()
    results = [run_target(t, docs, doc_ids, args, tok, score_proxy, train_cfg) for t in targets]
    # DSIR speed on the largest pool: every domain whole (plus a sample of one as target)
    allp = [t for d in sorted(docs) for t in docs[d]]
    speed = dsir_speed(docs[targets[0]][: max(1, len(docs[targets[0]]) // 5)], allp)
    end = provenance()

    def over_salts(fig: str, keep: float, m: str | None = None) -> np.ndarray:
        """Per salt, the mean over targets of one figure (a method's, or the split's own: ceiling, perfect, ...)."""
        if m is None:
            return np.array([np.mean([r["splits"][i][fig][keep] for r in results]) for i in range(args.salts)])
        return np.array([np.mean([next(c[fig] for c in r["splits"][i]["cells"] if c["keep"] == keep and c["method"] == m)
                                  for r in results]) for i in range(args.salts)])

    fields = {"mode": "smoke" if args.smoke else "full", "targets": len(targets), "seeds": args.seeds,
              "salts": args.salts, "split": args.split}
    print(f"precision, mean of the {len(targets)} targets, mean +- sd over {args.salts} split salts (split by "
          f"{args.split}); '/ perfect' = precision over a perfect ranker's on the same split:")
    for keep in args.keeps:
        k = int(keep * 100)
        line = []
        for fig in ("ceiling", "perfect", "budget_share"):
            v = over_salts(fig, keep)
            line.append(f"{fig} {mean_sd(v)[0]:.3f} +- {mean_sd(v)[1]:.3f}")
        print(f"  keep {keep:.0%}: " + "; ".join(line))
        for m in ("random", *METHODS):
            key = m.replace("-", "_")
            prec, rel, tp = (mean_sd(over_salts(f, keep, m)) for f in ("precision", "relative", "token_precision"))
            fields[f"precision_{key}_{k}"] = round(prec[0], 4)
            fields[f"precision_{key}_{k}_sd"] = round(prec[1], 4)
            fields[f"rel_precision_{key}_{k}"] = round(rel[0], 4)
            fields[f"token_precision_{key}_{k}"] = round(tp[0], 4)
            print(f"  keep {keep:.0%} {m:<12} precision {prec[0]:.3f} +- {prec[1]:.3f}   / perfect {rel[0]:.3f} +- "
                  f"{rel[1]:.3f}   tokens {tp[0]:.3f} +- {tp[1]:.3f}")
    print(f"target loss (first salt only, '{salts(1)[0]}'), mean +- std over {args.seeds} seeds; * = beats random by "
          f"more than 2 s.e.:")
    wins, total = 0, 0
    for r in results:
        b = beats_random(r["cells"], args.seeds)
        r["beats_random"] = {f"{m}@{k}": v for (k, m), v in b.items()}
        wins += sum(b.values())
        total += len(b)
        for keep in args.keeps:
            cells = [c for c in r["cells"] if c["keep"] == keep]
            print(f"  {r['target']:<12} keep {keep:.0%}: " + "  ".join(
                f"{c['method']} {c['loss_mean']:.3f} +- {c['loss_std']:.3f}{'*' if b.get((keep, c['method'])) else ''}"
                for c in cells))
    if args.loss_salts > 1:
        loss_over_salts(results, args, fields)
    print(machine_line(start, end))
    print(f"total {time.perf_counter() - t_all:.0f}s")

    best10, best_m = float("nan"), None
    if 0.1 in args.keeps:
        best_m = max(METHODS, key=lambda m: fields[f"precision_{m.replace('-', '_')}_10"])
        key = best_m.replace("-", "_")
        best10 = fields[f"precision_{key}_10"]
        per_salt = over_salts("precision", 0.1, best_m)
        for fig in ("ceiling", "perfect"):
            v = mean_sd(over_salts(fig, 0.1))
            fields[f"precision_{fig}_10"] = round(v[0], 4)
            fields[f"precision_{fig}_10_sd"] = round(v[1], 4)
        fields["target_budget_share_10"] = round(mean_sd(over_salts("budget_share", 0.1))[0], 4)
    fields.update(goal("best_precision_10", best10, 0.9))
    if best_m is not None:
        fields["best_precision_10_sd"] = fields[f"precision_{key}_10_sd"]
        fields["best_method_10"] = best_m
        fields["best_rel_precision_10"] = fields[f"rel_precision_{key}_10"]
        fields["best_precision_10_salts_at_goal"] = f"{int((per_salt >= 0.9).sum())}/{args.salts}"
    fields["beats_random"] = f"{wins}/{total}"
    fields["met_beats_random"] = wins == total
    fields.update(goal("dsir_mb_per_s", round(speed, 2), 5.0))
    fields["met"] = bool(fields["met_best_precision_10"] and fields["met_beats_random"] and fields["met_dsir_mb_per_s"])
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": fields, "machine": end,
                                         "argv": list(sys.argv[1:] if argv is None else argv)}, indent=1, default=str))
    return print_summary(fields)


if __name__ == "__main__":
    main()
