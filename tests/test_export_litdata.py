"""The litdata export across phases: each phase's streams continue every domain where the
earlier phases stopped, so a plan's epochs are what trains (checked with the real library).
"""

from __future__ import annotations

import ast
import importlib.util
import math
from collections import Counter
from pathlib import Path

import pytest

from mixopt.export import export_plan
from mixopt.export.reading import stream_windows
from mixopt.export.spec import prepare

# 10 tokens per document everywhere, 100,000 tokens: phase 0 (3/4 of the budget) trains 7,500 documents, phase 1 2,500.
# once: 3000 + 1400 documents at 1 epoch, so 4400 unique; twice: 3000 + 600 at 2 epochs, 1800 unique;
# half: 1500 + 500 at 0.5 epochs, 4000 unique (the plan never reads its last 2000).
PLAN = {
    "budget_tokens": 100_000,
    "phases": [
        {"start_fraction": 0.0, "weights": {"once": 0.4, "twice": 0.4, "half": 0.2}},
        {"start_fraction": 0.75, "weights": {"once": 0.56, "twice": 0.24, "half": 0.2}},
    ],
    "epochs": {"once": 1.0, "twice": 2.0, "half": 0.5},
    "tokens_per_doc": {"once": 10, "twice": 10, "half": 10},
}
UNIQUE = {"once": 4400, "twice": 1800, "half": 4000}
PLANNED = [{"once": 3000, "twice": 3000, "half": 1500}, {"once": 1400, "twice": 600, "half": 500}]


def _doc(row):
    return {"domain": row[0], "i": row[1]}


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The exported module over real litdata-optimized data, one document id per item."""
    litdata = pytest.importorskip("litdata", reason="litdata is not installed (pip install 'mixopt[export]')")
    tmp = tmp_path_factory.mktemp("litdata_phases")
    mp = pytest.MonkeyPatch()
    mp.setenv("DATA_OPTIMIZER_CACHE_FOLDER", str(tmp / "cache" / "chunks"))  # not /tmp/chunks
    mp.setenv("DATA_OPTIMIZER_DATA_CACHE_FOLDER", str(tmp / "cache" / "data"))
    try:
        paths = {}
        for domain, n in UNIQUE.items():
            out = tmp / "data" / domain
            # several chunks, so windows start and end inside chunks
            litdata.optimize(fn=_doc, inputs=[(domain, i) for i in range(n)], output_dir=str(out), chunk_size=700,
                             num_workers=1, start_method="fork")
            paths[domain] = str(out)
        module_path = tmp / "mixture_litdata.py"
        module_path.write_text(export_plan(PLAN, "litdata", paths)["mixture_litdata.py"])
        yield _load(module_path, "phased_litdata_mixture")
    finally:
        mp.undo()


def _ids(rows, domain):
    return [r["i"] for r in rows if r["domain"] == domain]


def _window_ids(window, n):
    """Document ids a stream may yield: its read and spare windows over the data read over and over."""
    ids = set()
    for a, b in (window["read"], window["spare"]):
        ids |= {k % n for k in range(round(a * n), round(b * n))}
    return ids


def test_phases_continue_each_domain_where_the_last_stopped(exported):
    """Phase 1 reads on from phase 0: a 1-epoch domain is split between them, a 2-epoch one read twice in all."""
    passes = [list(exported.build(k)) for k in range(len(exported.PHASES))]
    for k, rows in enumerate(passes):
        for d, planned in PLANNED[k].items():  # one pass holds at least the planned documents of every domain
            assert len(_ids(rows, d)) >= planned, (k, d, Counter(r["domain"] for r in rows))
    # what each phase plans of a domain: its first planned documents there (streams read in order unless shuffled)
    read = [{d: _ids(rows, d)[:n] for d, n in PLANNED[k].items()} for k, rows in enumerate(passes)]
    # once (1 epoch): disjoint phases whose union is the domain, in order
    assert read[0]["once"] == list(range(3000)) and read[1]["once"] == list(range(3000, 4400))
    # twice (2 epochs): phase 0 goes through it and on to 1200; phase 1 ends the second epoch
    assert read[0]["twice"] == list(range(1800)) + list(range(1200)) and read[1]["twice"] == list(range(1200, 1800))
    assert Counter(read[0]["twice"] + read[1]["twice"]) == {i: 2 for i in range(1800)}
    # half (0.5 epochs): disjoint, the first half of the data; what a phase draws beyond its plan is unseen data
    assert read[0]["half"] == list(range(1500)) and read[1]["half"] == list(range(1500, 2000))
    for k, rows in enumerate(passes):  # beyond its planned documents a phase reads its spare: for half, unseen data
        spare = exported.PHASES[k]["window"]["half"]["spare"]
        assert set(_ids(rows, "half")[PLANNED[k]["half"]:]) <= set(range(round(spare[0] * 4000), round(spare[1] * 4000)))
        assert spare[0] >= 0.5
    assert not set(_ids(passes[0], "half")) & set(_ids(passes[1], "half"))


def test_shuffled_phases_stay_in_their_windows(exported):
    """shuffle=True shuffles inside a stream only: each phase still reads its own part of every domain."""
    passes = [list(exported.build(k, shuffle=True)) for k in range(len(exported.PHASES))]
    for k, rows in enumerate(passes):
        for d, n in UNIQUE.items():
            ids = _ids(rows, d)
            assert len(ids) >= PLANNED[k][d] and set(ids) <= _window_ids(exported.PHASES[k]["window"][d], n), (k, d)
        assert _ids(rows, "once")[:50] != list(range(50))  # shuffled
    assert not set(_ids(passes[0], "half")) & set(_ids(passes[1], "half"))  # <= 1 epoch with unseen tail: disjoint
    # once: phase 1 reads phase 0's part only where its spare wraps onto the domain's start
    spare = exported.PHASES[1]["window"]["once"]["spare"]
    assert set(_ids(passes[1], "once")) & set(range(3000)) <= {k % 4400 for k in range(round(spare[0] * 4400), round(spare[1] * 4400))}


def test_a_subsample_gives_plain_streams(exported):
    """A caller's own subsample replaces the windows: litdata's stream from the domain's first documents."""
    rows = list(exported.build(1, subsample=1.0))
    assert _ids(rows, "once")[:10] == list(range(10))


def test_windows_follow_the_plan():
    """Reads continue phase to phase and sum to the epochs; spares are stacked after the total read."""
    paths = {d: f"/data/{d}" for d in UNIQUE}
    windows = stream_windows(prepare(PLAN, "litdata", "documents", paths))
    text = export_plan(PLAN, "litdata", paths)["mixture_litdata.py"]
    phases = next(ast.literal_eval(n.value) for n in ast.parse(text).body
                  if isinstance(n, ast.Assign) and n.targets[0].id == "PHASES")
    assert [p["window"] for p in phases] == windows
    for d, n in UNIQUE.items():
        w0, w1 = windows[0][d], windows[1][d]
        assert w0["unit"] == w1["unit"] == "epochs"
        assert w0["read"][0] == 0.0 and w0["read"][1] == w1["read"][0]
        assert math.isclose(w1["read"][1], PLAN["epochs"][d], rel_tol=1e-9)
        assert w0["spare"][0] == w1["read"][1] and w1["spare"][0] == w0["spare"][1]
        for k, w in enumerate((w0, w1)):
            length = w["read"][1] - w["read"][0] + w["spare"][1] - w["spare"][0]
            assert phases[k]["repeat"][d] == round(length, 6)  # the stream's length, planned plus spare
            assert round((w["read"][1] - w["read"][0]) * n) == PLANNED[k][d]
            share = max(0.05, 4 / math.sqrt(PLANNED[k][d]))  # the margin, or 4 standard deviations of the draws
            assert math.isclose(w["spare"][1] - w["spare"][0], share * (w["read"][1] - w["read"][0]), rel_tol=1e-6)
    # without plan epochs the windows are in documents (phase tokens over tokens per document)
    no_epochs = stream_windows(prepare({**PLAN, "epochs": {}}, "litdata", "documents", paths))
    assert no_epochs[1]["once"]["unit"] == "documents" and no_epochs[1]["once"]["read"] == [3000.0, 4400.0]
    assert no_epochs[0]["once"]["spare"][0] == 4400.0
