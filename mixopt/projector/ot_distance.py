"""Optimal transport between a data mixture and a target set, with gradients.

A mixture ``p`` over ``K`` domains puts mass ``a_j = p_i / n_i`` on each of the
``n_i`` feature vectors of domain ``i`` (``N = sum_i n_i`` source samples in
all); the ``m`` target samples carry ``b_k = 1/m``. With the cost matrix ``M``
of shape ``(N, m)``,

.. math:: OT(p) = \\min_{P \\ge 0,\\ P 1 = a(p),\\ P^T 1 = b} \\langle P, M \\rangle

(``method="emd"``, exact, ``ot.emd``) or the entropic plan of
``OT_eps(p) = min <P, M> + reg * KL(P | a b^T)`` (``method="sinkhorn"``,
``ot.sinkhorn``; same plan as POT's ``reg * sum P log P`` form), whose linear
cost ``<P, M>`` is reported, as ``ot.sinkhorn2`` does.

``M`` is built once per :class:`MixtureOT` (features L2-normalised, squared
Euclidean or cosine cost, then divided by its maximum so that ``M`` lies in
``[0, 1]`` and ``reg`` has the same meaning for every feature set) and reused for
every mixture.

References
----------
Kang, F., Just, H. A., Sahu, A. K., & Jia, R. (2023). Performance Scaling via
Optimal Transport: Enabling Data Selection from Partially Revealed Sources. NeurIPS.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from ..errors import ConvergenceError, DataError, MixtureError
from ..mixtures import SUM_TOLERANCE, check_simplex_rows



class MixtureOT:
    """OT distance of many mixtures to one target set, sharing one cost matrix.

    Parameters
    ----------
    source_features : dict[str, ndarray of shape (n_i, d)]
        Features of each domain's samples. Domains are ordered by name.
    target_features : ndarray of shape (m, d)
    method : {"emd", "sinkhorn"}, default "emd"
    reg : float, default 0.05
        Entropic regularisation (relative to the max-normalised cost), Sinkhorn only.
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
    normalize_features : bool, default True
        L2-normalise every feature row before computing the cost.
    cost_scale : {"max", "mean", None}, default "max"
        Divide ``M`` by its max (or mean) entry. The scale depends on the
        samples, so values from two ``MixtureOT`` objects are comparable only
        with ``cost_scale=None`` (with normalised features ``M`` is then in
        ``[0, 4]`` for squared Euclidean, ``[0, 2]`` for cosine).
    num_itermax : int, optional
        Iteration cap: default 100000 for EMD, 10000 for Sinkhorn.
    stop_thr : float, default 1e-9
        Sinkhorn stopping threshold on the marginal violation.
    marginal_tol : float, default 1e-5
        Sinkhorn's plan must meet both marginals within this L1 error, else
        :class:`ConvergenceError`.
    sinkhorn_method : {"sinkhorn", "sinkhorn_log"}, default "sinkhorn"
        ``"sinkhorn_log"`` is slower but stable for small ``reg``.

    Attributes
    ----------
    domains : list[str]
    sizes : ndarray of shape (K,)   -- ``n_i``
    cost : ndarray of shape (N, m)  -- the normalised cost matrix ``M``
    """

    def __init__(self, source_features: Mapping[str, np.ndarray], target_features: np.ndarray, *, method: str = "emd",
                 reg: float = 0.05, metric: str = "sqeuclidean", normalize_features: bool = True,
                 cost_scale: str | None = "max", num_itermax: int | None = None, stop_thr: float = 1e-9,
                 marginal_tol: float = 1e-5, sinkhorn_method: str = "sinkhorn"):
        import ot

        if method not in ("emd", "sinkhorn"):
            raise MixtureError(f"method must be 'emd' or 'sinkhorn'. Got {method!r}. Use 'emd' (exact) or 'sinkhorn' (faster, entropic).")
        if method == "sinkhorn" and not (np.isfinite(reg) and reg > 0):
            raise MixtureError(f"reg must be a positive number for Sinkhorn. Got {reg!r}. Try reg=0.05.")
        if metric not in ("sqeuclidean", "cosine"):
            raise MixtureError(f"metric must be 'sqeuclidean' or 'cosine'. Got {metric!r}.")
        if cost_scale not in ("max", "mean", None):
            raise MixtureError(f"cost_scale must be 'max', 'mean' or None. Got {cost_scale!r}.")
        if not isinstance(source_features, Mapping) or not source_features:
            raise DataError("source_features must be a non-empty mapping domain -> (n_i, d) array. Got "
                            f"{type(source_features).__name__} with no domains. Featurize at least one domain.")
        self.method, self.reg, self.metric = method, float(reg), metric
        self.num_itermax = num_itermax if num_itermax is not None else (100000 if method == "emd" else 10000)
        self.stop_thr, self.marginal_tol, self.sinkhorn_method = stop_thr, marginal_tol, sinkhorn_method
        self.domains = sorted(source_features)
        target = _as_features(target_features, "the target")
        blocks = [_as_features(source_features[d], f"domain '{d}'") for d in self.domains]
        dims = {b.shape[1] for b in blocks} | {target.shape[1]}
        if len(dims) != 1:
            raise DataError(f"All features must have the same dimension. Got dimensions {sorted(dims)} across domains "
                            f"{self.domains} and the target. Featurize everything with the same featurizer.")
        self.sizes = np.array([b.shape[0] for b in blocks])
        self.n_target = target.shape[0]
        self._owner = np.repeat(np.arange(len(self.domains)), self.sizes)  # (N,) domain index of each sample
        x = np.concatenate(blocks, axis=0)
        if normalize_features:
            x, target = _normalise(x), _normalise(target)
        m = ot.dist(x, target, metric="sqeuclidean" if metric == "sqeuclidean" else "cosine")
        m = np.maximum(m, 0.0)
        scale = {"max": m.max(), "mean": m.mean(), None: 1.0}[cost_scale]
        self.cost = m / scale if scale > 0 else m
        self._b = np.full(self.n_target, 1.0 / self.n_target)

    # ------------------------------------------------------------ inputs
    def vector(self, p) -> np.ndarray:
        """Mixture as a validated vector of shape ``(K,)`` in ``self.domains`` order."""
        if isinstance(p, Mapping):
            unknown = sorted(set(p) - set(self.domains))
            if unknown:
                raise MixtureError(f"The mixture names domains {unknown} that have no samples in the OT cost matrix "
                                   f"(domains with samples: {self.domains}). Featurize those domains or drop them from the mixture.")
            p = [float(p.get(d, 0.0)) for d in self.domains]
        v = np.asarray(p, dtype=float)
        if v.shape != (len(self.domains),):
            raise MixtureError(f"A mixture vector must have one weight per domain, shape ({len(self.domains)},) for "
                               f"{self.domains}. Got shape {v.shape}. Pass a dict domain -> weight or reorder by domain name.")
        return check_simplex_rows(v[None, :], where=f"the mixture over {self.domains}", tolerance=SUM_TOLERANCE)[0]

    def source_weights(self, p) -> np.ndarray:
        """Per-sample masses ``a_j = p_i / n_i``: array of shape ``(N,)`` summing to 1."""
        v = self.vector(p)
        a = (v / self.sizes)[self._owner]
        return a / a.sum()

    # ------------------------------------------------------------ core
    def _solve(self, p, need_duals: bool, need_objective: bool = False):
        """Return ``(linear cost, objective or None, f of shape (N,) or None)``."""
        import ot

        a = self.source_weights(p)
        support = a > 0
        full = bool(support.all())
        m = self.cost if full else self.cost[support]
        a_s = a if full else a[support] / a[support].sum()
        if self.method == "emd":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan, log = ot.emd(a_s, self._b, m, numItermax=self.num_itermax, log=True)
            if log["result_code"] != 1:
                raise ConvergenceError(f"Exact OT (ot.emd) stopped before the optimum: {log['warning']}. Raise num_itermax "
                                       f"(now {self.num_itermax}) or use method='sinkhorn'.")
            value = float(log["cost"])
            g = log["v"]
            objective = value
        else:  # entropic
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan, log = ot.sinkhorn(a_s, self._b, m, self.reg, method=self.sinkhorn_method,
                                        numItermax=self.num_itermax, stopThr=self.stop_thr, log=True)
            err = np.abs(plan.sum(1) - a_s).sum() + np.abs(plan.sum(0) - self._b).sum() if np.all(np.isfinite(plan)) else np.nan
            if not np.isfinite(err) or err > self.marginal_tol:
                raise ConvergenceError(
                    f"Sinkhorn did not converge: marginal error {err:.3g} > marginal_tol={self.marginal_tol:g} after at most "
                    f"{self.num_itermax} iterations with reg={self.reg:g}. Raise reg, raise num_itermax, or use "
                    "sinkhorn_method='sinkhorn_log' / method='emd'.")
            value = float(np.sum(plan * m))
            objective = None
            if need_objective:
                nz = plan > 0
                outer = (a_s[:, None] * self._b[None, :])[nz]
                objective = value + self.reg * float(np.sum(plan[nz] * np.log(plan[nz] / outer)))
            log_u = log["log_u"] if "log_u" in log else np.log(log["u"])
            log_v = log["log_v"] if "log_v" in log else np.log(log["v"])
            g = self.reg * log_v
        if not need_duals:
            return value, objective, None
        if self.method == "emd":
            f = np.empty(a.shape[0])
            f[support] = log["u"]
            if not full:  # extend the potential to zero-mass samples by the c-transform of g
                f[~support] = (self.cost[~support] - g[None, :]).min(axis=1)
        else:
            # The gradient of OT_eps in a_j is the soft c-transform -reg * log sum_k exp((g_k - M_jk) / reg) (+ const).
            # POT updates u last, so u_j = a_j / (K v)_j and on the support this is reg * (log u_j - log a_j): O(N).
            f = np.empty(a.shape[0])
            f[support] = self.reg * (log_u - np.log(a_s))
            if not full:  # zero-mass samples: the soft c-transform itself, finite where a_j = 0
                from scipy.special import logsumexp

                f[~support] = -self.reg * logsumexp((g[None, :] - self.cost[~support]) / self.reg, axis=1)
        return value, objective, f

    def distance(self, p) -> float:
        """OT cost ``<P, M>`` of mixture ``p`` (dict or vector of shape ``(K,)``) to the target."""
        return self._solve(p, need_duals=False)[0]

    def distances(self, W) -> np.ndarray:
        """OT cost of each row of ``W`` (shape ``(n, K)`` or a list of dicts): array of shape ``(n,)``."""
        return np.array([self.distance(p) for p in (W if not isinstance(W, np.ndarray) else list(W))])

    def objective(self, p) -> float:
        """The value whose gradient :meth:`distance_and_grad` returns.

        ``<P, M>`` for EMD; ``OT_eps = <P, M> + reg * KL(P | a b^T)`` at the
        Sinkhorn plan (>= 0, and >= the linear cost).
        """
        return self._solve(p, need_duals=False, need_objective=True)[1]

    def distance_and_grad(self, p) -> tuple[float, np.ndarray]:
        """OT cost of ``p`` and its gradient with respect to ``p`` (shape ``(K,)``).

        With a source potential ``f`` of shape ``(N,)`` the envelope theorem
        gives ``dOT/da_j = f_j + c`` and, since ``a_j = p_i / n_i`` for ``j`` in
        domain ``i`` (the set ``S_i``),

        .. math:: \\partial OT / \\partial p_i = \\frac{1}{n_i} \\sum_{j \\in S_i} f_j + c .

        ``f`` is ``ot.emd``'s dual ``u`` (EMD), or the soft c-transform
        ``f_j = -reg * log sum_k b_k exp((g_k - M_jk) / reg)`` of the target
        potential ``g = reg * log v`` (Sinkhorn), which is the exact gradient of
        ``OT_eps`` (:meth:`objective`) in ``a``. Samples of domains with
        ``p_i = 0`` get ``f_j`` by the (hard or soft) c-transform of ``g``, so the
        gradient stays finite on the boundary of the simplex.

        The dual is defined only up to the constant ``c`` (adding ``c`` to ``f``
        and removing it from ``g`` leaves the dual objective unchanged because
        both marginals have mass 1), and so is the gradient: only derivatives
        along the simplex, ``sum_i dp_i = 0``, are defined. We return the
        projection onto that tangent space (the mean over domains is
        subtracted), so ``grad @ d`` is the directional derivative for every
        feasible direction ``d`` whatever ``c`` the solver picked. The formula of
        Kang et al. (2023), ``(1/n_i) [sum_{S_i} f - n_i/(N - n_i) sum_{not S_i} f]
        = mean_{S_i} f - mean_{not S_i} f``, is also invariant to ``c``; for equal
        ``n_i`` it equals ``K/(K-1)`` times ours, otherwise it is the derivative
        along a direction that takes mass from all other samples uniformly
        rather than from the other domains' weights.

        For Sinkhorn the returned value is the linear cost ``<P, M>`` while the
        gradient is that of ``OT_eps``; they agree as ``reg -> 0``. For EMD, OT
        is convex and piecewise linear in ``p``; at a degenerate point the
        gradient is one subgradient.

        Returns
        -------
        value : float
        grad : ndarray of shape (K,), summing to 0
        """
        value, _, f = self._solve(p, need_duals=True)
        per_domain = np.bincount(self._owner, weights=f, minlength=len(self.domains)) / self.sizes
        return value, per_domain - per_domain.mean()


def _as_features(x, where: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2:
        raise DataError(f"Features must have shape (n_samples, dim). Got shape {arr.shape} for {where}. Featurize a list of docs.")
    if arr.shape[0] == 0:
        raise DataError(f"OT needs at least one sample per domain and target. Got 0 samples for {where}. "
                        "Add documents or drop that domain.")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"Features must be finite. Got NaN/inf in {where}. Check the documents and the featurizer.")
    return arr


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
