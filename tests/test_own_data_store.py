"""A user's own data files and the store swept on them (a review with own data): a data file changed after the sweep
(propose notes it, sweep and verify name the domain), an interrupted sweep's seed repeats, verify runs and refits."""

import gzip
import json
import shutil
import warnings
from pathlib import Path

import pytest
import yaml

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.data.domains import load_domain_set
from mixopt.data.embedded import embedded_path
from tests.test_cli_sweep import MICRO

DOMAINS = ("code", "legal", "prose")


def _write_cfg(root: Path, data: Path, **data_over) -> Path:
    cfg = json.loads(json.dumps(MICRO))
    cfg["runs"] = 4
    cfg["sampler"] = {**cfg["sampler"], "noise_seeds": 2, "noise_mixtures": 0}  # natural and uniform again under seed 1
    cfg["data"] = {"corpus": "none", "max_documents": 60,
                   "domains": [{"name": d, "path": str(data / f"{d}.jsonl")} for d in DOMAINS], **data_over}
    path = root / "own.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """Three domains of the user's own jsonl files (60 documents of the embedded corpus each), swept (6 runs and 2
    seed repeats), a model fitted on the store and a plan proposed with it. Tests change copies (:func:`copy_of`)."""
    tmp = tmp_path_factory.mktemp("own")
    data = tmp / "data"
    data.mkdir()
    for d in DOMAINS:
        with gzip.open(embedded_path(d), "rt") as fh:
            lines = fh.read().splitlines()[:60]
        (data / f"{d}.jsonl").write_text("\n".join(lines) + "\n")
    cfg = _write_cfg(tmp, data)
    store, model, plan = tmp / "store", tmp / "model.pkl", tmp / "plan.yaml"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIXOPT_CACHE", str(tmp / "cache"))
        assert run(["sweep", str(cfg), "--store", str(store)]) == 0
        assert run(["fit", "--store", str(store), "--out", str(model)]) == 0
        assert run(["propose", str(cfg), "--model", str(model), "--store", str(store), "--no-projector",
                    "--out", str(plan)]) == 0
    return tmp


def copy_of(own: Path, tmp_path: Path) -> Path:
    """A copy of the fixture's folder whose store.json config reads the copy's data files (so they can be changed)."""
    new = tmp_path / "own"
    shutil.copytree(own, new)
    meta_path = new / "store" / "store.json"
    meta = json.loads(meta_path.read_text())
    for spec in meta["config"]["data"]["domains"]:
        spec["path"] = str(new / "data" / Path(spec["path"]).name)
    meta_path.write_text(json.dumps(meta))
    _write_cfg(new, new / "data")
    return new


def append_to(path: Path, n: int = 5) -> None:
    """The reviewer's change: documents appended to one domain's file after the sweep."""
    with path.open("a") as fh:
        for i in range(n):
            fh.write(json.dumps({"text": f"appended document {i} " * 200}) + "\n")


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _propose_warnings(argv: list[str]) -> list[str]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        assert run(argv) == 0
    return [str(w.message) for w in got]


# ---------------------------------------------------------------- A: propose after a data file changed

@pytest.mark.parametrize("projector", [False, pytest.param(True, marks=pytest.mark.slow)])  # the projector: ~15 s more
def test_propose_notes_a_domain_whose_data_changed_since_the_sweep(own, tmp_path, projector):
    """The plan's epochs come from the model's swept token counts: after a data file grew, propose wrote the same plan
    with no word. It says which domain changed, that the epochs are the swept ones, and the way out."""
    w = copy_of(own, tmp_path)
    flags = [] if projector else ["--no-projector"]
    same = tmp_path / "same.yaml"
    argv = ["propose", str(w / "own.yaml"), "--model", str(w / "model.pkl"), "--store", str(w / "store"), *flags]
    said = _propose_warnings([*argv, "--out", str(same)])
    assert not [m for m in said if "differs from the data the store" in m]  # unchanged data: no note
    append_to(w / "data" / "legal.jsonl")
    plan = tmp_path / "plan.yaml"
    notes = [m for m in _propose_warnings([*argv, "--out", str(plan)]) if "differs from the data the store" in m]
    assert len(notes) == 1 and "\n" not in notes[0], notes
    note = notes[0]
    assert "domain legal: data changed" in note and "code" not in note and "prose" not in note
    assert "swept token counts" in note and f"reuse: {{store: {w / 'store'}}}" in note and "new --store" in note
    assert note in yaml.safe_load(plan.read_text())["reasons"]  # the plan file keeps it


def test_propose_without_config_notes_the_stores_own_data_changed(own, tmp_path):
    w = copy_of(own, tmp_path)
    append_to(w / "data" / "code.jsonl")
    notes = [m for m in _propose_warnings(["propose", "--model", str(w / "model.pkl"), "--store", str(w / "store"),
                                           "--no-projector", "--out", str(tmp_path / "p.yaml")])
             if "differs from the data the store" in m]
    assert len(notes) == 1 and "the store's config" in notes[0] and "domain code: data changed" in notes[0]


def test_the_fingerprints_propose_computes_without_tokenizing_are_the_sweeps(own):
    """pipeline.data_fingerprints hashes the files as tokenize_domain keys them: drift would make every propose note."""
    cfg = pipeline.store_config(pipeline.open_store(own / "store"))
    keyed, loaded = pipeline.data_fingerprints(cfg), load_domain_set(cfg.data)
    assert keyed.fingerprint == loaded.fingerprint == pipeline.open_store(own / "store").meta["data_fingerprint"]
    assert {n: d.fingerprint for n, d in keyed.domains.items()} == {n: d.fingerprint for n, d in loaded.domains.items()}


# ---------------------------------------------------------------- B: sweep into a store of other data

def test_sweep_names_the_domain_whose_data_changed_and_the_reuse_route(own, tmp_path, capsys):
    w = copy_of(own, tmp_path)
    append_to(w / "data" / "prose.jsonl")
    capsys.readouterr()
    assert run(["sweep", str(w / "own.yaml"), "--store", str(w / "store")]) != 0
    err = _one_line_error(capsys)
    assert "holds runs on other data" in err and "domain prose: data changed" in err and "legal" not in err
    assert f"reuse: {{store: {w / 'store'}}}" in err and "new --store" in err and "val_fraction" not in err


def test_sweep_with_only_a_target_added_says_so(own, tmp_path, capsys):
    w = copy_of(own, tmp_path)
    target = w / "data" / "target.jsonl"
    shutil.copy(w / "data" / "prose.jsonl", target)
    cfg = _write_cfg(w, w / "data", targets=[{"name": "mine", "path": str(target)}])
    capsys.readouterr()
    assert run(["sweep", str(cfg), "--store", str(w / "store")]) != 0
    err = _one_line_error(capsys)
    assert "evaluation target mine (data.targets): added" in err and "data.targets back" in err
    assert "tokenizer" not in err and "val_fraction" not in err and "reuse" not in err
    # the training data, so a plan's epochs, are the swept ones: propose with that config says nothing of it
    said = _propose_warnings(["propose", str(cfg), "--model", str(w / "model.pkl"), "--store", str(w / "store"),
                              "--no-projector", "--out", str(tmp_path / "p.yaml")])
    assert not [m for m in said if "differs from the data the store" in m]


def test_sweep_with_another_max_documents_names_that_setting(own, tmp_path, capsys):
    w = copy_of(own, tmp_path)
    cfg = _write_cfg(w, w / "data", max_documents=40)
    capsys.readouterr()
    assert run(["sweep", str(cfg), "--store", str(w / "store")]) != 0
    err = _one_line_error(capsys)
    assert "data.max_documents changed" in err and "domain code" not in err and "reuse" not in err


# ---------------------------------------------------------------- C: verify without --config after the data changed

def test_verify_without_config_says_the_files_on_disk_changed(own, tmp_path, capsys):
    w = copy_of(own, tmp_path)
    append_to(w / "data" / "legal.jsonl")
    capsys.readouterr()
    assert run(["verify", str(w / "plan.yaml"), "--store", str(w / "store"), "--out", str(tmp_path / "v.json")]) != 0
    err = _one_line_error(capsys)
    assert "data on disk changed since the store" in err and "domain legal: data changed" in err
    assert "--config" not in err and not (tmp_path / "v.json").exists()


def test_verify_with_a_config_of_other_data_still_asks_for_the_stores_config(own, tmp_path, capsys):
    w = copy_of(own, tmp_path)
    cfg = _write_cfg(tmp_path, w / "data", max_documents=40)
    capsys.readouterr()
    assert run(["verify", str(w / "plan.yaml"), "--store", str(w / "store"), "--config", str(cfg),
                "--out", str(tmp_path / "v.json")]) != 0
    err = _one_line_error(capsys)
    assert "The config's data" in err and "data.max_documents changed" in err and "omit --config" in err


# ---------------------------------------------------------------- D: fit on an interrupted sweep

def test_fit_on_an_interrupted_sweep_says_to_resume_it_for_its_seed_repeats(own, tmp_path, capsys):
    """The config asks for noise_seeds: 2, but Ctrl-C came before the repeats: 'set sampler.noise_seeds >= 2' was wrong."""
    w = copy_of(own, tmp_path)
    runs = w / "store" / "runs"
    repeats = [p for p in runs.glob("*.json") if "~seed" in json.loads(p.read_text())["record"]["label"]]
    assert len(repeats) == 2
    for p in repeats:
        p.unlink()
    capsys.readouterr()
    assert run(["fit", "--store", str(w / "store"), "--out", str(tmp_path / "m.pkl")]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal's width
    line = out[out.index("seed noise"):]
    assert "sampler.noise_seeds: 2" in line and "2 of its 8 planned runs are not trained yet" in line
    assert "rerun the same `mixopt sweep` command" in line and "set sampler.noise_seeds >= 2" not in line
    # with its repeats trained, the same store measures it
    assert "seed noise: sd" in pipeline.noise_line(pipeline.open_model(own / "model.pkl").meta["noise"])


def test_fit_with_noise_seeds_but_nothing_to_repeat_says_what_to_repeat(own, tmp_path, capsys):
    """noise_seeds: 2 with no baselines and noise_mixtures: 0 repeats nothing: 'set sampler.noise_seeds >= 2' was wrong."""
    w = copy_of(own, tmp_path)
    for p in (w / "store" / "runs").glob("*.json"):
        if "~seed" in json.loads(p.read_text())["record"]["label"]:
            p.unlink()
    meta_path = w / "store" / "store.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["sampler"].update(baselines=[], noise_mixtures=0)
    meta["planned"] = [rid for rid in meta["planned"] if (w / "store" / "runs" / f"{rid}.json").exists()]
    meta_path.write_text(json.dumps(meta))
    capsys.readouterr()
    assert run(["fit", "--store", str(w / "store"), "--out", str(tmp_path / "m.pkl")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    line = out[out.index("seed noise"):]
    assert "sets sampler.noise_seeds: 2 but names no mixture to repeat" in line and "noise_mixtures >= 1" in line


# ---------------------------------------------------------------- E: propose after verify trained into the store

def test_propose_after_verify_runs_does_not_ask_for_a_refit_that_changes_nothing(own, tmp_path, capsys):
    """verify: runs join no fit, so a refit uses the same runs: the note asked for one anyway."""
    w = copy_of(own, tmp_path)
    assert run(["verify", str(w / "plan.yaml"), "--store", str(w / "store"), "--against", "uniform", "--seeds", "1",
                "--tokens", "4096", "--out", str(tmp_path / "v.json")]) == 0
    capsys.readouterr()
    argv = ["propose", str(w / "own.yaml"), "--model", str(w / "model.pkl"), "--store", str(w / "store"), "--no-projector"]
    assert run([*argv, "--out", str(tmp_path / "p.yaml")]) == 0
    assert "refit" not in capsys.readouterr().err
    snap = pipeline.open_store(w / "store")
    assert any(r.label.startswith("verify:") for r in snap.records)
    model = pipeline.open_model(w / "model.pkl")
    assert model.meta["store_fingerprint"] != snap.fingerprint and not pipeline.refit_differs(model, snap)
    old = pipeline.FittedModel(model.estimator, {k: v for k, v in model.meta.items() if k != "runs_fingerprint"})
    assert not pipeline.refit_differs(old, snap)  # a model saved before fit recorded runs_fingerprint
    # a sweep run more is a change a refit learns from
    next(p for p in (w / "store" / "runs").glob("*.json")
         if not json.loads(p.read_text())["record"]["label"].startswith("verify:")).unlink()
    assert pipeline.refit_differs(model, pipeline.open_store(w / "store"))
    assert run([*argv, "--out", str(tmp_path / "p2.yaml")]) == 0
    assert "refit (`mixopt fit --store" in capsys.readouterr().err


def test_a_plan_on_own_data_says_no_domain_came_from_the_embedded_corpus_and_score_asks_for_its_paths(own, tmp_path, capsys):
    """review finding 2: `score --base-mixture` read the embedded code/legal/prose for a plan made on the user's own
    files of those names."""
    plan = yaml.safe_load((own / "plan.yaml").read_text())
    assert plan["provenance"]["embedded_domains"] == []
    pool = own / "data" / "code.jsonl"
    assert run(["score", "--pool", f"p={pool}", "--target", str(own / "data" / "prose.jsonl"), "--json",
                "--base-mixture", str(own / "plan.yaml")]) == 2
    err = _one_line_error(capsys)
    assert "were trained on your own data" in err and "code" in err
    assert run(["score", "--pool", f"p={pool}", "--target", str(own / "data" / "prose.jsonl"), "--json",
                "--base-mixture", str(own / "plan.yaml"), "--config", str(own / "own.yaml")]) == 0
