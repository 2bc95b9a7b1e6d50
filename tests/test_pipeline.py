"""The pipeline verbs: records read once per command, fingerprints checked where inputs meet, seed noise reported."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.errors import ConsistencyError
from mixopt.plan import load_plan
from mixopt.runs.record import RunRecord
from tests.test_cli_sweep import write_cfg


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two tiny real stores on different domains; the first repeats its anchors over 2 seeds."""
    tmp = tmp_path_factory.mktemp("pipe")
    a_dir, b_dir = tmp / "a", tmp / "b"
    a_dir.mkdir(), b_dir.mkdir()
    cfg_a = write_cfg(a_dir, runs=6, sampler={"noise_seeds": 2, "noise_mixtures": 1, "two_phase_runs": 0})
    cfg_b = write_cfg(b_dir, runs=4, data={"include": ["code", "prose"]})
    for cfg, store in ((cfg_a, tmp / "store_a"), (cfg_b, tmp / "store_b")):
        assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    return cfg_a, tmp / "store_a", cfg_b, tmp / "store_b"


def _parses(argv) -> int:
    RunRecord.parse_count = 0
    assert run(argv) == 0, argv
    return RunRecord.parse_count


def test_each_record_is_parsed_at_most_once_per_command(stores, tmp_path):
    cfg, store, _, _ = stores
    n = len(list((store / "runs").glob("*.json")))
    model, plan = tmp_path / "m.pkl", tmp_path / "plan.yaml"
    counts = {
        "sweep (resume)": _parses(["sweep", str(cfg), "--store", str(store)]),
        "fit": _parses(["fit", "--store", str(store), "--out", str(model)]),
        "propose": _parses(["propose", str(cfg), "--model", str(model), "--store", str(store), "--out", str(plan)]),
        "export": _parses(["export", str(plan), "-f", "json", "-o", str(tmp_path / "plan.json")]),
        "report": _parses(["report", "--store", str(store), "--plan", str(plan), "--model", str(model), "--out", str(tmp_path / "r")]),
    }
    assert all(c <= n for c in counts.values()), f"{n} records; parses per command: {counts}"
    assert counts["fit"] == n  # and the counter really counts


def test_fit_creates_missing_folders_and_reports_seed_noise(stores, tmp_path, capsys):
    _, store, _, _ = stores
    out = tmp_path / "no" / "dir" / "m.pkl"
    assert run(["fit", "--store", str(store), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "seed noise: sd" in text and "signal/noise" in text
    meta = pipeline.open_model(out).meta
    assert meta["noise"]["seed_sd"] > 0 and meta["noise"]["repeated"] == 3  # natural, uniform, one sampled mixture


def test_model_from_another_store_is_a_one_line_error(stores, tmp_path, capsys):
    cfg_a, store_a, _, store_b = stores
    model_b = tmp_path / "b.pkl"
    assert run(["fit", "--store", str(store_b), "--out", str(model_b)]) == 0
    capsys.readouterr()
    assert run(["propose", str(cfg_a), "--model", str(model_b), "--store", str(store_a), "--out", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fitted on domains ['code', 'prose']" in err and "['code', 'legal', 'prose']" in err
    assert not (tmp_path / "p.yaml").exists()


def test_config_with_other_domains_than_the_store_is_a_one_line_error(stores, tmp_path, capsys):
    _, store_a, cfg_b, _ = stores
    assert run(["propose", str(cfg_b), "--store", str(store_a), "--out", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "names domains ['code', 'prose']" in err and "swept on" in err


def test_check_model_store_compares_data_fingerprints(stores):
    _, store_a, _, _ = stores
    snap = pipeline.open_store(store_a)
    fitted = pipeline.fit(snap, "mean:all-domains")
    fitted.meta["data_fingerprint"] = "0" * 16
    with pytest.raises(ConsistencyError, match="fitted on data 0000"):
        pipeline.check_model_store(fitted, snap)


def test_plan_compares_with_baselines_in_units_of_seed_noise(stores, tmp_path):
    cfg, store, _, _ = stores
    snap = pipeline.open_store(store)
    fitted = pipeline.fit(snap, "mean:all-domains")
    plan = pipeline.propose(fitted, snapshot=snap, use_projector=False)
    pred = plan.predicted
    assert set(pred.baselines) >= {"natural", "uniform", "best-run"} and pred.seed_sd == fitted.meta["noise"]["seed_sd"]
    assert isinstance(pred.beats_baselines, bool)
    assert sum("vs natural" in r for r in plan.reasons) == 1
    for name, b in pred.baselines.items():
        band = 2 * np.sqrt(pred.seed_sd ** 2 + pred.std ** 2 + b["std"] ** 2)
        if any(r.startswith(f"vs {name}: the plan is {name}'s mixture") for r in plan.reasons):  # the kept baseline
            assert b["value"] == pytest.approx(pred.value) and not pred.beats_baselines
            continue
        said_within = any(f"vs {name}:" in r and "within the noise band" in r for r in plan.reasons)
        assert said_within == (abs(b["value"] - pred.value) <= band)
    saved = yaml.safe_load(pipeline.save(plan, tmp_path / "plan.yaml").read_text())
    assert saved["predicted"]["baselines"]["uniform"]["value"] == pytest.approx(pred.baselines["uniform"]["value"])


def test_measure_noise_without_repeats_says_so():
    noise = pipeline.measure_noise(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2]))
    assert noise["seed_sd"] is None and "not measured" in pipeline.noise_line(noise)
    noise = pipeline.measure_noise(np.array([1.0, 1.2, 3.0, 3.2]), np.array([0, 0, 1, 1]))
    assert noise["seed_sd"] == pytest.approx(np.sqrt(0.02)) and noise["snr"] > 3


def test_mixture_signal_is_measured_within_each_scale():
    # two mixtures at two sizes: the size moves every loss by 1.0, the mixtures differ by 0.1, seeds by ~0.01
    y = np.array([3.0, 3.01, 3.1, 4.0, 4.01, 4.1])
    groups = np.array([0, 0, 1, 2, 2, 3])
    scales = [(1e6,), (1e6,), (1e6,), (1e5,), (1e5,), (1e5,)]
    alone = pipeline.measure_noise(y, groups)
    within = pipeline.measure_noise(y, groups, scales=scales)
    assert alone["signal_sd"] > 0.5  # the size effect passing for mixture signal
    assert within["signal_sd"] == pytest.approx(0.095 / np.sqrt(2))  # each size: two means 0.095 apart
    assert within["seed_sd"] == alone["seed_sd"] and within["snr"] < alone["snr"] / 5
    one = pipeline.measure_noise(y[:3], groups[:3], scales=scales[:3])  # one scale: as before
    assert one["signal_sd"] == pytest.approx(pipeline.measure_noise(y[:3], groups[:3])["signal_sd"])


def _regmix_subset(regmix, tmp_path, kind: str, n: int) -> tuple:
    """The first ``n`` rows of a RegMix table pair, written as CSVs."""
    import csv

    out = []
    for part in ("mixture", "pile_loss"):
        rows = list(csv.reader((regmix / f"{kind}_{part}_{'60m' if kind == 'test60' else '1m'}.csv".replace("test60", "test")).open()))
        path = tmp_path / f"{kind}_{part}.csv"
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows(rows[: n + 1])
        out.append(path)
    return tuple(out)


def test_fit_predict_propose_at_the_target_scale(regmix, tmp_path, capsys):
    """A store of two scales (RegMix 1M and 60M runs) gets a scale-aware model, judged with the largest scale held out."""
    store = tmp_path / "store"
    m1, l1 = _regmix_subset(regmix, tmp_path, "train", 60)
    m60, l60 = _regmix_subset(regmix, tmp_path, "test60", 20)
    assert run(["runs", "import", "--mixtures", str(m1), "--metrics", str(l1), "--model-params", "1e6", "--tokens", "1e9",
                "--store", str(store)]) == 0
    assert run(["runs", "import", "--mixtures", str(m60), "--metrics", str(l60), "--model-params", "6e7", "--tokens", "1e9",
                "--store", str(store)]) == 0
    model = tmp_path / "m.pkl"
    target = "metric/the_pile_pile_cc_val_loss"
    capsys.readouterr()
    assert run(["fit", "--store", str(store), "--target", target, "--folds", "4", "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert "largest" in out and "held out" in out
    meta = pipeline.open_model(model).meta
    assert meta["scale_aware"] and meta["cv"]["largest_scale"][0] == pytest.approx(6e7) and len(meta["cv"]["y_true"]) == 20
    mixtures = tmp_path / "w.csv"
    mixtures.write_text(m60.read_text())
    std = {}
    for n in ("6e7", "1e9"):
        preds = tmp_path / f"p{n}.csv"
        assert run(["predict", "--model", str(model), "--mixtures", str(mixtures), "--model-params", n, "--tokens", "1e9",
                    "--out", str(preds)]) == 0
        rows = preds.read_text().splitlines()
        assert rows[0] == "index,prediction,std" and len(rows) == 21
        std[n] = np.mean([float(r.split(",")[2]) for r in rows[1:]])
    assert std["1e9"] > std["6e7"]  # the predictive std grows with the extrapolation distance
    plan = tmp_path / "plan.yaml"
    search = tmp_path / "search.yaml"  # imported runs have no sweep config: a config that sets only the search applies
    cap = "train_the_pile_pile_cc"
    search.write_text(yaml.safe_dump({"propose": {"n_candidates": 20000, "max_weights": {cap: 0.05}}}))
    assert run(["propose", str(search), "--model", str(model), "--store", str(store), "--model-params", "1e9",
                "--budget-tokens", "1e9", "--out", str(plan)]) == 0
    body = yaml.safe_load(plan.read_text())
    assert body["predicted"]["by"]["surrogate"]["scale"] == "target"
    assert load_plan(plan).overall_weights()[cap] <= 0.05 + 1e-9
    assert body["provenance"]["target_scale"] == {"model_params": 1e9, "tokens": 1e9}


def test_one_scale_model_refuses_another_scale(stores, tmp_path, capsys):
    _, store, _, _ = stores
    model = tmp_path / "m.pkl"
    assert run(["fit", "--store", str(store), "--out", str(model)]) == 0
    (tmp_path / "w.csv").write_text("index,code,legal,prose\n0,0.2,0.3,0.5\n")
    capsys.readouterr()
    assert run(["predict", "--model", str(model), "--mixtures", str(tmp_path / "w.csv"), "--model-params", "1e9",
                "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "transfers the mixtures' rank" in err and not (tmp_path / "p.csv").exists()


def test_readme_plan_example_matches_a_real_plan(stores, tmp_path):
    """Every field the README's plan example shows is one `propose` writes (no invented or stale fields)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## The plan file\n.*?```yaml\n(.*?)```", text, re.S).group(1)
    example = yaml.safe_load(block)
    _, store, _, _ = stores
    snap = pipeline.open_store(store)
    plan = pipeline.propose(pipeline.fit(snap, "mean:all-domains"), snapshot=snap)
    real = yaml.safe_load(pipeline.save(plan, tmp_path / "plan.yaml").read_text())
    assert set(example) <= set(real) | {"pools"}, set(example) - set(real)
    assert set(example["predicted"]) <= set(real["predicted"])
    for name, fields in example["predicted"]["by"].items():
        assert set(fields) <= set(real["predicted"]["by"][name]), name
    assert set(example["predicted"]["baselines"]) == set(real["predicted"]["baselines"])
    assert set(example["provenance"]) <= set(real["provenance"])


class _Fixed:
    """An estimator whose prediction is a fixed linear function of the mixture, with a fixed std."""

    def __init__(self, coef, std):
        self.coef, self.std = np.asarray(coef, dtype=float), std

    def predict(self, W, return_std=False):
        m = np.atleast_2d(W) @ self.coef
        return (m, np.full(len(m), self.std)) if return_std else m


def test_keep_baseline_within_noise_keeps_it_only_without_evidence():
    from mixopt.planning.constraints import Constraints
    from mixopt.planning.propose import ProposeContext, keep_baseline_within_noise
    from mixopt.planning.search import SearchResult

    domains = ["a", "b"]
    ctx = ProposeContext(domains=domains, target="t", token_counts={"a": 300, "b": 100}, noise={"seed_sd": 0.01})
    cons = Constraints.unbounded(domains)
    found = SearchResult(np.array([0.9, 0.1]), domains, 1.00, 0.01, 1.0, np.zeros((1, 2)), 1, 0.0, "simulate")
    # baselines predicted 1.02 (natural 0.75/0.25 and uniform both): a gain of 0.02 within the band 2*sqrt(3)*0.01
    kept, note = keep_baseline_within_noise(_Fixed([1.02, 1.02], 0.01), found, cons, ctx)
    assert kept.method.startswith("baseline:") and note.startswith("kept ") and "within the noise band" in note
    assert "sweep more runs" not in note  # std 0.01 = 1 seed sd: the model knows that mixture
    unsure = SearchResult(np.array([0.9, 0.1]), domains, 1.00, 0.06, 1.0, np.zeros((1, 2)), 1, 0.0, "simulate")
    _, note = keep_baseline_within_noise(_Fixed([1.02, 1.02], 0.01), unsure, cons, ctx)
    assert "6.0x the seed noise" in note and "sweep more runs" in note
    # baselines predicted 1.5: the search's mixture has earned it
    same, note = keep_baseline_within_noise(_Fixed([1.5, 1.5], 0.01), found, cons, ctx)
    assert same is found and note == ""


def test_keep_best_run_makes_the_best_sweep_run_a_baseline_of_the_gate():
    from mixopt.planning.constraints import Constraints
    from mixopt.planning.propose import ProposeContext, best_measured_run, keep_baseline_within_noise
    from mixopt.planning.search import SearchResult

    domains = ["a", "b"]
    runs = [RunRecord(run_id=f"r{i}", label=f"sample-{i}", mixture={"a": x, "b": 1 - x}, status="ok", metrics={"t": 1.1 - 0.1 * i})
            for i, x in enumerate((0.2, 0.4, 0.6))]
    ctx = ProposeContext(domains=domains, target="t", token_counts={"a": 100, "b": 100}, noise={"seed_sd": 0.01}, records=runs)
    label, w, y = best_measured_run(ctx)
    assert label == "sample-2" and np.allclose(w, [0.6, 0.4]) and y == pytest.approx(0.9)
    found = SearchResult(np.array([0.9, 0.1]), domains, 0.90, 0.01, 1.0, np.zeros((1, 2)), 1, 0.0, "simulate")
    model = _Fixed([0.88, 0.98], 0.01)  # best run (0.6 a) predicted 0.92, uniform 0.93: within the band of the search's 0.90
    kept, note = keep_baseline_within_noise(model, found, Constraints.unbounded(domains), ctx, best_run=True)
    assert kept.method == "baseline:best-run" and np.allclose(kept.weights, [0.6, 0.4]) and note.startswith("kept best-run")
    kept, _ = keep_baseline_within_noise(model, found, Constraints.unbounded(domains), ctx)  # default: natural/uniform only
    assert kept.method in ("baseline:natural", "baseline:uniform")


def test_config_typo_names_the_unknown_key_first(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("data:\n  corpus: none\n  domains:\n    - {name: web, pth: web.jsonl}\n")
    assert run(["sweep", str(bad), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pth" in err and "Extra inputs are not permitted" in err and len(err.splitlines()) == 1


def test_corpus_list_accepts_a_packaged_config_name(capsys):
    assert run(["corpus", "list", "--config", "tiny"]) == 0
    assert "code" in capsys.readouterr().out


def test_end_phase_gain_stays_on_the_scale_of_the_losses(tiny_demo):
    """The tiny config's plan once read 'the best end phase gains 46.3118' for losses near 3.4 (a two-phase GP
    extrapolating); end phases are now searched only where the sweep's two-phase runs leaned."""
    import re

    reasons = yaml.safe_load((tiny_demo / "plan.yaml").read_text())["reasons"]
    gains = [float(g) for r in reasons for g in re.findall(r"gains? ([+-]?\d+\.\d+)", r)]
    assert all(abs(g) < 1.0 for g in gains), reasons


def test_fit_on_several_scales_names_the_scale_aware_models(regmix, tmp_path, capsys):
    """A single-scale estimator asked for on a multi-scale store is a one-line error listing the scale-aware ones."""
    store = tmp_path / "store"
    for kind, n, size in (("train", 12, "1e6"), ("test60", 6, "6e7")):
        m, lo = _regmix_subset(regmix, tmp_path, kind, n)
        assert run(["runs", "import", "--mixtures", str(m), "--metrics", str(lo), "--model-params", size, "--tokens", "1e9",
                    "--store", str(store)]) == 0
    capsys.readouterr()
    assert run(["fit", "--store", str(store), "--target", "metric/the_pile_pile_cc_val_loss", "--model", "regmix-lightgbm",
                "--out", str(tmp_path / "m.pkl")]) == 2
    err = capsys.readouterr().err.strip()
    assert "scale-aware" in err and "annealing-law" in err and "scale-gp" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "m.pkl").exists()


def test_fit_budgets_predicts_at_a_larger_token_budget(stores, tmp_path, capsys):
    """One proxy size under WSD: `fit --budgets` fits the decay branches too and `propose` predicts at the plan's budget;
    a store whose runs measured only their end gets a one-line error naming the fix."""
    cfg = write_cfg(tmp_path, runs=6, proxy={"schedule": "wsd", "checkpoints": [0.25, 0.5, 1.0]},
                    sampler={"noise_seeds": 2, "two_phase_runs": 0})
    store, model, plan = tmp_path / "store", tmp_path / "m.pkl", tmp_path / "plan.yaml"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    assert run(["fit", "--store", str(store), "--out", str(model), "--budgets"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "largest" in out and "held out" in out
    assert "warning: the shortest budget fitted is" in out  # the micro proxy's branches are a few steps long
    assert "level backtest: the largest scale" in out and "within the model's band" in out  # three budgets: backtested
    lo, hi = pipeline.open_model(model).meta["shift_spread"]  # shift-gp spreads the shift by each domain's weight
    assert 0 <= lo < 1 < hi <= 2 and "level shift spread by each domain's weight" in out
    fitted = pipeline.open_model(model)
    ends = pipeline.fit(pipeline.open_store(store), "mean:all-domains")
    assert fitted.meta["scale_aware"] and fitted.meta["budgets"] and len(fitted.meta["scales"]) == 3
    assert fitted.meta["n_rows"] == 3 * fitted.meta["n_runs"] and not ends.meta["scale_aware"]
    assert fitted.meta["noise"] == ends.meta["noise"]  # seed noise from each run's end, as without --budgets
    assert run(["propose", str(cfg), "--model", str(model), "--store", str(store), "--out", str(plan)]) == 0
    body = yaml.safe_load(plan.read_text())
    assert any(r.startswith("model warning: the shortest budget") for r in body["reasons"])
    tokens = yaml.safe_load(cfg.read_text())["proxy"]["tokens"]
    assert body["provenance"]["target_scale"]["tokens"] == pytest.approx(body["budget_tokens"]) and body["budget_tokens"] > tokens
    assert body["predicted"]["by"]["surrogate"]["scale"] == "target"
    capsys.readouterr()
    assert run(["fit", "--store", str(store), "--out", str(tmp_path / "l.pkl"), "--budgets", "--model", "linear"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "With --budgets the rows span 3 scales" in err and "drop --budgets" in err
    _, cosine_store, _, _ = stores
    assert run(["fit", "--store", str(cosine_store), "--out", str(tmp_path / "c.pkl"), "--budgets"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "schedule: wsd" in err and not (tmp_path / "c.pkl").exists()


def test_short_budgets_are_warned_about():
    from mixopt.runs.table import RunTable

    def table(tokens):
        n = len(tokens)
        return RunTable([f"r{i}" for i in range(n)], ["a", "b"], np.full((n, 2), 0.5), {"val/a": np.ones(n)},
                        np.full(n, 1e5), np.asarray(tokens, dtype=float))

    demo = [RunRecord(run_id="r0", mixture={"a": 0.5, "b": 0.5}, status="ok", proxy={"batch_size": 16, "block_size": 128})]
    assert pipeline.short_budget_notes(demo, table([124928, 249856, 499712])) == []  # the demo's 61-244 steps
    tiny = [RunRecord(run_id="r0", mixture={"a": 0.5, "b": 0.5}, status="ok", proxy={"batch_size": 8, "block_size": 32})]
    (note,) = pipeline.short_budget_notes(tiny, table([2560, 5120, 10240]))
    assert "10 optimizer steps" in note and "too low" in note


def test_projector_disagreement_is_judged_at_the_surrogates_scale():
    """A surrogate at the plan's budget is compared with the projector's value there, not at the proxies' tokens."""
    from mixopt.config import ProposeConfig
    from mixopt.planning.propose import ProposeContext, build_plan

    domains = ["a", "b"]
    cfg = ProposeConfig(n_candidates=200, top_k=10, upsample=False)

    def plan_with(projected, target_scale):
        ctx = ProposeContext(domains=domains, target="t", token_counts={"a": 10**6, "b": 10**6}, proxy_tokens=1e5,
                             provenance={"target_scale": {"tokens": 4e5}} if target_scale else {})
        return build_plan(_Fixed([2.0, 2.0], 0.01), ctx, cfg, budget_tokens=4e5,
                          projector=lambda w, budget: dict(projected, tokens=budget))

    at_budget_agrees = {"value": 2.0, "std": 0.02, "value_at_proxy": 2.6, "std_at_proxy": 0.02}
    assert not plan_with(at_budget_agrees, True).predicted.disagreement
    assert plan_with(at_budget_agrees, False).predicted.disagreement  # a proxy-scale surrogate: the proxy values differ
    at_budget_differs = {"value": 1.7, "std": 0.02, "value_at_proxy": 2.0, "std_at_proxy": 0.02}
    plan = plan_with(at_budget_differs, True)
    assert plan.predicted.disagreement and any("at the plan's budget" in r and "1.7000" in r for r in plan.reasons)


def test_fit_budgets_on_several_sizes_says_it_made_the_level_worse(tmp_path):
    cfg = write_cfg(tmp_path, runs=4, proxy={"schedule": "wsd", "checkpoints": [0.5, 1.0]},
                    sampler={"two_phase_runs": 0}, sizes=[{"name": "s", "n_embd": 16, "head_size": 16}, {"name": "m", "runs": 4}])
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    fitted = pipeline.fit(pipeline.open_store(store), "mean:all-domains", budgets=True)
    assert type(fitted.estimator).__name__ == "ScaleGP"  # scale-gp across sizes, not shift-gp
    assert any(n.startswith("--budgets on several model sizes") for n in fitted.meta["notes"])


def test_a_missed_level_backtest_is_warned_about_with_its_direction():
    def bt(bias, sd=0.04, params=(1e5, 1e5)):
        return {"bias": bias, "mean_sd": sd, "mae": abs(bias), "within_2sd": 0.5, "n": 30,
                "largest_scale": (params[0], 5e5), "from_scale": (params[1], 2.5e5 if params[0] == params[1] else 5e5)}

    assert pipeline.level_notes(None) == [] and pipeline.level_notes(bt(-0.05)) == []  # 1.25 sd: within the band
    (low,) = pipeline.level_notes(bt(-0.2))
    assert "0.200 too low" in low and "first checkpoint later" in low
    (high,) = pipeline.level_notes(bt(+0.1), widened=True)
    assert "too high" in high and "checkpoint" in high and "corrected" in high
    (size,) = pipeline.level_notes(bt(-0.2, params=(4e5, 1e5)))
    assert "proxy size nearer the target" in size
    assert "within the model's band" in pipeline.backtest_line(bt(-0.03)) and pipeline.backtest_line(None) is None
    assert "+2.50 sd" in pipeline.backtest_line(bt(0.1))


def test_component_domains_name_the_domain_each_target_column_measures():
    from mixopt.runs.table import RunTable

    t = RunTable(["r0"], ["code", "prose"], np.array([[0.5, 0.5]]),
                 {"val/code": np.ones(1), "val/prose": np.ones(1), "metric/acc": np.ones(1)}, np.full(1, 1e5), np.full(1, 1e5))
    assert t.component_domains("mean:all-domains") == [0, 1]
    assert t.component_domains("val/prose") == [1] and t.component_domains("metric/acc") == [None]
    assert t.component_domains("wmean:val/prose=0.7,metric/acc=0.3") == [1, None]


@pytest.mark.slow  # three proposes with the curse's cross-fitted searches: 12-19 s on 2 cores
def test_curse_correction_raises_the_search_value_by_the_measured_optimism(stores, monkeypatch):
    import mixopt.planning.curse as curse
    from mixopt.config import load_config

    cfg_path, store, _, _ = stores
    snap = pipeline.open_store(store)
    fitted = pipeline.fit(snap, "mean:all-domains")
    cfg = load_config(cfg_path)
    cfg.propose.keep_baseline_within_noise = False  # the search's own mixture, whose value the correction is about
    few = pipeline.propose(fitted, config=cfg, snapshot=snap, use_projector=False)
    assert "curse" not in few.predicted.by["surrogate"] and any("curse is not measured" in r for r in few.reasons)
    monkeypatch.setattr(curse, "MIN_HALF_RUNS_PER_DOMAIN", 0.5)  # the tiny store's halves: the plumbing, not the figure
    on = pipeline.propose(fitted, config=cfg, snapshot=snap, use_projector=False)
    cfg.propose.curse_correction = False
    off = pipeline.propose(fitted, config=cfg, snapshot=snap, use_projector=False)
    assert on.phases[0].weights == off.phases[0].weights  # the correction moves the value, not the mixture
    by = on.predicted.by["surrogate"]
    assert "curse" in by and "curse" not in off.predicted.by["surrogate"]
    assert by["uncorrected"] == pytest.approx(off.predicted.value)
    assert on.predicted.value == pytest.approx(off.predicted.value + max(by["curse"], 0.0))
    assert any("optimizer's curse" in r for r in on.reasons)


def test_a_store_that_can_fit_but_not_cross_validate_says_so(tmp_path):
    """4 runs over 2 domains: the GP's minimum, but each CV fold trains on 3 (the error used to name 3 runs)."""
    from mixopt.cli.main import run
    from mixopt.errors import FitError
    from tests.test_cli_sweep import write_cfg
    cfg = write_cfg(tmp_path, runs=3, data={"include": ["code", "legal"]}, sampler={"baselines": ["natural"]})
    assert run(["sweep", str(cfg), "--store", str(tmp_path / "s")]) == 0
    snap = pipeline.open_store(tmp_path / "s")
    assert len(snap.ok) == 4
    with pytest.raises(FitError, match="has 4 runs: enough to fit GPSurrogate .* but not to cross-validate it"):
        pipeline.fit(snap, "val/code")


def test_propose_on_sizes_that_never_varied_tokens_predicts_at_their_tokens(tmp_path):
    """A `sizes:` store varies the model only: propose's default budget (4x the proxy's tokens) cannot be predicted,
    so it predicts at the runs' tokens; an explicit other budget is a one-line error naming --budget-tokens (it named
    a `--tokens` flag propose does not have)."""
    from mixopt.cli.main import run
    from mixopt.config import load_config
    from mixopt.errors import FitError
    from tests.test_cli_sweep import write_cfg
    cfg = write_cfg(tmp_path, runs=3, sampler={"two_phase_runs": 0},
                    sizes=[{"name": "s", "n_embd": 16, "head_size": 16, "runs": 3}, {"name": "m", "runs": 3}])
    store = tmp_path / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    snap = pipeline.open_store(store)
    model = pipeline.fit(snap, "val/code")
    assert model.meta["scale_aware"]
    config = load_config(cfg)
    plan = pipeline.propose(model, config=config, snapshot=snap, use_projector=False)
    assert plan.budget_tokens == config.proxy.tokens == plan.provenance["target_scale"]["tokens"]
    with pytest.raises(FitError, match="--budget-tokens 32768 asks for another token budget"):
        pipeline.propose(model, config=config, snapshot=snap, use_projector=False, budget_tokens=32768)
    # verify at the small size: the plan predicts at the largest, so there is no prediction error to report
    from mixopt.data.domains import load_domain_set
    from mixopt.runs.store import RunStore
    from mixopt.verify import verify
    body = verify(plan, RunStore(store, create=False), snap, config, load_domain_set(config.data), against=["natural"],
                  seeds=1, shape="s")
    assert body["prediction_error"] is None and "but verify trained" in body["predicted"]["note"]


def _import_sizes(tmp_path, name: str, at: list[tuple[float, list[int]]], *, sd: float = 0.003) -> str:
    """An imported store: mixture i of 12 fixed ones trained at each size N in ``at`` (an index listed twice: two seeds),
    one CSV pair with model_params / tokens columns, as `runs import` documents for several scales."""
    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.ones(3), size=12)
    mix, met = ["index,a,b,c"], ["index,val/loss,model_params,tokens"]
    for N, which in at:
        for i in which:
            w = [float(v) for v in W[i]]
            loss = 3.0 - 0.3 * np.log10(N / 1e6) + 0.5 * (w[0] - 0.5) ** 2 + 0.3 * w[1] + float(rng.normal(0, sd))
            mix.append(f"{len(mix) - 1},{w[0]!r},{w[1]!r},{w[2]!r}")
            met.append(f"{len(met) - 1},{float(loss)!r},{N!r},1e8")
    (tmp_path / f"{name}_mix.csv").write_text("\n".join(mix) + "\n")
    (tmp_path / f"{name}_met.csv").write_text("\n".join(met) + "\n")
    store = str(tmp_path / name)
    assert run(["runs", "import", "--mixtures", str(tmp_path / f"{name}_mix.csv"), "--metrics", str(tmp_path / f"{name}_met.csv"),
                "--store", store]) == 0
    return store


def test_one_mixture_at_several_imported_sizes_is_no_seed_repeat(tmp_path):
    """Imported runs have no proxy and carry their size in `scale` alone: one mixture at 1e6, 4e6 and 1.6e7 params
    was counted as three seeds, so the size effect (~0.3 nats per decade) became the 'seed noise' (0.17 for a true 0.003)
    and ScaleGP's white-noise floor. Only the mixture trained twice at one size is a repeat."""
    from mixopt.runs.groups import repeat_groups
    store = _import_sizes(tmp_path, "st", [(1e6, [0, 0, *range(1, 12)]), (4e6, list(range(6))), (1.6e7, [0, 1, 2])])
    snap = pipeline.open_store(store)
    groups = repeat_groups(snap.ok)
    assert len(snap.ok) == 22 and len(np.unique(groups)) == 21  # one seed repeat: mixture 0 twice at 1e6
    fitted = pipeline.fit(snap, "val/loss")
    noise = fitted.meta["noise"]
    assert noise["repeated"] == 1 and noise["dof"] == 1 and noise["seed_sd"] < 0.03


def test_largest_scale_with_fewer_mixtures_than_folds_fits_and_one_mixture_says_so(tmp_path, capsys):
    """The held-out-scale CV deals the largest scale's *mixtures* into folds: k was sized by its runs, so 2 mixtures in
    3 runs (a seed repeat) left a fold empty and `fit` died on argmin of an empty array. Three seeds of one mixture
    there cannot be held-out-scale cross-validated: a one-line error naming the fix."""
    store = _import_sizes(tmp_path, "two", [(1e6, list(range(12))), (4e6, list(range(6))), (1.6e7, [0, 0, 1])])
    fitted = pipeline.fit(pipeline.open_store(store), "val/loss")
    assert fitted.meta["cv"]["k"] == 2 and len(fitted.meta["cv"]["y_true"]) == 3
    one = _import_sizes(tmp_path, "one", [(1e6, list(range(12))), (4e6, list(range(6))), (1.6e7, [0, 0, 0])])
    capsys.readouterr()
    assert run(["fit", "--store", one, "--target", "val/loss", "--out", str(tmp_path / "m.pkl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and not (tmp_path / "m.pkl").exists()
    assert "has 3 run(s) of 1 mixture" in err and "2+ distinct mixtures" in err and "1.6e+07 params" in err


def test_a_config_for_imported_runs_sets_the_search_only(tmp_path, capsys):
    """Imported runs have no sweep config and no data here: a config without data: sets propose's search; one with a
    data: section names other domains and is refused in one line that says what to remove."""
    (tmp_path / "m.csv").write_text("index,a,b\n" + "".join(f"{i},{i / 7:.4f},{1 - i / 7:.4f}\n" for i in range(8)))
    (tmp_path / "l.csv").write_text("index,val/a\n" + "".join(f"{i},{3 + (i / 7 - 0.7) ** 2:.4f}\n" for i in range(8)))
    store = tmp_path / "imp"
    assert run(["runs", "import", "--mixtures", str(tmp_path / "m.csv"), "--metrics", str(tmp_path / "l.csv"),
                "--store", str(store)]) == 0
    model = tmp_path / "m.pkl"
    assert run(["fit", "--store", str(store), "--target", "val/a", "--folds", "2", "--out", str(model)]) == 0
    capsys.readouterr()
    plan = tmp_path / "plan.yaml"
    assert run(["propose", "--model", str(model), "--store", str(store), "--no-projector", "--out", str(plan)]) == 2
    assert "needs a token budget" in capsys.readouterr().err and not plan.exists()  # was a plan of 1 token
    search = {"n_candidates": 2000, "top_k": 10, "upsample": False, "max_weights": {"a": 0.5}, "budget_tokens": 4e9}
    with_data = tmp_path / "with_data.yaml"
    with_data.write_text(yaml.safe_dump({"data": {"include": ["code", "prose"]}, "propose": search}))
    assert run(["propose", str(with_data), "--model", str(model), "--store", str(store), "--no-projector",
                "--out", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "imported runs" in err and "remove the config's data: section" in err and not plan.exists()
    search_only = tmp_path / "search.yaml"
    search_only.write_text(yaml.safe_dump({"seed": 3, "propose": search}))
    assert run(["propose", str(search_only), "--model", str(model), "--store", str(store), "--no-projector",
                "--out", str(plan)]) == 0
    assert load_plan(plan).overall_weights()["a"] <= 0.5 + 1e-9  # unconstrained, the optimum is at a = 0.7
    assert load_plan(plan).budget_tokens == 4e9
    assert any(r.startswith("repetition not checked") for r in load_plan(plan).reasons)  # no domain sizes here


def test_a_config_naming_other_domains_than_imported_runs_says_what_each_command_needs(tmp_path, capsys):
    """propose: drop data:; verify (which trains): name the store's domains with their files. Never "the store's own
    config", which imported runs do not have."""
    from mixopt.config import config_from_dict

    (tmp_path / "m.csv").write_text("index,a,b\n0,0.5,0.5\n1,0.2,0.8\n")
    (tmp_path / "l.csv").write_text("index,val/a\n0,3.0\n1,3.1\n")
    store = tmp_path / "imp"
    assert run(["runs", "import", "--mixtures", str(tmp_path / "m.csv"), "--metrics", str(tmp_path / "l.csv"),
                "--store", str(store)]) == 0
    snapshot = pipeline.open_store(store)
    cfg = config_from_dict({"data": {"include": ["code"]}})
    for propose_only, says in ((True, "remove the config's data: section"), (False, "one data.domains entry each")):
        with pytest.raises(ConsistencyError) as err:
            pipeline.check_config_store(cfg, snapshot, propose_only=propose_only)
        assert says in str(err.value) and "store's own config" not in str(err.value)
    pipeline.check_config_store(config_from_dict({"propose": {"top_k": 5}}), snapshot, propose_only=True)  # no data: fine
