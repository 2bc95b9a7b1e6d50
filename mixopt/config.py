"""Typed configs loaded from YAML. Cross-field checks live here, not in the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError, pydantic_summary


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DomainSpec(_Strict):
    """One named text source, read through Hugging Face ``datasets``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
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
    include: list[str] | None = None  # subset of embedded domains (None = all)
    domains: list[DomainSpec] = Field(default_factory=list)  # extra or replacement domains
    targets: list[DomainSpec] = Field(default_factory=list)  # named target sets, evaluated but never trained on
    tokenizer: str = "bytes"  # "bytes" or a path to a HF tokenizers `tokenizer.json`
    val_fraction: float = Field(default=0.05, gt=0, lt=0.5)  # share of documents held out by hash
    max_documents: int | None = Field(default=None, gt=0)  # per-domain cap, handy for tiny tests
    cache_dir: str | None = None  # token-shard cache; default ~/.cache/mixopt

    @model_validator(mode="after")
    def _names_unique(self) -> "DataConfig":
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
    tokens: int = Field(default=1_000_000, gt=0)  # training tokens per run
    lr: float = Field(default=3e-3, gt=0)  # peak AdamW learning rate
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)  # cosine floor as a share of lr
    schedule: Literal["constant", "cosine"] = "cosine"
    warmup_fraction: float = Field(default=0.05, ge=0, lt=1)  # share of steps spent warming up
    weight_decay: float = Field(default=0.1, ge=0)
    grad_clip: float = Field(default=1.0, ge=0)  # 0 disables clipping
    checkpoints: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0])  # fractions of `tokens` at which to evaluate
    eval_tokens: int = Field(default=16_384, gt=0)  # validation tokens per domain per checkpoint
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 on CUDA, or on CPUs where a probe finds it faster
    compile: bool = False  # torch.compile the model (GPU path)
    threads: int | None = Field(default=None, ge=1)  # CPU threads per run; None = all cores. Pin it for bit-identical results across machines/executors

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
        return self


class ProposeConfig(_Strict):
    """Search settings for `mixopt propose`."""

    budget_tokens: float | None = Field(default=None, gt=0)  # target training tokens; default 4x the proxy tokens
    target: str = "mean:all-domains"  # metric to minimise
    model: str = "default"  # surrogate name
    n_candidates: int = Field(default=1_000_000, gt=0)
    top_k: int = Field(default=100, gt=0)
    max_epochs: float = Field(default=4.0, gt=0)  # per-domain repetition cap at the target budget
    min_weights: dict[str, float] = Field(default_factory=dict)
    max_weights: dict[str, float] = Field(default_factory=dict)
    kl_weight: float = Field(default=0.0, ge=0)  # regularise towards the prior
    uncertainty_weight: float = Field(default=0.5, ge=0)  # minimise mean + this * std
    upsample: bool = True  # consider an end-of-training upsampling phase
    upsample_fraction_min: float = Field(default=0.05, gt=0, lt=1)  # search f in [min, max]
    upsample_fraction_max: float = Field(default=0.30, gt=0, lt=1)
    cooldown_switch: float | None = Field(default=None, gt=0, lt=1)  # use the Cooldown schedule instead: tau=5, then tau=1 from here
    pools: dict[str, "DomainPools"] = Field(default_factory=dict)  # quality pools per domain; the planner picks which to keep


class QualityPool(_Strict):
    """One quality bucket of a domain: a score range of `quality_field`, or its own file."""

    name: str = Field(min_length=1)
    b: float | None = Field(default=None, lt=0)  # utility (< 0); None = fitted from runs, else the prior
    tau: float | None = Field(default=None, gt=0)  # half-life in repetitions
    path: str | None = None  # a separate data file for this pool
    min_score: float | None = None  # documents with min_score <= quality_field < max_score
    max_score: float | None = None
    share: float | None = Field(default=None, gt=0, le=1)  # share of the domain's unique tokens, when not measurable


class DomainPools(_Strict):
    """Quality pools of one domain and the Goyal et al. law that values them."""

    objective: Literal["effective_utility", "effective_data"] = "effective_utility"
    a: float = Field(default=0.025, gt=0)
    d: float = Field(default=0.1, ge=0)
    tokens_per_sample: float | None = Field(default=None, gt=0)  # default: the domain's mean tokens per document
    pools: list[QualityPool] = Field(min_length=1)


class SweepConfig(_Strict):
    """Everything `mixopt sweep` and `mixopt demo` need."""

    name: str = "sweep"
    seed: int = 0
    runs: int = Field(default=16, ge=1)  # sampled mixtures (baselines come on top)
    workers: int = Field(default=1, ge=1)  # local worker processes
    data: DataConfig = Field(default_factory=DataConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    propose: ProposeConfig = Field(default_factory=ProposeConfig)


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep config; every problem becomes a one-line ConfigError."""
    from .io import read_yaml

    raw = read_yaml(path, what="Config file", missing_hint="Pass the path of a YAML config, e.g. configs/demo.yaml.")
    return config_from_dict(raw or {}, where=str(path))


def config_from_dict(raw: object, where: str = "config") -> SweepConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"Config {where} must be a YAML mapping at the top level. Got {type(raw).__name__}.")
    try:
        return SweepConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"Invalid config {where}: {pydantic_summary(exc)}. See configs/demo.yaml for a valid example.") from None


def packaged_config(name: str) -> Path:
    """A config shipped inside mixopt (``demo`` or ``tiny``); `configs/` links to these."""
    path = Path(__file__).parent / "configs" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"No packaged config named '{name}'; known: {known}. Pass a YAML path instead.")
    return path
