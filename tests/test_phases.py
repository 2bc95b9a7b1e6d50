"""Multi-phase schedules: trainer phase switch, two-phase sweep runs, the two-phase surrogate and search."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mixopt.config import ProxyConfig, SweepConfig
from mixopt.data.types import DomainSet, TokenizedDomain
from mixopt.errors import MixtureError
from mixopt.mixtures import Mixture, as_phases
from mixopt.samplers import sample_upsampling
from mixopt.planning.phases import MIN_UPSAMPLE, cooldown_schedule, plan_phases, records_to_phase_data, search_upsampling
from mixopt.planning.constraints import Constraints
from mixopt.proxy.batches import MixtureBatches
from mixopt.proxy.train import train_proxy
from mixopt.runs.record import RunRecord
from mixopt.runs.store import RunStore
from mixopt.runs.sweep import execute_run, plan_sweep
from mixopt.surrogates.two_phase import BaseMixtureView, TwoPhaseSurrogate, phase_features

PKG = Path(__file__).resolve().parents[1] / "mixopt"


@pytest.fixture(scope="module")
def data() -> DomainSet:
    raw = b"\n".join(p.read_bytes() for p in sorted(PKG.glob("**/*.py")))
    a = np.frombuffer(raw, dtype=np.uint8).astype(np.uint16)
    n = len(a) // 3

    def dom(name, t):
        k = int(len(t) * 0.9)
        return TokenizedDomain(name, t[:k], t[k:], n_docs_train=1, n_docs_val=1, fingerprint=name)

    return DomainSet({nm: dom(nm, a[i * n:(i + 1) * n]) for i, nm in enumerate(["alpha", "beta", "gamma"])},
                     vocab_size=257, eos_id=256, tokenizer="bytes")


def tiny(**kw) -> ProxyConfig:
    base = dict(n_layer=1, n_embd=32, head_size=16, block_size=32, batch_size=8, tokens=8 * 32 * 40,
                lr=3e-3, checkpoints=[0.5], eval_tokens=256, device="cpu", dtype="float32")
    return ProxyConfig(**{**base, **kw})


# ---------------------------------------------------------------- batches and trainer

def test_batches_phase_switch_realises_each_phase_shares():
    names = ["a", "b", "c", "d"]
    train = {nm: np.full(500, i, dtype=np.uint16) for i, nm in enumerate(names)}
    first, second = {"a": 0.5, "b": 0.5}, {"a": 0.2, "c": 0.8}
    bt = MixtureBatches(train, first, batch_size=8, block_size=4, seed=0, phase_weights=[second])
    assert bt.names == ["a", "b", "c"]  # d has weight 0 everywhere: never read

    def draw(steps):
        seen = np.zeros(len(names))
        for _ in range(steps):
            x, _ = bt.next()
            seen += np.bincount(x[:, 0].numpy(), minlength=len(names))
        return seen

    one = draw(10)
    assert one.tolist() == [40, 40, 0, 0]
    bt.start_phase(second)
    two = draw(10)
    for i, nm in enumerate(names):
        assert abs(two[i] - second.get(nm, 0) * 80) <= 1.0
    assert bt.tokens_per_domain == {"a": int(one[0] + two[0]) * 4, "b": 160, "c": int(two[2]) * 4}
    with pytest.raises(Exception, match="not declared"):
        bt.start_phase({"d": 1.0})


def test_trainer_phase_switch_accounting_and_determinism(data):
    cfg = tiny()  # 40 steps of 8 sequences of 32 tokens
    p, q = Mixture({"alpha": 1.0}), Mixture({"beta": 1.0})
    res = train_proxy(cfg, [(0.0, p), (0.75, q)], data, 0, threads=1)
    seq = 8 * 32
    assert res.tokens_per_domain == {"alpha": 30 * seq, "beta": 10 * seq, "gamma": 0}
    assert res.epochs_per_domain["beta"] == 10 * seq / data.domains["beta"].unique_tokens
    again = train_proxy(cfg, [(0.0, p), (0.75, {"beta": 1.0})], data, 0, threads=1)
    assert again.curves == res.curves and again.tokens_per_domain == res.tokens_per_domain
    plain = train_proxy(cfg, p, data, 0, threads=1)
    empty = train_proxy(cfg, [(0.0, p)], data, 0, threads=1)
    assert plain.curves == empty.curves and plain.tokens_per_domain == {"alpha": 40 * seq, "beta": 0, "gamma": 0}
    assert res.curves["val/alpha"] != plain.curves["val/alpha"]  # same up to the switch, not after
    with pytest.raises(MixtureError, match="strictly increasing"):
        train_proxy(cfg, [(0.0, p), (0.0, q)], data, 0, threads=1)


# ---------------------------------------------------------------- sweep

def _sweep_cfg(two_phase: int) -> SweepConfig:
    return SweepConfig(seed=3, runs=3, proxy=tiny(tokens=8 * 32 * 6).model_dump(),
                       sampler={"two_phase_runs": two_phase, "max_epochs": 1000, "noise_seeds": 1})


def test_two_phase_runs_are_stable_and_leave_single_ids_alone(data, tmp_path):
    single = plan_sweep(_sweep_cfg(0), data)
    both = plan_sweep(_sweep_cfg(3), data)
    assert [s.run_id for s in both[:len(single)]] == [s.run_id for s in single]
    two = both[len(single):]
    assert [s.label for s in two] == ["twophase-0000", "twophase-0001", "twophase-0002"]
    assert [s.run_id for s in plan_sweep(_sweep_cfg(3), data)[len(single):]] == [s.run_id for s in two]
    assert not {s.run_id for s in two} & {s.run_id for s in single}
    for s in two:
        (_, p0), (start, q) = s.phases
        assert p0 == s.mixture and 0.70 <= start <= 0.95 and abs(sum(q.values()) - 1) < 1e-9 and q != s.mixture
        assert type(s)(mixture=s.mixture, proxy=s.proxy, data_fingerprint=s.data_fingerprint, seed=s.seed).run_id != s.run_id
    store = RunStore(tmp_path / "store")
    assert execute_run(two[0], store, data, wait=True, threads=1) == "trained"
    rec = store.get(two[0].run_id)
    assert rec.status == "ok" and rec.phases == list(two[0].phases)
    assert rec.info["tokens_seen"] == 6 * 8 * 32


def test_sample_upsampling_respects_caps():
    bases = [Mixture({"a": 0.6, "b": 0.4}), Mixture({"a": 0.1, "b": 0.9})]
    ups = sample_upsampling(bases, seed=0, f_range=(0.1, 0.2), caps={"a": 0.7, "b": 0.95})
    assert ups == sample_upsampling(bases, seed=0, f_range=(0.1, 0.2), caps={"a": 0.7, "b": 0.95})
    for p, schedule in zip(bases, ups):
        (s0, p0), (start, q) = schedule
        f = 1.0 - start
        assert s0 == 0.0 and p0 == p and as_phases(schedule) == schedule
        assert 0.1 - 1e-6 <= f <= 0.2 + 1e-6
        r = {d: (1 - f) * p[d] + f * q[d] for d in p}
        assert r["a"] <= 0.7 + 1e-9 and r["b"] <= 0.95 + 1e-9


# ---------------------------------------------------------------- surrogate and search

def _synthetic(n_single=30, n_two=30, seed=0, tilt=2.0):
    """Loss lower when the end phase puts weight on domain 0, more so the longer it lasts."""
    rng = np.random.default_rng(seed)
    k = 4
    P = rng.dirichlet(np.ones(k) * 2, size=n_single + n_two)
    Q, F = P.copy(), np.zeros(len(P))
    for i in range(n_single, len(P)):
        b = rng.dirichlet(np.ones(k) * 0.5)
        lam = rng.uniform(0.3, 0.9)
        Q[i], F[i] = (1 - lam) * P[i] + lam * b, rng.uniform(0.05, 0.3)
    R = (1 - F)[:, None] * P + F[:, None] * Q
    y = 3.0 + 0.5 * ((R - 0.25) ** 2).sum(1) - tilt * F * (Q[:, 0] - P[:, 0]) + rng.normal(0, 0.003, len(P))
    return P, Q, F, y


def test_two_phase_surrogate_learns_and_search_finds_upsampling():
    P, Q, F, y = _synthetic()
    model = TwoPhaseSurrogate(random_state=0).fit(phase_features(P, Q, F), y)
    assert model.get_params() == {"eps": 1e-3, "n_restarts": 2, "random_state": 0, "noise_variance": None}
    Pt, Qt, Ft, yt = _synthetic(20, 20, seed=1)
    mean, std = model.predict(phase_features(Pt, Qt, Ft), return_std=True)
    assert np.corrcoef(mean, yt)[0, 1] > 0.9 and np.all(std > 0)
    p = {f"d{i}": 0.25 for i in range(4)}
    out = search_upsampling(model, p, n_candidates=3000, seed=0)
    assert out["helps"] and out["q"]["d0"] > 0.6 and out["f"] >= 0.2
    assert out["predicted"] < out["baseline_predicted"]
    assert out == search_upsampling(model, p, n_candidates=3000, seed=0)
    assert abs(sum(out["overall"].values()) - 1) < 1e-9
    base = BaseMixtureView(model).predict(np.full((1, 4), 0.25))
    assert base[0] == pytest.approx(out["baseline_predicted"])
    # constraints bound the overall share r: d0 at most 0.3 overall
    cons = Constraints(list(p), np.zeros(4), np.array([0.3, 1, 1, 1]))
    capped = search_upsampling(model, p, constraints=cons, n_candidates=3000, seed=0)
    assert capped["overall"]["d0"] <= 0.3 + 1e-9
    # keep_overall: same overall shares as p, tokens of d0 moved to the end
    moved = search_upsampling(model, p, n_candidates=3000, seed=0, keep_overall=True)
    assert moved["overall"] == pytest.approx(p) and moved["q"]["d0"] > moved["p"]["d0"]
    assert plan_phases(p, moved)[0]["weights"] == pytest.approx(moved["p"], abs=1e-6)


def test_an_end_phase_that_cannot_add_to_the_target_is_not_upsampling():
    """d0 sits at its cap in p: an end phase 'on top' could only keep its share and reshuffle the rest, so none is offered."""
    P, Q, F, y = _synthetic()
    model = TwoPhaseSurrogate(random_state=0).fit(phase_features(P, Q, F), y)
    p = {"d0": 0.3, "d1": 0.3, "d2": 0.2, "d3": 0.2}
    cons = Constraints(list(p), np.zeros(4), np.array([0.3, 1, 1, 1]))
    capped = search_upsampling(model, p, constraints=cons, n_candidates=3000, seed=0, toward=[0])
    assert capped["trusted"] == 0 and not capped["helps"] and capped["f"] == 0.0
    free = search_upsampling(model, p, n_candidates=3000, seed=0, toward=[0])  # with room above the cap it upsamples d0
    assert free["q"]["d0"] >= free["p"]["d0"] + MIN_UPSAMPLE


def test_end_phases_only_upsample_the_domains_the_target_measures():
    """The model rewards moving the end toward d0; for a target on d1 that is moving away from it, which `toward` forbids."""
    P, Q, F, y = _synthetic()
    model = TwoPhaseSurrogate(random_state=0).fit(phase_features(P, Q, F), y)
    p = {f"d{i}": 0.25 for i in range(4)}
    free = search_upsampling(model, p, n_candidates=3000, seed=0)
    assert free["q"]["d1"] < free["p"]["d1"]  # unconstrained: d1 loses share at the end
    kept = search_upsampling(model, p, n_candidates=3000, seed=0, toward=[1])
    assert kept["q"]["d1"] >= kept["p"]["d1"] - 1e-9
    assert kept["predicted"] >= free["predicted"]  # a smaller search space cannot do better under the same model
    both = search_upsampling(model, p, n_candidates=3000, seed=0, toward=[0, 1])
    assert both["q"]["d0"] + both["q"]["d1"] >= 0.5 - 1e-9 and both["helps"]
    toward_d0 = search_upsampling(model, p, n_candidates=3000, seed=0, toward=[0])
    assert toward_d0.pop("trusted") < free.pop("trusted") and toward_d0 == free  # the free optimum already upsamples d0


def test_two_phase_surrogate_is_a_gp_surrogate_with_its_checks():
    from mixopt.errors import FitError, NotFittedError
    from mixopt.surrogates import GPSurrogate

    P, Q, F, y = _synthetic()
    X = phase_features(P, Q, F)
    assert isinstance(TwoPhaseSurrogate(), GPSurrogate)  # one standardisation and GP fit, not a copy
    with pytest.raises(NotFittedError, match="This TwoPhaseSurrogate estimator is not fitted"):
        TwoPhaseSurrogate().predict(X)
    with pytest.raises(FitError, match="TwoPhaseSurrogate needs at least 4 runs for 4 domains"):
        TwoPhaseSurrogate().fit(X[:3], y[:3])
    with pytest.raises(MixtureError, match=r"an odd number \(2k\+1\)"):
        TwoPhaseSurrogate().fit(X[:, :-1], y)
    model = TwoPhaseSurrogate(n_restarts=0, noise_variance=1e-4).fit(X, y)
    assert model.n_domains_ == 4 and model.n_features_in_ == 9 and model.noise_variance_ == pytest.approx(1e-4)
    assert model.n_two_phase_ == int((F > 0).sum())
    with pytest.raises(MixtureError, match="X has 7 features, but TwoPhaseSurrogate is expecting 9"):
        model.predict(phase_features(P[:, :3] / P[:, :3].sum(1, keepdims=True), Q[:, :3] / Q[:, :3].sum(1, keepdims=True), F))


def test_search_reports_no_help_when_the_end_phase_does_not_matter():
    P, Q, F, y = _synthetic(tilt=0.0)
    model = TwoPhaseSurrogate().fit(phase_features(P, Q, F), y)
    out = search_upsampling(model, {f"d{i}": 0.25 for i in range(4)}, n_candidates=2000, seed=0)
    assert not out["helps"]
    assert len(plan_phases({f"d{i}": 0.25 for i in range(4)}, out)) == 1


def test_records_to_phase_data():
    recs = [
        RunRecord("a", {"x": 0.5, "y": 0.5}, "ok", metrics={"val/x": 2.0, "val/y": 4.0}),
        RunRecord("b", {"x": 1.0}, "ok", metrics={"val/x": 1.0, "val/y": 5.0}, phases=[[0.8, {"y": 1.0}]]),
        RunRecord("c", {"x": 1.0}, "failed", reason="diverged"),
    ]
    P, Q, F, y = records_to_phase_data(recs, ["x", "y"], "mean:all-domains")
    assert P.tolist() == [[0.5, 0.5], [1.0, 0.0]] and Q.tolist() == [[0.5, 0.5], [0.0, 1.0]]
    assert F == pytest.approx([0.0, 0.2]) and y.tolist() == [3.0, 3.0]
    assert records_to_phase_data(recs, ["x", "y"], "val/x")[3].tolist() == [2.0, 1.0]
    assert phase_features(P, Q, F)[1].tolist() == pytest.approx([0.8, 0.2, 0.0, 1.0, 0.2])


# ---------------------------------------------------------------- schedules and plans

def test_cooldown_schedule():
    (s0, hot), (s1, cold) = cooldown_schedule({"small": 100, "big": 10_000})
    assert (s0, s1) == (0.0, 0.8)
    ratio = (10_000 / 100) ** (1 / 5)
    assert hot["big"] == pytest.approx(ratio / (1 + ratio)) and cold["big"] == pytest.approx(10_000 / 10_100)
    assert math.fsum(hot.values()) == pytest.approx(1.0) and list(hot) == ["big", "small"]


def test_plan_phases_rounds_and_switches():
    p = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
    up = {"helps": True, "f": 0.15, "q": {"a": 0.7, "b": 0.2, "c": 0.1}}
    phases = plan_phases(p, up)
    assert [ph["start_fraction"] for ph in phases] == [0.0, 0.85]
    for ph in phases:
        assert abs(math.fsum(ph["weights"].values()) - 1.0) < 1e-12
        assert all(round(w, 6) == w for w in ph["weights"].values())
    assert plan_phases(p, {**up, "helps": False}) == phases[:1]
    assert plan_phases(p, None) == phases[:1]


def test_cuda_graphs_never_enters_a_run_id():
    """How a step executes (CUDA-graphed or not, the default since stop 25) leaves run ids, and so stores, alone."""
    from mixopt.runs.record import RunSpec
    proxy = ProxyConfig().model_dump(mode="json")
    mix = Mixture({"a": 0.5, "b": 0.5})
    ids = {RunSpec(mix, {**proxy, "cuda_graphs": on}, "fp", 0).run_id for on in (True, False)}
    assert len(ids) == 1
    assert RunSpec(mix, {**proxy, "lr": 1e-3}, "fp", 0).run_id not in ids  # what trains still does


def test_seed_repeats_across_the_cuda_graphs_default_stay_one_group():
    """A store resumed after the default changed holds repeats with either value: one seed-noise group."""
    from types import SimpleNamespace

    from mixopt.runs.groups import repeat_groups
    proxy = ProxyConfig().model_dump(mode="json")
    mix = {"a": 0.5, "b": 0.5}
    recs = [SimpleNamespace(phases=None, mixture=mix, proxy={**proxy, "cuda_graphs": on}, data_fingerprint="fp")
            for on in (False, True)]
    recs.append(SimpleNamespace(phases=None, mixture=mix, proxy={**proxy, "lr": 1e-3}, data_fingerprint="fp"))
    assert repeat_groups(recs).tolist() == [0, 0, 1]


def test_propose_reorders_when_the_target_sits_at_its_cap(monkeypatch):
    """propose's end phase for a target whose domain is capped: not 'on top' (no room) but a reorder, the overall shares
    kept and part of the capped domain's tokens moved to the end; verify's no-upsampling arm is then the flat plan."""
    from mixopt.config import ProposeConfig
    from mixopt.planning import propose as prop
    from mixopt.plan import Plan, Prediction
    from mixopt.verify import alternatives
    P, Q, F, y = _synthetic()
    monkeypatch.setattr(prop, "records_to_phase_data", lambda *a: (P, Q, F, y))
    monkeypatch.setattr(prop, "target_domains", lambda ctx: [0])
    domains = [f"d{i}" for i in range(4)]
    w = np.array([0.3, 0.3, 0.2, 0.2])
    ctx = prop.ProposeContext(domains=domains, target="val/d0", records=[object()])
    cons = Constraints(domains, np.zeros(4), np.array([0.3, 1, 1, 1]))  # d0 at its cap
    cfg = ProposeConfig(n_candidates=3000)
    phases, note, kind, gain = prop.upsampling_phases(w, dict(zip(domains, w)), ctx, cfg, cons, seed=0)
    assert kind == "reorder" and len(phases) == 2 and "moved to the end" in note
    assert gain["kind"] == "reorder" and gain["gain"] > gain["gain_std"] > 0  # the gain counts for a reorder too
    assert f"predicted gain {gain['gain']:.4f} ± {gain['gain_std']:.4f}" in note
    first, end = phases[0].weights, phases[1].weights
    f = 1 - phases[1].start_fraction
    overall = {d: (1 - f) * first.get(d, 0) + f * end.get(d, 0) for d in domains}
    assert overall == pytest.approx(dict(zip(domains, w)), abs=1e-5) and end["d0"] > first["d0"] + MIN_UPSAMPLE
    # with room above the cap the end phase goes on top, as before
    free = Constraints(domains, np.zeros(4), np.ones(4))
    assert prop.upsampling_phases(w, dict(zip(domains, w)), ctx, cfg, free, seed=0)[2] == "on top"
    plan = Plan(budget_tokens=1e6, phases=phases, predicted=Prediction(metric="val/d0", value=3.0),
                provenance={"end_phase": "reorder"})
    arms, _ = alternatives(plan, ["no-upsampling"], None, {d: 1000 for d in domains}, SweepConfig())
    assert dict(arms[0].schedule[0][1]) == pytest.approx(dict(zip(domains, w)), abs=1e-5) and len(arms[0].schedule) == 1
    plan.provenance = {"end_phase": "on top"}
    assert dict(alternatives(plan, ["no-upsampling"], None, {d: 1000 for d in domains}, SweepConfig())[0][0].schedule[0][1]) == first


def test_a_declined_end_phase_at_a_larger_budget_points_to_verify(monkeypatch):
    """Two-phase runs at the proxies' budget do not predict an end phase's effect at 4x (RESULTS, end_phase_gain.py
    --pair-mults): a decline for a plan at 2x+ their tokens says so and points to verify --against end-phase --adopt,
    naming cosine's average sign; at the proxies' own budget it does not."""
    from types import SimpleNamespace

    from mixopt.config import ProposeConfig
    from mixopt.planning import propose as prop
    P, Q, F, y = _synthetic()
    monkeypatch.setattr(prop, "records_to_phase_data", lambda *a: (P, Q, F, y))
    monkeypatch.setattr(prop, "target_domains", lambda ctx: [0])
    monkeypatch.setattr(prop, "search_upsampling", lambda *a, **k: dict(
        trusted=True, helps=False, f=0.1, predicted=3.0, baseline_predicted=3.01, std=0.05, baseline_std=0.05))
    domains = [f"d{i}" for i in range(4)]
    w = np.array([0.25, 0.25, 0.25, 0.25])
    free = Constraints(domains, np.zeros(4), np.ones(4))

    def note(schedule: str, budget: float) -> str:
        recs = [SimpleNamespace(phases=[(0.0, {}), (0.9, {})], scale={"schedule": schedule}, proxy={}),
                SimpleNamespace(phases=[(0.0, {})], scale={"schedule": "wsd"}, proxy={})]  # one-phase runs don't count
        ctx = prop.ProposeContext(domains=domains, target="val/d0", records=recs, proxy_tokens=1e5)
        phases, reason, kind, gain = prop.upsampling_phases(w, dict(zip(domains, w)), ctx, ProposeConfig(), free, seed=0,
                                                            budget=budget)
        assert len(phases) == 1 and kind == "" and gain is None and reason.startswith("no upsampling phase")
        return reason

    assert "verify PLAN --against end-phase --adopt" in note("wsd", 4e5) and "4x below" in note("wsd", 4e5)
    assert "under cosine it averaged" in note("cosine", 4e5) and "under cosine it averaged" not in note("wsd", 4e5)
    assert "--adopt" not in note("wsd", 1e5) and "--adopt" not in note("cosine", 1.5e5)


def test_moved_to_end_keeps_the_overall_shares():
    from mixopt.planning.phases import moved_to_end
    from mixopt.mixtures import overall_shares
    p = {"code": 0.2, "prose": 0.5, "math": 0.3}
    (s0, first), (s1, end) = moved_to_end(p, "code")
    assert s0 == 0.0 and s1 == 0.8 and end["code"] == pytest.approx(0.6) and first["code"] == pytest.approx(0.1)
    assert end["prose"] / end["math"] == pytest.approx(5 / 3) and first["prose"] / first["math"] == pytest.approx(5 / 3)
    assert overall_shares([(s0, first), (s1, end)]) == pytest.approx(p)
    (_, first), (_, end) = moved_to_end({"code": 0.5, "prose": 0.5}, "code")  # q_d capped at 1: the first phase keeps the rest
    assert end == {"code": 1.0} and overall_shares([(0.0, first), (0.8, end)]) == pytest.approx({"code": 0.5, "prose": 0.5})
    with pytest.raises(MixtureError, match="share in"):
        moved_to_end({"code": 1.0}, "code")


def test_verify_end_phase_arm():
    """``verify --against end-phase``: the plan's overall shares with its target domain's tokens moved to the end;
    skipped for an averaged target or a plan that already has an end phase."""
    from mixopt.mixtures import overall_shares
    from mixopt.plan import Phase, Plan, Prediction
    from mixopt.verify import alternatives, parse_against
    assert parse_against("end-phase") == ["end-phase"]
    w = {"code": 0.2, "prose": 0.5, "math": 0.3}
    counts = {d: 1000 for d in w}
    plan = Plan(budget_tokens=1e6, phases=[Phase(start_fraction=0.0, weights=w)], predicted=Prediction(metric="val/code", value=3.0))
    arms, skipped = alternatives(plan, ["end-phase"], None, counts, SweepConfig())
    assert not skipped and len(arms[0].schedule) == 2 and overall_shares(arms[0].schedule) == pytest.approx(w)
    plan.predicted.metric = "mean:all-domains"
    assert alternatives(plan, ["end-phase"], None, counts, SweepConfig())[1][0]["name"] == "end-phase"
    plan.predicted.metric = "val/code"
    plan.phases = [Phase(start_fraction=0.0, weights=w), Phase(start_fraction=0.9, weights={"code": 1.0})]
    assert "already has an end phase" in alternatives(plan, ["end-phase"], None, counts, SweepConfig())[1][0]["why"]


def test_an_end_phase_that_rounds_away_leaves_one_phase_and_no_gain(monkeypatch):
    """An end phase whose start rounds to the end of the run (plan_phases keeps one phase) gives no predicted gain;
    upsampling_phases returned end['kind'] of None there (a TypeError traceback)."""
    from mixopt.config import ProposeConfig
    from mixopt.planning import propose as prop
    P, Q, F, y = _synthetic()
    monkeypatch.setattr(prop, "records_to_phase_data", lambda *a: (P, Q, F, y))
    monkeypatch.setattr(prop, "target_domains", lambda ctx: [0])
    monkeypatch.setattr(prop, "plan_phases", lambda weights, up: [{"start_fraction": 0.0, "weights": dict(weights)}])
    domains = [f"d{i}" for i in range(4)]
    w = np.array([0.3, 0.3, 0.2, 0.2])
    ctx = prop.ProposeContext(domains=domains, target="val/d0", records=[object()])
    free = Constraints(domains, np.zeros(4), np.ones(4))
    phases, _, kind, gain = prop.upsampling_phases(w, dict(zip(domains, w)), ctx, ProposeConfig(n_candidates=3000), free, seed=0)
    assert len(phases) == 1 and kind == "on top" and gain is None
