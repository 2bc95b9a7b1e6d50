"""Review numbers-39: exports whose steps round the budget up say so in the files (and refuse more than doubling it),
exports recover each domain's unique tokens exactly from the plan's epochs, and propose prints YAML that loads."""

from __future__ import annotations


import json

import pytest
import yaml

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.plan import Phase, Plan
from tests.test_pool_plan import Prefers

# ------------------------------------------------------------------ finding 6: propose's printed plan is YAML


def test_propose_prints_a_plan_that_loads_as_yaml(tmp_path, capsys, monkeypatch):
    """A reason longer than 80 columns was wrapped by rich onto a new line at column 1: the block did not load."""
    (tmp_path / "m.csv").write_text("index,a,b\n" + "".join(f"{i},{i / 7:.4f},{1 - i / 7:.4f}\n" for i in range(8)))
    (tmp_path / "l.csv").write_text("index,val/a,val/b\n" + "".join(f"{i},{3 + (i / 7 - 0.4) ** 2:.4f},{3.1 - i / 70:.4f}\n" for i in range(8)))
    assert run(["runs", "import", "--mixtures", str(tmp_path / "m.csv"), "--metrics", str(tmp_path / "l.csv"),
                "--store", str(tmp_path / "imp")]) == 0
    reason = ("the Cooldown schedule (propose.cooldown_switch 0.8) from the domains' token counts, not the search's "
              "mixture, and a long tail " + "x " * 60 + "end")  # plain (unquoted) in YAML, as plan5's was
    plan = Plan(budget_tokens=1e6, phases=[Phase(start_fraction=0.0, weights={"a": 0.25, "b": 0.75})], reasons=[reason])
    monkeypatch.setattr(pipeline, "propose", lambda *a, **kw: plan)
    capsys.readouterr()
    assert run(["propose", "--store", str(tmp_path / "imp"), "--no-projector", "--out", str(tmp_path / "p.yaml")]) == 0
    printed = capsys.readouterr().out.split("\nplan -> ")[0]
    assert yaml.safe_load(printed)["reasons"] == [reason]
    assert f"- {reason}\n" in printed + "\n"  # one line, as plan.yaml writes it


# ------------------------------------------------------------------ finding 5: exports recover unique tokens exactly



def test_small_epochs_keep_the_unique_tokens_exact_in_the_plan_and_every_export():
    """propose wrote epochs rounded to 6 decimals, so below ~0.001 epochs every export's unique tokens (share x budget /
    epochs) were off by up to 0.1%: 222 documents read as 221.8 documents_per_epoch."""
    from mixopt.config import ProposeConfig
    from mixopt.export import export_plan
    from mixopt.planning.propose import ProposeContext, build_plan

    counts, tpd = {"a": 10**7, "b": 222 * 9671}, {"a": 500.0, "b": 9671.0}  # b: 222 documents
    ctx = ProposeContext(domains=["a", "b"], target="t", token_counts=counts, tokens_per_doc=tpd, proxy_tokens=2.5e5)
    cfg = ProposeConfig(n_candidates=2000, top_k=10, upsample=False, keep_baseline_within_noise=False,
                        curse_correction=False, min_weights={"b": 0.001})
    plan = build_plan(Prefers(0), ctx, cfg, budget_tokens=1e6, seed=0)
    shares = plan.overall_weights()
    assert plan.epochs["b"] < 1e-3  # where 6 decimals kept 3 digits or fewer
    for d, n in counts.items():
        assert shares[d] * plan.budget_tokens / plan.epochs[d] == pytest.approx(n, rel=1e-10), d
    plan = Plan.model_validate(yaml.safe_load(yaml.safe_dump(plan.to_dict())))  # as read back from plan.yaml
    meta = json.loads(export_plan(plan, "hf-datasets", {"a": "/a", "b": "/b"})["interleave.json"])
    phase = meta["phases"][0]
    per_epoch = {d: w["documents_per_epoch"] for d, w in zip(phase["domains"], phase["windows"])}
    assert per_epoch == {d: pytest.approx(counts[d] / tpd[d], rel=1e-10) for d in counts}
    dropped = plan.without(["a"])  # b alone: its epochs grow by 1 / its old share, exactly
    assert dropped.epochs["b"] == pytest.approx(plan.budget_tokens / counts["b"], rel=1e-10)


def test_a_plan_with_six_decimal_epochs_still_loads_and_exports():
    old = {"budget_tokens": 81920.0, "phases": [{"start_fraction": 0.0, "weights": {"a": 0.955376, "b": 0.044624}}],
           "epochs": {"a": 0.1, "b": 0.005121}, "tokens_per_doc": {"a": 500.0, "b": 9671.0}}
    from mixopt.export import export_plan
    meta = json.loads(export_plan(Plan.model_validate(old), "hf-datasets", {"a": "/a", "b": "/b"})["interleave.json"])
    assert meta["phases"][0]["windows"][1]["read"][1] == pytest.approx(0.005121)


# ------------------------------------------------------------------ finding 2: steps that round the budget up

PATHS2 = {"code": "/data/code", "math": "/data/math", "web": "/data/web"}
SMALL = {"budget_tokens": 81920.0, "phases": [{"start_fraction": 0.0, "weights": {"code": 0.25, "math": 0.25, "web": 0.5}}],
         "epochs": {"code": 0.02, "math": 0.08, "web": 0.01}}  # the tiny config's 4x budget


def _cli_paths():
    return [a for d, p in PATHS2.items() for a in ("--paths", f"{d}={p}")]


@pytest.mark.parametrize("fmt,name", [("megatron", "meg"), ("nanotron", "stages.yaml")])
@pytest.mark.parametrize("extra", [[], ["--total-iterations", "1"]])
def test_steps_that_more_than_double_the_budget_are_refused(tmp_path, capsys, fmt, name, extra):
    """81,920 tokens at the default 512 x 4096 tokens per step were exported as 1 step, 2,097,152 tokens (+2460%), every
    domain read 25.6x its epochs, with a warning on stderr only. Now one line naming the flags, nothing written."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(SMALL))
    assert run(["export", str(plan), "-f", fmt, "-o", str(tmp_path / name), *_cli_paths(), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "0.0391 step(s) at 512 x 4096" in err and "2.097e+06 tokens (+2460%)" in err and "25.6x its planned epochs" in err
    assert all(flag in err for flag in ("--global-batch-size", "--seq-length", "--total-iterations"))
    assert "e.g. --global-batch-size 20 with --seq-length 4096" in err  # 81,920 tokens: exactly one step of 20 x 4096
    assert not (tmp_path / name).exists()
    assert run(["export", str(plan), "-f", fmt, "-o", str(tmp_path / name), *_cli_paths(),
                "--global-batch-size", "20", "--seq-length", "4096"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_refusal_suggests_a_batch_that_gives_every_phase_a_step():
    from mixopt.errors import ExportError
    from mixopt.export import export_plan

    two = {**SMALL, "phases": [SMALL["phases"][0], {"start_fraction": 0.8, "weights": {"code": 0.5, "web": 0.5}}]}
    # 5 x 4096 (4 steps, phases at 0 and round(3.2) = 3) would train the end phase 25% over: 4 x 4096 is exact
    with pytest.raises(ExportError, match=r"e\.g\. --global-batch-size 4 with --seq-length 4096"):  # 5 steps: 0, 4
        export_plan(two, "megatron", PATHS2)
    with pytest.raises(ExportError, match=r"e\.g\. --global-batch-size 3 with --seq-length 1024"):  # under one sequence:
        export_plan({**SMALL, "budget_tokens": 3072.0}, "nanotron", PATHS2)  # a shorter one (2048 would train 4096)


def test_rounded_steps_are_said_in_every_file_that_writes_steps(tmp_path, capsys):
    """Rounding the budget up by 1% to 100% is exported, and the files say so next to their step count, with planned
    readings of the steps written (the stderr warning alone was lost to a file read later)."""
    from mixopt.export import ExportOptions, export_plan

    two = {**SMALL, "phases": [SMALL["phases"][0], {"start_fraction": 0.5, "weights": {"code": 0.5, "web": 0.5}}]}
    opts = ExportOptions(global_batch_size=8, seq_length=4096)  # 2.5 steps -> 3: +20%
    meta = json.loads(export_plan(two, "megatron", PATHS2, options=opts)["blend.json"])
    keys = list(meta)
    assert meta["total_iterations"] == 3 and keys.index("rounding_note") == keys.index("total_iterations") + 1
    assert "2.5 step(s) at 8 x 4096" in meta["rounding_note"] and "9.83e+04 tokens (+20%)" in meta["rounding_note"]
    assert meta["phases"][0]["samples"]["code"]["planned"] == [0.0, 0.25 * 2 * 8]  # what its 2 iterations read
    text = export_plan(two, "nanotron", PATHS2, options=opts)["data_stages.yaml"]
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "tokens.train_steps = 3" in line)
    assert lines[at + 1].startswith("# Rounding: the plan's budget of 8.192e+04 tokens is 2.5 step(s)") and "+20%" in lines[at + 1]
    # phase 0 trains steps 1-2 (round(0.5 * 3) = 2 of 3 steps): 2 x 32768 tokens, 0.25 of them code, 0.02 epochs per 40960 * 0.375
    unique_code = 0.375 * 81920 / 0.02
    assert f"code [0, {2 * 32768 * 0.25 / unique_code:.6g})" in text
    assert yaml.safe_load(text)["data_stages"][1]["start_training_step"] == 3
    assert "rounding_note" not in json.loads(export_plan(two, "megatron", PATHS2,
                                                         options=ExportOptions(global_batch_size=1, seq_length=64))["blend.json"])
