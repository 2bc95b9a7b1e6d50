"""`mixopt report`: the page, its figures, the variants with missing inputs, and the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from mixopt.errors import ConfigError
from mixopt.plan import Plan, save_plan
from mixopt.report import build_report
from mixopt.runs.record import RunRecord
from mixopt.runs.store import RunStore

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DOMAINS = ["code", "math", "prose"]


def _store(root: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    store = RunStore(root)
    for i in range(n):
        w = rng.dirichlet(np.ones(len(DOMAINS)))
        mixture = dict(zip(DOMAINS, map(float, w)))
        final = {f"val/{d}": float(3.5 - 1.2 * w[k] + 0.05 * i) for k, d in enumerate(DOMAINS)}
        curves = {m: {str(t): v + 2.0 * 2**-j for j, t in enumerate((2**18, 2**19, 2**20))} for m, v in final.items()}
        store.put(RunRecord(run_id=f"run{i:04d}", mixture=mixture, status="ok", metrics=final, curves=curves,
                            label="natural" if i == 0 else f"sample-{i}"))
    store.put(RunRecord(run_id="runfail", mixture={"code": 1.0}, status="failed", reason="diverged"))
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


def _images(index: Path) -> list[Path]:
    text = index.read_text()
    srcs = re.findall(r'<img src="([^"]+)"', text)
    return [index.parent / s for s in srcs]


def _check_png(path: Path) -> None:
    import matplotlib.image as mpimg

    assert path.is_file(), f"{path} referenced but missing"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert float(np.ptp(img[..., :3])) > 0.1, f"{path.name} is a single flat colour"


def test_full_report_links_only_valid_pngs(tmp_path):
    store = _store(tmp_path / "store")
    plan = _plan(provenance={"cv": {"y_true": [3.1, 3.0, 3.3, 2.9, 3.2], "y_pred": [3.05, 3.02, 3.25, 2.95, 3.3]},
                             "agreement": {"surrogate": [3.0, 3.1, 3.2, 2.9], "projector": [3.05, 3.0, 3.3, 2.95],
                                           "actual": [3.02, 3.08, 3.25, 2.9]}})
    index = build_report(tmp_path / "out", store=store, plan=plan, frontier=FRONTIER, title="test <report>")
    assert index == tmp_path / "out" / "index.html" and index.is_file()
    text = index.read_text()
    names = {p.name for p in _images(index)}
    assert names == {"mixture.png", "pred_vs_actual_cv.png", "loss_matrix.png", "curves.png", "frontier.png",
                     "agreement.png", "agreement_scatter.png"}
    for img in _images(index):
        _check_png(img)
    # self-contained, escaped, and the summary carries what the brief asks for
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "test &lt;report&gt;" in text
    assert "8 ok, 1 failed" in text and "1e+09 tokens" in text and "3.02 ± 0.03" in text
    assert "upsampling math in the last 20%" in text and "best run" in text
    assert "80%" in text  # the second phase's start appears in the mixture caption
    assert "disagree" in text.lower()
    assert text.count("<figcaption>") == len(names)
    assert "Model predictions" not in text  # no model, but CV predictions exist: nothing to excuse


def test_plan_only_report_says_what_is_absent(tmp_path, monkeypatch):
    plan_path = save_plan(_plan(frontier=FRONTIER), tmp_path / "plan.yaml")
    index = build_report(tmp_path / "out", plan=plan_path)
    names = {p.name for p in _images(index)}
    assert names == {"mixture.png", "agreement.png", "frontier.png"}  # frontier comes from the plan's extra field
    for img in _images(index):
        _check_png(img)
    text = index.read_text()
    assert "Not shown" in text and "no store given (--store)" in text and "provenance.cv" in text


def test_store_only_report(tmp_path):
    index = build_report(tmp_path / "out", store=_store(tmp_path / "store"), target="val/code",
                         cv_predictions=([1.0, 2.0, 3.0], [1.1, 1.9, 3.2], [0.1, 0.1, 0.2]))
    names = {p.name for p in _images(index)}
    assert names == {"loss_matrix.png", "curves.png", "pred_vs_actual_cv.png"}
    for img in _images(index):
        _check_png(img)
    text = index.read_text()
    assert "no plan given (--plan)" in text and "val/code = " in text


def test_rebuild_overwrites_in_place(tmp_path):
    store = _store(tmp_path / "store")
    first = build_report(tmp_path / "out", store=store)
    second = build_report(tmp_path / "out", store=store, plan=_plan())
    assert first == second
    for img in _images(second):
        _check_png(img)
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


def test_model_on_store_uses_load_model_contract(tmp_path, monkeypatch):
    import mixopt.surrogates as surrogates

    calls = []

    def load_model(path):
        calls.append(path)
        return _FakeModel(), {"domains": ["prose", "math", "code"], "target": "mean:all-domains"}

    monkeypatch.setattr(surrogates, "load_model", load_model, raising=False)
    store = _store(tmp_path / "store")
    (tmp_path / "m.pkl").write_bytes(b"fake")
    with pytest.raises(ConfigError, match="does not exist"):
        build_report(tmp_path / "out", store=store, model=tmp_path / "missing.pkl")
    index = build_report(tmp_path / "out", store=store, model=tmp_path / "m.pkl")
    assert calls == [tmp_path / "m.pkl"]
    assert "pred_vs_actual_model.png" in {p.name for p in _images(index)}
    for img in _images(index):
        _check_png(img)


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
    from mixopt.cli.main import app
    import mixopt.cli.cmd_report  # noqa: F401

    assert "report" in {c.name for c in app.registered_commands}


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (/usr/bin/chromium); the headless-render check needs it")
def test_page_renders_headless(tmp_path):
    index = build_report(tmp_path / "out", store=_store(tmp_path / "store"), plan=_plan(), frontier=FRONTIER)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2000", index.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    _check_png(shot)
