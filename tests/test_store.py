import json

import numpy as np
import pytest

from mixopt.errors import DataError, MixtureError, StoreError
from mixopt.runs.record import RunRecord, RunSpec
from mixopt.runs.store import RunStore
from mixopt.runs.table import store_table
from mixopt.runs.tables_io import export_csv, import_regmix, read_mixtures_for_model


def _rec(i, status="ok"):
    return RunRecord(run_id=f"r{i:04d}", mixture={"a": 0.25 * (i % 4) / 3 + 0.5, "b": 0.5 - 0.25 * (i % 4) / 3}, status=status,
                     metrics={"val/a": 3.0 + 0.1 * i, "val/b": 2.0 - 0.05 * i} if status == "ok" else {}, reason="" if status == "ok" else "diverged")


def test_run_id_is_content_hash():
    a = RunSpec({"a": 0.5, "b": 0.5}, {"tokens": 10}, "fp", 0, label="x")
    b = RunSpec({"b": 0.5, "a": 0.5}, {"tokens": 10}, "fp", 0, label="y")
    c = RunSpec({"a": 0.5, "b": 0.5}, {"tokens": 10}, "fp", 1)
    assert a.run_id == b.run_id != c.run_id


def test_put_get_and_never_overwrite(tmp_path):
    store = RunStore(tmp_path / "s")
    store.put(_rec(1))
    again = _rec(1)
    again.metrics = {"val/a": 99.0}
    store.put(again)
    assert store.get("r0001").metrics["val/a"] == pytest.approx(3.1)


def test_corrupt_record_is_skipped_by_readers_and_quarantined_by_a_writer(tmp_path):
    store = RunStore(tmp_path / "s")
    store.put(_rec(1))
    path = store.path_of("r0001")
    path.write_text(path.read_text()[:40])  # truncated write
    with pytest.warns(UserWarning, match="r0001.json is corrupt .* left in place"):
        assert store.get("r0001") is None
    assert path.is_file() and not (tmp_path / "s" / "quarantine").exists()  # a read moves nothing
    edited = _rec(2)
    store.put(edited)
    body = json.loads(store.path_of("r0002").read_text())
    body["record"]["metrics"]["val/a"] = 0.0  # tampered: checksum no longer matches
    store.path_of("r0002").write_text(json.dumps(body))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        assert store.get("r0002") is None
    store.put(_rec(3))
    with pytest.warns(UserWarning, match="Corrupt run record r0001.json .* moved to .*trained again in this sweep"):
        records, held = store.scan(planned={"r0001"})  # the writer (a sweep) moves corrupt records aside
    assert [r.run_id for r in records] == ["r0003"] and held == {"r0003"}
    assert sorted(p.name.split(".json")[0] for p in (tmp_path / "s" / "quarantine").iterdir()) == ["r0001", "r0002"]


def test_failed_runs_excluded_with_warning_and_csv_export(tmp_path):
    store = RunStore(tmp_path / "s")
    for i in range(5):
        store.put(_rec(i))
    store.put(_rec(9, status="failed"))
    with pytest.warns(UserWarning, match="excluded"):
        table = store_table(store)
    assert len(table.run_ids) == 5 and table.domains == ["a", "b"]
    assert np.allclose(table.target("mean:all-domains"), (table.metrics["val/a"] + table.metrics["val/b"]) / 2)
    assert np.allclose(table.target("wmean:val/a=1,val/b=0"), table.metrics["val/a"])
    out = export_csv(table, tmp_path / "runs.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == "run_id,a,b,val/a,val/b" and len(lines) == 6


def test_claim_is_exclusive(tmp_path):
    store = RunStore(tmp_path / "s")
    with store.claim("x", wait=False) as got:
        assert got
        import subprocess
        import sys

        code = (
            "from mixopt.runs.store import RunStore\n"
            f"s = RunStore({str(tmp_path / 's')!r})\n"
            "with s.claim('x', wait=False) as g: print(g)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        assert out == "False"


def test_read_only_store_fails_early(tmp_path):
    import os

    root = tmp_path / "ro"
    store = RunStore(root)
    store.put(_rec(1))
    os.chmod(root / "runs", 0o500)
    try:
        if os.access(root / "runs", os.W_OK):
            pytest.skip("running as a user that ignores permissions")
        with pytest.raises(StoreError, match="not writable"):
            store.check_writable()
    finally:
        os.chmod(root / "runs", 0o700)
    assert store.get("r0001") is not None


def test_import_regmix_tables(regmix, tmp_path):
    store = RunStore(tmp_path / "s")
    n, rejected = import_regmix(store, regmix / "train_mixture_1m.csv", regmix / "train_pile_loss_1m.csv")
    assert n == 512 and rejected == []
    table = store_table(store)
    assert table.W.shape == (512, 17)
    assert np.allclose(table.W.sum(1), 1)
    assert "metric/the_pile_pile_cc_val_loss" in table.metrics
    # importing again adds nothing
    assert import_regmix(store, regmix / "train_mixture_1m.csv", regmix / "train_pile_loss_1m.csv")[0] == 512
    assert len(store.records()) == 512


def test_import_rejects_bad_rows(tmp_path):
    mix = tmp_path / "m.csv"
    mix.write_text("index,a,b\n1,0.5,0.5\n2,0.7,0.7\n3,-0.1,1.1\n4,0.2,0.8\n5,nan,1\n")
    met = tmp_path / "l.csv"
    met.write_text("index,loss,\n1,3.2,\n2,3.0,\n3,3.1,\n4,nan,\n5,2.0,\n")
    n, rejected = import_regmix(RunStore(tmp_path / "s"), mix, met)
    assert n == 1
    text = " | ".join(rejected)
    assert "index=2" in text and "sum" in text
    assert "index=3" in text and "negative" in text
    assert "index=4" in text and "NaN" in text
    assert "index=5" in text


@pytest.mark.parametrize("content,match", [("", "empty"), ("a,b\n0.5,0.5\n", "index"), ("index,a,b\n", "no rows")])
def test_bad_csvs(tmp_path, content, match):
    p = tmp_path / "m.csv"
    p.write_text(content)
    with pytest.raises(DataError, match=match):
        read_mixtures_for_model(p, ["a", "b"])


def test_prediction_csv_must_match_domains(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("index,a,c\n1,0.5,0.5\n")
    with pytest.raises(MixtureError, match="Missing: \\['b'\\]; extra: \\['c'\\]"):
        read_mixtures_for_model(p, ["a", "b"])
