"""LightGBM surrogates: RegMix's exact settings, plus uncertainty by bootstrap."""

from __future__ import annotations

import numpy as np

from .base import Surrogate

#: RegMix's regressor settings (sail-sg/regmix, regression notebook); LightGBM
#: defaults otherwise: num_leaves 31, min_child_samples 20, no subsampling.
REGMIX_PARAMS = dict(objective="regression", boosting_type="gbdt", learning_rate=1e-2, n_estimators=1000,
                     num_leaves=31, verbose=-1)


class RegMixLightGBM(Surrogate):
    """RegMix's LightGBM regressor on raw weights, without early stopping.

    The mean is one ``LGBMRegressor`` with RegMix's settings. The std comes
    from ``n_bootstrap`` extra models fitted on bootstrap resamples: their
    spread plus the out-of-bag residual variance the spread does not explain.

    Parameters
    ----------
    n_bootstrap : int
        Bootstrap models used only for ``return_std`` (0 gives a constant
        std from the training residuals).
    random_state : int
        Seed of LightGBM and of the bootstrap draws.
    n_jobs : int
        LightGBM threads.
    """

    #: min_child_samples=20 allows no split below 40 rows (the model would be constant)
    min_runs = 40

    def __init__(self, n_bootstrap: int = 8, random_state: int = 0, n_jobs: int = 1):
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _params(self):
        return dict(REGMIX_PARAMS)

    def _make(self, seed):
        from lightgbm import LGBMRegressor

        return LGBMRegressor(**self._params(), random_state=seed, n_jobs=self.n_jobs)

    def _fit(self, W, y):
        self.model_ = self._make(self.random_state).fit(W, y)
        rng = np.random.default_rng(self.random_state)
        self.bag_ = []
        oob_sq = []
        for b in range(self.n_bootstrap):
            idx = rng.integers(0, len(y), len(y))
            m = self._make(self.random_state + 1 + b).fit(W[idx], y[idx])
            self.bag_.append(m)
            out = np.setdiff1d(np.arange(len(y)), idx)
            if len(out):
                oob_sq.append((m.predict(W[out]) - y[out]) ** 2)
        if oob_sq:
            spread = np.var([m.predict(W) for m in self.bag_], axis=0).mean() if len(self.bag_) > 1 else 0.0
            self.noise_var_ = float(max(np.concatenate(oob_sq).mean() - spread, 0.0))
        else:
            self.noise_var_ = float(np.var(y - self.model_.predict(W)))
        self.noise_var_ = max(self.noise_var_, (1e-3 * self.y_scale_) ** 2)

    def _predict(self, W, return_std):
        mean = self.model_.predict(W)
        if not return_std:
            return mean, None
        spread = np.var([m.predict(W) for m in self.bag_], axis=0) if len(self.bag_) > 1 else 0.0
        return mean, np.sqrt(spread + self.noise_var_)
