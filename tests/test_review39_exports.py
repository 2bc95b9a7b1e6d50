"""Review numbers-39: exports whose steps round the budget up say so in the files (and refuse more than doubling it),
exports recover each domain's unique tokens exactly from the plan's epochs, and propose prints YAML that loads."""

from __future__ import annotations


import yaml

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.plan import Phase, Plan

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
