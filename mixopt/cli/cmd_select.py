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
from ..selection.select import METHODS
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
    keep: float | None = typer.Option(None, "--keep", help="Also write NAME.kept.jsonl: this share of all pools' tokens (dsir: a Gumbel top-k sample)."),
    text_field: str = typer.Option("text", "--text-field", help="Field that holds the text in the pools (and the target)."),
    target_text_field: str | None = typer.Option(None, "--target-text-field", help="Text field of the target when it differs."),
    config: Path | None = typer.Option(None, "--config", help="Sweep config (a YAML path or a packaged name: demo, tiny) whose proxy section (and tokenizer) sets the scoring proxy."),
    proxy_tokens: float | None = typer.Option(None, "--proxy-tokens", help="Training tokens of each scoring proxy (perplexity, color-filter): from one batch to 1e15."),
    max_docs: int | None = typer.Option(None, "--max-docs", min=1, help="Read at most this many records of each pool and of the target."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the proxies and of the --keep sample."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads of the scoring proxies (default: the config's, else all)."),
    char_ngrams: bool | None = typer.Option(None, "--char-ngrams/--no-char-ngrams", help="classifier: add character 3-5-gram features (more precise; ~36 bytes of memory per byte of pool text, ~8 without; default on)."),
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
                                  char_ngrams=True if char_ngrams is None else char_ngrams)
    # result.warnings were warned by the library: `mixopt` prints each once, one line (cli.main.warning_line)
    how = "unchanged, already written" if result.skipped else ("scores from cache" if result.cached else "scored")
    docs = ", ".join(f"{n} {c}" for n, c in result.n_docs.items())
    typer.echo(f"{method}: {docs} documents ({how}). Pools for propose -> {Path(out) / 'pools.yaml'}")
