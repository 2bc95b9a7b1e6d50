"""Score candidate data pools against a target set with optimal transport."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError, MixtureError
from ..selection.overlap import overlap_lines
from ..selection.read import text_keys
from .features import FeatureCache, HashingFeaturizer, featurize
from .ot_distance import MixtureOT
from .projector import OTProjector, TwoStageProjector


def _utf8_len(doc: str) -> int:
    return len(doc.encode("utf-8"))


def score_pools(
    pools: Mapping[str, Sequence[str]],
    target_docs: Sequence[str],
    *,
    base_docs: Mapping[str, Sequence[str]] | None = None,
    base_mixture: Mapping[str, float] | None = None,
    projector: OTProjector | TwoStageProjector | None = None,
    budget_tokens: float | None = None,
    featurizer=None,
    tokens_of: Callable[[str], int] | None = None,
    pool_doc_counts: Mapping[str, float] | None = None,
    cache: FeatureCache | None = None,
    method: str = "emd",
    reg: float = 0.05,
    grid: int = 21,
    pool_keys: Mapping[str, set[bytes]] | None = None,
    target_read: str = "",
) -> list[dict]:
    """Rank candidate pools by how well they serve a target, best (lowest) first.

    For each pool ``P``:

    - ``ot_distance``: OT of the pool's sample alone to the target sample.
      All OT values here share one cost matrix with a fixed scale
      (``cost_scale=None``: squared Euclidean between L2-normalised features,
      in ``[0, 4]``), so they are comparable across pools and calls.
    - ``best_weight``: the ``w`` in ``[0, 1]`` minimising the metric of the
      mixture ``(1 - w) * base_mixture + w * P``: its OT to the target (no
      projector) or the projector's prediction (a fitted projector whose
      domains include ``P`` and the base domains: its own OT is used). Search:
      a grid of ``grid`` points, then a bounded Brent refinement around the
      best grid point. Without ``base_docs``, ``w = 1``.
    - ``blend_ot_distance``: without a projector, the OT distance to the target
      of the blend at ``best_weight`` (an OT distance, not a loss); else None.
    - ``predicted_metric``: with a projector, its predicted metric (a loss) at
      ``best_weight``; else None.
    - ``projected_metric``, ``projected_by``: kept for files and code written
      before the two fields above: the value that was minimised and what made
      it (``"ot"``, ``"projector"`` or ``"projector@<budget_tokens>"``).
    - ``unique_tokens_estimate``: ``sum(tokens_of(doc))`` over the sample, scaled
      by ``pool_doc_counts[P] / len(sample)`` when that count is given (the sample's
      own tokens otherwise: pass the count whenever the sample is not the whole pool).
    - ``n_docs_pool``: the documents the estimate stands for, ``pool_doc_counts[P]``
      or ``len(sample)``.
    - ``tokens_at_budget``, ``epochs_at_budget``: with ``budget_tokens``, the
      pool's tokens in the blend (``best_weight * budget_tokens``) and how many
      times that repeats its unique tokens; else None. A pool with a good
      distance but many epochs is too small for the budget.

    Parameters
    ----------
    pools : dict[str, list[str]]
        A document sample of each candidate pool.
    target_docs : list[str]
        Documents that represent the target (e.g. a validation set).
    base_docs : dict[str, list[str]], optional
        A document sample of each domain already in the mixture.
    base_mixture : dict[str, float], optional
        Weights of ``base_docs``'s domains; default: token-proportional (natural).
    projector : OTProjector or TwoStageProjector, optional
        Fitted; a TwoStageProjector needs ``budget_tokens``.
    budget_tokens : float, optional
        Training tokens of the target run: sets ``epochs_at_budget`` (and the
        TwoStageProjector's data size).
    featurizer : default :class:`HashingFeaturizer`
    tokens_of : callable ``str -> int``, default UTF-8 byte count
    pool_doc_counts : dict[str, float], optional
        Declared/estimated total documents (with text) per pool, when ``pools`` holds a sample of it.
    cache : FeatureCache, optional
    method, reg : passed to :class:`MixtureOT`.
    grid : int, default 21
    pool_keys : dict[str, set[bytes]], optional
        :func:`~mixopt.selection.read.text_keys` of each whole pool, when ``pools`` holds samples of them (default:
        the samples'): the target's documents found in a pool, and documents two pools share, are warned about (one
        line each, :func:`~mixopt.selection.overlap.overlap_lines`, the checks `mixopt select` runs): a pool holding
        the target's own documents ranks closer to it than its other text would.
    target_read : str
        Said after the target's count in those warnings when ``target_docs`` is a sample (e.g. ``" read"``).

    Returns
    -------
    list of dict
        Keys ``pool``, ``ot_distance``, ``best_weight``, ``blend_ot_distance``,
        ``predicted_metric``, ``projected_metric``, ``projected_by``,
        ``unique_tokens_estimate``, ``tokens_at_budget``, ``epochs_at_budget``,
        ``n_docs_sampled``, ``n_docs_pool``.
    """
    featurizer = featurizer if featurizer is not None else HashingFeaturizer()
    tokens_of = tokens_of if tokens_of is not None else _utf8_len
    if not isinstance(pools, Mapping) or not pools:
        raise DataError("pools must be a non-empty mapping pool name -> list of documents. Got none. Add at least one pool.")
    _nonempty(target_docs, "target_docs", "Provide target (validation) documents.")
    for name, docs in pools.items():
        _nonempty(docs, f"pool '{name}'", "Add a document sample for it or drop the pool.")
    if projector is not None and not hasattr(projector, "stage0_") and not hasattr(projector, "coef_"):
        raise ConfigError("The projector passed to score_pools is not fitted. Fit it on proxy runs first, or pass projector=None.")
    if isinstance(projector, TwoStageProjector) and budget_tokens is None:
        raise ConfigError("A TwoStageProjector predicts at a data size: pass budget_tokens=... to score_pools.")
    if budget_tokens is not None and not (np.isfinite(budget_tokens) and budget_tokens > 0):
        raise ConfigError(f"budget_tokens must be a finite number > 0. Got {budget_tokens}. Pass e.g. --budget-tokens 1e9.")

    keys = {name: (pool_keys or {}).get(name) or text_keys(list(docs)) for name, docs in pools.items()}
    for line in overlap_lines(keys, text_keys(list(target_docs), unique=False), target_read=target_read,
                              shared_effect="each ranks on that text, and a mixture of both trains it twice. Keep each "
                              "document in one pool's file.")[1]:
        warnings.warn(line, stacklevel=2)
    target = featurize(list(target_docs), featurizer, cache, where="target_docs")
    pool_feats = {name: featurize(list(docs), featurizer, cache, where=f"pool '{name}'") for name, docs in pools.items()}

    base_feats, base_w = {}, {}
    if base_docs:
        for name, docs in base_docs.items():
            _nonempty(docs, f"base domain '{name}'", "Add documents for it or drop it from base_docs.")
        base_feats = {name: featurize(list(docs), featurizer, cache, where=f"base domain '{name}'") for name, docs in base_docs.items()}
        if base_mixture is None:
            counts = {n: sum(tokens_of(d) for d in docs) for n, docs in base_docs.items()}
            total = float(sum(counts.values()))
            base_mixture = {n: c / total for n, c in counts.items()} if total > 0 else {n: 1 / len(counts) for n in counts}
        unknown = sorted(set(base_mixture) - set(base_docs))
        if unknown:
            raise MixtureError(f"base_mixture names domains {unknown} with no documents in base_docs ({sorted(base_docs)}). "
                               "Add their documents or drop them from base_mixture.")
    elif base_mixture is not None and projector is None:
        raise DataError("base_mixture needs base_docs (a document sample per domain) to compute OT. Got base_docs=None. "
                        "Pass base_docs, or a fitted projector that knows the base domains.")
    if base_mixture is not None:
        if not isinstance(base_mixture, Mapping) or not base_mixture:
            raise MixtureError(f"base_mixture must be a non-empty mapping domain -> weight. Got {base_mixture!r}.")
        total = float(sum(base_mixture.values()))
        if not np.isfinite(total) or total <= 0 or any(v < 0 for v in base_mixture.values()):
            raise MixtureError(f"base_mixture weights must be >= 0 with a positive sum. Got {dict(base_mixture)}.")
        base_w = {n: float(v) / total for n, v in base_mixture.items()}

    # Cost on a fixed scale (L2-normalised features, squared Euclidean in [0, 4]) so that pools are comparable.
    # One MixtureOT per pool (base domains + that pool) keeps memory at (n_base + n_pool) x n_target.
    results = []
    for name, docs in pools.items():
        keys = {name: _pool_key(name, base_feats)}
        mot = MixtureOT({**base_feats, keys[name]: pool_feats[name]}, target, method=method, reg=reg, cost_scale=None)
        alone = mot.distance({keys[name]: 1.0})
        if not base_w:
            weight, metric = 1.0, alone
            by = "ot"
            if projector is not None:
                metric = float(_projector_metric(projector, {name: 1.0}, budget_tokens))
                by = _by(projector, budget_tokens)
        elif projector is None:
            weight, metric = _line_search(lambda w: mot.distance(_blend(base_w, keys[name], w)), grid)
            by = "ot"
        else:
            weight, metric = _line_search(lambda w: _projector_metric(projector, _blend(base_w, name, w), budget_tokens), grid)
            by = _by(projector, budget_tokens)
        n_tok = float(sum(tokens_of(d) for d in docs))
        declared = (pool_doc_counts or {}).get(name)
        n_pool = float(declared) if declared is not None else float(len(docs))
        n_tok *= n_pool / len(docs)
        at_budget = float(weight) * float(budget_tokens) if budget_tokens is not None else None
        results.append({"pool": name, "ot_distance": float(alone), "best_weight": float(weight),
                        "blend_ot_distance": float(metric) if by == "ot" else None,
                        "predicted_metric": float(metric) if by != "ot" else None,
                        "projected_metric": float(metric), "projected_by": by, "unique_tokens_estimate": n_tok,
                        "tokens_at_budget": at_budget,
                        "epochs_at_budget": at_budget / n_tok if at_budget is not None and n_tok > 0 else None,
                        "n_docs_sampled": len(docs), "n_docs_pool": int(n_pool) if n_pool.is_integer() else n_pool})
    return sorted(results, key=lambda r: (r["projected_metric"], r["ot_distance"], r["pool"]))


def _nonempty(docs, where: str, fix: str) -> None:
    if isinstance(docs, str) or not isinstance(docs, Sequence) or len(docs) == 0:
        raise DataError(f"{where} must be a non-empty list of documents. Got {type(docs).__name__} "
                        f"with {0 if isinstance(docs, str) or not isinstance(docs, Sequence) else len(docs)} documents. {fix}")


def _pool_key(name: str, base: Mapping) -> str:
    key = name
    while key in base:
        key = "pool:" + key
    return key


def _blend(base_w: Mapping[str, float], pool: str, w: float) -> dict[str, float]:
    out = {n: (1.0 - w) * v for n, v in base_w.items()}
    out[pool] = out.get(pool, 0.0) + w
    total = sum(out.values())
    return {n: v / total for n, v in out.items()}


def _by(projector, budget_tokens) -> str:
    return f"projector@{budget_tokens:g}" if isinstance(projector, TwoStageProjector) else "projector"


def _projector_metric(projector, mixture: dict[str, float], budget_tokens) -> float:
    domains = projector.ot.domains if projector.ot is not None else None
    if domains is None or set(mixture) - set(domains):
        raise MixtureError(f"The projector only knows domains {domains}, but scoring needs {sorted(mixture)}. Fit the projector "
                           "on proxy runs whose mixtures include each pool and the base domains, or pass projector=None.")
    row = [mixture]
    if isinstance(projector, TwoStageProjector):
        return float(projector.predict(row, n_tokens=budget_tokens)[0])
    return float(projector.predict(row)[0])


def _line_search(fun: Callable[[float], float], grid: int) -> tuple[float, float]:
    """Minimise ``fun`` on ``[0, 1]``: grid, then bounded Brent around the best grid point."""
    from scipy.optimize import minimize_scalar

    ws = np.linspace(0.0, 1.0, max(int(grid), 3))
    vals = np.array([fun(float(w)) for w in ws])
    i = int(np.argmin(vals))
    best_w, best_v = float(ws[i]), float(vals[i])
    lo, hi = float(ws[max(i - 1, 0)]), float(ws[min(i + 1, len(ws) - 1)])
    res = minimize_scalar(fun, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3, "maxiter": 20})
    if res.success and float(res.fun) < best_v:
        best_w, best_v = float(res.x), float(res.fun)
    return best_w, best_v
