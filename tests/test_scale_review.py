"""Scale review: a verification trained at another scale than the plan predicts for, the runs' token range, the
plan's model size, and labels that only start with what `runs show` was given."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

from rich.console import Console

from mixopt.cli.main import run
from mixopt.plan import Plan, save_plan
from mixopt.report.answer import prediction_scale, verification_summary
from mixopt.report.reconcile import BestRun, _scale_sentence
from mixopt.report.tables import verify_table
from mixopt.runs.record import RunRecord
from mixopt.runs.store import RunStore

NOTE = "the plan predicts at 1e+06 params x 4.1e+04 tokens, but verify trained 1.97e+05 x 4.1e+04"


def _plan(**extra) -> Plan:
    body = dict(budget_tokens=1.6e5, phases=[{"start_fraction": 0.0, "weights": {"code": 0.4, "prose": 0.6}}],
                predicted={"metric": "mean:all-domains", "value": 3.251, "std": 0.0471,
                           "by": {"surrogate": {"value": 3.251, "std": 0.0471, "scale": "target"}},
                           "baselines": {"natural": {"value": 3.2, "std": 0.04}}})
    body.update(extra)
    return Plan.model_validate(body)


def _across_body() -> dict:
    """VERIFY.json of a plan predicted at 1e6 params, trained at the nearest swept size (196,992)."""
    return {"target": "mean:all-domains", "scale": {"model_params": 196992, "tokens": 40960}, "seeds": [0, 1],
            "results": [{"name": "plan", "values": [3.28, 3.2838], "mean": 3.2819},
                        {"name": "natural", "values": [3.30, 3.31], "mean": 3.305}],
            "comparisons": [{"against": "natural", "diff": -0.0231, "ci95": [-0.04, -0.01], "plan_better": True,
                             "plan_worse": False, "predicted_diff": 0.051, "claim_held": False}],
            "skipped": [], "predicted": {"value": 3.251, "std": 0.0471, "scale": "target", "note": NOTE},
            "prediction_error": None, "trained": 4}


def _text(table) -> str:
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_a_prediction_for_another_scale_gets_no_inside_outside_verdict():
    """The console table and the report said "predicted 3.2510 ± 0.0471 (target scale)" and "inside ±2σ" beside a
    value measured at 196,992 params for a plan predicted at 1e6."""
    body = _across_body()
    shown = _text(verify_table(body))
    assert "(target scale)" not in shown and "another scale" in shown
    assert "not as predicted (predicted at another scale)" in shown  # claim_held False, across scales
    lines, table = verification_summary(body)
    assert "±2σ" not in lines[0] and "inside" not in lines[0] and "outside" not in lines[0]
    assert "(predicted 3.2510 ± 0.0471 for another scale than this one, so not compared)" in lines[0], lines[0]
    assert table.rows[0][-1] == "the plan; predicted at another scale"
    assert "not as predicted (predicted at another scale)" in table.rows[1][-1]
    # at the same scale the verdict stays
    same = {**body, "predicted": {"value": 3.251, "std": 0.0471, "scale": "target"}, "prediction_error": 0.0309}
    assert "inside ±2σ" in verification_summary(same)[0][0]
    assert "(target scale)" in _text(verify_table(same)) and "predicted at another scale" not in _text(verify_table(same))


def test_verify_prints_the_note_of_its_json(tmp_path, monkeypatch, capsys):
    """`mixopt verify --model-params 1e6` wrote the note into verify.json but never printed it."""
    from mixopt.cli import cmd_verify

    RunStore(tmp_path / "store").put(RunRecord(run_id="r0", mixture={"code": 1.0}, status="ok", metrics={"val/code": 3.0}))
    save_plan(_plan(), tmp_path / "plan.yaml")
    snapshot = SimpleNamespace(meta={"config": {"name": "stub"}})
    monkeypatch.setattr(cmd_verify, "pipeline", SimpleNamespace(open_store=lambda store: snapshot))
    monkeypatch.setattr(cmd_verify, "stored_config", lambda d, where: SimpleNamespace(data=None))
    monkeypatch.setattr(cmd_verify, "load_domain_set", lambda data: None)
    monkeypatch.setattr(cmd_verify, "verify", lambda *a, **k: _across_body())
    out = tmp_path / "verify.json"
    assert run(["verify", str(tmp_path / "plan.yaml"), "--store", str(tmp_path / "store"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"note: {NOTE}\n" in printed and printed.count("note:") == 1
    assert json.loads(out.read_text())["predicted"]["note"] == NOTE


def test_scale_sentence_gives_the_runs_token_range_and_the_plan_its_model_size(tmp_path):
    """The page said "the runs trained 81.9k tokens each" (the best run's) of runs at 20.5k, 41k and 81.9k tokens, and
    never the model size a scale-aware plan predicts for."""
    from mixopt.report.reconcile import best_run

    store = RunStore(tmp_path / "store")
    for i, (size, tokens) in enumerate((("s", 20480), ("m", 40960), ("l", 81920))):
        store.put(RunRecord(run_id=f"r{i}", mixture={"code": 0.4, "prose": 0.6}, status="ok",
                            metrics={"val/code": 3.4 - 0.1 * i, "val/prose": 3.5 - 0.1 * i}, label=f"natural@{size}",
                            scale={"tokens": tokens, "model_params": 1e5 * (i + 1)}))
    plan = _plan()
    view = SimpleNamespace(ok=store.records(), table=None)
    from mixopt.runs.table import records_table

    view.table = records_table(view.ok)
    best = best_run(plan, view, None)
    assert best.tokens == 81920 and best.tokens_range == (20480, 81920)
    said = _scale_sentence(plan, best)
    assert "the runs trained 20.5k-81.9k tokens" in said and "each" not in said, said
    # one token count: "each" is true
    assert "the runs trained 41k tokens each" in _scale_sentence(plan, BestRun("natural", 3.0, 3, 40960, tokens_range=(40960, 40960)))
    # the model size the plan predicts at
    where, at_budget = prediction_scale(_plan(provenance={"target_scale": {"model_params": 7.9e5, "tokens": 1.6e5}}))
    assert where == "at 790k non-embedding parameters and the plan's budget of 160k tokens" and at_budget
    assert prediction_scale(_plan())[0] == "at the plan's budget of 160k tokens"


def test_runs_show_suggests_labels_that_start_with_the_text(tmp_path, capsys):
    """`runs show natural` on a multi-size store said no run has that label, though natural@s/m/l are there."""
    store = RunStore(tmp_path / "store")
    for i, size in enumerate("sml"):
        store.put(RunRecord(run_id=f"r{i}abc", mixture={"code": 1.0}, status="ok", metrics={"val/code": 3.0}, label=f"natural@{size}"))
    assert run(["runs", "show", "natural", "--store", str(store.root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "did you mean natural@l, natural@m, natural@s?" in err.lower() and "\n" not in err
    assert run(["runs", "show", "zz", "--store", str(store.root)]) == 2
    assert "did you mean" not in capsys.readouterr().err.lower()


def test_the_verification_figure_does_not_draw_a_prediction_for_another_scale(tmp_path):
    """The figure kept "Verification at the target scale" and the predicted value's ±2σ band beside arms trained at
    another scale."""
    from mixopt.report.build import build_report

    body = _across_body()
    text = build_report(tmp_path / "a", plan=_plan(), verification=body).read_text()
    assert "Verification (the prediction is for another scale)" in text and "so it is not drawn" in text
    same = {**body, "predicted": {"value": 3.251, "std": 0.0471, "scale": "target"}, "prediction_error": 0.0309}
    text = build_report(tmp_path / "b", plan=_plan(), verification=same).read_text()
    assert "Verification at 41k tokens" in text and "(±2σ shaded)" in text  # what the arms trained (recheck 5)
    assert "Each arm trained at 41k tokens (the plan&#x27;s budget is 160k)" in text and "target scale" not in text
    text = build_report(tmp_path / "c", plan=_plan(), verification={**same, "scale": {**same["scale"], "tokens": 160000}}
                        ).read_text()
    assert "Verification at the plan&#x27;s budget" in text and "Each arm trained at the plan&#x27;s budget (160k tokens)" in text
