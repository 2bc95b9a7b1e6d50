"""What a trainer's mixture weight means, and how to convert a plan's token shares to it.

Plan weights are **token shares**. Trainers read weights in one of two ways:

* ``"tokens"``: OLMo-core ``target_ratio`` is a share of tokens; Megatron-LM and
  nanotron weight fixed-length samples (sequences), which is the same thing.
* ``"documents"``: HF ``interleave_datasets``, MosaicML ``Stream(proportion=)``,
  Megatron-Energon and litdata ``CombinedStreamingDataset`` pick one example
  (document / item) at a time, so a weight is a share of documents.

If domain *i* has token share :math:`w_i` and mean tokens per document
:math:`t_i`, it must get document share

.. math:: p_i = \\frac{w_i / t_i}{\\sum_j w_j / t_j}

so that the expected token share :math:`p_i t_i / \\sum_j p_j t_j` is :math:`w_i`
again. Without the conversion a domain of long documents gets far too many tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import ExportError

TOKENS = "tokens"
DOCUMENTS = "documents"

#: Decimal places written for every exported weight.
DIGITS = 8
#: Relative slack added to the plan's epochs where a format caps or sizes repetition.
REPETITION_MARGIN = 0.05

TOKEN_NOTE = (
    "weights are token shares taken unchanged from the plan "
    "(this trainer weights tokens or fixed-length samples, which is the same thing)"
)
DOC_NOTE = (
    "weights are document (example/item) shares converted from the plan's token shares: "
    "doc_share_i = (token_share_i / mean_tokens_per_doc_i) / sum_j (token_share_j / mean_tokens_per_doc_j), "
    "because this loader picks one document at a time. If your items are fixed-length token blocks "
    "(e.g. litdata TokensLoader, concatenated MDS shards), pass --tokens-per-doc DOMAIN=BLOCK_SIZE "
    "for every domain so that the conversion becomes the identity"
)


def doc_shares(token_shares: Mapping[str, float], tokens_per_doc: Mapping[str, float]) -> dict[str, float]:
    """Document shares that yield ``token_shares`` in expectation (see module docstring)."""
    raw = {d: w / _tpd(tokens_per_doc, d) for d, w in token_shares.items()}
    return _normalise(raw, "document shares")


def token_shares_from_docs(doc_share: Mapping[str, float], tokens_per_doc: Mapping[str, float]) -> dict[str, float]:
    """Expected token shares when sampling documents with ``doc_share`` (inverse of `doc_shares`)."""
    raw = {d: p * _tpd(tokens_per_doc, d) for d, p in doc_share.items()}
    return _normalise(raw, "token shares")


def max_repetition_ratio(epochs: float | None) -> float:
    """``max(1, epochs * (1 + REPETITION_MARGIN))`` rounded up to 2 decimals; 1.0 when ``epochs`` is unknown.

    The margin absorbs rounding to whole sequences or items and small differences
    between mixopt's token counts and the trainer's tokenizer.
    """
    if epochs is None or not math.isfinite(epochs):
        return 1.0
    return max(1.0, math.ceil(epochs * (1.0 + REPETITION_MARGIN) * 100 - 1e-9) / 100)


def exact_shares(weights: Mapping[str, float], digits: int = DIGITS) -> dict[str, float]:
    """Round shares so that they sum to exactly 1.0 once parsed back as floats.

    Largest-remainder rounding to ``digits`` decimals makes the decimal sum exactly
    1; a few 1-unit nudges between the largest entries then make the float sum
    exactly 1.0 under Python ``sum`` (in the given order), ``math.fsum`` and
    ``numpy.sum``. In the rare case none works, the shares are put on a 2**-40
    grid instead, where every partial sum is exact (so any summation order gives
    1.0) at the cost of longer decimals. Zero stays zero, and a positive share
    stays positive: one too small to show (below half a unit, 5e-9) keeps one unit,
    taken from the largest share, so no planned domain is silently dropped (an
    HF ``all_exhausted`` interleave with a probability of 0 would never end).
    """
    names = list(weights)
    values = np.array([float(weights[n]) for n in names], dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        raise ExportError(f"Shares must be finite, >= 0 and not all zero. Got {dict(weights)}. Fix the plan weights.")
    values = values / values.sum()
    for scale, fallback in ((10**digits, False), (2**40, True)):
        units = _keep_positive(_largest_remainder(values, scale), values)
        found = _nudge(units, scale) if not fallback else units
        if found is not None:
            return {n: u / scale for n, u in zip(names, found)}
    raise AssertionError("unreachable: the 2**-40 grid always sums exactly")  # pragma: no cover


def resolve_tokens_per_doc(
    plan_tpd: Mapping[str, float],
    overrides: Mapping[str, float],
    domains: list[str],
    known: list[str],
    fmt: str,
) -> dict[str, float]:
    """Mean tokens per document for ``domains``: overrides first, then the plan's values."""
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ExportError(
            f"--tokens-per-doc names domains that are not in the plan: {unknown}. "
            f"The plan's domains are {known}. Fix the domain names."
        )
    out: dict[str, float] = {}
    for d in domains:
        value = overrides.get(d, plan_tpd.get(d))
        if value is None:
            continue
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        if not math.isfinite(v) or v <= 0:
            raise ExportError(
                f"Mean tokens per document must be a finite number > 0. Got {value!r} for domain '{d}'. "
                f"Pass --tokens-per-doc {d}=N with N > 0."
            )
        out[d] = v
    missing = [d for d in domains if d not in out]
    if missing:
        hint = " ".join(f"--tokens-per-doc {d}=N" for d in missing)
        raise ExportError(
            f"Format '{fmt}' weights documents, so it needs the mean tokens per document of every domain it samples. "
            f"Unknown for {missing} (not in the plan's tokens_per_doc nor in --tokens-per-doc). "
            f"Pass {hint}, or regenerate the plan with token counts."
        )
    return out


def _tpd(tokens_per_doc: Mapping[str, float], domain: str) -> float:
    t = tokens_per_doc.get(domain)
    if t is None or not (math.isfinite(t) and t > 0):
        raise ExportError(f"Mean tokens per document for '{domain}' must be > 0. Got {t!r}. Pass --tokens-per-doc {domain}=N.")
    return float(t)


def _normalise(raw: Mapping[str, float], what: str) -> dict[str, float]:
    total = math.fsum(raw.values())
    if not total > 0:
        raise ExportError(f"Cannot compute {what}: all weights are zero ({dict(raw)}). Give at least one domain a weight > 0.")
    return {d: v / total for d, v in raw.items()}


def _largest_remainder(values: np.ndarray, scale: int) -> list[int]:
    raw = values * scale
    floor = np.floor(raw).astype(np.int64)
    short = int(scale - floor.sum())
    order = np.argsort(-(raw - floor), kind="stable")
    floor[order[:short]] += 1
    return [int(u) for u in floor]


def _keep_positive(units: list[int], values: np.ndarray) -> list[int]:
    """Give every positive share that rounded to 0 one unit, each taken from the then largest entry."""
    for k in np.flatnonzero((values > 0) & (np.asarray(units) == 0)):
        units[int(np.argmax(units))] -= 1
        units[int(k)] = 1
    return units


def _sums_to_one(units: list[int], scale: int) -> bool:
    v = [u / scale for u in units]
    return sum(v) == 1.0 and math.fsum(v) == 1.0 and float(np.sum(np.array(v))) == 1.0


def _nudge(units: list[int], scale: int) -> list[int] | None:
    if _sums_to_one(units, scale):
        return units
    top = sorted(range(len(units)), key=lambda i: -units[i])[:6]
    for step in (1, 2, 3):
        for i in top:
            for j in top:
                if i == j or units[i] == 0 or units[j] <= step:
                    continue
                trial = list(units)
                trial[i] += step
                trial[j] -= step
                if _sums_to_one(trial, scale):
                    return trial
    return None
