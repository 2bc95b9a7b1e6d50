"""Predicting at a scale (stop 36's review of the target-scale path): predict's default scale and what it says, far
extrapolation, sizes and tokens that grow together, a target some scale did not measure, the projector's reason."""

import numpy as np
import pytest
import yaml

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.errors import FitError
from mixopt.surrogates.checks import together_note
from mixopt.runs.table import RunTable
from tests.conftest import regmix_dir
from tests.test_pipeline import _regmix_subset


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory):
    """RegMix's 1M (60 runs) and 60M (20 runs) tables at one token budget, and a scale-aware model of pile_cc."""
    regmix = regmix_dir()
    if regmix is None:
        pytest.skip("RegMix tables not found in ../shared/anchors/regmix or benchmarks/data/regmix")
    tmp = tmp_path_factory.mktemp("two")
    store = tmp / "store"
    m1, l1 = _regmix_subset(regmix, tmp, "train", 60)
    m60, l60 = _regmix_subset(regmix, tmp, "test60", 20)
    for mix, met, n in ((m1, l1, "1e6"), (m60, l60, "6e7")):
        assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--model-params", n, "--tokens", "1e9",
                    "--store", str(store)]) == 0
    model = tmp / "m.pkl"
    assert run(["fit", "--store", str(store), "--target", "metric/the_pile_pile_cc_val_loss", "--folds", "3",
                "--out", str(model)]) == 0
    mixtures = tmp / "w.csv"
    mixtures.write_text(m60.read_text())
    return store, model, mixtures


def test_predict_defaults_to_the_largest_trained_scale_and_says_so(two_sizes, tmp_path, capsys):
    """review: with no --model-params/--tokens predict used the *smallest* proxy's scale, and did not say which."""
    _, model, mixtures = two_sizes
    capsys.readouterr()
    assert run(["predict", "--model", str(model), "--mixtures", str(mixtures), "--out", str(tmp_path / "d.csv")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "at 6e+07 parameters x 1e+09 tokens (the largest trained scale" in out
    assert run(["predict", "--model", str(model), "--mixtures", str(mixtures), "--model-params", "6e7", "--tokens", "1e9",
                "--out", str(tmp_path / "e.csv")]) == 0
    assert (tmp_path / "d.csv").read_text() == (tmp_path / "e.csv").read_text()
    assert run(["predict", "--model", str(model), "--mixtures", str(mixtures), "--model-params", "1e6", "--tokens", "1e9",
                "--out", str(tmp_path / "s.csv")]) == 0
    assert (tmp_path / "s.csv").read_text() != (tmp_path / "d.csv").read_text()


def test_far_extrapolation_is_said_by_predict_and_by_the_plan(two_sizes, tmp_path, capsys):
    store, model, mixtures = two_sizes
    capsys.readouterr()
    assert run(["predict", "--model", str(model), "--mixtures", str(mixtures), "--model-params", "1e10",
                "--out", str(tmp_path / "p.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: the prediction is at 1e+10 parameters, 2.2 decades past the largest run's 6e+07" in err
    assert run(["predict", "--model", str(model), "--mixtures", str(mixtures), "--model-params", "3e8",
                "--out", str(tmp_path / "q.csv")]) == 0
    assert "decades" not in capsys.readouterr().err  # 5x the largest: within reach
    search = tmp_path / "search.yaml"
    search.write_text(yaml.safe_dump({"propose": {"n_candidates": 2000}}))
    assert run(["propose", str(search), "--model", str(model), "--store", str(store), "--model-params", "1e10",
                "--out", str(tmp_path / "plan.yaml")]) == 0
    reasons = yaml.safe_load((tmp_path / "plan.yaml").read_text())["reasons"]
    assert any("decades past the largest run's 6e+07" in r for r in reasons)
    # no --budget-tokens on runs that all trained 1e9 tokens: the budget is theirs, and the plan says why
    assert any(r.startswith("budget: the runs' own 1e+09 tokens, not the default 4x") for r in reasons)


def test_sizes_that_grow_with_their_tokens_are_named_by_fit():
    """review: sizes whose tokens grew with them (20k/41k/82k tokens at 12k/49k/197k params) gave a model that predicted
    a *higher* loss at 4x the tokens, with no warning: size and token effects cannot be told apart."""
    together = [(1.2e4, 2.05e4), (4.9e4, 4.1e4), (1.97e5, 8.2e4)]
    together = [(n, 2.05e4 * (n / 1.2e4) ** 0.5) for n, _ in together]  # one line in log-log
    note = together_note(together)
    assert "grow model size and tokens together" in note and "a second token budget" in note
    assert together_note([(n, d) for n, d in ((1e6, 1e9), (6e7, 1e9))]) == ""  # tokens fixed: the usual sizes
    assert together_note([(1e6, 1e9), (1e6, 4e9), (6e7, 1e9)]) == ""  # a size at two budgets: both measured
    assert together_note([(1e6, 1e9), (6e7, 4e9)]) != ""  # two scales differing in both: one direction only


def test_a_target_one_scale_did_not_measure_names_the_metric_and_the_scale():
    """review: 'has non-finite values in 8 run(s). Drop them or pick another target.' named neither."""
    nan = float("nan")
    t = RunTable([f"r{i}" for i in range(4)], ["a", "b"], np.full((4, 2), 0.5),
                 {"val/a": np.array([1.0, 1.1, 1.2, 1.3]), "val/b": np.array([2.0, 2.1, nan, nan])},
                 np.array([1e6, 1e6, 6e7, 6e7]), np.full(4, 1e9))
    y = t.target("mean:all-domains")
    msg = pipeline.unmeasured_target(t, "mean:all-domains", y)
    assert "no finite value in 2 of 4 run(s) (runs at 6e+07" in msg and "missing val/b in 2" in msg
    assert "Pick a target every run measured" in msg and "\n" not in msg


def test_the_projector_names_different_token_budgets_not_the_checkpoints_setting():
    from mixopt.projector.from_runs import MIN_RUNS, fit_store_projector
    from mixopt.runs.record import RunRecord

    recs = [RunRecord(run_id=f"r{i}", mixture={"a": 0.5, "b": 0.5}, status="ok", metrics={"val/a": 1.0},
                      curves={"val/a": {str(t * k): 2.0 - 0.1 * k for k in (1, 2)}})
            for i, t in enumerate([1000.0, 2000.0] * ((MIN_RUNS + 1) // 2 + 1))]
    with pytest.raises(FitError, match="trained different budgets") as info:
        fit_store_projector(recs, ["a", "b"], "val/a", {}, np.zeros(0))
    assert "Set proxy.checkpoints" not in str(info.value)


def test_the_default_budget_of_sizes_with_different_tokens_is_4x_the_largest_sizes(tmp_path, capsys):
    """review: sizes that trained different tokens got 4x the *base* proxy's tokens (or, imported, no default at all),
    while the help says 4x the proxy tokens and the plan is at the largest size."""
    regmix = regmix_dir()
    if regmix is None:
        pytest.skip("RegMix tables not found in ../shared/anchors/regmix or benchmarks/data/regmix")
    store = tmp_path / "store"
    m1, l1 = _regmix_subset(regmix, tmp_path, "train", 40)
    m60, l60 = _regmix_subset(regmix, tmp_path, "test60", 20)
    for mix, met, n, d in ((m1, l1, "1e6", "1e9"), (m60, l60, "6e7", "2e9")):
        assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--model-params", n, "--tokens", d,
                    "--store", str(store)]) == 0
    model, cfg, plan = tmp_path / "m.pkl", tmp_path / "search.yaml", tmp_path / "plan.yaml"
    assert run(["fit", "--store", str(store), "--target", "metric/the_pile_pile_cc_val_loss", "--folds", "3",
                "--out", str(model)]) == 0
    cfg.write_text(yaml.safe_dump({"propose": {"n_candidates": 2000}}))
    assert run(["propose", str(cfg), "--store", str(store), "--model", str(model), "--no-projector", "--out", str(plan)]) == 0
    body = yaml.safe_load(plan.read_text())
    assert body["budget_tokens"] == 8e9 and body["provenance"]["target_scale"] == {"model_params": 6e7, "tokens": 8e9}
    assert any(r.startswith("budget 8e+09 tokens: 4x the 2e+09 tokens the largest proxy size") for r in body["reasons"])
