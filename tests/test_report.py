"""`mixopt report`: the page, its figures, the variants with missing inputs, and the CLI."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from mixopt.errors import ConfigError, ConsistencyError, FitError
from mixopt.plan import Plan, save_plan
from mixopt.report import build_report
from mixopt.runs.record import RunRecord
from mixopt.runs.store import RunStore

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DOMAINS = ["code", "math", "prose"]


def _store(root: Path, n: int = 8, *, seed: int = 0, data: str = "data-a", repeats: int = 0) -> Path:
    """``n`` runs on sampled mixtures, one failed run, and ``repeats`` extra seeds of the natural run (seed noise)."""
    rng = np.random.default_rng(seed)
    store = RunStore(root)
    store.update_meta(domains=DOMAINS, data_fingerprint=data)
    proxy = {"tokens": 2**20}
    for i in range(n):
        w = rng.dirichlet(np.ones(len(DOMAINS)))
        mixture = dict(zip(DOMAINS, map(float, w)))
        final = {f"val/{d}": float(3.5 - 1.2 * w[k] + 0.05 * i) for k, d in enumerate(DOMAINS)}
        curves = {m: {str(t): v + 2.0 * 2**-j for j, t in enumerate((2**18, 2**19, 2**20))} for m, v in final.items()}
        store.put(RunRecord(run_id=f"run{seed}-{i:04d}", mixture=mixture, status="ok", metrics=final, curves=curves,
                            label="natural" if i == 0 else f"sample-{i}", proxy=proxy, data_fingerprint=data, seed=0))
        if i == 0:
            for s in range(1, repeats + 1):
                shifted = {m: v + 0.01 * (-1) ** s * s for m, v in final.items()}
                store.put(RunRecord(run_id=f"run{seed}-0000~{s}", mixture=mixture, status="ok", metrics=shifted,
                                    label=f"natural~seed{s}", proxy=proxy, data_fingerprint=data, seed=s))
    store.put(RunRecord(run_id="runfail", mixture={"code": 1.0}, status="failed", reason="diverged", data_fingerprint=data))
    return root


def _plan(**extra) -> Plan:
    body = dict(
        budget_tokens=1e9,
        phases=[{"start_fraction": 0.0, "weights": {"code": 0.3, "math": 0.2, "prose": 0.5}},
                {"start_fraction": 0.8, "weights": {"code": 0.2, "math": 0.5, "prose": 0.3}}],
        epochs={"code": 1.1, "math": 2.0, "prose": 0.4},
        predicted={"metric": "mean:all-domains", "value": 3.02, "std": 0.03,
                   "by": {"surrogate": {"value": 3.0, "std": 0.02}, "projector": {"value": 3.2, "std": 0.05}}},
        reasons=["math is repeated 2.0 times, under the 4-epoch limit", "upsampling math in the last 20%"],
    )
    body.update(extra)
    return Plan.model_validate(body)


FRONTIER = [{"budget": b, "best": ["p1"] if b < 1e8 else ["p1", "p2"], "errors": [0.30 - 0.01 * k, 0.31 - 0.02 * k, 0.33 - 0.025 * k]}
            for k, b in enumerate([3.2e7, 6.4e7, 1.28e8, 6.4e8])]


def _images(index: Path) -> dict[str, bytes]:
    """file name -> PNG bytes of every figure embedded in the page."""
    text = index.read_text()
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" data-file="([^"]+)">', text)
    assert len(found) == text.count("<img "), "every image must be an embedded PNG"
    return {name: base64.b64decode(data) for data, name in found}


def _check_png(data: bytes, name: str = "figure") -> None:
    import io

    import matplotlib.image as mpimg

    assert data[:8] == PNG_SIGNATURE, f"{name} is not a PNG"
    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert float(np.ptp(img[..., :3])) > 0.1, f"{name} is a single flat colour"


def _check_all(index: Path) -> set[str]:
    images = _images(index)
    for name, data in images.items():
        _check_png(data, name)
        assert (index.parent / name).read_bytes() == data, f"{name} beside the page differs from the embedded one"
    return set(images)


def test_full_report_embeds_only_valid_pngs(tmp_path):
    store = _store(tmp_path / "store")
    plan = _plan(provenance={"cv": {"y_true": [3.1, 3.0, 3.3, 2.9, 3.2], "y_pred": [3.05, 3.02, 3.25, 2.95, 3.3]},
                             "agreement": {"surrogate": [3.0, 3.1, 3.2, 2.9], "projector": [3.05, 3.0, 3.3, 2.95],
                                           "actual": [3.02, 3.08, 3.25, 2.9]}})
    index = build_report(tmp_path / "out", store=store, plan=plan, frontier=FRONTIER, title="test <report>")
    assert index == tmp_path / "out" / "index.html" and index.is_file()
    text = index.read_text()
    names = _check_all(index)
    assert names == {"mixture.png", "pred_vs_actual_cv.png", "loss_matrix.png", "curves.png", "frontier.png",
                     "agreement.png", "agreement_scatter.png"}
    # self-contained: the page alone carries its figures; escaped; the summary carries what the brief asks for
    moved = tmp_path / "moved.html"
    moved.write_text(text)
    assert _images(moved).keys() == names
    assert "http://" not in text and "https://" not in text and "<script" not in text and 'src="' + "mixture.png" not in text
    assert "test &lt;report&gt;" in text
    assert "8 ok, 1 failed" in text and "1B tokens" in text and "3.0200 ± 0.0300" in text
    assert "upsampling math in the last 20%" in text and "best run" in text
    assert "80%" in text  # the second phase's start appears in the mixture caption
    assert "disagree" in text.lower()
    assert text.count("<figcaption>") == len(names)
    assert "Model predictions" not in text  # no model, but CV predictions exist: nothing to excuse


def test_plan_only_report_says_what_is_absent(tmp_path):
    plan_path = save_plan(_plan(frontier=FRONTIER), tmp_path / "plan.yaml")
    index = build_report(tmp_path / "out", plan=plan_path)
    assert _check_all(index) == {"mixture.png", "agreement.png", "frontier.png"}  # frontier from the plan's extra field
    text = index.read_text()
    assert "Not shown" in text and "no store given (--store)" in text and "provenance.cv" in text


def test_the_summary_says_when_the_value_carries_the_curse_correction(tmp_path):
    by = {"surrogate": {"value": 3.03, "std": 0.02, "curse": 0.02, "curse_sd": 0.01, "uncorrected": 3.01}}
    plan = _plan(predicted={"metric": "val/code", "value": 3.03, "std": 0.02, "by": by})
    text = build_report(tmp_path / "out", plan=save_plan(plan, tmp_path / "plan.yaml")).read_text()
    assert "the search&#x27;s own value 3.0100 plus its measured optimism 0.0200" in text


def test_store_only_report(tmp_path):
    index = build_report(tmp_path / "out", store=_store(tmp_path / "store"), target="val/code",
                         cv_predictions=([1.0, 2.0, 3.0], [1.1, 1.9, 3.2], [0.1, 0.1, 0.2]))
    assert _check_all(index) == {"loss_matrix.png", "curves.png", "pred_vs_actual_cv.png"}
    text = index.read_text()
    assert "no plan given (--plan)" in text and "val/code = " in text


def test_rebuild_overwrites_in_place(tmp_path):
    store = _store(tmp_path / "store")
    first = build_report(tmp_path / "out", store=store)
    second = build_report(tmp_path / "out", store=store, plan=_plan())
    assert first == second
    _check_all(second)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_no_inputs_and_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="at least one of --store or --plan"):
        build_report(tmp_path / "out")
    assert not (tmp_path / "out" / "index.html").exists()
    with pytest.raises(ConfigError, match="frontier"):
        build_report(tmp_path / "out", plan=_plan(), frontier=[{"budget": 1e6}])
    with pytest.raises(ConfigError, match="same length"):
        build_report(tmp_path / "out", plan=_plan(), cv_predictions={"y_true": [1, 2, 3], "y_pred": [1, 2]})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        build_report(tmp_path / "file", plan=_plan())
    from mixopt.errors import StoreError

    with pytest.raises(StoreError, match="does not exist"):
        build_report(tmp_path / "out", store=tmp_path / "nope")


def test_target_typo_is_an_error_not_a_page(tmp_path, capsys):
    """`report --target val/cod` used to exit 0 with the error only inside the HTML."""
    store = _store(tmp_path / "store")
    with pytest.raises(FitError, match="Did you mean val/code"):
        build_report(tmp_path / "out", store=store, target="val/cod")
    assert not (tmp_path / "out").exists()

    from mixopt.cli.main import run

    assert run(["report", "--store", str(store), "--target", "val/cod", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "val/cod" in err and "\n" not in err
    assert not (tmp_path / "o" / "index.html").exists()


def test_malformed_plan_provenance_is_reported_not_fatal(tmp_path):
    plan = _plan(provenance={"cv": {"y_true": [1, 2]}, "agreement": {"surrogate": [1, 2]}}, frontier="lots")
    index = build_report(tmp_path / "out", plan=plan)
    text = index.read_text()
    assert "provenance.cv needs both y_true and y_pred" in text
    assert "provenance.agreement needs surrogate and projector" in text
    assert "the plan&#x27;s frontier field must be a non-empty list" in text


class _FakeModel:
    def predict(self, W, return_std=False):
        pred = 3.5 - 0.4 * W[:, 0] - 0.4 * W[:, 1] - 0.4 * W[:, 2] + 0.1 * W[:, 0]
        return (pred, np.full(len(W), 0.02)) if return_std else pred


def _model_meta(store: Path, **over) -> dict:
    """The meta `mixopt fit` records: domains in its own column order, target, data and training mixtures."""
    from mixopt.runs.table import records_table

    order = ["prose", "math", "code"]
    table = records_table(RunStore(store, create=False).snapshot().ok)
    W = np.column_stack([table.W[:, table.domains.index(d)] for d in order])
    meta = {"domains": order, "target": "mean:all-domains", "data_fingerprint": "data-a", "train_mixtures": W.tolist()}
    meta.update(over)
    return meta


def _model_caption(index: Path) -> str:
    return re.search(r"Predicted vs actual \(model on the sweep\)\.</strong> ([^<]*)</figcaption>", index.read_text()).group(1)


def test_model_on_its_own_store_is_in_sample(tmp_path):
    from mixopt.surrogates import get_estimator, save_model

    store = _store(tmp_path / "store")
    meta = _model_meta(store)
    W = np.asarray(meta["train_mixtures"])
    est = get_estimator("linear").fit(W, W @ np.array([3.0, 3.2, 3.4]))
    save_model(est, tmp_path / "m.pkl", meta)
    with pytest.raises(ConfigError, match="does not exist"):
        build_report(tmp_path / "out", store=store, model=tmp_path / "missing.pkl")
    index = build_report(tmp_path / "out", store=store, model=tmp_path / "m.pkl")
    assert "pred_vs_actual_model.png" in _check_all(index)
    assert "All of them are its training runs" in _model_caption(index)
    assert "target mean:all-domains" in _model_caption(index)  # the model's target, not a default


def test_model_from_another_store_is_held_out_or_an_error(tmp_path):
    """`report --store S --model M` with M fitted elsewhere used to be drawn as "in-sample"."""
    store = _store(tmp_path / "store")
    other = _store(tmp_path / "other", seed=1)
    index = build_report(tmp_path / "out", store=store, model=(_FakeModel(), _model_meta(other)))
    caption = _model_caption(index)
    assert "None of them are its training runs" in caption and "generalisation" in caption
    _check_all(index)
    # half in, half out: both groups are named
    mixed = _model_meta(store)
    mixed["train_mixtures"] = mixed["train_mixtures"][:3]
    assert "3 are its training runs (in-sample" in _model_caption(build_report(tmp_path / "o2", store=store, model=(_FakeModel(), mixed)))
    # other data, other domains, other target: one-line errors naming both sides
    with pytest.raises(ConsistencyError, match="data data-b.*data-a"):
        build_report(tmp_path / "o3", store=store, model=(_FakeModel(), _model_meta(other, data_fingerprint="data-b")))
    with pytest.raises(ConsistencyError, match=r"domains \['code', 'math'\].*\['code', 'math', 'prose'\]"):
        build_report(tmp_path / "o3", store=store, model=(_FakeModel(), _model_meta(other, domains=["code", "math"])))
    with pytest.raises(ConsistencyError, match="--target is val/code, but the model predicts mean:all-domains"):
        build_report(tmp_path / "o3", store=store, model=(_FakeModel(), _model_meta(other)), target="val/code")


def test_measured_run_beating_the_prediction_is_explained(tmp_path):
    store = _store(tmp_path / "store", repeats=2)
    from mixopt.runs.table import records_table

    y = records_table(RunStore(store, create=False).snapshot().ok).target("mean:all-domains")
    plan = _plan(budget_tokens=4e6, predicted={"metric": "mean:all-domains", "value": float(y.min()) + 0.05, "std": 0.01,
                                              "by": {"surrogate": {"value": 3.0, "std": 0.02, "scale": "proxy"},
                                                     "projector": {"value": 2.7, "std": 0.05, "tokens": 4e6}}})
    text = build_report(tmp_path / "out", store=store, plan=plan, model=(_FakeModel(), _model_meta(store))).read_text()
    assert "Measured vs predicted" in text and "beats the plan&#x27;s prediction" in text
    section = text.split("<h2>Measured vs predicted</h2>")[1].split("<h2>")[0]
    assert "0.0500 below the plan" in section
    assert "Seed noise: one run" in section and "degrees of freedom" in section and "picked partly for luck" in section
    assert "The model predicts" in section and "own mixture at" in section
    assert "proxy scale" in section and "1.05M tokens each" in section and "4M tokens" in section
    assert "Verdict:" in section
    # a prediction below every run: said plainly, not flagged
    low = _plan(predicted={"metric": "mean:all-domains", "value": float(y.min()) - 0.5, "std": 0.01})
    text = build_report(tmp_path / "o2", store=store, plan=low).read_text()
    assert "is below every sweep run" in text and "beats the plan" not in text
    # ... and when the prediction is at the plan's larger budget, the page says the budgets differ
    far = _plan(budget_tokens=4e6, predicted={"metric": "mean:all-domains", "value": float(y.min()) - 0.5, "std": 0.01,
                                              "by": {"surrogate": {"value": float(y.min()) - 0.5, "std": 0.01, "scale": "target"}}})
    section = build_report(tmp_path / "o3", store=store, plan=far).read_text().split("<h2>Measured vs predicted</h2>")[1].split("<h2>")[0]
    assert "is below every sweep run" in section and "4M tokens while the runs trained 1.05M" in section


def test_seed_noise_unknown_is_said_and_luck_grows_with_runs():
    from mixopt.report.reconcile import expected_luck

    assert expected_luck(0.0, 30) == 0.0 and expected_luck(0.1, 1) == 0.0
    assert 0.1 < expected_luck(0.1, 10) < expected_luck(0.1, 30) < 0.25  # about 1.5 and 2.0 sd


def test_curves_legend_names_each_run_and_its_role(tmp_path):
    from mixopt.report.build import _pick_curves

    snap = RunStore(_store(tmp_path / "store"), create=False).snapshot()
    from mixopt.runs.table import records_table

    y = records_table(snap.ok).target("val/code")
    curves, metric = _pick_curves(snap.ok, y, "val/code")
    labels = list(curves)
    assert metric == "val/code"
    assert any(lab.startswith("best") for lab in labels) and any(lab.startswith("worst") for lab in labels)
    assert any("median" in lab for lab in labels) and any("baseline" in lab and "natural" in lab for lab in labels)
    assert all(re.search(r", \d\.\d+$", lab) for lab in labels)  # each ends with its final value


def test_loss_matrix_colour_scale_ignores_one_outlier(tmp_path):
    from mixopt.report.plots import plot_loss_matrix, robust_limit

    rng = np.random.default_rng(0)
    M = 3.0 + 0.05 * rng.standard_normal((12, 4))
    M[3, 2] = 9.0  # one diverged domain
    D = M - np.median(M, axis=0)
    assert robust_limit(D) < 0.2  # set by the typical spread, not by the 6.0 outlier
    _check_png(plot_loss_matrix([f"r{i}" for i in range(12)], [f"val/d{j}" for j in range(4)], M, tmp_path / "m.png").read_bytes())


def _cli() -> typer.Typer:
    # A private app with a second command so typer keeps `report` as a sub-command.
    from mixopt.cli.cmd_report import report_cmd

    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("report")(report_cmd)
    app.command("noop")(lambda: None)
    return app


def test_cli_prints_index_path_and_requires_an_input(tmp_path):
    store = _store(tmp_path / "store")
    plan_path = save_plan(_plan(), tmp_path / "plan.yaml")
    frontier = tmp_path / "frontier.json"
    frontier.write_text(json.dumps(FRONTIER))
    out = tmp_path / "out"
    res = CliRunner().invoke(_cli(), ["report", "--store", str(store), "--plan", str(plan_path),
                                      "--frontier", str(frontier), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out / "index.html")
    assert (out / "frontier.png").is_file()
    bad = CliRunner().invoke(_cli(), ["report", "--out", str(tmp_path / "o2")])
    assert isinstance(bad.exception, ConfigError) and "at least one of --store or --plan" in str(bad.exception)
    missing = CliRunner().invoke(_cli(), ["report", "--plan", str(plan_path), "--frontier", str(tmp_path / "no.json"),
                                          "--out", str(tmp_path / "o3")])
    assert isinstance(missing.exception, ConfigError) and "does not exist" in str(missing.exception)


def test_cli_registers_report_on_main_app():
    import mixopt.cli.cmd_report  # noqa: F401
    from mixopt.cli.main import app

    assert "report" in {c.name for c in app.registered_commands}


def test_model_checks_section_carries_noise_backtest_and_warnings(tmp_path):
    store = _store(tmp_path / "store")
    meta = _model_meta(store, noise={"seed_sd": 0.01, "dof": 4, "repeated": 2, "signal_sd": 0.2, "mixtures": 8, "snr": 20.0},
                       level_backtest={"bias": -0.2, "mean_sd": 0.05, "mae": 0.2, "within_2sd": 0.3, "n": 8,
                                       "largest_scale": (1e5, 4e5), "from_scale": (1e5, 2e5)},
                       notes=["held back, the largest scale was predicted 0.200 too low"])
    text = build_report(tmp_path / "out", store=store, model=(_FakeModel(), meta)).read_text()
    section = text.split("<h2>Model checks")[1].split("<h2>")[0]
    assert "seed noise: sd 0.0100" in section and "level backtest:" in section and "-4.00 sd" in section
    assert "warning: held back" in section
    plain = build_report(tmp_path / "o2", store=store, model=(_FakeModel(), _model_meta(store))).read_text()
    assert "Model checks" not in plain  # a model without checks (imported, old) adds no empty section


# ------------------------------------------------------------------ review 29

def _with_verify_and_pool_runs(root: Path) -> Path:
    """`_store` after `mixopt verify` and pool-value runs: better-looking verify: runs at a larger budget, one pool: run."""
    store = RunStore(_store(root))
    for s, arm in enumerate(("verify:uniform", "verify:uniform", "verify:plan")):
        store.put(RunRecord(run_id=f"ver{s}", mixture={"code": 0.3, "math": 0.3, "prose": 0.4}, status="ok", seed=s % 2,
                            metrics={f"val/{d}": 2.0 for d in DOMAINS}, label=arm, proxy={"tokens": 2**22}, data_fingerprint="data-a",
                            curves={f"val/{d}": {str(2**22): 2.0} for d in DOMAINS}))
    store.put(RunRecord(run_id="pool0", mixture={"code.hq": 1.0}, status="ok", metrics={"val/code.hq": 1.0, "target/code": 1.5},
                        label="pool:code.hq@1x", data_fingerprint="data-a"))
    return root


def test_report_describes_the_sweep_not_verify_or_pool_runs(tmp_path):
    """review 29 #1, #7: verify: runs were the page's best run, loss-matrix rows and curves, and flipped its verdict;
    pool: runs were counted as failed."""
    from mixopt.report.inputs import read_store

    store = _with_verify_and_pool_runs(tmp_path / "store")
    sv = read_store(store)
    assert len(sv.ok) == 8 and not any(r.label.startswith(("verify:", "pool:")) for r in sv.ok)
    assert (sv.n_failed, sv.n_verify, sv.n_pool) == (1, 3, 1) and len(sv.table.run_ids) == 8
    plan = _plan(predicted={"metric": "mean:all-domains", "value": 2.9, "std": 0.01})  # below every sweep run, above verify's
    text = build_report(tmp_path / "out", store=store, plan=plan, model=(_FakeModel(), _model_meta(store))).read_text()
    assert "8 ok, 1 failed or non-finite; 3 verify: runs not shown" in text and "1 pool: run not shown" in text
    best = re.search(r"<th>best run</th><td>([^<]*)</td>", text).group(1)
    assert "verify" not in best and "= 2 " not in best
    assert "is below every sweep run" in text and "every measured run" not in text and "beats the plan" not in text
    assert "All of them are its training runs" in _model_caption(tmp_path / "out" / "index.html")
    from mixopt.report.build import _pick_curves  # the curves' legends (drawn in the PNG)

    picked, _ = _pick_curves(sv.ok, sv.table.target("mean:all-domains"), "mean:all-domains")
    assert picked and not any("verify" in lab or "pool" in lab for lab in picked)


def test_run_labels_are_drawn_as_written_not_as_mathtext(tmp_path):
    """review 29 #4: a label with two `$` (an imported CSV's index) crashed the report in matplotlib's mathtext parser."""
    from mixopt.report import plots

    store = RunStore(_store(tmp_path / "store"))
    for i, label in enumerate(("m.csv#a$1", "m.csv#cost$^$2", "m.csv#$\\frac{$")):
        rec = store.get(f"run0-{i + 1:04d}")
        store.root.joinpath("runs", f"{rec.run_id}.json").unlink()
        rec.label = label
        store.put(rec)
    index = build_report(tmp_path / "out", store=store.root, target="val/code")
    assert {"loss_matrix.png", "curves.png"} <= _check_all(index)
    assert plots.plain("cost$^$2") == "cost\\$^\\$2"
    by = {"sur$rog$ate": (3.0, 0.1), "projector": (3.1, None)}
    _check_png(plots.plot_prediction_agreement(by, tmp_path / "a.png", metric="mean:$x$").read_bytes())
    _check_png(plots.plot_curves({"best: a$b$": {1.0: 3.0, 2.0: 2.5}}, tmp_path / "c.png", metric="val/$a$").read_bytes())
    body = _verify_body()
    body["results"][1]["name"] = body["comparisons"][0]["against"] = "$arm$"
    _check_png(plots.plot_verification(body, tmp_path / "v.png").read_bytes())


def test_runs_table_shows_labels_as_written_not_as_rich_markup():
    """review 29 #5: `runs list` raised MarkupError for a label `[/]`, and showed `[red]x` as a red x."""
    from rich.console import Console

    from mixopt.report.tables import runs_table, verify_table

    recs = [RunRecord(run_id=f"r{i}", mixture={"code": 0.5, "prose": 0.5}, status="ok", metrics={"val/code": 3.0}, label=label)
            for i, label in enumerate(("m.csv#[/]", "m.csv#[red]x", "m.csv#[bold]"))]
    console = Console(record=True, width=200)
    console.print(runs_table(recs, where="st[/]"))
    shown = console.export_text()
    assert "m.csv#[/]" in shown and "m.csv#[red]x" in shown and "m.csv#[bold]" in shown and "st[/]" in shown
    body = _verify_body()
    body["results"][1]["name"] = body["comparisons"][0]["against"] = "[/]arm"
    body["skipped"] = [{"name": "[red]doremi", "why": "no [/] proxy"}]
    console.print(verify_table(body))
    shown = console.export_text()
    assert "[/]arm" in shown and "[red]doremi" in shown and "no [/] proxy" in shown


def test_target_no_run_measured_is_a_one_line_error(tmp_path, capsys):
    """review 29 #8: runs that each lack one component of the target crashed the report (All-NaN slice)."""
    store = RunStore(tmp_path / "store")
    for i, (metrics) in enumerate(({"val/code": 3.1, "val/x": 3.2}, {"val/code": 3.0, "val/x": 3.3}, {"val/code": 3.05, "val/prose": 3.3})):
        store.put(RunRecord(run_id=f"r{i}", mixture={"code": 0.2 + 0.1 * i, "prose": 0.8 - 0.1 * i}, status="ok", metrics=metrics))
    with pytest.raises(FitError, match=r"no run in the store measured all of it .*val/prose, val/x.*--target with a metric every run measured \(val/code\)"):
        build_report(tmp_path / "out", store=store.root)
    assert not (tmp_path / "out").exists()
    from mixopt.cli.main import run

    assert run(["report", "--store", str(store.root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert build_report(tmp_path / "o2", store=store.root, target="val/code").is_file()
    # curves: a run without a score has no role (its NaN used to make the order undefined)
    from mixopt.report.build import _pick_curves

    recs = [RunRecord(run_id=f"c{i}", mixture={"code": 1.0}, status="ok", metrics={"val/code": v}, label=f"c{i}",
                      curves={"val/code": {"10": v + 1, "20": v}}) for i, v in enumerate((3.0, 2.0, 4.0))]
    picked, _ = _pick_curves(recs, np.array([3.0, np.nan, 4.0]), "val/code")
    assert not any("c1" in lab for lab in picked) and any(lab.startswith("best") and "c0" in lab for lab in picked)


def _verify_body() -> dict:
    return {"target": "mean:all-domains", "scale": {"model_params": 49344, "tokens": 163840}, "seeds": [0, 1],
            "results": [{"name": "plan", "values": [3.14, 3.10], "mean": 3.12}, {"name": "natural", "values": [3.12, 3.11], "mean": 3.115}],
            "comparisons": [{"against": "natural", "diff": 0.005, "ci95": [-0.01, 0.02], "plan_better": False, "plan_worse": False}],
            "skipped": [], "predicted": {"value": 3.3, "std": 0.03, "scale": "proxy"}}


@pytest.mark.parametrize("change,match", [
    (lambda b: b.pop("seeds"), "seeds"),
    (lambda b: b.update(seeds=[]), "seeds"),
    (lambda b: b.update(scale={}), "model_params and tokens"),
    (lambda b: b["scale"].update(tokens="many"), "model_params and tokens"),
    (lambda b: b["results"][0].pop("values"), "results entry 0"),
    (lambda b: b["results"][1].update(values=["x"]), "results entry 1"),
    (lambda b: b["comparisons"][0].pop("plan_better"), "comparisons entry 0"),
    (lambda b: b["comparisons"][0].update(ci95=[0.1]), "comparisons entry 0"),
    (lambda b: b.update(predicted={"value": "high"}), "predicted"),
])
def test_report_refuses_a_verify_json_it_cannot_draw(tmp_path, capsys, change, match):
    """review 29 #9: a VERIFY.json without seeds or scale.model_params passed the check, then raised a KeyError traceback."""
    from mixopt.cli.main import run

    store = _store(tmp_path / "store")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_verify_body()))
    assert run(["report", "--store", str(store), "--verify", str(good), "--out", str(tmp_path / "ok")]) == 0
    assert "verification.png" in _check_all(tmp_path / "ok" / "index.html")
    body = _verify_body()
    change(body)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(body))
    capsys.readouterr()
    assert run(["report", "--store", str(store), "--verify", str(bad), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "is not a VERIFY.json of `mixopt verify`" in err and match in err and "\n" not in err
    assert not (tmp_path / "rep").exists()


# review 31: the report as a user reads it in a browser


def _visible_text(index: Path) -> str:
    """The page without its embedded images (their base64 would match any pattern)."""
    return re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', index.read_text())


def test_the_plan_opens_the_page_with_mixture_prediction_and_verification(tmp_path):
    """review 31 #1: the answer (mixture per phase, repetition, predicted value with its uncertainty and scale, the
    baselines, the verification's numbers) used to be scattered: the plan's mixture was the 6th summary row and the
    verification only a figure, with no number on the page."""
    plan = _plan(predicted={"metric": "mean:all-domains", "value": 3.02, "std": 0.03, "beats_baselines": True,
                            "by": {"surrogate": {"value": 3.02, "std": 0.03, "scale": "target"}},
                            "baselines": {"natural": {"value": 3.1, "std": 0.03}, "uniform": {"value": 3.2, "std": 0.03}}})
    body = _verify_body()
    text = _visible_text(build_report(tmp_path / "out", store=_store(tmp_path / "store"), plan=plan, verification=body))
    top = text.split("<h2>Summary</h2>")[0]
    assert '<section class="answer" id="plan">' in top and top.index("The plan") < text.index("<h2>Figures</h2>")
    assert "Train on 1B tokens in 2 phases, switching at 80% of the tokens." in top
    # the mixture: one row per domain, a column per phase with its span, overall share, tokens and epochs
    assert "phase 1 (0%–80%)" in top and "phase 2 (80%–100%)" in top and "epochs" in top
    assert re.search(r"<td>math</td><td class=\"num\">20\.0%</td><td class=\"num\">50\.0%</td><td class=\"num\">26\.0%</td>"
                     r"<td class=\"num\">260M</td><td class=\"num\">2\.00</td>", top), top
    assert "Predicted mean:all-domains = 3.0200 ± 0.0300 (±1σ), at the plan&#x27;s budget of 1B tokens." in top
    assert "natural 3.1000 (plan − natural: -0.0800)" in top and "beat each baseline beyond the noise band" in top
    # the verification, in numbers: arm means, plan − arm, the interval, the verdict
    assert "Verified by training at 164k tokens, 49.3k non-embedding parameters, 2 paired seeds" in top
    assert "within noise of natural" in top and "outside ±2σ" in top  # 3.12 measured vs 3.30 ± 0.03 predicted
    assert re.search(r"<td>natural</td><td class=\"num\">3\.1150</td><td class=\"num\">\+0\.0050</td>"
                     r"<td class=\"num\">\[-0\.0100, \+0\.0200\]</td>", top)
    # without a verification the page says how to get one (set as code, not raw markdown backticks)
    text = _visible_text(build_report(tmp_path / "o2", plan=plan))
    assert "Not verified by training: <code>mixopt verify PLAN.yaml" in text and "`" not in text


def test_numbers_are_written_one_way(tmp_path):
    """review 31 #2: the same page wrote 1e+09 / 2e+05 tokens, a loss as 2.8 in one row and 2.8005 in the next, shares
    as 0.14 and 0.143, and a std as 0.03 next to 0.0300."""
    plan = _plan(budget_tokens=2e5)
    text = _visible_text(build_report(tmp_path / "out", store=_store(tmp_path / "store", repeats=2), plan=plan))
    assert not re.search(r"\de[+-]\d", text), re.findall(r".{40}\de[+-]\d.{20}", text)
    assert "plan budget</th><td>200k tokens in 2 phases" in text
    best = re.search(r"best run</th><td>([^<]*)</td>", text).group(1)
    assert re.search(r"= \d\.\d{4}; mixture code \d+\.\d%, math \d+\.\d%, prose \d+\.\d%$", best), best
    assert "mean:all-domains = 3.0200 ± 0.0300" in text and not re.search(r"\bnan\b", text, re.I)


def test_agreement_compares_predictions_at_the_same_budget(tmp_path):
    """review 31 #3: a proxy-scale surrogate was drawn, and judged, against the projector's value at the plan's larger
    budget (lower for that reason alone), while propose had judged them at the proxies' scale (value_at_proxy)."""
    from mixopt.report.inputs import predictors, predictors_by_scale

    plan = _plan(budget_tokens=4e6, predicted={
        "metric": "mean:all-domains", "value": 3.0, "std": 0.02,
        "by": {"surrogate": {"value": 3.0, "std": 0.02, "scale": "proxy"},
               "projector": {"value": 2.7, "std": 0.05, "tokens": 4e6, "value_at_proxy": 3.01, "std_at_proxy": 0.02,
                             "proxy_tokens": 1e6}}})
    labelled, compared = predictors_by_scale(plan, predictors(plan, []))
    assert labelled == {"surrogate (proxies' 1M tokens)": (3.0, 0.02), "projector (proxies' 1M tokens)": (3.01, 0.02),
                        "projector (plan's 4M tokens; not compared)": (2.7, 0.05)}
    assert compared == {"surrogate (proxies' 1M tokens)", "projector (proxies' 1M tokens)"}
    text = build_report(tmp_path / "out", plan=plan).read_text()
    assert "Predictors disagree" not in text and "not compared" in text
    # at one scale (a scale-aware surrogate) the two are compared, and a real disagreement is still flagged
    plan.predicted.by["surrogate"]["scale"] = "target"
    plan.predicted.by["surrogate"]["value"] = plan.predicted.value = 3.2
    labelled, compared = predictors_by_scale(plan, predictors(plan, []))
    assert compared == set(labelled) == {"surrogate (plan's 4M tokens)", "projector (plan's 4M tokens)"}
    assert "Predictors disagree beyond 1σ" in build_report(tmp_path / "o2", plan=plan).read_text()


def test_a_disagreement_says_which_predictor_the_verification_sided_with(tmp_path):
    """review 32: the demo's report flagged the surrogate (2.4956) and the projector (2.3449) as disagreeing and gave the
    measured 2.5172 beside it, leaving the reader to work out which prediction the measurement bore out."""
    from mixopt.report.build import sided_with

    preds = {"surrogate (plan's 2M tokens)": (2.4956, 0.0647), "projector (plan's 2M tokens)": (2.3449, 0.07)}
    body = {**_verify_body(), "scale": {"model_params": 98624, "tokens": 2e6},
            "results": [{"name": "plan", "values": [2.51, 2.5244], "mean": 2.5172}]}
    said = sided_with(body, 2e6, preds)
    assert said == ("The verification above measured the plan at 2.5172, 0.3σ from the surrogate's 2.4956 and 2.5σ from "
                    "the projector's 2.3449: the measurement sides with the surrogate."), said
    assert sided_with({**body, "results": [{"name": "plan", "mean": 2.36}]}, 2e6, preds).endswith("sides with the projector.")
    # trained at another budget: the distances would compare unlike things, so none are given
    assert sided_with(body, 8e6, preds) == "The verification above measured the plan at 2.5172, at 2M tokens rather than the plan's 8M."
    plan = _plan(budget_tokens=2e6, predicted={"metric": "mean:all-domains", "value": 2.4956, "std": 0.0647, "by": {
        "surrogate": {"value": 2.4956, "std": 0.0647, "scale": "target"}, "projector": {"value": 2.3449, "std": 0.07, "tokens": 2e6}}})
    text = build_report(tmp_path / "out", plan=plan, verification=body).read_text()
    assert "Predictors disagree beyond 1σ" in text and "sides with the surrogate" in text


def test_a_run_beating_the_prediction_within_noise_is_a_notice_not_a_warning(tmp_path):
    """review 31 #4: the page opened with a bold red "A measured run beats the plan's prediction" and then, below,
    concluded the gap was inside the noise band and expected."""
    store = _store(tmp_path / "store", repeats=2)
    from mixopt.runs.table import records_table

    y = records_table(RunStore(store, create=False).snapshot().ok).target("mean:all-domains")
    near = _plan(predicted={"metric": "mean:all-domains", "value": float(y.min()) + 0.01, "std": 0.05})
    text = build_report(tmp_path / "out", store=store, plan=near).read_text()
    assert re.search(r'<p class="notice">A sweep run \([^)]*\) beats the plan&#x27;s prediction \([\d.]+\) by 0\.0100, '
                     r"inside the noise band", text)
    assert '<p class="flag">A sweep run' not in text
    far = _plan(predicted={"metric": "mean:all-domains", "value": float(y.min()) + 0.5, "std": 0.01})
    text = build_report(tmp_path / "o2", store=store, plan=far).read_text()
    assert re.search(r'<p class="flag">A sweep run .* beyond the noise band', text)


def test_page_is_built_for_a_phone_too(tmp_path):
    """review 31 #5: no viewport meta (phones drew it at 980 px and shrank it) and a summary row with a run id that did
    not wrap; the browser test measures the result at 390 px."""
    text = build_report(tmp_path / "out", store=_store(tmp_path / "store"), plan=_plan()).read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "overflow-wrap: anywhere" in text and "@media (max-width: 640px)" in text
    assert text.count('<div class="scroll') >= text.count("<img ")  # wide figures and tables scroll in their own box


def test_imported_regmix_metric_names_fill_the_loss_matrix(tmp_path):
    """stop 35's left item: RegMix's metric names (`metric/the_pile_arxiv_val_loss`) left the per-domain matrix empty."""
    from mixopt.runs.tables_io import import_runs

    rng = np.random.default_rng(0)
    names = ("arxiv", "github", "pile_cc")
    W = rng.dirichlet(np.ones(3), size=10)
    mix, met = tmp_path / "mix.csv", tmp_path / "loss.csv"
    mix.write_text("index," + ",".join(f"train_the_pile_{d}" for d in names) + "\n"
                   + "".join(f"{i}," + ",".join(f"{w:.6f}" for w in row) + "\n" for i, row in enumerate(W)))
    met.write_text("index," + ",".join(f"metric/the_pile_{d}_val_loss" for d in names) + "\n"
                   + "".join(f"{i}," + ",".join(f"{4 - w:.4f}" for w in row) + "\n" for i, row in enumerate(W)))
    store = RunStore(tmp_path / "store")
    import_runs(store, mix, met)
    index = build_report(tmp_path / "out", store=store.root, target="mean:arxiv,github")
    assert "loss_matrix.png" in _check_all(index)


def test_a_kept_baseline_with_kept_pools_is_the_baselines_mixture_not_the_baseline():
    """Recheck 39 #4: a plan that keeps uniform's shares but trains web on its kept pools was "the uniform baseline
    itself", while verify trains it otherwise than uniform (whole domains); as e398991 did for an end phase."""
    from mixopt.report.answer import predicted_lines
    w = {"code": 1 / 3, "math": 1 / 3, "web": 1 / 3}
    predicted = {"metric": "mean:all-domains", "value": 3.0, "std": 0.03,
                 "by": {"surrogate": {"value": 3.0, "std": 0.03, "search": "baseline:uniform"}},
                 "baselines": {"uniform": {"value": 3.0, "std": 0.03}}}
    plan = Plan.model_validate(dict(budget_tokens=2e5, phases=[{"start_fraction": 0.0, "weights": w}],
                                    predicted=predicted, pools={"web": ["top"]}))
    line = predicted_lines(plan)[1]
    assert "Verdict: the plan is the uniform baseline's mixture, with web on its kept pools (top): the search's" in line
    assert "itself" not in line
    assert "the plan is the uniform baseline itself:" in predicted_lines(plan.model_copy(update={"pools": {}}))[1]
