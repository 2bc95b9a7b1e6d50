"""The LR-annealing law: learning-rate areas by hand, recovery of a known law, WSD/cosine comparability, contract."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from mixopt.errors import FitError
from mixopt.proxy.schedule import schedule_info
from mixopt.surrogates.annealing import (
    AnnealingLaw,
    area_inputs,
    areas_of,
    lr_areas,
    momentum,
    record_areas,
    straight_run_areas,
)
from mixopt.surrogates.scale import scale_inputs

LR = 1e-3


def _cfg(schedule, **kw):
    base = {"schedule": schedule, "lr": LR, "min_lr_ratio": 0.1, "decay_fraction": 0.2, "warmup_fraction": 0.05, "checkpoints": [1.0]}
    return SimpleNamespace(**{**base, **kw})


def _s2(lrs, lam):
    m = s2 = 0.0
    for a, b in itertools.pairwise(lrs):
        m = lam * m + max(a - b, 0.0)
        s2 += m
    return s2


def test_constant_areas_by_hand():
    info = schedule_info(_cfg("constant"), 100)  # warm-up 5 steps: lr*(i+1)/6
    s1, s2 = lr_areas(info, 100)
    assert s1 == pytest.approx(LR * (1 + 2 + 3 + 4 + 5) / 6 + 95 * LR)
    assert s2 == 0.0  # the warm-up's rise is not annealing
    assert lr_areas(info, 40)[0] == pytest.approx(LR * 15 / 6 + 35 * LR)


def test_cosine_checkpoint_follows_the_runs_own_curve():
    info = schedule_info(_cfg("cosine"), 200)  # warm-up 10
    floor = 0.1 * LR
    lrs = [LR * (i + 1) / 11 if i < 10 else floor + 0.5 * (1 + math.cos(math.pi * (i - 10) / 190)) * (LR - floor) for i in range(200)]
    for at in (50, 120, 200):
        s1, s2 = lr_areas(info, at, half_life=7, half_life_unit="steps")
        assert s1 == pytest.approx(sum(lrs[:at]))
        assert s2 == pytest.approx(_s2(lrs[:at], 0.5 ** (1 / 7)))
    # half-life as a fraction of the run: 0.05 of 120 steps = 6 steps
    assert lr_areas(info, 120, half_life=0.05)[1] == pytest.approx(_s2(lrs[:120], 0.5 ** (1 / 6)))


def test_wsd_branch_follows_the_run_to_the_fork_then_its_own_decay():
    info = schedule_info(_cfg("wsd", checkpoints=[0.5, 1.0]), 100)  # warm-up 5, branch to 50 forks at 40
    assert info["branches"] == [[40, 50]]
    floor = 0.1 * LR
    lrs = [LR * (i + 1) / 6 if i < 5 else LR for i in range(40)] + [LR - (LR - floor) * (i - 40 + 1) / 10 for i in range(40, 50)]
    s1, s2 = lr_areas(info, 50, half_life=3, half_life_unit="steps")
    assert s1 == pytest.approx(sum(lrs))
    assert s2 == pytest.approx(_s2(lrs, 0.5 ** (1 / 3)))
    # the run's own end: decay over its last 20 steps
    main = [LR * (i + 1) / 6 if i < 5 else LR for i in range(80)] + [LR - (LR - floor) * (i - 80 + 1) / 20 for i in range(80, 100)]
    assert lr_areas(info, 100, half_life=3, half_life_unit="steps") == pytest.approx((sum(main), _s2(main, 0.5 ** (1 / 3))))
    # a straight WSD run to 100 steps is the run itself
    proxy = {"schedule": "wsd", "lr": LR, "min_lr_ratio": 0.1, "decay_fraction": 0.2, "warmup_fraction": 0.05, "batch_size": 4, "block_size": 8}
    assert straight_run_areas(proxy, 100 * 32, half_life=3, half_life_unit="steps") == pytest.approx(lr_areas(info, 100, half_life=3, half_life_unit="steps"))


def test_momentum_limits():
    lrs = [1.0, 1.0, 0.8, 0.6, 0.4]
    assert areas_of(lrs, 0.0)[1] == pytest.approx(0.6)  # no memory: the drops summed once each
    assert areas_of(lrs, math.inf)[1] == pytest.approx(0.0 + 0.2 + 0.4 + 0.6)  # full memory: area under the drop
    assert momentum(10, 100, "steps") == pytest.approx(momentum(0.1, 100, "run"))


def test_record_areas_reads_the_schedule_and_tokens_per_step():
    info = schedule_info(_cfg("wsd", checkpoints=[0.5, 1.0]), 100)
    rec = SimpleNamespace(run_id="r", info={"lr_schedule": info}, proxy={"batch_size": 4, "block_size": 8})
    assert record_areas(rec, 50 * 32) == lr_areas(info, 50)
    with pytest.raises(FitError, match="whole number"):
        record_areas(rec, 50 * 32 + 3)


# ---------------------------------------------------------------- the estimator

TRUE = {"alpha": 0.6, "l0": 2.0, "l1": -0.3, "a": 0.5, "a1": -0.1, "c": 0.8, "c1": 0.2, "gain_n": 0.2}


def _truth(W, N, s1, s2, s_ref):
    u = np.log10(N / 1e4)
    m = 0.3 * (W[:, 0] - 0.3) ** 2 - 0.15 * W[:, 1]
    return (TRUE["l0"] + TRUE["l1"] * u + TRUE["a"] * np.exp(TRUE["a1"] * u) * (s1 / s_ref) ** -TRUE["alpha"]
            - TRUE["c"] * np.exp(TRUE["c1"] * u) * (s2 / s_ref) + np.exp(TRUE["gain_n"] * u) * m)


@pytest.fixture(scope="module")
def synthetic():
    """Cosine checkpoints of 3 run lengths at two sizes (1e4, 1e5), 10 mixtures; truth at a third size (1e6)."""
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), 10)
    pts = [lr_areas(schedule_info(_cfg("cosine"), steps), at) for steps in (100, 200, 400) for at in (steps // 4, steps // 2, steps)]
    S = np.array(pts)
    s_ref = S[:, 0].max()
    rows = [(w, n, s) for n in (1e4, 1e5) for w in W for s in S]
    Wr = np.array([r[0] for r in rows]); Nr = np.array([r[1] for r in rows]); Sr = np.array([r[2] for r in rows])
    y = _truth(Wr, Nr, Sr[:, 0], Sr[:, 1], s_ref) + rng.normal(0, 0.002, len(rows))
    X = area_inputs(Wr, Nr, 1e5, Sr[:, 0], Sr[:, 1])
    return W, S, s_ref, X, y


def test_law_recovers_known_parameters(synthetic):
    W, S, s_ref, X, y = synthetic
    model = AnnealingLaw(mixture_gain=True).fit(X, y)
    assert math.exp(model.theta_[4]) == pytest.approx(TRUE["alpha"], abs=0.1)
    assert model.theta_[7] == pytest.approx(TRUE["gain_n"], abs=0.1)
    # the largest size, one decade beyond the data: level and ranking
    Xt = area_inputs(W, 1e6, 1e5, S[-1, 0], S[-1, 1])
    truth = _truth(W, np.full(len(W), 1e6), S[-1, 0], S[-1, 1], s_ref)
    mean, std = model.predict(Xt, return_std=True)
    assert np.mean(np.abs(mean - truth)) < 0.03 and spearmanr(mean, truth)[0] > 0.95
    assert np.mean(np.abs(mean - truth) <= 2 * std) >= 0.8


def test_std_grows_with_extrapolation_distance(synthetic):
    W, S, _, X, y = synthetic
    model = AnnealingLaw(mixture_gain=True).fit(X, y)
    stds = [model.predict(area_inputs(W[:4], n, 1e5, S[-1, 0], S[-1, 1]), return_std=True)[1].mean() for n in (1e5, 1e6, 1e7, 1e8)]
    assert all(a < b for a, b in itertools.pairwise(stds))
    far = model.predict(area_inputs(W[:4], 1e5, 1e5, 30 * S[-1, 0], S[-1, 1]), return_std=True)[1].mean()
    assert far > stds[0]  # 30x the largest trained forward area


def test_equal_areas_give_equal_predictions(synthetic):
    """A WSD branch and a cosine checkpoint are the same input to the law once their areas agree; tokens alone are not."""
    W, _, _, X, y = synthetic
    model = AnnealingLaw().fit(X, y)
    wsd = schedule_info(_cfg("wsd", checkpoints=[0.5, 1.0]), 400)
    s1, s2 = lr_areas(wsd, 200)  # the decay branch to 200 steps
    at_branch = model.predict(area_inputs(W, 1e5, 200 * 2048, s1, s2))
    at_cosine = model.predict(area_inputs(W, 1e5, 300 * 2048, s1, s2))  # a cosine checkpoint with those areas
    assert np.allclose(at_branch, at_cosine)
    cos = schedule_info(_cfg("cosine"), 400)
    assert not np.allclose(model.predict(area_inputs(W, 1e5, 200 * 2048, *lr_areas(cos, 200))), at_branch)


def test_schedule_parameter_gives_straight_run_areas(synthetic):
    W, _, _, X, y = synthetic
    proxy = {"schedule": "wsd", "lr": LR, "batch_size": 16, "block_size": 128}
    model = AnnealingLaw(schedule=proxy).fit(X, y)
    s1, s2 = straight_run_areas(proxy, 300 * 2048)
    assert np.allclose(model.predict(scale_inputs(W, 1e5, 300 * 2048)), model.predict(area_inputs(W, 1e5, 300 * 2048, s1, s2)))
    # fitted from [W | N | D] alone: each row a straight WSD run to its tokens
    D = np.repeat([100, 200, 400], 20) * 2048.0
    Wr = np.tile(W, (6, 1))
    Nr = np.repeat([1e4, 1e5], 30).astype(float)
    S = np.array([straight_run_areas(proxy, d) for d in D])
    yr = _truth(Wr, Nr, S[:, 0], S[:, 1], S[:, 0].max())
    a = AnnealingLaw(schedule=proxy).fit(scale_inputs(Wr, Nr, D), yr).predict(scale_inputs(W, 1e5, 400 * 2048.0))
    b = AnnealingLaw().fit(area_inputs(Wr, Nr, D, S[:, 0], S[:, 1]), yr).predict(area_inputs(W, 1e5, 400 * 2048.0, *S[-1]))
    assert np.allclose(a, b)


def test_scale_gp_on_the_rest(synthetic):
    """mixture_model="scale-gp": the law's level plus a ScaleGP across sizes; still extrapolates with a growing std."""
    W, S, s_ref, X, y = synthetic
    model = AnnealingLaw(mixture_model="scale-gp").fit(X, y)
    truth = _truth(W, np.full(len(W), 1e6), S[-1, 0], S[-1, 1], s_ref)
    mean, std = model.predict(area_inputs(W, 1e6, 1e5, S[-1, 0], S[-1, 1]), return_std=True)
    assert np.mean(np.abs(mean - truth)) < 0.05 and spearmanr(mean, truth)[0] > 0.9
    near = model.predict(area_inputs(W, 1e5, 1e5, S[-1, 0], S[-1, 1]), return_std=True)[1]
    assert np.all(std > near)


def test_sklearn_conventions(synthetic):
    _, _, _, X, y = synthetic
    est = AnnealingLaw(half_life=0.1, mixture_gain=False)
    assert est.get_params()["half_life"] == 0.1 and est.get_params()["random_state"] == 0
    twin = clone(est).set_params(noise_variance=1e-5)
    assert twin.get_params()["noise_variance"] == 1e-5 and not hasattr(twin, "theta_")
    assert twin.fit(X, y) is twin and np.allclose(twin.theta_[[7, 8]], 0.0)  # no gain: k = 1


@pytest.mark.parametrize("case, match", [
    ("s1", "S1 must be finite, S1 > 0"),
    ("no_areas", "needs the learning-rate areas"),
    ("unit", "half_life_unit must be one of"),
    ("model", "mixture_model must be one of"),
])
def test_bad_input_is_one_line(synthetic, case, match):
    _, _, _, X, y = synthetic
    X = X.copy()
    est = AnnealingLaw()
    if case == "s1":
        X[3, -2] = 0.0
    elif case == "no_areas":
        X = X[:, :-2]
    elif case == "model":
        est = AnnealingLaw(mixture_model="gbm")
    else:
        est = AnnealingLaw(half_life_unit="epochs")
    with pytest.raises(FitError, match=match) as err:
        est.fit(X, y)
    assert "\n" not in str(err.value)
