"""`verify`: train a plan and its simple alternatives at a target scale with paired seeds, and say who won.

Each alternative is trained with the same seeds as the plan, so where two mixtures agree their runs see the same
initialisation and data order, and the comparison is a paired difference per seed. The runs are ordinary records in
the run store (labelled ``verify:NAME``), so verify resumes after a crash and a second call trains nothing.

Alternatives (``--against``):

* ``natural`` — token-proportional; ``uniform``;
* ``best-run`` — the best mixture observed in the sweep (by its whole-run token shares);
* ``no-upsampling`` — the plan without its end phase (phase 0 for the whole run; for a *reorder* end phase, which
  moved a capped domain's tokens to the end, the plan's overall shares for the whole run);
* ``no-pools`` — the plan's schedule on the whole domains, for a plan that keeps quality pools: the plan (and its
  ``no-upsampling`` and ``end-phase`` variants) trains each pooled domain on its kept pools' documents
  (:func:`~mixopt.data.pools.kept_pools_data`: their files or score buckets, as ``provenance.pool_sources``
  records), so plan minus no-pools measures the filtering; a domain whose kept pools have no documents of their own
  (a share) trains whole, and VERIFY.json's ``pools`` and ``notes`` say so;
* ``regmix`` — RegMix's recipe: LightGBM on the store, mean of the top-100 of simulated candidates;
* ``end-phase`` — the plan's overall shares with part of its target domain's tokens moved into the last
  20% (``planning.phases.moved_to_end``): the end phase cosine proxies cannot judge, since under cosine the same
  move trained worse at the proxies' budget and better at 2-16x it (``benchmarks/end_phase_gain.py``); for a
  ``val/<domain>`` target (skipped, saying why, for other targets and for plans with an end phase); in the default
  list since stop 27, when end-phase effects at the proxies' budget were measured not to predict them at 4x;
* ``doremi`` (on request, not in the default list) — DoReMi's mixture (Xie et al. 2023; ``proxy/doremi.py``): a
  reference and a Group-DRO proxy of the sweep's proxy shape, two more proxy runs, kept in the store under
  ``doremi/`` so a second call trains nothing.

``diff`` is plan minus alternative on the target (lower is better for losses); ``ci95`` is a paired Student-t
interval over the seeds (wide with 2 seeds; null with one seed, which decides nothing, and ``claim_held`` is then
null too);
``plan_better`` is true only when the interval lies below zero. A comparison within noise also carries
``seeds_to_resolve``: how many paired seeds would decide it (80% power, planned on the observed difference moved
toward zero by its own noise; None: no advice); verify's runs are kept, so rerunning with that ``--seeds`` trains
only the new seeds. An alternative with the plan's own schedule within the plan file's rounding (e.g. a plan that kept
uniform, its shares rounded to 6 digits: :func:`same_schedule`) shares its runs, is trained once and is marked
``same_as_plan`` (its ``claim_held`` null: the plan against itself claims nothing).

``predicted`` is the plan's prediction (with an end phase, the phased plan's: ``Prediction.end_phase``); the
no-upsampling arm's ``predicted_diff`` is minus the end phase's predicted gain. Against an arm that trains whole
domains where the plan trains a pooled domain on its kept pools (natural, uniform, best-run of a pooled plan), the
difference holds the pools' effect, which the prediction (of mixtures on whole domains) does not count:
``predicted_diff`` and ``claim_held`` are null and ``claim_note`` says why (a plan that kept uniform's shares trains
otherwise than the uniform arm; its difference is not predicted to be 0). When ``predicted.note`` says the
prediction is for another scale than the one trained, ``prediction_error`` and every ``claim_held`` are null (the
measured values say nothing for or against it); the numbers are kept as ``prediction_error_across_scales`` and
``claim_held_across_scales``, which mix the prediction's error with the scale shift.

``adopted_plan`` (``verify --adopt PATH``) turns the verdict into a plan to export: the schedule of the alternative
that trained better than the plan beyond its interval, with the measured mean as its prediction at the verify scale.
That is how an end phase the proxies cannot judge reaches a plan: ``--against end-phase --adopt``.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from scipy import stats

from .config import ProxyConfig, SweepConfig, stored_config
from .data.domains import domain_specs
from .data.pools import KeptPools, kept_pools_data
from .data.types import DomainSet
from .errors import BudgetError, ConfigError, ConsistencyError, DataError, FitError, MixoptError, pydantic_summary, require_positive
from .io import atomic_write_text
from .mixtures import Mixture, Phases, as_phases, natural_mixture, round_shares, uniform_mixture
from .plan import Phase, Plan, Prediction, plan_epochs
from .samplers import temperature_prior
from .repetition import effective_tokens
from .planning.constraints import Constraints
from .planning.phases import moved_to_end
from .planning.search import simulate_search
from .proxy.doremi import doremi_key, doremi_weights
from .proxy.loop import torch_threads
from .proxy.model import GPT, GPTConfig
from .proxy.device import resolved_dtype
from .runs.driver import (check_store_dtype, data_changes, recorded_dtype, store_dtype, store_dtype_note,
                          training_config)
from .runs.record import RunSpec, canonical_json
from .runs.store import RunStore, StoreSnapshot
from .runs.executors import choose_workers, run_local, threads_per_run
from .runs.sweep import proxy_differences, proxy_fingerprint, sweep_scales
from .runs.table import VERIFY_LABEL, records_table, sweep_records
from .surrogates import get_estimator

#: the arms that train the plan's own data: a pooled domain on its kept pools (the others train whole domains)
ON_PLAN_POOLS = ("plan", "no-upsampling", "end-phase")
ALTERNATIVES = ("natural", "uniform", "best-run", "no-upsampling", "no-pools", "regmix", "end-phase")  # the default --against
ON_REQUEST = ("doremi",)  # alternatives --against takes that are not in the default list


@dataclass
class VerifyScale:
    proxy: ProxyConfig
    model_params: int  # non-embedding
    total_params: int
    tokens: int  # trained: proxy.tokens rounded down to whole batches
    name: str = ""
    note: str = ""  # the size asked for (--model-params) is far from every size the sweep has: which was trained


@dataclass
class Arm:
    name: str
    schedule: Phases
    values: list[float] = field(default_factory=list)


def parse_against(text: str) -> list[str]:
    names = [t.strip() for t in str(text).split(",") if t.strip()]
    unknown = [n for n in names if n not in ALTERNATIVES + ON_REQUEST]
    if unknown or not names:
        raise ConfigError(f"--against takes a comma-separated list of {', '.join(ALTERNATIVES + ON_REQUEST)}. Got {text!r}"
                          f"{f' (unknown: {unknown})' if unknown else ''}. Fix the names.")
    return list(dict.fromkeys(names))


def params_of(proxy: ProxyConfig, vocab_size: int) -> tuple[int, int]:
    """(non-embedding, total) parameters of the proxy shape."""
    model = GPT(GPTConfig.from_proxy(proxy, vocab_size))
    return model.num_params(non_embedding=True), model.num_params()


def target_scale(cfg: SweepConfig, data: DomainSet, plan: Plan, *, shape: str | None = None,
                 model_params: float | None = None, tokens: float | None = None) -> VerifyScale:
    """The scale to train at: a named or overridden shape, the one nearest ``model_params``, else the largest; the plan's budget."""
    scales = sweep_scales(cfg)
    sized = [(sc, *params_of(sc.proxy, data.vocab_size)) for sc in scales]
    note = ""
    if shape and "=" in shape:
        over = {}
        for item in shape.split(","):
            k, _, v = item.partition("=")
            over[k.strip()] = v.strip()
        base = max(sized, key=lambda t: t[1])[0].proxy
        try:
            proxy = ProxyConfig.model_validate({**base.model_dump(), **over})
        except ValidationError as exc:
            raise ConfigError(f"--shape {shape!r}: {pydantic_summary(exc)}. Overrides must be proxy fields with valid "
                              "values (n_layer=2,n_embd=128,...).") from None
        chosen = (proxy, *params_of(proxy, data.vocab_size), "custom")
    elif shape:
        found = [t for t in sized if t[0].name == shape]
        if not found:
            names = [t[0].name for t in sized if t[0].name]
            raise ConfigError(f"--shape {shape!r} is not a proxy size of the sweep ("
                              + (f"sizes: {', '.join(names)}" if names else "it has one size, the config's proxy, unnamed")
                              + "). Pass a size's name, or overrides such as --shape n_embd=128.")
        chosen = (found[0][0].proxy, found[0][1], found[0][2], shape)
    elif model_params is not None:
        require_positive("--model-params", model_params)
        sc, ne, tot = min(sized, key=lambda t: abs(math.log(t[1] / model_params)))
        chosen = (sc.proxy, ne, tot, sc.name)
        if abs(math.log10(ne / model_params)) > 1:  # over 10x off: the size asked for is not what trains
            names = ", ".join(f"{t[0].name or 'the config proxy'} {t[1]:.3g}" for t in sized)
            off = f"{model_params / ne:,.0f}x smaller" if ne < model_params else f"{ne / model_params:,.0f}x larger"
            note = (f"no proxy size within 10x of --model-params {model_params:.3g}: verify trains the sweep's nearest, "
                    f"{ne:.3g} non-embedding params ({off}; sizes: {names}). Add a size near {model_params:.3g} under "
                    "`sizes:` in the config and sweep it, or pass --shape n_layer=...,n_embd=... to train that shape")
    else:
        sc, ne, tot = max(sized, key=lambda t: t[1])
        chosen = (sc.proxy, ne, tot, sc.name)
    proxy, ne, tot, name = chosen
    require_positive("--tokens", tokens)
    d = int(tokens if tokens is not None else plan.budget_tokens)
    if d < proxy.batch_size * proxy.block_size:
        raise ConfigError(f"--tokens must cover at least one batch ({proxy.batch_size}x{proxy.block_size}). Got {d}.")
    proxy = proxy.model_copy(update={"tokens": d})  # run ids keep the count asked for, as a sweep's keep proxy.tokens
    if rounded := proxy.rounding_note():  # as the sweep says it (runs.driver.proxy_notes)
        note = "; ".join(x for x in (note, rounded.replace("tokens ", "--tokens ", 1).replace(". Set tokens to", ". Pass --tokens as")) if x)
    trained = d // (proxy.batch_size * proxy.block_size) * proxy.batch_size * proxy.block_size
    return VerifyScale(proxy, ne, tot, trained, name, note)  # the table and VERIFY.json say what trains


def check_repetition(plan: Plan, counts: dict[str, int], tokens: float, max_epochs: float) -> None:
    """The plan's overall shares at ``tokens`` must stay within its repetition cap, up to the rounding of its 6-digit
    shares (an absolute share slack: a relative one refused capped small shares that rounded up by 5e-7)."""
    overall = plan.overall_weights()
    slack = 1e-6 * len(overall) * len(plan.phases)
    for d, w in sorted(overall.items()):
        epochs = w * tokens / counts[d]
        if w > max_epochs * counts[d] / tokens + slack:
            raise BudgetError(f"At {tokens:.3g} tokens the plan repeats '{d}' {epochs:.4g} times, over its cap of {max_epochs:g} "
                              "epochs. Verify at a smaller --tokens, or raise propose.max_epochs and propose again.")


def alternatives(plan: Plan, names: list[str], snapshot: StoreSnapshot, counts: dict[str, int], cfg: SweepConfig,
                 *, seed: int = 0, doremi: Mixture | None = None) -> tuple[list[Arm], list[dict[str, str]]]:
    """The arms to train besides the plan, and the alternatives skipped (with why); ``doremi``: DoReMi's mixture,
    when asked for (``doremi_mixture``)."""
    domains = sorted(counts)
    overall = {d: w for d, w in plan.overall_weights().items() if w > 0}
    arms, skipped = [], []
    for name in names:
        if name == "natural":
            arms.append(Arm(name, as_phases(natural_mixture(counts))))
        elif name == "uniform":
            arms.append(Arm(name, as_phases(uniform_mixture(domains))))
        elif name == "best-run":
            table = records_table(sweep_records(snapshot.ok))
            y = table.target(plan.predicted.metric) if plan.predicted else None
            if y is None or not np.isfinite(y).any():
                skipped.append({"name": name, "why": "no finished sweep run has the plan's target"})
                continue
            i = int(np.nanargmin(y))
            arms.append(Arm(name, as_phases(Mixture.from_vector(table.W[i], table.domains, drop_zeros=True))))
        elif name == "no-upsampling":
            if len(plan.phases) == 1:
                skipped.append({"name": name, "why": "the plan has no end phase"})
                continue
            if plan.provenance.get("end_phase") == "reorder":  # the same tokens, trained flat: the plan's overall shares
                arms.append(Arm(name, as_phases(Mixture(overall))))
            else:
                arms.append(Arm(name, as_phases(plan.phases[0].weights)))
        elif name == "no-pools":
            if not any(plan.pools.values()):
                skipped.append({"name": name, "why": "the plan keeps no quality pools"})
                continue
            arms.append(Arm(name, as_phases(plan.phase_pairs())))  # on whole domains
        elif name == "regmix":
            try:
                arms.append(Arm(name, as_phases(regmix_mixture(snapshot, plan, counts, cfg, seed=seed))))
            except FitError as exc:  # e.g. fewer runs than RegMix's LightGBM needs
                skipped.append({"name": name, "why": " ".join(str(exc).split())})
        elif name == "end-phase":
            metric = plan.predicted.metric if plan.predicted else ""
            d = metric.removeprefix("val/")
            if not metric.startswith("val/") or not 0 < overall.get(d, 0.0) < 1:
                skipped.append({"name": name, "why": "the target is not one domain the plan trains (an end phase moves a "
                                "val/<domain> target's tokens)"})
            elif len(plan.phases) > 1:
                skipped.append({"name": name, "why": "the plan already has an end phase (compare no-upsampling)"})
            else:
                arms.append(Arm(name, as_phases(moved_to_end(overall, d))))
        elif name == "doremi":
            if doremi is None:
                raise ValueError("alternatives(): pass doremi=doremi_mixture(...) when 'doremi' is asked for.")
            arms.append(Arm(name, as_phases(doremi)))
    return arms, skipped


def plan_pools_data(plan: Plan, cfg: SweepConfig, data: DomainSet) -> tuple[DomainSet | None, list[KeptPools]]:
    """``data`` with the plan's pooled domains on their kept pools (:func:`~mixopt.data.pools.kept_pools_data`),
    and what each pooled domain trains on; (None, []) for a plan that keeps no pools, None for the data where every
    pooled domain trains whole (its :class:`~mixopt.data.pools.KeptPools` says why)."""
    overall = plan.overall_weights()
    kept = {d: names for d, names in plan.pools.items() if names and overall.get(d, 0.0) > 0}
    if not kept:
        return None, []
    try:
        pooled, said = kept_pools_data(data, kept, plan.provenance.get("pool_sources") or {}, domain_specs(cfg.data),
                                       tokenizer=cfg.data.tokenizer, val_fraction=cfg.data.val_fraction,
                                       max_documents=cfg.data.max_documents)
    except DataError as exc:
        raise DataError(f"verify trains the plan's pooled domains on their kept pools, but {exc} Restore the pool files "
                        "the plan was proposed with, or propose again with the pools as they are now.") from None
    return (pooled if any(k.tokens is not None for k in said) else None), said


def doremi_mixture(store: RunStore, cfg: SweepConfig, data: DomainSet, *, seed: int = 0,
                   dtype: str | None = None) -> tuple[Mixture, bool]:
    """(DoReMi's mixture for this store's data at the sweep's (first) proxy shape, whether it was trained now).

    Kept in ``<store>/doremi/<key>.json`` (the key hashes the proxy, the data fingerprint and the seed), so verify
    resumes it like its runs. ``proxy.dtype: auto`` trains in the store's dtype (``dtype``, else its recorded one:
    :func:`~mixopt.runs.driver.recorded_dtype`; else what ``auto`` resolves to here), as every run of the store does,
    and the key holds the dtype it trained in (an older key of ``auto`` is then only missed: trained again).
    """
    proxy = sweep_scales(cfg)[0].proxy.model_copy(update={"checkpoints": [1.0]})
    if proxy.dtype == "auto":
        dtype = dtype or recorded_dtype(store) or resolved_dtype(proxy, vocab_size=data.vocab_size,
                                                                  threads=threads_per_run(cfg))
        proxy = proxy.model_copy(update={"dtype": dtype})
    key = doremi_key(proxy, data.fingerprint, None, seed)
    path = Path(store.root) / "doremi" / f"{hashlib.sha256(canonical_json(key).encode()).hexdigest()[:16]}.json"
    if path.is_file():
        return Mixture(json.loads(path.read_text())["weights"]), False
    with torch_threads(threads_per_run(cfg)):  # as every run trains (the key holds proxy.threads): README "determinism"
        result = doremi_weights(proxy, data, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"key": key, **result.to_dict()}, indent=1) + "\n")
    return result.weights, True


def regmix_mixture(snapshot: StoreSnapshot, plan: Plan, counts: dict[str, int], cfg: SweepConfig, *, seed: int = 0) -> Mixture:
    """RegMix's recipe on this store: LightGBM on the sweep runs, mean of the top-100 of simulated candidates."""
    table = records_table(sweep_records(snapshot.ok))
    est = get_estimator("regmix-lightgbm").fit(table.W, table.target(plan.predicted.metric))
    prior = temperature_prior({d: counts[d] for d in table.domains}, cfg.sampler.temperature).vector(table.domains)
    cons = Constraints.build(table.domains, token_counts={d: counts[d] for d in table.domains}, budget_tokens=plan.budget_tokens,
                             max_epochs=cfg.propose.max_epochs)
    res = simulate_search(est, prior, constraints=cons, n_candidates=cfg.propose.n_candidates, top_k=cfg.propose.top_k, seed=seed,
                          strength_range=(cfg.sampler.strength_min, cfg.sampler.strength_max))
    return Mixture.from_vector(res.weights / res.weights.sum(), table.domains, drop_zeros=True)


def predicted_at(plan: Plan, scale: VerifyScale, proxy_scale: tuple[float, float] | None = None) -> dict[str, Any]:
    """The plan's prediction and the scale it speaks for: a scale-aware plan's target scale, else the proxies'
    (``proxy_scale``: their non-embedding params and tokens, for a sweep of one size; a verify at that scale, within
    5%, measures what the surrogate predicted)."""
    target = plan.provenance.get("target_scale")
    out = {"value": plan.predicted.value, "std": plan.predicted.std, "scale": "target" if target else "proxy"}
    at_proxy = proxy_scale is not None and math.isclose(proxy_scale[0], scale.model_params, rel_tol=0.05) and \
        math.isclose(proxy_scale[1], scale.tokens, rel_tol=0.05)
    if not target:
        if at_proxy:
            return out
        out["note"] = ("the surrogate predicts at the proxies' scale, not at this one: sweep 2+ proxy sizes (`sizes:`) to predict "
                       "at another model size, or with `proxy.schedule: wsd` fit `--budgets` (`propose.fit_budgets`) to "
                       "predict at another token budget")
    elif target.get("model_params") and not math.isclose(target["model_params"], scale.model_params, rel_tol=0.05) or \
            target.get("tokens") and not math.isclose(target["tokens"], scale.tokens, rel_tol=0.05):
        out["note"] = (f"the plan predicts at {target['model_params']:.3g} params x {target['tokens']:.3g} tokens, "
                       f"but verify trained {scale.model_params:.3g} x {scale.tokens:.3g}")
    return out


#: the largest share difference (per domain and phase start) at which an alternative's schedule is the plan's own:
#: a plan file rounds shares to 6 digits and puts the remainder on the largest, a few 1e-6 for a dozen domains
SAME_SCHEDULE_TOL = 1e-5


def same_schedule(a: Phases, b: Phases, *, tol: float = SAME_SCHEDULE_TOL) -> bool:
    """Whether two schedules are the same within a plan file's rounding: as many phases, starting within ``tol``, and
    every domain's share within ``tol`` in each (a domain one of them lacks counts as 0)."""
    if len(a) != len(b):
        return False
    for (sa, wa), (sb, wb) in zip(a, b):
        if abs(float(sa) - float(sb)) > tol:
            return False
        if any(abs(float(wa.get(d, 0.0)) - float(wb.get(d, 0.0))) > tol for d in set(wa) | set(wb)):
            return False
    return True


def predicted_diff(plan: Plan, arm: str, lo: float, hi: float, *, comparable: bool = True) -> dict[str, Any]:
    """What the plan claimed against this arm (its predicted baselines: natural, uniform, best-run; against
    no-upsampling, minus its end phase's predicted gain), and whether the measured interval holds that claim:
    ``predicted_diff`` (plan minus arm, as predicted) and ``claim_held``. Not ``comparable`` (a prediction for another
    scale than the one trained): ``claim_held`` is null and the check is kept as ``claim_held_across_scales``."""
    if plan.predicted is None:
        return {}
    end = plan.predicted.end_phase or {}
    if arm == "no-upsampling" and end.get("gain") is not None:  # the plan without its end phase: by.surrogate's value
        d = -float(end["gain"])
    else:
        base = (plan.predicted.baselines or {}).get(arm)
        if not base or base.get("value") is None:
            return {}
        d = float(plan.predicted.value - base["value"])
    held = bool(lo <= d <= hi)
    return {"predicted_diff": d, "claim_held": held} if comparable else \
        {"predicted_diff": d, "claim_held": None, "claim_held_across_scales": held}


def paired_interval(diffs: np.ndarray, *, level: float = 0.95) -> tuple[float, float]:
    """A paired Student-t interval for the mean difference, from 2 seeds on (with 2 it is wide: t(1) = 12.7 at 95%).
    One seed gives no interval: (d, d), which `verify` does not count as a verdict.

    (Until stop 28 two seeds gave [min, max] of the two differences, a bootstrap whose coverage is 50%, not 95%.)"""
    d = np.asarray(diffs, dtype=float)
    if d.size == 1:
        return float(d[0]), float(d[0])
    half = stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean() - half), float(d.mean() + half)


def decides(diffs: np.ndarray) -> bool:
    """Whether paired differences decide a comparison: 2+ seeds and a 95% interval that excludes zero."""
    lo, hi = paired_interval(diffs)
    return np.size(diffs) > 1 and (hi < 0 or lo > 0)


#: the most seeds `seeds_to_resolve` names; a difference that needs more is, in practice, no difference at this noise
MAX_ADVISED_SEEDS = 64


def seeds_to_resolve(diffs: np.ndarray, *, level: float = 0.95, power: float = 0.8, shrink: float = 0.75,
                     cap: int = MAX_ADVISED_SEEDS) -> int | None:
    """The fewest paired seeds that would decide this comparison with probability ``power``, planned on a cautious
    effect: the observed mean difference moved toward zero by the one-sided ``shrink`` quantile of its own t error,
    |mean| - t_shrink(k-1) sd / sqrt(k) (a 3-seed mean overstates small effects); then the smallest n above today's
    count with (t_{(1+level)/2}(n-1) + t_power(n-1)) sd / sqrt(n) < that effect (the paired t-test's sample size).
    None (no advice) when the cautious effect is not above zero, when even ``cap`` seeds would not
    do, or with fewer than 2 seeds (no spread to go on).

    Measured on 2,568 real paired comparisons (benchmarks/seeds_advice.py): the advised count decided 0.86 of the
    time, 0.80-0.90 whatever the count; without the shrinkage 0.78, falling to 0.61 when it asked for 8 seeds."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return None
    mean, sd = abs(float(d.mean())), float(d.std(ddof=1))
    if sd == 0.0:
        return None if mean == 0.0 else d.size + 1  # no spread: one more seed gives a t-interval that excludes 0
    effect = mean - stats.t.ppf(shrink, d.size - 1) * sd / math.sqrt(d.size)
    if effect <= 0:
        return None
    for n in range(d.size + 1, cap + 1):
        if (stats.t.ppf(0.5 + level / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n) < effect:
            return n
    return None


def seeds_advice(body: dict[str, Any]) -> str:
    """One line for the comparisons within noise that more seeds would decide (empty when there are none)."""
    need = [(c["against"], c["seeds_to_resolve"]) for c in body["comparisons"] if c.get("seeds_to_resolve")]
    if not need:
        return ""
    listed = ", ".join(f"{name} ~{n}" for name, n in sorted(need, key=lambda x: x[1]))
    return (f"within noise with {len(body['seeds'])} seeds; paired seeds that would likely decide each (80% power, "
            f"measured 0.80-0.90 on past comparisons): {listed}. Rerun with --seeds N: the runs so far are kept, only new seeds train")


def other_data_text(snapshot: StoreSnapshot, cfg: SweepConfig, data: DomainSet) -> str:
    """The one line for data that differs from what the store was swept on: the config's ``data:`` differs from the
    store's sweep config's (pass that config), or it is the same and the files on disk changed since the sweep (the
    domains named where store.json records their fingerprints: :func:`~mixopt.runs.driver.data_changes`)."""
    fp, meta = snapshot.meta.get("data_fingerprint"), snapshot.meta
    changes = data_changes(meta, data, cfg.data.model_dump(mode="json"))
    said = f"; {'; '.join(changes)}" if changes else ""
    try:
        same_config = bool(meta.get("config")) and stored_config(meta["config"], where="store.json").data == cfg.data
    except MixoptError:
        same_config = False
    if not same_config:
        return (f"The config's data (fingerprint {data.fingerprint}) differs from the store's ({fp}{said}). Pass the "
                "config the store was swept with (or omit --config).")
    return (f"The data on disk changed since the store {snapshot.root} was swept (data fingerprint {fp}, now "
            f"{data.fingerprint}{said}): its runs and the plan were made on the old data. Restore the files the store "
            "was swept with, or sweep the new data into a new --store (with `reuse: {store: "
            f"{snapshot.root}}}` in its config these runs join its fit), propose and verify there.")


def other_proxy_text(plan: Plan, snapshot: StoreSnapshot, cfg: SweepConfig) -> str:
    """The one line for a plan whose runs trained other proxies than ``cfg``'s (another store's sweep, or a --config of
    another learning rate, width...): the fields that differ when the plan's store is still there to read."""
    source = plan.provenance.get("store") or "STORE"  # recorded with the fingerprint; a hand-edited plan may lack it
    try:
        diffs = proxy_differences(stored_config(RunStore(source, create=False).meta()["config"],
                                                where=f"{source}/store.json"), cfg)
    except (KeyError, MixoptError):  # the plan's store moved or is unreadable: said without the fields
        diffs = []
    here = "the --config" if Path(source).resolve() == Path(snapshot.root).resolve() else "this store's sweep config"
    what = f" ({'; '.join(diffs[:4])}{'; ...' if len(diffs) > 4 else ''})" if diffs else ""
    return (f"The plan was proposed on runs of other proxies than {here} trains{what}: its prediction says nothing "
            f"about these. Verify it with --store {source} and that store's config (leave --config out), or sweep, "
            "fit and propose with this config first.")


def verify(plan: Plan, store: RunStore, snapshot: StoreSnapshot, cfg: SweepConfig, data: DomainSet, *,
           against: list[str], seeds: int = 3, shape: str | None = None, model_params: float | None = None,
           tokens: float | None = None, first_seed: int | None = None,
           progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Train the plan and the alternatives at the target scale with paired seeds; returns the VERIFY.json body.

    ``progress(label, done, total)`` hears the runs finished and the current run's steps (the CLI draws bars).

    The arms train with seeds ``first_seed``, ``first_seed + 1``, ... (default: from the config's seed); another first
    seed gives fresh runs, e.g. to check an adopted plan on seeds it was not chosen on."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1 (3 or more give a useful interval). Got {seeds}.")
    if first_seed is not None and first_seed < 0:
        raise ConfigError(f"--first-seed must be >= 0. Got {first_seed}.")
    if plan.predicted is None:
        raise ConfigError("The plan has no predicted metric to verify against. Write it with `mixopt propose`.")
    unknown = sorted(set(plan.domains) - set(data.domains))
    if unknown:
        raise ConsistencyError(f"The plan trains domains {unknown}, which the store's data does not have ({data.names}). "
                               "Verify with the store the plan was proposed on.")
    fp = snapshot.meta.get("data_fingerprint")
    data.adopt(fp)  # a store written before fingerprints stopped hashing paths
    if fp and fp != data.fingerprint:
        raise ConsistencyError(other_data_text(snapshot, cfg, data))
    if plan.provenance.get("proxy_fingerprint") not in (None, proxy_fingerprint(cfg)):
        raise ConsistencyError(other_proxy_text(plan, snapshot, cfg))
    counts = data.token_counts
    scale = target_scale(cfg, data, plan, shape=shape, model_params=model_params, tokens=tokens)
    pooled, kept = plan_pools_data(plan, cfg, data)  # the plan's pooled domains on their kept pools (None: none is)
    notes = [scale.note] if scale.note else []
    notes += [f"domain '{k.domain}' trains whole, not on the plan's kept pools ({', '.join(k.pools)}): {k.why}; this "
              f"verifies the plan's mixture, not its filtering of {k.domain}" for k in kept if k.tokens is None]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    check_repetition(plan, (pooled or data).token_counts, scale.tokens, cfg.propose.max_epochs)
    dtype = store_dtype(snapshot.meta, snapshot.records)  # proxy.dtype auto trains in the store's dtype (its sweep's)
    check_store_dtype(store, dtype, scale.proxy)
    doremi, doremi_trained = (doremi_mixture(store, cfg, data, seed=cfg.seed, dtype=dtype) if "doremi" in against
                              else (None, False))
    arms, skipped = alternatives(plan, against, snapshot, counts, cfg, seed=cfg.seed, doremi=doremi)
    arms.insert(0, Arm("plan", as_phases(plan.phase_pairs())))
    if kept and pooled is None and any(a.name == "no-pools" for a in arms):  # no pooled domain trains on its pools
        arms = [a for a in arms if a.name != "no-pools"]
        skipped.append({"name": "no-pools", "why": "no pooled domain of the plan trains on its kept pools here (see "
                        "notes), so the plan's runs are already on the whole domains"})
    arm_data = {a.name: pooled if pooled is not None and a.name in ON_PLAN_POOLS else data for a in arms}
    for a in arms[1:]:  # e.g. uniform for a plan that kept uniform (its shares rounded to a plan file's 6 digits)
        if arm_data[a.name] is arm_data["plan"] and same_schedule(a.schedule, arms[0].schedule):
            a.schedule = arms[0].schedule  # the plan's own runs: trained once, marked same_as_plan
    seed_list = [(cfg.seed if first_seed is None else first_seed) + k for k in range(seeds)]
    proxy = scale.proxy.model_dump(mode="json")
    # a pooled arm's data fingerprint (part of the run id) is its kept pools': never taken for a whole-domain run
    specs = {(a.name, s): RunSpec(mixture=a.schedule[0][1], proxy=proxy, data_fingerprint=arm_data[a.name].fingerprint,
                                  seed=s, label=f"{VERIFY_LABEL}{a.name}", phases=tuple(a.schedule), dtype=dtype or "")
             for a in arms for s in seed_list}
    unique = list({sp.run_id: sp for sp in specs.values()}.values())  # arms with equal schedules share their runs
    held = store.scan({sp.run_id for sp in unique})[1]  # a corrupt verify record is quarantined and trained again now
    pending = [sp for sp in unique if sp.run_id not in held]
    if pending and (note := store_dtype_note(store, dtype, cfg, data.vocab_size)):
        warnings.warn(note, stacklevel=2)  # trains in the store's dtype, not in what auto picks here
    trained = 0
    if pending:
        tell = progress or (lambda label, done, total: None)
        finished = [0]

        def on_run(run_id: str, outcome: str, reason: str) -> None:
            finished[0] += 1
            tell("verify runs", finished[0], len(pending))

        tell("verify runs", 0, len(pending))
        for group in (data, pooled):  # the whole domains' runs, then those on the plan's kept pools
            todo = [sp for sp in pending if group is not None and sp.data_fingerprint == group.fingerprint]
            if todo:
                trained += run_local(todo, training_config(cfg, dtype), store, group, workers=choose_workers(cfg, None, todo), on_run=on_run,
                                     on_step=lambda i, n: tell("steps of the current run", i, n)).trained
    fresh = RunStore(store.root, create=False)
    metric = plan.predicted.metric
    for a in arms:
        for s in seed_list:
            rec = fresh.get(specs[(a.name, s)].run_id)
            if rec is None or rec.status != "ok":
                raise ConfigError(f"The verify run of {a.name} with seed {s} failed ({rec.reason if rec else 'no record'}). "
                                  "Lower the learning rate or the scale, then run verify again (finished runs are kept).")
            a.values.append(float(records_table([rec]).target(metric)[0]))
    plan_arm = arms[0]
    scales = sweep_scales(cfg)
    proxy_scale = (params_of(scales[0].proxy, data.vocab_size)[0], scales[0].proxy.tokens) if len(scales) == 1 else None
    predicted = predicted_at(plan, scale, proxy_scale)
    # a prediction for another scale than the one trained (its note says so): the measured values say nothing for or
    # against it, so its error and claims are null; the across-scale numbers (the surrogate's error mixed with the scale
    # shift) stay under their own names, for benchmarks/verify_plans.py
    elsewhere = "note" in predicted
    # the plan trains these domains on their kept pools, an arm on whole domains (natural, uniform, best-run) trains
    # them whole: the prediction values mixtures on whole domains, so it says nothing of that difference's pool part
    on_pools = [k.domain for k in kept if k.tokens is not None]
    pool_gap = (f"not predicted: the plan trains {' and '.join(on_pools)} on {'its' if len(on_pools) == 1 else 'their'} "
                "kept pools and this arm whole, and the prediction values mixtures on whole domains (not the pools' "
                "effect)") if on_pools else ""
    if on_pools:  # the plan's own runs train on its kept pools, which the prediction does not value: its error says so
        predicted["pools_note"] = (f"the plan's runs train {' and '.join(on_pools)} on {'its' if len(on_pools) == 1 else 'their'} "
                                   "kept pools; the prediction values the mixture on whole domains, so prediction_error "
                                   "holds the pools' effect too (the no-pools arm measures it)")
    comparisons = []
    for a in arms[1:]:
        diffs = np.array(plan_arm.values) - np.array(a.values)
        lo, hi = paired_interval(diffs)
        decided = decides(diffs)  # one seed decides nothing
        same = specs[(a.name, seed_list[0])].run_id == specs[("plan", seed_list[0])].run_id  # the plan's own runs
        one = len(seed_list) < 2  # no interval: ci95 and claim_held are null, not a zero-width interval
        claim = predicted_diff(plan, a.name, lo, hi, comparable=not elsewhere)
        if claim and pool_gap and arm_data[a.name] is not arm_data["plan"]:  # e.g. uniform for a plan that kept uniform
            claim = {"predicted_diff": None, "claim_held": None, "claim_note": pool_gap}
        if claim and (same or one):  # the plan against itself claims nothing; one seed cannot check a claim
            claim["claim_held"] = None
            claim.pop("claim_held_across_scales", None)
        comparisons.append({"against": a.name, "diff": float(diffs.mean()), "ci95": None if one else [lo, hi],
                            "plan_better": bool(decided and hi < 0), "plan_worse": bool(decided and lo > 0),
                            **claim,
                            **({"same_as_plan": True} if same else {} if decided
                               else {"seeds_to_resolve": seeds_to_resolve(diffs)})})
    plan_mean = float(np.mean(plan_arm.values))
    error = plan_mean - plan.predicted.value
    return {
        "target": metric,
        "scale": {"model_params": scale.model_params, "total_params": scale.total_params, "tokens": scale.tokens,
                  "shape": scale.name, "proxy": {k: proxy[k] for k in ("n_layer", "n_embd", "block_size", "batch_size", "lr")}},
        "seeds": seed_list,
        "notes": notes,  # what was trained is not what was asked for: a size far from it, a pooled domain trained whole
        **({"pools": {k.domain: k.to_dict() for k in kept}} if kept else {}),  # what each pooled domain trained on
        "results": [{"name": a.name, "values": a.values, "mean": float(np.mean(a.values)),
                     "weights": dict(a.schedule[0][1]), "phases": len(a.schedule),
                     "schedule": [[float(start), dict(m)] for start, m in a.schedule],
                     **({"on_pools": arm_data[a.name] is pooled} if pooled is not None else {})} for a in arms],
        "comparisons": comparisons,
        "max_advised_seeds": MAX_ADVISED_SEEDS,  # seeds_to_resolve is None past it
        "skipped": skipped,
        "predicted": predicted,
        "prediction_error": None if elsewhere else error,  # none across scales
        **({"prediction_error_across_scales": error} if elsewhere else {}),
        "trained": trained,
        **({"doremi": {"weights": dict(doremi), "trained_now": doremi_trained}} if doremi is not None else {}),
    }


def without_pools(plan: Plan, pools: dict[str, dict[str, Any]]) -> Plan:
    """The plan on its whole domains (the ``no-pools`` arm adopted): no kept pools, their laws, sources and pool
    reasons gone, and each pooled domain's epochs, effective tokens and tokens per document counted on the whole
    domain's training tokens and documents (``pools``: VERIFY.json's, with ``domain_tokens`` and ``domain_documents``)."""
    overall = plan.overall_weights()
    epochs, effective, per_doc = dict(plan.epochs), dict(plan.effective_tokens), dict(plan.tokens_per_doc)
    for d, info in pools.items():
        unique, tokens = info.get("domain_tokens"), overall.get(d, 0.0) * plan.budget_tokens
        if unique and tokens > 0:
            epochs[d] = plan_epochs(tokens, unique)  # 12 digits, as every plan writer: exports recover unique tokens from it
            if d in effective:
                effective[d] = float(effective_tokens(tokens, unique))
        # the kept pools' mean document is not the whole domain's: document-weighted exports would train the domain
        # at another share. A VERIFY.json from before domain_documents has none: the export then asks for it
        docs = info.get("domain_documents")
        if unique and docs:
            per_doc[d] = float(unique) / int(docs)
        else:
            per_doc.pop(d, None)
    said = tuple(f"{d}: keep " for d in plan.pools)  # the planner's reason for each domain's kept pools
    extra = {"frontier": None} if (plan.model_extra or {}).get("frontier") is not None else {}  # the pools' frontier
    return plan.model_copy(update=dict(pools={}, pool_laws={}, epochs=epochs, effective_tokens=effective, tokens_per_doc=per_doc,
                                       reasons=[r for r in plan.reasons if not r.startswith(said)],
                                       provenance={k: v for k, v in plan.provenance.items() if k != "pool_sources"},
                                       **extra))


#: reasons of the plan's own schedule that no longer hold once it takes another: phase notes when the new schedule has
#: one phase or several (the plan's own end phase or Cooldown switch is gone either way; "no upsampling phase" is
#: stale once the new schedule has an end phase)
SCHEDULE_REASONS = ("upsampling phase for", "Cooldown schedule:")


def adopted_plan(plan: Plan, body: dict[str, Any], *, max_epochs: float | None = None) -> tuple[Plan, str]:
    """(the plan to keep after ``body``, a VERIFY.json body of this plan; what was decided): the plan with the schedule
    of the alternative that trained better than it beyond the paired 95% interval (the largest mean gain), its
    prediction replaced by that arm's measured mean at the verify scale; else the plan unchanged (always with one seed,
    whose interval is the difference itself). An arm that trains a domain the plan does not is passed over (its epochs
    are unknown to the plan), and so is one that would repeat a domain more than ``max_epochs`` times at the plan's
    budget (``propose.max_epochs``); the note says so.

    No correction across the arms, by design: with 3 seeds and 5 arms that train exactly like the plan, one is adopted
    about 10% of the time, which costs nothing (it trains as well as the plan); adopting an arm that trains *worse*
    needs its interval to exclude zero on the wrong side, under 2.5% per arm. A Holm correction would have refused the
    cap case's 3-seed end phase (0.047 [0.026, 0.069]), which then trained 0.071 better on fresh seeds."""
    scale = body["scale"]
    where = f"at {scale['model_params']:.3g} params x {scale['tokens']:.3g} tokens, {len(body['seeds'])} paired seeds"
    whole = sorted(d for d, v in (body.get("pools") or {}).items() if v.get("trained_on") == "whole domain")
    if whole:  # what was trained is not what the plan's filtering says: the verdict is on its mixture only
        where += (f" ({', '.join(whole)} trained whole, not on the plan's kept pools: this verified the mixture, not "
                  "the filtering)")
    results = {r["name"]: r for r in body["results"]}
    if len(body["seeds"]) < 2:  # one seed's "interval" is the difference itself
        note = (f"kept by verify: one seed cannot show an alternative better beyond the seed noise on {body['target']} "
                f"{where}; verify with --seeds 3 or more to adopt one")
        return plan.model_copy(update=dict(reasons=[note, *plan.reasons])), note
    passed = []
    for c in sorted((c for c in body["comparisons"] if c["plan_worse"]), key=lambda c: -c["diff"]):
        arm = results[c["against"]]
        phases = [Phase(start_fraction=start, weights=round_shares(w))
                  for start, w in arm.get("schedule") or [[0.0, arm["weights"]]]]
        lo, hi = c["ci95"]
        values = np.asarray(arm["values"], dtype=float)
        reason = (f"adopted by verify: {c['against']} trained better than the plan by {c['diff']:.4f} "
                  f"[{lo:.4f}, {hi:.4f}] on {body['target']} {where}; this plan "
                  + ("drops its quality pools: it trains the whole domains" if c["against"] == "no-pools" else
                     "takes its schedule"))
        measured = Prediction(metric=body["target"], value=float(values.mean()),
                              std=float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else None,
                              by={"verify": {"arm": c["against"], "tokens": scale["tokens"],
                                             "model_params": scale["model_params"], "values": values.tolist(),
                                             "note": "measured mean of the arm's runs (std: of the mean), not a surrogate's"}})
        provenance = {"adopted": {"arm": c["against"], "diff": c["diff"], "ci95": [lo, hi], "tokens": scale["tokens"],
                                  "model_params": scale["model_params"], "seeds": list(body["seeds"])},
                      "target_scale": {"model_params": scale["model_params"], "tokens": scale["tokens"]}}
        if c["against"] == "end-phase":
            provenance["end_phase"] = "reorder"  # the same overall shares, tokens moved to the end
        elif len(phases) == 1:
            provenance["end_phase"] = None
        stale = [r for r in plan.reasons if r.startswith(SCHEDULE_REASONS)
                 or len(phases) > 1 and r.startswith("no upsampling phase")]  # the new schedule has its own end phase
        try:
            base = plan.model_copy(update=dict(reasons=[r for r in plan.reasons if r not in stale]))
            if c["against"] == "no-pools":  # the whole domains trained better than the kept pools: drop the pools
                base = without_pools(base, body.get("pools") or {})
            adopted = base.with_phases(phases, reason, measured, provenance)
        except ConfigError as exc:
            passed.append(f"{c['against']} ({exc})")
            continue
        over = {d: e for d, e in adopted.epochs.items() if max_epochs is not None and e > max_epochs * (1 + 1e-6)}
        if over:
            passed.append(f"{c['against']} (it would repeat {', '.join(f'{d} {e:.2f}' for d, e in sorted(over.items()))} "
                          f"epochs at the plan's budget, over propose.max_epochs {max_epochs:g})")
            continue
        return adopted, reason
    note = (f"kept by verify: no alternative trained better than the plan beyond its paired 95% interval on "
            f"{body['target']} {where}")
    if passed:
        note += "; passed over: " + "; ".join(passed)
    return plan.model_copy(update=dict(reasons=[note, *plan.reasons])), note
