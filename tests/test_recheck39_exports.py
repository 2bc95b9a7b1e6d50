"""Recheck of review numbers-39: the batch export's refusals suggest trains every phase near its planned tokens (not
only the total), the files say when the steps train a phase off its tokens, and window bounds keep significant digits
(findings 2 and 4)."""

from __future__ import annotations

import json

import pytest
import yaml

from mixopt.errors import ExportError
from mixopt.export import ExportOptions, export_plan, rounding_note

PATHS = {"code": "/data/code", "math": "/data/math", "web": "/data/web"}
#: 81,920 tokens with an end phase over the last 10%: at 4 x 4096 (5 steps) the end phase starts at round(4.5) = 4
#: and trains 1 step = 20% of the run; at 2 x 4096 (10 steps) it starts at step 9, exactly.
UP = {"budget_tokens": 81920.0,
      "phases": [{"start_fraction": 0.0, "weights": {"code": 0.25, "math": 0.25, "web": 0.5}},
                 {"start_fraction": 0.9, "weights": {"code": 0.5, "math": 0.5}}],
      "epochs": {"code": 0.02, "math": 0.08, "web": 0.01}}


@pytest.mark.parametrize("fmt", ["megatron", "nanotron"])
def test_refusals_suggest_a_batch_that_trains_every_phase_its_tokens(fmt):
    """Both refusals suggested 4 x 4096: the total within 1%, but the end phase doubled."""
    with pytest.raises(ExportError, match=r"e\.g\. --global-batch-size 2 with --seq-length 4096\)"):  # over 2x
        export_plan(UP, fmt, PATHS)
    with pytest.raises(ExportError, match=r"e\.g\. --global-batch-size 2 with --seq-length 4096\)"):  # too few steps
        export_plan(UP, fmt, PATHS, options=ExportOptions(global_batch_size=5, seq_length=4096))
    exact = ExportOptions(global_batch_size=2, seq_length=4096)
    assert rounding_note(fmt, 81920.0, exact, [0.0, 0.9]) is None
    export_plan(UP, fmt, PATHS, options=exact)


def test_a_phase_trained_off_its_tokens_is_said_in_the_files_and_blend_json_agrees_with_itself(tmp_path):
    """At 4 x 4096 the total is exact, so no note was written, and blend.json said the end phase's tokens were 8192
    beside iterations [4, 5) x 16,384."""
    opts = ExportOptions(global_batch_size=4, seq_length=4096)
    note = rounding_note("megatron", 81920.0, opts, [0.0, 0.9])
    assert note and "phase_01 trains 1 step(s), 1.638e+04 tokens where the plan has 8192 (+100%)" in note
    assert "phase_00 trains 4 step(s), 6.554e+04 tokens where the plan has 7.373e+04 (-11%)" in note
    assert "e.g. --global-batch-size 2 with --seq-length 4096" in note
    assert rounding_note("megatron", 81920.0, opts) is None  # one phase: 5 steps are the budget exactly
    meta = json.loads(export_plan(UP, "megatron", PATHS, options=opts)["blend.json"])
    assert meta["rounding_note"] == note
    rows = [(p["start_iteration"], p["end_iteration"], p["tokens"], p["planned_tokens"]) for p in meta["phases"]]
    assert rows == [(0, 4, 4 * 16384, 73728), (4, 5, 16384, 8192)]
    text = export_plan(UP, "nanotron", PATHS, options=opts)["data_stages.yaml"]
    assert f"# Rounding: {note}\n" in text
    stages = yaml.safe_load(text)["data_stages"]
    assert [s["start_training_step"] for s in stages] == [1, 5]
    exact = json.loads(export_plan(UP, "megatron", PATHS, options=ExportOptions(global_batch_size=2, seq_length=4096))["blend.json"])
    assert "rounding_note" not in exact
    assert [(p["tokens"], p["planned_tokens"]) for p in exact["phases"]] == [(73728, 73728), (8192, 8192)]


def test_the_cli_warns_of_a_phase_trained_off_its_tokens(tmp_path):
    from .test_export import _invoke

    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(UP))
    args = [a for d, p in PATHS.items() for a in ("--paths", f"{d}={p}")]
    r = _invoke([str(plan), "-f", "megatron", "-o", str(tmp_path / "meg"), *args,
                 "--global-batch-size", "4", "--seq-length", "4096"])
    assert r.exit_code == 0, r.output
    assert "warning: each phase starts at the whole step round(start_fraction x 5)" in r.output and "(+100%)" in r.output


def test_window_bounds_keep_significant_digits():
    """9 decimals kept 3 digits of a domain read for 1.234e-07 epochs (246.0 documents in the window for 246.8)."""
    budget, unique = 2e8, {"web": 2.0e12, "code": 3.3e8}
    w = {"web": 0.001234, "code": 0.998766}
    raw = {"budget_tokens": budget, "phases": [{"start_fraction": 0.0, "weights": w}],
           "epochs": {d: float(f"{w[d] * budget / unique[d]:.12g}") for d in w},
           "tokens_per_doc": {"web": 1000.0, "code": 2000.0}}
    meta = json.loads(export_plan(raw, "hf-datasets", {"web": "web.jsonl", "code": "code.jsonl"})["interleave.json"])
    phase = meta["phases"][0]
    web = phase["windows"][phase["domains"].index("web")]
    assert web["read"] == [0.0, pytest.approx(1.234e-07, rel=1e-10)]
    assert web["read"][1] * web["documents_per_epoch"] == pytest.approx(246.8, rel=1e-10)
