import numpy as np
import pytest

from mixopt.errors import BudgetError, MixtureError
from mixopt.mixtures import Mixture, epochs_of, natural_mixture, round_shares, temperature_prior, uniform_mixture, validate_weights
from mixopt.samplers import dirichlet_candidates, sample_dirichlet_mixtures, sample_uniform_mixtures

COUNTS = {"code": 800_000, "docs": 600_000, "legal": 50_000, "math": 400_000, "prose": 1_000_000}


def test_mixture_validation_messages():
    with pytest.raises(MixtureError, match="sum to 1"):
        Mixture({"a": 0.5, "b": 0.4})
    with pytest.raises(MixtureError, match=">= 0"):
        Mixture({"a": 1.5, "b": -0.5})
    with pytest.raises(MixtureError, match="finite"):
        Mixture({"a": float("nan"), "b": 1.0})
    with pytest.raises(MixtureError, match="unknown domains"):
        Mixture({"a": 1.0}).vector(["b"])
    m = Mixture({"b": 0.25, "a": 0.75})
    assert m.domains == ["a", "b"]


def test_dirichlet_sampler_simplex_bounds_determinism():
    budget = 2_000_000
    a = sample_dirichlet_mixtures(COUNTS, 50, seed=3, budget_tokens=budget, max_epochs=4, min_weight=2e-4)
    b = sample_dirichlet_mixtures(COUNTS, 50, seed=3, budget_tokens=budget, max_epochs=4, min_weight=2e-4)
    c = sample_dirichlet_mixtures(COUNTS, 50, seed=4, budget_tokens=budget, max_epochs=4, min_weight=2e-4)
    assert [dict(x) for x in a] == [dict(x) for x in b]
    assert [dict(x) for x in a] != [dict(x) for x in c]
    keys = {tuple(round(v, 6) for v in m.values()) for m in a}
    assert len(keys) == 50  # de-duplicated
    for m in a:
        v = np.array(list(m.values()))
        assert abs(v.sum() - 1) < 1e-9 and v.min() >= 0
        assert np.all((v == 0) | (v >= 2e-4 * 0.99))
        assert max(epochs_of(m, COUNTS, budget).values()) <= 4 + 1e-9


def test_sampler_rejects_impossible_budget():
    with pytest.raises(BudgetError, match="cannot supply"):
        sample_dirichlet_mixtures(COUNTS, 5, seed=0, budget_tokens=1e9, max_epochs=2)


def test_prior_and_baselines():
    prior = temperature_prior(COUNTS, 0.5)
    nat = natural_mixture(COUNTS)
    assert abs(sum(prior.values()) - 1) < 1e-12
    # temperature < 1 flattens the natural distribution
    assert prior["legal"] > nat["legal"] and prior["prose"] < nat["prose"]
    assert uniform_mixture(list(COUNTS))["code"] == pytest.approx(0.2)


def test_uniform_sampler_and_vectorised_candidates():
    u = sample_uniform_mixtures(list(COUNTS), 20, seed=1)
    assert len(u) == 20 and all(abs(sum(m.values()) - 1) < 1e-9 for m in u)
    prior = temperature_prior(COUNTS).vector(sorted(COUNTS))
    W = dirichlet_candidates(prior, 1000, seed=0, min_weight=1e-3)
    assert W.shape == (1000, 5)
    assert np.allclose(W.sum(1), 1) and W.min() >= 0
    assert np.array_equal(W, dirichlet_candidates(prior, 1000, seed=0, min_weight=1e-3))


def test_uniform_draws_respect_the_epoch_cap():
    """sampler.method: uniform honours max_epochs as the Dirichlet sampler does (it ignored it before stop 25)."""
    from mixopt.errors import BudgetError
    from mixopt.samplers import sample_uniform_mixtures
    caps = {"a": 0.2, "b": 1.0, "c": 1.0}
    drawn = sample_uniform_mixtures(["a", "b", "c"], 50, seed=0, caps=caps)
    assert len(drawn) == 50 and all(m["a"] <= 0.2 + 1e-12 for m in drawn)
    assert sample_uniform_mixtures(["a", "b"], 5, seed=3) == sample_uniform_mixtures(["a", "b"], 5, seed=3, caps={"a": 1, "b": 1})
    with pytest.raises(BudgetError, match="epoch cap"):
        sample_uniform_mixtures(["a", "b"], 3, seed=0, caps={"a": 0.1, "b": 0.1}, max_tries=5)


def test_round_shares_keeps_a_binding_cap_and_sums_to_one():
    cap = 61445 / 3.3e6  # 0.01861969...: rounds *up* to 0.018620 at 6 digits
    w = {"code": cap, "prose": 0.5 - cap / 2, "math": 0.5 - cap / 2}
    plain = round_shares(w)
    assert plain["code"] > cap  # the rounding a plan at its cap used to carry (verify refused the plan)
    r = round_shares(w, caps={"code": cap})
    assert r["code"] <= cap and abs(sum(r.values()) - 1) < 1e-12
    # the remainder goes to a domain with room, not onto the capped one even when it is the largest
    big = round_shares({"code": 0.7000006, "prose": 0.2999994}, caps={"code": 0.7000006})
    assert big == {"code": 0.7, "prose": 0.3}


def test_validate_weights_returns_exact_six_digit_shares():
    shares = {"code": 0.290722, "dialogue": 0.020403, "docs": 0.083799, "legal": 0.102189, "math": 0.298236,
              "multilingual": 0.142935, "prose": 0.061716}
    assert validate_weights(shares) == shares  # a plain left-to-right sum gave 1.0000000000000002 and 0.2907219999...


def test_projection_onto_minimums_that_sum_to_one_is_that_point():
    from mixopt.mixtures import project_to_bounded_simplex
    lo = np.array([0, 0, .5, 0, 0, .5, 0.])  # e.g. propose.min_weights {docs: 0.5, prose: 0.5}
    V = np.random.default_rng(0).dirichlet(np.ones(7), size=200)
    W = project_to_bounded_simplex(V, lo, np.ones(7))
    assert np.allclose(W, lo)  # rounding left f above 1 at every breakpoint: rows came back all ones (sum 7)
