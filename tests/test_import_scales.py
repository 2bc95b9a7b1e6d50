"""Import of runs at several scales: model_params / tokens columns, checkpoints, re-importable exports."""

import math

import numpy as np
import pytest

from mixopt.cli.main import run
from mixopt.errors import DataError
from mixopt.runs.store import RunStore
from mixopt.runs.table import records_table, store_table
from mixopt.runs.tables_io import export_regmix, import_regmix, import_runs

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
    for name in ("", "cosine decay"):
        with pytest.raises(DataError, match="--schedule must be one word"):
            import_regmix(RunStore(tmp_path / "u"), m, y, model_params=1e6, schedule=name)
    assert not list((tmp_path / "u").glob("**/*.json"))
    # Any trainer's schedule name is kept verbatim: it is part of the run's id, so a re-import finds its runs.
    assert import_regmix(RunStore(tmp_path / "t"), m, y, model_params=1e6, schedule="inverse_sqrt")[0] == 1
    assert import_runs(RunStore(tmp_path / "t"), m, y, model_params=1e6, schedule="inverse_sqrt").existing == 1
    assert RunStore(tmp_path / "t").records()[0].scale["schedule"] == "inverse_sqrt"


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


# ------------------------------------------------------------------ review 29: runs export / import / show

def _mixed_store(root):
    """A store as `verify` and pool-value runs leave it: 3 sweep runs (one two-phase, one without val/prose), 2 verify:
    runs at the plan's budget, 1 pool: run on a pseudo-domain, 1 failed run."""
    from mixopt.runs.record import RunRecord

    store = RunStore(root)
    store.update_meta(domains=["code", "prose"], data_fingerprint="d")
    put = store.put
    put(RunRecord(run_id="s1", mixture={"code": 0.3, "prose": 0.7}, status="ok", metrics={"val/code": 3.1, "val/prose": 3.2},
                  label="sample-1", scale={"tokens": 4096}))
    put(RunRecord(run_id="s2", mixture={"code": 0.6, "prose": 0.4}, status="ok", metrics={"val/code": 3.0},
                  label="sample-2", scale={"tokens": 4096}))
    put(RunRecord(run_id="s3", mixture={"code": 0.5, "prose": 0.5}, status="ok", metrics={"val/code": 3.05, "val/prose": 3.3},
                  label="twophase-0", phases=[(0.0, {"code": 0.5, "prose": 0.5}), (0.5, {"code": 0.9, "prose": 0.1})],
                  scale={"tokens": 4096}))
    for seed in (0, 1):
        put(RunRecord(run_id=f"v{seed}", mixture={"code": 0.4, "prose": 0.6}, status="ok", seed=seed, label="verify:plan",
                      metrics={"val/code": 2.5, "val/prose": 2.6}, scale={"tokens": 16384}))
    put(RunRecord(run_id="p1", mixture={"code.hq": 1.0}, status="ok", label="pool:code.hq@1x", metrics={"target/code": 3.4}))
    put(RunRecord(run_id="f1", mixture={"code": 1.0}, status="failed", reason="diverged", label="sample-3"))
    return root


def test_runs_export_writes_the_sweep_runs_and_says_what_it_left_out(tmp_path, capsys):
    """review 29 #2, #11: verify:/pool: runs came back from export + import as ordinary sweep runs at another scale."""
    store = _mixed_store(tmp_path / "s")
    out = tmp_path / "e.csv"
    assert run(["runs", "export", "--store", str(store), "--out", str(out), "--format", "regmix"]) == 0
    cap = capsys.readouterr()
    said = " ".join(cap.out.split())
    assert said.startswith("3 runs") and "2 verify: runs left out (--all exports them)" in said
    assert "1 pool: run left out" in said and "1 failed or non-finite run left out" in said
    mix, met = out.with_name("e.mixtures.csv"), out.with_name("e.metrics.csv")
    assert mix.read_text().splitlines()[0] == "index,code,prose"  # no pool pseudo-domain column
    assert sorted(line.split(",")[0] for line in met.read_text().splitlines()[1:]) == ["s1", "s2", "s3"]
    assert "1 two-phase run written by whole-run token shares" in " ".join(cap.err.split())  # #11: said, not silent
    assert run(["runs", "export", "--store", str(store), "--out", str(tmp_path / "all.csv"), "--all"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert said.startswith("6 runs") and "verify: run" not in said and "1 failed or non-finite run left out" in said
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 7


def test_unmeasured_metric_round_trips_as_an_empty_cell(tmp_path, capsys):
    """review 29 #3: export wrote `nan` for a metric a run never measured, and import then rejected the whole run."""
    m1, t1 = _write(tmp_path / "mA.csv", "index,code,prose\n1,0.3,0.7\n2,0.6,0.4\n"), _write(tmp_path / "tA.csv", "index,val/code,val/prose\n1,3.1,3.2\n2,3.0,3.3\n")
    m2, t2 = _write(tmp_path / "mB.csv", "index,code,prose\n1,0.5,0.5\n"), _write(tmp_path / "tB.csv", "index,val/code\n1,3.05\n")
    s, s2 = tmp_path / "s", tmp_path / "s2"
    for m, t in ((m1, t1), (m2, t2)):
        assert run(["runs", "import", "--mixtures", str(m), "--metrics", str(t), "--store", str(s)]) == 0
    e, f = tmp_path / "e.csv", tmp_path / "f.csv"
    assert run(["runs", "export", "--store", str(s), "--out", str(e), "--format", "regmix"]) == 0
    text = e.with_name("e.metrics.csv").read_text()
    assert "nan" not in text and any(line.endswith(",3.05,") for line in text.splitlines())
    assert run(["runs", "import", "--mixtures", str(e.with_name("e.mixtures.csv")), "--metrics", str(e.with_name("e.metrics.csv")),
                "--store", str(s2), "--strict"]) == 0
    assert "1 of the imported runs did not measure every metric" in " ".join(capsys.readouterr().err.split())
    assert run(["runs", "export", "--store", str(s2), "--out", str(f), "--format", "regmix"]) == 0

    def rows(path):  # the runs, whatever their ids
        return sorted(line.split(",", 1)[1] for line in path.read_text().splitlines()[1:])

    assert rows(f.with_name("f.metrics.csv")) == rows(e.with_name("e.metrics.csv"))
    assert rows(f.with_name("f.mixtures.csv")) == rows(e.with_name("e.mixtures.csv"))
    lone = next(r for r in RunStore(s2).records() if len(r.metrics) == 1)
    assert lone.metrics == {"val/code": 3.05}
    # a checkpoint that misses one metric: an empty cell too, the run kept, its curve without that point
    mix = _write(tmp_path / "m.csv", "index,a,b\n1,0.5,0.5\n")
    met = _write(tmp_path / "l.csv", "index,tokens,val/a,val/b\n1,100,4.0,\n1,200,3.0,3.5\n")
    n, rejected = import_regmix(RunStore(tmp_path / "c"), mix, met)
    assert (n, rejected) == (1, [])
    rec = RunStore(tmp_path / "c").records()[0]
    assert rec.curves == {"val/a": {"100": 4.0, "200": 3.0}, "val/b": {"200": 3.5}} and rec.metrics == {"val/a": 3.0, "val/b": 3.5}
    out = tmp_path / "ck.csv"
    assert run(["runs", "export", "--store", str(tmp_path / "c"), "--out", str(out), "--format", "regmix", "--checkpoints"]) == 0
    assert out.with_name("ck.metrics.csv").read_text().splitlines()[1:] == [f"{rec.run_id},,100,4.0,", f"{rec.run_id},,200,3.0,3.5"]
    # a literal nan is still a rejected row, and a run that measured nothing is too
    bad = _write(tmp_path / "lb.csv", "index,val/a,val/b\n1,nan,3.0\n")
    assert "NaN/inf metric val/a" in import_regmix(RunStore(tmp_path / "d"), mix, bad)[1][0]
    empty = _write(tmp_path / "le.csv", "index,val/a,val/b\n1,,\n")
    assert "no metric measured" in import_regmix(RunStore(tmp_path / "d"), mix, empty)[1][0]


def test_runs_export_never_writes_over_its_store_or_under_a_file(tmp_path, capsys):
    """review 29 #6: `--out STORE/store.json` overwrote the store's metadata; a path under a file was a traceback."""
    store = _mixed_store(tmp_path / "s")
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    a_file = _write(tmp_path / "a.csv", "x\n")
    cases = [([str(store / "store.json")], "inside the run store"),
             ([str(store / "x.csv"), "--format", "regmix"], "inside the run store"),
             ([str(store)], "is the --store folder this command reads"),
             ([str(a_file / "x.csv")], "is a file, not a folder"),
             ([str(tmp_path)], "is a folder; give a file path"),
             ([str(a_file / "x.csv"), "--format", "regmix"], "is a file, not a folder")]
    for args, match in cases:
        assert run(["runs", "export", "--store", str(store), "--out", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and match in err and "\n" not in err, (args, err)
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before
    assert a_file.read_text() == "x\n"


def test_refused_import_into_a_new_store_leaves_nothing_behind(tmp_path, capsys):
    """review 29 #10: an import whose rows were all rejected left an empty store (runs/, locks/) behind."""
    m = _write(tmp_path / "m.csv", "index,code,prose\n1,0.3,0.9\n")
    t = _write(tmp_path / "t.csv", "index,val/code\n1,3.0\n")
    for store in (tmp_path / "new", tmp_path / "deep" / "er" / "new"):
        assert run(["runs", "import", "--mixtures", str(m), "--metrics", str(t), "--store", str(store)]) == 2
        assert "No runs were imported" in capsys.readouterr().err
        assert not store.exists() and not (tmp_path / "deep").exists()
    # an existing store keeps its folders
    (tmp_path / "old").mkdir()
    assert run(["runs", "import", "--mixtures", str(m), "--metrics", str(t), "--store", str(tmp_path / "old")]) == 2
    assert (tmp_path / "old").is_dir()


def test_runs_show_a_label_of_several_runs_lists_them(tmp_path, capsys):
    """review 29 #12: `runs show verify:plan` asked for "more characters" of an id prefix."""
    store = _mixed_store(tmp_path / "s")
    assert run(["runs", "show", "verify:plan", "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert "label 'verify:plan' matches 2 runs" in err and "v0 (verify:plan, seed 0" in err and "v1 (verify:plan, seed 1" in err
    assert "Pass one of those run ids" in err and "more characters" not in err and "\n" not in err
    assert run(["runs", "show", "v1", "--store", str(store)]) == 0
    assert '"run_id": "v1"' in capsys.readouterr().out


def test_metrics_rows_without_a_mixture_are_rejected_by_name(tmp_path):
    m = _write(tmp_path / "m.csv", "index,a,b,c\n0,0.5,0.5,0\n1,0.2,0.8,0\n5,0.33,0.33,0.33\n")
    y = _write(tmp_path / "l.csv", "index,val/a\n0,3.0\n1,3.1\n01,3.2\n99,3.3\n5,3.4\n")
    res = import_runs(RunStore(tmp_path / "s"), m, y)
    # 0.33 x 3 sums to 0.99 in floats a hair above 0.01 away: RegMix's 3-decimal rounding, accepted
    assert res.added == 3
    assert sorted(res.rejected) == ["index=01: in l.csv but not in m.csv", "index=99: in l.csv but not in m.csv"]
    with pytest.raises(DataError, match="index=01: in l.csv but not in m.csv"):
        import_runs(RunStore(tmp_path / "t"), m, y, strict=True)


def test_fit_refuses_runs_of_several_scales_some_not_placed(tmp_path, capsys):
    """Two imports at --model-params 1e6 and 6e7 without --tokens: fit used to pool them as one scale (Spearman 0.17 on
    RegMix's tables, exit 0); now one line that says how to place them."""
    rows = range(10)
    mix = _write(tmp_path / "m.csv", "index,a,b\n" + "".join(f"{i},{i / 9:.4f},{1 - i / 9:.4f}\n" for i in rows))
    small = _write(tmp_path / "l1.csv", "index,val/a\n" + "".join(f"{i},{3 + i / 90:.4f}\n" for i in rows))
    big = _write(tmp_path / "l2.csv", "index,val/a\n" + "".join(f"{i},{2 + i / 90:.4f}\n" for i in rows))
    store = tmp_path / "s"
    assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(small), "--model-params", "1e6", "--store", str(store)]) == 0
    assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(big), "--model-params", "6e7", "--store", str(store)]) == 0
    capsys.readouterr()
    assert run(["fit", "--store", str(store), "--target", "val/a", "--out", str(tmp_path / "m.pkl")]) == 2
    err = capsys.readouterr().err
    assert "differ in scale but 20 without tokens" in err and "--tokens" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.pkl").exists()


def test_imported_runs_with_tokens_give_the_plan_its_default_budget(tmp_path, capsys):
    """Imported runs that all record one token count stand in for the sweep config's proxy tokens: the plan's default
    budget is 4x that (it was 1 token, exported as one training iteration)."""
    mix = _write(tmp_path / "m.csv", "index,a,b\n" + "".join(f"{i},{i / 7:.4f},{1 - i / 7:.4f}\n" for i in range(8)))
    met = _write(tmp_path / "l.csv", "index,val/a\n" + "".join(f"{i},{3 + (i / 7 - 0.7) ** 2:.4f}\n" for i in range(8)))
    store = tmp_path / "s"
    assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--tokens", "1e8", "--store", str(store)]) == 0
    assert run(["fit", "--store", str(store), "--target", "val/a", "--folds", "2", "--out", str(tmp_path / "m.pkl")]) == 0
    search = _write(tmp_path / "search.yaml", "propose: {n_candidates: 2000, top_k: 10, upsample: false}\n")
    plan = tmp_path / "plan.yaml"
    assert run(["propose", str(search), "--model", str(tmp_path / "m.pkl"), "--store", str(store), "--no-projector",
                "--out", str(plan)]) == 0
    from mixopt.plan import load_plan
    assert load_plan(plan).budget_tokens == 4e8


def test_a_missing_domain_column_or_percentages_refuse_the_whole_file(tmp_path, capsys):
    """Rows that happen to sum to 1 without a domain's column are a biased subset: the file is refused, not filtered."""
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), size=12)
    W[:3] = [[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.9, 0.1, 0.0]]  # three rows give c nothing: they still sum to 1
    met = _write(tmp_path / "l.csv", "index,val/a\n" + "".join(f"{i},3.0\n" for i in range(12)))
    no_c = _write(tmp_path / "no_c.csv", "index,a,b\n" + "".join(f"{i},{w[0]:.4f},{w[1]:.4f}\n" for i, w in enumerate(W)))
    store = tmp_path / "s"
    capsys.readouterr()
    assert run(["runs", "import", "--mixtures", str(no_c), "--metrics", str(met), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "of 12 rows have weights summing below 1" in err and "column may be missing" in err
    assert len(err.strip().splitlines()) == 1 and not (store / "runs").exists()
    small = _write(tmp_path / "small_c.csv", "index,a,b\n" + "".join(  # c is a small domain: only 2 rows gave it anything
        f"{i},{0.5 if i > 1 else 0.49},{0.5 if i > 1 else 0.49}\n" for i in range(12)))
    assert run(["runs", "import", "--mixtures", str(small), "--metrics", str(met), "--store", str(store)]) == 2
    assert "2 of 12 rows have weights summing below 1" in capsys.readouterr().err and not (store / "runs").exists()
    pct = _write(tmp_path / "pct.csv", "index,a,b,c\n" + "".join(f"{i},{100 * w[0]:.2f},{100 * w[1]:.2f},{100 - 100 * w[0] - 100 * w[1]:.2f}\n"
                                                            for i, w in enumerate(W)))
    assert run(["runs", "import", "--mixtures", str(pct), "--metrics", str(met), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "look like percentages" in err and len(err.strip().splitlines()) == 1
    one_off = _write(tmp_path / "one.csv", "index,a,b,c\n0,0.5,0.2,0.2\n" + "".join(
        f"{i},{w[0]:.6f},{w[1]:.6f},{1 - round(w[0], 6) - round(w[1], 6):.6f}\n" for i, w in enumerate(W) if i))
    assert run(["runs", "import", "--mixtures", str(one_off), "--metrics", str(met), "--store", str(store)]) == 0  # one odd row: rejected alone
    assert "index=0" in capsys.readouterr().err


def test_a_folder_for_a_csv_is_named_as_a_folder(tmp_path, capsys):
    folder = tmp_path / "tables"
    folder.mkdir()
    _write(folder / "mix.csv", "index,a,b\n0,0.5,0.5\n")
    assert run(["runs", "import", "--mixtures", str(folder), "--metrics", str(folder / "x.csv"), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a CSV file" in err and "mix.csv" in err


def test_copies_with_rounded_metrics_are_named_as_such_by_fit(tmp_path, capsys):
    """A file re-imported under another name with its metrics rounded is not caught as the same runs (its values
    differ), so fit reads near-zero seed noise from the pairs: it says they look like copies."""
    mix = _write(tmp_path / "m.csv", "index,a,b\n" + "".join(f"{i},{i / 9:.4f},{1 - i / 9:.4f}\n" for i in range(10)))
    met = _write(tmp_path / "l.csv", "index,val/a\n" + "".join(f"{i},{3 + (i / 9 - 0.6) ** 2 + 1e-7 * i:.7f}\n" for i in range(10)))
    rounded = _write(tmp_path / "l4.csv", "index,val/a\n" + "".join(f"{i},{3 + (i / 9 - 0.6) ** 2 + 1e-7 * i:.4f}\n" for i in range(10)))
    store = tmp_path / "s"
    assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--store", str(store)]) == 0
    mix2 = _write(tmp_path / "m_copy.csv", mix.read_text())
    assert run(["runs", "import", "--mixtures", str(mix2), "--metrics", str(rounded), "--store", str(store)]) == 0
    capsys.readouterr()
    assert run(["fit", "--store", str(store), "--target", "val/a", "--folds", "2", "--out", str(tmp_path / "m.pkl")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "copies of one run" in out


def test_two_unscaled_files_of_the_same_mixtures_that_differ_one_way_are_named(tmp_path, capsys):
    """Neither --model-params nor --tokens: two sizes cannot be told from one scale by the values alone, but the same
    mixtures lower in one file every time can; seeds scatter both ways and give no warning."""
    rng = np.random.default_rng(0)
    rows = range(10)
    mix = _write(tmp_path / "m.csv", "index,a,b\n" + "".join(f"{i},{i / 9:.4f},{1 - i / 9:.4f}\n" for i in rows))
    base = [3 + (i / 9 - 0.6) ** 2 for i in rows]
    for name, loss in (("small", base), ("big", [v - 0.5 + rng.normal(0, 0.01) for v in base]),
                       ("seed2", [v + rng.normal(0, 0.01) for v in base])):
        _write(tmp_path / f"{name}.csv", "index,val/a\n" + "".join(f"{i},{v:.6f}\n" for i, v in zip(rows, loss)))
    for other, warned in (("seed2", False), ("big", True)):
        store = tmp_path / f"s-{other}"
        for name in ("small", other):
            copy = _write(tmp_path / f"m-{name}.csv", mix.read_text())  # one mixtures file per import, as users keep them
            assert run(["runs", "import", "--mixtures", str(copy), "--metrics", str(tmp_path / f"{name}.csv"),
                        "--store", str(store)]) == 0
        capsys.readouterr()
        assert run(["fit", "--store", str(store), "--target", "val/a", "--folds", "2", "--out", str(tmp_path / f"{other}.pkl")]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert ("differ one way (m-big.csv lower in 10 of 10" in out) == warned, out


def test_two_unscaled_files_without_shared_mixtures_that_sit_apart_are_named(tmp_path, capsys):
    """stop 35's left item: two sizes imported with no scale flags and no mixtures in common pooled silently. The gap
    beyond what the mixtures explain names them; a second file of the same scale (seeds, other mixtures) does not."""
    rng = np.random.default_rng(1)
    for other, shift, warned in (("same", 0.0, False), ("big", -0.5, True)):
        store = tmp_path / f"s-{other}"
        for name, off in (("small", 0.0), (other, shift)):
            W = rng.dirichlet(np.ones(3), size=12)
            loss = 3 - W @ np.array([0.6, 0.2, 0.4]) + off + rng.normal(0, 0.03, 12)
            mix = _write(tmp_path / f"m-{name}.csv", "index,a,b,c\n" + "".join(f"{i},{','.join(f'{w:.6f}' for w in row)}\n" for i, row in enumerate(W)))
            met = _write(tmp_path / f"l-{name}.csv", "index,val/a\n" + "".join(f"{i},{v:.6f}\n" for i, v in enumerate(loss)))
            assert run(["runs", "import", "--mixtures", str(mix), "--metrics", str(met), "--store", str(store)]) == 0
        capsys.readouterr()
        assert run(["fit", "--store", str(store), "--target", "val/a", "--folds", "2", "--out", str(tmp_path / f"{other}.pkl")]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert ("(few or no mixtures in common) sit apart" in out and "m-big.csv lower in 100%" in out) == warned, out


def test_regmix_1m_and_60m_tables_imported_without_scales_are_named_by_fit(regmix, tmp_path, capsys):
    """RegMix's 1M train table with its 60M test table (no mixtures in common, both with no scale): fit names them; the
    1M train and 1M test tables (one scale) give no such warning."""
    for test, warned in (("1m", False), ("60m", True)):
        store = tmp_path / f"s-{test}"
        for mix, met in (("train_mixture_1m.csv", "train_pile_loss_1m.csv"), (f"test_mixture_{test}.csv", f"test_pile_loss_{test}.csv")):
            assert run(["runs", "import", "--mixtures", str(regmix / mix), "--metrics", str(regmix / met), "--store", str(store)]) == 0
        capsys.readouterr()
        assert run(["fit", "--store", str(store), "--folds", "2", "--model", "linear", "--out", str(tmp_path / f"{test}.pkl")]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert ("sit apart by" in out and "test_mixture_60m.csv lower in 100%" in out) == warned, out
