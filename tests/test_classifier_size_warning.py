"""The scale review of stop 40 (finding 3): `select --method classifier` needs about 54 bytes of memory per byte of
text and super-linear time; on a pool over CLASSIFIER_WARN_DOCS documents without --max-docs it warns once, in one line."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

from mixopt.cli.main import run
from mixopt.selection import select as select_mod
from mixopt.selection.cache import ScoreCache
from mixopt.selection.select import select_documents
from tests.test_selection_cli import files  # noqa: F401  (a fixture)


def test_classifier_on_a_large_pool_without_max_docs_warns_once_in_one_line(files, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MIXOPT_CACHE", str(tmp_path / "cache"))
    pool, target, _ = files  # 24 documents with text
    monkeypatch.setattr(select_mod, "CLASSIFIER_WARN_DOCS", 20)
    argv = ["select", "--pool", f"web={pool}", "--target", str(target), "--method", "classifier", "--buckets", "2"]
    assert run(argv + ["--out", str(tmp_path / "big")], plain_warnings=True) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "--method classifier on" in ln]
    assert len(lines) == 1, lines
    assert "24 pool documents" in lines[0] and "54 bytes of memory per byte of text" in lines[0]
    assert "245 s and 13.9 GiB" in lines[0] and "--max-docs N" in lines[0]
    # with --max-docs, or under the threshold, or another method: no such warning
    assert run(argv + ["--out", str(tmp_path / "capped"), "--max-docs", "30"], plain_warnings=True) == 0
    assert "--method classifier on" not in capsys.readouterr().err
    with _no_size_warning():
        select_documents({"web": str(pool)}, str(target), tmp_path / "dsir", method="dsir", buckets=2,
                         cache=ScoreCache(tmp_path / "c"))
    monkeypatch.setattr(select_mod, "CLASSIFIER_WARN_DOCS", 24)
    with _no_size_warning():
        select_documents({"web": str(pool)}, str(target), tmp_path / "small", method="classifier", buckets=2,
                         cache=ScoreCache(tmp_path / "c"))


@contextmanager
def _no_size_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert not [w for w in caught if "--method classifier on" in str(w.message)]
