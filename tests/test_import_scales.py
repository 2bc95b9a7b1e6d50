"""Import of runs at several scales: model_params / tokens columns, checkpoints, re-importable exports."""

import math

import numpy as np
import pytest

from mixopt.cli.main import run
from mixopt.errors import DataError
from mixopt.runs.store import RunStore
from mixopt.runs.table import records_table, store_table
from mixopt.runs.tables_io import export_regmix, import_regmix

REGMIX_TOKENS = 512 * 2048 * 1000


def _write(path, text):
    path.write_text(text)
    return path


def test_regmix_two_scales(regmix, tmp_path):
    store = RunStore(tmp_path / "s")
    for mix, met, n in [("train_mixture_1m.csv", "train_pile_loss_1m.csv", 1e6), ("test_mixture_1m.csv", "test_pile_loss_1m.csv", 1e6),
                        ("test_mixture_60m.csv", "test_pile_loss_60m.csv", 6e7)]:
        imported, rejected = import_regmix(store, regmix / mix, regmix / met, model_params=n, tokens=REGMIX_TOKENS, schedule="constant")
        assert rejected == [] and imported in (512, 256)
    table = store_table(store)
    assert len(table.run_ids) == 1024  # the same test mixtures at 1M and 60M are separate runs
    assert sorted(set(table.model_params)) == [1e6, 6e7] and set(table.tokens) == {REGMIX_TOKENS}
    assert table.scales() == [(1e6, REGMIX_TOKENS), (6e7, REGMIX_TOKENS)]
    big = table.rows(table.model_params == 6e7)
    small_test = table.rows((table.model_params == 1e6) & np.isin(table.run_ids, [r.run_id for r in store.records() if r.label.startswith("test_mixture_1m")]))
    assert len(big.run_ids) == len(small_test.run_ids) == 256
    # the same mixtures: every 60M row's weights appear among the 1M test rows
    key = lambda W: sorted(map(tuple, np.round(W, 9)))  # noqa: E731
    assert key(big.W) == key(small_test.W)
    loss = "metric/the_pile_pile_cc_val_loss"
    assert big.metrics[loss].mean() < small_test.metrics[loss].mean() - 0.5  # 60M models reach lower loss
    rec = next(r for r in store.records() if r.scale.get("model_params") == 6e7)
    assert rec.scale == {"model_params": 6e7, "total_params": None, "tokens": REGMIX_TOKENS, "schedule": "constant"}
    assert log_scale_ok(table)


def log_scale_ok(table):
    S = table.scale_matrix()
    return S.shape == (len(table.run_ids), 2) and np.allclose(np.exp(S[:, 0]), table.model_params)


def test_without_scale_columns_import_is_unchanged(tmp_path):
    mix = _write(tmp_path / "m.csv", "index,a,b\n1,0.5,0.5\n2,0.2,0.8\n")
    met = _write(tmp_path / "l.csv", "index,val/a\n1,3.0\n2,3.1\n")
    n, rejected = import_regmix(RunStore(tmp_path / "s"), mix, met)
    assert (n, rejected) == (2, [])
    table = store_table(RunStore(tmp_path / "s", create=False))
    assert np.isnan(table.model_params).all() and np.isnan(table.tokens).all() and not table.has_scale()
    assert all(r.curves == {} for r in RunStore(tmp_path / "s").records())


def test_checkpoints_share_an_index(tmp_path):
    mix = _write(tmp_path / "m.csv", "index,a,b\n1,0.5,0.5\n2,0.2,0.8\n3,0.2,0.8\n")
    met = _write(tmp_path / "l.csv", "index,model_params,tokens,val/a\n1,1e6,1000,4.0\n1,1e6,3000,3.0\n1,1e6,2000,3.5\n"
                                     "2,1e6,3000,3.2\n3,4e6,3000,2.9\n")
    store = RunStore(tmp_path / "s")
    n, rejected = import_regmix(store, mix, met)
    assert (n, rejected) == (3, [])  # indices 2 and 3 share weights but are separate runs (two model sizes)
    rec = next(r for r in store.records() if r.info["index"] == "1")
    assert rec.metrics == {"val/a": 3.0} and rec.scale["tokens"] == 3000
    assert rec.curves == {"val/a": {"1000": 4.0, "2000": 3.5, "3000": 3.0}}
    final = store_table(store)
    assert len(final.run_ids) == 3 and set(final.tokens) == {3000}
    ck = store_table(store, checkpoints=True)
    assert len(ck.run_ids) == 5 and ck.run_ids.count(rec.run_id) == 3
    rows = [i for i, r in enumerate(ck.run_ids) if r == rec.run_id]
    assert sorted(zip(ck.tokens[rows], ck.metrics["val/a"][rows])) == [(1000, 4.0), (2000, 3.5), (3000, 3.0)]
    assert sorted(set(ck.model_params)) == [1e6, 4e6]


@pytest.mark.parametrize("mix,met,match", [
    ("index,a,b\n1,0.5,0.5\n", "index,model_params,val/a\n1,-5,3.0\n", "model_params must be a positive"),
    ("index,a,b\n1,0.5,0.5\n", "index,model_params,val/a\n1,nan,3.0\n", "model_params must be a positive"),
    ("index,a,b\n1,0.5,0.5\n", "index,tokens,val/a\n1,0,3.0\n", "tokens must be a positive"),
    ("index,a,b\n1,0.5,0.5\n", "index,tokens,val/a\n1,abc,3.0\n", "tokens must be a positive number"),
    ("index,a,b\n1,0.5,0.5\n1,0.3,0.7\n", "index,tokens,val/a\n1,10,3.0\n1,20,2.0\n", "different weights"),
    ("index,a,b\n1,0.5,0.5\n", "index,val/a\n1,3.0\n1,2.0\n", "no tokens to tell checkpoints apart"),
    ("index,a,b\n1,0.5,0.5\n", "index,tokens,val/a\n1,10,3.0\n1,10,2.0\n", "same tokens"),
    ("index,a,b\n1,0.5,0.5\n", "index,model_params,tokens,val/a\n1,1e6,10,3.0\n1,2e6,20,2.0\n", "one index is one run"),
])
def test_bad_scale_rows_are_rejected_and_strict_fails(tmp_path, mix, met, match):
    m, y = _write(tmp_path / "m.csv", mix), _write(tmp_path / "l.csv", met)
    n, rejected = import_regmix(RunStore(tmp_path / "s"), m, y)
    assert n == 0 and len(rejected) == 1 and match in rejected[0] and "\n" not in rejected[0]
    with pytest.raises(DataError, match="--strict"):
        import_regmix(RunStore(tmp_path / "s2"), m, y, strict=True)
    assert RunStore(tmp_path / "s2").records() == []  # strict writes nothing
    assert run(["runs", "import", "--mixtures", str(m), "--metrics", str(y), "--store", str(tmp_path / "s3")]) == 2


def test_bad_default_scale_and_scale_columns_in_mixtures(tmp_path):
    m = _write(tmp_path / "m.csv", "index,a,b\n1,0.5,0.5\n")
    y = _write(tmp_path / "l.csv", "index,val/a\n1,3.0\n")
    with pytest.raises(DataError, match="--model-params"):
        import_regmix(RunStore(tmp_path / "s"), m, y, model_params=0)
    with pytest.raises(DataError, match="--tokens"):
        import_regmix(RunStore(tmp_path / "s"), m, y, tokens=math.nan)
    bad = _write(tmp_path / "mb.csv", "index,a,b,model_params\n1,0.5,0.5,1e6\n")
    with pytest.raises(DataError, match="metrics CSV"):
        import_regmix(RunStore(tmp_path / "s"), bad, y)


def test_cli_import_exit_codes_and_strict(tmp_path, capsys):
    m = _write(tmp_path / "m.csv", "index,a,b\n1,0.5,0.5\n2,0.7,0.7\n")
    y = _write(tmp_path / "l.csv", "index,val/a\n1,3.0\n2,3.1\n")
    bad_only = _write(tmp_path / "mb.csv", "index,a,b\n2,0.7,0.7\n")
    assert run(["runs", "import", "--mixtures", str(bad_only), "--metrics", str(y), "--store", str(tmp_path / "a")]) == 2
    assert "No runs were imported" in capsys.readouterr().err
    assert run(["runs", "import", "--mixtures", str(m), "--metrics", str(y), "--store", str(tmp_path / "b"), "--strict"]) == 2
    assert RunStore(tmp_path / "b").records() == []
    assert run(["runs", "import", "--mixtures", str(m), "--metrics", str(y), "--store", str(tmp_path / "c")]) == 0
    assert len(RunStore(tmp_path / "c").records()) == 1


def test_export_regmix_round_trip(tmp_path):
    mix = _write(tmp_path / "m.csv", "index,a,b\n1,0.5,0.5\n2,0.2,0.8\n3,0.9,0.1\n")
    met = _write(tmp_path / "l.csv", "index,tokens,val/a,val/b\n1,100,4.0,4.5\n1,200,3.0,3.5\n2,200,3.2,3.3\n3,200,3.1,2.0\n")
    src = RunStore(tmp_path / "s")
    import_regmix(src, mix, met, model_params=2e6)
    out = tmp_path / "exp" / "runs.csv"
    assert run(["runs", "export", "--store", str(tmp_path / "s"), "--out", str(out), "--format", "regmix", "--checkpoints"]) == 0
    mpath, ypath = out.with_name("runs.mixtures.csv"), out.with_name("runs.metrics.csv")
    assert run(["runs", "import", "--mixtures", str(mpath), "--metrics", str(ypath), "--store", str(tmp_path / "t"), "--strict"]) == 0
    a, b = records_table(src.records(), checkpoints=True), records_table(RunStore(tmp_path / "t").records(), checkpoints=True)

    def rows(t):
        return sorted((tuple(np.round(t.W[i], 12)), t.model_params[i], t.tokens[i], t.metrics["val/a"][i], t.metrics["val/b"][i])
                      for i in range(len(t.run_ids)))

    assert rows(a) == rows(b) and len(rows(a)) == 4
    # the final-rows export re-imports too
    mp2, yp2 = export_regmix(store_table(src), tmp_path / "final.csv")
    n, rejected = import_regmix(RunStore(tmp_path / "u"), mp2, yp2, strict=True)
    assert (n, rejected) == (3, [])
    assert run(["runs", "export", "--store", str(tmp_path / "s"), "--out", str(out), "--format", "xml"]) == 2
