"""`mixopt select`: score every document of candidate pools against a target and cut them into quality pools."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console

from ..config import ProxyConfig, load_config, resolve_config
from ..errors import ConfigError, pydantic_summary
from .. import pipeline
from ..selection.output import earlier_pools
from ..selection.select import DEFAULT_VAL_FRACTION, METHODS
from .render import only_with, parse_pairs, progress_bars
from .main import app
from .outputs import check_output


MAX_PROXY_TOKENS = 1e15  # far beyond any scoring proxy; larger counts are typos (1e30 would train for ~1e26 steps)


@app.command("select")
def select_cmd(
    pool: list[str] = typer.Option(..., "--pool", help="NAME=PATH of a pool to score (JSONL/JSON/Parquet/text, a folder, a save_to_disk dir); repeat. NAME is the domain the buckets belong to."),
    target: str = typer.Option(..., "--target", help="PATH of documents that represent the target."),
    method: str = typer.Option("dsir", "--method", help=f"Scorer: {', '.join(METHODS)}."),
    out: Path = typer.Option(..., "--out", help="Output folder: NAME.scored.jsonl, NAME.q1..qK.jsonl, pools.yaml, selection.json. "
                           "Records keep their fields and get the score under `score`, or under `mixopt_score` when they already "
                           "have a `score` field (selection.json's score_field names it). Not a folder the pools or target are "
                           "read from, nor one holding a pool or target file, nor one where a file select did not write would be "
                           "replaced; an earlier selection's files there are replaced."),
    buckets: int = typer.Option(4, "--buckets", help="Score buckets per pool, equal token shares, best first."),
    keep: float | None = typer.Option(None, "--keep", help="Also write NAME.kept.jsonl: this share of all pools' tokens, validation documents aside (dsir: a Gumbel top-k sample)."),
    text_field: str = typer.Option("text", "--text-field", help="Field that holds the text in the pools (and the target)."),
    target_text_field: str | None = typer.Option(None, "--target-text-field", help="Text field of the target when it differs."),
    config: Path | None = typer.Option(None, "--config", help="Sweep config (a YAML path or a packaged name: demo, tiny) whose proxy section (and tokenizer) sets the scoring proxy, and whose data.val_fraction the held-out validation documents follow."),
    proxy_tokens: float | None = typer.Option(None, "--proxy-tokens", help="Training tokens of each scoring proxy (perplexity, color-filter): from one batch to 1e15."),
    max_docs: int | None = typer.Option(None, "--max-docs", min=1, help="Read at most this many records of each pool and of the target."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the proxies and of the --keep sample."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads of the scoring proxies (default: the config's, else all)."),
    char_ngrams: bool | None = typer.Option(None, "--char-ngrams/--no-char-ngrams", help="classifier: add character 3-5-gram features (more precise; ~36 bytes of memory per byte of pool text, ~8 without; default on)."),
    keep_validation: bool = typer.Option(False, "--keep-validation-docs", help="Put in the buckets (and --keep) the documents "
                                         "mixopt holds out for validation by hash (data.val_fraction of --config, else 0.05), "
                                         "which select leaves out by default so that a domain of this data never trains on its "
                                         "val/ split; for pools that are no domain's data."),
) -> None:
    """Score documents against a target (DSIR, a target classifier, perplexity, CoLoR-Filter) and write quality pools for `propose`."""
    only_with("--method classifier", method == "classifier", char_ngrams=char_ngrams is not None)
    proxied = ("perplexity", "perplexity-medium", "color-filter")
    only_with(f"a proxy-scoring --method ({', '.join(proxied)})", method in proxied or method not in METHODS,
              proxy_tokens=proxy_tokens is not None, threads=threads is not None)
    pools = parse_pairs(pool, "--pool", "PATH")
    check_output(out, "--out", folder=True)
    other = sorted(set(earlier_pools(out)) - set(pools))
    if other:
        raise ConfigError(f"--out {out} holds an earlier selection of {', '.join(other)}, which this one (pools "
                          f"{', '.join(pools)}) would replace and delete. Write to another --out folder, or select those "
                          "pools again with these (--pool for each), or remove the folder first.")
    cfg = load_config(resolve_config(config)) if config is not None else None
    proxy = cfg.proxy if cfg is not None else ProxyConfig()
    if proxy_tokens is not None:
        step = proxy.batch_size * proxy.block_size
        if not (math.isfinite(proxy_tokens) and step <= proxy_tokens <= MAX_PROXY_TOKENS):
            raise ConfigError(f"--proxy-tokens must be a finite token count from one batch ({step} tokens) to "
                              f"{MAX_PROXY_TOKENS:.0e}. Got {proxy_tokens:g}. Pass e.g. --proxy-tokens 1e6.")
        try:  # validated like the config's proxy section
            proxy = ProxyConfig.model_validate({**proxy.model_dump(), "tokens": int(proxy_tokens)})
        except ValidationError as exc:
            raise ConfigError(f"--proxy-tokens {proxy_tokens:g}: {pydantic_summary(exc)}. Pass another count.") from None
    if threads is not None:
        proxy = proxy.model_copy(update={"threads": threads})
    console = Console(stderr=True)
    with progress_bars(console) as progress:
        result = pipeline.select(pools, target, out, method=method, buckets=buckets, keep=keep, text_field=text_field,
                                  target_text_field=target_text_field, proxy=proxy,
                                  tokenizer=cfg.data.tokenizer if cfg is not None else "bytes",
                                  seed=seed, max_documents=max_docs, progress=progress,
                                  char_ngrams=True if char_ngrams is None else char_ngrams,
                                  val_fraction=None if keep_validation else (cfg.data.val_fraction if cfg is not None
                                                                              else DEFAULT_VAL_FRACTION))
    # result.warnings were warned by the library: `mixopt` prints each once, one line (cli.main.warning_line)
    how = "unchanged, already written" if result.skipped else ("scores from cache" if result.cached else "scored")
    docs = ", ".join(f"{n} {c}" for n, c in result.n_docs.items())
    typer.echo(f"{method}: {docs} documents ({how}). Pools for propose -> {Path(out) / 'pools.yaml'}")
    held = sum(result.held_out.values())
    if held:
        per = ", ".join(f"{n} {c}" for n, c in result.held_out.items() if c)
        typer.echo(f"note: left out of the buckets{' and --keep' if keep is not None else ''}: {per} document(s) mixopt holds "
                   f"out for validation (hash, val_fraction {result.val_fraction:g}), so a domain of this data never trains "
                   "on its val/ split; they keep their score in NAME.scored.jsonl (--keep-validation-docs puts them back)",
                   err=True)
