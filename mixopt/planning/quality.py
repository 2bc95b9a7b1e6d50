"""Quality pools of a domain: how big each pool is and what it is worth (its law).

A domain may be split into quality pools (``propose.pools`` in the config). A
pool is its own file (``path``), a score bucket ``min_score <= s < max_score`` of
the domain's ``quality_field``, or a ``share`` of the domain's unique tokens.
`resolve_pools` sizes them (tokens, samples, documents) and gives each its law
``(b, tau)``; `mixopt.planning.pool_choice` decides which of them a plan keeps.

**Priors.** Pools without ``b``/``tau`` take Goyal et al.'s T-MARS values
(DataComp, `configs/pools_tmars.yaml`) by their position in the list, so list
pools best first: ``b = -0.16, -0.125, -0.10, -0.085`` and ``tau = 6.7273,
8.5455, 5.2727, 2.2727``; a fifth pool onward multiplies ``b`` by 0.85 per rank
(the last published ratio) and keeps ``tau = 2.2727`` (the worst pools lose value
fastest). These come from image-text training, so they give the shape of the
trade-off, not a measurement: pass ``observations`` (errors of proxies trained
on the pool at several repetition counts) to fit them with `fit_pool_decay`, or
measure them with `mixopt.planning.pool_value.measure_pool_values`, which trains
those proxies and returns :class:`MeasuredPools` (the fitted laws travel with the
pools). A fit that cannot identify ``b`` (too few points, or ``b`` at a bound of
the search box) falls back to the prior, and ``law_reason`` says why. Values
written in the config always win over fits and priors. ``normalizer`` is the
pools' own (``DomainPools.normalizer``), else the law's 1e5, wherever the law is
evaluated or fitted, as in `mixopt plan-pools`.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ..config import DomainPools, DomainSpec, QualityPool, domain_pools_from_dict
from ..data.domains import validation_mask
from ..data.sources import resolve_files
from ..data.tokenize import Tokenizer
from ..errors import ConfigError, DataError
from ..repetition import POOL_NORMALIZER
from ..repetition_fit import fit_pool_decay, usable_fit
from ..data.pools import in_bucket, pool_documents, scored_documents
from ..selection.overlap import shared_documents
from ..selection.read import text_keys

TMARS_B = (-0.16, -0.125, -0.10, -0.085)  # Goyal et al. (2024), T-MARS buckets, best first
TMARS_TAU = (6.7273, 8.5455, 5.2727, 2.2727)
B_EXTRAPOLATION = 0.85  # b of rank r > 3 = b_3 * 0.85 ** (r - 3)
POOL_SAMPLE_DOCS = 2000  # first documents of each pool file the pool files' checks look up (kept when sizing it)


@dataclass(frozen=True)
class ResolvedPool:
    """One pool with its measured size and the law parameters the planner uses."""

    name: str
    rank: int  # position in the config list (0 = listed first = assumed best)
    tokens: float  # unique tokens in the pool
    samples: float  # tokens / tokens_per_sample
    tokens_per_sample: float
    size_source: str  # "file", "bucket" or "share"
    b: float
    tau: float
    law_source: str  # "config", "fit" or "prior"
    law_reason: str = ""  # why a pool without config values has a prior, or how its fit went
    documents: float | None = None  # documents in the pool (file/bucket pools; None when sized by share or pool_size)


class MeasuredPools(DomainPools):
    """A domain's pools with laws measured by proxy runs (`planning.pool_value.measure_pool_values`).

    ``laws`` maps pool names to ``{b, tau, law_source, law_reason}``; `resolve_pools` uses them as they are,
    so the plan uses exactly what was measured. ``a``, ``d`` and ``tokens_per_sample`` are the ones the laws
    were fitted with. ``measured`` says how (target, unique tokens, repetitions, runs).
    """

    laws: dict[str, dict[str, Any]] = Field(default_factory=dict)
    observations: dict[str, Any] = Field(default_factory=dict)
    measured: dict[str, Any] = Field(default_factory=dict)


def prior_params(rank: int) -> tuple[float, float]:
    """``(b, tau)`` prior of the pool listed at ``rank`` (0 = best), see the module docstring."""
    if rank < 0:
        raise ConfigError(f"Pool rank must be >= 0. Got {rank}. Pass the pool's position in the list.")
    if rank < len(TMARS_B):
        return TMARS_B[rank], TMARS_TAU[rank]
    return TMARS_B[-1] * B_EXTRAPOLATION ** (rank - len(TMARS_B) + 1), TMARS_TAU[-1]


def _as_domain_pools(domain: str, dpools: Any) -> DomainPools:
    if isinstance(dpools, MeasuredPools):  # built validated by measure_pool_values; keeps its laws
        return dpools
    return domain_pools_from_dict(dpools.model_dump(exclude_unset=True) if isinstance(dpools, DomainPools) else dpools,
                                  where=f"propose.pools.{domain}")


def _file_size(domain: str, p: QualityPool, spec: DomainSpec | None, tok, max_documents: int | None
               ) -> tuple[float, int, set[bytes], list[str]]:
    """(tokens, documents, a digest of each distinct text, the first :data:`POOL_SAMPLE_DOCS` documents) of a file pool."""
    docs = pool_documents(domain, p, spec, max_documents)
    return float(sum(tok.count(d) for d in docs)), len(docs), text_keys(docs), docs[:POOL_SAMPLE_DOCS]


def _check_distinct_files(domain: str, pools: Sequence[QualityPool]) -> None:
    """Two file pools of one domain that read the same file: a one-line error (the plan would count it twice)."""
    seen: dict[Path, str] = {}
    for p in pools:
        if p.path is None:
            continue
        try:
            files = resolve_files(DomainSpec(name=f"{domain}.{p.name}", path=str(p.path)))
        except DataError:
            continue  # a missing path: the pool's own read says so next
        for f in files:
            first = seen.setdefault(f.resolve(), p.name)
            if first != p.name:
                raise ConfigError(f"Quality pools '{first}' and '{p.name}' of domain '{domain}' both read {f}: the plan "
                                  "would count its tokens once per pool (too few epochs, too many unique tokens). Give "
                                  "each pool its own file, or drop one of them.")


def _shared_documents_warning(domain: str, keys: Mapping[str, set[bytes]]) -> None:
    """Warn (one line per pair) when file pools of one domain share documents: their tokens are counted in each."""
    for a, b, said in shared_documents(keys):
        warnings.warn(f"quality pools '{a}' and '{b}' of domain '{domain}' share {said}: the plan counts their tokens in "
                      "both pools, so its epochs of the domain are too low and a plan keeping both trains them twice as "
                      "often. Keep each document in one pool's file.", stacklevel=3)


def _scored_counts(domain: str, spec: DomainSpec, tok, max_documents: int | None, val_fraction: float | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(scores, tokens) per training document of the domain; a missing score is NaN (in no bucket). The documents
    its validation split holds (:func:`~mixopt.data.domains.validation_mask` at ``val_fraction``, the split's one rule) are
    left out; ``val_fraction`` None: every document (the split is unknown)."""
    docs, scores = scored_documents(domain, spec, max_documents)
    if val_fraction is not None:
        train = ~np.asarray(validation_mask(docs, val_fraction), dtype=bool)
        docs, scores = [d for d, t in zip(docs, train) if t], scores[train]
    return scores, np.array([tok.count(d) for d in docs], dtype=float)


def _fit_law(pool: ResolvedPool, obs: Any, dp: DomainPools, prior: QualityPool) -> ResolvedPool:
    """Fill missing b/tau from ``obs``: a mapping (or tuple) of ``samples``, ``errors`` and an optional
    ``pool_size`` (the unique samples the proxies repeated; default the pool's size)."""
    if isinstance(obs, Mapping):
        samples, errors, size = obs.get("samples"), obs.get("errors"), obs.get("pool_size")
    elif isinstance(obs, (tuple, list)) and len(obs) in (2, 3):
        samples, errors, size = (*obs, None)[:3]
    else:
        raise ConfigError(f"Observations of pool '{pool.name}' must be (samples, errors[, pool_size]) or a mapping "
                          f"with those keys. Got {type(obs).__name__}.")
    fit = fit_pool_decay(samples, errors, a=dp.a, d=dp.d, pool_size=float(size or pool.samples), prior_b=pool.b,
                         prior_tau=pool.tau, objective=dp.objective, normalizer=normalizer_of(dp))
    unusable = usable_fit(fit)
    if unusable:
        return replace(pool, law_reason=f"T-MARS prior: {unusable}")
    b = prior.b if prior.b is not None else fit.b
    tau = prior.tau if prior.tau is not None else fit.tau
    return replace(pool, b=b, tau=tau, law_source=fit.source,
                   law_reason=f"fitted on {fit.n_points} runs (rms log error {fit.rmse_log:.3g})")


def priors_on_fitted_scale(pools: Sequence[ResolvedPool]) -> list[ResolvedPool]:
    """Put the T-MARS prior b of unmeasured or unfittable pools on the scale of the fitted ones.

    Fitted b on short text proxies came out 3-10x smaller than the image-text priors, so a pool that fell back to
    its prior outranked every fitted pool (benchmarks/RESULTS.md, filtering schedule: the worst bucket ranked first).
    Each prior b is multiplied by mean(fitted b) / mean(prior b at the fitted pools' ranks), which keeps the priors'
    order by rank and puts them among the fitted pools. Without a fitted pool the priors stay as they are.
    """
    fitted = [p for p in pools if p.law_source == "fit"]
    if not fitted or not any(p.law_source == "prior" for p in pools):
        return list(pools)
    ratio = float(np.mean([p.b for p in fitted]) / np.mean([prior_params(p.rank)[0] for p in fitted]))
    return [replace(p, b=prior_params(p.rank)[0] * ratio,
                    law_reason=f"{p.law_reason}; b scaled by {ratio:.3g} to the fitted pools' scale")
            if p.law_source == "prior" else p for p in pools]


@dataclass(frozen=True)
class PooledDomain:
    """One domain's quality pools, sized and with their laws (`resolve_domain_pools`): what `choose_pools` picks from."""

    domain: str
    pools: DomainPools
    resolved: list[ResolvedPool]
    note: str = ""  # e.g. the share of a score-bucket domain's tokens that is in no bucket (never trained)
    heads: dict[str, list[str]] = field(default_factory=dict)  # file pool -> its first POOL_SAMPLE_DOCS documents, as read

    @property
    def tokens(self) -> float:
        """Unique tokens of all the pools together: the most the plan can train of the domain without repetition."""
        return float(sum(p.tokens for p in self.resolved))


def resolve_pools(domain: str, dpools: DomainPools | Mapping, **sizing: Any) -> list[ResolvedPool]:
    """Size (tokens, samples) and law ``(b, tau)`` of every pool of ``domain``, in config order.

    Bucket sizes are counted over the domain's training documents (``val_fraction``: the config's
    ``data.val_fraction``, whose validation documents :func:`~mixopt.data.domains.validation_mask` holds out; None counts
    every document) and scaled by ``unique_tokens / tokens counted`` when ``unique_tokens`` is known (1 when the
    documents read are the ones the domain was tokenized from; else, e.g. under ``data.max_documents``, the buckets'
    shares of the documents read, in the domain's training tokens). Samples are tokens / ``tokens_per_sample``
    (:func:`resolve_domain_pools`). ``observations`` maps pool names to ``(samples, errors[, pool_size])`` used to
    fit missing ``b``/``tau``. ``sizing``: the keywords of :func:`resolve_domain_pools` (``unique_tokens``,
    ``mean_tokens_per_doc``, ``spec`` required).
    """
    return resolve_domain_pools(domain, dpools, **sizing).resolved


def resolve_domain_pools(
    domain: str,
    dpools: DomainPools | Mapping,
    *,
    unique_tokens: int | None,
    mean_tokens_per_doc: float | None,
    spec: DomainSpec | None,
    observations: Mapping[str, Any] | None = None,
    tokenizer: str = "bytes",
    max_documents: int | None = None,
    val_fraction: float | None = None,
) -> PooledDomain:
    """`resolve_pools` with the domain's pools config and a note on what the pools leave out: the share of a
    ``quality_field`` domain's training tokens that fall in no score bucket (no score, or outside every bucket), which
    no plan trains.

    **Samples.** A sample of the domain is ``tokens_per_sample`` tokens: the pools' setting (a measured law pins the
    one it was fitted in), else ``mean_tokens_per_doc`` (the domain's mean training document), else the mean
    document length of the file/bucket pools. Every pool's size and every budget are counted in that one unit, so the
    repetition of any pool set (budget tokens / the set's tokens) is exact whatever the unit. It is not the kept
    pools' mean document: that differs from set to set, so the top-k sets would be compared in different units, the
    unit would hang on the choice it decides, and a measured law would be read in another unit than it was fitted in.
    The unit does set where the law's ``a * samples / normalizer`` lies (the T-MARS priors' sample is an image-text
    pair, so for them any text unit is a convention; measure the laws, or set ``tokens_per_sample``, to fix it)."""
    dp = _as_domain_pools(domain, dpools)
    if spec is not None and spec.name != domain:
        raise ConfigError(f"resolve_pools got the spec of domain '{spec.name}' for domain '{domain}'. Pass the matching spec.")
    tok = Tokenizer(tokenizer)
    sizes: dict[str, tuple[float, float | None, str]] = {}  # name -> (tokens, documents or None, source)
    keys: dict[str, set[bytes]] = {}  # file pool -> its texts' digests (pools that share documents)
    heads: dict[str, list[str]] = {}  # file pool -> its first documents (the pool files' checks, without a second read)
    scored = bucketed = None
    _check_distinct_files(domain, dp.pools)
    for p in dp.pools:
        where = f"Quality pool '{p.name}' of domain '{domain}'"
        if p.path is not None:
            t, n, keys[p.name], heads[p.name] = _file_size(domain, p, spec, tok, max_documents)
            sizes[p.name] = (t, n, "file")
        elif p.is_bucket:
            if spec is None or not spec.quality_field:
                raise ConfigError(f"{where} is a score bucket, but domain '{domain}' has no quality_field "
                                  f"{'(its data spec is unknown here)' if spec is None else ''}. Set quality_field "
                                  "on the domain's data spec, or give the pool a path or a share.")
            if scored is None:
                scored = _scored_counts(domain, spec, tok, max_documents, val_fraction)
            s, counts = scored
            inside = in_bucket(p, s)
            if not inside.any():
                finite = s[np.isfinite(s)]
                rng = f"{finite.min():.4g}..{finite.max():.4g}" if finite.size else "none numeric"
                lo = -math.inf if p.min_score is None else p.min_score
                hi = math.inf if p.max_score is None else p.max_score
                raise DataError(f"{where}: no document has {lo} <= {spec.quality_field} < {hi} (scores: {rng}). "
                                "Widen the bucket or drop the pool.")
            scale = unique_tokens / counts.sum() if unique_tokens else 1.0
            sizes[p.name] = (float(counts[inside].sum() * scale), float(inside.sum() * scale), "bucket")
            bucketed = inside if bucketed is None else bucketed | inside
        elif p.share is None:  # sized by the domain's pool_size (samples), converted once tokens_per_sample is known
            sizes[p.name] = (math.nan, None, "pool_size")
        else:
            if not unique_tokens:
                raise ConfigError(f"{where} is sized by share, which needs the domain's unique token count; it is "
                                  "unknown here (e.g. imported runs, or an unknown domain). Give the pool a path or a score bucket.")
            sizes[p.name] = (float(p.share * unique_tokens), None, "share")
    _shared_documents_warning(domain, keys)
    tps = dp.tokens_per_sample or mean_tokens_per_doc
    if not tps:
        measured = [(t, n) for t, n, _ in sizes.values() if n]
        if not measured:
            raise ConfigError(f"Domain '{domain}' needs tokens_per_sample to count its pools in samples; neither it nor "
                              "the domain's mean tokens per document is known. Set propose.pools."
                              f"{domain}.tokens_per_sample.")
        tps = sum(t for t, _ in measured) / sum(n for _, n in measured)
    out = []
    for rank, p in enumerate(dp.pools):
        tokens, documents, source = sizes[p.name]
        if source == "pool_size":
            tokens = dp.pool_size * tps
        if tokens <= 0:
            raise DataError(f"Quality pool '{p.name}' of domain '{domain}' holds no tokens. Fill it or drop it.")
        pb, pt = prior_params(rank)
        given = p.b is not None and p.tau is not None
        pool = ResolvedPool(p.name, rank, tokens, tokens / tps, float(tps), source,
                            p.b if p.b is not None else pb, p.tau if p.tau is not None else pt,
                            "config" if given else "prior", "" if given else "T-MARS prior: not measured",
                            documents=None if documents is None else float(documents))
        law = dp.laws.get(p.name) if isinstance(dp, MeasuredPools) else None
        if not given and observations and p.name in observations:
            pool = _fit_law(pool, observations[p.name], dp, p)
        elif not given and law:
            pool = replace(pool, b=float(law["b"]), tau=float(law["tau"]), law_source=law["law_source"],
                           law_reason=law.get("law_reason", ""))
        out.append(pool)
    out = priors_on_fitted_scale(out)
    unknown = sorted(set(observations or {}) - {p.name for p in dp.pools})
    if unknown:
        raise ConfigError(f"Observations name pools {unknown} that domain '{domain}' does not have "
                          f"({[p.name for p in dp.pools]}). Fix the pool names.")
    note = ""
    if bucketed is not None and not bucketed.all():
        counts = scored[1]
        left, total = float(counts[~bucketed].sum()), float(counts.sum())
        which = "tokens" if val_fraction is None else "training tokens"
        note = (f"{domain}: {left / total:.1%} of its {which} ({left:,.0f} of {total:,.0f} counted, "
                f"{int((~bucketed).sum())} documents) are in no quality bucket of {spec.quality_field} (no score, or "
                "outside every bucket), so no plan trains them; widen or add a bucket to use them")
    return PooledDomain(domain, dp, out, note, heads)


def normalizer_of(dpools: DomainPools) -> float:
    """The samples scale of the pools' law: their ``normalizer``, else the law's 1e5."""
    return dpools.normalizer or POOL_NORMALIZER


def law_table(resolved: Sequence[ResolvedPool]) -> dict[str, dict[str, Any]]:
    """``{pool: {b, tau, law_source, law_reason}}`` of resolved pools, in their order (for plans and tables)."""
    return {p.name: {"b": p.b, "tau": p.tau, "law_source": p.law_source, "law_reason": p.law_reason} for p in resolved}


def declared_laws(domain: str, dpools: DomainPools | Mapping) -> dict[str, dict[str, Any]]:
    """The law of each pool without sizing any: measured (`MeasuredPools`), written in the config, else the prior of its rank."""
    dp = _as_domain_pools(domain, dpools)
    out = {}
    for rank, p in enumerate(dp.pools):
        pb, pt = prior_params(rank)
        law = dp.laws.get(p.name) if isinstance(dp, MeasuredPools) else None
        if p.b is not None and p.tau is not None:
            out[p.name] = {"b": p.b, "tau": p.tau, "law_source": "config", "law_reason": ""}
        elif law:
            out[p.name] = {"b": float(law["b"]), "tau": float(law["tau"]), "law_source": law["law_source"],
                           "law_reason": law.get("law_reason", "")}
        else:
            out[p.name] = {"b": p.b if p.b is not None else pb, "tau": p.tau if p.tau is not None else pt,
                           "law_source": "prior", "law_reason": "T-MARS prior: not measured"}
    return out


