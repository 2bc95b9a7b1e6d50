"""POOLS.yaml loading, the per-budget pool plan, its plot and `mixopt plan-pools`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mixopt.errors import ConfigError
from mixopt.config import domain_pools_from_dict
from mixopt.planning.pools import load_pools, parse_budgets, plan_pools
from mixopt.report.plots import plot_frontier

REPO = Path(__file__).resolve().parents[1]
TMARS_YAML = REPO / "configs" / "pools_tmars.yaml"
BUDGETS = [32e6, 64e6, 128e6, 640e6]


def _cli() -> typer.Typer:
    # A private app with a second command so typer keeps `plan-pools` as a sub-command
    # whatever other cmd_* modules exist yet.
    from mixopt.cli.cmd_pools import plan_pools_cmd

    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("plan-pools")(plan_pools_cmd)
    app.command("noop")(lambda: None)
    return app


# Targets: Goyal et al. (2024), github.com/locuslab/scaling_laws_data_filtering, results/parameter_values.jsonl
# (key tmars_imagenet1k_utility: a, d, b, tau); the accuracies are what that repo's estimate_best_pool.py computes from
# them at 32M/64M/128M/640M samples (pool_size 12.8M, effective_utility). See benchmarks/RESULTS.md.
def test_tmars_config_reproduces_goyal_et_al():
    results = plan_pools(load_pools(TMARS_YAML), BUDGETS)
    assert [r["budget"] for r in results] == BUDGETS
    assert [len(r["best"]) for r in results] == [1, 1, 2, 2]
    assert results[2]["best"] == ["top0-10pct", "top10-20pct"]
    accs = [100 * (1 - min(r["errors"])) for r in results]
    assert accs == pytest.approx([18.25, 24.62, 29.60, 38.55], abs=0.05)
    assert all(len(r["errors"]) == 4 for r in results)


def test_pool_frontier_plot_writes_png(tmp_path):
    results = plan_pools(load_pools(TMARS_YAML), BUDGETS)
    out = plot_frontier(results, tmp_path / "sub" / "frontier.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "text,field",
    [
        ("a: 0.025\nd: 0.1\npool_size: 1e6\npools: []\n", "pools"),
        ("a: -1\nd: 0.1\npool_size: 1e6\npools: [{name: x, b: -0.1, tau: 1}]\n", "a"),
        ("a: 0.02\nd: 0.1\npool_size: 0\npools: [{name: x, b: -0.1, tau: 1}]\n", "pool_size"),
        ("a: 0.02\nd: 0.1\npool_size: 1e6\npools: [{name: x, b: 0.1, tau: 1}]\n", "pools.0.b"),
        ("a: 0.02\nd: 0.1\npool_size: 1e6\npools: [{name: x, b: -0.1, tau: 0}]\n", "pools.0.tau"),
        ("a: 0.02\nd: 0.1\npool_size: 1e6\nobjective: foo\npools: [{name: x, b: -0.1, tau: 1}]\n", "objective"),
        ("a: 0.02\nd: .nan\npool_size: 1e6\npools: [{name: x, b: -0.1, tau: 1}]\n", "d"),
        ("a: 0.02\nd: 0.1\npool_size: 1e6\npools: [{name: x, b: -0.1, tau: 1}, {name: x, b: -0.2, tau: 1}]\n", "unique"),
        ("a: [0.02\n", "YAML"),
        ("- 1\n- 2\n", "mapping"),
    ],
)
def test_load_pools_errors_are_one_line_and_name_the_field(tmp_path, text, field):
    path = tmp_path / "POOLS.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_pools(path)
    msg = str(info.value)
    assert field in msg
    assert "\n" not in msg


def test_load_pools_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_pools(tmp_path / "nope.yaml")


def test_effective_data_objective_plan():
    pools = [dict(name="lo", b=-0.15, tau=2.0), dict(name="hi", b=-0.2, tau=2.0)]
    raw = dict(objective="effective_data", a=0.02, d=0.1, pool_size=1e8, pools=pools)
    # one unrepeated pass: the better pool alone wins; heavy repetition: both pools win
    results = plan_pools(domain_pools_from_dict(raw, where='test'), [2e7, 1e10])
    assert results[0]["best"] == ["hi"]
    assert results[1]["best"] == ["hi", "lo"]


@pytest.mark.parametrize("text", ["", "abc", "32e6,,64e6", "-1", "inf", "nan", "0"])
def test_parse_budgets_rejects_bad_strings(text):
    with pytest.raises(ConfigError):
        parse_budgets(text)


def test_parse_budgets_accepts_common_forms():
    assert parse_budgets("32e6, 64_000_000,1.28e8") == [32e6, 64e6, 128e6]


def test_cli_json_output_is_only_the_result_list(tmp_path):
    png = tmp_path / "f.png"
    res = CliRunner().invoke(
        _cli(), ["plan-pools", str(TMARS_YAML), "--budgets", "32e6,64e6,128e6,640e6", "--json", "--plot", str(png)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert isinstance(data, list) and len(data) == 4
    for row in data:
        assert set(row) == {"budget", "best", "errors", "laws", "law_range"}
        assert isinstance(row["budget"], float) and len(row["errors"]) == 4
        assert {v["law_source"] for v in row["laws"].values()} == {"config"} and list(row["laws"])[0] == "top0-10pct"
    assert [len(r["best"]) for r in data] == [1, 1, 2, 2]
    assert png.is_file()


def test_cli_text_table_and_bad_budgets():
    app = _cli()
    res = CliRunner().invoke(app, ["plan-pools", str(TMARS_YAML), "--budgets", "128e6"])
    assert res.exit_code == 0, res.output
    assert "top-2" in res.stdout and "29.60%" in res.stdout and "best: top0-10pct, top10-20pct" in res.stdout
    assert "pool laws" in res.stdout and "config" in res.stdout
    bad = CliRunner().invoke(app, ["plan-pools", str(TMARS_YAML), "--budgets", "32e6,lots"])
    assert isinstance(bad.exception, ConfigError)
    assert "'lots'" in str(bad.exception)


def test_cli_registers_plan_pools_on_main_app():
    from mixopt.cli.main import app
    import mixopt.cli.cmd_pools  # noqa: F401

    names = {c.name for c in app.registered_commands}
    assert "plan-pools" in names
