"""Review numbers-39: with an end phase the plan's prediction is the phased plan's (finding 1); VERIFY.json scores no
prediction it calls not comparable (finding 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixopt.config import ProposeConfig
from mixopt.plan import Phase, Plan, Prediction, plan_from_dict
from mixopt.planning import propose as prop
from mixopt.verify import predicted_diff
from tests.test_phases import _synthetic

DOMAINS = [f"d{i}" for i in range(4)]


class _Bowl:
    """Lowest at CENTRE, a constant std and no joint covariance (the comparison band adds the stds)."""

    CENTRE = np.array([0.4, 0.2, 0.2, 0.2])

    def predict(self, W, return_std=False):
        W = np.atleast_2d(np.asarray(W, dtype=float))
        mean = 3.0 + ((W - self.CENTRE) ** 2).sum(axis=1)
        return (mean, np.full(len(W), 0.02)) if return_std else mean


def _plan(monkeypatch, **cfg) -> Plan:
    """build_plan with an end phase: the two-phase runs are _synthetic's, where an end phase on d0 helps."""
    P, Q, F, y = _synthetic()
    monkeypatch.setattr(prop, "records_to_phase_data", lambda *a: (P, Q, F, y))
    monkeypatch.setattr(prop, "target_domains", lambda ctx: [0])
    monkeypatch.setattr(prop, "best_measured_run", lambda ctx: None)
    ctx = prop.ProposeContext(domains=DOMAINS, target="val/d0", token_counts={d: 10**7 for d in DOMAINS},
                              proxy_tokens=1e5, records=[object()], noise={"seed_sd": 0.01})
    config = ProposeConfig(n_candidates=3000, top_k=10, keep_baseline_within_noise=False, curse_correction=False, **cfg)
    projector = lambda w, budget: {"value": 2.9, "std": 0.05, "tokens": budget, "value_at_proxy": 3.0, "std_at_proxy": 0.05}
    return prop.build_plan(_Bowl(), ctx, config, budget_tokens=4e5, seed=0, projector=projector)


@pytest.mark.parametrize("kind, cfg", [("on top", {}), ("reorder", {"max_weights": {"d0": 0.3}})])
def test_the_plans_prediction_is_the_phased_plans(monkeypatch, kind, cfg):
    plan = _plan(monkeypatch, **cfg)
    p = plan.predicted
    end, sur = p.end_phase, p.by["surrogate"]
    assert len(plan.phases) == 2 and plan.provenance["end_phase"] == kind == end["kind"]
    assert end["gain"] > 0 and end["fraction"] == pytest.approx(1 - plan.phases[1].start_fraction)
    # the value is the flat surrogate's minus the end phase's gain; the stds add as independent errors
    assert p.value == pytest.approx(sur["value"] - end["gain"]) and p.value < sur["value"]
    assert p.std == pytest.approx(math.hypot(sur["std"], end["gain_std"])) and "independent" in end["note"]
    # the surrogate and the projector value the flat mixture, and the plan says so
    assert "without its end phase" in sur["mixture"] and "without its end phase" in p.by["projector"]["mixture"]
    assert any(r.startswith("upsampling phase") and f"minus this gain: {p.value:.4f} ± {p.std:.4f}" in r for r in plan.reasons)
    # the baselines are judged on the phased plan's value, the gain's std in the band
    for name in ("natural", "uniform"):
        b = p.baselines[name]
        gain, band = b["value"] - p.value, prop.noise_band(0.01, p.std, b["std"])
        (reason,) = [r for r in plan.reasons if r.startswith(f"vs {name}:")]
        assert f"{abs(gain):.4f}" in reason and f"±{band:.4f}" in reason
    # verify's no-upsampling arm is the plan without its end phase: the plan claims minus the gain against it
    assert predicted_diff(plan, "no-upsampling", -1.0, 1.0)["predicted_diff"] == pytest.approx(-end["gain"])
    assert predicted_diff(plan, "uniform", -1.0, 1.0)["predicted_diff"] == pytest.approx(p.value - p.baselines["uniform"]["value"])
    again = plan_from_dict(plan.to_dict())  # plan.yaml keeps it
    assert again.predicted.end_phase == end and again.predicted.value == p.value


def test_a_plan_without_an_end_phase_is_unchanged(monkeypatch):
    plan = _plan(monkeypatch, upsample=False)
    p = plan.predicted
    assert len(plan.phases) == 1 and p.end_phase is None and "end_phase" not in plan.to_dict()["predicted"]
    assert p.value == p.by["surrogate"]["value"] and "mixture" not in p.by["surrogate"] and "mixture" not in p.by["projector"]
    assert predicted_diff(plan, "no-upsampling", -1.0, 1.0) == {}


def test_a_baseline_with_an_end_phase_is_judged_on_the_gain():
    """The plan is uniform's mixture plus an end phase: no longer "the plan is uniform's mixture", the end phase's gain
    against the band of the gain's own std."""
    ctx = prop.ProposeContext(domains=DOMAINS, target="val/d0", token_counts={d: 10**7 for d in DOMAINS}, noise={"seed_sd": 0.01})
    w = np.full(4, 0.25)
    value = float(_Bowl().predict(w[None])[0])
    _, plain, _ = prop.compare_with_baselines(_Bowl(), w, value, 0.02, ctx)
    assert any(r.startswith("vs uniform: the plan is uniform's mixture") for r in plain)
    _, reasons, _ = prop.compare_with_baselines(_Bowl(), w, value, 0.02, ctx, end_gain={"gain": 0.1, "gain_std": 0.01})
    (r,) = [r for r in reasons if r.startswith("vs uniform:")]
    band = 2 * math.hypot(0.01, 0.01)  # seed noise and the gain's std: one mixture's two predictions are one number
    assert r.startswith("vs uniform: the plan is uniform's mixture with an end phase; predicted 0.1000 better")
    assert f"±{band:.4f}" in r
    # a gain between that band (0.0283) and one that counts the surrogate's std twice (0.0632) is decided (recheck 3)
    _, reasons, _ = prop.compare_with_baselines(_Bowl(), w, value, 0.02, ctx, end_gain={"gain": 0.05, "gain_std": 0.01})
    (r,) = [r for r in reasons if r.startswith("vs uniform:")]
    assert "predicted 0.0500 better" in r and f"±{band:.4f}" in r


def test_verify_claims_are_null_across_scales():
    plan = Plan(budget_tokens=1e6, phases=[Phase(start_fraction=0.0, weights={"a": 1.0})],
                predicted=Prediction(metric="val/a", value=3.0, baselines={"uniform": {"value": 3.1}}))
    assert predicted_diff(plan, "uniform", -0.2, 0.0) == {"predicted_diff": pytest.approx(-0.1), "claim_held": True}
    across = predicted_diff(plan, "uniform", -0.2, 0.0, comparable=False)
    assert across == {"predicted_diff": pytest.approx(-0.1), "claim_held": None, "claim_held_across_scales": True}


def test_the_report_says_whose_value_it_prints():
    """The page's "Predicted ..." line: the phased plan's value, how it is made, and the projector's as the flat plan's."""
    from mixopt.report.answer import predicted_lines

    by = {"surrogate": {"value": 3.0573, "std": 0.0826, "scale": "proxy"}, "projector": {"value": 2.9528, "std": 0.4354, "tokens": 81920.0}}
    plan = Plan(budget_tokens=81920.0, phases=[Phase(start_fraction=0.0, weights={"a": 0.5, "b": 0.5}),
                                               Phase(start_fraction=0.9, weights={"a": 1.0})],
                predicted=Prediction(metric="val/a", value=2.9699, std=0.0873, by=by,
                                     end_phase={"kind": "on top", "fraction": 0.1, "gain": 0.0874, "gain_std": 0.0284}))
    line = predicted_lines(plan)[0]
    assert line.startswith("Predicted val/a = 2.9699 ± 0.0873 (±1σ)")
    assert ("the surrogate's 3.0573 ± 0.0826 for the plan without its end phase minus the end phase's predicted gain "
            "0.0874 ± 0.0284") in line
    assert "the projector (an extrapolation) puts the plan without its end phase at 2.9528" in line
    kept = plan.model_copy(deep=True)
    kept.predicted.by["surrogate"]["search"] = "baseline:natural"
    kept.predicted.baselines = {"natural": {"value": 3.0573, "std": 0.0826}}
    assert "the plan is the natural baseline with an end phase:" in predicted_lines(kept)[1]
