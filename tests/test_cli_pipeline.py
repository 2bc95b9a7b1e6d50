"""End-to-end: fit -> predict -> propose -> export -> report through the CLI, and `mixopt demo`."""

import csv
import json

import pytest
import yaml

from mixopt.cli.main import run
from tests.test_cli_sweep import write_cfg


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A small real sweep shared by the tests of this module."""
    import os

    tmp = tmp_path_factory.mktemp("pipeline")
    os.environ.setdefault("MIXOPT_CACHE", str(tmp / "cache"))
    cfg = write_cfg(tmp, runs=8)
    store = tmp / "store"
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    return cfg, store


def test_fit_predict_propose_export_report(swept, tmp_path, capsys):
    cfg, store = swept
    model = tmp_path / "model.pkl"
    assert run(["fit", "--store", str(store), "--target", "mean:all-domains", "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert "spearman" in out and "regret@1" in out
    assert model.exists() and model.with_suffix(".png").stat().st_size > 1000

    mixtures = tmp_path / "m.csv"
    mixtures.write_text("index,code,legal,prose\n7,0.2,0.3,0.5\n9,1,0,0\n")
    preds = tmp_path / "p.csv"
    assert run(["predict", "--model", str(model), "--mixtures", str(mixtures), "--out", str(preds)]) == 0
    rows = list(csv.DictReader(preds.open()))
    assert [r["index"] for r in rows] == ["7", "9"] and all(float(r["std"]) > 0 for r in rows)

    plan = tmp_path / "plan.yaml"
    assert run(["propose", str(cfg), "--model", str(model), "--store", str(store), "--budget-tokens", "40000", "--out", str(plan)]) == 0
    body = yaml.safe_load(plan.read_text())
    weights = body["phases"][0]["weights"]
    assert abs(sum(weights.values()) - 1) < 1e-9 and set(weights) <= {"code", "legal", "prose"}
    assert body["budget_tokens"] == 40000 and body["predicted"]["metric"] == "mean:all-domains"
    assert "surrogate" in body["predicted"]["by"] and body["reasons"]
    assert set(body["epochs"]) == set(weights)

    out_dir = tmp_path / "olmo"
    paths = [f"--paths={d}=/data/{d}" for d in weights]
    assert run(["export", str(plan), "--format", "olmo-core", *paths, "--out", str(out_dir)]) == 0
    src = yaml.safe_load((out_dir / "phase_00.yaml").read_text())["sources"]
    assert sum(s["target_ratio"] for s in src) == 1.0

    report = tmp_path / "report"
    assert run(["report", "--store", str(store), "--plan", str(plan), "--model", str(model), "--out", str(report)]) == 0
    pngs = list(report.glob("*.png"))
    assert len(pngs) >= 4 and all(p.stat().st_size > 1000 for p in pngs)


def test_propose_fits_a_model_when_none_given(swept, tmp_path):
    cfg, store = swept
    plan = tmp_path / "plan.yaml"
    assert run(["propose", str(cfg), "--store", str(store), "--no-projector", "--out", str(plan)]) == 0
    assert yaml.safe_load(plan.read_text())["phases"]


def test_propose_without_config_fits_with_the_stores_config(swept, tmp_path, monkeypatch):
    """No CONFIG: the search reads the store's recorded config, so the fit must too. It fitted `mean:all-domains` (and
    the default model, no budgets) while the store's `propose.target` was val/code; a store without a recorded config
    (imported runs) keeps those defaults."""
    import shutil

    from mixopt import pipeline
    from mixopt.errors import ConfigError
    _, store = swept
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    meta = json.loads((copy / "store.json").read_text())
    meta["config"]["propose"].update(target="val/code", n_candidates=2000, top_k=10, upsample=False, curse_correction=False)  # fast
    (copy / "store.json").write_text(json.dumps(meta))
    plan = tmp_path / "plan.yaml"
    assert run(["propose", "--store", str(copy), "--no-projector", "--out", str(plan)]) == 0
    assert yaml.safe_load(plan.read_text())["predicted"]["metric"] == "val/code"
    assert pipeline.open_model(tmp_path / "plan.model.pkl").target == "val/code"

    (tmp_path / "m.csv").write_text("index,a,b\n" + "".join(f"{i},{i / 7:.4f},{1 - i / 7:.4f}\n" for i in range(8)))
    (tmp_path / "l.csv").write_text("index,val/a,val/b\n" + "".join(f"{i},{3 + (i / 7 - 0.4) ** 2:.4f},{3.1 - i / 70:.4f}\n" for i in range(8)))
    assert run(["runs", "import", "--mixtures", str(tmp_path / "m.csv"), "--metrics", str(tmp_path / "l.csv"),
                "--store", str(tmp_path / "imp")]) == 0
    real_fit, fits = pipeline.fit, []

    def recording_fit(snap, *args, **kw):
        fits.append((args, kw))
        return real_fit(snap, *args, **kw)

    def no_search(*args, **kw):  # the default search (1e6 candidates) takes ~20 s; the fit's arguments are the point
        raise ConfigError("not searched")

    monkeypatch.setattr(pipeline, "fit", recording_fit)
    monkeypatch.setattr(pipeline, "propose", no_search)
    assert run(["propose", "--store", str(tmp_path / "imp"), "--no-projector", "--out", str(tmp_path / "imp.yaml")]) == 2
    assert fits == [(("mean:all-domains", "default"), {"seed": 0, "budgets": False})]


def test_fit_model_help_names_every_scale_aware_estimator_and_the_budgets_default(capsys):
    """`fit --model`'s help named scale-gp as the only multi-scale default and left out shift-gp, which `--budgets` on
    one size picks (and the help feeds the README's CLI reference)."""
    import re

    from mixopt.surrogates import SCALE_ESTIMATORS
    assert run(["fit", "--help"]) == 0
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", capsys.readouterr().out).split())
    assert "default (scale-gp; shift-gp with --budgets on one size)" in flat
    assert all(name in flat for name in SCALE_ESTIMATORS)


def test_fit_seed_help_says_what_propose_config_fits_with_on_a_store_without_a_config(capsys):
    """On a store without a config (imported runs) `fit` seeds 0 but one-step `propose CONFIG` fits with CONFIG's seed;
    the help said the two agree (recheck of stop 40, N6)."""
    import re

    assert run(["fit", "--help"]) == 0
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", capsys.readouterr().out).split())
    assert "0 for a store without a config, e.g. imported runs, where `propose CONFIG` fits with CONFIG's seed" in flat


def test_budget_the_data_cannot_supply_names_the_domain(swept, tmp_path, capsys):
    cfg, store = swept
    model = tmp_path / "model.pkl"
    assert run(["fit", "--store", str(store), "--out", str(model)]) == 0
    capsys.readouterr()
    assert run(["propose", "--model", str(model), "--budget-tokens", "1e12", "--out", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and any(d in err for d in ("code", "legal", "prose")) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.yaml").exists()


@pytest.mark.parametrize(
    "args,match",
    [
        (["fit", "--store", "{store}", "--target", "val/nonexistent", "--out", "{tmp}/m.pkl"], "val/nonexistent"),
        (["fit", "--store", "{store}", "--model", "no-such-model", "--out", "{tmp}/m.pkl"], "no-such-model"),
        (["fit", "--store", "{tmp}/missing", "--out", "{tmp}/m.pkl"], "does not exist"),
        (["predict", "--model", "{tmp}/missing.pkl", "--mixtures", "{tmp}/m.csv", "--out", "{tmp}/p.csv"], "missing.pkl"),
    ],
)
def test_fit_predict_bad_input(swept, tmp_path, capsys, args, match):
    _, store = swept
    args = [a.format(store=store, tmp=tmp_path) for a in args]
    assert run(args) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_fit_rejects_too_few_runs(tmp_path, capsys):
    from mixopt.runs.record import RunRecord
    from mixopt.runs.store import RunStore

    store = RunStore(tmp_path / "s")
    for i in range(2):
        store.put(RunRecord(run_id=f"r{i}", mixture={"a": 0.5 + 0.1 * i, "b": 0.5 - 0.1 * i}, status="ok", metrics={"val/a": 3.0 + i}))
    assert run(["fit", "--store", str(tmp_path / "s"), "--out", str(tmp_path / "m.pkl")]) == 2
    assert "at least" in capsys.readouterr().err


def test_demo_tiny_end_to_end(tiny_demo):
    out = tiny_demo
    assert (out / "plan.yaml").exists() and (out / "report" / "index.html").exists()
    html = (out / "report" / "index.html").read_text()
    import base64
    import re

    srcs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert srcs and all(len(base64.b64decode(s)) > 1000 for s in srcs)  # figures are embedded in the page
    assert "verification.png" in {p.name for p in (out / "report").glob("*.png")}
    body = json.loads((out / "verify.json").read_text())
    assert [r["name"] for r in body["results"]] == ["plan", "natural", "uniform"] and len(body["seeds"]) == 2
    assert json.loads((out / "exports" / "hf-datasets" / "interleave.json").read_text())


@pytest.mark.slow  # ~32 s on 2 cores (CI time)
def test_demo_predicts_at_its_budget_with_wsd_budgets(tmp_path, capsys):
    """The demo's own settings (WSD branches + propose.fit_budgets) on the tiny proxy: the plan is predicted at its
    budget and verify says so."""
    from mixopt.config import packaged_config

    raw = yaml.safe_load(packaged_config("tiny").read_text())
    raw["proxy"].update(schedule="wsd", checkpoints=[0.25, 0.5, 1.0])
    raw["propose"]["fit_budgets"] = True
    raw["sampler"]["two_phase_runs"] = 0
    cfg = tmp_path / "tiny_wsd.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "demo"
    assert run(["demo", "--out", str(out), "--config", str(cfg), "--runs", "3"]) == 0
    assert "every budget they measured" in capsys.readouterr().out
    plan = yaml.safe_load((out / "plan.yaml").read_text())
    assert plan["provenance"]["target_scale"]["tokens"] == pytest.approx(plan["budget_tokens"])
    body = json.loads((out / "verify.json").read_text())
    assert body["predicted"]["scale"] == "target" and "note" not in body["predicted"]
    assert (out / "report" / "index.html").exists()


@pytest.mark.slow  # ~32 s on 2 cores (CI time)
def test_same_config_and_seed_give_bit_identical_plans(tiny_demo, tmp_path):
    """Two demos from scratch (separate stores) write the same plan, byte for byte, apart from paths."""
    assert run(["demo", "--out", str(tmp_path / "b"), "--config", "tiny", "--runs", "4"]) == 0
    plans = []
    for out in (tiny_demo, tmp_path / "b"):
        body = yaml.safe_load((out / "plan.yaml").read_text())
        body["provenance"].pop("model")  # the model and store paths differ between the two output folders
        body["provenance"].pop("store")
        plans.append(yaml.safe_dump(body))
    assert plans[0] == plans[1]


def test_propose_cooldown_schedule(swept, tmp_path):
    cfg, store = swept
    body = yaml.safe_load(cfg.read_text())
    body["propose"] = {"cooldown_switch": 0.8, "n_candidates": 5000}
    cool = tmp_path / "cool.yaml"
    cool.write_text(yaml.safe_dump(body))
    plan = tmp_path / "plan.yaml"
    assert run(["propose", str(cool), "--store", str(store), "--no-projector", "--out", str(plan)]) == 0
    phases = yaml.safe_load(plan.read_text())["phases"]
    assert [p["start_fraction"] for p in phases] == [0.0, 0.8]
    # tau = 5 is flatter than tau = 1 (token-proportional)
    spread = [max(p["weights"].values()) - min(p["weights"].values()) for p in phases]
    assert spread[0] < spread[1]
    body_plan = yaml.safe_load(plan.read_text())  # what the plan says is the schedule, not the discarded search
    assert body_plan["reasons"][0].startswith("the Cooldown schedule (propose.cooldown_switch 0.8)")
    assert not any(r.startswith(("kept ", "no bound binds")) for r in body_plan["reasons"])
    assert body_plan["predicted"]["by"]["surrogate"]["search"] == "cooldown"
    body["propose"]["max_weights"] = {"code": 0.1}  # bounds the schedule cannot honour: a one-line config error
    cool.write_text(yaml.safe_dump(body))
    assert run(["propose", str(cool), "--store", str(store), "--no-projector", "--out", str(tmp_path / "p2.yaml")]) == 2
    # a cap the fixed recipe would break at this budget: refused, naming the domain, never a plan past the cap
    body["propose"] = {"cooldown_switch": 0.8, "n_candidates": 5000, "max_epochs": 0.01}
    cool.write_text(yaml.safe_dump(body))
    assert run(["propose", str(cool), "--store", str(store), "--no-projector", "--out", str(tmp_path / "p3.yaml")]) == 2
    assert not (tmp_path / "p3.yaml").exists()
