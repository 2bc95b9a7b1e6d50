"""Tests for mixopt.surrogates: contract, validation, accuracy on synthetic data, persistence, CV."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from mixopt.errors import FitError, MixoptError, MixtureError, NotFittedError
from mixopt.surrogates import (ESTIMATORS, cross_validate, get_estimator, load_model, plot_pred_vs_actual,
                               save_model)

NAMES = ["default", "regmix-lightgbm", "linear", "mixing-law"]
FAST = {"regmix-lightgbm": {"n_bootstrap": 2}}


def make(name, **kw):
    return get_estimator(name, **{**FAST.get(name, {}), **kw})


def synthetic(n, d=5, seed=0, noise=0.005):
    """A smooth simplex -> loss function: a mixing-law-like decay plus curvature."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.full(d, 0.8), n)
    t = np.linspace(-2.0, 0.5, d)
    y = 3.0 + 0.8 * np.exp(W @ t) + 0.3 * (W[:, 0] - 0.3) ** 2 + noise * rng.normal(size=n)
    return W, y


@pytest.fixture(scope="module")
def data():
    W, y = synthetic(160, seed=1)
    return W[:120], y[:120], W[120:], y[120:]


@pytest.mark.parametrize("name", NAMES)
def test_fits_synthetic_and_std_is_positive(name, data):
    Wtr, ytr, Wte, yte = data
    m = make(name).fit(Wtr, ytr)
    assert m is not None and m.n_features_in_ == 5
    mean, std = m.predict(Wte, return_std=True)
    assert mean.shape == std.shape == (len(Wte),)
    assert np.all(np.isfinite(std)) and np.all(std > 0)
    bar = {"linear": 0.85, "regmix-lightgbm": 0.85}.get(name, 0.95)
    assert spearmanr(mean, yte)[0] > bar


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_random_state(name, data):
    Wtr, ytr, Wte, _ = data
    a = make(name).fit(Wtr, ytr).predict(Wte, return_std=True)
    b = make(name).fit(Wtr, ytr).predict(Wte, return_std=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("name", NAMES)
def test_validation_errors(name, data):
    Wtr, ytr, _, _ = data
    m = make(name)
    with pytest.raises(NotFittedError, match="not fitted"):
        m.predict(Wtr)
    need = m.min_rows(Wtr.shape[1])
    with pytest.raises(FitError, match=f"at least {need} runs"):
        m.fit(Wtr[: need - 1], ytr[: need - 1])
    with pytest.raises(FitError, match="constant"):
        m.fit(Wtr, np.full(len(ytr), 2.0))
    y_nan = ytr.copy()
    y_nan[3] = np.nan
    with pytest.raises(FitError, match="finite"):
        m.fit(Wtr, y_nan)
    with pytest.raises(FitError, match="values, but W has"):
        m.fit(Wtr, ytr[:-1])
    m.fit(Wtr, ytr)
    with pytest.raises(MixtureError, match=f"X has 3 features, but {type(m).__name__} is expecting 5 features"):
        m.predict(np.full((2, 3), 1 / 3))


def test_weight_validation_and_renormalisation(data):
    Wtr, ytr, Wte, _ = data
    m = make("linear").fit(Wtr, ytr)
    np.testing.assert_allclose(m.predict(Wte * 1.005), m.predict(Wte))  # within 1e-2: renormalised
    with pytest.raises(MixtureError, match="sum to 1"):
        m.predict(Wte * 1.1)
    bad = Wte.copy()
    bad[0, 0] = -0.1
    with pytest.raises(MixtureError, match=">= 0"):
        m.predict(bad)
    with pytest.raises(MixtureError, match="2-D"):
        m.predict(Wte[0])


def test_small_store_default():
    W, y = synthetic(20, d=7, seed=3)
    mean, std = get_estimator("default").fit(W, y).predict(W, return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)


def test_registry_and_params():
    assert set(NAMES) <= set(ESTIMATORS)
    with pytest.raises(MixoptError, match="Known surrogates"):
        get_estimator("nope")
    with pytest.raises(MixoptError, match=r"LinearSurrogate \('linear'\) has no parameters \['bogus'\]"):
        get_estimator("linear", bogus=1)
    m = get_estimator("default", eps=0.01)
    assert m.get_params()["eps"] == 0.01
    assert m.set_params(eps=0.02).eps == 0.02
    for cls in ESTIMATORS.values():
        assert isinstance(cls.min_runs, int)


def test_save_load_round_trip(tmp_path, data):
    Wtr, ytr, Wte, _ = data
    m = make("default").fit(Wtr, ytr)
    path = save_model(m, tmp_path / "m.pkl", {"domains": list("abcde"), "target": "val/loss"})
    m2, meta = load_model(path)
    np.testing.assert_array_equal(m.predict(Wte), m2.predict(Wte))
    assert meta == {"domains": list("abcde"), "target": "val/loss"}
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(MixoptError, match="not a readable"):
        load_model(tmp_path / "junk.pkl")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(MixoptError, match="envelope"):
        load_model(tmp_path / "other.pkl")
    with pytest.raises(MixoptError, match="does not exist"):
        load_model(tmp_path / "missing.pkl")


def test_cross_validate_outputs(tmp_path, data):
    Wtr, ytr, _, _ = data
    r = cross_validate(make("linear"), Wtr, ytr, k=4, seed=0)
    for key in ("spearman", "pearson", "mae", "regret_at_1", "within_1sd", "within_2sd"):
        assert np.isfinite(r[key])
    assert r["oof_pred"].shape == r["oof_std"].shape == (len(ytr),)
    assert r["regret_at_1"] >= 0 and 0 <= r["within_1sd"] <= r["within_2sd"] <= 1
    assert set(np.unique(r["fold"])) == {0, 1, 2, 3}
    r2 = cross_validate(make("linear"), Wtr, ytr, k=4, seed=0)
    np.testing.assert_array_equal(r["oof_pred"], r2["oof_pred"])
    with pytest.raises(FitError, match="k must be"):
        cross_validate(make("linear"), Wtr, ytr, k=1)
    png = plot_pred_vs_actual(ytr, r["oof_pred"], tmp_path / "p.png", "cv")
    assert png.stat().st_size > 1000


def test_grouped_cv_ignores_row_order_and_keeps_repeats_together(data):
    """The store's CV: folds by mixture content, so the same runs under other run ids (another row order) give the same
    figures, and a seed repeat is never predicted by its twin."""
    from mixopt.surrogates.crossval import mixture_groups

    Wtr, ytr, _, _ = data
    W = np.vstack([Wtr[:30], Wtr[:6]])  # six mixtures trained twice
    y = np.concatenate([ytr[:30], ytr[:6] + 0.01])
    g = mixture_groups(W)
    assert len(np.unique(g)) == 30 and np.array_equal(g[30:], g[:6])
    r = cross_validate(make("linear"), W, y, k=5, seed=0, groups=g)
    assert np.array_equal(r["fold"][30:], r["fold"][:6])
    order = np.random.default_rng(1).permutation(len(y))
    r2 = cross_validate(make("linear"), W[order], y[order], k=5, seed=0, groups=mixture_groups(W[order]))
    np.testing.assert_allclose(r2["oof_pred"], r["oof_pred"][order])
    assert r2["spearman"] == pytest.approx(r["spearman"])
    with pytest.raises(FitError, match="distinct mixtures"):
        cross_validate(make("linear"), W[:2], y[:2], k=2, groups=[0, 0])


def _regmix_dir():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from _regmix_data import available, data_dir

    d = data_dir()
    return d if available(d) else None


@pytest.mark.skipif(_regmix_dir() is None, reason="RegMix tables not found (set MIXOPT_REGMIX_DIR or place them in ../shared/anchors/regmix)")
def test_default_beats_linear_on_regmix():
    from _regmix_data import load_regmix

    d = load_regmix(_regmix_dir())
    idx = np.random.default_rng(0).choice(len(d.y_train), 128, replace=False)
    scores = {}
    for name in ("default", "linear"):
        m = get_estimator(name).fit(d.W_train[idx], d.y_train[idx])
        scores[name] = spearmanr(m.predict(d.W_test), d.y_test_1m)[0]
    assert scores["default"] > scores["linear"] + 0.05


def test_metric_average_fits_components_and_scores_the_combined_target():
    from mixopt.surrogates import GPSurrogate, MetricAverage, cross_validate

    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(4), size=40)
    Y = np.column_stack([2.0 - np.log(W[:, j] + 0.05) * 0.3 for j in range(4)])  # each domain's loss falls with its weight
    est = MetricAverage(GPSurrogate(), weights=[1, 1, 2, 0])
    cv = cross_validate(est, W, Y, k=4, seed=0)
    y = Y @ np.array([0.25, 0.25, 0.5, 0.0])
    assert np.allclose(est.combine(Y), y)
    assert cv["spearman"] > 0.8 and cv["oof_pred"].shape == (40,)
    mean, std = est.fit(W, Y).predict(W[:5], return_std=True)
    assert mean.shape == std.shape == (5,) and np.all(std > 0)
    assert np.abs(mean - y[:5]).max() < 0.1


# ---------------------------------------------------------------- sklearn conventions, names, messages (issues 10, 16)

def test_errors_name_the_class_not_the_registry_key(data):
    Wtr, ytr, _, _ = data
    with pytest.raises(FitError, match=r"^GPSurrogate needs at least 4 runs for 5 domains\. Got n_samples=3"):
        get_estimator("default").fit(Wtr[:3], ytr[:3])
    with pytest.raises(NotFittedError, match="This RegMixLightGBM estimator is not fitted"):
        get_estimator("regmix-lightgbm").predict(Wtr)
    with pytest.raises(FitError, match="constant .* so MixingLawSurrogate has nothing"):
        get_estimator("mixing-law").fit(Wtr, np.ones(len(ytr)))


def test_one_run_says_so_instead_of_blaming_a_constant_target(data):
    Wtr, ytr, _, _ = data
    with pytest.raises(FitError, match=r"needs at least 2 runs to learn from\. Got n_samples=1"):
        cross_validate(make("linear"), Wtr[:1], ytr[:1], k=2)
    with pytest.raises(FitError, match="requires y to be passed, but the target y is None"):
        make("linear").fit(Wtr, None)


def test_unknown_name_does_not_blame_the_config():
    with pytest.raises(MixoptError) as info:
        get_estimator("lightgbm", where="--model")
    msg = str(info.value)
    assert "'lightgbm' (from --model)" in msg and "regmix-lightgbm" in msg and "config" not in msg


def test_every_estimator_defaults_to_random_state_0():
    for name, cls in ESTIMATORS.items():
        params = cls().get_params()
        if "random_state" in params:
            assert params["random_state"] == 0, name


def test_save_model_creates_missing_folders(tmp_path, data):
    Wtr, ytr, _, _ = data
    out = save_model(make("linear").fit(Wtr, ytr), tmp_path / "no" / "dir" / "m.pkl", {"domains": list("abcde")})
    assert out.exists() and load_model(out)[1] == {"domains": list("abcde")}


def test_metric_average_clones_its_estimator_and_passes_noise():
    from mixopt.surrogates import GPSurrogate, MetricAverage

    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.ones(3), size=24)
    Y = np.column_stack([2.0 - 0.3 * np.log(W[:, j] + 0.05) + 0.01 * rng.normal(size=24) for j in range(3)])
    proto = GPSurrogate(n_restarts=0)
    est = MetricAverage(proto, random_state=3, noise_variance=[1e-4, 2e-4, 3e-4]).fit(W, Y)
    assert not hasattr(proto, "n_features_in_")  # the prototype is cloned, never fitted
    assert [m.random_state for m in est.estimators_] == [3, 3, 3]
    assert [m.noise_variance_ for m in est.estimators_] == pytest.approx([1e-4, 2e-4, 3e-4])
    assert MetricAverage(GPSurrogate(n_restarts=0)).fit(W, Y[:, 0]).predict(W[:2]).shape == (2,)  # 1-D y: one metric
    with pytest.raises(FitError, match="one per column of Y"):
        MetricAverage(proto, noise_variance=[1e-4, 2e-4]).fit(W, Y)
    with pytest.raises(FitError, match="LinearSurrogate has no noise_variance"):
        MetricAverage(get_estimator("linear"), noise_variance=1e-4).fit(W, Y)
    # a registry name still works, and equals the estimator it names
    a = MetricAverage("default").fit(W, Y).predict(W[:3])
    np.testing.assert_allclose(a, MetricAverage(GPSurrogate()).fit(W, Y).predict(W[:3]))


def test_gp_fixes_the_white_noise_to_a_measured_variance():
    from mixopt.surrogates import GPSurrogate

    W, y = synthetic(40, d=4, seed=5, noise=0.02)
    free = GPSurrogate().fit(W, y)
    assert free.noise_variance_ > 0 and free.get_params()["noise_variance"] is None
    nv = 0.05**2
    fixed = GPSurrogate(noise_variance=nv).fit(W, y)
    assert fixed.noise_variance_ == pytest.approx(nv, rel=1e-9)
    _, std = fixed.predict(W, return_std=True)
    assert np.all(std >= np.sqrt(nv) * (1 - 1e-9))  # a new run carries at least the seed noise
    assert not np.allclose(fixed.predict(W), free.predict(W))
    for bad in (-1.0, float("nan"), "0.1"):
        with pytest.raises(FitError, match="noise_variance must be None or a finite variance"):
            GPSurrogate(noise_variance=bad).fit(W, y)


def test_seed_noise_and_signal_to_noise():
    from mixopt.surrogates import seed_noise, signal_to_noise

    y = np.array([1.0, 1.2, 3.0, 3.4, 3.2, 5.0])
    groups = ["a", "a", "b", "b", "b", "c"]
    var, dof = seed_noise(y, groups)
    assert dof == 3  # (2 - 1) + (3 - 1) + (1 - 1)
    assert var == pytest.approx((0.02 + 0.08) / 3)  # a: 2 * 0.1^2, b: 0.2^2 + 0.2^2 + 0
    snr = signal_to_noise(y, groups)
    assert snr == pytest.approx(np.std([1.1, 3.2, 5.0], ddof=1) / np.sqrt(var))
    assert signal_to_noise([1.0, 1.0, 2.0], [0, 0, 1]) == np.inf
    rng = np.random.default_rng(0)  # pure noise: the ratio is near 1 / sqrt(n_seeds)
    g = np.repeat(np.arange(200), 4)
    assert 0.35 < signal_to_noise(rng.normal(size=800), g) < 0.65
    assert seed_noise(rng.normal(0, 0.1, size=800), g)[0] == pytest.approx(0.01, rel=0.15)
    with pytest.raises(FitError, match="at least 2 seeds"):
        seed_noise([1.0, 2.0], ["a", "b"])
    with pytest.raises(FitError, match="at least 2 different mixtures"):
        signal_to_noise([1.0, 2.0], ["a", "a"])
    with pytest.raises(FitError, match="finite"):
        seed_noise([1.0, np.nan], ["a", "a"])
    with pytest.raises(FitError, match="one group label per value"):
        seed_noise([1.0, 2.0], ["a"])
