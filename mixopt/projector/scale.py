"""The OT projector across model size and tokens: stage 1 per trained scale, a line in (ln N, ln D) between them.

Inputs follow the scale-aware surrogates (:func:`mixopt.surrogates.scale_base.scale_inputs`):
``X = [W | model_params | tokens]``, shape ``(n, K + 2)``. With ``u = (log10 N, log10 D)``
minus the smallest trained scale (an axis the runs never varied is inactive):

1. **Stage 1 per scale.** At every trained scale ``s`` (``min_scale_runs`` runs or more)
   an :class:`~mixopt.projector.projector.OTProjector` gives ``m_s(p)``, the loss of mixture
   ``p`` as a quadratic-in-``p`` function of ``OT(p)``.
2. **Stage 2, generalised.** ``m_s(p) = l_s + e_s(p)``: the level ``l_s`` (the mean of ``m_s`` over
   the mixtures trained at every scale) and the mixture effect ``e_s(p)``. Both are carried to any scale by a
   line in ``u`` over the trained scales (design ``A = [1, u_s]``, shape ``(S, 1 + q)``):

   .. math:: \\hat L(p, u) = x(u)^T A^+ l + x(u)^T (A^T A + \\lambda P)^{-1} A^T e(p),
             \\quad x(u) = [1, u], \\ P = \\mathrm{diag}(0, 1, \\dots, 1)

   The level line is least squares (``A^+``, min-norm when scales are collinear). The effect's
   slope is shrunk by the ridge ``lambda`` (``effect_alpha``): with few scales a slope per mixture
   is mostly stage-1 noise. ``effect_alpha="auto"`` is empirical Bayes: with ``v`` the
   sampling variance of the unshrunk slopes (from the stage-1 fits' std) and ``tau^2 =
   max(0, mean(b^2) - mean(v))`` their spread beyond it, ``lambda = mean(sigma_fit^2) / tau^2``.

   ``interaction=True`` adds ``u_N u_D`` to ``x(u)`` (the size slope then depends on the budget)
   where the trained scales form a grid that determines it. A line in ``log10`` is a line in ``ln``.

   With two scales on one axis and ``effect_alpha=0`` this is
   :class:`~mixopt.projector.projector.TwoStageProjector` (the line through two stage-1 fits).

The predictive std combines the stage-1 predictive stds through the line's weights over
the scales, ``sum_s h_s(u)^2 sigma_s(p)^2`` (as the two-stage projector does), and the
training mixtures' misfit around the lines, ``tau_line^2 (1 + x(u)^T (A^T A)^+ x(u))``, when
there are more scales than line parameters. Both grow with the distance from the trained scales.
"""

from __future__ import annotations

import numpy as np

from ..errors import FitError
from ..surrogates.base import EstimatorNotFittedError
from ..surrogates.scale_base import ScaleEstimator
from .ot_distance import MixtureOT
from .projector import OTProjector, _design

AUTO_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # stage-1 ridge grid for alpha="auto" (leave-one-out choice)


def stage1_fit(ot: MixtureOT | None, W: np.ndarray, y: np.ndarray, o: np.ndarray, alpha) -> OTProjector:
    """One stage-1 fit; ``alpha="auto"`` takes the ridge penalty with the least leave-one-out error."""
    if not isinstance(alpha, str):
        return OTProjector(ot, alpha=float(alpha)).fit(W, y, ot_values=o)
    best = None
    for a in AUTO_ALPHAS:
        proj = OTProjector(ot, alpha=a).fit(W, y, ot_values=o)
        Z = (_design(W, o)[:, :-1] - proj.x_mean_) / proj.x_scale_
        h = 1.0 / len(y) + np.einsum("ij,jk,ik->i", Z, proj.cov_unscaled_, Z)
        loo = float(np.mean(((y - proj.predict(W, ot_values=o)) / np.maximum(1.0 - h, 1e-6)) ** 2))
        if best is None or loo < best[0]:
            best = (loo, proj)
    return best[1]


def fit_std(proj: OTProjector, W: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Std of a stage-1 fit's mean (no run noise), shape ``(n,)``."""
    Z = (_design(W, o)[:, :-1] - proj.x_mean_) / proj.x_scale_
    var = proj.noise_var_ * (1.0 / proj.n_samples_fit_ + np.einsum("ij,jk,ik->i", Z, proj.cov_unscaled_, Z))
    return np.sqrt(np.maximum(var, 0.0))


class ScaleProjector(ScaleEstimator):
    """OT projector carried across model size and tokens (see the module docstring).

    Parameters
    ----------
    ot : MixtureOT or None
        Computes ``OT(p)`` for the domains in column order. None: pass ``ot_values`` to fit and predict.
    alpha : float or "auto", default "auto"
        Stage-1 ridge penalty of every per-scale fit; "auto" picks it per scale by leave-one-out.
    effect_alpha : float or "auto", default "auto"
        Ridge on the slope of the mixture effect across scales (units: per decade², per scale); 0 = no
        shrinkage, ``inf`` = effects constant across scale (their mean over the trained scales).
    interaction : bool, default False
        Add ``u_N u_D`` to the lines (the model-size slope then depends on the budget) where the trained
        scales determine it (a grid of two or more sizes and budgets).
    min_scale_runs : int, default 6
        Scales with fewer runs are left out of stage 1.

    Attributes
    ----------
    stages_ : list[OTProjector]
        One stage-1 fit per used scale.
    scales_ : ndarray of shape (S, 2)
        ``log10`` of (model_params, tokens) of each used scale (NaN: unknown).
    levels_ : ndarray of shape (S,)
        Mean stage-1 prediction at each scale over the reference mixtures (those trained at every used
        scale; all training mixtures when fewer than 3 are).
    effect_alpha_ : float
        The effect ridge used (``inf``: effects constant across scale).
    line_var_ : float
        Misfit variance of the training mixtures around the lines (0 with no spare scales).
    """

    name = "scale-projector"
    min_runs = 3

    def __init__(self, ot: MixtureOT | None = None, *, alpha="auto", effect_alpha="auto", interaction: bool = False,
                 min_scale_runs: int = 6):
        self.ot = ot
        self.alpha = alpha
        self.effect_alpha = effect_alpha
        self.interaction = interaction
        self.min_scale_runs = min_scale_runs

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, ot_values=None) -> ScaleProjector:
        """Fit on ``X = [W | model_params | tokens]`` (n, K + 2) and losses ``y`` (n,); ``ot_values`` (n,) skips OT."""
        for name, v, inf_ok in (("alpha", self.alpha, False), ("effect_alpha", self.effect_alpha, True)):
            if not (isinstance(v, str) and v == "auto" or isinstance(v, (int, float)) and not isinstance(v, bool)
                    and v >= 0 and (np.isfinite(v) or inf_ok)):
                raise FitError(f"{name} must be 'auto' or a number >= 0{' (inf allowed)' if inf_ok else ', finite'}. "
                               f"Got {v!r}. Use {name}='auto'.")
        W, S, y = self._check_fit(X, y)
        o = self._ot(W, ot_values, "fit")
        keys = np.nan_to_num(S, nan=-1.0)
        used, stages = [], []
        for key in np.unique(keys, axis=0):
            rows = np.all(keys == key, axis=1)
            if rows.sum() >= max(self.min_scale_runs, 3):
                used.append(np.where(key == -1.0, np.nan, key))
                stages.append(stage1_fit(self.ot, W[rows], y[rows], o[rows], self.alpha))
        if len(used) < 2:
            counts = {tuple(float(10**v) if v != -1.0 else None for v in k): int(np.all(keys == k, axis=1).sum())
                      for k in np.unique(keys, axis=0)}
            raise FitError(f"{self.name} needs runs at two or more scales (model_params, tokens), each with "
                           f">= {self.min_scale_runs} runs, to extrapolate; got runs per scale {counts}. One scale transfers "
                           "rank only: use the one-scale OTProjector, or add runs (or checkpoints) at a second scale.")
        self.stages_, self.scales_ = stages, np.array(used)
        self.active_ = np.array([np.isfinite(self.scales_[:, j]).all() and np.ptp(self.scales_[:, j]) > 0
                                 for j in range(self.scales_.shape[1])])  # axes the used scales vary
        self.interaction_ = False
        if self.interaction and self.active_.all():
            self.interaction_ = True  # kept only where the scales determine it (a grid, not a line or an L)
            self.interaction_ = bool(np.linalg.matrix_rank(self._x(self.scales_)) == 4)
        self.A_ = self._x(self.scales_)
        ref_W, ref_o = self._reference(W, o, keys, used)
        M = np.array([st.predict(ref_W, ot_values=ref_o) for st in stages])  # (S, n_ref)
        F = np.array([fit_std(st, ref_W, ref_o) for st in stages])  # (S, n_ref)
        self.levels_ = M.mean(axis=1)
        self.level_coef_ = np.linalg.pinv(self.A_) @ self.levels_
        E = M - self.levels_[:, None]
        self.effect_alpha_ = self._effect_alpha(E, F) if self.effect_alpha == "auto" else float(self.effect_alpha)
        self.effect_op_ = self._effect_operator(self.effect_alpha_)  # (1 + q, S)
        fitted = self.A_ @ (self.level_coef_[:, None] + self.effect_op_ @ E)
        dof = len(stages) - np.linalg.matrix_rank(self.A_)
        self.line_var_ = float(((M - fitted) ** 2).sum() / (dof * M.shape[1])) if dof > 0 else 0.0
        self.xtx_pinv_ = np.linalg.pinv(self.A_.T @ self.A_)
        return self

    @staticmethod
    def _reference(W, o, keys, used):
        """The mixtures that set the levels: those trained at every used scale (each stage then speaks in-sample),
        else (fewer than 3 such) every training mixture; once each."""
        _, first = np.unique(W, axis=0, return_index=True)
        first = np.sort(first)
        at = [{W[i].tobytes() for i in np.flatnonzero(np.all(keys == np.nan_to_num(u, nan=-1.0), axis=1))} for u in used]
        common = [i for i in first if all(W[i].tobytes() in a for a in at)]
        idx = common if len(common) >= 3 else first
        return W[idx], o[idx]

    def _x(self, S) -> np.ndarray:
        """Line design ``[1, u]`` over the active scale axes (and ``u_N u_D`` with the interaction), shape ``(n, p)``."""
        U = self._u(np.atleast_2d(S))[:, self.active_]
        cols = [np.ones(len(U)), U] + ([U[:, :1] * U[:, 1:]] if getattr(self, "interaction_", False) else [])
        return np.column_stack(cols)

    def _effect_operator(self, lam: float) -> np.ndarray:
        A = self.A_
        P = np.diag(np.r_[0.0, np.ones(A.shape[1] - 1)])
        if np.isinf(lam):
            return np.vstack([np.full((1, len(A)), 1.0 / len(A)), np.zeros((A.shape[1] - 1, len(A)))])
        return np.linalg.pinv(A.T @ A + lam * P) @ A.T

    def _effect_alpha(self, E: np.ndarray, F: np.ndarray) -> float:
        """Empirical-Bayes ridge of the effect slopes: noise variance over the slopes' spread beyond their noise."""
        G = np.linalg.pinv(self.A_)[1:]  # (q, S): unshrunk slopes
        if len(G) == 0:
            return 0.0
        b2 = (G @ E) ** 2  # (q, n_ref)
        v = (G**2) @ F**2  # (q, n_ref) sampling variance of each slope
        tau2 = max(0.0, float(b2.mean() - v.mean()))
        noise = float((F**2).mean())
        return noise / tau2 if tau2 > 0 else np.inf

    # ------------------------------------------------------------------ predict
    def _weights(self, S) -> tuple[np.ndarray, np.ndarray]:
        """Per query row: the level at its scale (n,) and the weights over the trained scales' effects (n, S)."""
        x = self._x(S)
        return x @ self.level_coef_, x @ self.effect_op_

    def predict(self, X, return_std: bool = False, ot_values=None):
        """Predicted loss at each row's (mixture, model_params, tokens), shape ``(n,)``; with ``return_std`` also the std."""
        W, S = self._check_predict(X)
        o = self._ot(W, ot_values, "predict")
        level, H = self._weights(S)
        mean, var = level.copy(), np.zeros(len(W))
        for s, st in enumerate(self.stages_):
            m, sd = st.predict(W, return_std=True, ot_values=o)
            mean += H[:, s] * (m - self.levels_[s])
            var += (H[:, s] * sd) ** 2
        if not return_std:
            return mean
        x = self._x(S)
        var += self.line_var_ * (1.0 + np.einsum("ij,jk,ik->i", x, self.xtx_pinv_, x))
        return mean, np.sqrt(var)

    def predict_and_grad(self, p, model_params: float | None, tokens: float | None) -> tuple[float, np.ndarray]:
        """Predicted loss of one mixture ``p`` (K,) at one scale and its simplex gradient (K,) (needs ``ot``)."""
        if not hasattr(self, "stages_"):
            raise EstimatorNotFittedError(f"This {self.name} estimator is not fitted yet. Call fit(X, y) first.")
        self.check_target_scale(model_params, tokens)
        s = np.log10(np.array([np.nan if model_params is None else model_params, np.nan if tokens is None else tokens], dtype=float))
        level, H = self._weights(s[None, :])
        value, grad = float(level[0]), 0.0
        for j, st in enumerate(self.stages_):
            v, g = st.predict_and_grad(p)
            value += H[0, j] * (v - self.levels_[j])
            grad = grad + H[0, j] * g
        return value, np.asarray(grad, dtype=float)

    def _ot(self, W: np.ndarray, ot_values, where: str) -> np.ndarray:
        if ot_values is not None:
            o = np.asarray(ot_values, dtype=float)
            if o.shape != (len(W),) or not np.all(np.isfinite(o)):
                raise FitError(f"ot_values must be {len(W)} finite numbers, one per row of X, in {where}. Got shape {o.shape}. "
                               "Compute them with MixtureOT.distances(W).")
            return o
        if self.ot is None:
            raise FitError(f"OT values are needed in {where}: pass ot_values=..., or construct "
                           "ScaleProjector(ot=MixtureOT(...)).")
        if len(self.ot.domains) != W.shape[1]:
            raise FitError(f"X has {W.shape[1]} weight columns, but the projector's OT knows {len(self.ot.domains)} domains "
                           f"({self.ot.domains}) in {where}. Order the columns by sorted domain name, then model_params, tokens.")
        return self.ot.distances(W)


__all__ = ["ScaleProjector", "fit_std", "stage1_fit"]
