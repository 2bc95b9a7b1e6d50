"""`mixopt verify` on a tiny store: the JSON contract, resume, paired seeds and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from mixopt.cli.main import run
from mixopt.verify import paired_interval, parse_against
from tests.test_cli_sweep import write_cfg


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    cfg = write_cfg(tmp, runs=5, sampler={"noise_seeds": 1, "two_phase_runs": 0},
                    proxy={"dtype": "float32"})  # pinned: "auto" times a probe, and bf16 under load can flip a 2-seed verdict
    store, plan = tmp / "store", tmp / "plan.yaml"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    assert run(["propose", str(cfg), "--store", str(store), "--no-projector", "--budget-tokens", "16384", "--out", str(plan)]) == 0
    return cfg, store, plan


def _verify(store, plan, out, *extra):
    return run(["verify", str(plan), "--store", str(store), "--seeds", "2", "--against", "natural,uniform,no-upsampling",
                "--out", str(out), *extra])


def test_json_fields_and_resume(planned, tmp_path, capsys):
    _, store, plan = planned
    out = tmp_path / "v" / "verify.json"
    assert _verify(store, plan, out) == 0
    text = capsys.readouterr().out
    body = json.loads(out.read_text())
    assert {"target", "scale", "results", "comparisons", "predicted", "prediction_error"} <= set(body)
    assert body["scale"]["tokens"] == 16384 and body["scale"]["model_params"] > 0
    assert [r["name"] for r in body["results"]] == ["plan", "natural", "uniform"]
    assert all(len(r["values"]) == 2 and r["mean"] == pytest.approx(np.mean(r["values"])) for r in body["results"])
    for c in body["comparisons"]:
        alt = next(r for r in body["results"] if r["name"] == c["against"])
        assert c["diff"] == pytest.approx(body["results"][0]["mean"] - alt["mean"])
        lo, hi = c["ci95"]
        assert lo <= c["diff"] <= hi and c["plan_better"] == (hi < 0)
        claimed = yaml.safe_load(plan.read_text())["predicted"]
        assert c["predicted_diff"] == pytest.approx(claimed["value"] - claimed["baselines"][c["against"]]["value"])
        # an arm that is the plan (within its rounding: finding 2) checks no claim; a prediction for another scale
        # (the note below) is not scored: claim_held null, the check kept as claim_held_across_scales (numbers-39 #3)
        assert c["claim_held"] is None
        assert c.get("claim_held_across_scales") == (None if c.get("same_as_plan") else (lo <= c["predicted_diff"] <= hi))
        decided = c["plan_better"] or c["plan_worse"]
        assert ("seeds_to_resolve" in c) == (not decided and not c.get("same_as_plan"))  # seeds that would decide it
    assert body["max_advised_seeds"] == 64
    assert body["skipped"] == [{"name": "no-upsampling", "why": "the plan has no end phase"}]
    # the plan's budget (16384) is not the proxies' 8192 the surrogate predicts at: the note says so
    assert body["prediction_error"] is None  # not comparable: no error; the number under its own name
    assert body["prediction_error_across_scales"] == pytest.approx(body["results"][0]["mean"] - body["predicted"]["value"])
    assert "not at this one" in body["predicted"]["note"]
    assert "plan - arm" in text and "predicted" in text and body["trained"] > 0
    # resume: the runs are ordinary store records, so a second call trains nothing and gives the same numbers
    assert _verify(store, plan, tmp_path / "again.json") == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["trained"] == 0 and again["results"] == body["results"]


def test_paired_seeds_share_runs_where_weights_agree(planned, tmp_path):
    cfg, store, plan = planned
    body = yaml.safe_load(plan.read_text())
    domains = sorted(body["phases"][0]["weights"]) or ["code", "legal", "prose"]
    uniform = {d: 1 / 3 for d in ("code", "legal", "prose")}
    body["phases"] = [{"start_fraction": 0.0, "weights": uniform}]
    same = tmp_path / "uniform_plan.yaml"
    same.write_text(yaml.safe_dump(body))
    out = tmp_path / "v.json"
    assert run(["verify", str(same), "--store", str(store), "--seeds", "2", "--against", "uniform,natural", "--out", str(out)]) == 0
    res = {r["name"]: r["values"] for r in json.loads(out.read_text())["results"]}
    assert res["plan"] == res["uniform"]  # same weights, same seeds: the same initialisation and data order
    same = {c["against"]: c for c in json.loads(out.read_text())["comparisons"]}
    assert same["uniform"].get("same_as_plan") and "seeds_to_resolve" not in same["uniform"]
    assert not same["natural"].get("same_as_plan")
    assert res["plan"][0] != res["plan"][1] and res["plan"] != res["natural"]
    assert domains


@pytest.mark.parametrize("extra,match", [
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--against", "natural,bogus"], "unknown: ['bogus']"),
    (["--tokens", "1e9"], "repeats"),
    (["--first-seed", "-1"], "--first-seed must be >= 0"),
])
def test_bad_input_is_one_line(planned, tmp_path, capsys, extra, match):
    _, store, plan = planned
    argv = ["verify", str(plan), "--store", str(store), "--out", str(tmp_path / "v.json"), *extra]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1 and not (tmp_path / "v.json").exists()


def test_plan_with_domains_the_store_lacks(planned, tmp_path, capsys):
    _, store, plan = planned
    body = yaml.safe_load(plan.read_text())
    body["phases"] = [{"start_fraction": 0.0, "weights": {"code": 0.5, "math": 0.5}}]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(body))
    assert run(["verify", str(bad), "--store", str(store), "--out", str(tmp_path / "v.json")]) == 2
    assert "['math']" in capsys.readouterr().err


def test_seeds_to_resolve():
    """The fewest paired seeds that would decide the comparison (80% power), planned on the observed mean moved toward
    zero by its own 75% one-sided t error."""
    from scipy import stats
    from mixopt.verify import seeds_to_resolve, paired_interval as pi
    # stop 26's cap case with 3 seeds: -0.144 [-0.291, +0.003] within noise; 5 seeds would decide it (8 did)
    d = np.array([-0.144 - 0.0592, -0.144, -0.144 + 0.0592])
    lo, hi = pi(d)
    assert lo < 0 < hi and seeds_to_resolve(d) == 5
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = rng.normal(rng.normal(0, 0.05), 0.05, size=int(rng.integers(2, 9)))
        n = seeds_to_resolve(d)
        mean, sd = abs(d.mean()), d.std(ddof=1)
        effect = mean - stats.t.ppf(0.75, d.size - 1) * sd / np.sqrt(d.size)
        ok = lambda k: (stats.t.ppf(0.975, k - 1) + stats.t.ppf(0.8, k - 1)) * sd / np.sqrt(k) < effect  # noqa: E731
        if n is None:
            assert not ok(64)
        else:
            assert n > d.size and ok(n) and (n - 1 <= d.size or not ok(n - 1))
    assert seeds_to_resolve(np.array([0.01, -0.01, 0.001])) is None  # mean ~0 against its spread
    assert seeds_to_resolve(np.array([0.02])) is None  # one seed: no spread
    assert seeds_to_resolve(np.array([0.02, 0.02])) == 3  # no spread: a t-interval of 3 equal values excludes 0


def test_seeds_advice_names_the_undecided_arms():
    from mixopt.verify import seeds_advice
    body = {"seeds": [0, 1, 2], "comparisons": [
        {"against": "natural", "plan_better": True, "plan_worse": False},
        {"against": "uniform", "plan_better": False, "plan_worse": False, "seeds_to_resolve": 12},
        {"against": "end-phase", "plan_better": False, "plan_worse": False, "seeds_to_resolve": 4},
        {"against": "regmix", "plan_better": False, "plan_worse": False, "seeds_to_resolve": None}]}
    text = seeds_advice(body)
    assert "end-phase ~4, uniform ~12" in text and "natural" not in text and "regmix" not in text and "--seeds" in text
    assert seeds_advice({"seeds": [0, 1, 2], "comparisons": body["comparisons"][:1]}) == ""


def test_paired_interval():
    lo, hi = paired_interval(np.array([-0.1, -0.12, -0.08, -0.11]))
    assert lo < -0.1 < hi < 0
    # two seeds: a t-interval with 1 degree of freedom (12.7 x the standard error), not [min, max] (a 50% interval)
    assert paired_interval(np.array([0.1, 0.3])) == pytest.approx((0.2 - 12.706 * 0.1, 0.2 + 12.706 * 0.1), abs=1e-3)
    assert paired_interval(np.array([0.1])) == (0.1, 0.1)
    # coverage: 95% intervals hold the true mean about 95% of the time, from 2 seeds on
    rng = np.random.default_rng(0)
    for n in (2, 3, 8):
        held = [lo <= 0.05 <= hi for lo, hi in (paired_interval(rng.normal(0.05, 0.02, n)) for _ in range(2000))]
        assert 0.93 < np.mean(held) < 0.97, (n, np.mean(held))
    assert parse_against("uniform, natural,uniform") == ["uniform", "natural"]


def test_against_doremi_trains_its_mixture_once(planned, tmp_path, capsys):
    """``--against doremi``: DoReMi's mixture (computed at the sweep's proxy shape) is an arm like the others, kept in
    the store so a second call trains nothing; it is not in the default list (it costs two more proxy runs)."""
    from mixopt.verify import ALTERNATIVES
    _, store, plan = planned
    assert "doremi" not in ALTERNATIVES and parse_against("doremi,natural") == ["doremi", "natural"]
    out = tmp_path / "d.json"
    argv = ["verify", str(plan), "--store", str(store), "--seeds", "2", "--against", "doremi", "--out", str(out)]
    assert run(argv) == 0
    body = json.loads(out.read_text())
    arm = next(r for r in body["results"] if r["name"] == "doremi")
    assert arm["weights"] == pytest.approx(body["doremi"]["weights"]) and sum(arm["weights"].values()) == pytest.approx(1)
    assert body["doremi"]["trained_now"] is True and len(list((store / "doremi").glob("*.json"))) == 1
    assert "doremi" in capsys.readouterr().out
    assert run(argv + ["--out", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["doremi"]["trained_now"] is False and again["results"] == body["results"] and again["trained"] == 0


def _body(plan_values, arms: dict[str, tuple[list, list]]):
    """A VERIFY.json body: the plan's values and, per arm, (its schedule, its values), paired by seed."""
    from mixopt.verify import paired_interval as pi
    results = [{"name": "plan", "values": plan_values, "mean": float(np.mean(plan_values))}]
    comparisons = []
    for name, (schedule, values) in arms.items():
        results.append({"name": name, "values": values, "mean": float(np.mean(values)), "weights": schedule[0][1],
                        "phases": len(schedule), "schedule": schedule})
        d = np.array(plan_values) - np.array(values)
        lo, hi = pi(d)
        comparisons.append({"against": name, "diff": float(d.mean()), "ci95": [lo, hi], "plan_better": hi < 0,
                            "plan_worse": lo > 0})
    return {"target": "val/code", "scale": {"model_params": 1e5, "tokens": 4e6}, "seeds": [0, 1, 2],
            "results": results, "comparisons": comparisons}


def test_adopted_plan_takes_the_schedule_that_trained_better():
    """``verify --adopt``: the alternative with the largest gain beyond its paired interval becomes the plan's schedule
    (epochs scaled by the share change, prediction = the arm's measured mean, provenance says where it came from);
    none better: the plan is kept with a note; an arm training a domain the plan lacks is passed over."""
    from mixopt.plan import Phase, Plan, Prediction
    from mixopt.planning.phases import moved_to_end
    from mixopt.verify import adopted_plan
    w = {"code": 0.2, "prose": 0.5, "legal": 0.3}
    plan = Plan(budget_tokens=4e6, phases=[Phase(start_fraction=0.0, weights=w)], epochs={"code": 2.0, "prose": 0.5, "legal": 1.0},
                predicted=Prediction(metric="val/code", value=2.5), provenance={"seed": 0},
                reasons=["searched", "no upsampling phase: the best end phase gains +0.01, within its uncertainty"])
    moved = [[float(s), dict(m)] for s, m in moved_to_end(w, "code")]
    uniform = [[0.0, {"code": 1 / 3, "prose": 1 / 3, "legal": 1 / 3}]]
    body = _body([2.50, 2.52, 2.49], {"end-phase": (moved, [2.40, 2.43, 2.41]), "uniform": (uniform, [2.47, 2.50, 2.46])})
    new, note = adopted_plan(plan, body)
    assert note.startswith("adopted by verify: end-phase trained better than the plan by 0.09") and new.reasons[0] == note
    assert new.reasons[1:] == ["searched"]  # the decline the plan now contradicts is gone
    assert len(new.phases) == 2 and new.overall_weights() == pytest.approx(w, abs=1e-6)
    assert new.epochs == pytest.approx(plan.epochs) and new.provenance["end_phase"] == "reorder"
    assert new.provenance["adopted"]["arm"] == "end-phase" and new.provenance["seed"] == 0
    assert new.predicted.value == pytest.approx(2.4133333) and new.predicted.by["verify"]["tokens"] == 4e6
    assert plan.phases[0].weights == w and len(plan.phases) == 1  # the input plan is left alone
    # uniform alone: a one-phase schedule, epochs scaled by each domain's share change
    new, _ = adopted_plan(plan, _body([2.50, 2.52, 2.49], {"uniform": (uniform, [2.47, 2.50, 2.46])}))
    assert new.epochs["code"] == pytest.approx(2.0 * (1 / 3) / 0.2, abs=1e-4) and "end_phase" not in new.provenance
    # nothing better beyond its interval: kept, with the reason
    kept, note = adopted_plan(plan, _body([2.50, 2.52, 2.49], {"uniform": (uniform, [2.51, 2.50, 2.50])}))
    assert note.startswith("kept by verify") and kept.phases == plan.phases and kept.reasons[0] == note
    # one seed: never adopted, whatever its difference
    one = _body([2.50], {"uniform": (uniform, [2.40])})
    one["seeds"] = [0]
    kept, note = adopted_plan(plan, one)
    assert kept.phases == plan.phases and "--seeds 3" in note
    # an arm that trains a domain the plan lacks is passed over, and the note says so
    wider = [[0.0, {"code": 0.25, "prose": 0.25, "legal": 0.25, "math": 0.25}]]
    kept, note = adopted_plan(plan, _body([2.50, 2.52, 2.49], {"natural": (wider, [2.30, 2.31, 2.30])}))
    assert kept.phases == plan.phases and "passed over: natural" in note and "math" in note


def test_adoption_keeps_repetition_and_reasons_honest():
    """Review of stop 28: an arm that would repeat a domain past ``max_epochs`` at the plan's budget is passed over; a
    domain the new schedule drops leaves epochs and effective tokens, which saturate with repetition; a one-phase arm
    drops the plan's own end-phase reason; a domain the plan gives weight 0 cannot gain a share (its epochs are
    unknown); the adoption records the seeds it was made on."""
    from mixopt.plan import Phase, Plan, Prediction
    from mixopt.repetition import effective_tokens
    from mixopt.verify import adopted_plan
    budget = 4e6
    w = {"code": 0.2, "prose": 0.5, "legal": 0.3}
    unique = {"code": 0.4e6, "prose": 4e6, "legal": 2.4e6}
    epochs = {d: w[d] * budget / unique[d] for d in w}  # code 2.0, prose 0.5, legal 0.5
    eff = {d: float(effective_tokens(w[d] * budget, unique[d])) for d in w}
    plan = Plan(budget_tokens=budget, phases=[Phase(start_fraction=0.0, weights={"code": 0.25, "prose": 0.5, "legal": 0.25}),
                                               Phase(start_fraction=0.8, weights={"code": 0.0, "prose": 0.5, "legal": 0.5})],
                epochs=epochs, effective_tokens=eff, predicted=Prediction(metric="val/code", value=2.5),
                reasons=["upsampling phase for the last 20% of tokens: predicted gain 0.0300", "searched"])
    assert plan.overall_weights() == pytest.approx(w)
    uniform = [[0.0, {"code": 1 / 3, "prose": 1 / 3, "legal": 1 / 3}]]
    best = [[0.0, {"code": 0.4, "prose": 0.6}]]
    body = _body([2.50, 2.52, 2.49], {"uniform": (uniform, [2.40, 2.41, 2.40]), "best-run": (best, [2.45, 2.47, 2.44])})
    # uniform: code 3.33 epochs > 3: passed over, said so; best-run (code 4 epochs) fits under 4
    kept, note = adopted_plan(plan, body, max_epochs=3.0)
    assert note.startswith("kept by verify") and "passed over: uniform (it would repeat code 3.33" in note
    assert "best-run (it would repeat code 4.00" in note and kept.phases == plan.phases
    new, note = adopted_plan(plan, body, max_epochs=4.0)
    assert new.provenance["adopted"]["arm"] == "uniform" and new.provenance["adopted"]["seeds"] == [0, 1, 2]
    assert new.reasons[1:] == ["searched"]  # the plan's own end phase is gone, and so is its reason
    assert new.epochs["code"] == pytest.approx(1 / 3 * budget / unique["code"], abs=1e-5)
    assert new.effective_tokens["code"] == pytest.approx(effective_tokens(budget / 3, unique["code"]), rel=1e-5)
    assert new.effective_tokens["code"] < eff["code"] * (1 / 3) / 0.2  # saturating, not linear in the share
    new, _ = adopted_plan(plan, _body([2.50, 2.52, 2.49], {"best-run": (best, [2.45, 2.47, 2.44])}), max_epochs=4.0)
    assert "legal" not in new.epochs and "legal" not in new.effective_tokens  # no longer trained
    # a domain at weight 0 in every phase of the plan cannot gain a share
    zero = Plan(budget_tokens=budget, phases=[Phase(start_fraction=0.0, weights={"code": 0.5, "prose": 0.5, "legal": 0.0})],
                epochs={"code": 1.0, "prose": 0.5, "legal": 0.0}, predicted=Prediction(metric="val/code", value=2.5))
    kept, note = adopted_plan(zero, _body([2.50, 2.52, 2.49], {"uniform": (uniform, [2.40, 2.41, 2.40])}))
    assert kept.phases == zero.phases and "passed over: uniform" in note and "legal" in note


def test_adopt_writes_the_plan_to_export(planned, tmp_path, capsys):
    """End to end: a plan starved of its target's domain loses to uniform at its budget; --adopt writes a plan with
    uniform's schedule that `mixopt export` takes; --adopt onto the plan itself is refused before training."""
    _, store, plan = planned
    body = yaml.safe_load(plan.read_text())
    body["phases"] = [{"start_fraction": 0.0, "weights": {"code": 0.02, "legal": 0.49, "prose": 0.49}}]
    body["predicted"]["metric"] = "val/code"
    starved = tmp_path / "starved.yaml"
    starved.write_text(yaml.safe_dump(body))
    out, adopted = tmp_path / "v.json", tmp_path / "adopted.yaml"
    argv = ["verify", str(starved), "--store", str(store), "--seeds", "2", "--against", "uniform", "--out", str(out)]
    assert run(argv + ["--adopt", str(starved)]) == 2
    assert "would overwrite the plan" in capsys.readouterr().err and not out.exists()
    before = starved.read_text()
    assert run(argv[:-1] + [str(starved)]) == 2  # --out onto the plan itself
    assert "--out" in capsys.readouterr().err and starved.read_text() == before
    assert run(argv + ["--adopt", str(adopted)]) == 0
    text = capsys.readouterr().out
    verdict = json.loads(out.read_text())["comparisons"][0]
    assert verdict["plan_worse"], verdict  # code at 2% against a third: the test needs the plan to lose
    new = yaml.safe_load(adopted.read_text())
    assert new["phases"][0]["weights"] == pytest.approx({"code": 1 / 3, "legal": 1 / 3, "prose": 1 / 3}, abs=1e-5)
    assert new["provenance"]["adopted"]["arm"] == "uniform" and "adopted by verify" in text
    paths = [f"--paths={d}=/data/{d}" for d in ("code", "legal", "prose")]
    assert run(["export", str(adopted), "--format", "json", *paths, "--out", str(tmp_path / "mix.json")]) == 0
    assert json.loads((tmp_path / "mix.json").read_text())


def test_first_seed_trains_fresh_seeds(planned, tmp_path):
    """``--first-seed``: the arms train seeds N, N+1, ... (fresh runs), e.g. to check an adopted plan on other seeds."""
    _, store, plan = planned
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run(["verify", str(plan), "--store", str(store), "--seeds", "2", "--against", "uniform", "--out", str(a)]) == 0
    assert run(["verify", str(plan), "--store", str(store), "--seeds", "2", "--against", "uniform", "--out", str(b),
                "--first-seed", "50"]) == 0
    first, fresh = json.loads(a.read_text()), json.loads(b.read_text())
    assert fresh["seeds"] == [50, 51] and fresh["seeds"] != first["seeds"] and fresh["trained"] == 4
    assert fresh["results"][0]["values"] != first["results"][0]["values"]


def test_repetition_check_allows_a_capped_share_rounded_to_six_digits():
    from mixopt.errors import BudgetError
    from mixopt.plan import Phase, Plan
    from mixopt.verify import check_repetition
    counts, tokens = {"code": 61445, "prose": 10**7}, 3.3e6  # cap share 0.0186197: the plan file says 0.01862
    plan = Plan(budget_tokens=tokens, phases=[Phase(start_fraction=0.0, weights={"code": 0.01862, "prose": 0.98138})])
    check_repetition(plan, counts, tokens, max_epochs=1.0)  # was refused: "repeats 'code' 1.0 times, over its cap of 1"
    over = Plan(budget_tokens=tokens, phases=[Phase(start_fraction=0.0, weights={"code": 0.0190, "prose": 0.9810})])
    with pytest.raises(BudgetError, match="repeats 'code' 1.02 times"):
        check_repetition(over, counts, tokens, max_epochs=1.0)


def _table_text(body) -> str:
    from rich.console import Console

    from mixopt.report.tables import verify_table
    console = Console(width=400, record=True, file=open("/dev/null", "w"))
    console.print(verify_table(body))
    return console.export_text()


def test_an_arm_equal_to_the_plan_within_its_rounding_is_trained_once_and_marked(planned, tmp_path):
    """review30 finding 2: a plan that kept uniform has 6-digit shares (0.333334, 0.333333, ...), not 1/3 exactly."""
    _, store, plan = planned
    body = yaml.safe_load(plan.read_text())
    body["phases"] = [{"start_fraction": 0.0, "weights": {"code": 0.333334, "legal": 0.333333, "prose": 0.333333}}]
    rounded = tmp_path / "rounded_uniform.yaml"
    rounded.write_text(yaml.safe_dump(body))
    out = tmp_path / "v.json"
    assert run(["verify", str(rounded), "--store", str(store), "--seeds", "2", "--first-seed", "7",
                "--against", "uniform", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["trained"] == 2  # the plan's two seeds; uniform is the same runs, not two more
    (c,) = got["comparisons"]
    assert c["same_as_plan"] is True and c["diff"] == 0.0 and "seeds_to_resolve" not in c
    assert c.get("claim_held") is None  # the plan against itself claims nothing
    res = {r["name"]: r for r in got["results"]}
    assert res["uniform"]["values"] == res["plan"]["values"] and res["uniform"]["weights"] == res["plan"]["weights"]
    assert "the plan's own schedule (the same runs)" in _table_text(got)


def test_same_schedule_within_rounding():
    from mixopt.verify import same_schedule
    u = [(0.0, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})]
    assert same_schedule(u, [(0.0, {"a": 0.333334, "b": 0.333333, "c": 0.333333})])
    assert not same_schedule(u, [(0.0, {"a": 0.3334, "b": 0.3333, "c": 0.3333})])
    assert not same_schedule(u, [(0.0, {"a": 0.5, "b": 0.5})])
    assert not same_schedule(u, [*u, (0.8, {"a": 1.0})])


def test_one_seed_gives_no_interval_and_no_verdict_on_the_claim(planned, tmp_path):
    """review30 finding 3: one seed's "interval" was the difference itself, and the claim read as failed."""
    _, store, proposed = planned
    body = yaml.safe_load(proposed.read_text())
    body["phases"] = [{"start_fraction": 0.0, "weights": {"code": 0.6, "legal": 0.2, "prose": 0.2}}]  # not natural
    plan = tmp_path / "skewed.yaml"
    plan.write_text(yaml.safe_dump(body))
    out = tmp_path / "v1.json"
    assert run(["verify", str(plan), "--store", str(store), "--seeds", "1", "--against", "natural", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    (c,) = got["comparisons"]
    assert not c.get("same_as_plan") and "predicted_diff" in c
    assert c["ci95"] is None and c["claim_held"] is None and not c["plan_better"] and not c["plan_worse"]
    text = _table_text(got)
    assert "one seed: no interval; use --seeds 2 or more" in text and "none (1 seed)" in text
    assert "not as predicted" not in text
    assert run(["report", "--store", str(store), "--plan", str(plan), "--verify", str(out),
                "--out", str(tmp_path / "rep")]) == 0  # a one-seed VERIFY.json is a valid report input


def test_verify_tells_its_progress(planned):
    """review30 (determinism F1): verify trained its runs silently; it now reports runs done and the current run's steps."""
    from mixopt import pipeline
    from mixopt.config import config_from_dict
    from mixopt.data.domains import load_domain_set
    from mixopt.plan import load_plan
    from mixopt.runs.store import RunStore
    from mixopt.verify import verify

    _, store, plan = planned
    snapshot = pipeline.open_store(store)
    cfg = config_from_dict(snapshot.meta["config"], where="store.json")
    heard = []
    body = verify(load_plan(plan), RunStore(store, create=False), snapshot, cfg, load_domain_set(cfg.data),
                  against=["uniform"], seeds=2, first_seed=31, progress=lambda *a: heard.append(a))
    runs = [done for label, done, total in heard if label == "verify runs"]
    assert body["trained"] >= 1 and runs[0] == 0 and runs[-1] == body["trained"]
    assert all(total == body["trained"] for label, _, total in heard if label == "verify runs")
    assert any(label == "steps of the current run" for label, _, _ in heard)


def test_a_plan_is_not_verified_with_other_proxies_than_it_was_proposed_on(planned, tmp_path, capsys):
    """A plan proposed on one store's runs, verified on a store of another learning rate (or with a --config of
    another one), trained the plan with those proxies and set the result beside a prediction it did not make."""
    cfg, store, plan = planned
    body = yaml.safe_load(cfg.read_text())
    assert yaml.safe_load(plan.read_text())["provenance"]["proxy_fingerprint"]
    body["proxy"]["lr"] = body["proxy"].get("lr", 3e-3) / 3
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(body))
    out = tmp_path / "v.json"
    assert run(["verify", str(plan), "--store", str(store), "--config", str(other), "--seeds", "1",
                "--against", "natural", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other proxies" in err and "lr " in err and str(store.resolve()) in err
    assert not out.exists()


def test_a_verify_at_the_proxies_own_scale_compares_with_the_surrogates_prediction(planned, tmp_path):
    """The surrogate predicts at the proxies' scale (8192 tokens here): verify --tokens 8192 measures that prediction,
    the plan's budget (16384) does not."""
    _, store, plan = planned
    for tokens, comparable in (("8192", True), ("16384", False)):
        out = tmp_path / f"v{tokens}.json"
        assert run(["verify", str(plan), "--store", str(store), "--seeds", "1", "--against", "natural",
                    "--tokens", tokens, "--out", str(out)]) == 0
        body = json.loads(out.read_text())
        assert ("note" not in body["predicted"]) == comparable


def test_verify_tokens_off_whole_batches_warn_and_verify_json_records_what_trained(planned, tmp_path):
    """--tokens is rounded down to whole batches as a sweep's proxy.tokens: verify warns as the sweep does when that loses
    more than 1%, and the table and VERIFY.json say what trained; before: silent, and they said the count asked for
    (recheck of stop 40, N4)."""
    import shutil

    _, store, plan = planned
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    out = tmp_path / "v.json"
    with pytest.warns(UserWarning, match=r"--tokens 16,584 is rounded down to whole batches .* each run trains 16,384, "
                                         r"1\.2% fewer\. Pass --tokens as a multiple of 256"):
        assert run(["verify", str(plan), "--store", str(copy), "--seeds", "1", "--against", "natural", "--tokens", "16584",
                    "--out", str(out)]) == 0
    assert json.loads(out.read_text())["scale"]["tokens"] == 16384
