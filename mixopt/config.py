"""Typed configs loaded from YAML. Cross-field checks live here, not in the CLI."""

from __future__ import annotations

import json
import math
import types
import warnings
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, pydantic_summary
from .io import read_yaml, shown_path


#: domain and size names: letters, digits, _ . - (they become file names, metric names and trainer keys)
NAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"


class _Strict(BaseModel):
    # allow_inf_nan=False: every float field rejects .inf and .nan (e.g. `lr: .inf`) as "Input should be a finite number"
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers(cls, value, info):
        """Every int and float field (also inside lists and dicts): a boolean is refused (YAML reads true, yes, on as
        one), and an int field takes an integral number however it is written (4e5, 4.0e5, "4e5"; YAML 1.1 reads 4e5
        as a string)."""
        field = cls.model_fields.get(info.field_name)
        return value if field is None else _as_numbers(value, field.annotation)


def _as_numbers(value, kind):
    """``value`` with the int and float parts of the type ``kind`` checked: see ``_Strict._numbers``."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        return _as_numbers(value, options[0]) if value is not None and len(options) == 1 else value
    if origin is list and isinstance(value, list) and get_args(kind):
        return [_as_numbers(v, get_args(kind)[0]) for v in value]
    if origin is dict and isinstance(value, dict) and len(get_args(kind)) == 2:
        return {k: _as_numbers(v, get_args(kind)[1]) for k, v in value.items()}
    if kind in (int, float) and isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {str(value).lower()} (YAML reads true/false, yes/no and "
                         "on/off as booleans); write a number")
    if kind is int and isinstance(value, (float, str)) and not isinstance(value, bool):
        return integral(value)
    return value


def integral(value):
    """An int for an integral number in any spelling (400000, 4e5, 4.0e5, "4e5"); a ValueError naming the fix for a
    fraction or an infinite value; anything that is no number is returned as is (pydantic then says so)."""
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    try:
        x = float(value)
    except (TypeError, ValueError):
        return value
    shown = value.strip() if isinstance(value, str) else repr(value)  # as the user wrote it: YAML 1.1 reads 4e5 as a string
    if not math.isfinite(x):
        raise ValueError(f"expected a whole number, got {shown}, which is not finite; write a whole number such as 400000 or 4e5")
    if x != int(x):
        raise ValueError(f"expected a whole number, got {shown}, which has a fractional part; write a whole number "
                         "such as 400000 or 4e5")
    return int(x)


class DomainSpec(_Strict):
    """One named text source, read through Hugging Face ``datasets``."""

    name: str = Field(min_length=1, pattern=NAME_PATTERN)
    path: str  # local file, directory, glob, saved dataset, or hub id
    format: Literal["auto", "jsonl", "json", "parquet", "text", "disk", "hub"] = "auto"
    text_field: str = "text"
    split: str = "train"
    hub_config: str | None = None  # the `name` argument of load_dataset for hub datasets
    max_documents: int | None = Field(default=None, gt=0)  # read at most this many documents
    quality_field: str | None = None  # numeric column used to split the domain into quality pools


class DataConfig(_Strict):
    """Which domains to train on and how to tokenize them."""

    corpus: Literal["embedded", "none"] = "embedded"  # start from the corpus shipped with mixopt
    include: list[str] | None = None  # subset of embedded domains (None = all); each named once
    domains: list[DomainSpec] = Field(default_factory=list)  # extra or replacement domains
    targets: list[DomainSpec] = Field(default_factory=list)  # named target sets, evaluated but never trained on
    tokenizer: str = "bytes"  # "bytes" or a path to a HF tokenizers `tokenizer.json`
    val_fraction: float = Field(default=0.05, gt=0, lt=0.5)  # share of documents held out by hash
    max_documents: int | None = Field(default=None, gt=0)  # per-domain cap, handy for tiny tests
    cache_dir: str | None = None  # token shards only (probes and select use MIXOPT_CACHE); default MIXOPT_CACHE, else ~/.cache/mixopt

    @model_validator(mode="after")
    def _names_unique(self) -> "DataConfig":
        twice = sorted({n for n in self.include or [] if self.include.count(n) > 1})
        if twice:
            raise ValueError(f"include names {twice} more than once; list each domain once")
        names = [d.name for d in self.domains] + [t.name for t in self.targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"domain/target names must be unique, repeated: {dupes}")
        if self.corpus == "none" and not self.domains:
            raise ValueError("corpus is 'none' but no domains are listed; list domains or use corpus: embedded")
        return self


class ProxyConfig(_Strict):
    """A tiny nanoGPT-style proxy and how long to train it."""

    n_layer: int = Field(default=2, ge=1)  # transformer blocks
    n_embd: int = Field(default=64, ge=8)  # model width
    head_size: int = Field(default=64, ge=8)  # n_head = n_embd // head_size
    block_size: int = Field(default=128, ge=8)  # context length in tokens
    batch_size: int = Field(default=16, ge=1)  # sequences per step
    tokens: int = Field(default=1_000_000, gt=0)  # training tokens per run, rounded down to whole batches of batch_size x block_size
    lr: float = Field(default=3e-3, gt=0)  # peak AdamW learning rate
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)  # cosine/wsd: the floor as a share of lr (constant: none; leave it unset)
    schedule: Literal["constant", "cosine", "wsd"] = "cosine"  # wsd: warmup-stable-decay, with a decay branch at each checkpoint
    decay_fraction: float = Field(default=0.2, gt=0, le=1)  # wsd only (other schedules: leave it unset): share of each budget's steps spent decaying to min_lr_ratio * lr
    warmup_fraction: float = Field(default=0.05, ge=0, lt=1)  # share of steps spent warming up
    weight_decay: float = Field(default=0.1, ge=0)
    grad_clip: float = Field(default=1.0, ge=0)  # 0 disables clipping
    checkpoints: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0])  # fractions of `tokens` at which to evaluate
    # validation tokens per domain per checkpoint, in whole windows of block_size: at least one window, at most what the
    # domain's validation split holds (a sweep warns when a split holds under half of it: raise data.val_fraction)
    eval_tokens: int = Field(default=16_384, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 on CUDA, or on CPUs where a probe finds it faster
    compile: bool = False  # torch.compile the model (GPU path)
    cuda_graphs: bool = True  # CUDA only: replay each training step (forward, backward, clipping, AdamW) from one captured CUDA graph (1.62x on the default shape, H200)
    threads: int | None = Field(default=None, ge=1)  # CPU threads per run; None = 1 thread per run, parallelism from worker processes

    @model_validator(mode="after")
    def _checks(self) -> "ProxyConfig":
        if self.n_embd % self.head_size:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of head_size ({self.head_size})")
        if not self.checkpoints or any(not (0 < c <= 1) for c in self.checkpoints):
            raise ValueError(f"checkpoints must be fractions in (0, 1], got {self.checkpoints}")
        self.checkpoints = sorted(set(self.checkpoints) | {1.0})
        if self.tokens < self.batch_size * self.block_size:
            raise ValueError(f"tokens ({self.tokens}) must cover at least one batch ({self.batch_size}x{self.block_size})")
        return self

    def rounding_note(self) -> str | None:
        """A run trains whole batches, ``tokens // (batch_size * block_size)`` steps: a line when that leaves out more
        than 1% of ``tokens``, else None."""
        batch = self.batch_size * self.block_size
        trained = self.tokens // batch * batch
        if self.tokens - trained <= 0.01 * self.tokens:
            return None
        return (f"tokens {self.tokens:,} is rounded down to whole batches of batch_size x block_size ({self.batch_size}x"
                f"{self.block_size} = {batch:,} tokens): each run trains {trained:,}, {1 - trained / self.tokens:.1%} "
                f"fewer. Set tokens to a multiple of {batch:,}")

    def wsd_overlap(self) -> str | None:
        """WSD: what is wrong when the warm-up reaches into a decay, the run's or a decay branch's (``lr_at`` gives the
        warm-up priority, then drops onto the middle of the decay); None when nothing is. Checked where a sweep plans new
        runs (``runs.driver``), not when a config is read: a store swept so before stop 29 must stay readable. Steps as
        proxy/schedule.py counts them (``warmup_steps``, ``checkpoint_steps``, ``decay_steps``; that layer cannot be
        imported here; tests/test_proxy.py holds the two to each other)."""
        if self.schedule != "wsd":
            return None
        if self.warmup_fraction + self.decay_fraction > 1:
            return (f"schedule wsd needs warmup_fraction + decay_fraction <= 1, so the warm-up ends before the decay "
                    f"starts; got {self.warmup_fraction} + {self.decay_fraction} = "
                    f"{self.warmup_fraction + self.decay_fraction:g}. Lower one of them")
        steps = self.tokens // (self.batch_size * self.block_size)
        warmup = int(self.warmup_fraction * steps)
        for c in self.checkpoints[:-1]:  # each one's decay branch
            budget = min(steps, max(1, round(c * steps)))
            start = budget - min(budget, round(self.decay_fraction * budget))
            if start < min(budget, warmup):
                return (f"schedule wsd: the decay branch to checkpoint {c} decays from step {start}, inside the "
                        f"{warmup}-step warm-up (warmup_fraction {self.warmup_fraction}). Lower warmup_fraction or "
                        f"decay_fraction, or drop checkpoint {c}")
        return None


class SamplerConfig(_Strict):
    """How sweep mixtures are drawn (RegMix's procedure by default)."""

    method: Literal["dirichlet", "uniform"] = "dirichlet"
    temperature: float = Field(default=0.5, gt=0)  # prior = token share ** temperature
    strength_min: float = Field(default=0.1, gt=0)
    strength_max: float = Field(default=5.0, gt=0)
    max_epochs: float = Field(default=15.0, gt=0)  # reject draws repeating a domain more than this
    min_weight: float = Field(default=2e-4, ge=0, lt=1)  # zero smaller weights
    baselines: list[Literal["natural", "uniform"]] = Field(default_factory=lambda: ["natural", "uniform"])
    two_phase_runs: int = Field(default=0, ge=0)  # extra runs that switch to an upsampled mixture q for the last f of tokens
    upsample_fraction_min: float = Field(default=0.05, gt=0, lt=1)  # f is drawn from [min, max]
    upsample_fraction_max: float = Field(default=0.30, gt=0, lt=1)
    noise_seeds: int = Field(default=3, ge=1)  # train the anchors (baselines + noise_mixtures sampled ones) with this many seeds
    noise_mixtures: int = Field(default=1, ge=0)  # sampled mixtures repeated over noise_seeds to measure seed noise

    @model_validator(mode="after")
    def _range(self) -> "SamplerConfig":
        if self.strength_max < self.strength_min:
            raise ValueError("strength_max must be >= strength_min")
        _fraction_range(self)
        return self


def _fraction_range(cfg) -> None:
    if cfg.upsample_fraction_max < cfg.upsample_fraction_min:
        raise ValueError(f"upsample_fraction_max ({cfg.upsample_fraction_max}) must be >= upsample_fraction_min "
                         f"({cfg.upsample_fraction_min})")


class ProposeConfig(_Strict):
    """Search settings for `mixopt propose`."""

    budget_tokens: float | None = Field(default=None, gt=0)  # target training tokens; default 4x the proxy tokens
    target: str = "mean:all-domains"  # metric to minimise
    model: str = "default"  # surrogate name
    fit_budgets: bool = False  # fit every token budget the runs measured (WSD decay branches; `fit --budgets`): predict at budget_tokens
    n_candidates: int = Field(default=1_000_000, gt=0)
    top_k: int = Field(default=100, gt=0)
    max_epochs: float = Field(default=4.0, gt=0)  # per-domain repetition cap at the target budget
    min_weights: dict[str, float] = Field(default_factory=dict)
    max_weights: dict[str, float] = Field(default_factory=dict)
    kl_weight: float = Field(default=0.0, ge=0)  # regularise towards the prior
    uncertainty_weight: float = Field(default=0.5, ge=0)  # minimise mean + this * std
    # keep natural/uniform unless the search beats it beyond the noise band; on by default since it removed every
    # decisive loss against natural, uniform and regmix over 24 verified plans and kept as many wins (RESULTS.md)
    keep_baseline_within_noise: bool = True
    keep_best_run: bool = False  # with keep_baseline_within_noise: the best sweep run's mixture is a baseline too (measured worse)
    # raise the search's predicted value by its optimism, measured by cross-fitting halves of the runs (one-scale fits;
    # claimed gains were 1.5-2x what plans trained to: RESULTS.md "The optimizer's curse")
    curse_correction: bool = True
    upsample: bool = True  # consider an end-of-training upsampling phase
    upsample_fraction_min: float = Field(default=0.05, gt=0, lt=1)  # search f in [min, max]
    upsample_fraction_max: float = Field(default=0.30, gt=0, lt=1)
    cooldown_switch: float | None = Field(default=None, gt=0, lt=1)  # use the Cooldown schedule instead: tau=5, then tau=1 from here
    pools: dict[str, "DomainPools"] = Field(default_factory=dict)  # quality pools per domain; the planner picks which to keep

    @model_validator(mode="after")
    def _fractions(self) -> "ProposeConfig":
        _fraction_range(self)
        if self.cooldown_switch is not None and (self.min_weights or self.max_weights):
            raise ValueError("cooldown_switch plans the Cooldown schedule from token counts, which takes no min_weights or "
                             "max_weights; drop the bounds or cooldown_switch")
        return self


class QualityPool(_Strict):
    """One quality pool of a domain: its own file, a score range of `quality_field`, or a share of the domain.

    With the domain's ``pool_size`` set (equal-size pools, as in ``mixopt plan-pools``) no size source is needed.
    """

    name: str = Field(min_length=1)
    b: float | None = Field(default=None, lt=0, allow_inf_nan=False)  # utility (< 0); None = fitted from runs, else the prior
    tau: float | None = Field(default=None, gt=0, allow_inf_nan=False)  # half-life in repetitions
    path: str | None = None  # a separate data file for this pool
    text_field: str | None = Field(default=None, min_length=1)  # the text column of `path` (default: the domain's text_field)
    min_score: float | None = None  # documents with min_score <= quality_field < max_score
    max_score: float | None = None
    share: float | None = Field(default=None, gt=0, le=1)  # share of the domain's unique tokens, when not measurable

    @property
    def is_bucket(self) -> bool:
        return self.min_score is not None or self.max_score is not None

    @property
    def size_sources(self) -> list[str]:
        return [s for s, on in (("path", self.path is not None), ("min_score/max_score", self.is_bucket),
                                ("share", self.share is not None)) if on]

    @model_validator(mode="after")
    def _range(self) -> "QualityPool":
        if self.min_score is not None and self.max_score is not None and not self.min_score < self.max_score:
            raise ValueError(f"pool '{self.name}' needs min_score < max_score, got [{self.min_score}, {self.max_score}); swap or fix them")
        if len(self.size_sources) > 1:
            raise ValueError(f"pool '{self.name}' sets {' and '.join(self.size_sources)}, so its size is ambiguous; keep exactly one")
        if self.text_field is not None and self.path is None:
            raise ValueError(f"pool '{self.name}' sets text_field, the text column of a pool file, but no path; "
                             "give its path or drop text_field (a bucket or share reads the domain's own text_field)")
        return self


class DomainPools(_Strict):
    """Quality pools of one domain and the Goyal et al. (2024) law that values them (one schema: `propose.pools`
    entries, `mixopt plan-pools` files and `mixopt select`'s pools.yaml)."""

    objective: Literal["effective_utility", "effective_data"] = "effective_utility"
    a: float = Field(default=0.025, gt=0, allow_inf_nan=False)  # sample-count scale
    d: float = Field(default=0.1, ge=0, allow_inf_nan=False)  # irreducible error
    tokens_per_sample: float | None = Field(default=None, gt=0)  # default: the domain's mean tokens per document
    pool_size: float | None = Field(default=None, gt=0, allow_inf_nan=False)  # samples per pool, when all pools are equal
    normalizer: float | None = Field(default=None, gt=0, allow_inf_nan=False)  # samples scale of the law (None: the law's 1e5)
    pools: list[QualityPool] = Field(min_length=1)

    @model_validator(mode="after")
    def _pools(self) -> "DomainPools":
        names = [p.name for p in self.pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool names must be unique, got {dupes} more than once; rename them")
        if self.pool_size is None:
            unsized = [p.name for p in self.pools if not p.size_sources]
            if unsized:
                raise ValueError(f"pool '{unsized[0]}' has no size: set `path` (its own file), `min_score`/`max_score` (a bucket "
                                 "of the domain's quality_field) or `share` (of the domain's unique tokens), or `pool_size` for all")
        shares = sum(p.share for p in self.pools if p.share is not None)
        if shares > 1 + 1e-6:
            raise ValueError(f"the shares of the pools must sum to <= 1, got {shares:.4g}; lower them")
        buckets = [(p.name, -math.inf if p.min_score is None else p.min_score, math.inf if p.max_score is None else p.max_score)
                   for p in self.pools if p.is_bucket]
        by_lo = sorted(buckets, key=lambda t: (t[1], t[2]))
        for (n1, _, hi1), (n2, lo2, _) in zip(by_lo, by_lo[1:]):
            if hi1 > lo2:
                raise ValueError(f"score buckets '{n1}' and '{n2}' overlap ({n1} ends at {hi1}, {n2} starts at {lo2}); "
                                 "make them disjoint: min_score <= score < max_score")
        if buckets not in (by_lo, by_lo[::-1]):
            got = ", ".join(f"{n}=[{lo}, {hi})" for n, lo, hi in buckets)
            raise ValueError(f"score buckets must be listed best first, all by descending (or all by ascending) score, got {got}; reorder them")
        return self


def domain_pools_from_dict(raw: object, where: str) -> DomainPools:
    """Validate one domain's pools; every problem is a one-line ConfigError naming ``where``."""
    if isinstance(raw, DomainPools):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(f"Quality pools in {where} must be a YAML mapping with objective, a, d and pools. "
                          f"Got {type(raw).__name__}. See configs/pools_tmars.yaml.")
    try:
        return DomainPools.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"Invalid quality pools in {where}: {pydantic_summary(exc)}. Fix that field.") from None


class ProxySize(_Strict):
    """One proxy scale of a multi-scale sweep: overrides of ``proxy`` and how many runs it gets."""

    name: str | None = Field(default=None, min_length=1, pattern=NAME_PATTERN)  # label suffix; default s0, s1, ...
    runs: int | None = Field(default=None, ge=0)  # sampled mixtures at this scale (the first ones of the sweep's draw); None = `runs`
    two_phase_runs: int | None = Field(default=None, ge=0)  # None = sampler.two_phase_runs
    n_layer: int | None = Field(default=None, ge=1)
    n_embd: int | None = Field(default=None, ge=8)
    head_size: int | None = Field(default=None, ge=8)
    block_size: int | None = Field(default=None, ge=8)
    batch_size: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, gt=0)
    lr: float | None = Field(default=None, gt=0)
    eval_tokens: int | None = Field(default=None, gt=0)

    def overrides(self) -> dict:
        """The ProxyConfig fields this size sets."""
        return self.model_dump(exclude_none=True, exclude={"name", "runs", "two_phase_runs"})


class ReuseConfig(_Strict):
    """Reuse an earlier sweep after the domain set changed (mixopt.reuse): its runs, its plan's ratios, or both."""

    store: str | None = Field(default=None, min_length=1)  # run store of the earlier sweep: its runs join `fit` with the new domains at 0
    plan: str | None = Field(default=None, min_length=1)  # plan.yaml of an earlier `mixopt propose`: the sweep keeps its ratios
    recompute: list[str] = Field(default_factory=list)  # with plan: its domains whose data changed, drawn and searched freely again

    @model_validator(mode="after")
    def _something(self) -> "ReuseConfig":
        if self.store is None and self.plan is None:
            raise ValueError("reuse needs store (an earlier run store) and/or plan (an earlier plan.yaml)")
        if self.recompute and self.plan is None:
            raise ValueError("reuse.recompute names domains of reuse.plan; set plan or drop recompute")
        return self


class SweepConfig(_Strict):
    """Everything `mixopt sweep` and `mixopt demo` need."""

    name: str = "sweep"  # a label: one printable line, not empty
    seed: int = Field(default=0, ge=0, lt=2**63)  # numpy and torch take seeds >= 0 only; torch's < 2**64 (runs add offsets)
    runs: int = Field(default=16, ge=1)  # sampled mixtures (baselines come on top)
    # local worker processes; None: one per core when the pending runs are worth starting processes for, else 1
    # (runs.executors.choose_workers). An execution setting: never recorded in a store (EXECUTION_FIELDS)
    workers: int | None = Field(default=None, ge=1)
    data: DataConfig = Field(default_factory=DataConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    propose: ProposeConfig = Field(default_factory=ProposeConfig)
    sizes: list[ProxySize] = Field(default_factory=list)  # several proxy scales in one store; empty = `proxy` alone
    reuse: ReuseConfig | None = None  # after the domain set changed: keep an earlier plan's ratios (mixopt.reuse)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name.strip() or not name.isprintable():
            raise ValueError(f"name must be one printable line that is not blank, got {name!r}; e.g. name: my-sweep")
        return name

    @model_validator(mode="after")
    def _sizes(self) -> "SweepConfig":
        names = [s.name for s in self.sizes if s.name]
        if len(set(names)) < len(names):
            raise ValueError(f"sizes: names must be unique, got {names}")
        for i, size in enumerate(self.sizes):
            try:
                ProxyConfig.model_validate({**self.proxy.model_dump(), **size.overrides()})
            except ValidationError as exc:
                raise ValueError(f"sizes[{i}] gives an invalid proxy: {pydantic_summary(exc)}") from None
        return self


def load_config(path: str | Path, *, store: str | Path | None = None) -> SweepConfig:
    """Read and validate a sweep config; every problem becomes a one-line ConfigError. ``store``: the run store the
    command works on; a proxy setting that does nothing (:func:`idle_settings`) but that this store was swept with
    (an older mixopt let it through) is let be there, with a warning, so the store stays resumable (:func:`store_idle_note`)."""
    names = ", ".join(packaged_names())
    raw = read_yaml(path, what="Config file", missing_hint=f"Pass the path of a YAML config or a packaged config's name ({names}).",
                    empty_hint=f"Write a sweep config into it (see {example_config()}; `{{}}` alone keeps every default) "
                               "or pass another file.")
    return config_from_dict(raw, where=str(path), store=store)


def config_from_dict(raw: object, where: str = "config", *, stored: bool = False,
                     store: str | Path | None = None) -> SweepConfig:
    """A validated config; ``stored``: one a store.json recorded, read without :func:`idle_settings` (an older mixopt
    wrote such configs, and their stores must stay readable); ``store``: as :func:`load_config`'s."""
    if not isinstance(raw, dict):
        raise ConfigError(f"Config {where} must be a YAML mapping at the top level. Got {type(raw).__name__}.")
    try:
        cfg = SweepConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"Invalid config {where}: {pydantic_summary(exc)}. See {example_config()} for a valid example.") from None
    if not stored and (problem := idle_settings(cfg)):
        if (note := store_idle_note(cfg, store)) is None:
            raise ConfigError(f"Invalid config {where}: {problem}.")
        warnings.warn(note, stacklevel=3)
    return cfg


def idle_proxy_settings(proxy: ProxyConfig) -> dict[str, Any]:
    """The proxy settings that do nothing under its schedule (set off their defaults) and only change run ids."""
    defaults = ProxyConfig.model_fields
    out = {}
    if proxy.schedule != "wsd" and proxy.decay_fraction != defaults["decay_fraction"].default:
        out["decay_fraction"] = proxy.decay_fraction
    if proxy.schedule == "constant" and proxy.min_lr_ratio != defaults["min_lr_ratio"].default:
        out["min_lr_ratio"] = proxy.min_lr_ratio
    return out


def store_idle_note(cfg: SweepConfig, store: str | Path | None) -> str | None:
    """The warning for a config whose only idle settings (:func:`idle_settings`) are proxy ones the run store ``store``
    was swept with (its store.json's config: same schedule, same values; an older mixopt let them through), so its
    runs keep their ids and the store stays resumable; None (refuse) for any other config or store, a new one too."""
    idle = idle_proxy_settings(cfg.proxy)
    if store is None or not idle or idle_settings(cfg.model_copy(update={"proxy": cfg.proxy.model_copy(
            update={k: ProxyConfig.model_fields[k].default for k in idle})})):
        return None
    try:
        recorded = json.loads((Path(store) / "store.json").read_text())["config"]["proxy"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(recorded, dict) or recorded.get("schedule", "cosine") != cfg.proxy.schedule or \
            any(recorded.get(k) != v for k, v in idle.items()):
        return None
    shown = ", ".join(f"proxy.{k} {v}" for k, v in idle.items())
    return (f"the store {store} was swept with {shown}, which does nothing under schedule: {cfg.proxy.schedule}; kept "
            "for this store so its runs keep their ids (a new store refuses it: drop it there)")


def idle_settings(cfg: SweepConfig) -> str | None:
    """What a config sets that would do nothing with its other settings (so the user thinks it acts), with the fix;
    None when nothing. Checked where a config is read from the user, not from a store.json (``stored_config``)."""
    proxy, defaults = cfg.proxy, ProxyConfig.model_fields
    if proxy.schedule != "wsd" and proxy.decay_fraction != defaults["decay_fraction"].default:
        return (f"proxy.decay_fraction ({proxy.decay_fraction}) acts only with schedule: wsd, and does nothing under "
                f"schedule: {proxy.schedule} (it would only change the run ids); drop it, or set schedule: wsd")
    if proxy.schedule == "constant" and proxy.min_lr_ratio != defaults["min_lr_ratio"].default:
        return (f"proxy.min_lr_ratio ({proxy.min_lr_ratio}) is the floor of a decaying learning rate and does nothing "
                "under schedule: constant (it would only change the run ids); drop it, or set schedule: cosine or wsd")
    if cfg.propose.keep_best_run and not cfg.propose.keep_baseline_within_noise:
        return ("propose.keep_best_run acts only with keep_baseline_within_noise: true (it adds the best sweep run to "
                "that gate's baselines); set keep_baseline_within_noise: true or drop keep_best_run")
    return None


#: SweepConfig fields that say how a sweep runs on this machine, not what it trains or plans: a store.json does not
#: record them (``recorded_config``) and a config read back from one drops them (``stored_config``), so a command
#: without CONFIG or flags uses today's defaults, not an older sweep's (an older mixopt recorded ``workers: 1``)
EXECUTION_FIELDS = frozenset({"workers"})


def recorded_config(cfg: SweepConfig) -> dict:
    """The config as a store.json records it: ``model_dump(mode="json")`` without :data:`EXECUTION_FIELDS`."""
    return cfg.model_dump(mode="json", exclude=set(EXECUTION_FIELDS))


def without_execution_fields(raw: object) -> object:
    """A recorded config dict without :data:`EXECUTION_FIELDS` (anything else as is)."""
    return {k: v for k, v in raw.items() if k not in EXECUTION_FIELDS} if isinstance(raw, dict) else raw


def stored_config(raw: object, where: str) -> SweepConfig:
    """The config a store.json recorded, as a :class:`SweepConfig`; execution settings are left unset (an older store's
    ``workers: 1`` would otherwise pin a command run without CONFIG to one worker), and settings that do nothing
    (:func:`idle_settings`) are let be: the store was swept with them."""
    return config_from_dict(without_execution_fields(raw), where=where, stored=True)


def resolve_config(name_or_path: str | Path) -> Path:
    """A YAML path as given, or the packaged config of that name (``demo``, ``tiny``)."""
    p = Path(name_or_path)
    return p if p.suffix in (".yaml", ".yml") or p.exists() else packaged_config(str(name_or_path))


def packaged_config(name: str) -> Path:
    """A config shipped inside mixopt (``demo`` or ``tiny``); the repo's `configs/` holds copies (kept identical by a test)."""
    path = _PACKAGED / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"No config file or packaged config named '{name}'; packaged: {packaged_names()}. "
                          "Pass a YAML path or one of those names.")
    return path


_PACKAGED = Path(__file__).parent / "configs"


def packaged_names() -> list[str]:
    """Names of the configs shipped inside mixopt, which every command taking a CONFIG accepts (``resolve_config``)."""
    return sorted(p.stem for p in _PACKAGED.glob("*.yaml"))


def example_config() -> str:
    """Where error hints point for a valid config: the packaged demo.yaml (an installed mixopt has no `configs/` folder)."""
    return shown_path(_PACKAGED / "demo.yaml")
