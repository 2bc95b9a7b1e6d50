"""Review 30 (determinism, progress, flags): propose's search reports progress without changing the plan, select and
plan-pools take packaged config names, export refuses a negative seed and options its format ignores, select --out
refuses a folder holding an input, and export --drop ignores the dropped domain's --paths."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest

from mixopt import pipeline
from mixopt.cli.main import run
from mixopt.config import ProposeConfig
from mixopt.errors import ConfigError
from mixopt.export import EXPORTERS, OPTION_FORMATS, ExportOptions, export_plan
from mixopt.planning.propose import FINISH_LABEL, SEARCH_LABEL, ProposeContext, build_plan
from mixopt.planning.search import simulate_search
from tests.test_export import PATHS, plan_dict, plan_file  # noqa: F401, F811  (plan_file: a fixture)
from tests.test_export import _path_args as _paths
from tests.test_selection_cli import files  # noqa: F401  (a fixture)


class _Bowl:
    """Lowest at CENTRE, with a constant std: the search's answer depends on every candidate it scores."""

    CENTRE = np.array([0.5, 0.3, 0.2])

    def predict(self, W, return_std=False):
        W = np.atleast_2d(np.asarray(W, dtype=float))
        mean = ((W - self.CENTRE) ** 2).sum(axis=1)
        return (mean, np.full(len(W), 0.01)) if return_std else mean


# ---------------------------------------------------------------- F2: progress of propose's search


def test_simulate_search_reports_each_batch_and_the_result_is_bit_identical():
    kw = dict(n_candidates=5000, top_k=20, seed=3, batch_size=1000, uncertainty_weight=0.5)
    plain = simulate_search(_Bowl(), np.full(3, 1 / 3), **kw)
    calls = []
    seen = simulate_search(_Bowl(), np.full(3, 1 / 3), progress=lambda done, total: calls.append((done, total)), **kw)
    assert calls == [(1000 * b, 5000) for b in range(1, 6)]
    assert np.array_equal(plain.weights, seen.weights) and np.array_equal(plain.top_k_weights, seen.top_k_weights)
    assert (plain.predicted, plain.std, plain.score) == (seen.predicted, seen.std, seen.score)


def test_build_plan_with_a_progress_callback_writes_the_same_plan():
    def plan(progress=None):
        ctx = ProposeContext(domains=["a", "b", "c"], target="t", token_counts={"a": 10**6, "b": 10**6, "c": 10**6},
                             proxy_tokens=1e5)
        cfg = ProposeConfig(n_candidates=3000, top_k=10, upsample=False)
        return build_plan(_Bowl(), ctx, cfg, budget_tokens=4e5, seed=1, progress=progress)

    calls = []
    with_bar = plan(lambda label, done, total: calls.append((label, done, total)))
    assert json.dumps(plan().to_dict(), sort_keys=True) == json.dumps(with_bar.to_dict(), sort_keys=True)
    assert (SEARCH_LABEL, 3000, 3000) in calls and calls[-1] == (FINISH_LABEL, 3, 3)


def test_propose_cli_draws_the_search_progress_on_a_terminal_only(tmp_path, monkeypatch):
    """propose hands pipeline.propose a progress callback: bars on a terminal (stderr), nothing in a pipe."""
    from rich.console import Console

    from mixopt.cli import cmd_propose

    seen = {}

    def fake_propose(fitted, **kw):
        seen["progress"] = kw.get("progress")
        if kw.get("progress") is not None:
            kw["progress"](SEARCH_LABEL, 500, 1000)
        raise ConfigError("stopped after the search")

    monkeypatch.setattr(pipeline, "open_model", lambda path: SimpleNamespace(meta={}))
    monkeypatch.setattr(pipeline, "propose", fake_propose)
    argv = ["propose", "--model", str(tmp_path / "m.pkl"), "--no-projector", "--out", str(tmp_path / "p.yaml")]
    assert run(argv) == 2 and callable(seen["progress"])  # off a terminal: a no-op callback
    screen = io.StringIO()
    monkeypatch.setattr(cmd_propose, "Console", lambda **kw: Console(file=screen, force_terminal=True, width=120))
    assert run(argv) == 2
    assert SEARCH_LABEL in screen.getvalue() and "500/1000" in screen.getvalue()


# ---------------------------------------------------------------- F3: packaged config names


def test_select_config_takes_a_packaged_name(files, tmp_path, capsys):  # noqa: F811
    pool, target, _ = files
    out = tmp_path / "sel"
    code = run(["select", "--pool", f"web={pool}", "--target", str(target), "--config", "tiny", "--max-docs", "20",
                "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert (out / "pools.yaml").is_file()


def test_plan_pools_config_takes_a_packaged_name(files, tmp_path, monkeypatch, capsys):  # noqa: F811
    pool, target, _ = files
    out = tmp_path / "sel"
    assert run(["select", "--pool", f"web={pool}", "--target", str(target), "--buckets", "2", "--out", str(out)]) == 0
    seen = {}

    def fake_measure(name, pools, store, *, config=None, **kw):
        seen["config"] = config
        raise ConfigError("stopped before training")

    monkeypatch.setattr(pipeline, "measure_pool_file", fake_measure)
    capsys.readouterr()
    code = run(["plan-pools", str(out / "pools.yaml"), "--domain", "web", "--budgets", "1e5", "--measure",
                "--store", str(tmp_path / "st"), "--config", "tiny", "--repetitions", "1,2,4,8"])
    assert code == 2 and "stopped before training" in capsys.readouterr().err
    assert seen["config"] is not None and seen["config"].proxy is not None


# ---------------------------------------------------------------- F4, F6, F8: export flags


def test_export_refuses_a_negative_seed_in_one_line(plan_file, tmp_path, capsys):
    out = tmp_path / "hf"
    assert run(["export", str(plan_file), "-f", "hf-datasets", "-o", str(out), *_paths(), "--seed", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--seed" in err and len(err.splitlines()) == 1 and not out.exists()
    assert run(["export", str(plan_file), "-f", "hf-datasets", "-o", str(out), *_paths(), "--seed", "0"]) == 0
    assert json.loads((out / "interleave.json").read_text())["phases"][0]["seed"] == 0


def test_export_local_cache_names_the_remote_streams_folders(plan_file, tmp_path, capsys):
    """--local-cache: a folder on disk, under which each remote stream gets its own; a URL is refused in one line."""
    import yaml

    out = tmp_path / "mosaic"
    assert run(["export", str(plan_file), "-f", "mosaic-streaming", "-o", str(out), *_paths(), "--local-cache", "s3://c"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--local-cache" in err and not out.exists()
    assert run(["export", str(plan_file), "-f", "mosaic-streaming", "-o", str(out), *_paths(), "--local-cache", "/scratch/c/"]) == 0
    streams = yaml.safe_load((out / "phase_00.yaml").read_text())["streams"]
    remote = [e for e in streams.values() if "remote" in e]
    assert remote and all(e["local"].startswith("/scratch/c/") and "//" not in e["local"] for e in remote)
    assert "under /scratch/c/ (--local-cache)" in (out / "phase_00.yaml").read_text()


@pytest.mark.parametrize("fmt, extra, flag", [
    ("megatron", ["--stopping-strategy", "first_exhausted"], "--stopping-strategy"),
    ("megatron", ["--seed", "7"], "--seed"),
    ("json", ["--global-batch-size", "8"], "--global-batch-size"),
    ("olmo-core", ["--tokens-per-doc", "code=100"], "--tokens-per-doc"),
    ("mosaic-streaming", ["--total-iterations", "10", "--seed", "3"], "--total-iterations"),
    ("litdata", ["--local-cache", "/scratch/c"], "--local-cache"),
])
def test_export_refuses_an_option_its_format_ignores(plan_file, tmp_path, capsys, fmt, extra, flag):
    out = tmp_path / "out"
    assert run(["export", str(plan_file), "-f", fmt, "-o", str(out), *_paths(), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and "ignored" in err and fmt in err
    assert all(f in err for f in OPTION_FORMATS[flag[2:].replace("-", "_")])
    assert not out.exists()


def test_option_formats_name_exactly_the_formats_each_option_changes():
    """OPTION_FORMATS (what export refuses) matches what each exporter reads: a non-default value changes the output of
    exactly the formats it lists."""
    assert set(OPTION_FORMATS) == {"tokens_per_doc", *ExportOptions.__dataclass_fields__}
    given = {"seed": ExportOptions(seed=7), "stopping_strategy": ExportOptions(stopping_strategy="first_exhausted"),
             "global_batch_size": ExportOptions(global_batch_size=256), "seq_length": ExportOptions(seq_length=2048),
             "total_iterations": ExportOptions(total_iterations=47683),
             "local_cache": ExportOptions(local_cache="/scratch/mds-cache")}
    for fmt in EXPORTERS:
        default = export_plan(plan_dict(), fmt, PATHS)
        for name, formats in OPTION_FORMATS.items():
            if name == "tokens_per_doc":
                changed = export_plan(plan_dict(), fmt, PATHS, tokens_per_doc={"code": 999.0})
            else:
                changed = export_plan(plan_dict(), fmt, PATHS, options=given[name])
            assert (changed != default) == (fmt in formats), (fmt, name)


def test_export_drop_ignores_the_dropped_domains_paths_with_a_note(plan_file, tmp_path, capsys):
    out = tmp_path / "meg"
    code = run(["export", str(plan_file), "-f", "megatron", "-o", str(out), *_paths(), "--drop", "code"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "note: ignored --paths code" in captured.err and len(captured.err.strip().splitlines()) >= 1
    blend = json.loads((out / "blend.json").read_text())
    assert "/data/code" not in json.dumps(blend) and "/data/math" in json.dumps(blend)
    # a document-weighted format: the dropped domain's --tokens-per-doc is ignored too
    code = run(["export", str(plan_file), "-f", "litdata", "-o", str(tmp_path / "mix.py"), *_paths(),
                "--tokens-per-doc", "code=100", "--drop", "code"])
    assert code == 0 and "--tokens-per-doc code" in capsys.readouterr().err


# ---------------------------------------------------------------- F7: select --out beside its inputs


def test_select_refuses_an_out_folder_holding_an_input_file(files, tmp_path, capsys):  # noqa: F811
    pool, target, _ = files  # both in tmp_path
    before = sorted(p.name for p in tmp_path.iterdir())
    assert run(["select", "--pool", f"web={pool}", "--target", str(target), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "which --pool web reads" in err and "among the data" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    other = tmp_path / "pools"
    other.mkdir()
    moved = other / "pool.jsonl"
    moved.write_bytes(pool.read_bytes())
    assert run(["select", "--pool", f"web={moved}", "--target", str(target), "--out", str(tmp_path)]) == 2
    assert "which --target reads" in capsys.readouterr().err
    assert run(["select", "--pool", f"web={pool}", "--target", str(target), "--out", str(tmp_path / "sel")]) == 0
