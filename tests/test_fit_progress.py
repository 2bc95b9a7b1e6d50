"""The scale review of stop 40 (findings 1 and 6): `fit` was silent for minutes on large stores; it now reports each
cross-validation fold and the final fit as bars on stderr (a terminal only), with the same fitted numbers."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

from mixopt import pipeline
from mixopt.cli.main import run
from tests.test_pipeline import _import_sizes


def _one_scale_store(tmp_path, n: int = 12) -> str:
    (tmp_path / "m.csv").write_text("index,a,b\n" + "".join(f"{i},{i / (n - 1):.4f},{1 - i / (n - 1):.4f}\n" for i in range(n)))
    (tmp_path / "l.csv").write_text("index,val/a\n" + "".join(f"{i},{3 + (i / (n - 1) - 0.7) ** 2:.4f}\n" for i in range(n)))
    store = str(tmp_path / "imp")
    assert run(["runs", "import", "--mixtures", str(tmp_path / "m.csv"), "--metrics", str(tmp_path / "l.csv"),
                "--store", store]) == 0
    return store


def _ticks(calls, label):
    return [(d, t) for lab, d, t in calls if lab == label]


@pytest.mark.parametrize("scales", [False, True], ids=["one-scale", "scale-aware"])
def test_fit_reports_each_fold_and_the_final_fit_and_fits_the_same_model(tmp_path, scales):
    store = (_import_sizes(tmp_path, "sz", [(1e6, list(range(12))), (4e6, list(range(12)))]) if scales
             else _one_scale_store(tmp_path))
    target = "val/loss" if scales else "val/a"
    snap = pipeline.open_store(store)
    calls = []
    told = pipeline.fit(snap, target, folds=3, seed=1, progress=lambda *a: calls.append(a))
    plain = pipeline.fit(snap, target, folds=3, seed=1)
    assert _ticks(calls, pipeline.FIT_FOLDS_LABEL) == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert _ticks(calls, pipeline.FIT_FINAL_LABEL) == [(0, 1), (1, 1)]
    assert [c[0] for c in calls] == [pipeline.FIT_FOLDS_LABEL] * 4 + [pipeline.FIT_FINAL_LABEL] * 2  # folds first
    assert told.meta["cv"] == plain.meta["cv"]  # no fitted number changes
    W = np.asarray(plain.meta["train_mixtures"])
    X = W if not scales else pipeline.scale_inputs(W, np.full(len(W), 4e6), np.full(len(W), 1e8))
    assert np.array_equal(told.estimator.predict(X), plain.estimator.predict(X))


def test_fit_cmd_draws_bars_on_stderr_and_prints_nothing_there_off_a_terminal(tmp_path, capsys, monkeypatch):
    store = _one_scale_store(tmp_path)
    assert run(["fit", "--store", store, "--target", "val/a", "--folds", "3", "--out", str(tmp_path / "a.pkl")]) == 0
    assert capsys.readouterr().err == ""  # not a terminal: no bars, and no blank line where they were
    from mixopt.cli import cmd_fit
    seen = []

    @contextmanager
    def recording(console):
        assert console.stderr  # bars go to stderr: stdout keeps the table
        yield lambda label, done, total: seen.append((label, done, total))

    monkeypatch.setattr(cmd_fit, "progress_bars", recording)
    assert run(["fit", "--store", store, "--target", "val/a", "--folds", "3", "--out", str(tmp_path / "b.pkl")]) == 0
    assert _ticks(seen, pipeline.FIT_FOLDS_LABEL)[-1] == (3, 3) and _ticks(seen, pipeline.FIT_FINAL_LABEL)[-1] == (1, 1)
