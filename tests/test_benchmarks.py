"""Every benchmark runs, at smoke size, and ends with a parseable summary line; run_all reads those lines.

A benchmark is every ``benchmarks/*.py`` whose name does not start with ``_``, except ``run_all.py``. Each is
imported from its file and its ``main(["--smoke"])`` is called in this process, so a renamed mixopt API or a
broken benchmark fails here (CI), not when someone next regenerates RESULTS.md.
"""

import ast
import math
import time

import pytest

from mixopt import pipeline
from tests.bench_loader import BENCH_DIR, load_benchmark

BENCHMARKS = sorted(p for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all")
WORDS = {"yes", "no", "na"}  # the values of met / met_* verdicts


def common(monkeypatch):
    return load_benchmark("_common", monkeypatch)


SLOW_SMOKE = {"load_throughput"}  # it times sweeps beside a busy process even at smoke size (14-39 s): -m slow, for CI time


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW_SMOKE else p for p in BENCHMARKS],
                         ids=[p.stem for p in BENCHMARKS])
def test_benchmark_smoke_run_ends_with_a_summary(path, monkeypatch, capsys):
    module = load_benchmark(path.stem, monkeypatch)
    assert callable(getattr(module, "main", None)), f"{path.name} has no main(argv=None)"
    t0 = time.perf_counter()
    module.main(["--smoke"])
    seconds = time.perf_counter() - t0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines, f"{path.name} printed nothing"
    assert lines[-1].startswith("summary:"), f"{path.name}: the last line is not the summary line: {lines[-1]!r}"
    assert sum(ln.startswith("summary:") for ln in lines) == 1, f"{path.name} printed several summary lines"
    fields = common(monkeypatch).parse_summary(out)
    numbers = {k: v for k, v in fields.items() if isinstance(v, float)}
    assert numbers and any(math.isfinite(v) for v in numbers.values()), f"{path.name}: no numeric figure in {fields}"
    verdicts = {k: v for k, v in fields.items() if k == "met" or k.startswith("met_")}
    assert all(v in WORDS for v in verdicts.values()), f"{path.name}: met values must be yes/no/na: {verdicts}"
    for key, value in fields.items():
        if key.startswith("goal_"):  # run_all pairs goal_x with x: both must be numbers
            assert key[5:] in fields, f"{path.name}: {key} without the figure {key[5:]}"
            assert isinstance(value, float) and isinstance(fields[key[5:]], float), \
                f"{path.name}: {key}={value} and {key[5:]}={fields[key[5:]]} must both be numbers"
    print(f"{path.stem}: {seconds:.1f} s")


@pytest.mark.parametrize("path", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_imports_mixopt_at_module_level(path):
    """A mixopt import inside a function would let a renamed API pass every import-only check."""
    tree = ast.parse(path.read_text())
    inner = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for node in ast.walk(fn):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            inner += [f"{fn.name}: {n}" for n in names if n == "mixopt" or n.startswith("mixopt.")]
    assert not inner, f"{path.name} imports mixopt inside functions: {inner}"


def test_parse_summary_reads_the_summary_line_not_the_last_line_with_an_equals_sign(monkeypatch):
    c = common(monkeypatch)
    text = "summary: rho=0.99 goal_rho=0.98 met_rho=yes mode=full\nhelps = False\nmin_runs=40 (note)\n"
    assert c.parse_summary(text) == {"rho": 0.99, "goal_rho": 0.98, "met_rho": "yes", "mode": "full"}
    with pytest.raises(ValueError, match="no 'summary:' line"):
        c.parse_summary("ratio=0.9 tokens=3\n")
    with pytest.raises(ValueError, match="not key=value"):
        c.parse_summary("summary: rho=0.9 oops\n")
    assert c.summary_line({"a": 1.0, "b": True, "c": None, "d": 3}) == "summary: a=1 b=yes c=na d=3"
    with pytest.raises(ValueError):
        c.summary_line({"a": "two words"})
    assert c.goal("x", 0.5, 0.6) == {"x": 0.5, "goal_x": 0.6, "met_x": False}
    assert c.goal("t", 2.0, 3.0, higher_is_better=False)["met_t"] is True
    assert c.goal("x", float("nan"), 0.0)["met_x"] is False


def test_run_all_pairs_figures_with_goals_and_flags_misses(monkeypatch):
    run_all = load_benchmark("run_all", monkeypatch)
    fields = common(monkeypatch).parse_summary(
        "summary: rho=0.9897 goal_rho=0.99 met_rho=no speed=12.5 goal_speed=60 met_speed=yes runs=512 met=no\n")
    rows = {r[1]: r for r in run_all.figure_rows("surrogate", fields)}
    assert rows["rho"][2:] == ("0.9897", "0.99", "**MISSED**")
    assert rows["speed"][2:] == ("12.5", "60", "met")
    assert rows["runs"][2:] == ("512", "-", "-")
    assert rows["(overall)"][4] == "**MISSED**"
    assert not any(k.startswith(("goal_", "met_")) for k in rows)
    assert set(run_all.discover()) == {p.stem for p in BENCHMARKS}


def test_run_all_reports_verdicts_without_a_figure(monkeypatch):
    """A ``met_x`` (or ``goal_x``) whose figure ``x`` the summary lacks still gets its row, and a "no" counts as missed."""
    run_all = load_benchmark("run_all", monkeypatch)
    fields = common(monkeypatch).parse_summary("summary: worse_vs_regmix=2 met_never_worse_than_regmix=no "
                                               "best_target_diff=-0.08 met_end_phase_helps=yes goal_seconds=60\n")
    rows = {r[1]: r for r in run_all.figure_rows("x", fields)}
    assert rows["never_worse_than_regmix"][2:] == ("-", "-", "**MISSED**")
    assert rows["end_phase_helps"][2:] == ("-", "-", "met")
    assert rows["seconds"][2:] == ("-", "60", "-")
    assert rows["worse_vs_regmix"][4] == "-" and len(rows) == 5


def test_run_all_never_reports_a_failed_process_as_met(monkeypatch, capsys):
    """A benchmark (or the demo) that exits non-zero: FAILED, none of its verdicts met, its stderr tail shown, and
    run_all's own last line a parseable summary that counts it."""
    run_all = load_benchmark("run_all", monkeypatch)
    c = common(monkeypatch)
    ok = run_all.Result("fine", 1.0, 0, c.parse_summary("summary: rho=0.99 goal_rho=0.98 met_rho=yes\n"))
    demo = run_all.Result("demo", 126.3, 1, c.parse_summary(
        "summary: demo_seconds=126.3 goal_demo_seconds=300 met_demo_seconds=yes\n"), "Traceback ...\nKeyError: 'x'\n")
    lost = run_all._result("lost", 2.0, 0, "no summary here\n", "boom\n")
    rows = run_all.report_rows(demo)
    assert rows[0][1:] == ("(process)", "", "", "**FAILED** (exit 1)")
    assert all(r[4] != "met" for r in rows) and rows[1][1] == "demo_seconds"
    assert lost.rc == 1 and run_all.report_rows(lost)[0][4] == "**FAILED** (exit 1)"
    fields = run_all.report([ok, demo, lost], smoke=True)
    out = capsys.readouterr().out
    assert "KeyError: 'x'" in out and "demo FAILED (exit 1)" in out and "boom" in out
    assert out.strip().splitlines()[-1].startswith("summary:")
    assert c.parse_summary(out) == {"benchmarks": 3.0, "failed": 2.0, "missed": 0.0, "goals_met": 1.0, "mode": "smoke"}
    assert fields["failed"] == 2


def test_machine_line_comes_from_the_run(monkeypatch):
    c = common(monkeypatch)
    p = c.provenance()
    assert p["nproc"] >= 1 and p["cpu"] and p["date"][:2] == "20"
    line = c.machine_line(p, {**p, "load": p["load"] + 1})
    assert line.startswith("machine: ") and f"{p['load']:.2f} -> {p['load'] + 1:.2f}" in line and p["date"] in line


def test_upsampling_matched_arm_spends_the_plans_code_share(monkeypatch):
    """The matched arm of verify_upsampling.py: natural with code raised to the plan's share, other ratios kept."""
    bench = load_benchmark("verify_upsampling", monkeypatch)
    natural = {"code": 0.14, "docs": 0.43, "prose": 0.43}
    arm = bench.with_share(natural, "code", 0.2)
    assert arm["code"] == pytest.approx(0.2) and sum(arm.values()) == pytest.approx(1.0)
    assert arm["docs"] / arm["prose"] == pytest.approx(1.0) and arm["docs"] == pytest.approx(0.4)


def test_upsampling_cap_case_keeps_the_merged_scripts_setup(monkeypatch):
    """verify_upsampling.py --case cap is the former upsampling_verify.py: full corpus, code <= 20% of all tokens."""
    bench = load_benchmark("verify_upsampling", monkeypatch)
    args = type("Args", (), {"code_cap": 0.2, "workers": 1})()
    quick, full = bench.build_cfg("cap", "quick", args), bench.build_cfg("cap", "full", args)
    assert quick.propose.max_weights == {"code": 0.2} and quick.propose.max_epochs == 4
    assert (quick.proxy.n_layer, quick.proxy.tokens, quick.runs, quick.sampler.two_phase_runs) == (1, 40960, 14, 10)
    assert (full.proxy.n_layer, full.proxy.tokens, full.runs, full.sampler.two_phase_runs) == (2, 307200, 22, 16)
    assert not quick.data.domains  # all 7 embedded domains, none truncated
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--case", "scarce"])  # --quick sizes the cap case only


def test_verify_plans_with_budgets_predicts_at_the_verify_budget(monkeypatch, capsys):
    """`verify_plans.py --budgets`: a WSD sweep fitted on every budget, so each plan is predicted where verify trains it."""
    module = load_benchmark("verify_plans", monkeypatch)
    fields = module.main(["--smoke", "--budgets"])
    out = capsys.readouterr().out
    assert "at target scale" in out and "at proxy scale" not in out and "fit: scale-aware" in out
    assert fields["settings"] == 1
    assert "level backtest:" in out and 0 <= fields["arm_within_2sd_no_backtest"] <= 1 and fields["arm_mae"] > 0
    with pytest.raises(SystemExit):  # one proxy size cannot speak for a larger model
        module.main(["--smoke", "--budgets", "--scales", "4x-model"])


def test_verify_plans_adopt_checks_the_adoption_on_fresh_seeds(monkeypatch, capsys):
    """`verify_plans.py --adopt`: each plan through `verify --adopt`; an adopted arm is trained against the plan again on
    fresh seeds, and the summary counts adoptions and how they held."""
    module = load_benchmark("verify_plans", monkeypatch)
    fields = module.main(["--smoke", "--adopt", "--against", "natural,uniform,end-phase"])
    out = capsys.readouterr().out
    assert fields["adopt_plans"] == 1 and 0 <= fields["adopted"] <= 1 and "adopt: " in out
    if fields["adopted"]:
        assert "fresh seeds" in out and fields["adopt_confirmed"] + fields["adopt_reversed"] <= 1
    tally = module.adopt_tally([{"adopted": None}, {"adopted": "end-phase", "gain": 0.04, "lo": 0.01, "hi": 0.07},
                                {"adopted": "uniform", "gain": -0.02, "lo": -0.03, "hi": -0.01}])
    assert (tally["adopted"], tally["adopt_confirmed"], tally["adopt_reversed"]) == (2, 1, 1)
    assert tally["adopt_fresh_gain"] == pytest.approx(0.01)


@pytest.mark.slow  # 12 s on 2 cores, on top of search_optimum's own smoke run in the default selection (CI time)
def test_search_optimum_lcb_trains_the_picks_then_tests_the_optimum(monkeypatch, capsys, tmp_path):
    """`search_optimum.py --pick lcb`: the runs beyond the first size are the surrogate's picks, labelled lcb-, in the store."""
    module = load_benchmark("search_optimum", monkeypatch)
    fields = module.main(["--smoke", "--runs", "4,6", "--pick", "lcb", "--store", str(tmp_path)])
    out = capsys.readouterr().out
    assert "lcb picks for 6:" in out and fields["mode"] == "smoke-lcb"
    labels = [r.label for r in pipeline.open_store(tmp_path).records]
    assert sum(lab.startswith("lcb-") for lab in labels) == 2 and not any(lab == "sample-0004" for lab in labels)
    assert isinstance(fields["opt_minus_uniform_6"], float)


def test_sweep_throughput_sets_proxy_fields_and_refuses_unknown_ones(monkeypatch):
    """``sweep_throughput.py --proxy KEY=VALUE``: YAML values, validated; an unknown field is a one-line exit."""
    from mixopt.config import load_config, packaged_config
    module = load_benchmark("sweep_throughput", monkeypatch)
    cfg = load_config(packaged_config("tiny"))
    got = module.with_proxy_fields(cfg, ["compile=true", "n_embd=128", "cuda_graphs=false"])
    assert got.proxy.compile is True and got.proxy.n_embd == 128 and got.proxy.cuda_graphs is False
    assert cfg.proxy.compile is False and module.with_proxy_fields(cfg, []) is cfg
    with pytest.raises(SystemExit, match="KEY a proxy field"):
        module.with_proxy_fields(cfg, ["bogus=1"])
    with pytest.raises(SystemExit, match="KEY a proxy field"):
        module.with_proxy_fields(cfg, ["compile"])
    with pytest.raises(SystemExit, match="multiple of head_size"):
        module.with_proxy_fields(cfg, ["n_embd=48"])


def test_selection_splits_by_document_and_keeps_the_chunk_split_pools_schedule_uses(monkeypatch):
    """selection.py: ``split_target(chunks, doc_ids)`` puts every chunk of a document on one side; without ids it is
    the chunk-text hash (``sel|text``) that pools_schedule.py and the figures before the document split use."""
    sel = load_benchmark("selection", monkeypatch)
    docs, ids = sel.corpus(60_000, with_doc_ids=True)
    assert sel.corpus(60_000) == docs and all(len(ids[d]) == len(docs[d]) for d in docs)
    texts, gid = docs["math"], ids["math"]
    assert len(set(texts)) == len(texts) and len(set(gid)) < len(gid)  # some documents span several chunks
    for salt in sel.salts(3):
        parts = sel.split_target(texts, gid, salt=salt)
        side = {t: i for i, part in enumerate(parts) for t in part}
        assert len(side) == len(texts)
        assert all(len({side[t] for t, g in zip(texts, gid) if g == doc}) == 1 for doc in set(gid))
    sample, val, rest = sel.split_target(texts)
    assert (sample, val, rest) == sel.split_target(texts, salt="sel")
    assert sample == [t for t in texts if sel._unit("sel|" + t) < 0.2]
    assert rest == [t for t in texts if sel._unit("sel|" + t) >= 0.4]
    assert sel.salts(3) == ["sel", "s0", "s1"]
