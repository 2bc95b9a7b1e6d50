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
import torch

from ..config import DataConfig, ProxyConfig
from ..data.domains import MIN_VAL_TOKENS, validation_mask
from ..data.sources import names_local_data
from ..data.tokenize import Tokenizer
from ..errors import ConfigError, DataError
from ..proxy.device import resolved_dtype
from .cache import ScoreCache, score_key
from .classifier import TargetClassifier
from .color_filter import color_filter_scores
from .dsir import DSIR, gumbel_top_k, top_by_budget
from .ngrams import hash_progress
from .output import SCORE_FIELD, bucket_of, check_out, complete, output_names, score_field, write_selection
from .perplexity import perplexity_scores
from .overlap import overlap_lines
from .read import Source, read_source, source_spec, text_keys

METHODS = ("dsir", "classifier", "perplexity", "perplexity-medium", "color-filter")
HASHED = ("dsir", "classifier")  # methods on hashed n-grams (no proxy)
#: A target under this many tokens (the size under which mixopt calls a domain's validation split too small to rank
#: mixtures, ``data.domains.MIN_VAL_TOKENS``) or documents gives scores that say little about what the target is like:
#: DSIR's n-gram distribution and the classifier's positive class are then a few sentences. select warns below either.
MIN_TARGET_TOKENS = MIN_VAL_TOKENS
MIN_TARGET_DOCS = 10
DEFAULT_VAL_FRACTION = DataConfig().val_fraction
#: ``--method classifier`` on more pool documents than this (all pools together) without ``--max-docs`` warns first: its
#: fits hold about 54 bytes of memory per byte of text and their time grows faster than the pool (the scale review of
#: stop 40: 10k documents 17.5 s / 1.9 GiB, 100k documents 245 s / 13.9 GiB, with the default character n-grams).
CLASSIFIER_WARN_DOCS = 20_000
CLASSIFIER_BYTES_PER_TEXT_BYTE = 54  # the review's measured peak memory per byte of pool text
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
    held_out: dict[str, int] = field(default_factory=dict)  # pool -> documents left out of its buckets: validation by hash
    val_fraction: float | None = DEFAULT_VAL_FRACTION  # the hash split they were held out by (None: none held out)


def select_documents(pools: Mapping[str, str], target: str, out_dir: str | Path, *, method: str = "dsir",
                     buckets: int = 4, keep: float | None = None, text_field: str = "text", target_text_field: str | None = None,
                     proxy: ProxyConfig | None = None, tokenizer: str = "bytes", seed: int = 0, n_buckets_hash: int | None = None,
                     max_documents: int | None = None, cache: ScoreCache | None = None,
                     progress: Progress | None = None, char_ngrams: bool = True,
                     val_fraction: float | None = DEFAULT_VAL_FRACTION) -> SelectResult:
    """Score ``pools`` (``{name: path}``) against the documents at ``target`` and write the selection to ``out_dir``.

    ``keep`` (a share of all pools' tokens, in (0, 1]) also writes the kept
    documents: a Gumbel top-k sample by importance weight for ``dsir``, the
    top documents by score for the other methods. ``n_buckets_hash``: hash
    buckets of ``dsir`` / ``classifier`` (default: each one's own, 10,000 / 65,536). ``char_ngrams``: the
    classifier's character n-gram features (off: words only, about a quarter of the memory and time on large pools).

    ``val_fraction``: the documents :func:`~mixopt.data.domains.is_validation` holds out at this fraction (a config's
    ``data.val_fraction``) are scored but left out of the buckets and the ``keep`` sample. A domain whose data is
    the pool holds exactly these out as its validation split (``val/NAME``, the hash depends on the text alone), so
    training on the buckets never trains on it. ``None`` keeps them (a pool that is no domain's data).
    """
    if method not in METHODS:
        raise ConfigError(f"--method must be one of {list(METHODS)}. Got '{method}'.")
    if not isinstance(buckets, int) or buckets < 1:
        raise ConfigError(f"--buckets must be a whole number >= 1. Got {buckets}. Use e.g. --buckets 4.")
    if keep is not None and not 0 < keep <= 1:
        raise ConfigError(f"--keep is a share of the pools' tokens in (0, 1]. Got {keep}. Use e.g. --keep 0.1.")
    if not pools:
        raise ConfigError("select needs at least one --pool NAME=PATH.")
    if val_fraction is not None and not 0 < val_fraction < 0.5:
        raise ConfigError(f"val_fraction is the share of documents held out by hash, in (0, 0.5). Got {val_fraction}. "
                          "Set data.val_fraction in the --config.")
    proxy = proxy or ProxyConfig()
    tok = Tokenizer(tokenizer)
    specs = {f"--pool {n}": _with_max(source_spec(n, p, option="--pool", text_field=text_field), max_documents)
             for n, p in pools.items()}
    specs["--target"] = _with_max(source_spec("target", target, option="--target", text_field=target_text_field or text_field),
                                  max_documents)
    check_out(Path(out_dir), specs, output_names(pools, buckets, keep is not None))  # before any work
    sources = [read_source(spec, option="--pool") for what, spec in specs.items() if what != "--target"]
    tgt = read_source(specs["--target"], option="--target", field_option="--target-text-field")
    held = {s.name: _held_out(s.texts, val_fraction) for s in sources}  # scored, in no bucket: a domain of this data holds them out
    for s in sources:
        n_in = int((s.has_text & ~held[s.name]).sum())
        if buckets > n_in:
            said = f" besides the {int(held[s.name].sum())} held out for validation" if held[s.name].any() else ""
            raise ConfigError(f"--buckets must be between 1 and the number of documents of each pool; pool '{s.name}' has "
                              f"{n_in}{said}. Got {buckets}. Lower --buckets.")
    result_warnings: list[str] = []

    def warn(msg: str) -> None:
        result_warnings.append(msg)
        warnings.warn(msg, stacklevel=3)

    warn_small_target(tgt, tok, warn)
    overlaps, lines = overlap_lines({s.name: text_keys(s.texts) for s in sources}, text_keys(tgt.texts, unique=False),
                                    shared_effect="their buckets (and a --keep sample) hold each twice, and a plan trains "
                                    "them under both domains. Keep each document in one pool's file.")
    for line in lines:
        warn(line)
    field_name = score_field(sources)
    if field_name != SCORE_FIELD:
        msg = (f"records of the pools already have a '{SCORE_FIELD}' field, which is kept as it is; the scores are written "
               f"as '{field_name}' (selection.json: score_field)")
        result_warnings.append(msg)
        warnings.warn(msg, stacklevel=2)

    settings = {"method": method, "seed": seed, "tokenizer": tok.identity, "max_documents": max_documents,
                "hash_buckets": _hash_buckets(method, n_buckets_hash),
                **({"char_buckets": TargetClassifier().char_buckets if char_ngrams else 0} if method == "classifier" else {}),
                "proxy": proxy.model_dump(exclude={"threads"}) if method not in HASHED else None,
                **(scoring_execution(proxy, tok.vocab_size) if method not in HASHED else {})}
    keys = [(s.name, s.key) for s in sources] + [("target", tgt.key)]
    key = score_key(settings, keys)  # the scores
    held_any = any(h.any() for h in held.values())
    full_key = score_key({**settings, "buckets": buckets, "keep": keep, "text_field": text_field,
                          **({"score_field": field_name} if field_name != SCORE_FIELD else {}),
                          **({"val_fraction": val_fraction} if held_any else {})},
                         keys)  # the output files (the default field, and no document held out, leave the key of
    # selections written before them: their files are the same; one that held validation documents out is written anew)
    manifest = {"key": full_key, "method": method, "target": _stored_path(target),
                "pools": {n: _stored_path(p) for n, p in pools.items()}, "buckets": buckets, "keep": keep,
                "score_field": field_name, "text_field": text_field, "target_text_field": target_text_field or text_field,
                "settings": settings, "n_docs": {s.name: len(s.rows) for s in sources}, "overlap": overlaps,
                "val_fraction": val_fraction, "held_out": {s.name: int(held[s.name].sum()) for s in sources}}
    out_dir = Path(out_dir)
    n_docs = {s.name: int(s.has_text.sum()) for s in sources}  # records with text: those scored (a warning counts the rest)
    held_out = {s.name: int(held[s.name].sum()) for s in sources}
    if complete(out_dir, full_key):
        files = {f"{s.name}.scored": out_dir / f"{s.name}.scored.jsonl" for s in sources} | {"pools": out_dir / "pools.yaml"}
        return SelectResult(out_dir, files, full_key, True, True, n_docs, overlaps, result_warnings, held_out, val_fraction)

    cache = cache if cache is not None else ScoreCache()
    flat = cache.get(key)
    cached = flat is not None and flat.shape[0] == sum(len(s.rows) for s in sources)
    if not cached:
        if method == "classifier" and max_documents is None:
            if line := classifier_size_line(sources):
                warn(line)
        scorer = proxy if method in HASHED else proxy.model_copy(update={"dtype": settings["dtype"]})  # as keyed
        flat = _score(method, sources, tgt, tok, scorer, seed, settings["hash_buckets"], progress,
                      char_buckets=settings.get("char_buckets", 0))
        cache.put(key, flat)
    scores, start = {}, 0
    for s in sources:
        sc = np.array(flat[start:start + len(s.rows)], dtype=np.float64)
        sc[~s.has_text] = np.nan
        scores[s.name] = sc
        start += len(s.rows)
    sizes = {s.name: np.array([tok.count(t) if t.strip() and not h else 0 for t, h in zip(s.texts, held[s.name])],
                              dtype=np.float64) for s in sources}  # held-out documents: in no bucket, nor the --keep budget
    trainable = {s.name: np.where(held[s.name], np.nan, scores[s.name]) for s in sources}
    bucket_idx = {s.name: bucket_of(trainable[s.name], sizes[s.name], buckets) for s in sources}
    kept = None
    if keep is not None:
        all_scores = np.concatenate([trainable[s.name] for s in sources])
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
    return SelectResult(out_dir, files, full_key, cached, False, n_docs, overlaps, result_warnings, held_out, val_fraction)


def classifier_size_line(sources: list[Source]) -> str | None:
    """The one-line warning for ``--method classifier`` on more than :data:`CLASSIFIER_WARN_DOCS` pool documents
    (all pools together): the pool's size, the measured cost, and ``--max-docs N``; None for a smaller pool."""
    n = sum(int(s.has_text.sum()) for s in sources)
    if n <= CLASSIFIER_WARN_DOCS:
        return None
    size = sum(len(t.encode("utf-8")) for s in sources for t in s.texts)
    need = size * CLASSIFIER_BYTES_PER_TEXT_BYTE / 2**30
    return (f"--method classifier on {n:,} pool documents ({size / 1e6:,.1f} MB of text) without --max-docs: its fits "
            f"need about {CLASSIFIER_BYTES_PER_TEXT_BYTE} bytes of memory per byte of text (about {need:,.1f} GiB here) "
            "and their time grows faster than the pool (100,000 documents took 245 s and 13.9 GiB in the scale review). "
            f"Pass --max-docs N (e.g. --max-docs {CLASSIFIER_WARN_DOCS}) to read at most N records of each pool.")


def warn_small_target(tgt: Source, tok: Tokenizer, warn: Callable[[str], None]) -> None:
    """Warn (one line) when the target is under ``MIN_TARGET_TOKENS`` tokens or ``MIN_TARGET_DOCS`` documents."""
    n_docs = int(tgt.has_text.sum())
    n_tokens = sum(tok.count(t) for t in tgt.texts if t.strip())
    if n_tokens < MIN_TARGET_TOKENS or n_docs < MIN_TARGET_DOCS:
        warn(f"the target holds {n_docs} document(s) and {n_tokens:,} tokens, fewer than select needs to learn what its text "
             f"is like ({MIN_TARGET_DOCS} documents and {MIN_TARGET_TOKENS:,} tokens, as for a domain's validation split): the "
             "scores then rank by a few sentences' words, not by the target's kind of text. Give more target documents.")


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


def scoring_execution(proxy: ProxyConfig, vocab_size: int) -> dict:
    """``{"threads": n, "dtype": name}``: the CPU threads the scoring proxies run on (``proxy.threads``, else all of
    torch's) and the dtype they train in (``proxy.dtype``, ``auto`` resolved here); both change the scores' floats, so
    both enter the score cache's key and selection.json's settings."""
    threads = proxy.threads or torch.get_num_threads()
    return {"threads": threads, "dtype": resolved_dtype(proxy, vocab_size=vocab_size, threads=threads)}


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


def _held_out(texts: list[str], val_fraction: float | None) -> np.ndarray:
    """Per record: whether a domain whose data is these records holds it out for validation (None: none held out)."""
    held = np.zeros(len(texts), dtype=bool)
    if val_fraction is not None:
        idx = [i for i, t in enumerate(texts) if t.strip()]
        held[idx] = validation_mask([texts[i] for i in idx], val_fraction)
    return held
