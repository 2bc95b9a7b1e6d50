"""The `select` verb: score every document of every pool against a target and write buckets.

``select_documents`` reads the sources, checks them, scores (or reads the
cache), cuts each pool into equal-token score buckets (best first), optionally
keeps a share of all pools' tokens, and writes the files described in
:mod:`mixopt.selection.output`. All pools are scored together: DSIR's raw
distribution and the pool proxies of ``perplexity-medium`` and
``color-filter`` are fitted on the union of the pools, so scores are comparable
across pools.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ProxyConfig
from ..data.sources import names_local_data
from ..data.tokenize import Tokenizer
from ..errors import ConfigError, DataError
from .cache import ScoreCache, score_key
from .classifier import TargetClassifier
from .color_filter import color_filter_scores
from .dsir import DSIR, gumbel_top_k, top_by_budget
from .ngrams import hash_progress
from .output import SCORE_FIELD, bucket_of, check_out, complete, output_names, score_field, write_selection
from .perplexity import perplexity_scores
from .read import Source, overlap, read_source, source_spec

METHODS = ("dsir", "classifier", "perplexity", "perplexity-medium", "color-filter")
HASHED = ("dsir", "classifier")  # methods on hashed n-grams (no proxy)
Progress = Callable[[str, int, int], None]  # (stage label, done, total)


@dataclass
class SelectResult:
    out_dir: Path
    files: dict[str, Path]
    key: str
    cached: bool  # scores came from the cache
    skipped: bool  # the output folder already held this exact selection
    n_docs: dict[str, int]  # per source, the records with text (scored); selection.json keeps every record
    overlap: dict[str, int] = field(default_factory=dict)  # pool -> target documents also found in it
    warnings: list[str] = field(default_factory=list)


def select_documents(pools: Mapping[str, str], target: str, out_dir: str | Path, *, method: str = "dsir",
                     buckets: int = 4, keep: float | None = None, text_field: str = "text", target_text_field: str | None = None,
                     proxy: ProxyConfig | None = None, tokenizer: str = "bytes", seed: int = 0, n_buckets_hash: int | None = None,
                     max_documents: int | None = None, cache: ScoreCache | None = None,
                     progress: Progress | None = None, char_ngrams: bool = True) -> SelectResult:
    """Score ``pools`` (``{name: path}``) against the documents at ``target`` and write the selection to ``out_dir``.

    ``keep`` (a share of all pools' tokens, in (0, 1]) also writes the kept
    documents: a Gumbel top-k sample by importance weight for ``dsir``, the
    top documents by score for the other methods. ``n_buckets_hash``: hash
    buckets of ``dsir`` / ``classifier`` (default: each one's own, 10,000 / 65,536). ``char_ngrams``: the
    classifier's character n-gram features (off: words only, about a quarter of the memory and time on large pools).
    """
    if method not in METHODS:
        raise ConfigError(f"--method must be one of {list(METHODS)}. Got '{method}'.")
    if not isinstance(buckets, int) or buckets < 1:
        raise ConfigError(f"--buckets must be a whole number >= 1. Got {buckets}. Use e.g. --buckets 4.")
    if keep is not None and not 0 < keep <= 1:
        raise ConfigError(f"--keep is a share of the pools' tokens in (0, 1]. Got {keep}. Use e.g. --keep 0.1.")
    if not pools:
        raise ConfigError("select needs at least one --pool NAME=PATH.")
    proxy = proxy or ProxyConfig()
    tok = Tokenizer(tokenizer)
    specs = {f"--pool {n}": _with_max(source_spec(n, p, option="--pool", text_field=text_field), max_documents)
             for n, p in pools.items()}
    specs["--target"] = _with_max(source_spec("target", target, option="--target", text_field=target_text_field or text_field),
                                  max_documents)
    check_out(Path(out_dir), specs, output_names(pools, buckets, keep is not None))  # before any work
    sources = [read_source(spec, option="--pool") for what, spec in specs.items() if what != "--target"]
    tgt = read_source(specs["--target"], option="--target")
    for s in sources:
        if buckets > int(s.has_text.sum()):
            raise ConfigError(f"--buckets must be between 1 and the number of documents of each pool; pool '{s.name}' has "
                              f"{int(s.has_text.sum())}. Got {buckets}. Lower --buckets.")
    result_warnings, overlaps = [], {}
    for s in sources:
        n_over = overlap(tgt, s)
        if n_over:
            overlaps[s.name] = n_over
            msg = (f"{n_over} of {int(tgt.has_text.sum())} target documents also occur in pool '{s.name}' "
                   f"({100 * n_over / max(int(tgt.has_text.sum()), 1):.1f}%); their scores are inflated. Hold them out of the pool.")
            result_warnings.append(msg)
            warnings.warn(msg, stacklevel=2)
    field_name = score_field(sources)
    if field_name != SCORE_FIELD:
        msg = (f"records of the pools already have a '{SCORE_FIELD}' field, which is kept as it is; the scores are written "
               f"as '{field_name}' (selection.json: score_field)")
        result_warnings.append(msg)
        warnings.warn(msg, stacklevel=2)

    settings = {"method": method, "seed": seed, "tokenizer": tok.identity, "max_documents": max_documents,
                "hash_buckets": _hash_buckets(method, n_buckets_hash),
                **({"char_buckets": TargetClassifier().char_buckets if char_ngrams else 0} if method == "classifier" else {}),
                "proxy": proxy.model_dump(exclude={"threads"}) if method not in HASHED else None}
    keys = [(s.name, s.key) for s in sources] + [("target", tgt.key)]
    key = score_key(settings, keys)  # the scores
    full_key = score_key({**settings, "buckets": buckets, "keep": keep, "text_field": text_field,
                          **({"score_field": field_name} if field_name != SCORE_FIELD else {})},
                         keys)  # the output files (the default field leaves the key of selections written before it)
    manifest = {"key": full_key, "method": method, "target": _stored_path(target),
                "pools": {n: _stored_path(p) for n, p in pools.items()}, "buckets": buckets, "keep": keep,
                "score_field": field_name, "text_field": text_field, "target_text_field": target_text_field or text_field,
                "settings": settings, "n_docs": {s.name: len(s.rows) for s in sources}, "overlap": overlaps}
    out_dir = Path(out_dir)
    n_docs = {s.name: int(s.has_text.sum()) for s in sources}  # records with text: those scored (a warning counts the rest)
    if complete(out_dir, full_key):
        files = {f"{s.name}.scored": out_dir / f"{s.name}.scored.jsonl" for s in sources} | {"pools": out_dir / "pools.yaml"}
        return SelectResult(out_dir, files, full_key, True, True, n_docs, overlaps, result_warnings)

    cache = cache if cache is not None else ScoreCache()
    flat = cache.get(key)
    cached = flat is not None and flat.shape[0] == sum(len(s.rows) for s in sources)
    if not cached:
        flat = _score(method, sources, tgt, tok, proxy, seed, settings["hash_buckets"], progress,
                      char_buckets=settings.get("char_buckets", 0))
        cache.put(key, flat)
    scores, start = {}, 0
    for s in sources:
        sc = np.array(flat[start:start + len(s.rows)], dtype=np.float64)
        sc[~s.has_text] = np.nan
        scores[s.name] = sc
        start += len(s.rows)
    sizes = {s.name: np.array([tok.count(t) if t.strip() else 0 for t in s.texts], dtype=np.float64) for s in sources}
    bucket_idx = {s.name: bucket_of(scores[s.name], sizes[s.name], buckets) for s in sources}
    kept = None
    if keep is not None:
        all_scores = np.concatenate([scores[s.name] for s in sources])
        all_sizes = np.concatenate([sizes[s.name] for s in sources])
        budget = keep * float(all_sizes.sum())
        mask = gumbel_top_k(all_scores, all_sizes, budget, seed=seed) if method == "dsir" else top_by_budget(all_scores, all_sizes, budget)
        kept, start = {}, 0
        for s in sources:
            kept[s.name] = mask[start:start + len(s.rows)]
            start += len(s.rows)
    if progress:
        progress("write", 0, 1)
    files = write_selection(out_dir, sources, scores, bucket_idx, kept, manifest)
    if progress:
        progress("write", 1, 1)
    return SelectResult(out_dir, files, full_key, cached, False, n_docs, overlaps, result_warnings)


def _hash_buckets(method: str, asked: int | None) -> int | None:
    """Hash buckets of a method on hashed n-grams (``asked``, else the method's default); None for proxy methods."""
    if method not in HASHED:
        return None
    return asked or (DSIR if method == "dsir" else TargetClassifier)().n_buckets


def _stored_path(path: str) -> str:
    """A local path (file, folder or glob) made absolute, so that the manifest names the inputs wherever it is read
    from (`plan-pools --measure` takes its default target from it); a hub id as given."""
    return str(Path(path).expanduser().resolve()) if names_local_data(path) else path


def _with_max(spec, max_documents):
    return spec.model_copy(update={"max_documents": max_documents}) if max_documents else spec


def _score(method: str, sources: list[Source], tgt: Source, tok: Tokenizer, proxy: ProxyConfig, seed: int,
           n_buckets_hash: int | None, progress: Progress | None, *, char_buckets: int = 0) -> np.ndarray:
    """Scores of all pools' records, concatenated in pool order (records without text: 0 for dsir, NaN otherwise)."""
    texts = [t for s in sources for t in s.texts]
    target_texts = [t for t in tgt.texts if t.strip()]
    if method == "dsir":
        return DSIR(n_buckets=n_buckets_hash).fit_score(target_texts, texts, progress=hash_progress(progress, texts, target_texts))
    pool_texts = [t for t in texts if t.strip()]
    has = np.array([bool(t.strip()) for t in texts])
    if not pool_texts:
        raise DataError("The pools hold no non-empty documents. Check the files and --text-field.")
    if method == "classifier":
        dense = TargetClassifier(n_buckets_hash, random_state=seed, char_buckets=char_buckets).fit_score(target_texts, pool_texts,
                                                                                      progress=progress)
    elif method == "color-filter":
        dense = color_filter_scores(proxy, tok, target_texts, pool_texts, seed=seed, progress=progress)
    else:
        variant = "medium" if method == "perplexity-medium" else "target"
        dense = perplexity_scores(proxy, tok, target_texts, pool_texts, seed=seed, variant=variant, progress=progress)
    out = np.full(len(texts), np.nan)
    out[has] = dense
    return out
