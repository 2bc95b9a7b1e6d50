"""No silent data loss in a run store: imports of other domains or metrics, re-imports, a corrupt store.json, and
sweeps whose proxy changed are refused (one line, nothing written) or reported; the replaced config is kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mixopt.cli.main import run
from mixopt.errors import ConsistencyError, StoreError
from mixopt.runs.store import RunStore
from mixopt.runs.tables_io import import_regmix
from tests.conftest import _offline_env
from tests.test_cli_sweep import write_cfg

FAST = {"tokens": 4096, "checkpoints": [1.0], "threads": 1}  # 3 runs (natural, uniform, one sample) in a few seconds


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, Path]:
    """(config, store) of one tiny sweep over code, legal and prose; tests copy the store before changing it."""
    tmp = tmp_path_factory.mktemp("integrity")
    cfg = write_cfg(tmp, runs=1, proxy=FAST)
    store = tmp / "store"
    with pytest.MonkeyPatch.context() as mp:
        _offline_env(tmp_path_factory, mp)
        assert run(["sweep", str(cfg), "--store", str(store)]) == 0
    return cfg, store


def copy_store(swept, tmp_path: Path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(swept[1], dst, ignore=shutil.ignore_patterns("locks"))
    return dst


def state(store: Path) -> dict[str, bytes]:
    """Every file of the store but its lock files, by relative path."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file() and "locks" not in p.parts}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def ab_files(tmp_path: Path, metric: str = "loss", rows: str = "0,0.5,0.5\n1,0.3,0.7\n2,0.9,0.1\n") -> tuple[Path, Path]:
    mix = write(tmp_path / "mix.csv", "index,a,b\n" + rows)
    met = write(tmp_path / f"met-{metric}.csv", f"index,{metric}\n" + "".join(f"{r.split(',')[0]},3.{i}\n" for i, r in enumerate(rows.split())))
    return mix, met


def import_cmd(mix: Path, met: Path, store: Path) -> int:
    return run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--store", str(store)])


# ------------------------------------------------------------------ 1. imports must match the store's domains and metrics

def test_import_of_other_domains_into_a_swept_store_is_refused_and_writes_nothing(swept, tmp_path, capsys):
    store = copy_store(swept, tmp_path)
    before = state(store)
    mix, met = ab_files(tmp_path)
    capsys.readouterr()
    assert import_cmd(mix, met, store) == 2
    err = one_line_error(capsys)
    assert "['code', 'legal', 'prose']" in err and "['a', 'b']" in err and "new --store" in err
    assert state(store) == before  # store.json's domains untouched, no foreign record


def test_import_of_a_subset_of_the_stores_domains_is_refused(swept, tmp_path, capsys):
    store = copy_store(swept, tmp_path)
    before = state(store)
    mix = write(tmp_path / "sub.csv", "index,code,prose\n0,0.5,0.5\n1,0.2,0.8\n")
    met = write(tmp_path / "sub-met.csv", "index,val/code\n0,3.1\n1,3.0\n")
    capsys.readouterr()
    assert import_cmd(mix, met, store) == 2
    err = one_line_error(capsys)
    assert "missing: ['legal']" in err and "new --store" in err
    assert state(store) == before
    with pytest.raises(ConsistencyError):  # the library refuses too
        import_regmix(RunStore(store), mix, met)
    assert state(store) == before


def test_import_into_a_folder_of_records_checks_the_records_domains(tmp_path, capsys):
    store = tmp_path / "s"
    mix, met = ab_files(tmp_path)
    assert import_cmd(mix, met, store) == 0
    (store / "store.json").unlink()  # a folder of records: the records say which domains the store holds
    other = write(tmp_path / "abc.csv", "index,a,b,c\n0,0.2,0.3,0.5\n")
    assert import_cmd(other, write(tmp_path / "abc-met.csv", "index,loss\n0,3.0\n"), store) == 2
    assert "['a', 'b', 'c']" in one_line_error(capsys)
    assert len(list((store / "runs").glob("*.json"))) == 3 and not (store / "store.json").exists()


def test_import_whose_metrics_share_nothing_with_the_stores_runs_is_refused(tmp_path, capsys):
    store = tmp_path / "s"
    mix, met = ab_files(tmp_path)
    assert import_cmd(mix, met, store) == 0
    before = state(store)
    mix2, acc = ab_files(tmp_path, metric="acc", rows="5,0.1,0.9\n")
    capsys.readouterr()
    assert import_cmd(mix2, acc, store) == 2
    err = one_line_error(capsys)
    assert "none in common" in err and "loss" in err and "acc" in err and "new --store" in err
    assert state(store) == before


def test_import_into_a_new_store_records_its_domains_once(tmp_path):
    store = tmp_path / "s"
    mix, met = ab_files(tmp_path)
    assert import_cmd(mix, met, store) == 0
    meta = json.loads((store / "store.json").read_text())
    assert meta == {"domains": ["a", "b"]}
    swapped = write(tmp_path / "ba.csv", "index,b,a\n7,0.4,0.6\n")  # the same domains in another column order
    assert import_cmd(swapped, write(tmp_path / "ba-met.csv", "index,loss\n7,3.3\n"), store) == 0
    assert json.loads((store / "store.json").read_text()) == meta


# ------------------------------------------------------------------ 2. a re-import says what it added

def test_reimport_reports_new_and_already_held_runs(tmp_path, capsys):
    store = tmp_path / "s"
    mix, met = ab_files(tmp_path)
    assert import_cmd(mix, met, store) == 0
    assert "imported 3 new runs" in capsys.readouterr().out
    assert import_cmd(mix, met, store) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "imported 0 new runs" in out and "3 already there" in out
    more, more_met = ab_files(tmp_path, rows="0,0.5,0.5\n1,0.3,0.7\n2,0.9,0.1\n3,0.6,0.4\n")
    assert import_cmd(more, more_met, store) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "imported 1 new run " in out and "3 were already there" in out
    assert len(list((store / "runs").glob("*.json"))) == 4
    from mixopt.runs.tables_io import import_runs

    res = import_runs(RunStore(store), more, more_met)
    assert (res.added, res.existing) == (0, 4)
    assert import_regmix(RunStore(store), more, more_met) == (4, [])  # the older API still counts accepted runs


def test_the_same_runs_under_another_file_name_are_flagged(tmp_path, capsys):
    store = tmp_path / "s"
    mix, met = ab_files(tmp_path)
    assert import_cmd(mix, met, store) == 0
    renamed = tmp_path / "renamed.csv"
    shutil.copy(mix, renamed)
    capsys.readouterr()
    assert import_cmd(renamed, met, store) == 0
    captured = capsys.readouterr()
    assert "imported 0 new runs" in captured.out and "3 already there" in captured.out
    assert "3 row(s) have the weights, metrics and scale of a run the store already holds" in " ".join(captured.err.split())
    assert len(list((store / "runs").glob("*.json"))) == 3  # not twice: a copy would pass for a zero-noise seed repeat
    doubled = write(tmp_path / "doubled.csv", "index,a,b\n7,0.5,0.5\n8,0.5,0.5\n")
    doubled_met = write(tmp_path / "doubled_met.csv", "index,loss\n7,2.5\n8,2.5\n")  # one run listed twice in one file
    assert import_cmd(doubled, doubled_met, store) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "imported 1 new run " in out and len(list((store / "runs").glob("*.json"))) == 4


# ------------------------------------------------------------------ 3. a corrupt store.json is an error, never discarded

@pytest.mark.parametrize("garbage", ["garbage{", "[1, 2]", ""])
def test_corrupt_store_json_is_a_one_line_error_and_is_kept(swept, tmp_path, capsys, garbage):
    cfg, _ = swept
    store = copy_store(swept, tmp_path)
    (store / "store.json").write_text(garbage)
    before = state(store)
    mix = write(tmp_path / "m.csv", "index,code,legal,prose\n0,0.2,0.3,0.5\n")
    met = write(tmp_path / "l.csv", "index,val/code\n0,3.0\n")
    commands = [["runs", "list", "--store", str(store)], ["runs", "show", "natural", "--store", str(store)],
                ["runs", "export", "--store", str(store), "--out", str(tmp_path / "x.csv")],
                ["fit", "--store", str(store), "--out", str(tmp_path / "m.pkl")],
                ["sweep", str(cfg), "--store", str(store)],
                ["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--store", str(store)]]
    capsys.readouterr()
    for argv in commands:
        assert run(argv) == 2, argv
        err = one_line_error(capsys)
        assert f"{store / 'store.json'} is corrupt" in err and "Restore it" in err and "move it away" in err, (argv, err)
        assert state(store) == before, argv  # not rewritten, nothing added
    with pytest.raises(StoreError):
        RunStore(store).meta()


def test_a_folder_of_records_without_store_json_still_reads_and_resumes(swept, tmp_path, capsys):
    cfg, _ = swept
    store = copy_store(swept, tmp_path)
    (store / "store.json").unlink()  # e.g. a corrupt one moved away, as the error advises
    runs_before = state(store)
    assert RunStore(store).meta() == {}
    assert run(["runs", "list", "--store", str(store)]) == 0
    # other data is still kept out: the records name the data they were trained on
    other = write_cfg(tmp_path, runs=1, proxy=FAST, data={"max_documents": 40})
    capsys.readouterr()
    assert run(["sweep", str(other), "--store", str(store)]) == 2
    assert "holds runs on other data" in one_line_error(capsys)
    assert state(store) == runs_before
    # so is another proxy: the records hold the proxy they were trained with
    changed = write_cfg(tmp_path, runs=1, proxy={**FAST, "lr": 0.004})
    assert run(["sweep", str(changed), "--store", str(store)]) == 2
    err = one_line_error(capsys)
    assert "no store.json" in err and "proxy.lr 0.003 -> 0.004" in err and "new --store" in err, err
    assert state(store) == runs_before
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0  # the same config resumes and writes a new store.json
    assert "0 trained now" in capsys.readouterr().out
    assert json.loads((store / "store.json").read_text())["config"]["runs"] == 1


# ------------------------------------------------------------------ 4. a sweep with another proxy is refused; the config is kept

@pytest.mark.parametrize("proxy,field", [({**FAST, "lr": 0.004}, "proxy.lr 0.003 -> 0.004"),
                                         ({**FAST, "n_layer": 2}, "proxy.n_layer 1 -> 2"),
                                         ({**FAST, "threads": None}, "proxy.threads 1 -> null")])
def test_sweep_with_another_proxy_into_a_store_is_refused(swept, tmp_path, capsys, proxy, field, monkeypatch):
    store = copy_store(swept, tmp_path)
    before = state(store)
    changed = write_cfg(tmp_path, runs=1, proxy=proxy)
    monkeypatch.setattr("mixopt.proxy.train.train_proxy", lambda *a, **k: pytest.fail("trained into a store of another proxy"))
    capsys.readouterr()
    assert run(["sweep", str(changed), "--store", str(store)]) == 2
    err = one_line_error(capsys)
    assert field in err and "new --store" in err and "store.json" in err
    assert state(store) == before  # the stored config is not overwritten, no run added


def test_resume_with_more_runs_keeps_the_replaced_config(swept, tmp_path, capsys):
    cfg, _ = swept
    store = copy_store(swept, tmp_path)
    old_meta = json.loads((store / "store.json").read_text())
    more = write_cfg(tmp_path, runs=2, proxy=FAST)
    capsys.readouterr()
    assert run(["sweep", str(more), "--store", str(store)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "store config updated (runs 1 -> 2)" in out and "config_history" in out and "1 trained now" in out
    meta = json.loads((store / "store.json").read_text())
    assert meta["config"]["runs"] == 2
    assert [h["config"] for h in meta["config_history"]] == [old_meta["config"]]
    assert meta["config_history"][0]["changes"] == ["runs 1 -> 2"]
    assert run(["sweep", str(more), "--store", str(store)]) == 0  # the same config again: nothing to record
    assert "store config updated" not in capsys.readouterr().out
    assert len(json.loads((store / "store.json").read_text())["config_history"]) == 1
    assert run(["sweep", str(cfg), "--store", str(store)]) == 0  # back to the first config: the second one is kept too
    hist = json.loads((store / "store.json").read_text())["config_history"]
    assert [h["config"]["runs"] for h in hist] == [1, 2]


def test_sweep_over_other_domains_into_an_imported_store_is_refused(tmp_path, capsys):
    store = tmp_path / "s"
    mix, met = ab_files(tmp_path)
    assert import_cmd(mix, met, store) == 0
    before = state(store)
    capsys.readouterr()
    assert run(["sweep", str(write_cfg(tmp_path, runs=1, proxy=FAST)), "--store", str(store)]) == 2
    err = one_line_error(capsys)
    assert "['a', 'b']" in err and "['code', 'legal', 'prose']" in err and "new --store" in err
    assert state(store) == before


def test_which_config_changes_are_a_change_of_proxy():
    from mixopt.config import config_from_dict
    from mixopt.runs.driver import config_history, proxy_differences

    base = config_from_dict({"proxy": {"n_layer": 1}, "sizes": [{"name": "small"}]}).model_dump(mode="json")

    def with_(**over) -> dict:
        body = json.loads(json.dumps(base))
        for key, value in over.items():
            body[key] = value if not isinstance(value, dict) else {**body[key], **value}
        return config_from_dict(body).model_dump(mode="json")

    assert proxy_differences(base, base) == []
    legit = with_(runs=40, seed=3, workers=4, sampler={"noise_seeds": 1}, propose={"max_epochs": 2.0},
                  sizes=[{"name": "small", "runs": 50}, {"name": "big", "n_layer": 4, "runs": 2}],  # a scale added
                  proxy={"cuda_graphs": False})  # how a step executes, not in any run id
    assert proxy_differences(base, legit) == []
    assert proxy_differences(base, with_(proxy={"schedule": "wsd"})) == ["proxy.schedule \"cosine\" -> \"wsd\""]
    assert proxy_differences(base, with_(sizes=[{"name": "small", "lr": 0.01}])) == ["sizes[small].lr null -> 0.01"]
    old = json.loads(json.dumps(base))
    del old["proxy"]["decay_fraction"]  # a store written before the field existed: it counts at its default
    assert proxy_differences(old, base) == []
    assert proxy_differences(old, {**base, "proxy": {**base["proxy"], "decay_fraction": 0.5}}) == ["proxy.decay_fraction 0.2 -> 0.5"]
    changes, history = config_history({"config": base}, legit)
    assert "runs 16 -> 40" in changes and history[0]["config"] == base
    assert config_history({"config": base}, base) == ([], None) and config_history({}, base) == ([], None)
